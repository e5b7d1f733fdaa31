// End to end on real processes: `rampart serve` (guard off) plus two `rampart guard` workers on
// one Redis, a real Prometheus scraping a real app, seconds-long holds.
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGuardProcess } from '../support/guard-process.js';
import type { GuardProcess } from '../support/guard-process.js';
import { startMetricsApp } from '../support/metrics-app.js';
import type { MetricsApp } from '../support/metrics-app.js';
import { startPrometheus } from '../support/prometheus.js';
import type { PrometheusServer } from '../support/prometheus.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';
import { freePort } from '../support/redis-server.js';
import { startServerProcess } from '../support/server-process.js';
import type { ServerProcess } from '../support/server-process.js';

interface View {
  status: string;
  stage: number;
  percentage: number;
  stageStartedAt: string;
  lastCheckAt?: string;
}
interface DecisionEntry {
  action: string;
  actor: string;
  leaseToken?: number;
  samples: { criterion: string; value?: number; verdict: string }[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('guard end to end (Redis, two guard processes)', () => {
  let server: ServerProcess | undefined;
  let guards: GuardProcess[] = [];
  let redis: Redis | undefined;
  let app: MetricsApp | undefined;
  let prometheus: PrometheusServer | undefined;
  let env: Record<string, string>;
  const prefix = uniquePrefix('e2e-guard');
  const queueKey = `${prefix}celery:reports`;

  const call = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${server!.url}${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const view = async (key: string): Promise<View> => (await call('GET', `/flags/${key}/rollout`)).json() as Promise<View>;
  const decisions = async (key: string): Promise<DecisionEntry[]> => ((await (await call('GET', `/flags/${key}/rollout/decisions?limit=200`)).json()) as { entries: DecisionEntry[] }).entries;
  const until = async <T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = await probe();
      if (ok(value)) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}\n${guards.map((g) => g.output()).join('\n').slice(-3000)}`);
      await sleep(100);
    }
  };
  const createFlag = async (key: string): Promise<void> => {
    expect((await call('PUT', `/flags/${key}`, { description: key, enabled: false, percentage: 0 })).status).toBe(201);
  };

  beforeAll(async () => {
    env = { REDIS_URL: redisUrl(), RAMPART_REDIS_PREFIX: prefix, RAMPART_GUARD_INTERVAL: '200ms', RAMPART_GUARD_LEASE_TTL: '1s', RAMPART_GUARD_SOURCE_TIMEOUT: '2s' };
    redis = new Redis(redisUrl(), { commandTimeout: 2000 });
    const metricsApp = await startMetricsApp();
    app = metricsApp;
    metricsApp.queueDepth.set({ queue: 'reports' }, 3);
    const [started, prom] = await Promise.all([startServerProcess({ ...env, RAMPART_GUARD: 'off' }), startPrometheus({ targets: [metricsApp.target] })]);
    server = started;
    prometheus = prom;
    guards = await Promise.all([startGuardProcess({ ...env, RAMPART_GUARD_METRICS_PORT: String(await freePort()) }), startGuardProcess(env)]);
    await prom.waitForTarget('app');
  }, 60_000);

  afterAll(async () => {
    await Promise.all(guards.map((g) => g.stop()));
    await server?.stop();
    await prometheus?.stop();
    await app?.stop();
    redis?.disconnect();
  });

  it('runs the weekly async-report runbook 0 -> 10 -> 25 -> 50 -> 100 on queue depth and success rate, each transition once', async () => {
    await createFlag('async-reports');
    const events = Array.from({ length: 60 }, (_, i) => ({ flagKey: 'async-reports', cohort: 'on', ok: i % 30 !== 0 }));
    expect((await call('POST', '/sdk/v1/outcomes', { events })).status).toBeLessThan(300);
    const plan = {
      stages: [{ percentage: 10, hold: '1s' }, { percentage: 25, hold: '1s' }, { percentage: 50, hold: '1s' }, { percentage: 100 }],
      // Every second in Berlin: the weekly cron of production, compressed.
      schedule: { cron: '* * * * * *', timezone: 'Europe/Berlin' },
      sampleEvery: '1s',
      criteria: [
        { name: 'success', source: { type: 'outcomes', window: '5m' }, metric: 'successRate', op: '>=', threshold: 0.95, minSamples: 20 },
        { name: 'queue', source: { type: 'redis', command: 'LLEN', key: queueKey }, op: '<', threshold: 50 },
      ],
      onFailure: { action: 'revert', after: 2 },
    };
    const installed = await call('PUT', '/flags/async-reports/rollout', plan);
    expect(installed.status).toBe(201);
    const done = await until('completion', () => view('async-reports'), (v) => v.status === 'completed');
    expect(done.percentage).toBe(100);
    const flag = (await (await call('GET', '/flags/async-reports')).json()) as { percentage: number; enabled: boolean };
    expect(flag).toMatchObject({ percentage: 100, enabled: true });
    const entries = await decisions('async-reports');
    expect(entries.filter((e) => e.action === 'advance')).toHaveLength(3);
    const history = (await (await call('GET', '/flags/async-reports/history?limit=100')).json()) as { entries: { source: string; after: { percentage: number } | null }[] };
    expect(history.entries.filter((e) => e.source === 'guard').map((e) => e.after?.percentage)).toEqual([100, 50, 25]);
  });

  it('turns a queue backlog pushed into Redis into a revert within `after` samples, with the observed value in history', async () => {
    await createFlag('async-reports-2');
    const key = `${queueKey}:2`;
    const plan = {
      stages: [{ percentage: 10, hold: '1s' }, { percentage: 25, hold: '1s' }, { percentage: 50, hold: '10m' }, { percentage: 100 }],
      sampleEvery: '1s',
      criteria: [{ name: 'queue', source: { type: 'redis', command: 'LLEN', key }, op: '<', threshold: 50 }],
      onFailure: { action: 'revert', after: 2 },
    };
    expect((await call('PUT', '/flags/async-reports-2/rollout', plan)).status).toBe(201);
    await until('stage 50 %', () => view('async-reports-2'), (v) => v.stage === 2);
    await redis!.rpush(key, ...Array.from({ length: 200 }, (_, i) => `job-${i}`));
    const pushedAt = Date.now();
    const rolled = await until('revert', () => view('async-reports-2'), (v) => v.status === 'rolled-back');
    // Two samples a second apart, plus the tick that notices: well under 4 s.
    expect(Date.now() - pushedAt).toBeLessThan(4000);
    expect(rolled.stage).toBe(0);
    expect(((await (await call('GET', '/flags/async-reports-2')).json()) as { percentage: number }).percentage).toBe(0);
    const entries = await decisions('async-reports-2');
    const revert = entries.find((e) => e.action === 'revert')!;
    expect(revert.actor).toBe('guard');
    expect(revert.samples[0]).toMatchObject({ criterion: 'queue', value: 200, verdict: 'fail' });
    expect(entries.filter((e) => e.action === 'revert')).toHaveLength(1);
    // Passing samples never re-ramp it by themselves.
    await redis!.del(key);
    await sleep(1500);
    expect((await view('async-reports-2')).status).toBe('rolled-back');
  });

  it('runs a Prometheus-guarded 1 -> 5 -> 25 -> 100 canary that stops for approval and goes on after approve', async () => {
    await createFlag('canary');
    const plan = {
      stages: [{ percentage: 1, hold: '1s' }, { percentage: 5, hold: '1s' }, { percentage: 25, hold: '1s', approval: true }, { percentage: 100 }],
      sampleEvery: '1s',
      criteria: [{ name: 'depth', source: { type: 'prometheus', url: prometheus!.url, query: 'max(queue_depth)' }, op: '<', threshold: 50 }],
      notify: [],
    };
    expect((await call('PUT', '/flags/canary/rollout', plan)).status).toBe(201);
    const waiting = await until('approval', () => view('canary'), (v) => v.status === 'awaiting-approval');
    expect(waiting.percentage).toBe(25);
    await sleep(1200);
    expect((await view('canary')).status).toBe('awaiting-approval');
    expect((await call('POST', '/flags/canary/rollout/approve')).status).toBe(200);
    await until('completion', () => view('canary'), (v) => v.status === 'completed');
    const entries = await decisions('canary');
    expect(entries.filter((e) => e.action === 'advance')).toHaveLength(3);
    expect(entries.filter((e) => e.action === 'await-approval')).toHaveLength(1);
    const sample = entries.find((e) => e.action === 'advance')!.samples[0]!;
    expect(sample).toMatchObject({ criterion: 'depth', value: 3, verdict: 'pass' });
  });

  it('serves the guard metrics of a separate `rampart guard` process', async () => {
    const port = /"metrics":"http:\/\/127\.0\.0\.1:(\d+)"/.exec(guards[0]!.output())?.[1];
    expect(port).toBeDefined();
    const text = await (await fetch(`http://127.0.0.1:${port!}/metrics`)).text();
    expect(text).toMatch(/# TYPE rampart_guard_lease_held gauge/);
    // Which of the two guards holds the lease is up to the race; exactly one does.
    expect(text).toMatch(/^rampart_guard_lease_held [01]$/m);
    expect((await fetch(`http://127.0.0.1:${port!}/healthz`)).status).toBe(200);
  });

  it('keeps the stage start when every guard is killed (SIGKILL) mid-stage and a new one starts', async () => {
    await createFlag('kill-test');
    const plan = {
      stages: [{ percentage: 10, hold: '1s' }, { percentage: 50, hold: '1h' }, { percentage: 100 }],
      sampleEvery: '1s',
      criteria: [{ name: 'queue', source: { type: 'redis', command: 'LLEN', key: `${queueKey}:kill` }, op: '<', threshold: 50 }],
    };
    expect((await call('PUT', '/flags/kill-test/rollout', plan)).status).toBe(201);
    const before = await until('stage 1', () => view('kill-test'), (v) => v.stage === 1);
    await Promise.all(guards.map((g) => g.stop('SIGKILL')));
    const killedAt = Date.now();
    guards = [await startGuardProcess(env)];
    const after = await until('a tick by the new guard', () => view('kill-test'), (v) => v.lastCheckAt !== undefined && Date.parse(v.lastCheckAt) > killedAt);
    expect(after.stage).toBe(1);
    expect(after.status).toBe('running');
    expect(after.stageStartedAt).toBe(before.stageStartedAt);
    // Every decision of every flag was made once: one advance per stage left, none repeated.
    expect((await decisions('kill-test')).filter((e) => e.action === 'advance')).toHaveLength(1);
  });
});
