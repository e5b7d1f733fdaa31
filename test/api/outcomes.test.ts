import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { outcomeRoutes } from '../../src/api/routes/outcomes.js';
import type { OutcomeLimits } from '../../src/api/routes/outcomes.js';
import { SnapshotCache } from '../../src/api/snapshot-cache.js';
import { Registry } from '../../src/prometheus.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import { createEmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import type { EmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import type { OutcomeSummary } from '../../src/store/outcome-store.js';
import { createLogger } from '../../src/telemetry.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { expectResponseMatches, loadSpec } from '../support/openapi.js';
import type { HttpMethod, OpenApiSpec, ResponseLike } from '../support/openapi.js';

const ADMIN = { authorization: 'Bearer admin-secret' };
const WEB = { authorization: 'Bearer sdk-web' };
const MOBILE = { authorization: 'Bearer sdk-mobile' };
const POST = '/sdk/v1/outcomes';

/** The HTTP contract, openapi/openapi.yaml. */
function mergedSpec(): OpenApiSpec {
  return loadSpec();
}

const spec = mergedSpec();
const documented = (response: ResponseLike, method: HttpMethod, path: string): void => {
  expectResponseMatches(spec, method, path, response);
};

interface Harness {
  readonly t: TestApp;
  readonly outcomes: EmbeddedOutcomeStore;
  readonly registry: Registry;
  /** Advances the server clock the routes see. */
  tick(ms: number): void;
  now(): Date;
  close(): Promise<void>;
}

/** The app with the outcome routes, two flags (`checkout`, `search`), and a clock the test drives. */
async function harness(limits?: OutcomeLimits): Promise<Harness> {
  const dir = await mkdtemp(join(tmpdir(), 'rampart-outcomes-api-'));
  const store = await createEmbeddedStore({ dir: join(dir, 'flags') });
  const outcomes = await createEmbeddedOutcomeStore({ dir: join(dir, 'flags') });
  const cache = new SnapshotCache({ store, logger: createLogger('silent') });
  await cache.start();
  const registry = new Registry();
  let clock = Date.now();
  const now = (): Date => new Date(clock);
  const t = await buildTestApp({
    store,
    adminTokens: [{ name: 'ops', secret: 'admin-secret' }],
    sdkTokens: [{ name: 'web', secret: 'sdk-web' }, { name: 'mobile', secret: 'sdk-mobile' }],
    plugins: [outcomeRoutes({ outcomes, cache, registry, now, ...(limits === undefined ? {} : { limits }) })],
  });
  for (const key of ['checkout', 'search']) {
    const res = await t.app.inject({ method: 'PUT', url: `/flags/${key}`, headers: ADMIN, payload: { percentage: 10 } });
    expect(res.statusCode).toBe(201);
  }
  await vi.waitFor(() => {
    expect(cache.flag('search')).toBeDefined();
  });
  return {
    t,
    outcomes,
    registry,
    tick: (ms) => {
      clock += ms;
    },
    now,
    async close() {
      await t.close();
      await cache.stop();
      await outcomes.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const event = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({ flagKey: 'checkout', cohort: 'on', ok: true, latencyMs: 12.5, ...overrides });

describe('POST /sdk/v1/outcomes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
  });
  afterAll(async () => {
    await h.close();
  });

  const post = (payload: unknown, headers: Record<string, string> = WEB) =>
    h.t.app.inject({ method: 'POST', url: POST, headers, payload: payload as Record<string, unknown> });
  const counted = async (flagKey = 'checkout'): Promise<number> => {
    const { on, off } = (await h.outcomes.summary(flagKey, 3_600_000, h.now())).cohorts;
    return on.count + off.count;
  };

  it('answers 202 with the number accepted and counts every event at the server time', async () => {
    const before = await counted();
    const res = await post({ events: [event(), event({ cohort: 'off', ok: false }), event({ latencyMs: undefined }), event({ flagKey: 'search', latencyMs: 0 })] });
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 4 });
    documented(res, 'POST', POST);
    expect(await counted()).toBe(before + 3);
    const summary = await h.outcomes.summary('checkout', 60_000, h.now());
    expect(summary.cohorts.off).toMatchObject({ count: 1, failed: 1, latencyCount: 1 });
    const metrics = h.registry.render();
    expect(metrics).toContain('rampart_outcomes_accepted_total{flag="checkout",cohort="on"} 2');
    expect(metrics).toContain('rampart_outcomes_accepted_total{flag="search",cohort="on"} 1');
  });

  it('accepts an admin token and an empty batch', async () => {
    const res = await post({ events: [] }, ADMIN);
    expect(res.statusCode).toBe(202);
    expect(res.json()).toEqual({ accepted: 0 });
  });

  const invalid: readonly [string, unknown, string][] = [
    ['a cohort other than on/off', { events: [event(), event({ cohort: 'maybe' })] }, 'body.events.1.cohort'],
    ['a missing cohort', { events: [event({ cohort: undefined })] }, 'body.events.0.cohort'],
    ['ok as a string', { events: [event(), event(), event({ ok: 'true' })] }, 'body.events.2.ok'],
    ['a missing ok', { events: [event({ ok: undefined })] }, 'body.events.0.ok'],
    ['a negative latency', { events: [event({ latencyMs: -1 })] }, 'body.events.0.latencyMs'],
    ['a latency over an hour', { events: [event({ latencyMs: 3_600_001 })] }, 'body.events.0.latencyMs'],
    ['a latency as a string', { events: [event({ latencyMs: '12' })] }, 'body.events.0.latencyMs'],
    ['a null latency', { events: [event({ latencyMs: null })] }, 'body.events.0.latencyMs'],
    ['an unknown field in an event', { events: [event({ at: '2025-01-01T00:00:00Z' })] }, 'body.events.0'],
    ['an unknown field in the body', { events: [event()], extra: 1 }, 'body'],
    ['a flag key that is not a string', { events: [event({ flagKey: 7 })] }, 'body.events.0.flagKey'],
    ['an event that is not an object', { events: [event(), 'ok'] }, 'body.events.1'],
    ['events that are not an array', { events: event() }, 'body.events'],
    ['no events field', {}, 'body.events'],
  ];
  for (const [name, body, path] of invalid) {
    it(`answers 400 for ${name}, naming ${path}, and counts nothing of the batch`, async () => {
      const before = await counted();
      const res = await post(body);
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      documented(res, 'POST', POST);
      const problem = res.json<{ type: string; errors: { path: string; message: string }[] }>();
      expect(problem.type).toBe('https://rampart.dev/problems/validation');
      expect(problem.errors.map((e) => e.path)).toContain(path);
      expect(await counted()).toBe(before);
    });
  }

  it('answers 400 for an unknown flag key, naming every one, and counts nothing of the batch', async () => {
    const before = await counted();
    const res = await post({ events: [event(), event({ flagKey: 'made-up' }), event(), event({ flagKey: 'also-made-up' })] });
    expect(res.statusCode).toBe(400);
    documented(res, 'POST', POST);
    expect(res.json<{ errors: { path: string }[] }>().errors.map((e) => e.path)).toEqual(['body.events.1.flagKey', 'body.events.3.flagKey']);
    expect(await counted()).toBe(before);
    expect((await h.outcomes.summary('made-up', 60_000, h.now())).cohorts.on.count).toBe(0);
    expect(h.registry.render()).toMatch(/rampart_outcomes_rejected_total\{reason="unknown-flag"\} [1-9]/);
  });

  it('answers 400 for 501 events and counts none; 500 are fine', async () => {
    const before = await counted();
    const res = await post({ events: Array.from({ length: 501 }, () => event()) });
    expect(res.statusCode).toBe(400);
    documented(res, 'POST', POST);
    expect(res.json<{ errors: { path: string }[] }>().errors.map((e) => e.path)).toEqual(['body.events']);
    expect(await counted()).toBe(before);
    expect(h.registry.render()).toContain('rampart_outcomes_rejected_total{reason="batch-too-large"} 501');
    const ok = await post({ events: Array.from({ length: 500 }, () => event()) });
    expect(ok.statusCode).toBe(202);
    expect(await counted()).toBe(before + 500);
  });

  it('answers 401 without a token and 415 for a text body', async () => {
    const res = await h.t.app.inject({ method: 'POST', url: POST, payload: { events: [] } });
    expect(res.statusCode).toBe(401);
    documented(res, 'POST', POST);
    const text = await h.t.app.inject({ method: 'POST', url: POST, headers: { ...WEB, 'content-type': 'text/plain' }, payload: 'hello' });
    expect(text.statusCode).toBe(415);
    documented(text, 'POST', POST);
  });
});

