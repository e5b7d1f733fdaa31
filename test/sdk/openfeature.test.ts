// RampartProvider and RampartWebProvider through the real OpenFeature SDKs, against a real app.
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import type { EventDetails } from '@openfeature/server-sdk';
import { OpenFeature as WebOpenFeature, ProviderEvents as WebProviderEvents } from '@openfeature/web-sdk';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, evaluate } from '@rampart/sdk';
import { RampartProvider, RampartWebProvider } from '@rampart/sdk/openfeature';
import { startLiveApp, startRawServer } from '../support/sdk-server.js';
import type { LiveApp } from '../support/sdk-server.js';

const TOKEN = 'sdk-secret';
let live: LiveApp;

beforeEach(async () => {
  live = await startLiveApp();
  await live.put('checkout', { enabled: true, percentage: 50 });
  await live.put('by-tenant', { enabled: true, percentage: 50, stickiness: 'tenantId' });
  await live.put('off-flag', { enabled: false, percentage: 100 });
});

afterEach(async () => {
  await OpenFeature.close();
  await WebOpenFeature.close();
  await live.close();
});

describe('RampartProvider (server SDK)', () => {
  it('resolves booleans with variant on/off, reason SPLIT or DISABLED, targetingKey as the user id', async () => {
    await OpenFeature.setProviderAndWait(new RampartProvider({ url: live.url, token: TOKEN }));
    const client = OpenFeature.getClient();
    for (const user of ['user-1', 'user-2', 'user-3', 'user-42']) {
      const expected = evaluate(live.cache.snapshot, 'checkout', user).value;
      const details = await client.getBooleanDetails('checkout', !expected, { targetingKey: user });
      expect(details).toMatchObject({ value: expected, variant: expected ? 'on' : 'off', reason: 'SPLIT' });
      expect(details.errorCode).toBeUndefined();
    }
    expect(await client.getBooleanDetails('off-flag', true, { targetingKey: 'u' })).toMatchObject({ value: false, variant: 'off', reason: 'DISABLED' });
  });

  it('feeds other context attributes to custom stickiness', async () => {
    await OpenFeature.setProviderAndWait(new RampartProvider({ url: live.url, token: TOKEN }));
    const client = OpenFeature.getClient();
    for (const tenantId of ['t-1', 't-2', 't-3']) {
      const expected = evaluate(live.cache.snapshot, 'by-tenant', { tenantId }).value;
      expect(await client.getBooleanValue('by-tenant', !expected, { targetingKey: 'someone', tenantId })).toBe(expected);
    }
  });

  it('gives the default with FLAG_NOT_FOUND, TARGETING_KEY_MISSING and TYPE_MISMATCH', async () => {
    await OpenFeature.setProviderAndWait(new RampartProvider({ url: live.url, token: TOKEN }));
    const client = OpenFeature.getClient();
    expect(await client.getBooleanDetails('missing', true, { targetingKey: 'u' })).toMatchObject({ value: true, errorCode: 'FLAG_NOT_FOUND', reason: 'ERROR' });
    expect(await client.getBooleanDetails('checkout', true, {})).toMatchObject({ value: true, errorCode: 'TARGETING_KEY_MISSING' });
    expect(await client.getStringDetails('checkout', 'x', { targetingKey: 'u' })).toMatchObject({ value: 'x', errorCode: 'TYPE_MISMATCH', reason: 'ERROR' });
    expect(await client.getNumberValue('checkout', 7, { targetingKey: 'u' })).toBe(7);
    expect(await client.getObjectValue('checkout', { a: 1 }, { targetingKey: 'u' })).toEqual({ a: 1 });
  });

  it('emits CONFIGURATION_CHANGED with flagsChanged when a flag changes on the server', async () => {
    await OpenFeature.setProviderAndWait(new RampartProvider({ url: live.url, token: TOKEN }));
    const events: EventDetails[] = [];
    OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (details) => events.push(details!));
    await live.patch('checkout', { percentage: 100 });
    await vi.waitFor(() => {
      expect(events.some((e) => (e.flagsChanged as string[] | undefined)?.includes('checkout'))).toBe(true);
    });
    expect(await OpenFeature.getClient().getBooleanValue('checkout', false, { targetingKey: 'anyone' })).toBe(true);
  });

  it('emits STALE when the server goes away and READY when it is back', async () => {
    const port = Number(new URL(live.url).port);
    await OpenFeature.setProviderAndWait(new RampartProvider({ url: live.url, token: TOKEN, staleAfterMs: 300, pollIntervalMs: 100 }));
    const seen: string[] = [];
    OpenFeature.addHandler(ProviderEvents.Stale, () => seen.push('stale'));
    OpenFeature.addHandler(ProviderEvents.Ready, () => seen.push('ready'));
    await live.close();
    await vi.waitFor(() => {
      expect(seen).toContain('stale');
    });
    // Still answering from the last good config.
    expect((await OpenFeature.getClient().getBooleanDetails('off-flag', true, { targetingKey: 'u' })).reason).toBe('DISABLED');
    live = await startLiveApp({}, port);
    await vi.waitFor(() => {
      expect(seen.at(-1)).toBe('ready');
    }, 5000);
  });

  it('reports ERROR from initialize when no config arrives in time, then READY once the server answers', async () => {
    let up = false;
    const snapshot = JSON.stringify(live.cache.snapshot);
    const raw = await startRawServer((req, res) => {
      if (!up) return void res.writeHead(503).end();
      if (req.url === '/sdk/v1/flags') return void res.writeHead(200, { 'content-type': 'application/json' }).end(snapshot);
      res.writeHead(404).end();
    });
    const seen: string[] = [];
    OpenFeature.addHandler(ProviderEvents.Error, () => seen.push('error'));
    OpenFeature.addHandler(ProviderEvents.Ready, () => seen.push('ready'));
    await expect(OpenFeature.setProviderAndWait(new RampartProvider({ url: raw.url, timeoutMs: 300, stream: false, pollIntervalMs: 100 }))).rejects.toThrow();
    expect(seen).toContain('error');
    up = true;
    await vi.waitFor(() => {
      expect(seen.at(-1)).toBe('ready');
    }, 3000);
    await raw.close();
  });

  it('sends track(flagKey, context, { ok, latencyMs }) as an outcome under the user cohort', async () => {
    const raw = await startRawServer((req, res) => {
      if (req.url === '/sdk/v1/outcomes') return void res.writeHead(202).end('{"accepted":1}');
      res.writeHead(404).end();
    });
    const client = createClient({ url: raw.url, bootstrap: live.cache.snapshot, stream: false, pollIntervalMs: 3_600_000 });
    await OpenFeature.setProviderAndWait(new RampartProvider(client));
    const of = OpenFeature.getClient();
    of.track('checkout', { targetingKey: 'user-1' }, { ok: false, latencyMs: 3 });
    of.track('checkout', { targetingKey: 'user-2' }, { value: 9 });
    await client.close();
    const events = raw.requests.filter((r) => r.url === '/sdk/v1/outcomes').flatMap((r) => (JSON.parse(r.body) as { events: unknown[] }).events);
    const cohort = (u: string): string => (evaluate(live.cache.snapshot, 'checkout', u).value ? 'on' : 'off');
    expect(events).toEqual([
      { flagKey: 'checkout', cohort: cohort('user-1'), ok: false, latencyMs: 3 },
      { flagKey: 'checkout', cohort: cohort('user-2'), ok: true, latencyMs: 9 },
    ]);
    await raw.close();
  });
});

