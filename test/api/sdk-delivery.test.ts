import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FlagSnapshot } from '@rampart/sdk';
import { buildTestApp } from '../support/app.js';
import type { TestApp } from '../support/app.js';
import { openSse } from '../support/sse.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultFields } from '../../src/core/flag.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { FlagStore } from '../../src/store/flag-store.js';

const SDK = { authorization: 'Bearer sdk-token' };
const ADMIN = { authorization: 'Bearer admin-token' };

describe('SDK delivery', () => {
  let t: TestApp;
  let base: string;
  beforeAll(async () => {
    t = await buildTestApp({ adminTokens: [{ name: 'ops', secret: 'admin-token' }], sdkTokens: [{ name: 'web', secret: 'sdk-token' }], stream: { heartbeatMs: 200, maxStreamsPerToken: 3 } });
    base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    await t.app.inject({ method: 'PUT', url: '/flags/alpha', headers: ADMIN, payload: { enabled: true, percentage: 10 } });
    await t.cache.resync();
  });
  afterAll(async () => {
    await t.close();
  });

  const patch = async (key: string, body: Record<string, unknown>) => {
    const res = await t.app.inject({ method: 'PATCH', url: `/flags/${key}`, headers: ADMIN, payload: body });
    expect(res.statusCode).toBe(200);
  };

  it('GET /sdk/v1/flags returns the snapshot with ETag "<revision>" and 304 on a match', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: SDK });
    expect(res.statusCode).toBe(200);
    const snapshot = res.json<FlagSnapshot>();
    expect(res.headers.etag).toBe(`"${snapshot.revision}"`);
    expect(snapshot.flags.alpha).toEqual({ enabled: true, percentage: 10, groupId: 'alpha', stickiness: 'userId' });
    const again = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: { ...SDK, 'if-none-match': `"${snapshot.revision}"` } });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBe('');
  });

  it('serves the snapshot from memory: a change shows up with a new ETag after the feed delivers it', async () => {
    const before = (await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: SDK })).headers.etag;
    await patch('alpha', { percentage: 11 });
    await expect.poll(async () => (await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: SDK })).headers.etag, { timeout: 2000 }).not.toBe(before);
  });

  it('streams a snapshot on connect, then change events with id = revision', async () => {
    const sse = await openSse(`${base}/sdk/v1/stream`, SDK);
    try {
      expect(sse.status).toBe(200);
      expect(sse.headers.get('content-type')).toContain('text/event-stream');
      const first = await sse.next((e) => e.event === 'snapshot');
      const snapshot = JSON.parse(first.data) as FlagSnapshot;
      expect(first.id).toBe(String(snapshot.revision));
      await patch('alpha', { percentage: 12.5 });
      const change = await sse.next((e) => e.event === 'change');
      const body = JSON.parse(change.data) as { revision: number; flags: Record<string, { percentage: number } | null> };
      expect(body.flags.alpha?.percentage).toBe(12.5);
      expect(Number(change.id)).toBe(body.revision);
      expect(body.revision).toBeGreaterThan(snapshot.revision);
    } finally {
      sse.close();
    }
  });

  it('sends deleted flags as null in a change event', async () => {
    await t.app.inject({ method: 'PUT', url: '/flags/short-lived', headers: ADMIN, payload: { percentage: 1 } });
    const sse = await openSse(`${base}/sdk/v1/stream`, SDK);
    try {
      await sse.next((e) => e.event === 'snapshot' && e.data.includes('short-lived'));
      await t.app.inject({ method: 'DELETE', url: '/flags/short-lived', headers: ADMIN });
      const change = await sse.next((e) => e.event === 'change');
      expect((JSON.parse(change.data) as { flags: Record<string, unknown> }).flags['short-lived']).toBeNull();
    } finally {
      sse.close();
    }
  });

  it('resumes with Last-Event-ID: sends only the changes missed, not a snapshot', async () => {
    const first = await openSse(`${base}/sdk/v1/stream`, SDK);
    const snap = await first.next((e) => e.event === 'snapshot');
    first.close();
    await patch('alpha', { percentage: 20 });
    await patch('alpha', { percentage: 21 });
    await t.cache.resync();
    const resumed = await openSse(`${base}/sdk/v1/stream`, { ...SDK, 'last-event-id': snap.id ?? '' });
    try {
      const change = await resumed.next((e) => e.event === 'change');
      const body = JSON.parse(change.data) as { flags: Record<string, { percentage: number }> };
      expect(body.flags.alpha?.percentage).toBe(21);
      expect(resumed.events.some((e) => e.event === 'snapshot')).toBe(false);
    } finally {
      resumed.close();
    }
  });

  it('answers an unknown or garbage Last-Event-ID with a fresh snapshot', async () => {
    for (const id of ['999999999', 'garbage']) {
      const sse = await openSse(`${base}/sdk/v1/stream`, { ...SDK, 'last-event-id': id });
      try {
        await sse.next((e) => e.event === 'snapshot');
      } finally {
        sse.close();
      }
    }
  });

  it('sends heartbeat comments on an idle stream', async () => {
    const sse = await openSse(`${base}/sdk/v1/stream`, SDK);
    try {
      await expect.poll(() => sse.comments.includes('heartbeat'), { timeout: 2000 }).toBe(true);
    } finally {
      sse.close();
    }
  });

  it('caps open streams per token with 429 and Retry-After, and frees the slot on disconnect', async () => {
    const open = await Promise.all([1, 2, 3].map(() => openSse(`${base}/sdk/v1/stream`, SDK)));
    try {
      await Promise.all(open.map((s) => s.next((e) => e.event === 'snapshot')));
      const refused = await fetch(`${base}/sdk/v1/stream`, { headers: SDK });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('30');
      await refused.body?.cancel();
    } finally {
      for (const s of open) s.close();
    }
    await expect
      .poll(async () => {
        const res = await fetch(`${base}/sdk/v1/stream`, { headers: SDK });
        await res.body?.cancel();
        return res.status;
      }, { timeout: 2000 })
      .toBe(200);
  });

  it('rejects a stream without a token with 401', async () => {
    const res = await fetch(`${base}/sdk/v1/stream`);
    expect(res.status).toBe(401);
    await res.body?.cancel();
  });
});

