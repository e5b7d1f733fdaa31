import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import murmurhash from 'murmurhash-js';
import { normalizedStrategyValue } from 'unleash-client/lib/strategy/util.js';
import { describe, expect, it } from 'vitest';
import { BUCKET_COUNT, bucket, bucketWithPrefix, evaluateFlag, hashPrefix, hashUnit, isValidPercentage, percentageToThousandths } from '@rampart/sdk';
import { VECTORS_PATH, buildVectors, formatVectors, oracleBucket, oracleHash } from '../../scripts/gen-bucketing-vectors.js';
import type { BucketingVectorsFile, VectorKind } from '../../scripts/gen-bucketing-vectors.js';

const vectorsText = readFileSync(VECTORS_PATH, 'utf8');
const vectors = JSON.parse(vectorsText) as BucketingVectorsFile;

/** The oracle on a string that is already one char per byte (ASCII). */
const murmurAscii = (s: string): number => murmurhash.murmur3(s, 0);

/** Chi-square critical value, 99 degrees of freedom, p = 0.001. */
const CHI2_99_P001 = 148.23;

function chiSquare(counts: readonly number[], total: number): number {
  const expected = total / counts.length;
  return counts.reduce((sum, c) => sum + (c - expected) ** 2 / expected, 0);
}

/** Strings of arbitrary UTF-16 code units: lone surrogates included. */
const utf16String = fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 40 });
const asciiString = fc.string({ unit: fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)), maxLength: 40 });
/** Percentages with at most three decimals, as a flag holds them. */
const thousandths = fc.integer({ min: 0, max: BUCKET_COUNT });

const isIn = (groupId: string, unitId: string, percentage: number): boolean =>
  bucket(groupId, unitId) < percentageToThousandths(percentage);

describe('bucketing vectors (test/fixtures/bucketing-vectors.json)', () => {
  const kinds = [...new Set(vectors.cases.map((c) => c.kind))];

  it('holds at least 250 cases covering every kind of input', () => {
    expect(vectors.cases.length).toBeGreaterThanOrEqual(250);
    const required: VectorKind[] = ['ascii', 'latin1', 'cjk', 'cyrillic', 'emoji', 'random-unicode', 'lone-surrogate',
      'empty', 'long', 'fractional', 'boundary', 'group', 'unleash'];
    expect(kinds).toEqual(expect.arrayContaining(required));
    expect(vectors.cases.some((c) => c.unitId.length === 10_000)).toBe(true);
    expect(vectors.cases.some((c) => c.expected)).toBe(true);
    expect(vectors.cases.some((c) => !c.expected)).toBe(true);
  });

  it('is exactly what scripts/gen-bucketing-vectors.ts writes (nobody edited it by hand)', () => {
    expect(formatVectors(buildVectors()) === vectorsText).toBe(true);
  });

  it('includes bucket == threshold - 1 (in), bucket == threshold (out), 0% and 100%', () => {
    const cases = vectors.cases;
    expect(cases.some((c) => c.bucket === c.threshold - 1 && c.expected)).toBe(true);
    expect(cases.some((c) => c.bucket === c.threshold && !c.expected && c.threshold % 1000 !== 0)).toBe(true);
    expect(cases.some((c) => c.percentage === 0 && c.bucket === 0 && !c.expected)).toBe(true);
    expect(cases.some((c) => c.percentage === 100 && c.bucket === 99_999 && c.expected)).toBe(true);
    for (const p of [0.001, 12.345, 99.999]) expect(cases.some((c) => c.percentage === p)).toBe(true);
  });

  it.each(kinds)('matches hashUnit, bucket and percentageToThousandths for every "%s" case', (kind) => {
    const mismatches = vectors.cases
      .filter((c) => c.kind === kind)
      .filter((c) =>
        hashUnit(c.groupId, c.unitId) !== c.hash ||
        bucket(c.groupId, c.unitId) !== c.bucket ||
        percentageToThousandths(c.percentage) !== c.threshold ||
        !isValidPercentage(c.percentage),
      )
      .map((c) => `${JSON.stringify(c.groupId)}:${JSON.stringify(c.unitId.slice(0, 40))} @ ${c.percentage}`);
    expect(mismatches).toEqual([]);
  });

  it.each(kinds)('decides every "%s" case as expected through evaluateFlag with an enabled flag', (kind) => {
    const mismatches = vectors.cases
      .filter((c) => c.kind === kind)
      .filter((c) => {
        const result = evaluateFlag('any-key', { enabled: true, percentage: c.percentage, groupId: c.groupId }, { userId: c.unitId });
        return result.value !== c.expected;
      })
      .map((c) => `${JSON.stringify(c.groupId)}:${JSON.stringify(c.unitId.slice(0, 40))} @ ${c.percentage}`);
    expect(mismatches).toEqual([]);
  });

  it('hashes a lone surrogate exactly like U+FFFD, as TextEncoder encodes it', () => {
    const lone = vectors.cases.filter((c) => c.kind === 'lone-surrogate');
    expect(lone.length).toBeGreaterThan(0);
    for (const c of lone) {
      const replaced = c.unitId.replace(/[\ud800-\udfff]/g, '\ufffd');
      expect(Buffer.from(new TextEncoder().encode(c.unitId))).toEqual(Buffer.from(replaced, 'utf8'));
      expect(hashUnit(c.groupId, c.unitId)).toBe(hashUnit(c.groupId, replaced));
    }
  });
});