describe('POST /sdk/v1/outcomes rate limits', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness({ batchesPerSecond: 2, eventsPerMinute: 600, maxBatchEvents: 300 });
  });
  afterAll(async () => {
    await h.close();
  });

  const post = (events: number, headers: Record<string, string>) =>
    h.t.app.inject({ method: 'POST', url: POST, headers, payload: { events: Array.from({ length: events }, () => event({ flagKey: 'search' })) } });
  const counted = async (): Promise<number> => (await h.outcomes.summary('search', 3_600_000, h.now())).cohorts.on.count;

  it('answers 429 with Retry-After once a token exceeds its batches per second; another token is unaffected', async () => {
    expect((await post(1, WEB)).statusCode).toBe(202);
    expect((await post(1, WEB)).statusCode).toBe(202);
    const before = await counted();
    const limited = await post(1, WEB);
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['retry-after']).toBe('1');
    documented(limited, 'POST', POST);
    expect(limited.json<{ type: string }>().type).toBe('https://rampart.dev/problems/rate-limited');
    expect(await counted()).toBe(before);
    expect((await post(1, MOBILE)).statusCode).toBe(202);
    // Half a second refills one batch at 2 per second.
    h.tick(500);
    expect((await post(1, WEB)).statusCode).toBe(202);
    expect((await post(1, WEB)).statusCode).toBe(429);
    h.tick(1000);
    expect(h.registry.render()).toContain('rampart_outcomes_rejected_total{reason="rate-limited"} 2');
  });

  it('answers 429 once a token exceeds its events per minute, with the wait until the batch fits', async () => {
    // mobile used 1 of its 600 events above.
    expect((await post(300, MOBILE)).statusCode).toBe(202);
    h.tick(1000);
    expect((await post(299, MOBILE)).statusCode).toBe(202);
    h.tick(1000);
    const before = await counted();
    const limited = await post(300, MOBILE);
    expect(limited.statusCode).toBe(429);
    // About 20 events came back in 2 s (10 per second); 280 more take about 28 s.
    const wait = Number(limited.headers['retry-after']);
    expect(wait).toBeGreaterThanOrEqual(27);
    expect(wait).toBeLessThanOrEqual(30);
    expect(await counted()).toBe(before);
    // The web token has its own budget.
    expect((await post(300, WEB)).statusCode).toBe(202);
    h.tick(wait * 1000);
    expect((await post(300, MOBILE)).statusCode).toBe(202);
  });
});

