// Against a real Prometheus scraping a real app every second; one Prometheus for the whole file.
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Observation } from '../../src/metrics/metric-source.js';
import { createPrometheusSource } from '../../src/metrics/prometheus-source.js';
import { createMetricSources } from '../../src/metrics/sources.js';
import { startMetricsApp } from '../support/metrics-app.js';
import type { MetricsApp } from '../support/metrics-app.js';
import { startPrometheus } from '../support/prometheus.js';
import { freePort } from '../support/redis-server.js';
import type { PrometheusServer } from '../support/prometheus.js';

/** Asserts an observation's kind and that its detail contains `fragment` (or matches it). */
function expectObservation(observation: Observation, kind: 'empty' | 'error', fragment: string | RegExp): void {
  expect(observation.kind).toBe(kind);
  const detail = observation.kind === 'empty' || observation.kind === 'error' ? observation.detail : '';
  if (typeof fragment === 'string') expect(detail).toContain(fragment);
  else expect(detail).toMatch(fragment);
}

let app: MetricsApp;
let prometheus: PrometheusServer;
const source = createPrometheusSource({ timeoutMs: 3000 });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function observe(query: string, url = prometheus.url): Promise<Observation> {
  return source.observe({ type: 'prometheus', url, query }, 'checkout', new Date());
}

/** Observes until `done` holds, at most `timeoutMs`; returns the last observation. */
async function observeUntil(query: string, done: (o: Observation) => boolean, timeoutMs = 10_000): Promise<Observation> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const observation = await observe(query);
    if (done(observation) || Date.now() > until) return observation;
    await sleep(250);
  }
}

// Stops what beforeAll started, in reverse order, also when it failed half way (no Prometheus).
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  app = await startMetricsApp();
  cleanups.push(() => app.stop());
  app.queueDepth.set({ queue: 'emails' }, 7);
  app.queueDepth.set({ queue: 'images' }, 3);
  prometheus = await startPrometheus({ targets: [app.target] });
  cleanups.push(() => prometheus.stop());
  // The binary's version goes to the test log, so a report can say which Prometheus ran.
  console.info(`prometheus under test: ${prometheus.version}`);
  await prometheus.waitForTarget('app');
});

