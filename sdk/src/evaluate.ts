import { bucketWithPrefix, hashPrefix, thresholdFor } from './bucketing.js';
import { DEFAULT_STICKINESS } from './snapshot.js';
import type { EvaluationContext, FlagConfig, FlagSnapshot } from './snapshot.js';

/** Why a value was chosen; the names are OpenFeature's. */
export type Reason = 'DISABLED' | 'SPLIT' | 'DEFAULT' | 'ERROR';

/** OpenFeature error codes that evaluation can produce. */
export type ErrorCode = 'FLAG_NOT_FOUND' | 'TARGETING_KEY_MISSING' | 'PARSE_ERROR' | 'GENERAL';

/** The outcome of one evaluation. `bucket` is present whenever the unit was bucketed. */
export interface Evaluation {
  readonly value: boolean;
  readonly reason: Reason;
  readonly errorCode?: ErrorCode;
  readonly bucket?: number;
}

/**
 * The unit id a context gives for a stickiness attribute, or undefined when there is none.
 * Non-empty strings and finite numbers count; anything else is missing.
 */
export function unitIdOf(context: EvaluationContext | undefined, stickiness: string): string | undefined {
  // JavaScript callers can pass null or a number where the types say otherwise.
  /* eslint-disable @typescript-eslint/no-unnecessary-condition */
  const value: unknown =
    typeof context === 'string'
      ? stickiness === DEFAULT_STICKINESS
        ? context
        : undefined
      : typeof context === 'object' && context !== null && Object.hasOwn(context, stickiness)
        ? context[stickiness]
        : undefined;
  /* eslint-enable @typescript-eslint/no-unnecessary-condition */
  return typeof value === 'string' ? value || undefined : typeof value === 'number' && Number.isFinite(value) ? String(value) : undefined;
}

/** Own-property lookup, so `constructor` or `__proto__` never resolve to Object's members. */
export function flagOf(snapshot: FlagSnapshot | undefined, flagKey: string): FlagConfig | undefined {
  // JavaScript callers can hand over a snapshot without `flags`; that is "not found", not a throw.
  if (snapshot?.flags == null || typeof flagKey !== 'string') return undefined;
  return Object.hasOwn(snapshot.flags, flagKey) ? snapshot.flags[flagKey] : undefined;
}

/**
 * Evaluates one flag config for a context. Never throws: a malformed config or context
 * resolves to `defaultValue` with reason ERROR or DEFAULT.
 *
 * @example
 * evaluateFlag('new-checkout', { enabled: true, percentage: 25 }, 'user-42');
 * // { value: false, reason: 'SPLIT', bucket: 74607 }
 */
export function evaluateFlag(
  flagKey: string,
  flag: FlagConfig | undefined,
  context: EvaluationContext | undefined,
  defaultValue = false,
): Evaluation {
  if (flag === undefined) return { value: defaultValue, reason: 'DEFAULT', errorCode: 'FLAG_NOT_FOUND' };
  try {
    if (!flag.enabled) return { value: false, reason: 'DISABLED' };
    const unitId = unitIdOf(context, flag.stickiness ?? DEFAULT_STICKINESS);
    const threshold = thresholdFor(flag.percentage);
    if (threshold === undefined) return { value: defaultValue, reason: 'ERROR', errorCode: 'PARSE_ERROR' };
    if (unitId === undefined) {
      if (threshold === 0) return { value: false, reason: 'SPLIT' };
      return { value: defaultValue, reason: 'DEFAULT', errorCode: 'TARGETING_KEY_MISSING' };
    }
    const b = bucketWithPrefix(hashPrefix(flag.groupId ?? flagKey), unitId);
    return { value: b < threshold, reason: 'SPLIT', bucket: b };
  } catch {
    return { value: defaultValue, reason: 'ERROR', errorCode: 'GENERAL' };
  }
}

/**
 * Evaluates `flagKey` from a snapshot. Never throws.
 *
 * @example
 * evaluate(snapshot, 'async-reports', { userId: 'u-1' }).value;
 */
export function evaluate(
  snapshot: FlagSnapshot | undefined,
  flagKey: string,
  context: EvaluationContext | undefined,
  defaultValue = false,
): Evaluation {
  // flagOf never throws and evaluateFlag catches: nothing left to guard here.
  return evaluateFlag(flagKey, flagOf(snapshot, flagKey), context, defaultValue);
}
