// Property-based requests against every route: never a 5xx, every 4xx a problem document,
// and a rejected request changes nothing that is stored.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT } from '../../src/api/app.js';
import { outcomeRoutes } from '../../src/api/routes/outcomes.js';
import { rolloutRoutes } from '../../src/api/routes/rollouts.js';
import { createEmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import type { EmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import type { EmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

const ADMIN_SECRET = 'fuzz-admin-secret';
const SDK_SECRET = 'fuzz-sdk-secret';
const ADMIN = `Bearer ${ADMIN_SECRET}`;
const SDK = `Bearer ${SDK_SECRET}`;
const SEED = 20_261_124;
/** A JSON body just over the 1 MiB limit. */
const OVERSIZED = JSON.stringify({ description: 'd'.repeat(BODY_LIMIT) });
const PLAN = { stages: [{ percentage: 1, hold: '15m' }, { percentage: 100 }], sampleEvery: '1m', criteria: [] };

type Method = 'GET' | 'PUT' | 'PATCH' | 'DELETE' | 'POST';
interface Route {
  readonly method: Method;
  /** `{key}` is replaced by the fuzzed path segment. */
  readonly path: string;
  readonly access: 'admin' | 'sdk';
  readonly body: boolean;
}

// Every documented operation except the public ones (no input to speak of).
const ROUTES: readonly Route[] = [
  { method: 'GET', path: '/flags', access: 'admin', body: false },
  { method: 'GET', path: '/flags/{key}', access: 'admin', body: false },
  { method: 'PUT', path: '/flags/{key}', access: 'admin', body: true },
  { method: 'PATCH', path: '/flags/{key}', access: 'admin', body: true },
  { method: 'DELETE', path: '/flags/{key}', access: 'admin', body: false },
  { method: 'GET', path: '/flags/{key}/history', access: 'admin', body: false },
  { method: 'GET', path: '/flags/{key}/evaluate', access: 'admin', body: false },
  { method: 'GET', path: '/flags/{key}/outcomes', access: 'admin', body: false },
  { method: 'PUT', path: '/flags/{key}/rollout', access: 'admin', body: true },
  { method: 'GET', path: '/flags/{key}/rollout', access: 'admin', body: false },
  { method: 'POST', path: '/flags/{key}/rollout/pause', access: 'admin', body: true },
  { method: 'POST', path: '/flags/{key}/rollout/resume', access: 'admin', body: true },
  { method: 'POST', path: '/flags/{key}/rollout/approve', access: 'admin', body: true },
  { method: 'POST', path: '/flags/{key}/rollout/abort', access: 'admin', body: true },
  { method: 'GET', path: '/flags/{key}/rollout/decisions', access: 'admin', body: false },
  { method: 'GET', path: '/sdk/v1/flags', access: 'sdk', body: false },
  // maxStreamsPerToken is 0 here, so an authorised stream request is a 429, never a hijacked stream.
  { method: 'GET', path: '/sdk/v1/stream', access: 'sdk', body: false },
  { method: 'POST', path: '/sdk/v1/outcomes', access: 'sdk', body: true },
  { method: 'POST', path: '/ofrep/v1/evaluate/flags/{key}', access: 'sdk', body: true },
  { method: 'POST', path: '/ofrep/v1/evaluate/flags', access: 'sdk', body: true },
];

const ascii = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 });

// Path segments: known keys, valid-looking keys, traversal, broken and NUL percent-encodings, unicode.
const rawSegment = fc.constantFrom('..', '.', '%2e%2e', '%00', 'a%00b', '%2F', 'a%2Fb', '%ZZ', '%', '%C0%AE', '%E0%A4%A', '%F0%9F%98%80', '..%2F..%2Fetc%2Fpasswd', 'alpha%20', '%20alpha', 'ALPHA', 'alpha;x=1');
const keySegment = fc.oneof(
  fc.constantFrom('alpha', 'beta', 'missing-flag', 'a'.repeat(128), 'a'.repeat(129)),
  fc.stringMatching(/^[a-z0-9][a-z0-9._-]{0,20}$/),
  rawSegment,
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map(encodeURIComponent),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }).map(encodeURIComponent),
  fc.integer({ min: 200, max: 16_000 }).map((n) => 'k'.repeat(n)),
);

