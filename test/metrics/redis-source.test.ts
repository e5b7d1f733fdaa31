// Against the test run's real Redis, plus private redis-servers for outages (refused, frozen).
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisCommand, SourceSpec } from '../../src/core/rollout/plan.js';
import type { Observation } from '../../src/metrics/metric-source.js';
import { createRedisSource } from '../../src/metrics/redis-source.js';
import { createMetricSources } from '../../src/metrics/sources.js';
import { freePort, startRedisServer } from '../support/redis-server.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';

/** Asserts an observation's kind and that its detail contains `fragment` (or matches it). */
function expectObservation(observation: Observation, kind: 'empty' | 'error', fragment: string | RegExp): void {
  expect(observation.kind).toBe(kind);
  const detail = observation.kind === 'empty' || observation.kind === 'error' ? observation.detail : '';
  if (typeof fragment === 'string') expect(detail).toContain(fragment);
  else expect(detail).toMatch(fragment);
}

const prefix = uniquePrefix('redis-source');
const k = (name: string): string => `${prefix}${name}`;
let admin: Redis;
const source = createRedisSource({ timeoutMs: 2000 });

function observe(command: RedisCommand, key: string, extra: { url?: string; field?: string } = {}): Promise<Observation> {
  const spec: SourceSpec = { type: 'redis', url: extra.url ?? redisUrl(), command, key, ...(extra.field === undefined ? {} : { field: extra.field }) };
  return source.observe(spec, 'checkout', new Date());
}

/** Connections to `url` other than `admin`'s own, as Redis counts them. */
async function otherClients(client: Redis): Promise<number> {
  const list = await client.client('LIST');
  return String(list).trim().split('\n').length - 1;
}

beforeAll(async () => {
  admin = new Redis(redisUrl(), { commandTimeout: 2000, lazyConnect: true });
  await admin.connect();
  await admin.rpush(k('jobs'), 'a', 'b', 'c');
  await admin.xadd(k('events'), '*', 'n', '1');
  await admin.xadd(k('events'), '*', 'n', '2');
  await admin.zadd(k('workers'), 1, 'w1', 2, 'w2', 3, 'w3', 4, 'w4');
  await admin.set(k('errors'), '42.5');
  await admin.set(k('word'), 'abc');
  await admin.set(k('blank'), '');
  await admin.set(k('hex'), '0x1f');
  await admin.hset(k('stats'), 'p95', '0.31', 'label', 'fast');
});

afterAll(async () => {
  await source.close();
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
});

