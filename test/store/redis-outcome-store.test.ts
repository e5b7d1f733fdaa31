import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RampartError } from '../../src/core/errors.js';
import { createRedisOutcomeStore, outcomeSliceKey } from '../../src/store/redis-outcome-store.js';
import type { RedisOutcomeStore, RedisOutcomeStoreOptions } from '../../src/store/redis-outcome-store.js';
import { freePort, startRedisServer } from '../support/redis-server.js';
import type { RedisServer } from '../support/redis-server.js';
import { adminClient, keysWithPrefix, deleteKeys, redisUrl, uniquePrefix } from '../support/redis.js';
import { outcome, outcomeStoreContract } from './outcome-store-contract.js';


outcomeStoreContract('redis', async (options) => {
  const url = redisUrl();
  const prefix = uniquePrefix('outcomes');
  const store = await createRedisOutcomeStore({ url, prefix, ...options });
  return {
    store,
    async dispose() {
      await store.close();
      await deleteKeys(url, prefix);
    },
  };
});

describe('redis outcome store', () => {
  const stores: RedisOutcomeStore[] = [];
  const prefixes: string[] = [];
  const clients: Redis[] = [];
  const servers: RedisServer[] = [];

  async function server(extraArgs: readonly string[] = []): Promise<RedisServer> {
    const started = await startRedisServer(extraArgs);
    servers.push(started);
    return started;
  }

  async function store(options: Omit<RedisOutcomeStoreOptions, 'url' | 'prefix'> = {}): Promise<{ store: RedisOutcomeStore; prefix: string }> {
    const prefix = uniquePrefix('outcomes');
    prefixes.push(prefix);
    const created = await createRedisOutcomeStore({ url: redisUrl(), prefix, ...options });
    stores.push(created);
    return { store: created, prefix };
  }

  function admin(): Redis {
    const client = adminClient(redisUrl());
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()));
    await Promise.all(clients.splice(0).map((c) => c.quit()));
    for (const prefix of prefixes.splice(0)) await deleteKeys(redisUrl(), prefix);
    await Promise.all(servers.splice(0).map((s) => s.stop()));
  });

  it('writes a batch of several flags and reads a summary on a cluster-enabled Redis without CROSSSLOT errors', async () => {
    // A one-node cluster owning every slot makes Redis enforce that a MULTI's and a script's keys share a slot.
    const node = await server(['--cluster-enabled', 'yes']);
    const redis = adminClient(node.url);
    clients.push(redis);
    await redis.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
    await vi.waitFor(async () => {
      expect(String(await redis.call('CLUSTER', 'INFO'))).toContain('cluster_state:ok');
    }, { timeout: 10_000, interval: 100 });
    const outcomes = await createRedisOutcomeStore({ url: node.url, sliceMs: 1000 });
    stores.push(outcomes);
    const now = Date.now();
    await outcomes.record([0, 1500, 3000].flatMap((ago) => [outcome('checkout', 'on', true, new Date(now - ago), 20), outcome('search', 'off', false, new Date(now - ago))]));
    expect((await outcomes.summary('checkout', 10_000, new Date(now))).cohorts.on).toMatchObject({ count: 3, latencyCount: 3 });
    expect((await outcomes.summary('search', 10_000, new Date(now))).cohorts.off).toMatchObject({ count: 3, failed: 3 });
    const keys = await keysWithPrefix(redis, 'rampart:');
    expect(keys.length).toBeGreaterThanOrEqual(6);
    const slots = await Promise.all(keys.map(async (key) => Number(await redis.call('CLUSTER', 'KEYSLOT', key))));
    expect(new Set(slots)).toEqual(new Set([Number(await redis.call('CLUSTER', 'KEYSLOT', '{outcomes}'))]));
  });

  it('times record and summary out after commandTimeoutMs when Redis accepts the connection but does not answer', async () => {
    const node = await server();
    const outcomes = await createRedisOutcomeStore({ url: node.url, commandTimeoutMs: 300 });
    stores.push(outcomes);
    node.process.kill('SIGSTOP');
    try {
      for (const call of [() => outcomes.record([outcome('checkout', 'on', true, new Date())]), () => outcomes.summary('checkout', 60_000, new Date())]) {
        const started = performance.now();
        await expect(call()).rejects.toMatchObject({ code: 'store-unavailable' });
        const elapsed = performance.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(250);
        expect(elapsed).toBeLessThan(1500);
      }
    } finally {
      node.process.kill('SIGCONT');
    }
  });

  it('keeps one hash per flag, cohort and slice under the {outcomes} hash tag, with the histogram and latency sum', async () => {
    const { store: outcomes, prefix } = await store({ sliceMs: 10_000 });
    const at = new Date(Math.floor(Date.now() / 10_000) * 10_000 + 1234);
    await outcomes.record([outcome('checkout', 'on', true, at, 3), outcome('checkout', 'on', false, at, 7.5), outcome('checkout', 'off', true, at)]);
    const redis = admin();
    const start = at.getTime() - 1234;
    expect(await keysWithPrefix(redis, prefix)).toEqual([outcomeSliceKey(prefix, 'checkout', 'off', start), outcomeSliceKey(prefix, 'checkout', 'on', start)].sort());
    expect(outcomeSliceKey(prefix, 'checkout', 'on', start)).toBe(`${prefix}{outcomes}:checkout:on:${start}`);
    expect(await redis.hgetall(outcomeSliceKey(prefix, 'checkout', 'on', start))).toEqual({ ok: '1', failed: '1', b0: '1', b1: '1', sum: '10.5' });
  });

  it('sets every slice to expire retentionMs after the slice ends', async () => {
    const retentionMs = 3_600_000;
    const { store: outcomes, prefix } = await store({ sliceMs: 10_000, retentionMs });
    const start = Math.floor(Date.now() / 10_000) * 10_000;
    await outcomes.record([outcome('checkout', 'on', true, new Date(start + 5))]);
    const redis = admin();
    const expireAt = await redis.pexpiretime(outcomeSliceKey(prefix, 'checkout', 'on', start));
    expect(expireAt).toBe(start + 10_000 + retentionMs);
    const ttl = await redis.pttl(outcomeSliceKey(prefix, 'checkout', 'on', start));
    expect(ttl).toBeGreaterThan(retentionMs - 1000);
    expect(ttl).toBeLessThanOrEqual(retentionMs + 10_000);
  });

  it('forgets counters once the retention has passed (Redis expires the keys)', async () => {
    const { store: outcomes, prefix } = await store({ sliceMs: 100, retentionMs: 1000 });
    const at = new Date();
    await outcomes.record([outcome('checkout', 'on', true, at)]);
    expect((await outcomes.summary('checkout', 1000, new Date(at.getTime() + 1))).cohorts.on.count).toBe(1);
    const redis = admin();
    await vi.waitFor(async () => {
      expect(await keysWithPrefix(redis, prefix)).toEqual([]);
    }, { timeout: 5000, interval: 50 });
    expect((await outcomes.summary('checkout', 1000, new Date(at.getTime() + 1))).cohorts.on.count).toBe(0);
    // An event older than the retention is not kept at all.
    await outcomes.record([outcome('checkout', 'on', true, new Date(Date.now() - 10_000))]);
    expect(await keysWithPrefix(redis, prefix)).toEqual([]);
  });

  it('reads a 48 h window of 10 s slices (34,560 keys) in one pipelined round trip', async () => {
    const { store: outcomes } = await store();
    const now = new Date();
    await outcomes.record([outcome('checkout', 'on', true, new Date(now.getTime() - 47 * 3_600_000)), outcome('checkout', 'off', false, now)]);
    const summary = await outcomes.summary('checkout', 48 * 3_600_000, now);
    expect(summary.cohorts.on.count).toBe(1);
    expect(summary.cohorts.off.count).toBe(1);
  });

  it('rejects with store-unavailable when Redis cannot be reached, and after close', async () => {
    const port = await freePort();
    const error: unknown = await createRedisOutcomeStore({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 500 }).then(
      (s) => s.close(),
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RampartError);
    expect((error as RampartError).code).toBe('store-unavailable');
    const { store: outcomes } = await store();
    await outcomes.close();
    await expect(outcomes.record([outcome('checkout', 'on', true, new Date())])).rejects.toMatchObject({ code: 'store-unavailable' });
    await expect(outcomes.summary('checkout', 1000, new Date())).rejects.toMatchObject({ code: 'store-unavailable' });
  });
});
