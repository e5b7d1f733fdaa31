// Security faults: admin routes refuse SDK and missing tokens, secrets stay out of logs and
// error bodies, bodies over 1 MiB are 413, streams and outcome ingestion are bounded per token.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT } from '../../src/api/app.js';
import { outcomeRoutes } from '../../src/api/routes/outcomes.js';
import { rolloutRoutes } from '../../src/api/routes/rollouts.js';
import { createEmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import type { EmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import type { EmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { FlagStore } from '../../src/store/flag-store.js';
import { createLogger } from '../../src/telemetry.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { loadSpec } from '../support/openapi.js';
import type { HttpMethod } from '../support/openapi.js';
import { openSse } from '../support/sse.js';
import { captureLogs } from '../support/log-capture.js';

const ADMIN_SECRET = 'adm-sec-9d8e7f6a5b4c';
const SDK_SECRET = 'sdk-sec-1a2b3c4d5e6f';
const SDK2_SECRET = 'sdk-sec-mobile-77aa88bb';
const ADMIN = { authorization: `Bearer ${ADMIN_SECRET}` };
const SDK = { authorization: `Bearer ${SDK_SECRET}` };
const SDK2 = { authorization: `Bearer ${SDK2_SECRET}` };
const SECRETS = [ADMIN_SECRET, SDK_SECRET, SDK2_SECRET];
const PLAN = { stages: [{ percentage: 1, hold: '15m' }, { percentage: 100 }], sampleEvery: '1m', criteria: [] };

interface Operation {
  readonly method: HttpMethod;
  readonly path: string;
  readonly url: string;
  readonly security: unknown;
  readonly body: boolean;
}

/** Every documented operation, with `{key}` filled in and the document-level security applied. */
function operations(): Operation[] {
  const spec = loadSpec();
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const method of ['get', 'put', 'post', 'patch', 'delete'] as const) {
      const op = item[method] as { security?: unknown; requestBody?: unknown } | undefined;
      if (op === undefined) continue;
      out.push({ method: method.toUpperCase() as HttpMethod, path, url: path.replace('{key}', 'f1'), security: op.security ?? spec.security, body: op.requestBody !== undefined });
    }
  }
  return out;
}

const OPS = operations();
const ADMIN_ONLY = OPS.filter((op) => JSON.stringify(op.security) === JSON.stringify([{ adminToken: [] }]));
const WITH_BODY = OPS.filter((op) => op.body);
const label = (op: Operation): string => `${op.method} ${op.path}`;


/** The flag store, with reads that can be made to fail, so the 5xx logging path runs. */
function failable(store: FlagStore): { store: FlagStore; fail: (on: boolean) => void } {
  let failing = false;
  const wrapped: FlagStore = {
    get: (key) => (failing ? Promise.reject(new Error(`store exploded reading ${key}`)) : store.get(key)),
    snapshot: () => (failing ? Promise.reject(new Error('store exploded')) : store.snapshot()),
    put: (...args) => store.put(...args),
    delete: (...args) => store.delete(...args),
    history: (...args) => store.history(...args),
    changesSince: (...args) => store.changesSince(...args),
    subscribe: (...args) => store.subscribe(...args),
    ping: () => store.ping(),
    close: () => store.close(),
  };
  return { store: wrapped, fail: (on) => { failing = on; } };
}

describe('security faults', () => {
  const logs = captureLogs();
  let t: TestApp;
  let dir: string;
  let rollouts: EmbeddedRolloutStore;
  let outcomes: EmbeddedOutcomeStore;
  let fail: (on: boolean) => void;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-security-'));
    rollouts = await createEmbeddedRolloutStore({ dir });
    outcomes = await createEmbeddedOutcomeStore({ dir });
    const wrapped = failable(await createEmbeddedStore({ dir: join(dir, 'flags') }));
    fail = wrapped.fail;
    t = await buildTestApp({
      store: wrapped.store,
      logger: createLogger('trace', logs.stream),
      adminTokens: [{ name: 'ops', secret: ADMIN_SECRET }],
      sdkTokens: [{ name: 'web', secret: SDK_SECRET }, { name: 'mobile', secret: SDK2_SECRET }],
      stream: { maxStreamsPerToken: 0 },
      pluginsFor: ({ store, cache, registry }) => [rolloutRoutes({ flags: store, rollouts, storeRedis: false }), outcomeRoutes({ outcomes, cache, registry })],
    });
    expect((await t.app.inject({ method: 'PUT', url: '/flags/f1', headers: ADMIN, payload: { percentage: 5 } })).statusCode).toBe(201);
    expect((await t.app.inject({ method: 'PUT', url: '/flags/f1/rollout', headers: ADMIN, payload: PLAN })).statusCode).toBe(201);
    await t.cache.resync();
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
    await rollouts.close();
    await outcomes.close();
  });

  it('finds the admin-only and body-taking operations in the OpenAPI document', () => {
    expect(ADMIN_ONLY.map(label)).toEqual(expect.arrayContaining(['GET /flags', 'PUT /flags/{key}', 'GET /flags/{key}/outcomes', 'POST /flags/{key}/rollout/abort']));
    expect(ADMIN_ONLY.length).toBeGreaterThanOrEqual(15);
    expect(WITH_BODY.map(label)).toEqual(expect.arrayContaining(['POST /sdk/v1/outcomes', 'POST /ofrep/v1/evaluate/flags', 'PUT /flags/{key}/rollout']));
  });

  const request = (op: Operation, headers: Record<string, string>, payload?: string): InjectOptions => ({
    method: op.method,
    url: op.url,
    headers: { ...headers, ...(op.body || payload !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(payload !== undefined ? { payload } : op.body ? { payload: '{}' } : {}),
  });

  it.each(ADMIN_ONLY.map((op) => [label(op), op] as const))('%s without a token is 401 problem+json with WWW-Authenticate', async (_name, op) => {
    const res = await t.app.inject(request(op, {}));
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.headers['www-authenticate']).toContain('Bearer');
    expect(res.json()).toMatchObject({ status: 401, type: 'https://rampart.dev/problems/unauthorized' });
  });

  it.each(ADMIN_ONLY.map((op) => [label(op), op] as const))('%s with an SDK token is 403 problem+json', async (_name, op) => {
    const res = await t.app.inject(request(op, SDK));
    expect(res.statusCode).toBe(403);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 403, type: 'https://rampart.dev/problems/forbidden' });
  });

  it.each(WITH_BODY.map((op) => [label(op), op] as const))('%s with a body over 1 MiB is 413 problem+json and changes nothing', async (_name, op) => {
    const before = JSON.stringify(await t.store.snapshot());
    const payload = JSON.stringify({ reason: 'r'.repeat(BODY_LIMIT) });
    const res = await t.app.inject(request(op, op.path.startsWith('/flags') ? ADMIN : SDK, payload));
    expect(res.statusCode).toBe(413);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(res.json()).toMatchObject({ status: 413, type: 'https://rampart.dev/problems/payload-too-large' });
    expect(JSON.stringify(await t.store.snapshot())).toBe(before);
  });

  it('takes a body of exactly 1 MiB (the limit is "over", not "at")', async () => {
    const filler = 'r'.repeat(BODY_LIMIT - JSON.stringify({ context: { a: '' } }).length);
    const payload = JSON.stringify({ context: { a: filler } });
    expect(Buffer.byteLength(payload)).toBe(BODY_LIMIT);
    const res = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', headers: { ...SDK, 'content-type': 'application/json' }, payload });
    expect(res.statusCode).toBe(200);
  });

  it('keeps every token, right or wrong, out of the logs and out of error bodies, including a logged 5xx', async () => {
    const presented = ['Bearer wrong-token-5f5f5f', `Bearer ${ADMIN_SECRET}x`, `Basic ${ADMIN_SECRET}`, ADMIN_SECRET, `Bearer ${SDK_SECRET}`];
    const bodies: string[] = [];
    for (const op of OPS.filter((o) => !o.path.startsWith('/sdk/v1/stream'))) {
      for (const authorization of presented) {
        const res = await t.app.inject(request(op, { authorization, 'x-change-reason': authorization }, op.body ? JSON.stringify({ reason: authorization, token: authorization, context: { targetingKey: authorization } }) : undefined));
        if (res.statusCode >= 400) bodies.push(res.body);
      }
    }
    fail(true);
    try {
      const broken = await t.app.inject({ method: 'GET', url: '/flags/f1', headers: ADMIN });
      expect(broken.statusCode).toBe(500);
      bodies.push(broken.body);
      const listed = await t.app.inject({ method: 'GET', url: '/flags', headers: ADMIN });
      expect(listed.statusCode).toBe(500);
      expect(listed.json()).toMatchObject({ detail: 'an unexpected error occurred' });
    } finally {
      fail(false);
    }
    // Accepted writes with a token in the reason reach the audit log too.
    const audit = await t.app.inject({ method: 'PATCH', url: '/flags/f1', headers: { ...ADMIN, 'x-change-reason': 'rotated' }, payload: { description: 'audited' } });
    expect(audit.statusCode).toBe(200);
    const text = logs.lines.join('');
    expect(text).toContain('request failed');
    expect(text).toContain('flag changed');
    expect(bodies.length).toBeGreaterThan(50);
    for (const secret of [...SECRETS, 'wrong-token-5f5f5f']) {
      expect(text, `a log line contains ${secret}`).not.toContain(secret);
      expect(bodies.filter((body) => body.includes(secret)), `error bodies containing ${secret}`).toEqual([]);
    }
  });

  it('never echoes the Authorization header into a 401 or 403 body', async () => {
    for (const authorization of [`Bearer ${SDK_SECRET}`, `Bearer ${ADMIN_SECRET}-nope`, `Bearer ${SDK2_SECRET}`]) {
      const res = await t.app.inject({ method: 'DELETE', url: '/flags/f1', headers: { authorization } });
      expect([401, 403]).toContain(res.statusCode);
      for (const secret of SECRETS) expect(res.body).not.toContain(secret);
      expect(JSON.stringify(res.headers)).not.toContain(ADMIN_SECRET);
    }
  });
});

