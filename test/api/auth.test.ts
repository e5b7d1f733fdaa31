import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/telemetry.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { captureLogs } from '../support/log-capture.js';

const ADMIN_SECRET = 'adm-7f3c9b1e-secret';
const SDK_SECRET = 'sdk-0a1b2c3d-secret';


describe('auth', () => {
  const logs = captureLogs();
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({
      adminTokens: [{ name: 'ops', secret: ADMIN_SECRET }],
      sdkTokens: [{ name: 'web', secret: SDK_SECRET }],
      logger: createLogger('trace', logs.stream),
    });
    await t.app.inject({ method: 'PUT', url: '/flags/f1', headers: { authorization: `Bearer ${ADMIN_SECRET}` }, payload: { percentage: 5 } });
  });
  afterAll(async () => {
    await t.close();
  });

  const adminRoutes: [string, string][] = [
    ['GET', '/flags'],
    ['GET', '/flags/f1'],
    ['PUT', '/flags/f1'],
    ['PATCH', '/flags/f1'],
    ['DELETE', '/flags/f1'],
    ['GET', '/flags/f1/history'],
    ['GET', '/flags/f1/evaluate?userId=1'],
  ];

  it.each(adminRoutes)('%s %s without a token is 401 problem+json with WWW-Authenticate', async (method, url) => {
    const res = await t.app.inject({ method: method as 'GET', url, ...(method === 'PUT' || method === 'PATCH' ? { payload: { percentage: 1 } } : {}) });
    expect(res.statusCode).toBe(401);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.headers['www-authenticate']).toContain('Bearer');
  });

  it.each(adminRoutes)('%s %s with an SDK token is 403', async (method, url) => {
    const res = await t.app.inject({ method: method as 'GET', url, headers: { authorization: `Bearer ${SDK_SECRET}` }, ...(method === 'PUT' || method === 'PATCH' ? { payload: { percentage: 1 } } : {}) });
    expect(res.statusCode).toBe(403);
  });

  it('a wrong token, a near-miss token and a non-Bearer scheme are 401', async () => {
    for (const authorization of ['Bearer nope', `Bearer ${ADMIN_SECRET}x`, `Bearer ${ADMIN_SECRET.slice(0, -1)}`, `Basic ${ADMIN_SECRET}`, ADMIN_SECRET]) {
      const res = await t.app.inject({ method: 'GET', url: '/flags', headers: { authorization } });
      expect(res.statusCode, authorization).toBe(401);
    }
  });

  it('SDK tokens read /sdk/v1/flags and OFREP; admin tokens too', async () => {
    for (const secret of [SDK_SECRET, ADMIN_SECRET]) {
      const headers = { authorization: `Bearer ${secret}` };
      expect((await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers })).statusCode).toBe(200);
      expect((await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', headers, payload: { context: { targetingKey: 'u' } } })).statusCode).toBe(200);
    }
    expect((await t.app.inject({ method: 'GET', url: '/sdk/v1/flags' })).statusCode).toBe(401);
  });

  it('answers an unknown URL with 404 even without a token', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/nowhere' });
    expect(res.statusCode).toBe(404);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });

  it('health, readiness, metrics and the OpenAPI document are public', async () => {
    for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json']) {
      expect((await t.app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
    }
  });

  it('records the token name, never the secret, as the actor in history', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/flags/f1/history', headers: { authorization: `Bearer ${ADMIN_SECRET}` } });
    expect(res.json<{ entries: { actor: string }[] }>().entries[0]?.actor).toBe('ops');
    expect(res.body).not.toContain(ADMIN_SECRET);
  });

  it('never writes a token into logs or error bodies', async () => {
    const bodies: string[] = [];
    for (const authorization of [`Bearer ${ADMIN_SECRET}`, `Bearer ${SDK_SECRET}`, 'Bearer wrong-token-value']) {
      for (const [method, url] of [['GET', '/flags'], ['PATCH', '/flags/f1'], ['GET', '/nowhere']] as const) {
        const res = await t.app.inject({ method, url, headers: { authorization }, ...(method === 'PATCH' ? { payload: { percentage: 'bad' } } : {}) });
        bodies.push(res.body);
      }
    }
    // Whatever a future log call passes along, headers and token fields come out redacted.
    t.app.log.error({ headers: { authorization: `Bearer ${ADMIN_SECRET}` }, token: SDK_SECRET }, 'probe');
    const all = logs.lines.join('\n') + bodies.join('\n');
    expect(logs.lines.length).toBeGreaterThan(0);
    expect(all).not.toContain(ADMIN_SECRET);
    expect(all).not.toContain(SDK_SECRET);
    expect(logs.lines.join('\n')).toContain('[redacted]');
  });

  it('logs one JSON line per change with flag, before, after and actor', async () => {
    await t.app.inject({ method: 'PATCH', url: '/flags/f1', headers: { authorization: `Bearer ${ADMIN_SECRET}` }, payload: { percentage: 6 } });
    const change = logs.lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'flag changed' && (l.after as { percentage?: number } | null)?.percentage === 6);
    expect(change).toMatchObject({ component: 'audit', flag: 'f1', actor: 'ops', before: { percentage: 5 }, after: { percentage: 6 } });
  });
});

describe('open mode (no tokens configured)', () => {
  it('lets anyone read and write, recording the actor as anonymous', async () => {
    const t = await buildTestApp({});
    try {
      const res = await t.app.inject({ method: 'PUT', url: '/flags/open', payload: { percentage: 1 } });
      expect(res.statusCode).toBe(201);
      expect(res.json<{ updatedBy: string }>().updatedBy).toBe('anonymous');
    } finally {
      await t.close();
    }
  });
});
