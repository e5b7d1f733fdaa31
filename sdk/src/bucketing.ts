/**
 * THE bucketing rule. The server, the guard and the SDK all call this file; ports to other
 * languages reproduce it from docs/bucketing.md and test/fixtures/bucketing-vectors.json.
 *
 * h      = MurmurHash3_x86_32(seed 0) over the UTF-8 bytes of `groupId + ":" + unitId`
 * bucket = (h % 100) * 1000 + floor((h % 100000) / 100)        -> integer in 0..99999
 * in     = bucket < round(percentage * 1000)
 *
 * For whole percentages this selects exactly the users of Unleash's gradual/flexible rollout
 * (`h % 100 + 1 <= p`) for SDKs that hash UTF-8 (Node's unleash-client agrees on ASCII ids
 * only: it hashes the low byte of each UTF-16 unit). It is monotonic in the percentage.
 */

/** Number of buckets: one per 0.001 percentage point. */
export const BUCKET_COUNT = 100_000;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** The MurmurHash3 state after some bytes: running hash, pending tail bytes, byte count. */
export interface HashPrefix {
  readonly h: number;
  readonly k: number;
  readonly n: number;
}

// Scratch output of absorb() for building prefixes; evaluation is synchronous, so sharing is safe.
const scratch = { h: 0, k: 0, n: 0 };

// Only ids with a non-ASCII character pay for an encoding; TextEncoder turns a lone surrogate
// into U+FFFD, like Buffer and every UTF-8 encoder the other SDKs use.
const utf8 = new TextEncoder();

/**
 * Feeds the UTF-8 bytes of `s` into a MurmurHash3 state. ASCII ids (the common case) are read
 * straight from their char codes: no string concatenation, no byte array. With `out` it stores
 * the state there and returns 0; without, it finalises and returns the hash as a signed 32-bit
 * integer. State lives in locals so the optimiser keeps it in registers.
 */
function absorb(h0: number, k0: number, n0: number, s: string, out?: { h: number; k: number; n: number }): number {
  let h = h0;
  let k = k0;
  let n = n0;
  let bytes: Uint8Array | undefined;
  let len = s.length;
  for (let i = 0; i < len; i++) {
    if (s.charCodeAt(i) > 0x7f) {
      bytes = utf8.encode(s);
      len = bytes.length;
      break;
    }
  }
  for (let i = 0; i < len; i++) {
    k |= (bytes === undefined ? s.charCodeAt(i) : (bytes[i] ?? 0)) << ((n & 3) << 3);
    if ((++n & 3) === 0) {
      k = Math.imul(k, C1);
      k = (k << 15) | (k >>> 17);
      h ^= Math.imul(k, C2);
      h = (h << 13) | (h >>> 19);
      h = (Math.imul(h, 5) + 0xe6546b64) | 0;
      k = 0;
    }
  }
  if (out !== undefined) {
    out.h = h;
    out.k = k;
    out.n = n;
    return 0;
  }
  if ((n & 3) !== 0) {
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, C2);
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function toBucket(signedHash: number): number {
  const hash = signedHash >>> 0;
  return (hash % 100) * 1000 + Math.floor((hash % 100_000) / 100);
}

/**
 * The hash state after `groupId + ":"`: compute it once per flag, then bucket many units with
 * {@link bucketWithPrefix}.
 *
 * @example
 * const prefix = hashPrefix('new-checkout');
 * bucketWithPrefix(prefix, 'user-42') === bucket('new-checkout', 'user-42'); // true
 */
export function hashPrefix(groupId: string): HashPrefix {
  absorb(0, 0, 0, groupId, scratch);
  absorb(scratch.h, scratch.k, scratch.n, ':', scratch);
  return { ...scratch };
}

/**
 * The bucket of `unitId` under a precomputed {@link hashPrefix}: the SDK's hot path.
 *
 * @example
 * bucketWithPrefix(hashPrefix('new-checkout'), 'user-42'); // 74607
 */
export function bucketWithPrefix(prefix: HashPrefix, unitId: string): number {
  return toBucket(absorb(prefix.h, prefix.k, prefix.n, unitId));
}

/**
 * MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of `groupId + ":" + unitId`.
 *
 * @example
 * hashUnit('new-checkout', 'user-42'); // 1499260774, in every process and every SDK
 */
export function hashUnit(groupId: string, unitId: string): number {
  const p = hashPrefix(groupId);
  return absorb(p.h, p.k, p.n, unitId) >>> 0;
}

/**
 * The bucket (0..99999) of a unit within a flag's group.
 *
 * @example
 * bucket('new-checkout', 'user-42'); // 74607: in a rollout of more than 74.607 %
 */
export function bucket(groupId: string, unitId: string): number {
  return bucketWithPrefix(hashPrefix(groupId), unitId);
}

/**
 * A percentage in [0, 100] as whole thousandths of a percent: the exclusive bucket bound.
 *
 * @example
 * percentageToThousandths(12.345); // 12345
 */
export function percentageToThousandths(percentage: number): number {
  return Math.round(percentage * 1000);
}

/**
 * Whether a percentage is valid for a flag: finite, in [0, 100], at most three decimals.
 *
 * @example
 * isValidPercentage(0.001); // true
 * isValidPercentage(1.0005); // false
 */
export function isValidPercentage(percentage: unknown): boolean {
  return thresholdFor(percentage) !== undefined;
}

/**
 * The exclusive bucket bound of a percentage, or undefined when it is not a valid one (not a
 * number, outside 0..100, more than three decimals).
 *
 * @example
 * thresholdFor(12.345); // 12345
 * thresholdFor(1.0005); // undefined
 */
export function thresholdFor(percentage: unknown): number | undefined {
  if (typeof percentage !== 'number') return undefined;
  const thousandths = percentage * 1000;
  const whole = Math.round(thousandths);
  // NaN fails every comparison; the tolerance absorbs binary rounding such as 12.345 * 1000.
  return whole >= 0 && whole <= BUCKET_COUNT && Math.abs(thousandths - whole) < 1e-6 ? whole : undefined;
}
