import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bucket, evaluate, evaluateFlag } from '@rampart/sdk';
import type { EvaluationContext, FlagConfig, FlagSnapshot } from '@rampart/sdk';

const snapshotOf = (flags: Record<string, FlagConfig>): FlagSnapshot => ({ revision: 7, flags });

/** Lets a test hand evaluate() what a JavaScript caller or a corrupt payload could. */
const corrupt = (value: unknown): never => value as never;

/** A user id whose bucket for `groupId` is below / at-or-above `threshold`. */
function userWithBucket(groupId: string, test: (b: number) => boolean): string {
  for (let i = 0; ; i++) if (test(bucket(groupId, `user-${i}`))) return `user-${i}`;
}

describe('evaluate: reason DISABLED', () => {
  it('resolves to false with reason DISABLED when the toggle is off, even at 100%', () => {
    const snapshot = snapshotOf({ checkout: { enabled: false, percentage: 100 } });
    expect(evaluate(snapshot, 'checkout', 'user-42')).toEqual({ value: false, reason: 'DISABLED' });
  });

  it('ignores defaultValue true when the toggle is off: off means off', () => {
    const snapshot = snapshotOf({ checkout: { enabled: false, percentage: 50 } });
    expect(evaluate(snapshot, 'checkout', 'user-42', true)).toEqual({ value: false, reason: 'DISABLED' });
    expect(evaluate(snapshot, 'checkout', {}, true)).toEqual({ value: false, reason: 'DISABLED' });
  });
});

describe('evaluate: reason SPLIT', () => {
  it('resolves with reason SPLIT and the bucket of flagKey:userId when the user id is present', () => {
    const snapshot = snapshotOf({ checkout: { enabled: true, percentage: 25 } });
    const result = evaluate(snapshot, 'checkout', { userId: 'user-42' });
    const b = bucket('checkout', 'user-42');
    expect(result).toEqual({ value: b < 25_000, reason: 'SPLIT', bucket: b });
  });

  it('is true when the bucket is one below the threshold and false when it equals it', () => {
    const inside = userWithBucket('checkout', (b) => b % 1000 !== 999 && b < 99_999);
    const b = bucket('checkout', inside);
    const at = (thousandths: number) => evaluate(snapshotOf({ checkout: { enabled: true, percentage: thousandths / 1000 } }), 'checkout', inside);
    expect(at(b + 1)).toEqual({ value: true, reason: 'SPLIT', bucket: b });
    expect(at(b)).toEqual({ value: false, reason: 'SPLIT', bucket: b });
  });

  it('is true for every user at 100% and false for every user at 0%, both with reason SPLIT', () => {
    const all = snapshotOf({ full: { enabled: true, percentage: 100 }, none: { enabled: true, percentage: 0 } });
    for (let i = 0; i < 500; i++) {
      expect(evaluate(all, 'full', `user-${i}`)).toMatchObject({ value: true, reason: 'SPLIT' });
      expect(evaluate(all, 'none', `user-${i}`, true)).toMatchObject({ value: false, reason: 'SPLIT' });
    }
  });

  it('resolves to false with reason SPLIT and no bucket at 0% even without a unit id', () => {
    const snapshot = snapshotOf({ dark: { enabled: true, percentage: 0 } });
    expect(evaluate(snapshot, 'dark', {}, true)).toEqual({ value: false, reason: 'SPLIT' });
    expect(evaluate(snapshot, 'dark', '', true)).toEqual({ value: false, reason: 'SPLIT' });
  });

  it('salts the hash with groupId instead of the flag key when the flag sets one', () => {
    const snapshot = snapshotOf({ checkout: { enabled: true, percentage: 50, groupId: 'payments-q3' } });
    expect(evaluate(snapshot, 'checkout', 'user-42').bucket).toBe(bucket('payments-q3', 'user-42'));
  });

  it('gives two flags that share a groupId the same bucket for every user', () => {
    const snapshot = snapshotOf({
      'checkout-ui': { enabled: true, percentage: 10, groupId: 'checkout' },
      'checkout-api': { enabled: true, percentage: 30, groupId: 'checkout' },
    });
    for (let i = 0; i < 200; i++) {
      const ui = evaluate(snapshot, 'checkout-ui', `user-${i}`);
      const api = evaluate(snapshot, 'checkout-api', `user-${i}`);
      expect(ui.bucket).toBe(api.bucket);
      if (ui.value) expect(api.value).toBe(true);
    }
  });

  it('treats a plain string context as the userId', () => {
    const snapshot = snapshotOf({ checkout: { enabled: true, percentage: 50 } });
    for (let i = 0; i < 100; i++) {
      expect(evaluate(snapshot, 'checkout', `user-${i}`)).toEqual(evaluate(snapshot, 'checkout', { userId: `user-${i}` }));
    }
  });

  it('buckets by the custom stickiness attribute, so all users of one tenant get the same answer', () => {
    const snapshot = snapshotOf({ reports: { enabled: true, percentage: 50, stickiness: 'tenantId' } });
    const results = ['u-1', 'u-2', 'u-3'].map((userId) => evaluate(snapshot, 'reports', { userId, tenantId: 't-7' }));
    for (const result of results) expect(result).toEqual({ value: bucket('reports', 't-7') < 50_000, reason: 'SPLIT', bucket: bucket('reports', 't-7') });
  });

  it('resolves to the default with TARGETING_KEY_MISSING when a flag with custom stickiness gets a plain string', () => {
    const snapshot = snapshotOf({ reports: { enabled: true, percentage: 50, stickiness: 'tenantId' } });
    expect(evaluate(snapshot, 'reports', 'user-42', true)).toEqual({ value: true, reason: 'DEFAULT', errorCode: 'TARGETING_KEY_MISSING' });
  });

  it('uses a finite numeric attribute as its decimal string: { userId: 42 } is "42" and 0 is a real id', () => {
    const snapshot = snapshotOf({ checkout: { enabled: true, percentage: 50 } });
    expect(evaluate(snapshot, 'checkout', { userId: corrupt(42) })).toEqual(evaluate(snapshot, 'checkout', '42'));
    expect(evaluate(snapshot, 'checkout', { userId: corrupt(1.5) })).toEqual(evaluate(snapshot, 'checkout', '1.5'));
    expect(evaluate(snapshot, 'checkout', { userId: corrupt(0) })).toEqual(evaluate(snapshot, 'checkout', '0'));
    expect(evaluate(snapshot, 'checkout', { accountNo: 9001 })).toMatchObject({ reason: 'DEFAULT' });
    const byAccount = snapshotOf({ checkout: { enabled: true, percentage: 50, stickiness: 'accountNo' } });
    expect(evaluate(byAccount, 'checkout', { accountNo: 9001 }).bucket).toBe(bucket('checkout', '9001'));
  });
});

