// Generates test/fixtures/bucketing-vectors.json, the golden vectors every Rampart SDK port must
// reproduce. The expected values come from an oracle that shares no code with sdk/src/bucketing.ts:
// murmurhash-js (a byte-wise MurmurHash3 that reads charCodeAt & 0xff) over the UTF-8 bytes that
// Node's Buffer produces, spelled as a latin1 string so each char is one byte.
//
//   node --import tsx scripts/gen-bucketing-vectors.ts          rewrite the JSON
//   node --import tsx scripts/gen-bucketing-vectors.ts --check  exit 1 if the JSON is out of date
//
// Deterministic: all "random" ids come from a seeded PRNG, so a rerun writes identical bytes.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import murmurhash from 'murmurhash-js';

/** What a case exercises; lets a port skip or single out a family (e.g. lone surrogates). */
export type VectorKind =
  | 'ascii'
  | 'latin1'
  | 'cjk'
  | 'cyrillic'
  | 'other-script'
  | 'emoji'
  | 'random-unicode'
  | 'lone-surrogate'
  | 'empty'
  | 'long'
  | 'fractional'
  | 'boundary'
  | 'group'
  | 'unleash';

export interface BucketingVector {
  readonly kind: VectorKind;
  readonly groupId: string;
  readonly unitId: string;
  /** MurmurHash3_x86_32, seed 0, of the UTF-8 bytes of `groupId + ":" + unitId`, as uint32. */
  readonly hash: number;
  readonly bucket: number;
  readonly percentage: number;
  /** round(percentage * 1000): the exclusive bucket bound. */
  readonly threshold: number;
  /** Decision for an enabled flag: unitId non-empty && percentage > 0 && bucket < threshold. */
  readonly expected: boolean;
  readonly note?: string;
}

export interface BucketingVectorsFile {
  readonly description: string;
  readonly rule: Readonly<Record<string, string>>;
  readonly notes: Readonly<Record<string, string>>;
  readonly fields: Readonly<Record<string, string>>;
  readonly generator: string;
  readonly cases: readonly BucketingVector[];
}

/** The oracle hash: independent of sdk/src/bucketing.ts. */
export function oracleHash(groupId: string, unitId: string): number {
  return murmurhash.murmur3(Buffer.from(`${groupId}:${unitId}`, 'utf8').toString('latin1'), 0);
}

/** The oracle bucket, written out from the rule rather than imported. */
export function oracleBucket(hash: number): number {
  return (hash % 100) * 1000 + Math.floor((hash % 100_000) / 100);
}

function vector(kind: VectorKind, groupId: string, unitId: string, percentage: number, note?: string): BucketingVector {
  const hash = oracleHash(groupId, unitId);
  const bucket = oracleBucket(hash);
  const threshold = Math.round(percentage * 1000);
  const expected = unitId !== '' && threshold > 0 && bucket < threshold;
  return { kind, groupId, unitId, hash, bucket, percentage, threshold, expected, ...(note === undefined ? {} : { note }) };
}

/** mulberry32: small, fast and good enough to pick test ids; seeded, so reruns agree. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

const PERCENTAGES = [0.001, 1, 5, 10, 12.345, 25, 33.333, 50, 66.667, 75, 90, 99.999, 100] as const;
const ASCII_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@:/+= ';
const GROUPS = ['new-checkout', 'async-reports', 'search.v2', 'AB12A', 'Feature.B3'] as const;

/** Scripts the random ids draw from: [first, last] code points, none of them surrogates. */
const SCRIPT_RANGES: readonly (readonly [number, number])[] = [
  [0x00a0, 0x00ff], // Latin-1 supplement: 2 UTF-8 bytes
  [0x0100, 0x017f], // Latin extended-A
  [0x0400, 0x04ff], // Cyrillic
  [0x0600, 0x06ff], // Arabic
  [0x0900, 0x097f], // Devanagari: 3 bytes
  [0x3040, 0x30ff], // Hiragana and Katakana
  [0x4e00, 0x9fff], // CJK unified ideographs
  [0xac00, 0xd7a3], // Hangul syllables
  [0xe000, 0xf8ff], // private use, just below and above the surrogate gap
  [0x1f300, 0x1faff], // emoji: 4 bytes, a surrogate pair in UTF-16
  [0x20000, 0x2a6df], // CJK extension B: 4 bytes
];

