// Rampart on a three-master Redis Cluster (REDIS_CLUSTER=on): the store contracts, rollouts and
// the guard lease, and change propagation from `rampart serve` replicas to streaming SDK clients.
// The `{flags}`, `{rollouts}` and `{outcomes}` slots are spread over the three masters, so every
// store talks to a different node and pub/sub crosses nodes.
import { performance } from 'node:perf_hooks';
import { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createClient } from '@rampart/sdk';
import type { ChangeEvent, RampartClient } from '@rampart/sdk';
import { RampartError } from '../../src/core/errors.js';
import { createRedisClient } from '../../src/store/redis-connection.js';
import { createRedisLease } from '../../src/store/redis-lease.js';
import { createRedisOutcomeStore } from '../../src/store/redis-outcome-store.js';
import { createRedisRolloutStore } from '../../src/store/redis-rollout-store.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import { fields, flagStoreContract, meta } from '../store/flag-store-contract.js';
import { outcome, outcomeStoreContract } from '../store/outcome-store-contract.js';
import { decision, leaseContract, record, rolloutStoreContract } from '../store/rollout-store-contract.js';
import { clusterKeys, deleteClusterKeys, onNode, startRedisCluster } from '../support/redis-cluster.js';
import type { RedisCluster } from '../support/redis-cluster.js';
import { uniquePrefix } from '../support/redis.js';
import { freePort } from '../support/redis-server.js';
import { adminOf } from '../support/sdk-server.js';
import { startServerProcess } from '../support/server-process.js';
import type { ServerProcess } from '../support/server-process.js';

let started: RedisCluster | undefined;

beforeAll(async () => {
  started = await startRedisCluster({ spread: ['flags', 'rollouts', 'outcomes'] });
}, 60_000);

afterAll(async () => {
  await started?.stop();
});

/** The cluster of this file (beforeAll failed when there is none). */
function cluster(): RedisCluster {
  if (started === undefined) throw new Error('the Redis Cluster did not start');
  return started;
}

/** Seeds of the cluster; the stores are given only the first, and learn the other masters from it. */
function seed(): string {
  return cluster().url.split(',')[0]!;
}

flagStoreContract('redis cluster', async (options) => {
  const prefix = uniquePrefix('cluster-contract');
  // Two instances with one prefix: two replicas of the server sharing one cluster.
  const store = await createRedisStore({ url: seed(), cluster: true, prefix, ...options });
  const peer = await createRedisStore({ url: cluster().url, cluster: true, prefix, ...options });
  return {
    store,
    peer,
    async dispose() {
      await Promise.all([store.close(), peer.close()]);
      await deleteClusterKeys(cluster(), prefix);
    },
  };
});

outcomeStoreContract('redis cluster', async (options) => {
  const prefix = uniquePrefix('cluster-outcomes');
  const store = await createRedisOutcomeStore({ url: seed(), cluster: true, prefix, ...options });
  return {
    store,
    async dispose() {
      await store.close();
      await deleteClusterKeys(cluster(), prefix);
    },
  };
});