describe('evaluate: reason DEFAULT', () => {
  const snapshot = snapshotOf({ checkout: { enabled: true, percentage: 50 } });

  it('resolves to the default with FLAG_NOT_FOUND for a key the snapshot does not have', () => {
    expect(evaluate(snapshot, 'missing', 'user-42')).toEqual({ value: false, reason: 'DEFAULT', errorCode: 'FLAG_NOT_FOUND' });
    expect(evaluate(snapshot, 'missing', 'user-42', true)).toEqual({ value: true, reason: 'DEFAULT', errorCode: 'FLAG_NOT_FOUND' });
  });

  it('resolves to the default with FLAG_NOT_FOUND when there is no snapshot yet', () => {
    expect(evaluate(undefined, 'checkout', 'user-42', true)).toEqual({ value: true, reason: 'DEFAULT', errorCode: 'FLAG_NOT_FOUND' });
  });

  it.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'])(
    'resolves to the default with FLAG_NOT_FOUND for "%s", which exists on Object.prototype',
    (key) => {
      expect(evaluate(snapshot, key, 'user-42')).toEqual({ value: false, reason: 'DEFAULT', errorCode: 'FLAG_NOT_FOUND' });
      expect(evaluate(snapshot, key, 'user-42', true)).toEqual({ value: true, reason: 'DEFAULT', errorCode: 'FLAG_NOT_FOUND' });
    },
  );

  it('finds a flag literally named "__proto__" when a parsed snapshot has it as an own key', () => {
    const parsed = JSON.parse('{"revision":1,"flags":{"__proto__":{"enabled":true,"percentage":100}}}') as FlagSnapshot;
    expect(evaluate(parsed, '__proto__', 'user-42')).toMatchObject({ value: true, reason: 'SPLIT' });
  });

  it.each<[string, unknown]>([
    ['an empty string', ''],
    ['an empty object', {}],
    ['an empty userId', { userId: '' }],
    ['a null context', null],
    ['an undefined context', undefined],
    ['userId null', { userId: null }],
    ['userId NaN', { userId: Number.NaN }],
    ['userId Infinity', { userId: Number.POSITIVE_INFINITY }],
    ['userId true', { userId: true }],
    ['userId an object', { userId: { id: 'user-42' } }],
    ['only a sessionId', { sessionId: 's-1' }],
    ['userId only on the prototype', Object.create({ userId: 'user-42' }) as unknown],
  ])('resolves to the default with TARGETING_KEY_MISSING for %s', (_name, context) => {
    const ctx: EvaluationContext = corrupt(context);
    expect(evaluate(snapshot, 'checkout', ctx)).toEqual({ value: false, reason: 'DEFAULT', errorCode: 'TARGETING_KEY_MISSING' });
    expect(evaluate(snapshot, 'checkout', ctx, true)).toEqual({ value: true, reason: 'DEFAULT', errorCode: 'TARGETING_KEY_MISSING' });
  });
});