function pick<T>(random: () => number, items: readonly T[]): T {
  const item = items[Math.floor(random() * items.length)];
  if (item === undefined) throw new Error('pick from an empty list');
  return item;
}

function asciiId(random: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) s += ASCII_ALPHABET.charAt(Math.floor(random() * ASCII_ALPHABET.length));
  return s;
}

function unicodeId(random: () => number, length: number): string {
  let s = '';
  for (let i = 0; i < length; i++) {
    // Mix in ASCII so byte offsets land on every alignment within a 4-byte block.
    if (random() < 0.3) {
      s += ASCII_ALPHABET.charAt(Math.floor(random() * ASCII_ALPHABET.length));
    } else {
      const [lo, hi] = pick(random, SCRIPT_RANGES);
      s += String.fromCodePoint(lo + Math.floor(random() * (hi - lo + 1)));
    }
  }
  return s;
}

/** The first `prefix + n` (n = 0, 1, ...) whose oracle bucket satisfies `test`. */
function findId(groupId: string, prefix: string, test: (bucket: number) => boolean): string {
  for (let n = 0; n < 50_000_000; n++) {
    const id = `${prefix}${n}`;
    if (test(oracleBucket(oracleHash(groupId, id)))) return id;
  }
  throw new Error(`no id found for ${groupId}/${prefix}`);
}