afterAll(async () => {
  await source.close();
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('prometheus source against a real Prometheus', () => {
  it('reads the value of a one-series gauge query, with samples 1', async () => {
    const observation = await observeUntil('queue_depth{queue="emails"}', (o) => o.kind === 'value');
    expect(observation).toEqual({ kind: 'value', value: 7, samples: 1 });
  });

  it('follows the gauge when the app changes it', async () => {
    app.queueDepth.set({ queue: 'emails' }, 12);
    const observation = await observeUntil('queue_depth{queue="emails"}', (o) => o.kind === 'value' && o.value === 12);
    expect(observation).toEqual({ kind: 'value', value: 12, samples: 1 });
    app.queueDepth.set({ queue: 'emails' }, 7);
  });

  it('reads an aggregate over several series', async () => {
    const observation = await observeUntil('sum(queue_depth)', (o) => o.kind === 'value' && o.value === 10);
    expect(observation).toEqual({ kind: 'value', value: 10, samples: 1 });
  });

  it('reads a scalar result', async () => {
    expect(await observe('scalar(sum(queue_depth)) * 2')).toMatchObject({ kind: 'value', value: 20 });
  });

  it('computes a p95 with histogram_quantile over rate() once observations flow', async () => {
    // Per batch 9 fast jobs (bucket <= 0.05 s) and 1 slow one (0.25..0.5 s): the p95 lies in the
    // middle of the slow bucket, 0.25 + 0.25 * (0.95 - 0.9) / 0.1 = 0.375 s.
    const feed = setInterval(() => {
      for (let i = 0; i < 9; i++) app.jobSeconds.observe({}, 0.03);
      app.jobSeconds.observe({}, 0.4);
    }, 100);
    try {
      const query = 'histogram_quantile(0.95, sum by (le) (rate(job_seconds_bucket[30s])))';
      const observation = await observeUntil(query, (o) => o.kind === 'value', 15_000);
      expect(observation.kind).toBe('value');
      if (observation.kind !== 'value') return;
      expect(observation.value).toBeCloseTo(0.375, 2);
    } finally {
      clearInterval(feed);
    }
  });

  it('reads an empty vector (a metric that does not exist) as empty', async () => {
    expect(await observe('no_such_metric_anywhere')).toEqual({ kind: 'empty', detail: 'query returned no series' });
  });

  it('reads NaN (0/0, as a ratio over no traffic gives) as empty', async () => {
    const observation = await observe('0 / 0');
    expect(observation.kind).toBe('empty');
    expectObservation(observation, 'empty', 'NaN');
  });

  it('reads +Inf as a value, so an off-the-scale quantile still fails its threshold', async () => {
    expect(await observe('1 / 0')).toEqual({ kind: 'value', value: Infinity, samples: 1 });
    expect(await observe('vector(-1) / 0')).toEqual({ kind: 'value', value: -Infinity, samples: 1 });
  });

  it('reports a query answering several series as an error that says how to fix it', async () => {
    expect(await observe('queue_depth')).toEqual({
      kind: 'error',
      detail: 'query returned 2 series; aggregate it to one (e.g. sum(...))',
    });
  });

  it('reports a range-vector query as an error', async () => {
    const observation = await observe('queue_depth{queue="emails"}[1m]');
    expectObservation(observation, 'error', 'range vector');
  });

  it("reports a syntax error with Prometheus' own message", async () => {
    const observation = await observe('sum(queue_depth');
    expect(observation.kind).toBe('error');
    if (observation.kind !== 'error') return;
    expect(observation.detail).toContain('rejected the query (HTTP 400 bad_data)');
    expect(observation.detail).toMatch(/parse error/);
  });

  it('reports a URL that is not Prometheus (404 page) as an error with the status', async () => {
    const observation = await observe('up', `${app.url}/not-prometheus`);
    expectObservation(observation, 'error', 'HTTP 404');
  });

  it('reports an unreachable Prometheus as an error at once', async () => {
    // Not port 1: fetch refuses a few well-known ports before trying ("bad port").
    const closedPort = await freePort();
    const started = performance.now();
    const observation = await observe('up', `http://127.0.0.1:${closedPort}`);
    expect(observation.kind).toBe('error');
    expectObservation(observation, 'error', 'ECONNREFUSED');
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('reports a Prometheus that never answers as an error within the timeout', async () => {
    app.hang('/stuck/api/v1/query');
    const quick = createPrometheusSource({ timeoutMs: 300 });
    const started = performance.now();
    const observation = await quick.observe({ type: 'prometheus', url: `${app.url}/stuck`, query: 'up' }, 'checkout', new Date());
    const elapsed = performance.now() - started;
    expectObservation(observation, 'error', 'no answer within 300 ms');
    expect(elapsed).toBeGreaterThanOrEqual(250);
    expect(elapsed).toBeLessThan(700);
  });

  it('reports a URL that is not http(s) as an error', async () => {
    expectObservation(await observe('up', 'redis://127.0.0.1:6379'), 'error', 'not a valid http(s) URL');
  });

  it('is reached through createMetricSources for prometheus specs', async () => {
    const sources = createMetricSources({ outcomes: { summary: () => Promise.reject(new Error('unused')) }, timeoutMs: 3000 });
    try {
      const observation = await sources.observe({ type: 'prometheus', url: prometheus.url, query: 'sum(queue_depth)' }, 'checkout', new Date());
      expect(observation).toEqual({ kind: 'value', value: 10, samples: 1 });
    } finally {
      await sources.close();
    }
  });
});