describe('evaluate: reason ERROR', () => {
  it.each<[string, unknown]>([
    ['NaN', Number.NaN],
    ['150', 150],
    ['-1', -1],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['missing', undefined],
    ['a non-numeric string', 'half'],
  ])('resolves to the default with ERROR/PARSE_ERROR when the percentage is %s', (_name, percentage) => {
    const snapshot = snapshotOf({ checkout: { enabled: true, percentage: corrupt(percentage) } });
    for (const context of ['user-42', {}]) {
      expect(evaluate(snapshot, 'checkout', context)).toEqual({ value: false, reason: 'ERROR', errorCode: 'PARSE_ERROR' });
      expect(evaluate(snapshot, 'checkout', context, true)).toEqual({ value: true, reason: 'ERROR', errorCode: 'PARSE_ERROR' });
    }
  });

  it('resolves to the default with ERROR/GENERAL when the flag entry is null', () => {
    const snapshot = snapshotOf({ checkout: corrupt(null) });
    expect(evaluate(snapshot, 'checkout', 'user-42', true)).toEqual({ value: true, reason: 'ERROR', errorCode: 'GENERAL' });
  });

  it('resolves to the default with ERROR/GENERAL when reading the context throws', () => {
    const snapshot = snapshotOf({ checkout: { enabled: true, percentage: 50 } });
    const hostile = new Proxy({}, { getOwnPropertyDescriptor: () => { throw new Error('hostile'); } });
    expect(evaluate(snapshot, 'checkout', hostile, true)).toEqual({ value: true, reason: 'ERROR', errorCode: 'GENERAL' });
    const getter = Object.defineProperty({}, 'userId', { enumerable: true, get: () => { throw new Error('hostile'); } });
    expect(evaluateFlag('checkout', { enabled: true, percentage: 50 }, corrupt(getter))).toMatchObject({ reason: 'ERROR' });
  });
});

describe('evaluate never throws', () => {
  const flagLike = fc.oneof(
    fc.record(
      {
        enabled: fc.oneof(fc.boolean(), fc.anything()),
        percentage: fc.oneof(fc.double(), fc.integer({ min: 0, max: 100_000 }).map((t) => t / 1000), fc.anything()),
        groupId: fc.oneof(fc.string(), fc.anything()),
        stickiness: fc.oneof(fc.constantFrom('userId', 'sessionId', 'tenantId', '__proto__'), fc.anything()),
      },
      { requiredKeys: [] },
    ),
    fc.anything(),
  );
  const key = fc.oneof(fc.constantFrom('a', 'b', 'constructor', '__proto__', 'toString'), fc.string());
  const context = fc.oneof(
    fc.string(),
    fc.record({ userId: fc.anything(), sessionId: fc.anything(), tenantId: fc.anything() }, { requiredKeys: [] }),
    fc.anything({ withNullPrototype: true, withObjectString: true, withBoxedValues: true }),
  );

  it('returns a well-formed Evaluation for any flag config, key, context and default value', () => {
    fc.assert(
      fc.property(fc.dictionary(key, flagLike), key, context, fc.boolean(), (flags, flagKey, ctx, defaultValue) => {
        const result = evaluate(corrupt({ revision: 1, flags }), flagKey, corrupt(ctx), defaultValue);
        expect(['DISABLED', 'SPLIT', 'DEFAULT', 'ERROR']).toContain(result.reason);
        expect(typeof result.value).toBe('boolean');
        if (result.reason === 'DEFAULT' || result.reason === 'ERROR') expect(result.value).toBe(defaultValue);
        if (result.bucket !== undefined) expect(result.reason).toBe('SPLIT');
      }),
      { numRuns: 3000 },
    );
  });

  it('does not throw for anything at all as the flag, context and default value', () => {
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.anything(), (flag, ctx, defaultValue) => {
        evaluateFlag('k', corrupt(flag), corrupt(ctx), corrupt(defaultValue));
        evaluate(corrupt({ revision: 1, flags: { k: flag } }), 'k', corrupt(ctx));
      }),
      { numRuns: 2000 },
    );
  });

  it('resolves to the default instead of throwing when the snapshot itself is null or has no flags', () => {
    for (const snapshot of [null, {}, { revision: 1 }]) {
      expect(evaluate(corrupt(snapshot), 'checkout', 'user-42', true)).toMatchObject({ value: true });
    }
  });
});
