import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RampartError } from '../../src/core/errors.js';
import type { FlagChange } from '../../src/core/flag.js';
import { createRedisStore, redisStoreKeys } from '../../src/store/redis-store.js';
import type { RedisFlagStore, RedisStoreOptions } from '../../src/store/redis-store.js';
import { freePort, startRedisServer } from '../support/redis-server.js';
import type { RedisServer } from '../support/redis-server.js';
import { adminClient, keysWithPrefix, redisUrl, uniquePrefix } from '../support/redis.js';
import { fields, flagStoreContract, meta } from './flag-store-contract.js';


flagStoreContract('redis', async (options) => {
  const url = redisUrl();
  const prefix = uniquePrefix('contract');
  // Two instances with one prefix: two replicas of the server sharing one Redis.
  const store = await createRedisStore({ url, prefix, ...options });
  const peer = await createRedisStore({ url, prefix, ...options });
  return {
    store,
    peer,
    async dispose() {
      await Promise.all([store.close(), peer.close()]);
      const admin = adminClient(url);
      const keys = await keysWithPrefix(admin, prefix);
      if (keys.length > 0) await admin.del(...keys);
      await admin.quit();
    },
  };
});

async function rejection(promise: Promise<unknown>): Promise<RampartError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RampartError);
  return error as RampartError;
}

function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((name) => name.startsWith('TCP')).length;
}

/** Waits until sockets of earlier tests have finished closing; this worker then has none. */
async function noSocketsOpen(): Promise<number> {
  await vi.waitFor(() => {
    expect(tcpHandles()).toBe(0);
  });
  return 0;
}