describe('SSE stream bounds', () => {
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await buildTestApp({
      adminTokens: [{ name: 'ops', secret: ADMIN_SECRET }],
      sdkTokens: [{ name: 'web', secret: SDK_SECRET }, { name: 'mobile', secret: SDK2_SECRET }],
      stream: { maxStreamsPerToken: 2, heartbeatMs: 40, idleTimeoutMs: 300 },
    });
    expect((await t.app.inject({ method: 'PUT', url: '/flags/f1', headers: ADMIN, payload: { percentage: 5 } })).statusCode).toBe(201);
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await t.close();
  });

  it('answers 429 problem+json with Retry-After beyond maxStreamsPerToken; other tokens keep their own budget', async () => {
    const open = await Promise.all([1, 2].map(() => openSse(`${base}/sdk/v1/stream`, SDK)));
    const others = await Promise.all([openSse(`${base}/sdk/v1/stream`, SDK2), openSse(`${base}/sdk/v1/stream`, ADMIN)]);
    try {
      expect([...open, ...others].map((s) => s.status)).toEqual([200, 200, 200, 200]);
      const refused = await fetch(`${base}/sdk/v1/stream`, { headers: SDK });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('30');
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      const problem = (await refused.json()) as Record<string, unknown>;
      expect(problem).toMatchObject({ status: 429, type: 'https://rampart.dev/problems/rate-limited' });
      expect(JSON.stringify(problem)).not.toContain(SDK_SECRET);
    } finally {
      for (const s of [...open, ...others]) s.close();
    }
  });

  it('keeps a stream open while changes flow, heartbeats in between', async () => {
    const sse = await openSse(`${base}/sdk/v1/stream`, SDK2);
    try {
      await sse.next((e) => e.event === 'snapshot');
      // Changes every 100 ms for twice the idle timeout (300 ms): each one restarts the clock.
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const res = await t.app.inject({ method: 'PATCH', url: '/flags/f1', headers: ADMIN, payload: { percentage: 10 + i } });
        expect(res.statusCode).toBe(200);
        const change = await sse.next((e) => e.event === 'change' && e.data.includes(`"percentage":${10 + i}`));
        expect(JSON.parse(change.data)).toMatchObject({ flags: { f1: { percentage: 10 + i } } });
      }
      expect(sse.comments.filter((c) => c === 'heartbeat').length).toBeGreaterThanOrEqual(3);
      expect(sse.comments).not.toContain('idle, reconnect');
    } finally {
      sse.close();
    }
  });

  it('closes a stream that carried nothing but heartbeats for the idle timeout, and frees its slot', async () => {
    const streams = await Promise.all([1, 2].map(() => openSse(`${base}/sdk/v1/stream`, SDK)));
    try {
      for (const sse of streams) await sse.next((e) => e.event === 'snapshot');
      const started = Date.now();
      await Promise.all(streams.map((s) => s.ended));
      const took = Date.now() - started;
      // 300 ms plus at most 10% jitter, measured from after the snapshot arrived.
      expect(took).toBeGreaterThanOrEqual(200);
      expect(took).toBeLessThan(2000);
      for (const sse of streams) expect(sse.comments).toContain('idle, reconnect');
      // The per-token budget is free again: two new streams are accepted.
      const again = await Promise.all([1, 2].map(() => openSse(`${base}/sdk/v1/stream`, SDK)));
      for (const s of again) s.close();
      expect(again.map((s) => s.status)).toEqual([200, 200]);
      // Let the server see those go, so the next test starts with the budget free.
      await expect.poll(() => /^rampart_stream_subscribers 0$/m.test(t.registry.render()), { timeout: 2000, interval: 20 }).toBe(true);
    } finally {
      for (const s of streams) s.close();
    }
  });

  it('answers a garbage Last-Event-ID with the full snapshot, never an error', async () => {
    for (const id of ['-1', 'abc', '1e3', '99999999999999999999', ' 0 ', '%00', '\u00e9'.replace(/[^\x20-\x7e]/g, '?')]) {
      const sse = await openSse(`${base}/sdk/v1/stream`, { ...SDK, 'last-event-id': id });
      try {
        expect(sse.status).toBe(200);
        await sse.next((e) => e.event === 'snapshot' || e.event === 'change');
      } finally {
        sse.close();
      }
    }
  });
});

