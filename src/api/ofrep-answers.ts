// OFREP answers prepared once per revision. The bulk route evaluates every flag for every request,
// so what does not depend on the context (the hash prefix of the flag's group, its threshold, the
// JSON around the bucket) is computed when the revision changes, not per request and per flag.
import { bucketWithPrefix, DEFAULT_STICKINESS, hashPrefix, thresholdFor, unitIdOf } from '@rampart/sdk';
import type { ErrorCode, EvaluationContext, FlagConfig, HashPrefix } from '@rampart/sdk';

/** One flag's answer for one context: its OFREP success JSON, or why it has none. */
export type OfrepAnswer = { readonly json: string; readonly errorCode?: undefined } | { readonly errorCode: ErrorCode };

/** A flag ready to answer any context at the revision it was prepared for. */
export interface PreparedFlag {
  readonly key: string;
  /** Same outcome as the SDK's `evaluateFlag(key, config, context)`, as OFREP JSON. */
  answer(context: EvaluationContext): OfrepAnswer;
}

const failed = (errorCode: ErrorCode): OfrepAnswer => ({ errorCode });
const GENERAL = failed('GENERAL');
const PARSE_ERROR = failed('PARSE_ERROR');
const TARGETING_KEY_MISSING = failed('TARGETING_KEY_MISSING');

/**
 * Prepares a flag's OFREP answers at `revision`. A success is
 * `{ key, value, reason, variant, metadata: { revision, bucket? } }`, bucket present whenever the
 * unit was bucketed, exactly as the SDK's evaluateFlag decides (a property test holds them equal).
 *
 * @example
 * prepareFlag('new-checkout', { enabled: true, percentage: 25 }, 7).answer({ userId: 'user-42' });
 * // { json: '{"key":"new-checkout","value":false,"reason":"SPLIT","variant":"off","metadata":{"revision":7,"bucket":74607}}' }
 */
export function prepareFlag(key: string, config: FlagConfig, revision: number): PreparedFlag {
  const head = `{"key":${JSON.stringify(key)},"value":`;
  const constant = (answer: OfrepAnswer): PreparedFlag => ({ key, answer: () => answer });
  const success = (value: boolean, reason: string, metadata: string): string =>
    `${head}${value},"reason":"${reason}","variant":"${value ? 'on' : 'off'}","metadata":{"revision":${revision}${metadata}`;
  try {
    if (!config.enabled) return constant({ json: `${success(false, 'DISABLED', '')}}}` });
    const threshold = thresholdFor(config.percentage);
    if (threshold === undefined) return constant(PARSE_ERROR);
    const stickiness = config.stickiness ?? DEFAULT_STICKINESS;
    const prefix = prefixOf(config.groupId ?? key);
    const on = success(true, 'SPLIT', ',"bucket":');
    const off = success(false, 'SPLIT', ',"bucket":');
    const nobody: OfrepAnswer = threshold === 0 ? { json: `${success(false, 'SPLIT', '')}}}` } : TARGETING_KEY_MISSING;
    return {
      key,
      answer(context) {
        try {
          const unitId = unitIdOf(context, stickiness);
          if (unitId === undefined) return nobody;
          if (prefix === undefined) return GENERAL;
          const b = bucketWithPrefix(prefix, unitId);
          return { json: `${b < threshold ? on : off}${b}}}` };
        } catch {
          return GENERAL;
        }
      },
    };
  } catch {
    return constant(GENERAL);
  }
}

/** The hash prefix of a group, or undefined for a group id the SDK could not hash either. */
function prefixOf(groupId: string): HashPrefix | undefined {
  try {
    return hashPrefix(groupId);
  } catch {
    return undefined;
  }
}