/** Builds every vector. Pure and deterministic. */
export function buildVectors(): BucketingVectorsFile {
  const random = prng(0x5eed_0001);
  const cases: BucketingVector[] = [];
  const add = (kind: VectorKind, groupId: string, unitId: string, percentage: number, note?: string): void => {
    cases.push(vector(kind, groupId, unitId, percentage, note));
  };
  const cycle = (i: number): number => PERCENTAGES[i % PERCENTAGES.length] ?? 50;

  // ASCII: hand-picked ids, including every length mod 4 of the hashed key.
  const asciiIds = ['user-42', '123', '122', '155', 'a', 'ab', 'abc', 'abcd', 'abcde', 'abcdef', 'abcdefg',
    'user@example.com', 'UPPER-lower', '00000000-0000-4000-8000-000000000000', 'tenant/7/user/9', 'a b c'];
  asciiIds.forEach((id, i) => {
    add('ascii', 'new-checkout', id, cycle(i));
  });
  // ASCII: random ids from the PRNG, random groups, random percentages.
  for (let i = 0; i < 80; i++) {
    add('ascii', pick(random, GROUPS), asciiId(random, 1 + Math.floor(random() * 40)), pick(random, PERCENTAGES));
  }

  // Named non-ASCII ids, one per UTF-8 length class and script.
  const named: readonly (readonly [VectorKind, string, string?])[] = [
    ['latin1', 'José'], ['latin1', 'Zoë'], ['latin1', 'François'], ['latin1', 'straße'], ['latin1', 'ÅÄÖåäö'],
    ['latin1', 'Ñandú'], ['latin1', '©®°±µ¶'], ['latin1', '\u0080', 'U+0080: first 2-byte code point'],
    ['latin1', '\u00ff', 'U+00FF: last Latin-1 code point; a charCode-truncating hash would treat it as byte FF'],
    ['latin1', '\u07ff', 'U+07FF: last 2-byte code point'],
    ['latin1', 'e\u0301', 'NFD "é" (e + combining acute): no Unicode normalisation, so it differs from NFC "é"'],
    ['latin1', '\u00e9', 'NFC "é"'],
    ['cjk', '用户'], ['cjk', '日本語ユーザー'], ['cjk', '사용자'], ['cjk', 'ユーザー123'], ['cjk', '\u0800', 'U+0800: first 3-byte code point'],
    ['cyrillic', 'пользователь'], ['cyrillic', 'Иван Петров'], ['cyrillic', 'ЁЖЩЪЯ'],
    ['other-script', 'مستخدم'], ['other-script', 'משתמש'], ['other-script', 'उपयोगकर्ता'], ['other-script', 'χρήστης'],
    ['other-script', '\uffff', 'U+FFFF: last 3-byte code point (a noncharacter, still encoded as EF BF BF)'],
    ['other-script', '\ufffd', 'U+FFFD itself: same bytes as any lone surrogate'],
    ['emoji', '🙂'], ['emoji', '👩‍💻', 'ZWJ sequence: 3 code points, 11 UTF-8 bytes'], ['emoji', '🇫🇷', 'flag: two regional indicators'],
    ['emoji', '👍🏽', 'emoji + skin-tone modifier'], ['emoji', '𝔘𝔫𝔦𝔠𝔬𝔡𝔢', 'mathematical letters outside the BMP'],
    ['emoji', '\u{10000}', 'U+10000: first 4-byte code point'], ['emoji', '\u{10ffff}', 'U+10FFFF: last code point'],
    ['emoji', 'user-🙂-42'],
  ];
  named.forEach(([kind, id, note], i) => {
    add(kind, pick(random, GROUPS), id, cycle(i + 3), note);
  });
  // Non-ASCII group ids.
  add('cyrillic', 'пилот', 'user-42', 50, 'non-ASCII groupId');
  add('cjk', '実験-checkout', 'ユーザー', 50, 'non-ASCII groupId and unitId');
  add('emoji', '🚀-launch', '🙂', 50, 'emoji groupId');
  // Random strings over several scripts, 1 to 4 UTF-8 bytes per code point.
  for (let i = 0; i < 60; i++) {
    add('random-unicode', pick(random, GROUPS), unicodeId(random, 1 + Math.floor(random() * 24)), pick(random, PERCENTAGES));
  }

  // Lone surrogates: UTF-8 cannot encode them; like TextEncoder and Buffer they become U+FFFD.
  const surrogateNote = 'lone surrogate, encoded as U+FFFD (EF BF BD) like TextEncoder; same hash as the U+FFFD case';
  add('lone-surrogate', 'new-checkout', '\ud800', 50, `${surrogateNote} "\\ufffd"`);
  add('lone-surrogate', 'new-checkout', '\ufffd', 50, 'U+FFFD itself, for comparison with the lone-surrogate cases');
  add('lone-surrogate', 'new-checkout', '\udbff', 50, `${surrogateNote} "\\ufffd"`);
  add('lone-surrogate', 'new-checkout', '\udc00', 50, `${surrogateNote} "\\ufffd"`);
  add('lone-surrogate', 'new-checkout', '\udfff', 50, `${surrogateNote} "\\ufffd"`);
  add('lone-surrogate', 'new-checkout', 'x\ud800y', 50, `${surrogateNote} "x\\ufffdy"`);
  add('lone-surrogate', 'new-checkout', 'x\ufffdy', 50, 'U+FFFD itself, for comparison with "x\\ud800y"');
  add('lone-surrogate', 'new-checkout', 'user-\ud83d', 25, 'trailing high surrogate without its low half: "user-\\ufffd"');
  add('lone-surrogate', 'new-checkout', '\ude00\ud83d', 75, 'low then high: not a pair, two U+FFFD');

  // Empty and empty-ish ids. An empty unitId is "no unit": expected is false at any percentage
  // (the SDK returns the caller's default with reason DEFAULT), but hash and bucket are still given.
  add('empty', 'new-checkout', '', 100, 'empty unitId means no unit: not in, whatever the bucket');
  add('empty', 'new-checkout', '', 50, 'empty unitId means no unit: not in, whatever the bucket');
  add('empty', 'new-checkout', '', 0, 'empty unitId at 0%');
  for (const id of [' ', '  ', '\t', '\n', '\u0000', '\u0000\u0000', '0', '00', 'null', 'undefined', 'NaN', 'false', ':', '::']) {
    add('empty', 'new-checkout', id, 50, 'empty-ish but non-empty: a real unit id');
  }
  add('empty', '', 'user-42', 50, 'empty groupId: the hashed key is ":user-42"');
  add('empty', '', '', 50, 'empty groupId and unitId: the hashed key is ":"');
  add('empty', 'a:b', 'c', 50, 'groupId containing ":"; same key "a:b:c" as the next case');
  add('empty', 'a', 'b:c', 50, 'same key "a:b:c" as the previous case, hence the same hash');

  // Long ids, stored literally (at most 10,000 UTF-16 code units each).
  add('long', 'new-checkout', 'a'.repeat(255), 50, '255 x "a"');
  add('long', 'new-checkout', 'ab'.repeat(2048), 50, '"ab" x 2048: 4096 chars');
  add('long', 'new-checkout', asciiId(random, 10_000), 50, '10,000 random ASCII chars');
  add('long', 'new-checkout', 'é'.repeat(5000), 50, '"é" x 5000: 10,000 UTF-8 bytes');
  add('long', 'new-checkout', '🙂'.repeat(2500), 50, '"🙂" x 2500: 5,000 UTF-16 code units, 10,000 UTF-8 bytes');
  add('long', 'async-reports', unicodeId(random, 3000), 12.345, 'random mixed-script string');

  // Fractional percentages.
  for (const percentage of [0.001, 0.01, 0.1, 0.5, 1.5, 12.345, 33.333, 50.5, 66.667, 99.9, 99.999]) {
    for (let i = 0; i < 3; i++) add('fractional', pick(random, GROUPS), asciiId(random, 8), percentage);
  }

  // Boundaries: bucket == threshold - 1 is in, bucket == threshold is out.
  for (let i = 0; i < 8; i++) {
    const groupId = pick(random, GROUPS);
    const id = asciiId(random, 10);
    const b = oracleBucket(oracleHash(groupId, id));
    if (b < 99_999) add('boundary', groupId, id, (b + 1) / 1000, 'bucket == threshold - 1: in');
    if (b > 0) add('boundary', groupId, id, b / 1000, 'bucket == threshold: out');
  }
  const first = findId('new-checkout', 'b0-', (b) => b === 0);
  const last = findId('new-checkout', 'b99999-', (b) => b === 99_999);
  const nextToLast = findId('new-checkout', 'b99998-', (b) => b === 99_998);
  add('boundary', 'new-checkout', first, 0.001, 'bucket 0: the only bucket in at 0.001%');
  add('boundary', 'new-checkout', first, 0, 'bucket 0 at 0%: nobody is in');
  add('boundary', 'new-checkout', last, 99.999, 'bucket 99999: the only bucket out at 99.999%');
  add('boundary', 'new-checkout', last, 100, 'bucket 99999 at 100%: everybody is in');
  add('boundary', 'new-checkout', nextToLast, 99.999, 'bucket 99998: in at 99.999%');
  for (const id of [first, 'user-42', 'ab']) add('boundary', 'async-reports', id, 0, '0%: nobody is in');
  for (const id of [last, 'user-42', 'ab']) add('boundary', 'async-reports', id, 100, '100%: everybody is in');
  // Whole-percentage (Unleash) boundaries: h % 100 == p - 1 is in, h % 100 == p is out.
  for (const p of [1, 50, 99]) {
    const inside = findId('search.v2', `p${p}-in-`, (b) => Math.floor(b / 1000) === p - 1);
    const outside = findId('search.v2', `p${p}-out-`, (b) => Math.floor(b / 1000) === p);
    add('boundary', 'search.v2', inside, p, `h % 100 == ${p - 1}: Unleash normalized value ${p} <= ${p}, in`);
    add('boundary', 'search.v2', outside, p, `h % 100 == ${p}: Unleash normalized value ${p + 1} > ${p}, out`);
  }

  // Different groupIds: the same units land in unrelated buckets per group.
  for (const groupId of ['flag-a', 'flag-b', 'checkout-v2', 'checkout-v2-2', 'Feature.B3']) {
    for (const id of ['user-1', 'user-2', 'user-3', 'user-4', 'user-5']) add('group', groupId, id, 50);
  }

  // Anchors from the Unleash client specification (github.com/Unleash/client-specification).
  add('unleash', 'AB12A', '122', 50, 'spec 03/04: Feature.B3 enabled for userId=122 (B4: sessionId=122)');
  add('unleash', 'AB12A', '155', 50, 'spec 03/04: Feature.B3 disabled for userId=155 (B4: sessionId=155)');
  add('unleash', 'AB12A', '123', 100, 'spec 03: Feature.A3 enabled at 100%');
  add('unleash', 'Feature.flexibleRollout.10', '174', 10, 'spec 10: enabled for userId=174 / sessionId=174');
  add('unleash', 'Feature.flexibleRollout.10', '499', 10, 'spec 10: disabled for userId=499 / sessionId=499');
  add('unleash', 'Feature.flexibleRollout.userId.55', '25', 55, 'spec 10: enabled for userId=25');
  add('unleash', 'Feature.flexibleRollout.sessionId.42', '147', 42, 'spec 10: enabled for sessionId=147');
  add('unleash', 'Feature.flexible.rollout.custom.stickiness_50', '402', 50, 'spec 12: disabled for customField=402');
  add('unleash', 'Feature.flexible.rollout.custom.stickiness_50', '388', 50, 'spec 12: enabled for customField=388');
  add('unleash', 'Feature.flexible.rollout.custom.stickiness_50', '39', 50, 'spec 12: enabled for customField=39');

  return {
    description:
      'Golden vectors for the Rampart bucketing rule (docs/bucketing.md). Every SDK port must reproduce hash, bucket, ' +
      'threshold and expected for every case. Generated by scripts/gen-bucketing-vectors.ts with an oracle independent ' +
      'of sdk/src/bucketing.ts (murmurhash-js over UTF-8 bytes); do not edit by hand.',
    rule: {
      key: 'groupId + ":" + unitId, encoded as UTF-8 (no Unicode normalisation). groupId defaults to the flag key; unitId is the value of the flag\'s stickiness attribute (default userId).',
      hash: 'h = MurmurHash3_x86_32(key bytes, seed 0), an unsigned 32-bit integer',
      bucket: 'bucket = (h % 100) * 1000 + floor((h % 100000) / 100), an integer in 0..99999',
      threshold: 'threshold = round(percentage * 1000); percentage is in [0, 100] with at most 3 decimals',
      decision: 'in = enabled && percentage > 0 && unitId is present (non-empty) && bucket < threshold',
      unleash: 'for whole percentages p, bucket < p * 1000 <=> h % 100 + 1 <= p: the users of Unleash gradual/flexible rollout',
    },
    notes: {
      expected: 'expected is the decision for an enabled flag (enabled = true). An empty unitId is "no unit": expected is false at any percentage; the SDK then returns the caller\'s default value with reason DEFAULT.',
      loneSurrogates:
        'Cases of kind "lone-surrogate" hold unpaired UTF-16 surrogates (JSON escapes such as \\ud800). They are hashed as U+FFFD (bytes EF BF BD), exactly as TextEncoder and Node\'s Buffer encode them; each note gives the equivalent string with \\ufffd. A language whose JSON parser rejects lone surrogates (e.g. Rust serde_json) or whose strings cannot hold them may skip this kind or substitute U+FFFD: the bytes, and so the hash, are the same.',
      longIds: 'Long ids are stored literally, at most 10,000 UTF-16 code units (10,000 UTF-8 bytes) each, so ports need no expansion step; they make up about half of this file (about 100 kB).',
      percentages: 'Percentages are JSON numbers with at most 3 decimals; compute the threshold with round(percentage * 1000) in double precision, or parse the decimal exactly.',
      sharedKeys: 'The key is a plain concatenation, so groupId "a:b" with unitId "c" and groupId "a" with unitId "b:c" hash alike (see the "a:b:c" cases).',
    },
    fields: {
      kind: 'what the case exercises: ascii, latin1, cjk, cyrillic, other-script, emoji, random-unicode, lone-surrogate, empty, long, fractional, boundary, group, unleash',
      groupId: 'hash salt (the flag key unless the flag sets groupId)',
      unitId: 'the unit id (value of the stickiness attribute)',
      hash: 'uint32 MurmurHash3_x86_32 of the key',
      bucket: 'integer 0..99999',
      percentage: 'rollout percentage',
      threshold: 'round(percentage * 1000)',
      expected: 'whether the unit is in for an enabled flag',
      note: 'optional: why the case is there',
    },
    generator: 'node --import tsx scripts/gen-bucketing-vectors.ts (deterministic: seeded mulberry32 PRNG; --check verifies the committed file)',
    cases,
  };
}

/** JSON with one case per line: small diffs, still plain JSON for any parser. */
export function formatVectors(file: BucketingVectorsFile): string {
  const { cases, ...header } = file;
  const head = JSON.stringify(header, null, 2).replace(/\n}$/, '');
  const body = cases.map((c) => `    ${JSON.stringify(c)}`).join(',\n');
  return `${head},\n  "cases": [\n${body}\n  ]\n}\n`;
}

export const VECTORS_PATH = fileURLToPath(new URL('../test/fixtures/bucketing-vectors.json', import.meta.url));

function main(): void {
  const text = formatVectors(buildVectors());
  if (process.argv.includes('--check')) {
    const current = readFileSync(VECTORS_PATH, 'utf8');
    if (current !== text) {
      process.stderr.write(`${VECTORS_PATH} is out of date: run node --import tsx scripts/gen-bucketing-vectors.ts\n`);
      process.exitCode = 1;
    }
    return;
  }
  writeFileSync(VECTORS_PATH, text);
  process.stdout.write(`wrote ${VECTORS_PATH}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main();