describe('RampartWebProvider (web SDK)', () => {
  it('resolves synchronously from the global context and emits CONFIGURATION_CHANGED', async () => {
    await WebOpenFeature.setContext({ targetingKey: 'user-42' });
    await WebOpenFeature.setProviderAndWait(new RampartWebProvider({ url: live.url, token: TOKEN }));
    const client = WebOpenFeature.getClient();
    const expected = evaluate(live.cache.snapshot, 'checkout', 'user-42').value;
    expect(client.getBooleanDetails('checkout', !expected)).toMatchObject({ value: expected, variant: expected ? 'on' : 'off', reason: 'SPLIT' });
    expect(client.getStringDetails('checkout', 'd')).toMatchObject({ value: 'd', errorCode: 'TYPE_MISMATCH' });
    expect(client.getBooleanDetails('missing', true)).toMatchObject({ value: true, errorCode: 'FLAG_NOT_FOUND' });
    const changed: string[][] = [];
    client.addHandler(WebProviderEvents.ConfigurationChanged, (details) => changed.push(details?.flagsChanged ?? []));
    await live.patch('checkout', { percentage: 100 });
    await vi.waitFor(() => {
      expect(changed.flat()).toContain('checkout');
    });
    expect(client.getBooleanValue('checkout', false)).toBe(true);
  });
});
