/**
 * THE bucketing rule. The server, the guard and the SDK all call this file; ports to other
 * languages reproduce it from docs/bucketing.md and test/fixtures/bucketing-vectors.json.
 *
 * h      = MurmurHash3_x86_32(seed 0) over the UTF-8 bytes of `groupId + ":" + unitId`
 * bucket = (h % 100) * 1000 + floor((h % 100000) / 100)        -> integer in 0..99999
 * in     = bucket < round(percentage * 1000)
 *
 * For whole percentages this selects exactly the users of Unleash's gradual/flexible rollout
 * (`h % 100 + 1 <= p`), and it is monotonic in the percentage.
 */

/** Number of buckets: one per 0.001 percentage point. */
export const BUCKET_COUNT = 100_000;

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

// The hash streams UTF-8 bytes straight from UTF-16 char codes, so no string is concatenated
// and no byte array is allocated per call. Evaluation is synchronous, so module state is safe.
let h = 0;
let k = 0;
let n = 0;

function mixBlock(): void {
  let k1 = Math.imul(k, C1);
  k1 = (k1 << 15) | (k1 >>> 17);
  h ^= Math.imul(k1, C2);
  h = (h << 13) | (h >>> 19);
  h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  k = 0;
}

function pushByte(b: number): void {
  k |= b << ((n & 3) << 3);
  n++;
  if ((n & 3) === 0) mixBlock();
}

function pushString(s: string): void {
  const len = s.length;
  for (let i = 0; i < len; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      pushByte(c);
    } else if (c < 0x800) {
      pushByte(0xc0 | (c >> 6));
      pushByte(0x80 | (c & 0x3f));
    } else {
      if (c >= 0xd800 && c <= 0xdfff) {
        const next = i + 1 < len ? s.charCodeAt(i + 1) : 0;
        if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
          i++;
          pushByte(0xf0 | (c >> 18));
          pushByte(0x80 | ((c >> 12) & 0x3f));
          pushByte(0x80 | ((c >> 6) & 0x3f));
          pushByte(0x80 | (c & 0x3f));
          continue;
        }
        // A lone surrogate is encoded as U+FFFD, exactly as TextEncoder and Buffer do.
        c = 0xfffd;
      }
      pushByte(0xe0 | (c >> 12));
      pushByte(0x80 | ((c >> 6) & 0x3f));
      pushByte(0x80 | (c & 0x3f));
    }
  }
}

function finish(): number {
  if ((n & 3) !== 0) {
    let k1 = Math.imul(k, C1);
    k1 = (k1 << 15) | (k1 >>> 17);
    h ^= Math.imul(k1, C2);
  }
  h ^= n;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * MurmurHash3 x86 32-bit, seed 0, of the UTF-8 bytes of `groupId + ":" + unitId`.
 *
 * @example
 * hashUnit('new-checkout', 'user-42'); // same value in every process and every SDK
 */
export function hashUnit(groupId: string, unitId: string): number {
  h = 0;
  k = 0;
  n = 0;
  pushString(groupId);
  pushByte(0x3a);
  pushString(unitId);
  return finish();
}

/**
 * The bucket (0..99999) of a unit within a flag's group.
 *
 * @example
 * bucket('new-checkout', 'user-42') < percentageToThousandths(25); // in a 25% rollout?
 */
export function bucket(groupId: string, unitId: string): number {
  const hash = hashUnit(groupId, unitId);
  return (hash % 100) * 1000 + Math.floor((hash % 100_000) / 100);
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
export function isValidPercentage(percentage: number): boolean {
  if (!Number.isFinite(percentage) || percentage < 0 || percentage > 100) return false;
  const thousandths = percentage * 1000;
  return Math.abs(thousandths - Math.round(thousandths)) < 1e-6;
}
