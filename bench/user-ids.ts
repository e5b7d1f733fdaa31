/**
 * The user ids every contestant is measured on: deterministic (seeded), distinct, and flat
 * strings, as ids parsed from a request would be.
 */

/** The ids and how many of each kind they hold. */
export interface UserIds {
  readonly ids: readonly string[];
  readonly sequential: number;
  readonly uuidLike: number;
  readonly nonAscii: number;
}

// Every kind of UTF-8 sequence the bucketing function encodes: 2-byte, 3-byte and 4-byte
// (surrogate pairs) characters.
const NON_ASCII_PREFIXES = ['jürgen', 'ñandú', 'Ωμέγα', 'ユーザー', '用户', 'zoë🚀', '😀'];

/** mulberry32: a tiny seeded PRNG, so every run measures the same ids. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function uuidLike(next: () => number): string {
  const hex = (digits: number): string => next().toString(16).padStart(8, '0').slice(0, digits);
  return `${hex(8)}-${hex(4)}-4${hex(3)}-a${hex(3)}-${hex(8)}${hex(4)}`;
}

/** Whether every UTF-16 code unit of `s` is ASCII (so UTF-8 bytes equal the char codes). */
export function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * `count` distinct ids: mostly `user-${i}`, one in ten UUID-like, one in a thousand non-ASCII.
 *
 * @example
 * generateUserIds(1_000_000, 42).ids.length; // 1000000
 */
export function generateUserIds(count: number, seed: number): UserIds {
  const next = seededRandom(seed);
  const raw: string[] = new Array<string>(count);
  let uuid = 0;
  let nonAscii = 0;
  for (let i = 0; i < count; i++) {
    if (i % 1000 === 7) {
      raw[i] = `${NON_ASCII_PREFIXES[i % NON_ASCII_PREFIXES.length]!}-${i}`;
      nonAscii++;
    } else if (i % 10 === 3) {
      raw[i] = uuidLike(next);
      uuid++;
    } else {
      raw[i] = `user-${i}`;
    }
  }
  if (new Set(raw).size !== count) throw new Error('generateUserIds: ids are not distinct');
  // Concatenation leaves cons strings; a JSON round trip gives flat strings, like parsed input.
  const ids = JSON.parse(JSON.stringify(raw)) as string[];
  return { ids, sequential: count - uuid - nonAscii, uuidLike: uuid, nonAscii };
}