const weirdNumber = fc.oneof(
  fc.double(),
  fc.integer(),
  fc.constantFrom(1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 5e-324, -0, 100.0001, 12.345, 0, 100, -1, 101),
);
const weirdString = fc.oneof(ascii, fc.string({ unit: 'grapheme', maxLength: 50 }), fc.constantFrom('NaN', 'Infinity', '-Infinity', '1e400', '', ' ', '\u0000', '\n', 'null', 'true', '0x10', '__proto__', 'x'.repeat(2000)));
const anyValue = fc.oneof(weirdNumber, weirdString, fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 3 }));
const KNOWN_FIELDS = ['key', 'description', 'enabled', 'percentage', 'groupId', 'stickiness', 'reason', 'version', 'updatedAt', 'updatedBy', 'context', 'events', 'stages', 'criteria', 'sampleEvery', 'schedule', 'onFailure', 'onNoData', 'dryRun', 'notify', '__proto__', 'constructor'];
const knownObject = fc.dictionary(fc.oneof(fc.constantFrom(...KNOWN_FIELDS), ascii), anyValue, { maxKeys: 6 });
const deep = fc.integer({ min: 1, max: 3000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth));
const deepObject = fc.integer({ min: 1, max: 3000 }).map((depth) => '{"a":'.repeat(depth) + '1' + '}'.repeat(depth));

/** A body as text, or undefined for none. */
const bodyText = fc.oneof(
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
  { weight: 4, arbitrary: knownObject.map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.record({ events: fc.array(fc.record({ flagKey: fc.oneof(fc.constant('alpha'), ascii), cohort: fc.oneof(fc.constantFrom('on', 'off'), anyValue), ok: fc.oneof(fc.boolean(), anyValue), latencyMs: weirdNumber }, { requiredKeys: [] }), { maxLength: 8 }) }).map((v) => JSON.stringify(v)) },
  { weight: 2, arbitrary: fc.record({ context: fc.oneof(knownObject, anyValue) }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.constantFrom('{"percentage": NaN}', '{"percentage": 1e400}', '{"percentage": -Infinity}', '{', '}', '"', 'null', '[]', '{"a":1,"a":2}', '\uFEFF{}', '{"enabled": tru}', '{"percentage": 12.3456789012345678901234567890}') },
  { weight: 1, arbitrary: deep },
  { weight: 1, arbitrary: deepObject },
  { weight: 1, arbitrary: ascii },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 200_000 }).map((n) => JSON.stringify({ description: 'd'.repeat(n) })) },
  { weight: 1, arbitrary: fc.constant(OVERSIZED) },
);

