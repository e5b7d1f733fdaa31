import { OFREPProvider } from '@openfeature/ofrep-provider';
import { OpenFeature } from '@openfeature/server-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluate } from '@rampart/sdk';
import type { FlagSnapshot } from '@rampart/sdk';
import { RECENT_BULK_ANSWERS } from '../../src/api/routes/ofrep.js';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';

const ADMIN = { authorization: 'Bearer admin-token' };
const SDK = { authorization: 'Bearer sdk-token' };

describe('OFREP with the stock OpenFeature OFREP provider', () => {
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await buildTestApp({ adminTokens: [{ name: 'ops', secret: 'admin-token' }], sdkTokens: [{ name: 'svc', secret: 'sdk-token' }] });
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const flags: [string, Record<string, unknown>][] = [
      ['half', { enabled: true, percentage: 50 }],
      ['off', { enabled: false, percentage: 100 }],
      ['by-tenant', { enabled: true, percentage: 50, stickiness: 'tenantId' }],
    ];
    for (const [key, body] of flags) await t.app.inject({ method: 'PUT', url: `/flags/${key}`, headers: ADMIN, payload: body });
    await t.cache.resync();
    await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl: base, headers: [['Authorization', SDK.authorization]] }));
  });
  afterAll(async () => {
    await OpenFeature.close();
    await t.close();
  });

  const snapshot = async (): Promise<FlagSnapshot> => (await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: SDK })).json<FlagSnapshot>();

  it('resolves booleans exactly as local evaluation does, targetingKey being the user id', async () => {
    const client = OpenFeature.getClient();
    const snap = await snapshot();
    let on = 0;
    for (let i = 0; i < 60; i++) {
      const userId = `user-${i}`;
      const details = await client.getBooleanDetails('half', false, { targetingKey: userId });
      const local = evaluate(snap, 'half', { userId });
      expect(details.value).toBe(local.value);
      expect(details.reason).toBe('SPLIT');
      expect(details.variant).toBe(local.value ? 'on' : 'off');
      expect(details.errorCode).toBeUndefined();
      expect(details.flagMetadata.bucket).toBe(local.bucket);
      if (details.value) on++;
    }
    expect(on).toBeGreaterThan(10);
    expect(on).toBeLessThan(50);
  });

  it('reports DISABLED for a toggled-off flag and FLAG_NOT_FOUND with the default for an unknown one', async () => {
    const client = OpenFeature.getClient();
    const disabled = await client.getBooleanDetails('off', true, { targetingKey: 'u-1' });
    expect(disabled).toMatchObject({ value: false, reason: 'DISABLED' });
    const missing = await client.getBooleanDetails('no-such-flag', true, { targetingKey: 'u-1' });
    expect(missing).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'FLAG_NOT_FOUND' });
  });

  it('reports TARGETING_KEY_MISSING when the context has no unit id', async () => {
    const details = await OpenFeature.getClient().getBooleanDetails('half', false, {});
    expect(details).toMatchObject({ value: false, reason: 'ERROR', errorCode: 'TARGETING_KEY_MISSING' });
  });

  it('uses other context attributes for custom stickiness', async () => {
    const snap = await snapshot();
    for (const tenantId of ['t-1', 't-2', 't-3', 't-4', 't-5']) {
      const details = await OpenFeature.getClient().getBooleanDetails('by-tenant', false, { targetingKey: 'someone', tenantId });
      expect(details.value).toBe(evaluate(snap, 'by-tenant', { tenantId }).value);
    }
  });
});