describe('outcome ingestion bounds (beyond test/api/outcomes.test.ts)', () => {
  let h: { t: TestApp; outcomes: EmbeddedOutcomeStore; dir: string };
  const event = { flagKey: 'f1', cohort: 'on', ok: true };
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rampart-security-outcomes-'));
    const outcomes = await createEmbeddedOutcomeStore({ dir });
    const fixed = new Date();
    const t = await buildTestApp({
      adminTokens: [{ name: 'ops', secret: ADMIN_SECRET }],
      sdkTokens: [{ name: 'web', secret: SDK_SECRET }, { name: 'mobile', secret: SDK2_SECRET }],
      pluginsFor: ({ cache, registry }) => [outcomeRoutes({ outcomes, cache, registry, now: () => fixed, limits: { batchesPerSecond: 5 } })],
    });
    expect((await t.app.inject({ method: 'PUT', url: '/flags/f1', headers: ADMIN, payload: { percentage: 5 } })).statusCode).toBe(201);
    await t.cache.resync();
    h = { t, outcomes, dir };
  });
  afterAll(async () => {
    await h.t.close();
    await h.outcomes.close();
    await rm(h.dir, { recursive: true, force: true });
  });
  const post = (headers: Record<string, string>, payload: unknown) => h.t.app.inject({ method: 'POST', url: '/sdk/v1/outcomes', headers, payload: payload as Record<string, unknown> });

  it('uses the default batch bound of 500 events: 501 is a 400 problem', async () => {
    const res = await post(SDK2, { events: Array.from({ length: 501 }, () => event) });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('charges invalid batches to the token, so a junk flood is rate-limited too; unauthenticated floods charge nobody', async () => {
    for (let i = 0; i < 20; i++) expect((await post({}, { events: 'junk' })).statusCode).toBe(401);
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 8; i++) {
      const res = await post(SDK, { events: 'junk' });
      statuses.push(res.statusCode);
      if (res.statusCode === 429) {
        retryAfter = String(res.headers['retry-after']);
        expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      }
    }
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429, 429, 429]);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    // Another token, and the admin token, are unaffected by web's flood.
    expect((await post(SDK2, { events: [event] })).statusCode).toBe(202);
    expect((await post(ADMIN, { events: [event] })).statusCode).toBe(202);
  });
});