describe('CORS for browser SDKs', () => {
  it('allows configured origins on /sdk/* and /ofrep/* only, including preflight', async () => {
    const t = await buildTestApp({ corsOrigins: ['https://app.example.test'] });
    try {
      const ok = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: { origin: 'https://app.example.test' } });
      expect(ok.headers['access-control-allow-origin']).toBe('https://app.example.test');
      expect(ok.headers['access-control-expose-headers']).toContain('ETag');
      const preflight = await t.app.inject({ method: 'OPTIONS', url: '/ofrep/v1/evaluate/flags', headers: { origin: 'https://app.example.test', 'access-control-request-method': 'POST' } });
      expect(preflight.statusCode).toBe(204);
      expect(preflight.headers['access-control-allow-headers']).toContain('Authorization');
      const other = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: { origin: 'https://evil.example.test' } });
      expect(other.headers['access-control-allow-origin']).toBeUndefined();
      const admin = await t.app.inject({ method: 'GET', url: '/flags', headers: { origin: 'https://app.example.test' } });
      expect(admin.headers['access-control-allow-origin']).toBeUndefined();
    } finally {
      await t.close();
    }
  });
});

describe('a replica behind its client', () => {
  // The embedded store with its change notifications withheld: the cache learns of writes only
  // when it re-reads the store, like a replica whose pub/sub lags behind another replica's writes.
  let t: TestApp;
  let dir: string;
  let snapshots = 0;
  let changeReads = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-lagging-'));
    const real = await createEmbeddedStore({ dir });
    const lagging: FlagStore = {
      get: (key) => real.get(key),
      snapshot: () => {
        snapshots++;
        return real.snapshot();
      },
      put: (key, fields, expected, meta) => real.put(key, fields, expected, meta),
      delete: (key, expected, meta) => real.delete(key, expected, meta),
      history: (key, options) => real.history(key, options),
      changesSince: (revision) => {
        changeReads++;
        return real.changesSince(revision);
      },
      subscribe: async () => async () => undefined,
      ping: () => real.ping(),
      close: () => real.close(),
    };
    t = await buildTestApp({ store: lagging });
    await t.store.put('f', { ...defaultFields('f'), percentage: 1 }, 0, { actor: 'seed', source: 'api', at: new Date() });
    await t.cache.resync();
    // Written "on another replica": the store moves on, this cache does not hear of it.
    await t.store.put('f', { ...defaultFields('f'), percentage: 2 }, 1, { actor: 'seed', source: 'api', at: new Date() });
  });
  afterAll(async () => {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('re-reads the store before answering a stream that resumes from a newer revision', async () => {
    const { revision } = await t.store.snapshot();
    expect(t.cache.revision).toBe(revision - 1);
    const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const sse = await openSse(`${base}/sdk/v1/stream`, { 'last-event-id': String(revision) });
    try {
      expect(sse.status).toBe(200);
      // Caught up to the client's revision, so nothing is sent back in time: no snapshot at all.
      await expect.poll(() => t.cache.revision, { timeout: 2000 }).toBe(revision);
      await new Promise((r) => setTimeout(r, 200));
      expect(sse.events.filter((e) => e.event === 'snapshot')).toEqual([]);
    } finally {
      sse.close();
    }
  });

  it('answers a burst of requests naming revisions that do not exist with one store read', async () => {
    snapshots = 0;
    changeReads = 0;
    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) => t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: { 'if-none-match': `"${1000 + i}"` } })),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(answers.map(() => 200));
    expect(snapshots + changeReads).toBeLessThanOrEqual(2);
    expect(snapshots + changeReads).toBeGreaterThanOrEqual(1);
  });

  it('re-reads the store before answering a poll that names a newer revision', async () => {
    await t.store.put('f', { ...defaultFields('f'), percentage: 3 }, 2, { actor: 'seed', source: 'api', at: new Date() });
    const { revision } = await t.store.snapshot();
    expect(t.cache.revision).toBeLessThan(revision);
    const res = await t.app.inject({ method: 'GET', url: '/sdk/v1/flags', headers: { 'if-none-match': `"${revision}"` } });
    expect(res.statusCode).toBe(304);
    expect(res.headers.etag).toBe(`"${revision}"`);
  });
});