describe('GET /flags/:key/outcomes', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness();
    const events = [
      ...Array.from({ length: 95 }, (_, i) => event({ latencyMs: 100 + (i + 0.5) * (150 / 95) })),
      ...Array.from({ length: 5 }, () => event({ ok: false, latencyMs: 400 })),
      ...Array.from({ length: 10 }, () => event({ cohort: 'off', latencyMs: 20 })),
    ];
    const res = await h.t.app.inject({ method: 'POST', url: POST, headers: WEB, payload: { events } });
    expect(res.statusCode).toBe(202);
    // An hour later, one more on-cohort outcome.
    h.tick(3_600_000);
    const later = await h.t.app.inject({ method: 'POST', url: POST, headers: WEB, payload: { events: [event({ ok: false })] } });
    expect(later.statusCode).toBe(202);
  });
  afterAll(async () => {
    await h.close();
  });

  const get = (url: string, headers: Record<string, string> = ADMIN) => h.t.app.inject({ method: 'GET', url, headers });

  it('summarises the last 15 minutes by default', async () => {
    const res = await get('/flags/checkout/outcomes');
    expect(res.statusCode).toBe(200);
    documented(res, 'GET', '/flags/{key}/outcomes');
    const summary = res.json<OutcomeSummary>();
    expect(summary).toMatchObject({ flagKey: 'checkout', windowMs: 900_000, to: h.now().toISOString() });
    expect(summary.cohorts.on).toMatchObject({ count: 1, ok: 0, failed: 1, successRate: 0, latencyCount: 1 });
    expect(summary.cohorts.off).toMatchObject({ count: 0, successRate: null, p50: null });
  });

  it('summarises a longer window with rates and interpolated quantiles', async () => {
    const res = await get('/flags/checkout/outcomes?window=2h');
    expect(res.statusCode).toBe(200);
    documented(res, 'GET', '/flags/{key}/outcomes');
    const { cohorts, windowMs, from } = res.json<OutcomeSummary>();
    expect(windowMs).toBe(7_200_000);
    expect(Date.parse(from)).toBeLessThanOrEqual(h.now().getTime() - 7_200_000);
    expect(cohorts.on).toMatchObject({ count: 101, ok: 95, failed: 6, latencyCount: 101 });
    expect(cohorts.on.successRate).toBeCloseTo(95 / 101, 10);
    // 95 in (100, 250], 5 in (250, 500] and the later one at 12.5 ms in (10, 25].
    expect(cohorts.on.p50).toBeGreaterThan(100);
    expect(cohorts.on.p50).toBeLessThan(250);
    expect(cohorts.on.p99).toBeGreaterThan(250);
    expect(cohorts.on.p99).toBeLessThanOrEqual(500);
    expect(cohorts.off).toMatchObject({ count: 10, successRate: 1 });
    expect(cohorts.off.p50).toBeCloseTo(17.5, 10);
  });

  it('answers 404 for an unknown flag', async () => {
    const res = await get('/flags/made-up/outcomes');
    expect(res.statusCode).toBe(404);
    documented(res, 'GET', '/flags/{key}/outcomes');
  });

  for (const window of ['15', 'fifteen', '15y', '-5m', '0s', '49h', '3d']) {
    it(`answers 400 for window=${window}`, async () => {
      const res = await get(`/flags/checkout/outcomes?window=${window}`);
      expect(res.statusCode).toBe(400);
      documented(res, 'GET', '/flags/{key}/outcomes');
      expect(res.json<{ errors: { path: string }[] }>().errors[0]?.path).toBe('query.window');
    });
  }

  it('answers 400 for an unknown query parameter', async () => {
    const res = await get('/flags/checkout/outcomes?windw=1h');
    expect(res.statusCode).toBe(400);
    documented(res, 'GET', '/flags/{key}/outcomes');
  });

  it('answers 403 to an SDK token and 401 without one', async () => {
    const sdk = await get('/flags/checkout/outcomes', WEB);
    expect(sdk.statusCode).toBe(403);
    documented(sdk, 'GET', '/flags/{key}/outcomes');
    const anonymous = await get('/flags/checkout/outcomes', {});
    expect(anonymous.statusCode).toBe(401);
    documented(anonymous, 'GET', '/flags/{key}/outcomes');
  });
});
