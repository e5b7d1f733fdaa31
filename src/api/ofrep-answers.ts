// OFREP answers prepared once per revision. The bulk route evaluates every flag for every request,
// so what does not depend on the context (the hash prefix of the flag's group, its threshold, the
// JSON bytes around the bucket) is computed when the revision changes, and a request only hashes
// its unit and copies bytes: no object per flag, no string to join, flatten and encode.
import { bucketWithPrefix, DEFAULT_STICKINESS, hashPrefix, thresholdFor, unitIdOf } from '@rampart/sdk';
import type { ErrorCode, EvaluationContext, FlagConfig, HashPrefix } from '@rampart/sdk';

/** An OFREP evaluation failure: `{ key, errorCode, errorDetails }`. */
export interface OfrepFailure {
  readonly key: string;
  readonly errorCode: ErrorCode;
  readonly errorDetails: string;
}

/**
 * The OFREP failure document for a flag and an error code.
 *
 * @example
 * ofrepFailure('x', 'FLAG_NOT_FOUND').errorDetails; // "flag 'x' does not exist"
 */
export function ofrepFailure(key: string, errorCode: ErrorCode): OfrepFailure {
  const details: Record<ErrorCode, string> = {
    FLAG_NOT_FOUND: `flag '${key}' does not exist`,
    TARGETING_KEY_MISSING: `flag '${key}' needs a targetingKey (or its stickiness attribute) in the context`,
    PARSE_ERROR: `flag '${key}' has an invalid configuration`,
    GENERAL: `flag '${key}' could not be evaluated`,
  };
  return { key, errorCode, errorDetails: details[errorCode] };
}

/**
 * A growing byte buffer for JSON made of prepared parts and small integers.
 *
 * @example
 * const out = new JsonBytes(64); out.append(Buffer.from('{"n":')); out.integer(42); out.append(Buffer.from('}'));
 * out.bytes().toString(); // '{"n":42}'
 */
export class JsonBytes {
  #buffer: Buffer;
  #length = 0;

  constructor(sizeHint: number) {
    this.#buffer = Buffer.allocUnsafe(Math.max(64, sizeHint));
  }

  append(part: Uint8Array): void {
    this.#reserve(part.length);
    this.#buffer.set(part, this.#length);
    this.#length += part.length;
  }

  /** Appends a non-negative integer below 2^53 in decimal, then `suffix` if given. */
  integer(n: number, suffix?: Uint8Array): void {
    let digits = 1;
    for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++;
    const extra = suffix?.length ?? 0;
    this.#reserve(digits + extra);
    let rest = n;
    for (let i = this.#length + digits - 1; i >= this.#length; i--) {
      this.#buffer[i] = 48 + (rest % 10);
      rest = Math.floor(rest / 10);
    }
    this.#length += digits;
    if (suffix !== undefined) {
      for (let i = 0; i < extra; i++) this.#buffer[this.#length + i] = suffix[i] as number;
      this.#length += extra;
    }
  }

  get length(): number {
    return this.#length;
  }