const contentType = fc.constantFrom(undefined, 'application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/merge-patch+json', 'application/problem+json', '', ';;;', 'application/json; boundary=', 'application/octet-stream');
const tag = fc.oneof(fc.constantFrom('"1"', '1', 'W/"1"', '*', '"0"', '"-1"', '"1e3"', '"999999999999999999"', '""', ' ', '"1", "2"', 'W/', '"NaN"'), ascii);
const queryString = fc
  .array(fc.tuple(fc.oneof(fc.constantFrom('limit', 'before', 'window', 'userId', 'tenantId', 'lastEventId', '__proto__', 'a[b]', 'limit[]'), ascii), fc.oneof(weirdString.map(String), weirdNumber.map(String))), { maxLength: 5 })
  .map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`));
const rawQuery = fc.constantFrom('', '?', '?&&', '?limit', '?limit=1&limit=2', '?limit=%ZZ', '?window=%00', '?=x', '?userId=%F0%9F', '?before=' + 'b'.repeat(5000));

const headerSet = fc.record(
  {
    'if-match': tag,
    'if-none-match': tag,
    'x-change-reason': fc.oneof(ascii, fc.constantFrom('x'.repeat(501), '')),
    'last-event-id': fc.oneof(ascii, fc.constantFrom('0', '-1', '1e3', '999999999999999999999', ' 5 ')),
    accept: fc.constantFrom('*/*', 'application/json', 'text/event-stream', 'text/html', 'x/y;q=oops'),
    origin: fc.constantFrom('https://evil.example', 'null'),
  },
  { requiredKeys: [] },
);
const authorization = fc.oneof(
  { weight: 6, arbitrary: fc.constant(ADMIN) },
  { weight: 3, arbitrary: fc.constant(SDK) },
  { weight: 1, arbitrary: fc.constant(undefined) },
  { weight: 1, arbitrary: fc.oneof(ascii, fc.constantFrom('Bearer', 'Bearer ', `bearer ${ADMIN_SECRET}`, `Bearer  ${ADMIN_SECRET}  `, `Basic ${ADMIN_SECRET}`, `Bearer ${ADMIN_SECRET}x`, `Bearer ${SDK_SECRET} ${ADMIN_SECRET}`, 'Bearer \u00e9')) },
);

interface Fuzzed {
  readonly route: Route;
  readonly key: string;
  readonly query: string;
  readonly body: string | undefined;
  readonly contentType: string | undefined;
  readonly headers: Record<string, string>;
  readonly authorization: string | undefined;
}

const request: fc.Arbitrary<Fuzzed> = fc.record({
  route: fc.constantFrom(...ROUTES),
  key: keySegment,
  query: fc.oneof(queryString, rawQuery),
  body: bodyText,
  contentType,
  headers: headerSet,
  authorization,
}).map((r) => Object.assign(r, { [fc.toStringMethod]: () => describeRequest(r) }));

/** A counterexample short enough to read: long keys, queries and bodies are cut. */
function describeRequest(r: Fuzzed): string {
  const cut = (text: string | undefined): string => (text === undefined ? 'none' : text.length > 160 ? `${JSON.stringify(text.slice(0, 160))}...(${text.length} chars)` : JSON.stringify(text));
  return `${r.route.method} ${r.route.path} key=${cut(r.key)} query=${cut(r.query)} content-type=${String(r.contentType)} auth=${String(r.authorization)} headers=${JSON.stringify(r.headers)} body=${cut(r.body)}`;
}

function toInject(r: Fuzzed): InjectOptions {
  const headers: Record<string, string> = { ...r.headers };
  if (r.authorization !== undefined) headers.authorization = r.authorization;
  if (r.contentType !== undefined) headers['content-type'] = r.contentType;
  else if (r.body !== undefined) headers['content-type'] = 'application/json';
  return {
    method: r.route.method,
    url: r.route.path.replace('{key}', r.key) + r.query,
    headers,
    ...(r.body === undefined ? {} : { payload: r.body }),
  };
}

/** The failures every route must answer with: a problem document (OFREP's own failure shape aside). */
function expectWellFormed(r: Fuzzed, res: LightMyRequestResponse): void {
  const url = `${r.route.path.replace('{key}', r.key)}${r.query}`;
  const where = `${res.statusCode} ${String(res.headers['content-type'])} ${res.body.slice(0, 300)} <- ${r.route.method} ${url.length > 200 ? `${url.slice(0, 200)}...(${url.length} chars)` : url}`;
  expect(res.statusCode, where).toBeLessThan(500);
  if (res.statusCode < 400) return;
  const type = String(res.headers['content-type'] ?? '');
  const body = JSON.parse(res.body) as Record<string, unknown>;
  const ofrepFailure = r.route.path.startsWith('/ofrep/') && type.startsWith('application/json') && typeof body.errorCode === 'string';
  if (!ofrepFailure) expect(type, where).toMatch(/^application\/problem\+json/);
  expect(typeof body.type, where).toBe('string');
  expect(typeof body.title, where).toBe('string');
  expect(body.status, where).toBe(res.statusCode);
  expect(typeof body.detail, where).toBe('string');
}

interface Stores {
  readonly t: TestApp;
  readonly rollouts: EmbeddedRolloutStore;
}

/** Everything a rejected request must leave alone: flags, each flag's history, each rollout. */
async function stateOf({ t, rollouts }: Stores): Promise<string> {
  const snapshot = await t.store.snapshot();
  const keys = [...snapshot.flags.map((f) => f.key), 'alpha', 'beta', 'missing-flag'].sort();
  const perKey = await Promise.all(
    [...new Set(keys)].map(async (key) => ({
      key,
      history: (await t.store.history(key, { limit: 200 })).entries.length,
      rollout: (await rollouts.get(key)) ?? null,
      decisions: (await rollouts.decisions(key, { limit: 200 })).entries.length,
    })),
  );
  return JSON.stringify({ snapshot, perKey });
}

describe('fuzzed requests', () => {
  let t: TestApp;
  let dir: string;
  let rollouts: EmbeddedRolloutStore;
  let outcomes: EmbeddedOutcomeStore;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-fuzz-'));
    rollouts = await createEmbeddedRolloutStore({ dir });
    outcomes = await createEmbeddedOutcomeStore({ dir });
    t = await buildTestApp({
      adminTokens: [{ name: 'ops', secret: ADMIN_SECRET }],
      sdkTokens: [{ name: 'web', secret: SDK_SECRET }],
      stream: { maxStreamsPerToken: 0 },
      pluginsFor: ({ store, cache, registry }) => [rolloutRoutes({ flags: store, rollouts, storeRedis: false }), outcomeRoutes({ outcomes, cache, registry })],
    });
    for (const key of ['alpha', 'beta']) {
      const res = await t.app.inject({ method: 'PUT', url: `/flags/${key}`, headers: { authorization: ADMIN }, payload: { percentage: 10, description: key } });
      expect(res.statusCode).toBe(201);
    }
    const plan = await t.app.inject({ method: 'PUT', url: '/flags/alpha/rollout', headers: { authorization: ADMIN }, payload: PLAN });
    expect(plan.statusCode).toBe(201);
    await t.cache.resync();
  });
  afterAll(async () => {
    await t.close();
    await rollouts.close();
    await outcomes.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('never answers 5xx, answers every 4xx with a problem document, and a rejected request changes nothing', async () => {
    let before = await stateOf({ t, rollouts });
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const res = await t.app.inject(toInject(r));
        seen.add(res.statusCode);
        expectWellFormed(r, res);
        const after = await stateOf({ t, rollouts });
        if (res.statusCode >= 400) expect(after, `${r.route.method} ${r.route.path} ${res.statusCode} changed stored state`).toBe(before);
        before = after;
      }),
      { seed: SEED, numRuns: 1500, endOnFailure: true },
    );
    // The run reached past validation: successes, and every kind of refusal.
    expect([...seen].sort()).toEqual(expect.arrayContaining([200, 400, 401, 403, 404, 413, 415, 429]));
  });

  it('answers 403 to an SDK token and 401 to no or a garbage token on every admin route, whatever else is sent', async () => {
    const admin = ROUTES.filter((r) => r.access === 'admin');
    const before = await stateOf({ t, rollouts });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          route: fc.constantFrom(...admin),
          // '.' and '..' are dot segments the URL parser removes before routing, so they name no admin route.
          key: fc.oneof(fc.constantFrom('alpha', 'beta', 'missing-flag'), fc.string({ minLength: 1, maxLength: 30 }).filter((k) => k !== '.' && k !== '..').map(encodeURIComponent)),
          query: queryString,
          body: bodyText,
          contentType,
          headers: headerSet,
          authorization: fc.oneof(fc.constant(SDK), fc.constant(undefined), fc.constantFrom(`Bearer ${ADMIN_SECRET}x`, `Basic ${ADMIN_SECRET}`, ADMIN_SECRET, 'Bearer', `Bearer ${SDK_SECRET}x`), ascii),
        }),
        async (r) => {
          const res = await t.app.inject(toInject(r));
          expect(res.statusCode, `${r.route.method} ${r.route.path} key=${r.key} auth=${String(r.authorization)}`).toBe(r.authorization === SDK ? 403 : 401);
          expectWellFormed(r, res);
        },
      ),
      { seed: SEED + 1, numRuns: 250, endOnFailure: true },
    );
    expect(await stateOf({ t, rollouts })).toBe(before);
  });

  it('answers 401 to no or a garbage token on every SDK and OFREP route', async () => {
    const sdk = ROUTES.filter((r) => r.access === 'sdk');
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          route: fc.constantFrom(...sdk),
          key: fc.constantFrom('alpha', 'missing-flag'),
          query: queryString,
          body: bodyText,
          contentType,
          headers: headerSet,
          authorization: fc.oneof(fc.constant(undefined), fc.constantFrom(`Bearer ${SDK_SECRET}x`, `Basic ${SDK_SECRET}`, SDK_SECRET), ascii),
        }),
        async (r) => {
          const res = await t.app.inject(toInject(r));
          expect(res.statusCode).toBe(401);
          expectWellFormed(r, res);
        },
      ),
      { seed: SEED + 2, numRuns: 100, endOnFailure: true },
    );
  });
});