describe('redis cluster connection', () => {
  it('is an ioredis Cluster that found all three masters from one seed', async () => {
    const client = createRedisClient(seed(), { commandTimeoutMs: 2000, cluster: true });
    try {
      expect(client).toBeInstanceOf(Cluster);
      await client.connect();
      expect((client as Cluster).nodes('master').map((n) => n.options.port).sort()).toEqual([...cluster().ports].sort());
    } finally {
      await client.quit();
    }
  });

  it('rejects connect with store-unavailable, soon, when no seed answers', async () => {
    const port = await freePort();
    const started = performance.now();
    const error: unknown = await createRedisStore({ url: `redis://127.0.0.1:${port}`, cluster: true, connectTimeoutMs: 500 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RampartError);
    expect((error as RampartError).code).toBe('store-unavailable');
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('fails a call to a frozen master within its command timeout, and serves again once the master is back', async () => {
    const prefix = uniquePrefix('cluster-frozen');
    const outcomes = await createRedisOutcomeStore({ url: seed(), cluster: true, prefix, commandTimeoutMs: 500 });
    // The third master serves `{outcomes}`; frozen for well under cluster-node-timeout (2 s), so
    // the cluster itself stays ok.
    const frozen = cluster().processes[2]!;
    try {
      await outcomes.record([outcome('checkout', 'on', true, new Date())]);
      frozen.kill('SIGSTOP');
      const started = performance.now();
      const error: unknown = await outcomes.record([outcome('checkout', 'on', true, new Date())]).then(
        () => undefined,
        (e: unknown) => e,
      );
      const elapsed = performance.now() - started;
      frozen.kill('SIGCONT');
      expect(error).toBeInstanceOf(RampartError);
      expect((error as RampartError).code).toBe('store-unavailable');
      expect(elapsed).toBeGreaterThanOrEqual(450);
      expect(elapsed).toBeLessThan(1500);
      await vi.waitFor(async () => {
        await outcomes.record([outcome('checkout', 'off', true, new Date())]);
      });
      const { cohorts } = await outcomes.summary('checkout', 60_000, new Date());
      expect(cohorts.off.ok).toBe(1);
    } finally {
      frozen.kill('SIGCONT');
      await outcomes.close();
      await deleteClusterKeys(cluster(), prefix);
    }
  });

  it('puts flags, rollouts and outcomes on three different masters, each store in one slot', async () => {
    const prefix = uniquePrefix('cluster-layout');
    const flags = await createRedisStore({ url: seed(), cluster: true, prefix });
    const rollouts = await createRedisRolloutStore({ url: seed(), cluster: true, prefix });
    const outcomes = await createRedisOutcomeStore({ url: seed(), cluster: true, prefix, sliceMs: 1000 });
    try {
      expect((await flags.put('checkout', fields(), 0, meta())).ok).toBe(true);
      expect((await rollouts.write(record(1), 0, { decision: decision(1) })).ok).toBe(true);
      const now = Date.now();
      // Two flags, two cohorts, two slices: one MULTI over eight keys of the `{outcomes}` slot.
      await outcomes.record([
        outcome('checkout', 'on', true, new Date(now - 1500), 20),
        outcome('checkout', 'off', false, new Date(now - 200)),
        outcome('reports', 'on', true, new Date(now - 1500)),
        outcome('reports', 'off', true, new Date(now - 200), 5),
      ]);
      // The summary sums 2 x 61 slice keys of the slot in Redis, in one pipeline of scripts.
      const { cohorts } = await outcomes.summary('checkout', 60_000, new Date(now));
      expect([cohorts.on.ok, cohorts.on.failed, cohorts.off.ok, cohorts.off.failed]).toEqual([1, 0, 0, 1]);
      const placed = await clusterKeys(cluster(), prefix);
      const [first, second, third] = cluster().ports.map((port) => placed.get(port) ?? []);
      expect(first?.length).toBeGreaterThan(0);
      expect(first?.every((key) => key.startsWith(`${prefix}{flags}:`))).toBe(true);
      expect(second?.length).toBeGreaterThan(0);
      expect(second?.every((key) => key.startsWith(`${prefix}{rollouts}:`))).toBe(true);
      expect(third).toHaveLength(4);
      expect(third?.every((key) => key.startsWith(`${prefix}{outcomes}:`))).toBe(true);
    } finally {
      await Promise.all([flags.close(), rollouts.close(), outcomes.close()]);
      await deleteClusterKeys(cluster(), prefix);
    }
  });
});

describe('redis cluster subscriber', () => {
  it('still delivers a change published while its subscriber connection moved to another node', async () => {
    const prefix = uniquePrefix('cluster-resync');
    const listening = await createRedisStore({ url: seed(), cluster: true, prefix, resyncIntervalMs: 300 });
    const writer = await createRedisStore({ url: seed(), cluster: true, prefix });
    try {
      const seen: number[] = [];
      await listening.subscribe((change) => seen.push(change.revision));
      expect((await writer.put('before', fields(), 0, meta())).ok).toBe(true);
      await vi.waitFor(() => {
        expect(seen).toEqual([1]);
      });
      // Drop every subscriber connection: ioredis re-subscribes on some node by itself, and the
      // change written meanwhile is published to no one; the periodic feed check delivers it.
      await Promise.all(cluster().ports.map((port) => onNode(port, (node) => node.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))));
      expect((await writer.put('during', fields(), 0, meta())).ok).toBe(true);
      await vi.waitFor(
        () => {
          expect(seen).toEqual([1, 2]);
        },
        { timeout: 3000 },
      );
      // And it keeps receiving published changes on the new connection.
      expect((await writer.put('after', fields(), 0, meta())).ok).toBe(true);
      await vi.waitFor(() => {
        expect(seen).toEqual([1, 2, 3]);
      });
    } finally {
      await Promise.all([listening.close(), writer.close()]);
      await deleteClusterKeys(cluster(), prefix);
    }
  });
});

rolloutStoreContract('redis cluster', async () => {
  const prefix = uniquePrefix('cluster-rollouts');
  let current = await createRedisRolloutStore({ url: seed(), cluster: true, prefix });
  return {
    store: current,
    // Another instance through another seed node, as another replica would open it.
    reopen: async () => {
      current = await createRedisRolloutStore({ url: cluster().url, cluster: true, prefix });
      return current;
    },
    cleanup: async () => {
      await current.close();
      await deleteClusterKeys(cluster(), prefix);
    },
  };
});

leaseContract('redis cluster', async () => {
  const prefix = uniquePrefix('cluster-lease');
  const a = await createRedisLease({ url: seed(), cluster: true, prefix, ttlMs: 300 });
  const b = await createRedisLease({ url: cluster().url, cluster: true, prefix, ttlMs: 300 });
  const store = await createRedisRolloutStore({ url: seed(), cluster: true, prefix });
  return {
    a,
    b,
    store,
    cleanup: async () => {
      await a.close();
      await b.close();
      await store.close();
      await deleteClusterKeys(cluster(), prefix);
    },
  };
});

describe('change propagation on a redis cluster', () => {
  const servers: ServerProcess[] = [];
  const clients: RampartClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  it('delivers every PATCH, made on either of two `rampart serve` replicas, to every streaming client of both, in order', async () => {
    const prefix = uniquePrefix('cluster-serve');
    const env = {
      REDIS_URL: cluster().url,
      REDIS_CLUSTER: 'on',
      RAMPART_REDIS_PREFIX: prefix,
      RAMPART_ADMIN_TOKENS: 'ops:admin-secret',
      RAMPART_SDK_TOKENS: 'app:sdk-secret',
    };
    const [a, b] = await Promise.all([startServerProcess(env), startServerProcess({ ...env, REDIS_URL: seed() })]);
    servers.push(a, b);
    const admins = [adminOf(a.url), adminOf(b.url)];
    const keys = ['f0', 'f1', 'f2'];
    for (const key of keys) await admins[0]!.put(key, { enabled: false, percentage: 100 });
    // A fresh prefix starts at revision 0 and every write raises it by one.
    const start = { revision: keys.length };

    const seen = new Map<RampartClient, { revision: number; flags: readonly string[]; on: boolean }[]>();
    for (const server of [a, b, a, b, a, b]) {
      const client = createClient({ url: server.url, token: 'sdk-secret' });
      clients.push(client);
      seen.set(client, []);
    }
    await Promise.all(clients.map((c) => c.ready({ timeoutMs: 5000 })));
    await vi.waitFor(
      () => {
        expect(clients.map((c) => c.revision)).toEqual(clients.map(() => start.revision));
      },
      { timeout: 5000 },
    );
    for (const client of clients) {
      client.on('change', (event: ChangeEvent) => {
        seen.get(client)!.push({ revision: event.revision, flags: event.flags, on: client.isEnabled(event.flags[0] ?? '', 'user-1') });
      });
    }

    // Twelve writes, alternating between the replicas, each toggling one of the flags.
    const expected: { revision: number; flags: string[]; on: boolean }[] = [];
    for (let i = 0; i < 12; i++) {
      const key = keys[i % keys.length]!;
      const on = Math.floor(i / keys.length) % 2 === 0;
      await admins[i % 2]!.patch(key, { enabled: on });
      expected.push({ revision: start.revision + i + 1, flags: [key], on });
    }
    const last = start.revision + expected.length;
    await vi.waitFor(
      () => {
        expect(clients.map((c) => c.revision)).toEqual(clients.map(() => last));
      },
      { timeout: 10_000 },
    );
    for (const client of clients) expect(seen.get(client)).toEqual(expected);
    for (const client of clients) {
      expect(keys.map((key) => client.isEnabled(key, 'user-1'))).toEqual([false, false, false]);
    }
    expect(a.output()).not.toMatch(/"level":(50|60)/);
    expect(b.output()).not.toMatch(/"level":(50|60)/);
  }, 60_000);
});
