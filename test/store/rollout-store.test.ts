import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RolloutPlan } from '../../src/core/rollout/plan.js';
import { initialState } from '../../src/core/rollout/state.js';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { createRedisLease } from '../../src/store/redis-lease.js';
import { createRedisRolloutStore } from '../../src/store/redis-rollout-store.js';
import type { NewDecision, RolloutRecord, RolloutStore } from '../../src/store/rollout-store.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';

const plan: RolloutPlan = {
  stages: [{ percentage: 10, holdMs: 60_000 }, { percentage: 100 }],
  sampleEveryMs: 1000,
  criteria: [{ name: 'queue', source: { type: 'redis', command: 'LLEN', key: 'jobs' }, op: '<', threshold: 50 }],
  onFailure: { action: 'revert', after: 2 },
  dryRun: false,
  notify: [],
};

function record(version: number, fence = 0): RolloutRecord {
  return { flagKey: 'reports', version, plan, state: initialState(plan, 1_000), flagVersion: 1, fence, createdAt: 'x', updatedAt: 'x', updatedBy: 'test' };
}

function decision(n: number): NewDecision {
  return { flagKey: 'reports', at: new Date(n).toISOString(), actor: 'guard', planVersion: n, stage: 0, status: 'running', action: 'hold', reason: `tick ${n}`, samples: [] };
}

type Open = () => Promise<{ store: RolloutStore; reopen: () => Promise<RolloutStore>; cleanup: () => Promise<void> }>;

function contract(name: string, open: Open): void {
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

contract('embedded', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'rampart-rollouts-'));
  let current = await createEmbeddedRolloutStore({ dir });
  return {
    store: current,
    reopen: async () => {
      current = await createEmbeddedRolloutStore({ dir });
      return current;
    },
    cleanup: async () => {
      await current.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

contract('redis', async () => {
  const prefix = uniquePrefix('rollouts');
  let current = await createRedisRolloutStore({ url: redisUrl(), prefix });
  return {
    store: current,
    reopen: async () => {
      current = await createRedisRolloutStore({ url: redisUrl(), prefix });
      return current;
    },
    cleanup: () => current.close(),
  };
});

describe('redis lease and fencing', () => {
  it('grants one holder at a time, with growing tokens, and refuses writes of a lost lease', async () => {
    const prefix = uniquePrefix('lease');
    const a = await createRedisLease({ url: redisUrl(), prefix, ttlMs: 300 });
    const b = await createRedisLease({ url: redisUrl(), prefix, ttlMs: 300 });
    const store = await createRedisRolloutStore({ url: redisUrl(), prefix });
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
      await a.close();
      await b.close();
      await store.close();
    }
  });
});
