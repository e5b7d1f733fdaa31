// The prepared OFREP answers against the SDK's evaluateFlag: same outcome for any config and context.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucket, evaluateFlag } from '@rampart/sdk';
import type { EvaluationContext, FlagConfig } from '@rampart/sdk';
import { JsonBytes, prepareFlag, unitsOf } from '../../src/api/ofrep-answers.js';
import type { PreparedFlag } from '../../src/api/ofrep-answers.js';

/** One answer as text, starting from a deliberately small buffer so growth is exercised too. */
function answer(flag: PreparedFlag, ctx: EvaluationContext): { json: string; errorCode?: undefined } | { errorCode: string } {
  const out = new JsonBytes(8);
  const errorCode = flag.writeAnswer(unitsOf(ctx), out);
  if (errorCode !== undefined) {
    expect(out.length).toBe(0);
    return { errorCode };
  }
  expect(out.length).toBeLessThanOrEqual(flag.maxBytes);
  return { json: out.text() };
}

const key = fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/);
const percentage = fc.oneof(fc.constantFrom(0, 0.001, 12.345, 50, 99.999, 100), fc.integer({ min: 0, max: 100 }), fc.double({ min: -5, max: 105, noNaN: false }));
const config: fc.Arbitrary<FlagConfig> = fc.record(
  {
    enabled: fc.boolean(),
    percentage,
    stickiness: fc.constantFrom('userId', 'tenantId', 'sessionId'),
    groupId: fc.oneof(key, fc.string()),
  },
  { requiredKeys: ['enabled', 'percentage'] },
);
const unit = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.constant(''), fc.constant(null), fc.boolean());
const context: fc.Arbitrary<EvaluationContext> = fc.oneof(
  fc.string(),
  fc.record({ userId: unit, tenantId: unit, plan: fc.string() }, { requiredKeys: [] }) as fc.Arbitrary<EvaluationContext>,
);

describe('prepareFlag', () => {
  it('answers exactly what evaluateFlag decides, as OFREP JSON with the revision and the bucket', () => {
    fc.assert(
      fc.property(key, config, fc.nat(), context, (flagKey, flagConfig, revision, ctx) => {
        const expected = evaluateFlag(flagKey, flagConfig, ctx);
        const answered = answer(prepareFlag(flagKey, flagConfig, revision), ctx);
        if (expected.errorCode !== undefined) {
          expect(answered).toEqual({ errorCode: expected.errorCode });
          return;
        }
        expect(answered.errorCode).toBeUndefined();
        expect(JSON.parse((answered as { json: string }).json)).toEqual({
          key: flagKey,
          value: expected.value,
          reason: expected.reason,
          variant: expected.value ? 'on' : 'off',
          metadata: expected.bucket === undefined ? { revision } : { revision, bucket: expected.bucket },
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('agrees at the exact boundary: a unit whose bucket equals the threshold is out, one below is in', () => {
    fc.assert(
      fc.property(key, fc.string({ minLength: 1 }), (flagKey, userId) => {
        const b = bucket(flagKey, userId);
        for (const threshold of [b, b + 1]) {
          const flagConfig = { enabled: true, percentage: threshold / 1000 };
          const json = (answer(prepareFlag(flagKey, flagConfig, 1), { userId }) as { json: string }).json;
          expect(JSON.parse(json)).toMatchObject({ value: evaluateFlag(flagKey, flagConfig, { userId }).value, metadata: { bucket: b } });
          expect(JSON.parse(json)).toMatchObject({ value: threshold > b });
        }
      }),
      { numRuns: 500 },
    );
  });

  it('serves many contexts from one preparation, each with its own bucket', () => {
    const flag = prepareFlag('new-checkout', { enabled: true, percentage: 25 }, 7);
    expect(answer(flag, { userId: 'user-42' })).toEqual({
      json: '{"key":"new-checkout","value":false,"reason":"SPLIT","variant":"off","metadata":{"revision":7,"bucket":74607}}',
    });
    const buckets = new Set(Array.from({ length: 50 }, (_, i) => (answer(flag, { userId: `u-${i}` }) as { json: string }).json));
    expect(buckets.size).toBe(50);
  });
});

describe('JsonBytes', () => {
  it('writes integers in decimal and grows past its size hint', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.constantFrom(0, 9, 10, 99, 100, 99_999, 100_000), fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), { maxLength: 40 }), (numbers) => {
        const out = new JsonBytes(1);
        out.append(Buffer.from('['));
        numbers.forEach((n, i) => {
          if (i > 0) out.append(Buffer.from(','));
          out.integer(n, i % 2 === 0 ? Buffer.from(' ') : undefined);
        });
        out.append(Buffer.from(']'));
        expect(out.bytes().toString()).toBe(`[${numbers.map((n, i) => (i % 2 === 0 ? `${n} ` : String(n))).join(',')}]`);
      }),
    );
  });

  it('names the failure of a flag that cannot answer a context, as the OFREP failure document', () => {
    const flag = prepareFlag('needs-user', { enabled: true, percentage: 50 }, 3);
    expect(answer(flag, {})).toEqual({ errorCode: 'TARGETING_KEY_MISSING' });
    expect(JSON.parse(flag.failureBytes('TARGETING_KEY_MISSING').toString())).toEqual({
      key: 'needs-user',
      errorCode: 'TARGETING_KEY_MISSING',
      errorDetails: "flag 'needs-user' needs a targetingKey (or its stickiness attribute) in the context",
    });
  });
});
