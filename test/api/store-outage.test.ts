import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from '../../src/prometheus.js';
import { instrumentStore } from '../../src/store/instrumented-store.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { parseMetrics } from '../support/metrics-text.js';
import { startRedisServer } from '../support/redis-server.js';
import type { RedisServer } from '../support/redis-server.js';

describe('the server while its Redis is down', () => {
  let redis: RedisServer;
  let t: TestApp;
  beforeAll(async () => {
    redis = await startRedisServer();
    const registry = new Registry();
    const store = instrumentStore(await createRedisStore({ url: redis.url, prefix: 'outage:', commandTimeoutMs: 500 }), registry);
    t = await buildTestApp({ store, registry });
    await t.app.inject({ method: 'PUT', url: '/flags/steady', payload: { enabled: true, percentage: 30 } });
    await t.cache.resync();
    await redis.stop();
  });
  afterAll(async () => {
    await t.close();
    await redis.stop();
  });

  it('keeps serving the last snapshot to SDKs', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags' });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ flags: Record<string, { percentage: number }> }>().flags.steady?.percentage).toBe(30);
  });

  it('answers /readyz with 503 and the reason', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.statusCode).toBe(503);
    const body = res.json<{ status: string; reasons: string[] }>();
    expect(body.status).toBe('not-ready');
    expect(body.reasons.join(' ')).toMatch(/store unreachable/);
    expect((await t.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('refuses writes with 503 problem+json and Retry-After, hiding internals, and counts store errors', async () => {
    const res = await t.app.inject({ method: 'PATCH', url: '/flags/steady', payload: { percentage: 40 } });
    expect(res.statusCode).toBe(503);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.headers['retry-after']).toBe('1');
    expect(res.json<{ detail: string }>().detail).toBe('the flag store cannot be reached; retry shortly');
    const m = parseMetrics((await t.app.inject({ method: 'GET', url: '/metrics' })).body);
    expect(m.get('rampart_store_errors_total{operation="get"}')).toBeGreaterThanOrEqual(1);
  });

  it('recovers by itself when Redis is back: ready again, writes accepted, flags intact', async () => {
    const again = await startRedisServer([], redis.port);
    try {
      // A fresh Redis lost everything (no persistence here); the point is that the server reconnects.
      await expect.poll(async () => (await t.app.inject({ method: 'GET', url: '/readyz' })).statusCode, { timeout: 5000, interval: 200 }).toBe(200);
      const res = await t.app.inject({ method: 'PUT', url: '/flags/after', payload: { percentage: 5 } });
      expect(res.statusCode).toBe(201);
    } finally {
      await again.stop();
    }
  });
});
