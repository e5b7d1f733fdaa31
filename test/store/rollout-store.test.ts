import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { createRedisLease } from '../../src/store/redis-lease.js';
import { createRedisRolloutStore } from '../../src/store/redis-rollout-store.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';
import { leaseContract, rolloutStoreContract } from './rollout-store-contract.js';

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
