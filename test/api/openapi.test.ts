import { compileErrors, validate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RampartError } from '../../src/core/errors.js';
import { defaultFields } from '../../src/core/flag.js';
import type { FlagFields } from '../../src/core/flag.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { outcomeRoutes } from '../../src/api/routes/outcomes.js';
import { rolloutRoutes } from '../../src/api/routes/rollouts.js';
import { createEmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { uiRoutes } from '../../src/ui/routes.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { appRoutes, assertDocumented, assertSchema, difference, expectResponseMatches, loadSpec, SPEC_PATH, specRoutes } from '../support/openapi.js';
import { openSse } from '../support/sse.js';

const ADMIN = { authorization: 'Bearer admin-secret' };
const SDK = { authorization: 'Bearer sdk-secret' };

describe('openapi/openapi.yaml', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await validate(SPEC_PATH);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
    expect(result.warnings).toEqual([]);
    expect(loadSpec().openapi).toBe('3.1.0');
  });

  it('gives every operation a unique operationId', () => {
    const ids: string[] = [];
    for (const item of Object.values(loadSpec().paths)) {
      for (const operation of Object.values(item)) {
        if (typeof operation === 'object' && operation !== null && 'operationId' in operation) ids.push(String(operation.operationId));
      }
    }
    expect(ids).toHaveLength(specRoutes().size);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe('the HTTP contract', () => {
  let t: TestApp;
  let extras: { dir: string; close: () => Promise<void> };
  const seed = async (key: string, fields: Partial<FlagFields>): Promise<void> => {
    const current = await t.store.get(key);
    const result = await t.store.put(key, { ...defaultFields(key), ...fields }, current?.version ?? 0, { actor: 'seed', source: 'api', at: new Date(), reason: 'test data' });
    expect(result.ok).toBe(true);
  };
  beforeAll(async () => {
    // The production plugin set (rollouts, outcomes) as main.ts registers it, so the route-set
    // comparison covers every route a real server has.
    const dir = mkdtempSync(join(tmpdir(), 'rampart-openapi-'));
    const rollouts = await createEmbeddedRolloutStore({ dir });
    const outcomes = await createEmbeddedOutcomeStore({ dir });
    extras = { dir, close: async () => { await rollouts.close(); await outcomes.close(); rmSync(dir, { recursive: true, force: true }); } };
    t = await buildTestApp({
      adminTokens: [{ name: 'ops', secret: 'admin-secret' }],
      sdkTokens: [{ name: 'web', secret: 'sdk-secret' }],
      // No stream may open, so the 429 answer can be checked without holding a stream open.
      stream: { maxStreamsPerToken: 0 },
      pluginsFor: ({ store, cache, registry }) => [rolloutRoutes({ flags: store, rollouts, storeRedis: false }), outcomeRoutes({ outcomes, cache, registry }), uiRoutes()],
    });
    // Seeded through the store, so the read checks do not depend on the write routes.
    await seed('new-checkout', { description: 'New checkout', enabled: true, percentage: 12.5 });
    await seed('new-checkout', { description: 'New checkout', enabled: true, percentage: 25.125 });
    await seed('short-lived', {});
    await t.cache.resync();
  });
  afterAll(async () => {
    await t.close();
    await extras.close();
  });

  it('documents exactly the routes the app registers (HEAD and OPTIONS aside)', () => {
    const registered = appRoutes(t.app);
    const documented = specRoutes();
    const undocumented = difference(registered, documented);
    const unregistered = difference(documented, registered);
    const diff = [
      ...undocumented.map((r) => `+ ${r}   (registered by the app, missing from openapi.yaml)`),
      ...unregistered.map((r) => `- ${r}   (in openapi.yaml, not registered by the app)`),
    ].join('\n');
    expect(diff, `route sets differ:\n${diff}`).toBe('');
    expect(registered.size).toBeGreaterThanOrEqual(15);
  });

  it('serves the same document at /openapi.json', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/openapi.json' });
    assertDocumented(res, 'GET', '/openapi.json');
    expect(res.json()).toEqual(JSON.parse(JSON.stringify(loadSpec())));
  });

  it('matches the document for flag reads', async () => {
    const list = await t.app.inject({ method: 'GET', url: '/flags', headers: ADMIN });
    expect(list.statusCode).toBe(200);
    expect(list.json<{ flags: unknown[] }>().flags.length).toBeGreaterThan(0);
    assertDocumented(list, 'GET', '/flags');

    const read = await t.app.inject({ method: 'GET', url: '/flags/new-checkout', headers: ADMIN });
    expect(read.statusCode).toBe(200);
    assertDocumented(read, 'GET', '/flags/{key}');

    const unchanged = await t.app.inject({ method: 'GET', url: '/flags/new-checkout', headers: { ...ADMIN, 'if-none-match': read.headers.etag as string } });
    expect(unchanged.statusCode).toBe(304);
    assertDocumented(unchanged, 'GET', '/flags/{key}');

    const history = await t.app.inject({ method: 'GET', url: '/flags/new-checkout/history?limit=1', headers: ADMIN });
    expect(history.statusCode).toBe(200);
    const next = history.json<{ next?: string }>().next;
    expect(next).toBeDefined();
    assertDocumented(history, 'GET', '/flags/{key}/history');
    const older = await t.app.inject({ method: 'GET', url: `/flags/new-checkout/history?before=${encodeURIComponent(next ?? '')}`, headers: ADMIN });
    expect(older.statusCode).toBe(200);
    assertDocumented(older, 'GET', '/flags/{key}/history');

    // Bucketed (SPLIT with bucket and unitId), then without a unit id (errorCode TARGETING_KEY_MISSING).
    for (const url of ['/flags/new-checkout/evaluate?userId=user-42', '/flags/new-checkout/evaluate']) {
      const evaluation = await t.app.inject({ method: 'GET', url, headers: ADMIN });
      expect(evaluation.statusCode).toBe(200);
      assertDocumented(evaluation, 'GET', '/flags/{key}/evaluate');
    }
  });

  it('matches the document for PUT and PATCH', async () => {
    const created = await t.app.inject({ method: 'PUT', url: '/flags/written', headers: { ...ADMIN, 'x-change-reason': 'start' }, payload: { description: 'Written through the API', enabled: true, percentage: 12.5 } });
    expect(created.statusCode, created.body).toBe(201);
    assertDocumented(created, 'PUT', '/flags/{key}');

    const replaced = await t.app.inject({ method: 'PUT', url: '/flags/written', headers: { ...ADMIN, 'if-match': created.headers.etag as string }, payload: { key: 'written', enabled: true, percentage: 20, reason: 'more' } });
    expect(replaced.statusCode, replaced.body).toBe(200);
    assertDocumented(replaced, 'PUT', '/flags/{key}');

    const patched = await t.app.inject({ method: 'PATCH', url: '/flags/written', headers: ADMIN, payload: { percentage: 25.125 } });
    expect(patched.statusCode, patched.body).toBe(200);
    assertDocumented(patched, 'PATCH', '/flags/{key}');

    const cases: { method: 'PUT' | 'PATCH'; status: number; headers?: Record<string, string>; payload: unknown; url?: string }[] = [
      { method: 'PATCH', status: 412, headers: { 'if-match': '"999"' }, payload: { enabled: false } },
      { method: 'PUT', status: 412, headers: { 'if-none-match': '*' }, payload: {} },
      { method: 'PUT', status: 412, headers: { 'if-match': '"1"' }, payload: {}, url: '/flags/never-created' },
      { method: 'PATCH', status: 404, payload: { enabled: true }, url: '/flags/never-created' },
      { method: 'PATCH', status: 400, payload: { reason: 'nothing else' } },
    ];
    for (const c of cases) {
      const res = await t.app.inject({ method: c.method, url: c.url ?? '/flags/written', headers: { ...ADMIN, ...c.headers }, payload: c.payload as Record<string, unknown> });
      expect(res.statusCode, `${c.method} ${JSON.stringify(c)}: ${res.body}`).toBe(c.status);
      assertDocumented(res, c.method, '/flags/{key}');
    }

    const invalid = await t.app.inject({ method: 'PUT', url: '/flags/written', headers: ADMIN, payload: { percentage: 12.3456 } });
    expect(invalid.statusCode).toBe(400);
    expect(invalid.json<{ errors?: { path: string }[] }>().errors?.map((e) => e.path)).toEqual(['body.percentage']);
    assertDocumented(invalid, 'PUT', '/flags/{key}');
  });

  it('matches the document for deletes and the history of a deleted flag', async () => {
    const stale = await t.app.inject({ method: 'DELETE', url: '/flags/short-lived', headers: { ...ADMIN, 'if-match': '"999"' } });
    expect(stale.statusCode).toBe(412);
    assertDocumented(stale, 'DELETE', '/flags/{key}');

    const deleted = await t.app.inject({ method: 'DELETE', url: '/flags/short-lived', headers: { ...ADMIN, 'x-change-reason': 'done' } });
    expect(deleted.statusCode).toBe(204);
    assertDocumented(deleted, 'DELETE', '/flags/{key}');

    const history = await t.app.inject({ method: 'GET', url: '/flags/short-lived/history', headers: ADMIN });
    expect(history.statusCode).toBe(200);
    expect(history.json<{ entries: { action: string; after: unknown }[] }>().entries[0]).toMatchObject({ action: 'delete', after: null });
    assertDocumented(history, 'GET', '/flags/{key}/history');
  });

  it('matches the document for problem responses', async () => {
    const cases: { method: 'GET' | 'PUT' | 'DELETE'; url: string; path: string; status: number; headers?: Record<string, string>; payload?: string }[] = [
      { method: 'PUT', url: '/flags/bad', path: '/flags/{key}', status: 400, headers: { ...ADMIN, 'content-type': 'application/json' }, payload: '{"percentage": 12.3456, "version": 3}' },
      { method: 'PUT', url: '/flags/bad', path: '/flags/{key}', status: 400, headers: { ...ADMIN, 'content-type': 'application/json' }, payload: '{"percentage":' },
      { method: 'GET', url: '/flags/Not_A_Key', path: '/flags/{key}', status: 400, headers: ADMIN },
      { method: 'GET', url: '/flags/new-checkout/history?limit=0', path: '/flags/{key}/history', status: 400, headers: ADMIN },
      { method: 'GET', url: '/flags/new-checkout/evaluate?userId=a&userId=b', path: '/flags/{key}/evaluate', status: 400, headers: ADMIN },
      { method: 'DELETE', url: '/flags/new-checkout', path: '/flags/{key}', status: 400, headers: { ...ADMIN, 'if-match': 'yesterday' } },
      { method: 'GET', url: '/flags', path: '/flags', status: 401 },
      { method: 'GET', url: '/flags', path: '/flags', status: 401, headers: { authorization: 'Bearer wrong' } },
      { method: 'GET', url: '/flags', path: '/flags', status: 403, headers: SDK },
      { method: 'GET', url: '/flags/missing', path: '/flags/{key}', status: 404, headers: ADMIN },
      { method: 'DELETE', url: '/flags/missing', path: '/flags/{key}', status: 404, headers: ADMIN },
      { method: 'GET', url: '/flags/missing/history', path: '/flags/{key}/history', status: 404, headers: ADMIN },
      { method: 'GET', url: '/flags/missing/evaluate', path: '/flags/{key}/evaluate', status: 404, headers: ADMIN },
      { method: 'PUT', url: '/flags/new-checkout', path: '/flags/{key}', status: 415, headers: { ...ADMIN, 'content-type': 'application/x-www-form-urlencoded' }, payload: 'percentage=5' },
      { method: 'PUT', url: '/flags/new-checkout', path: '/flags/{key}', status: 415, headers: { ...ADMIN, 'content-type': 'text/plain' }, payload: '{"percentage":5}' },
      { method: 'PUT', url: '/flags/huge', path: '/flags/{key}', status: 413, headers: { ...ADMIN, 'content-type': 'application/json' }, payload: JSON.stringify({ description: 'x'.repeat(1024 * 1024) }) },
    ];
    for (const c of cases) {
      const res = await t.app.inject({ method: c.method, url: c.url, headers: c.headers ?? {}, ...(c.payload === undefined ? {} : { payload: c.payload }) });
      expect(res.statusCode, `${c.method} ${c.url}: ${res.body}`).toBe(c.status);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      assertDocumented(res, c.method, c.path);
    }
  });

  it('matches the document for SDK delivery', async () => {
    await t.cache.resync();
    const snapshot = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: SDK });
    expect(snapshot.statusCode).toBe(200);
    assertDocumented(snapshot, 'GET', '/sdk/v1/flags');

    const unchanged = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: { ...SDK, 'if-none-match': snapshot.headers.etag as string } });
    expect(unchanged.statusCode).toBe(304);
    assertDocumented(unchanged, 'GET', '/sdk/v1/flags');

    const anonymous = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags' });
    expect(anonymous.statusCode).toBe(401);
    assertDocumented(anonymous, 'GET', '/sdk/v1/flags');

    const tooMany = await t.app.inject({ method: 'GET', url: '/sdk/v1/stream', headers: SDK });
    expect(tooMany.statusCode).toBe(429);
    assertDocumented(tooMany, 'GET', '/sdk/v1/stream');
  });

  it('matches the document when the store fails', async () => {
    const failures = [
      vi.spyOn(t.store, 'snapshot').mockRejectedValueOnce(new RampartError('store-unavailable', 'connection refused')),
      vi.spyOn(t.store, 'get').mockRejectedValueOnce(new Error('boom')),
      vi.spyOn(t.store, 'ping').mockRejectedValueOnce(new Error('connection refused')),
    ];
    try {
      const unavailable = await t.app.inject({ method: 'GET', url: '/flags', headers: ADMIN });
      expect(unavailable.statusCode).toBe(503);
      expect(unavailable.headers['retry-after']).toBe('1');
      assertDocumented(unavailable, 'GET', '/flags');

      const broken = await t.app.inject({ method: 'GET', url: '/flags/new-checkout', headers: ADMIN });
      expect(broken.statusCode).toBe(500);
      expect(broken.body).not.toContain('boom');
      assertDocumented(broken, 'GET', '/flags/{key}');

      const notReady = await t.app.inject({ method: 'GET', url: '/readyz' });
      expect(notReady.statusCode).toBe(503);
      expect(notReady.json<{ reasons: string[] }>().reasons).toHaveLength(1);
      assertDocumented(notReady, 'GET', '/readyz');
    } finally {
      for (const spy of failures) spy.mockRestore();
    }
  });

  it('matches the document for the event stream', async () => {
    const s = await buildTestApp({ sdkTokens: [{ name: 'web', secret: 'sdk-secret' }], adminTokens: [{ name: 'ops', secret: 'admin-secret' }] });
    try {
      await s.store.put('streamed', { ...defaultFields('streamed'), enabled: true, percentage: 10 }, 0, { actor: 'seed', source: 'api', at: new Date() });
      await s.cache.resync();
      const base = await s.app.listen({ host: '127.0.0.1', port: 0 });
      const sse = await openSse(`${base}/sdk/v1/stream`, SDK);
      try {
        assertDocumented({ statusCode: sse.status, headers: { 'content-type': sse.headers.get('content-type') ?? undefined }, body: '' }, 'GET', '/sdk/v1/stream');
        const snapshot = await sse.next((e) => e.event === 'snapshot');
        assertSchema(JSON.parse(snapshot.data), 'Snapshot');
        expect(snapshot.id).toBe(String(s.cache.revision));

        await s.app.inject({ method: 'DELETE', url: '/flags/streamed', headers: ADMIN });
        const deleted = await sse.next((e) => e.event === 'change');
        assertSchema(JSON.parse(deleted.data), 'StreamChange');
        expect(JSON.parse(deleted.data)).toMatchObject({ flags: { streamed: null } });
      } finally {
        sse.close();
      }
    } finally {
      await s.close();
    }
  });

  it('matches the document for OFREP', async () => {
    await t.cache.resync();
    const path = '/ofrep/v1/evaluate/flags/{key}';
    const success = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags/new-checkout', headers: SDK, payload: { context: { targetingKey: 'user-42' } } });
    expect(success.statusCode).toBe(200);
    assertDocumented(success, 'POST', path);

    const missing = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags/missing', headers: SDK, payload: { context: { targetingKey: 'user-42' } } });
    expect(missing.statusCode).toBe(404);
    expect(missing.json<{ errorCode: string }>().errorCode).toBe('FLAG_NOT_FOUND');
    assertDocumented(missing, 'POST', path);

    const noTarget = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags/new-checkout', headers: SDK, payload: { context: {} } });
    expect(noTarget.statusCode).toBe(400);
    expect(noTarget.json<{ errorCode: string }>().errorCode).toBe('TARGETING_KEY_MISSING');
    assertDocumented(noTarget, 'POST', path);

    const malformed = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags/new-checkout', headers: SDK, payload: { context: 'user-42' } });
    expect(malformed.statusCode).toBe(400);
    assertDocumented(malformed, 'POST', path);

    const bulk = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', headers: SDK, payload: { context: { targetingKey: 'user-42' } } });
    expect(bulk.statusCode).toBe(200);
    assertDocumented(bulk, 'POST', '/ofrep/v1/evaluate/flags');

    const bulkFailures = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', headers: SDK, payload: { context: {} } });
    expect(bulkFailures.statusCode).toBe(200);
    assertDocumented(bulkFailures, 'POST', '/ofrep/v1/evaluate/flags');

    const bulkUnchanged = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', headers: { ...SDK, 'if-none-match': bulk.headers.etag as string }, payload: { context: { targetingKey: 'user-42' } } });
    expect(bulkUnchanged.statusCode).toBe(304);
    assertDocumented(bulkUnchanged, 'POST', '/ofrep/v1/evaluate/flags');

    const anonymous = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', payload: {} });
    expect(anonymous.statusCode).toBe(401);
    assertDocumented(anonymous, 'POST', '/ofrep/v1/evaluate/flags');
  });

  it('matches the document for the public operations routes', async () => {
    for (const [url, status] of [['/healthz', 200], ['/readyz', 200], ['/metrics', 200]] as const) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(status);
      assertDocumented(res, 'GET', url);
    }
  });

  it('rejects responses the document does not allow', () => {
    const spec = loadSpec();
    const json = { 'content-type': 'application/json; charset=utf-8' };
    expect(() => { expectResponseMatches(spec, 'GET', '/flags', { statusCode: 418, headers: json, body: '{}' }); }).toThrow(/status 418 is not documented/);
    expect(() => { expectResponseMatches(spec, 'GET', '/flags', { statusCode: 200, headers: { 'content-type': 'text/html' }, body: '' }); }).toThrow(/content type/);
    expect(() => { expectResponseMatches(spec, 'GET', '/flags', { statusCode: 200, headers: json, body: '{"revision":1,"flags":[{"key":"x"}]}' }); }).toThrow(/does not match/);
    expect(() => { expectResponseMatches(spec, 'GET', '/flags/{key}', { statusCode: 304, headers: {}, body: 'x' }); }).toThrow(/without a body/);
    expect(() => { expectResponseMatches(spec, 'GET', '/nope', { statusCode: 200, headers: json, body: '{}' }); }).toThrow(/not a documented path/);
    expect(() => { expectResponseMatches(spec, 'GET', '/healthz', { status: 200, headers: json, text: '{"status":"ok"}' }); }).not.toThrow();
  });
});