describe('OFREP bulk evaluation', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await buildTestApp({});
    await t.app.inject({ method: 'PUT', url: '/flags/a', payload: { enabled: true, percentage: 100 } });
    await t.app.inject({ method: 'PUT', url: '/flags/b', payload: { enabled: false } });
    await t.cache.resync();
  });
  afterAll(async () => {
    await t.close();
  });

  it('evaluates every flag with an ETag, and answers 304 until the flags or the context change', async () => {
    const ask = (context: Record<string, unknown>, etag?: string) =>
      t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', headers: etag === undefined ? {} : { 'if-none-match': etag }, payload: { context } });
    const res = await ask({ targetingKey: 'u-1' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ flags: { key: string; value?: boolean; reason?: string }[] }>();
    expect(body.flags).toEqual([
      expect.objectContaining({ key: 'a', value: true, reason: 'SPLIT', variant: 'on' }),
      expect.objectContaining({ key: 'b', value: false, reason: 'DISABLED', variant: 'off' }),
    ]);
    const etag = res.headers.etag as string;
    expect((await ask({ targetingKey: 'u-1' }, etag)).statusCode).toBe(304);
    expect((await ask({ targetingKey: 'u-2' }, etag)).statusCode).toBe(200);
    await t.app.inject({ method: 'PATCH', url: '/flags/b', payload: { enabled: true } });
    await t.cache.resync();
    expect((await ask({ targetingKey: 'u-1' }, etag)).statusCode).toBe(200);
  });

  it('lists flags needing a unit id with TARGETING_KEY_MISSING in bulk, others with values', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', payload: { context: {} } });
    const flags = res.json<{ flags: { key: string; errorCode?: string }[] }>().flags;
    expect(flags.find((f) => f.key === 'a')?.errorCode).toBe('TARGETING_KEY_MISSING');
  });

  it('answers each flag in bulk with exactly the single route\'s document: revision and bucket included', async () => {
    const context = { targetingKey: 'u-7', plan: 'pro' };
    const snap = (await t.app.inject({ method: 'GET', url: '/sdk/v1/flags' })).json<FlagSnapshot>();
    const res = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', payload: { context } });
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    const bulk = res.json<{ flags: { key: string }[]; metadata: unknown }>();
    expect(bulk.metadata).toEqual({ revision: snap.revision });
    expect(bulk.flags.map((f) => f.key)).toEqual(Object.keys(snap.flags).sort());
    for (const item of bulk.flags) {
      const local = evaluate(snap, item.key, { userId: 'u-7', plan: 'pro' });
      expect(item).toEqual({
        key: item.key,
        value: local.value,
        reason: local.reason,
        variant: local.value ? 'on' : 'off',
        metadata: local.bucket === undefined ? { revision: snap.revision } : { revision: snap.revision, bucket: local.bucket },
      });
      const single = await t.app.inject({ method: 'POST', url: `/ofrep/v1/evaluate/flags/${item.key}`, payload: { context } });
      expect(single.json()).toEqual(item);
    }
  });

  it('names the bad field of a malformed body on both routes, and accepts any object context', async () => {
    const bad: [string, string][] = [
      ['[1]', 'body'],
      ['"u-1"', 'body'],
      ['{"context":null}', 'body.context'],
      ['{"context":[1]}', 'body.context'],
      ['{"context":"u-1"}', 'body.context'],
    ];
    for (const url of ['/ofrep/v1/evaluate/flags', '/ofrep/v1/evaluate/flags/a']) {
      for (const [payload, path] of bad) {
        const res = await t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
        expect(res.statusCode, `${url} ${payload}`).toBe(400);
        expect(res.headers['content-type']).toContain('application/problem+json');
        expect(res.json<{ errors: { path: string }[] }>().errors.map((e) => e.path)).toEqual([path]);
      }
      for (const payload of ['{}', '{"context":{}}', '{"context":{"targetingKey":"u-1","userId":"ignored","n":1}}', '{"context":{"a":1},"other":2}']) {
        const res = await t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload });
        expect([200, 400]).toContain(res.statusCode);
        expect(res.headers['content-type']).not.toContain('problem');
      }
    }
  });

  it('refuses a malformed flag key in the URL with 400 naming params.key', async () => {
    for (const key of ['Upper', '-leading', 'x'.repeat(129)]) {
      const res = await t.app.inject({ method: 'POST', url: `/ofrep/v1/evaluate/flags/${key}`, payload: { context: { targetingKey: 'u' } } });
      expect(res.statusCode).toBe(400);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json<{ errors: { path: string }[] }>().errors.map((e) => e.path)).toEqual(['params.key']);
    }
  });

  it('takes targetingKey as the user id, over a userId attribute', async () => {
    const snap = (await t.app.inject({ method: 'GET', url: '/sdk/v1/flags' })).json<FlagSnapshot>();
    const res = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags/a', payload: { context: { targetingKey: 'u-9', userId: 'someone-else' } } });
    expect(res.json<{ metadata: { bucket: number } }>().metadata.bucket).toBe(evaluate(snap, 'a', { userId: 'u-9' }).bucket);
  });

  it('answers a repeated context from its recent answers until the revision changes, past the bound too', async () => {
    const ask = async (context: Record<string, unknown>) => {
      const res = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags', payload: { context } });
      return { body: res.body, etag: res.headers.etag as string, flags: res.json<{ flags: { key: string; value?: boolean }[] }>().flags };
    };
    const first = await ask({ targetingKey: 'repeat-1' });
    expect(await ask({ targetingKey: 'repeat-1' })).toEqual(first);
    // More distinct contexts than are kept: the first is computed again, to the same bytes.
    for (let i = 0; i <= RECENT_BULK_ANSWERS; i++) await ask({ targetingKey: `other-${i}` });
    expect(await ask({ targetingKey: 'repeat-1' })).toEqual(first);
    // A new revision: the kept answer is not served any more.
    await t.app.inject({ method: 'PATCH', url: '/flags/b', payload: { enabled: false } });
    await t.cache.resync();
    const afterOff = await ask({ targetingKey: 'repeat-1' });
    expect(afterOff.etag).not.toBe(first.etag);
    expect(afterOff.flags.find((f) => f.key === 'b')?.value).toBe(false);
    await t.app.inject({ method: 'PATCH', url: '/flags/b', payload: { enabled: true, percentage: 100 } });
    await t.cache.resync();
    const afterOn = await ask({ targetingKey: 'repeat-1' });
    expect(afterOn.flags.find((f) => f.key === 'b')?.value).toBe(true);
  });

  it('rejects a context that is not an object with 400 problem+json', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags/a', payload: { context: 'u-1' } });
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
  });
});

describe('OFREP without a body', () => {
  it('treats a missing body as an empty context', async () => {
    const t = await buildTestApp({});
    try {
      await t.app.inject({ method: 'PUT', url: '/flags/everyone', payload: { enabled: false } });
      await t.cache.resync();
      const single = await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags/everyone' });
      expect(single.statusCode).toBe(200);
      expect(single.json<{ reason: string }>().reason).toBe('DISABLED');
      expect((await t.app.inject({ method: 'POST', url: '/ofrep/v1/evaluate/flags' })).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});
