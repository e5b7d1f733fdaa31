import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { RampartClient, createClient, evaluate } from '@rampart/sdk';
import type { ChangeEvent, ClientOptions, EvaluationContext, FlagConfig, FlagSnapshot } from '@rampart/sdk';

const snapshot: FlagSnapshot = {
  revision: 12,
  flags: {
    'async-reports': { enabled: true, percentage: 50 },
    'new-checkout': { enabled: false, percentage: 100 },
    'tenant-search': { enabled: true, percentage: 33.333, stickiness: 'tenantId', groupId: 'search' },
  },
};

/** setSnapshot is protected: the networked client calls it; tests reach it through a subclass. */
class TestClient extends RampartClient {
  publish(next: FlagSnapshot): void {
    this.setSnapshot(next);
  }
}

/** Lets a test hand the client what a JavaScript caller or a corrupt payload could. */
const corrupt = (value: unknown): never => value as never;


describe('createClient', () => {
  it('returns a client whose isEnabled answers synchronously with a boolean', () => {
    const client = createClient({ bootstrap: snapshot, offline: true });
    const answer: unknown = client.isEnabled('async-reports', 'user-42');
    expect(typeof answer).toBe('boolean');
    expect(answer).toBe(evaluate(snapshot, 'async-reports', 'user-42').value);
    expect(client.isEnabled('new-checkout', 'user-42', true)).toBe(false);
    expect(client.isEnabled('missing', 'user-42', true)).toBe(true);
    expect(client.isEnabled('async-reports', {}, true)).toBe(true);
  });

  it.each<[string, ClientOptions]>([
    ['with a bootstrap but neither url nor offline', { bootstrap: snapshot }],
    ['with offline: false and no url', { bootstrap: snapshot, offline: false }],
    ['with no options at all', {}],
  ])('throws a TypeError that asks for a url or offline: true when called %s', (_name, options) => {
    expect(() => createClient(options)).toThrow(TypeError);
    expect(() => createClient(options)).toThrow(/needs a url, or a bootstrap with offline: true/);
  });

  it('reports status ready and the bootstrap revision', () => {
    const client = createClient({ bootstrap: snapshot, offline: true });
    expect(client.status).toBe('ready');
    expect(client.revision).toBe(12);
  });

  it('resolves ready() at once for an offline client with a bootstrap', async () => {
    await expect(createClient({ bootstrap: snapshot, offline: true }).ready()).resolves.toBeUndefined();
  });

  it('reports status error and revision -1, rejects ready() and answers the default without a bootstrap', async () => {
    const client = createClient({ offline: true });
    expect(client.status).toBe('error');
    expect(client.revision).toBe(-1);
    await expect(client.ready()).rejects.toThrow(/no flag configuration/);
    expect(client.isEnabled('async-reports', 'user-42', true)).toBe(true);
    expect(client.evaluate('async-reports', 'user-42')).toEqual({ value: false, reason: 'DEFAULT', errorCode: 'FLAG_NOT_FOUND' });
  });

  it('returns the same Evaluation from client.evaluate as evaluate() on the snapshot', () => {
    const client = createClient({ bootstrap: snapshot, offline: true });
    for (const ctx of ['user-1', { tenantId: 't-1' }, {}] as const) {
      for (const key of Object.keys(snapshot.flags)) expect(client.evaluate(key, ctx, true)).toEqual(evaluate(snapshot, key, ctx, true));
    }
  });
});