describe('redis source', () => {
  it('reads LLEN of a list, and 0 for a missing key (as Redis answers)', async () => {
    expect(await observe('LLEN', k('jobs'))).toEqual({ kind: 'value', value: 3 });
    expect(await observe('LLEN', k('no-such-list'))).toEqual({ kind: 'value', value: 0 });
  });

  it('reads XLEN of a stream, and 0 for a missing key', async () => {
    expect(await observe('XLEN', k('events'))).toEqual({ kind: 'value', value: 2 });
    expect(await observe('XLEN', k('no-such-stream'))).toEqual({ kind: 'value', value: 0 });
  });

  it('reads ZCARD of a sorted set, and 0 for a missing key', async () => {
    expect(await observe('ZCARD', k('workers'))).toEqual({ kind: 'value', value: 4 });
    expect(await observe('ZCARD', k('no-such-zset'))).toEqual({ kind: 'value', value: 0 });
  });

  it('reads GET of a decimal string, and empty for a missing key', async () => {
    expect(await observe('GET', k('errors'))).toEqual({ kind: 'value', value: 42.5 });
    expect(await observe('GET', k('no-such-key'))).toEqual({ kind: 'empty', detail: `key '${k('no-such-key')}' does not exist` });
  });

  it('reports GET of a value that is not a decimal number as an error naming value and key', async () => {
    expect(await observe('GET', k('word'))).toEqual({ kind: 'error', detail: `value 'abc' at key '${k('word')}' is not a number` });
    expectObservation(await observe('GET', k('blank')), 'error', 'is not a number');
    expectObservation(await observe('GET', k('hex')), 'error', 'is not a number');
  });

  it('reads HGET of a field; empty for a missing field or key; error for a non-number', async () => {
    expect(await observe('HGET', k('stats'), { field: 'p95' })).toEqual({ kind: 'value', value: 0.31 });
    expectObservation(await observe('HGET', k('stats'), { field: 'p99' }), 'empty', "field 'p99'");
    expect(await observe('HGET', k('no-such-hash'), { field: 'p95' })).toMatchObject({ kind: 'empty' });
    expectObservation(await observe('HGET', k('stats'), { field: 'label' }), 'error', "value 'fast'");
  });

  it('reports HGET without a field as an error', async () => {
    expectObservation(await observe('HGET', k('stats')), 'error', 'needs a field');
  });

  it("reports a command on a key of the wrong type with Redis' message", async () => {
    expectObservation(await observe('LLEN', k('errors')), 'error', 'WRONGTYPE');
  });

  it('reads the default Redis for specs without a url, and says when there is none', async () => {
    const withDefault = createRedisSource({ defaultUrl: redisUrl(), timeoutMs: 2000 });
    const withoutDefault = createRedisSource({ timeoutMs: 2000 });
    try {
      const spec: SourceSpec = { type: 'redis', command: 'LLEN', key: k('jobs') };
      expect(await withDefault.observe(spec, 'checkout', new Date())).toEqual({ kind: 'value', value: 3 });
      expectObservation(await withoutDefault.observe(spec, 'checkout', new Date()), 'error', 'no default Redis is configured');
    } finally {
      await Promise.all([withDefault.close(), withoutDefault.close()]);
    }
  });

  it('reports an unreachable Redis as an error at once, saying why', async () => {
    const started = performance.now();
    const observation = await observe('LLEN', 'jobs', { url: 'redis://127.0.0.1:1' });
    expectObservation(observation, 'error', 'at redis://127.0.0.1:1: cannot connect: connect ECONNREFUSED');
    expectObservation(observation, 'error', 'ECONNREFUSED');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('keeps a password in the URL out of the detail', async () => {
    const observation = await observe('LLEN', 'jobs', { url: 'redis://:hunter2@127.0.0.1:1' });
    expect(observation.kind).toBe('error');
    expect(JSON.stringify(observation)).not.toContain('hunter2');
  });

  it('reports a spec of another type as an error', async () => {
    expect(await source.observe({ type: 'outcomes', windowMs: 1000 }, 'checkout', new Date())).toMatchObject({ kind: 'error' });
  });
});

describe('redis source connections', () => {
  it('keeps one connection per URL across observations and closes it in close()', async () => {
    const server = await startRedisServer();
    const watcher = new Redis(server.url, { commandTimeout: 2000, lazyConnect: true });
    const own = createRedisSource({ timeoutMs: 2000 });
    try {
      await watcher.connect();
      await Promise.all([1, 2, 3].map(() => own.observe({ type: 'redis', url: server.url, command: 'LLEN', key: 'q' }, 'checkout', new Date())));
      for (let i = 0; i < 3; i++) {
        expect(await own.observe({ type: 'redis', url: server.url, command: 'LLEN', key: 'q' }, 'checkout', new Date())).toEqual({ kind: 'value', value: 0 });
      }
      expect(await otherClients(watcher)).toBe(1);
      await own.close();
      expect(await otherClients(watcher)).toBe(0);
      expectObservation(await own.observe({ type: 'redis', url: server.url, command: 'LLEN', key: 'q' }, 'checkout', new Date()), 'error', 'closed');
    } finally {
      await own.close();
      watcher.disconnect();
      await server.stop();
    }
  });

  it('connects on a later observation once a Redis that refused comes up', async () => {
    const port = await freePort();
    const url = `redis://127.0.0.1:${port}`;
    const own = createRedisSource({ timeoutMs: 2000 });
    const spec: SourceSpec = { type: 'redis', url, command: 'LLEN', key: 'q' };
    try {
      expectObservation(await own.observe(spec, 'checkout', new Date()), 'error', 'ECONNREFUSED');
      const server = await startRedisServer([], port);
      try {
        expect(await own.observe(spec, 'checkout', new Date())).toEqual({ kind: 'value', value: 0 });
      } finally {
        await server.stop();
      }
      // The server went away under an open connection: an error at once, not a wait.
      const started = performance.now();
      expect(await own.observe(spec, 'checkout', new Date())).toMatchObject({ kind: 'error' });
      expect(performance.now() - started).toBeLessThan(2500);
    } finally {
      await own.close();
    }
  });

  describe('a frozen Redis (SIGSTOP)', () => {
    const timeoutMs = 400;
    let server: Awaited<ReturnType<typeof startRedisServer>>;

    beforeAll(async () => {
      server = await startRedisServer();
    });

    afterAll(async () => {
      server.process.kill('SIGCONT');
      await server.stop();
    });

    it('is an error within the timeout on an open connection and on a new one, and recovers', async () => {
      const warm = createRedisSource({ timeoutMs });
      const cold = createRedisSource({ timeoutMs });
      const spec: SourceSpec = { type: 'redis', url: server.url, command: 'GET', key: 'errors' };
      try {
        expect(await warm.observe(spec, 'checkout', new Date())).toMatchObject({ kind: 'empty' });
        server.process.kill('SIGSTOP');

        let started = performance.now();
        const onOpen = await warm.observe(spec, 'checkout', new Date());
        let elapsed = performance.now() - started;
        expect(onOpen).toMatchObject({ kind: 'error' });
        expectObservation(onOpen, 'error', /timed out|no answer within 400 ms/);
        expect(elapsed).toBeLessThan(timeoutMs + 400);

        // The kernel still accepts the TCP connection; the ready check is what never answers.
        started = performance.now();
        const onNew = await cold.observe(spec, 'checkout', new Date());
        elapsed = performance.now() - started;
        expect(onNew).toMatchObject({ kind: 'error' });
        expect(elapsed).toBeLessThan(timeoutMs + 400);

        server.process.kill('SIGCONT');
        const after = await warm.observe(spec, 'checkout', new Date());
        expect(after).toMatchObject({ kind: 'empty' });
        expect(await cold.observe(spec, 'checkout', new Date())).toMatchObject({ kind: 'empty' });
      } finally {
        server.process.kill('SIGCONT');
        await Promise.all([warm.close(), cold.close()]);
      }
    });
  });
});

describe('createMetricSources with redis specs', () => {
  it('routes redis specs, uses defaultRedisUrl, and reports unknown types as errors', async () => {
    const sources = createMetricSources({ outcomes: { summary: () => Promise.reject(new Error('unused')) }, defaultRedisUrl: redisUrl(), timeoutMs: 2000 });
    try {
      expect(await sources.observe({ type: 'redis', command: 'ZCARD', key: k('workers') }, 'checkout', new Date())).toEqual({ kind: 'value', value: 4 });
      const bogus = JSON.parse('{"type":"statsd","url":"udp://x"}') as SourceSpec;
      expect(await sources.observe(bogus, 'checkout', new Date())).toEqual({ kind: 'error', detail: "unknown metric source type 'statsd'" });
    } finally {
      await sources.close();
    }
    expect(await sources.observe({ type: 'redis', command: 'ZCARD', key: k('workers') }, 'checkout', new Date())).toMatchObject({ kind: 'error' });
  });

  it('refuses a timeout that is not a positive number', () => {
    expect(() => createMetricSources({ outcomes: { summary: () => Promise.reject(new Error('unused')) }, timeoutMs: 0 })).toThrow(RangeError);
  });
});
