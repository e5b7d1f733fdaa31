// The guard lease on Redis: one holder at a time, renewed well before it expires, and a fencing
// token (INCR) that grows with every acquisition so writes by an older holder can be refused.
import { randomUUID } from 'node:crypto';
import type { Result } from 'ioredis';
import { createRedisClient } from './redis-connection.js';
import { rolloutKeys } from './redis-rollout-store.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rampartLeaseAcquire(...args: (string | number)[]): Result<unknown, Context>;
    rampartLeaseRenew(...args: (string | number)[]): Result<unknown, Context>;
    rampartLeaseRelease(...args: (string | number)[]): Result<unknown, Context>;
  }
}

// KEYS: lease, fence. ARGV: holder id prefix, ttl ms. The holder string embeds its token.
const ACQUIRE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return '' end
local token = redis.call('INCR', KEYS[2])
local holder = tostring(token) .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], holder, 'PX', ARGV[2])
return holder
`;
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`;
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
`;

/** A held lease: its fencing token and the holder string the store checks. */
export interface LeaseGrant {
  readonly token: number;
  readonly holder: string;
}

/**
 * The lease operations; acquire resolves undefined while someone else holds it.
 *
 * @example
 * const grant = await lease.acquire(); if (grant) await lease.renew(grant);
 */
export interface RedisLease {
  acquire(): Promise<LeaseGrant | undefined>;
  /** False when the lease was lost (expired and maybe taken). */
  renew(grant: LeaseGrant): Promise<boolean>;
  release(grant: LeaseGrant): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens the guard lease on Redis.
 *
 * @example
 * const lease = await createRedisLease({ url: 'redis://localhost:6379', prefix: 'rampart:', ttlMs: 10_000 });
 */
export async function createRedisLease(options: {
  url: string;
  /** `url` is a comma-separated list of seed nodes of a Redis Cluster (see createRedisClient). */
  cluster?: boolean | undefined;
  prefix?: string | undefined;
  ttlMs: number;
  commandTimeoutMs?: number | undefined;
}): Promise<RedisLease> {
  const keys = rolloutKeys(options.prefix ?? 'rampart:');
  const id = `${process.pid}-${randomUUID().slice(0, 8)}`;
  const client = createRedisClient(options.url, { commandTimeoutMs: options.commandTimeoutMs ?? 2000, cluster: options.cluster }, {
    scripts: {
      rampartLeaseAcquire: { lua: ACQUIRE_LUA, numberOfKeys: 2 },
      rampartLeaseRenew: { lua: RENEW_LUA, numberOfKeys: 1 },
      rampartLeaseRelease: { lua: RELEASE_LUA, numberOfKeys: 1 },
    },
  });
  client.on('error', () => undefined);
  await client.connect();
  return {
    async acquire() {
      const holder = await client.rampartLeaseAcquire(keys.lease, keys.fence, id, options.ttlMs);
      if (typeof holder !== 'string' || holder === '') return undefined;
      return { token: Number(holder.slice(0, holder.indexOf(':'))), holder };
    },
    async renew(grant) {
      return (await client.rampartLeaseRenew(keys.lease, grant.holder, options.ttlMs)) === 1;
    },
    async release(grant) {
      await client.rampartLeaseRelease(keys.lease, grant.holder);
    },
    async close() {
      await client.quit().catch(() => {
        client.disconnect();
      });
    },
  };
}
