// The rollout store and guard lease contracts, run against every implementation: the embedded and
// Redis stores in test/store/rollout-store.test.ts, a Redis Cluster in test/faults/cluster.test.ts.
import { afterEach, describe, expect, it } from 'vitest';
import type { RolloutPlan } from '../../src/core/rollout/plan.js';
import { initialState } from '../../src/core/rollout/state.js';
import type { RedisLease } from '../../src/store/redis-lease.js';
import type { NewDecision, RolloutRecord, RolloutStore } from '../../src/store/rollout-store.js';

/** A two-stage plan with a Redis criterion that names its own url (valid on a cluster too). */
export const plan: RolloutPlan = {
  stages: [{ percentage: 10, holdMs: 60_000 }, { percentage: 100 }],
  sampleEveryMs: 1000,
  criteria: [{ name: 'queue', source: { type: 'redis', url: 'redis://127.0.0.1:1', command: 'LLEN', key: 'jobs' }, op: '<', threshold: 50 }],
  onFailure: { action: 'revert', after: 2 },
  dryRun: false,
  notify: [],
};

/** The record of flag `reports` at `version`, fenced by `fence`. */
export function record(version: number, fence = 0): RolloutRecord {
  return { flagKey: 'reports', version, plan, state: initialState(plan, 1_000), flagVersion: 1, fence, createdAt: 'x', updatedAt: 'x', updatedBy: 'test' };
}

/** A `hold` decision numbered `n` (its reason is `tick n`). */
export function decision(n: number): NewDecision {
  return { flagKey: 'reports', at: new Date(n).toISOString(), actor: 'guard', planVersion: n, stage: 0, status: 'running', action: 'hold', reason: `tick ${n}`, samples: [] };
}

/** Opens a store; `reopen` opens another instance on the same data, as a restart or another replica would. */
export type OpenRolloutStore = () => Promise<{ store: RolloutStore; reopen: () => Promise<RolloutStore>; cleanup: () => Promise<void> }>;

/** The RolloutStore contract every implementation passes. */
export function rolloutStoreContract(name: string, open: OpenRolloutStore): void {
  describe(`${name} rollout store`, () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0)) await c();
    });
    const setup = async (): Promise<{ store: RolloutStore; reopen: () => Promise<RolloutStore> }> => {
      const opened = await open();
      cleanups.push(opened.cleanup);
      return opened;
    };

    it('creates only when absent (expected 0) and refuses a stale version', async () => {
      const { store } = await setup();
      expect((await store.write(record(1), 0)).ok).toBe(true);
      const again = await store.write(record(1), 0);
      expect(again).toMatchObject({ ok: false, reason: 'version' });
      expect((await store.write(record(2), 1)).ok).toBe(true);
      const stale = await store.write(record(2), 1);
      expect(stale.ok).toBe(false);
      if (!stale.ok) expect(stale.current?.version).toBe(2);
      expect((await store.get('reports'))?.version).toBe(2);
      expect((await store.list()).map((r) => r.flagKey)).toEqual(['reports']);
    });

    it('lets exactly one of two concurrent writers of the same version win', async () => {
      const { store } = await setup();
      await store.write(record(1), 0);
      const results = await Promise.all([store.write(record(2), 1, { decision: decision(1) }), store.write(record(2), 1, { decision: decision(2) })]);
      expect(results.filter((r) => r.ok)).toHaveLength(1);
      expect((await store.decisions('reports', { limit: 10 })).entries).toHaveLength(1);
    });

    it('appends decisions atomically with the write and pages them newest first', async () => {
      const { store } = await setup();
      for (let v = 1; v <= 7; v++) expect((await store.write(record(v), v - 1, { decision: decision(v) })).ok).toBe(true);
      const first = await store.decisions('reports', { limit: 3 });
      expect(first.entries.map((e) => e.reason)).toEqual(['tick 7', 'tick 6', 'tick 5']);
      const second = await store.decisions('reports', { limit: 3, before: first.next });
      expect(second.entries.map((e) => e.reason)).toEqual(['tick 4', 'tick 3', 'tick 2']);
      const third = await store.decisions('reports', { limit: 3, before: second.next });
      expect(third.entries.map((e) => e.reason)).toEqual(['tick 1']);
      expect(third.next).toBeUndefined();
      // A refused write appends nothing.
      expect((await store.write(record(2), 1, { decision: decision(99) })).ok).toBe(false);
      expect((await store.decisions('reports', { limit: 1 })).entries[0]?.reason).toBe('tick 7');
    });

    it('rejects a malformed cursor with a validation error', async () => {
      const { store } = await setup();
      await expect(store.decisions('reports', { limit: 3, before: 'nope' })).rejects.toMatchObject({ code: 'validation' });
    });

    it('keeps records and decisions across a reopen', async () => {
      const { store, reopen } = await setup();
      await store.write(record(1), 0, { decision: decision(1) });
      await store.close();
      const again = await reopen();
      expect((await again.get('reports'))?.version).toBe(1);
      expect((await again.decisions('reports', { limit: 5 })).entries).toHaveLength(1);
    });
  });
}

/** Two leases on the same keys and a rollout store beside them; `cleanup` closes all three. */
export type OpenLeases = () => Promise<{ a: RedisLease; b: RedisLease; store: RolloutStore; cleanup: () => Promise<void> }>;

/** The guard lease contract: one holder at a time, growing fencing tokens, writes of a lost lease refused. */
export function leaseContract(name: string, open: OpenLeases): void {
  describe(`${name} lease and fencing`, () => {
    it('grants one holder at a time, with growing tokens, and refuses writes of a lost lease', async () => {
      const { a, b, store, cleanup } = await open();
      try {
        const first = await a.acquire();
        expect(first).toBeDefined();
        expect(await b.acquire()).toBeUndefined();
        expect(await a.renew(first!)).toBe(true);
        expect((await store.write(record(1, first!.token), 0, { fence: first! })).ok).toBe(true);
        await new Promise((r) => setTimeout(r, 450));
        const second = await b.acquire();
        expect(second!.token).toBeGreaterThan(first!.token);
        expect(await a.renew(first!)).toBe(false);
        // The old holder, even with the right plan version, can no longer write.
        expect(await store.write(record(2, first!.token), 1, { fence: first! })).toMatchObject({ ok: false, reason: 'fence' });
        expect((await store.write(record(2, second!.token), 1, { fence: second! })).ok).toBe(true);
        await b.release(second!);
        const third = await a.acquire();
        expect(third!.token).toBeGreaterThan(second!.token);
        // A token below the record's fence is refused even while holding the lease.
        expect(await store.write(record(3, 0), 2, { fence: { token: second!.token - 1, holder: third!.holder } })).toMatchObject({ ok: false, reason: 'fence' });
      } finally {
        await cleanup();
      }
    });
  });
}
