// Through the real Redis outcome store (src/store/redis-outcome-store.ts) on the test run's Redis.
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Observation } from '../../src/metrics/metric-source.js';
import { createOutcomesSource } from '../../src/metrics/outcomes-source.js';
import { createMetricSources } from '../../src/metrics/sources.js';
import type { OutcomeEvent } from '../../src/store/outcome-store.js';
import { createRedisOutcomeStore } from '../../src/store/redis-outcome-store.js';
import type { RedisOutcomeStore } from '../../src/store/redis-outcome-store.js';
import { startRedisServer } from '../support/redis-server.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';

/** Asserts an observation's kind and that its detail contains `fragment` (or matches it). */
function expectObservation(observation: Observation, kind: 'empty' | 'error', fragment: string | RegExp): void {
  expect(observation.kind).toBe(kind);
  const detail = observation.kind === 'empty' || observation.kind === 'error' ? observation.detail : '';
  if (typeof fragment === 'string') expect(detail).toContain(fragment);
  else expect(detail).toMatch(fragment);
}

const prefix = uniquePrefix('outcomes-source');
// A recent whole minute: Redis expires outcome slices by real time (retention 48 h), so a fixed
// date would stop working two days after it was written.
const now = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const ago = (ms: number): Date => new Date(now.getTime() - ms);
let store: RedisOutcomeStore;

function event(cohort: 'on' | 'off', ok: boolean, at: Date, latencyMs?: number): OutcomeEvent {
  return { flagKey: 'checkout', cohort, ok, at, latencyMs };
}

beforeAll(async () => {
  store = await createRedisOutcomeStore({ url: redisUrl(), prefix });
  await store.record([
    event('on', true, ago(20_000), 40),
    event('on', true, ago(15_000), 60),
    event('on', true, ago(12_000), 80),
    event('on', false, ago(11_000), 900),
    event('off', true, ago(30_000), 50),
    event('off', true, ago(25_000)),
    // Outside a one-minute window.
    event('on', false, ago(10 * 60_000), 5000),
  ]);
});

afterAll(async () => {
  await store.close();
  const admin = new Redis(redisUrl(), { commandTimeout: 2000 });
  const keys = await admin.keys(`${prefix}*`);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
});

describe('outcomes source', () => {
  it("answers both cohorts' stats over the window as a cohorts observation", async () => {
    const sources = createMetricSources({ outcomes: store, timeoutMs: 2000 });
    try {
      const observation = await sources.observe({ type: 'outcomes', windowMs: 60_000 }, 'checkout', now);
      expect(observation).toMatchObject({
        kind: 'cohorts',
        on: { count: 4, ok: 3, failed: 1, successRate: 0.75, latencyCount: 4 },
        off: { count: 2, ok: 2, failed: 0, successRate: 1, latencyCount: 1 },
      });
      const summary = await store.summary('checkout', 60_000, now);
      expect(observation).toEqual({ kind: 'cohorts', on: summary.cohorts.on, off: summary.cohorts.off });
    } finally {
      await sources.close();
    }
  });

  it('passes the window on: a longer one includes the older failure', async () => {
    const source = createOutcomesSource({ outcomes: store });
    expect(await source.observe({ type: 'outcomes', windowMs: 15 * 60_000 }, 'checkout', now)).toMatchObject({
      kind: 'cohorts',
      on: { count: 5, failed: 2 },
    });
  });

  it('answers empty cohorts (null rates) for a flag without outcomes', async () => {
    const source = createOutcomesSource({ outcomes: store });
    expect(await source.observe({ type: 'outcomes', windowMs: 60_000 }, 'never-tracked', now)).toMatchObject({
      kind: 'cohorts',
      on: { count: 0, successRate: null, p95: null },
      off: { count: 0, successRate: null },
    });
  });

  it('reports a failing store as an error observation', async () => {
    const closed = await createRedisOutcomeStore({ url: redisUrl(), prefix });
    await closed.close();
    const source = createOutcomesSource({ outcomes: closed });
    const observation = await source.observe({ type: 'outcomes', windowMs: 60_000 }, 'checkout', now);
    expectObservation(observation, 'error', "outcomes of 'checkout' over 60000 ms: the outcome store failed");
  });

  it('answers within its own timeout when the store waits longer (frozen Redis)', async () => {
    const server = await startRedisServer();
    const slow = await createRedisOutcomeStore({ url: server.url, prefix, commandTimeoutMs: 10_000 });
    const source = createOutcomesSource({ outcomes: slow, timeoutMs: 300 });
    try {
      server.process.kill('SIGSTOP');
      const started = performance.now();
      const observation = await source.observe({ type: 'outcomes', windowMs: 60_000 }, 'checkout', now);
      expectObservation(observation, 'error', 'no answer within 300 ms');
      expect(performance.now() - started).toBeLessThan(700);
    } finally {
      server.process.kill('SIGCONT');
      await slow.close();
      await server.stop();
    }
  });
});
