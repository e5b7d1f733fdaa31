import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { createRedisLease } from '../../src/store/redis-lease.js';
import { createRedisRolloutStore } from '../../src/store/redis-rollout-store.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';
import { decision, leaseContract, record, rolloutStoreContract } from './rollout-store-contract.js';

rolloutStoreContract('embedded', async () => {
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

describe('embedded rollout store files', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-rollouts-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('journals every write and replays records and decisions from what a crash leaves, continuing decision ids', async () => {
    const store = await createEmbeddedRolloutStore({ dir });
    try {
      await store.write(record(1), 0, { decision: decision(1) });
      await store.write(record(2), 1);
      await store.write(record(3), 2, { decision: decision(3) });
      const lines = (await readFile(join(dir, 'rollouts.journal'), 'utf8')).trim().split('\n');
      expect(lines).toHaveLength(3);
      expect(existsSync(join(dir, 'rollouts.json'))).toBe(false);
      // The files as a SIGKILL now would leave them, opened by a new process.
      const crashed = await mkdtemp(join(tmpdir(), 'rampart-rollouts-crash-'));
      try {
        await writeFile(join(crashed, 'rollouts.journal'), await readFile(join(dir, 'rollouts.journal')));
        const recovered = await createEmbeddedRolloutStore({ dir: crashed });
        try {
          expect(await recovered.get('reports')).toEqual(await store.get('reports'));
          expect(await recovered.decisions('reports', { limit: 10 })).toEqual(await store.decisions('reports', { limit: 10 }));
          expect(await recovered.write(record(4), 3, { decision: decision(4) })).toMatchObject({ ok: true, decisionId: '3' });
        } finally {
          await recovered.close();
        }
      } finally {
        await rm(crashed, { recursive: true, force: true });
      }
    } finally {
      await store.close();
    }
  });

  it('folds the journal into rollouts.json once it outgrows it and on close, losing nothing', async () => {
    const store = await createEmbeddedRolloutStore({ dir, journalMinBytes: 4096, decisionLimit: 5 });
    let version = 0;
    while (!existsSync(join(dir, 'rollouts.json'))) {
      await store.write(record(version + 1), version, { decision: decision(version + 1) });
      version++;
    }
    await vi.waitFor(async () => { expect((await readFile(join(dir, 'rollouts.journal'), 'utf8')).length).toBeLessThan(4096); });
    const folded = JSON.parse(await readFile(join(dir, 'rollouts.json'), 'utf8')) as { sequence: number; journalSeq: number; decisions: Record<string, unknown[]> };
    expect(folded.journalSeq).toBe(folded.sequence);
    expect(folded.decisions.reports).toHaveLength(5);
    await store.write(record(version + 1), version);
    const before = { record: await store.get('reports'), decisions: await store.decisions('reports', { limit: 10 }) };
    await store.close();
    expect(await readFile(join(dir, 'rollouts.journal'), 'utf8')).toBe('');
    const reopened = await createEmbeddedRolloutStore({ dir, decisionLimit: 5 });
    try {
      expect({ record: await reopened.get('reports'), decisions: await reopened.decisions('reports', { limit: 10 }) }).toEqual(before);
      expect(before.decisions.entries.map((e) => e.id)).toEqual([version, version - 1, version - 2, version - 3, version - 4].map(String));
    } finally {
      await reopened.close();
    }
  });
});

rolloutStoreContract('redis', async () => {
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

leaseContract('redis', async () => {
  const prefix = uniquePrefix('lease');
  const a = await createRedisLease({ url: redisUrl(), prefix, ttlMs: 300 });
  const b = await createRedisLease({ url: redisUrl(), prefix, ttlMs: 300 });
  const store = await createRedisRolloutStore({ url: redisUrl(), prefix });
  return {
    a,
    b,
    store,
    cleanup: async () => {
      await a.close();
      await b.close();
      await store.close();
    },
  };
});