describe('redis store', () => {
  const stores: RedisFlagStore[] = [];
  const servers: RedisServer[] = [];
  const clients: Redis[] = [];

  async function store(options: RedisStoreOptions): Promise<RedisFlagStore> {
    const created = await createRedisStore(options);
    stores.push(created);
    return created;
  }

  async function server(extraArgs: readonly string[] = [], port?: number): Promise<RedisServer> {
    const started = await startRedisServer(extraArgs, port);
    servers.push(started);
    return started;
  }

  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const c of clients.splice(0)) c.disconnect();
    for (const s of servers.splice(0)) {
      s.process.kill('SIGCONT');
      await s.stop();
    }
  });

  describe('key layout', () => {
    it('puts every key under the prefix and one {flags} hash tag', async () => {
      const prefix = uniquePrefix('layout');
      const s = await store({ url: redisUrl(), prefix });
      await s.put('a', fields(), 0, meta());
      await s.put('b', fields(), 0, meta());
      await s.delete('b', 1, meta());
      const admin = adminClient(redisUrl());
      clients.push(admin);
      const keys = redisStoreKeys(prefix);
      expect(await keysWithPrefix(admin, prefix)).toEqual([keys.changes, keys.data, keys.history('a'), keys.history('b'), keys.revision, keys.versions].sort());
      for (const key of [keys.data, keys.versions, keys.revision, keys.changes, keys.history('a'), keys.channel]) {
        expect(key.startsWith(`${prefix}{flags}:`)).toBe(true);
      }
    });

    it('hashes every key to one slot and runs its scripts on a cluster-enabled Redis without CROSSSLOT errors', async () => {
      // CLUSTER KEYSLOT needs cluster mode; a one-node cluster owning every slot also makes
      // Redis enforce that each script's keys share a slot.
      const node = await server(['--cluster-enabled', 'yes']);
      const admin = adminClient(node.url);
      clients.push(admin);
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      await vi.waitFor(async () => {
        expect(String(await admin.call('CLUSTER', 'INFO'))).toContain('cluster_state:ok');
      }, { timeout: 10_000, interval: 100 });
      const prefix = 'rampart:';
      const s = await store({ url: node.url, prefix });
      const received: FlagChange[] = [];
      await s.subscribe((change) => received.push(change));
      await s.put('checkout', fields(), 0, meta());
      await s.put('checkout', fields({ percentage: 1 }), 1, meta());
      await s.put('search', fields(), 0, meta());
      await s.delete('search', 1, meta());
      expect((await s.snapshot()).revision).toBe(4);
      expect((await s.history('checkout', { limit: 10 })).entries).toHaveLength(2);
      expect(await s.changesSince(0)).toHaveLength(4);
      await vi.waitFor(() => {
        expect(received).toHaveLength(4);
      });
      const keys = await keysWithPrefix(admin, prefix);
      expect(keys).toHaveLength(6);
      const slots = await Promise.all(keys.map(async (key) => Number(await admin.call('CLUSTER', 'KEYSLOT', key))));
      expect(new Set(slots).size).toBe(1);
      expect(slots[0]).toBe(Number(await admin.call('CLUSTER', 'KEYSLOT', '{flags}')));
    });
  });

  describe('when Redis is down or slow', () => {
    it('fails get, put, delete and ping quickly with store-unavailable once Redis has stopped', async () => {
      const node = await server();
      const s = await store({ url: node.url, prefix: uniquePrefix('down'), commandTimeoutMs: 300 });
      await s.put('x', fields(), 0, meta());
      await node.stop();
      for (const call of [() => s.get('x'), () => s.put('x', fields(), 1, meta()), () => s.delete('x', 1, meta()), () => s.ping(), () => s.snapshot()]) {
        const started = performance.now();
        const error = await rejection(call());
        expect(error.code).toBe('store-unavailable');
        expect(error.cause).toBeInstanceOf(Error);
        expect(performance.now() - started).toBeLessThan(900);
      }
      const closing = performance.now();
      await s.close();
      expect(performance.now() - closing).toBeLessThan(900);
    });

    it('times a call out after commandTimeoutMs when Redis accepts the connection but does not answer', async () => {
      const node = await server();
      const s = await store({ url: node.url, prefix: uniquePrefix('frozen'), commandTimeoutMs: 300 });
      await s.put('x', fields(), 0, meta());
      node.process.kill('SIGSTOP');
      try {
        const started = performance.now();
        const error = await rejection(s.get('x'));
        const elapsed = performance.now() - started;
        expect(error.code).toBe('store-unavailable');
        expect(elapsed).toBeGreaterThanOrEqual(250);
        expect(elapsed).toBeLessThan(900);
        await expect(s.ping()).rejects.toMatchObject({ code: 'store-unavailable' });
      } finally {
        node.process.kill('SIGCONT');
      }
      await vi.waitFor(async () => {
        expect(await s.get('x')).toMatchObject({ version: 1 });
      }, { timeout: 5000 });
    });

    it('refuses to start within the connect timeout when nothing listens, leaving no socket behind', async () => {
      const handles = await noSocketsOpen();
      const port = await freePort();
      const started = performance.now();
      const error = await rejection(createRedisStore({ url: `redis://127.0.0.1:${port}`, connectTimeoutMs: 500 }));
      expect(error.code).toBe('store-unavailable');
      expect(performance.now() - started).toBeLessThan(1500);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(tcpHandles()).toBe(handles);
    });

    it('works again after Redis comes back, and its subscriber hears new changes', async () => {
      const node = await server();
      const prefix = uniquePrefix('restart');
      const errors: Error[] = [];
      const s = await store({ url: node.url, prefix, commandTimeoutMs: 500, onError: (e) => errors.push(e) });
      const writer = await store({ url: node.url, prefix, commandTimeoutMs: 500 });
      const received: FlagChange[] = [];
      await s.subscribe((change) => received.push(change));
      await writer.put('before', fields(), 0, meta());
      await vi.waitFor(() => {
        expect(received).toHaveLength(1);
      });
      await node.stop();
      // Same port, empty data: what a Redis without persistence looks like after a restart.
      await server([], node.port);
      await vi.waitFor(async () => {
        await writer.ping();
        await s.ping();
      }, { timeout: 10_000, interval: 100 });
      // The subscriber notices that Redis lost the changes it knew of before it listens anew.
      await vi.waitFor(() => {
        expect(errors.some((e) => e.message.includes('missed changes'))).toBe(true);
      }, { timeout: 10_000, interval: 50 });
      await writer.put('after', fields(), 0, meta());
      await vi.waitFor(() => {
        expect(received.map((c) => c.key)).toEqual(['before', 'after']);
      }, { timeout: 5000 });
      expect(await s.get('after')).toMatchObject({ version: 1 });
    });
  });

  describe('subscriber', () => {
    it('catches up, in order and without duplicates, on changes made while its connection was cut', async () => {
      const prefix = uniquePrefix('catch-up');
      const s = await store({ url: redisUrl(), prefix });
      const writer = await store({ url: redisUrl(), prefix });
      const received: FlagChange[] = [];
      await s.subscribe((change) => received.push(change));
      await writer.put('a', fields(), 0, meta());
      await vi.waitFor(() => {
        expect(received).toHaveLength(1);
      });
      const admin = adminClient(redisUrl());
      clients.push(admin);
      // Drops only the subscriber connections (ours among them); they reconnect by themselves.
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      for (let version = 1; version <= 5; version++) await writer.put('a', fields({ percentage: version }), version, meta());
      await vi.waitFor(() => {
        expect(received.map((c) => c.revision)).toEqual([1, 2, 3, 4, 5, 6]);
      }, { timeout: 5000 });
      await writer.put('a', fields(), 6, meta());
      await vi.waitFor(() => {
        expect(received.map((c) => c.revision)).toEqual([1, 2, 3, 4, 5, 6, 7]);
      });
    });

    it('keeps delivering to other listeners when one throws, and reports the error', async () => {
      const prefix = uniquePrefix('throwing');
      const errors: Error[] = [];
      const s = await store({ url: redisUrl(), prefix, onError: (e) => errors.push(e) });
      const received: FlagChange[] = [];
      await s.subscribe(() => {
        throw new Error('listener bug');
      });
      await s.subscribe((change) => received.push(change));
      await s.put('a', fields(), 0, meta());
      await vi.waitFor(() => {
        expect(received).toHaveLength(1);
      });
      expect(errors.map((e) => e.message)).toContain('listener bug');
    });
  });

  it('closes both connections: no socket stays open', async () => {
    const handles = await noSocketsOpen();
    const s = await createRedisStore({ url: redisUrl(), prefix: uniquePrefix('close') });
    await s.subscribe(() => undefined);
    await s.put('a', fields(), 0, meta());
    expect(tcpHandles()).toBe(handles + 2);
    await s.close();
    expect(tcpHandles()).toBe(handles);
    await expect(s.get('a')).rejects.toMatchObject({ code: 'store-unavailable' });
    await expect(s.subscribe(() => undefined)).rejects.toMatchObject({ code: 'store-unavailable' });
  });
});