describe('hashUnit', () => {
  it('agrees with published MurmurHash3_x86_32 values through the oracle it is checked against', () => {
    // The oracle itself, against reference values (seed 0 unless given).
    expect(murmurhash.murmur3('', 0)).toBe(0);
    expect(murmurhash.murmur3('', 1)).toBe(0x514e28b7);
    expect(murmurhash.murmur3('test', 0)).toBe(0xba6bd213);
    expect(murmurhash.murmur3('The quick brown fox jumps over the lazy dog', 0)).toBe(0x2e4ff723);
    expect(murmurhash.murmur3('Hello, world!', 0x9747b28c)).toBe(0x24884cba);
  });

  it('equals murmurhash-js on groupId:unitId for random ASCII strings', () => {
    fc.assert(
      fc.property(asciiString, asciiString, (g, u) => hashUnit(g, u) === murmurAscii(`${g}:${u}`)),
      { numRuns: 2000 },
    );
  });

  it('equals murmurhash-js over the UTF-8 bytes (as latin1) for random full-Unicode strings', () => {
    const unicode = fc.oneof(fc.string({ unit: 'binary', maxLength: 30 }), fc.string({ unit: 'grapheme', maxLength: 20 }), utf16String);
    fc.assert(
      fc.property(unicode, unicode, (g, u) => hashUnit(g, u) === oracleHash(g, u)),
      { numRuns: 3000 },
    );
  });

  it('gives the numbers of the worked example in docs/bucketing.md', () => {
    expect(hashUnit('new-checkout', 'user-42')).toBe(0x595ce766);
    expect(hashUnit('new-checkout', 'user-42')).toBe(1_499_260_774);
    expect(bucket('new-checkout', 'user-42')).toBe(74_607);
    expect([10, 50, 74.607, 74.608, 75, 100].map((p) => isIn('new-checkout', 'user-42', p))).toEqual([false, false, false, true, true, true]);
    expect(hashUnit('new-checkout', 'José')).toBe(0x656f3b8c);
    expect(bucket('new-checkout', 'José')).toBe(56_885);
    expect(murmurAscii('new-checkout:José')).toBe(1_782_871_933);
    expect(hashUnit('AB12A', '122')).toBe(0x3f4e7e32);
    expect(bucket('AB12A', '122')).toBe(22_087);
  });

  it('hashes UTF-8 bytes, not UTF-16 char codes truncated to a byte', () => {
    // "ÿ" is U+00FF: a charCode-truncating hash reads byte FF, UTF-8 reads C3 BF.
    expect(hashUnit('g', 'ÿ')).toBe(murmurAscii('g:\u00c3\u00bf'));
    expect(hashUnit('g', 'ÿ')).not.toBe(murmurAscii('g:ÿ'));
  });

  it('returns the same value for the same input however calls are interleaved', () => {
    fc.assert(
      fc.property(utf16String, utf16String, utf16String, utf16String, (g1, u1, g2, u2) => {
        const first = hashUnit(g1, u1);
        hashUnit(g2, u2);
        return hashUnit(g1, u1) === first && bucket(g1, u1) === oracleBucket(first);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('bucket', () => {
  it('is an integer in 0..99999 whose thousands are h % 100', () => {
    fc.assert(
      fc.property(utf16String, utf16String, (g, u) => {
        const b = bucket(g, u);
        return Number.isInteger(b) && b >= 0 && b < BUCKET_COUNT && Math.floor(b / 1000) === hashUnit(g, u) % 100;
      }),
      { numRuns: 2000 },
    );
    expect(BUCKET_COUNT).toBe(100_000);
  });

  it('only adds users when the percentage goes up (in at p1 implies in at p2 >= p1)', () => {
    fc.assert(
      fc.property(utf16String, utf16String, thousandths, thousandths, (g, u, t1, t2) => {
        const [lo, hi] = t1 <= t2 ? [t1, t2] : [t2, t1];
        const flag = (t: number) => ({ enabled: true, percentage: t / 1000, groupId: g });
        const inLo = evaluateFlag('k', flag(lo), { userId: u }).value;
        const inHi = evaluateFlag('k', flag(hi), { userId: u }).value;
        return !inLo || inHi;
      }),
      { numRuns: 3000 },
    );
  });

  it('selects exactly the users of Unleash gradual rollout (h % 100 + 1 <= p) at whole percentages', () => {
    fc.assert(
      fc.property(utf16String, utf16String, fc.integer({ min: 0, max: 100 }), (g, u, p) =>
        isIn(g, u, p) === (oracleHash(g, u) % 100) + 1 <= p,
      ),
      { numRuns: 3000 },
    );
  });

  it("agrees with unleash-client's own normalizedStrategyValue at whole percentages for ASCII ids", () => {
    fc.assert(
      fc.property(asciiString, asciiString, fc.integer({ min: 0, max: 100 }), (g, u, p) =>
        isIn(g, u, p) === normalizedStrategyValue(u, g) <= p,
      ),
      { numRuns: 3000 },
    );
  });

  it('differs from unleash-client (Node) for non-ASCII ids, because that client hashes char codes, not UTF-8', () => {
    // Documented in docs/bucketing.md: Rampart follows the UTF-8 bytes.
    const g = 'AB12A';
    const differing = ['José', 'пользователь', '用户', '🙂', 'Zoë'].filter(
      (u) => normalizedStrategyValue(u, g) !== (hashUnit(g, u) % 100) + 1,
    );
    expect(differing.length).toBeGreaterThan(0);
  });

  it('puts two flags with different groupIds into independent cohorts (overlap close to p1 * p2)', () => {
    const n = 200_000;
    const ids = Array.from({ length: n }, (_, i) => `user-${i}`);
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 12 }),
        fc.string({ minLength: 1, maxLength: 12 }),
        fc.integer({ min: 5_000, max: 95_000 }),
        fc.integer({ min: 5_000, max: 95_000 }),
        (g1, g2, t1, t2) => {
          fc.pre(g1 !== g2);
          let both = 0;
          for (const id of ids) if (bucket(g1, id) < t1 && bucket(g2, id) < t2) both++;
          const q = (t1 / BUCKET_COUNT) * (t2 / BUCKET_COUNT);
          // Binomial: sd of the overlap fraction is sqrt(q(1-q)/n), at most 0.0011 here; 5 sd
          // leaves a false alarm of about 6e-7 per run.
          const sd = Math.sqrt((q * (1 - q)) / n);
          expect(Math.abs(both / n - q)).toBeLessThan(5 * sd);
        },
      ),
      { numRuns: 4 },
    );
  });

  it('nests the cohorts of flags that share a groupId (the smaller rollout is inside the larger)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), thousandths, thousandths, (g, t1, t2) => {
        const [lo, hi] = t1 <= t2 ? [t1, t2] : [t2, t1];
        for (let i = 0; i < 2000; i++) {
          const b = bucket(g, `user-${i}`);
          if (b < lo && !(b < hi)) return false;
        }
        return true;
      }),
      { numRuns: 30 },
    );
  });

  it('spreads 1,000,000 ids uniformly: chi-square over h % 100, the 100 bucket ranges and the sub-bucket digits < 148.23', () => {
    const n = 1_000_000;
    const coarse = new Array<number>(100).fill(0);
    const ranges = new Array<number>(100).fill(0);
    const fine = new Array<number>(100).fill(0);
    for (let i = 0; i < n; i++) {
      const id = `user-${i}`;
      const h = hashUnit('uniformity', id);
      const b = bucket('uniformity', id);
      coarse[h % 100]! += 1;
      ranges[Math.floor(b / 1000)]! += 1;
      // Fractional percentages cut inside a coarse bucket, so its 1000 slots must be uniform too.
      fine[Math.floor((b % 1000) / 10)]! += 1;
    }
    // The 100 equal ranges of 0..99999 are the coarse buckets by construction.
    expect(ranges).toEqual(coarse);
    expect(chiSquare(coarse, n)).toBeLessThan(CHI2_99_P001);
    expect(chiSquare(ranges, n)).toBeLessThan(CHI2_99_P001);
    expect(chiSquare(fine, n)).toBeLessThan(CHI2_99_P001);
  });
});