  /** The bytes written so far (a view, not a copy). */
  bytes(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  /**
   * The bytes written so far as one flat string: what a reply should send, since Node writes a
   * string body together with the headers in one write, and a Buffer in a second one (measured:
   * a 5 KB Buffer body costs more CPU per request than decoding it to a string first).
   */
  text(): string {
    return this.#buffer.toString('utf8', 0, this.#length);
  }

  #reserve(extra: number): void {
    if (this.#length + extra <= this.#buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + extra));
    this.#buffer.copy(grown, 0, 0, this.#length);
    this.#buffer = grown;
  }
}

/** A context's unit id for a stickiness attribute (see the SDK's unitIdOf). */
export type Units = (stickiness: string) => string | undefined;

/**
 * The unit ids of one context, looked up once per attribute rather than once per flag: nearly
 * every flag of a bulk evaluation asks for the same one.
 *
 * @example
 * const units = unitsOf({ userId: 'user-42' }); units('userId'); // 'user-42'
 */
export function unitsOf(context: EvaluationContext): Units {
  let lastName: string | undefined;
  let lastUnit: string | undefined;
  return (name) => {
    if (name !== lastName) {
      lastUnit = unitIdOf(context, name);
      lastName = name;
    }
    return lastUnit;
  };
}

/** A flag ready to answer any context at the revision it was prepared for. */
export interface PreparedFlag {
  readonly key: string;
  /** The most bytes one answer of this flag can take. */
  readonly maxBytes: number;
  /**
   * Appends this flag's OFREP success JSON for a context (given by its `units`) to `out`, with
   * the outcome of the SDK's `evaluateFlag(key, config, context)`; or appends nothing and returns
   * why there is none.
   */
  writeAnswer(units: Units, out: JsonBytes): ErrorCode | undefined;
  /** The OFREP failure document for `errorCode`, as bytes (prepared once). */
  failureBytes(errorCode: ErrorCode): Buffer;
}

const utf8 = (text: string): Buffer => Buffer.from(text, 'utf8');
/** `}}`: closes an answer's metadata and the answer (and the bulk document's metadata and itself). */
export const CLOSE = utf8('}}');
/** Digits of the largest bucket, 99999. */
const BUCKET_DIGITS = 5;

/**
 * Prepares a flag's OFREP answers at `revision`. A success is
 * `{ key, value, reason, variant, metadata: { revision, bucket? } }`, bucket present whenever the
 * unit was bucketed, exactly as the SDK's evaluateFlag decides (a property test holds them equal).
 *
 * @example
 * const out = new JsonBytes(256);
 * prepareFlag('new-checkout', { enabled: true, percentage: 25 }, 7).writeAnswer(unitsOf({ userId: 'user-42' }), out);
 * out.bytes().toString();
 * // '{"key":"new-checkout","value":false,"reason":"SPLIT","variant":"off","metadata":{"revision":7,"bucket":74607}}'
 */
export function prepareFlag(key: string, config: FlagConfig, revision: number): PreparedFlag {
  const head = `{"key":${JSON.stringify(key)},"value":`;
  const success = (value: boolean, reason: string, metadata: string): string =>
    `${head}${value},"reason":"${reason}","variant":"${value ? 'on' : 'off'}","metadata":{"revision":${revision}${metadata}`;
  const failures = new Map<ErrorCode, Buffer>();
  const failureBytes = (errorCode: ErrorCode): Buffer => {
    let bytes = failures.get(errorCode);
    if (bytes === undefined) {
      bytes = utf8(JSON.stringify(ofrepFailure(key, errorCode)));
      failures.set(errorCode, bytes);
    }
    return bytes;
  };
  const fixed = (answer: Buffer | ErrorCode): PreparedFlag => ({
    key,
    maxBytes: typeof answer === 'string' ? 0 : answer.length,
    failureBytes,
    writeAnswer(_units, out) {
      if (typeof answer === 'string') return answer;
      out.append(answer);
      return undefined;
    },
  });
  try {
    if (!config.enabled) return fixed(utf8(`${success(false, 'DISABLED', '')}}}`));
    const threshold = thresholdFor(config.percentage);
    if (threshold === undefined) return fixed('PARSE_ERROR');
    const stickiness = config.stickiness ?? DEFAULT_STICKINESS;
    const prefix = prefixOf(config.groupId ?? key);
    const on = utf8(success(true, 'SPLIT', ',"bucket":'));
    const off = utf8(success(false, 'SPLIT', ',"bucket":'));
    const nobody = threshold === 0 ? utf8(`${success(false, 'SPLIT', '')}}}`) : undefined;
    return {
      key,
      maxBytes: Math.max(on.length, off.length) + BUCKET_DIGITS + CLOSE.length,
      failureBytes,
      writeAnswer(units, out) {
        try {
          const unitId = units(stickiness);
          if (unitId === undefined) {
            if (nobody === undefined) return 'TARGETING_KEY_MISSING';
            out.append(nobody);
            return undefined;
          }
          if (prefix === undefined) return 'GENERAL';
          const b = bucketWithPrefix(prefix, unitId);
          out.append(b < threshold ? on : off);
          out.integer(b, CLOSE);
          return undefined;
        } catch {
          return 'GENERAL';
        }
      },
    };
  } catch {
    return fixed('GENERAL');
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
