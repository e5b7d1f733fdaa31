// client.track(): batching, bounding, retries and the final flush, against real HTTP servers.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient } from '@rampart/sdk';
import type { FlagSnapshot, RampartClient } from '@rampart/sdk';
import { outcomeRoutes } from '../../src/api/routes/outcomes.js';
import { SnapshotCache } from '../../src/api/snapshot-cache.js';
import { Registry } from '../../src/prometheus.js';
import { createEmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import { createLogger } from '../../src/telemetry.js';
import { startLiveApp, startRawServer } from '../support/sdk-server.js';
import type { RawServer } from '../support/sdk-server.js';

interface Batch {
  events: { flagKey: string; cohort: 'on' | 'off'; ok: boolean; latencyMs?: number }[];
}

const bootstrap: FlagSnapshot = { revision: 1, flags: { checkout: { enabled: true, percentage: 50 }, search: { enabled: false, percentage: 0 } } };
const cleanup: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A server that answers the outcome POSTs with `status()` and serves nothing else. */
async function outcomeServer(status: () => number = () => 202): Promise<RawServer & { batches: () => Batch[] }> {
  const raw = await startRawServer((req, res) => {
    if (req.url === '/sdk/v1/outcomes' && req.method === 'POST') {
      const code = status();
      res.writeHead(code, code === 429 ? { 'retry-after': '1' } : {}).end(code === 202 ? '{"accepted":1}' : '');
    } else res.writeHead(404).end();
  });
  cleanup.push(() => raw.close());
  const batches = (): Batch[] => raw.requests.filter((r) => r.url === '/sdk/v1/outcomes' && r.method === 'POST').map((r) => JSON.parse(r.body) as Batch);
  return Object.assign(raw, { batches });
}

function client(url: string): RampartClient {
  // Streaming off and a long poll interval: only the outcome traffic matters here.
  const c = createClient({ url, token: 'sdk-secret', bootstrap, stream: false, pollIntervalMs: 3_600_000 });
  cleanup.push(() => c.close());
  return c;
}

describe('client.track', () => {
  it('sends the outcomes of one second in one batch, each under the cohort the user is in', async () => {
    const server = await outcomeServer();
    const c = client(server.url);
    const users = ['u1', 'u2', 'u3', 'u4'];
    for (const u of users) c.track('checkout', u, { ok: u !== 'u2', latencyMs: 12.5 });
    expect(server.batches()).toHaveLength(0);
    await vi.waitFor(() => {
      expect(server.batches()).toHaveLength(1);
    }, 2000);
    expect(server.batches()[0]!.events).toEqual(
      users.map((u) => ({ flagKey: 'checkout', cohort: c.isEnabled('checkout', u) ? 'on' : 'off', ok: u !== 'u2', latencyMs: 12.5 })),
    );
    const post = server.requests.find((r) => r.method === 'POST')!;
    expect(post.headers.authorization).toBe('Bearer sdk-secret');
    expect(post.headers['content-type']).toBe('application/json');
  });

  it('sends at once in batches of at most 500 when 500 are waiting', async () => {
    const server = await outcomeServer();
    const c = client(server.url);
    for (let i = 0; i < 1200; i++) c.track('search', `user-${i}`, { ok: true });
    await vi.waitFor(() => {
      expect(server.batches().flatMap((b) => b.events)).toHaveLength(1200);
    }, 3000);
    expect(Math.max(...server.batches().map((b) => b.events.length))).toBe(500);
    expect(server.batches().every((b) => b.events.every((e) => e.cohort === 'off'))).toBe(true);
  });

  it('leaves out a latency that is negative, infinite or not a number, keeping the event', async () => {
    const server = await outcomeServer();
    const c = client(server.url);
    for (const latencyMs of [-1, Number.POSITIVE_INFINITY, Number.NaN, '12' as unknown as number, 0]) c.track('checkout', 'u', { ok: true, latencyMs });
    await c.close();
    expect(server.batches()[0]!.events.map((e) => e.latencyMs)).toEqual([undefined, undefined, undefined, undefined, 0]);
  });

  it('does not queue outcomes of a flag it does not know (the server would refuse the whole batch)', async () => {
    const server = await outcomeServer();
    const c = client(server.url);
    c.track('no-such-flag', 'u', { ok: true });
    c.track('checkout', 'u', { ok: true });
    await c.close();
    expect(server.batches().flatMap((b) => b.events.map((e) => e.flagKey))).toEqual(['checkout']);
    expect(c.droppedOutcomes).toBe(1);
  });

  it('keeps at most 10,000 outcomes while the server is away, counts the rest as dropped, and delivers them when it is back', async () => {
    let up = false;
    const server = await outcomeServer(() => (up ? 202 : 503));
    const c = client(server.url);
    for (let i = 0; i < 10_500; i++) c.track('checkout', `user-${i}`, { ok: true });
    expect(c.droppedOutcomes).toBe(500);
    await vi.waitFor(() => {
      expect(server.requests.length).toBeGreaterThanOrEqual(1);
    });
    up = true;
    await vi.waitFor(() => {
      expect(server.batches().slice(1).flatMap((b) => b.events)).toHaveLength(10_000);
    }, 8000);
    expect(c.droppedOutcomes).toBe(500);
  });

  it('drops a batch the server refuses with 400 and counts it', async () => {
    const server = await outcomeServer(() => 400);
    const c = client(server.url);
    const errors: string[] = [];
    c.on('error', ({ error }) => errors.push(error.message));
    for (let i = 0; i < 3; i++) c.track('checkout', `user-${i}`, { ok: true });
    await c.close();
    expect(c.droppedOutcomes).toBe(3);
    expect(errors).toEqual(['Rampart outcomes: 400']);
  });

  it('waits for Retry-After after a 429 before sending the batch again', async () => {
    let calls = 0;
    const server = await outcomeServer(() => (++calls === 1 ? 429 : 202));
    const c = client(server.url);
    c.track('checkout', 'u', { ok: true });
    await vi.waitFor(() => {
      expect(calls).toBe(1);
    }, 2000);
    const first = Date.now();
    await vi.waitFor(() => {
      expect(calls).toBe(2);
    }, 3000);
    expect(Date.now() - first).toBeGreaterThanOrEqual(900);
    expect(server.batches()[1]!.events).toHaveLength(1);
  });

  it('flushes what is buffered on close()', async () => {
    const server = await outcomeServer();
    const c = client(server.url);
    for (let i = 0; i < 7; i++) c.track('checkout', `user-${i}`, { ok: i % 2 === 0 });
    await c.close();
    expect(server.batches().flatMap((b) => b.events)).toHaveLength(7);
  });

  it('does nothing on an offline client', async () => {
    const c = createClient({ bootstrap, offline: true });
    c.track('checkout', 'u', { ok: true });
    await c.close();
    expect(c.droppedOutcomes).toBe(0);
  });
});

describe('client.track end to end', () => {
  it('lands in the outcome store of a real server with outcomeRoutes, per cohort', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rampart-sdk-outcomes-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const store = await createEmbeddedStore({ dir: join(dir, 'flags') });
    const outcomes = await createEmbeddedOutcomeStore({ dir: join(dir, 'flags') });
    cleanup.push(() => outcomes.close());
    const cache = new SnapshotCache({ store, logger: createLogger('silent') });
    await cache.start();
    cleanup.push(() => cache.stop());
    const live = await startLiveApp({ store, plugins: [outcomeRoutes({ outcomes, cache, registry: new Registry() })] });
    cleanup.push(() => live.close());
    await live.put('checkout', { enabled: true, percentage: 50 });
    await vi.waitFor(() => {
      expect(cache.flag('checkout')).toBeDefined();
    });
    const c = createClient({ url: live.url, token: 'sdk-secret' });
    await c.ready();
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    for (const u of users) c.track('checkout', u, { ok: true, latencyMs: 5 });
    await c.close();
    expect(c.droppedOutcomes).toBe(0);
    const summary = await outcomes.summary('checkout', 3_600_000, new Date());
    const on = users.filter((u) => c.isEnabled('checkout', u)).length;
    expect(summary.cohorts.on.count).toBe(on);
    expect(summary.cohorts.off.count).toBe(users.length - on);
  });
});