describe('percentageToThousandths and isValidPercentage', () => {
  it('maps every three-decimal percentage t / 1000 to exactly t and accepts it', () => {
    for (let t = 0; t <= BUCKET_COUNT; t++) {
      const p = t / 1000;
      if (percentageToThousandths(p) !== t || !isValidPercentage(p)) expect.fail(`percentage ${p}`);
    }
    expect(percentageToThousandths(12.345)).toBe(12_345);
    expect(percentageToThousandths(0.001)).toBe(1);
    expect(percentageToThousandths(100)).toBe(100_000);
  });

  it.each([0, 0.001, 33.333, 100])('accepts %s', (p) => {
    expect(isValidPercentage(p)).toBe(true);
  });

  it.each([-1, 100.0001, 1.0005, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0.001])('rejects %s', (p) => {
    expect(isValidPercentage(p)).toBe(false);
  });
});

describe('bucketWithPrefix (the SDK hot path)', () => {
  it('equals bucket(groupId, unitId) for every golden vector', () => {
    const file = JSON.parse(readFileSync(VECTORS_PATH, 'utf8')) as BucketingVectorsFile;
    for (const c of file.cases) expect(bucketWithPrefix(hashPrefix(c.groupId), c.unitId)).toBe(c.bucket);
  });

  it('equals bucket(groupId, unitId) for arbitrary unicode groupIds and unit ids, one prefix reused', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 20 }), (groupId, units) => {
        const prefix = hashPrefix(groupId);
        for (const unit of units) expect(bucketWithPrefix(prefix, unit)).toBe(bucket(groupId, unit));
      }),
      { numRuns: 500 },
    );
  });
});