describe('isEnabled agrees with evaluate', () => {
  const percentage = fc.oneof(
    fc.integer({ min: 0, max: 100_000 }).map((t) => t / 1000),
    fc.constantFrom(0, 100, Number.NaN, 150, -1, Number.POSITIVE_INFINITY, corrupt(undefined)),
  );
  const flag: fc.Arbitrary<FlagConfig> = fc.record(
    {
      enabled: fc.boolean(),
      percentage,
      groupId: fc.oneof(fc.string(), fc.constantFrom('shared', '')),
      stickiness: fc.constantFrom('userId', 'sessionId', 'tenantId'),
    },
    { requiredKeys: ['enabled', 'percentage'] },
  );
  const keys = ['a', 'b', 'c', 'constructor', '__proto__', 'toString'];
  const key = fc.oneof(fc.constantFrom(...keys, 'not-there'), fc.string());
  const context: fc.Arbitrary<EvaluationContext> = fc.oneof(
    fc.string(),
    fc.record(
      {
        userId: fc.oneof(fc.string(), fc.integer().map(corrupt), fc.constant(corrupt(null))),
        sessionId: fc.string(),
        tenantId: fc.oneof(fc.string(), fc.double().map(corrupt)),
      },
      { requiredKeys: [] },
    ),
    fc.constant(corrupt(null)),
  );

  it('gives isEnabled(k, ctx, d) === evaluate(k, ctx, d).value for random flags, keys and contexts', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom(...keys), flag), key, context, fc.boolean(), (flags, k, ctx, d) => {
        const client = createClient({ bootstrap: { revision: 1, flags }, offline: true });
        expect(client.isEnabled(k, ctx, d)).toBe(client.evaluate(k, ctx, d).value);
        expect(client.isEnabled(k, ctx, d)).toBe(evaluate({ revision: 1, flags }, k, ctx, d).value);
      }),
      { numRuns: 3000 },
    );
  });

  it('gives false from isEnabled, as evaluate does, for a disabled flag with a malformed percentage and default true', () => {
    const bad: FlagSnapshot = { revision: 1, flags: { f: { enabled: false, percentage: Number.NaN } } };
    const client = createClient({ bootstrap: bad, offline: true });
    expect(evaluate(bad, 'f', 'user-42', true).value).toBe(false);
    expect(client.isEnabled('f', 'user-42', true)).toBe(false);
  });

  it('gives the default from both isEnabled and evaluate for a null flag entry, without throwing', () => {
    const bad = { revision: 1, flags: { f: null } } as unknown as FlagSnapshot;
    const client = createClient({ bootstrap: bad, offline: true });
    expect(client.isEnabled('f', 'user-42', true)).toBe(true);
    expect(evaluate(bad, 'f', 'user-42', true).value).toBe(true);
  });
});

describe('change events', () => {
  it('fires change with the changed flag keys and the new revision when the snapshot is replaced', () => {
    const client = new TestClient({ bootstrap: snapshot, offline: true });
    const events: ChangeEvent[] = [];
    client.on('change', (event) => events.push(event));
    client.publish({
      revision: 13,
      flags: {
        'async-reports': { enabled: true, percentage: 60 },
        'tenant-search': snapshot.flags['tenant-search']!,
        'brand-new': { enabled: true, percentage: 1 },
      },
    });
    expect(events).toHaveLength(1);
    expect(events[0]!.revision).toBe(13);
    expect([...events[0]!.flags].sort()).toEqual(['async-reports', 'brand-new', 'new-checkout']);
    expect(client.revision).toBe(13);
    expect(client.status).toBe('ready');
  });

  it('evaluates from the new snapshot right after it is replaced', () => {
    const client = new TestClient({ bootstrap: snapshot, offline: true });
    expect(client.isEnabled('async-reports', 'user-42')).toBe(evaluate(snapshot, 'async-reports', 'user-42').value);
    client.publish({ revision: 13, flags: { 'async-reports': { enabled: true, percentage: 100 } } });
    expect(client.isEnabled('async-reports', 'user-42')).toBe(true);
    client.publish({ revision: 14, flags: { 'async-reports': { enabled: false, percentage: 100 } } });
    expect(client.isEnabled('async-reports', 'user-42', true)).toBe(false);
  });

  it('does not fire change when the new snapshot has the same flags', () => {
    const client = new TestClient({ bootstrap: snapshot, offline: true });
    const listener = vi.fn();
    client.on('change', listener);
    client.publish({ ...snapshot, revision: 13, flags: { ...snapshot.flags } });
    expect(listener).not.toHaveBeenCalled();
    expect(client.revision).toBe(13);
  });

  it('fires change for the first snapshot of a client that started without one', () => {
    const client = new TestClient({ offline: true });
    const listener = vi.fn();
    client.on('change', listener);
    client.publish(snapshot);
    expect(listener).toHaveBeenCalledWith({ flags: Object.keys(snapshot.flags), revision: 12 });
    expect(client.status).toBe('ready');
  });

  it('stops calling a listener after its unsubscribe function runs', () => {
    const client = new TestClient({ bootstrap: snapshot, offline: true });
    const listener = vi.fn();
    const off = client.on('change', listener);
    off();
    client.publish({ revision: 13, flags: {} });
    expect(listener).not.toHaveBeenCalled();
  });

  it('still delivers to later listeners when an earlier one throws', () => {
    const client = new TestClient({ bootstrap: snapshot, offline: true });
    const later = vi.fn();
    client.on('change', () => {
      throw new Error('listener bug');
    });
    client.on('change', later);
    expect(() => {
      client.publish({ revision: 13, flags: {} });
    }).not.toThrow();
    expect(later).toHaveBeenCalledOnce();
  });

  it('resolves close() and calls no listener afterwards', async () => {
    const client = new TestClient({ bootstrap: snapshot, offline: true });
    const listener = vi.fn();
    client.on('change', listener);
    await expect(client.close()).resolves.toBeUndefined();
    client.publish({ revision: 13, flags: {} });
    expect(listener).not.toHaveBeenCalled();
  });
});
