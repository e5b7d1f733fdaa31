// The networked client against a real, listening Rampart app: stream, polling, fallbacks, timeouts.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createClient, evaluate } from '@rampart/sdk';
import type { ChangeEvent, RampartClient } from '@rampart/sdk';
import { fileStorage } from '@rampart/sdk/node';
import { startLiveApp, startRawServer } from '../support/sdk-server.js';
import type { LiveApp } from '../support/sdk-server.js';

const TOKEN = 'sdk-secret';
let live: LiveApp;
const clients: RampartClient[] = [];
const track = (client: RampartClient): RampartClient => {
  clients.push(client);
  return client;
};

beforeEach(async () => {
  live = await startLiveApp();
  await live.put('async-reports', { enabled: true, percentage: 50 });
  await live.put('new-checkout', { enabled: false, percentage: 100 });
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await live.close();
});

describe('streaming client', () => {
  it('loads the snapshot over the stream, resolves ready() and evaluates like the server', async () => {
    const client = track(createClient({ url: live.url, token: TOKEN }));
    await client.ready({ timeoutMs: 3000 });
    expect(client.status).toBe('ready');
    expect(client.revision).toBe(live.cache.revision);
    for (const user of ['user-1', 'user-2', 'user-42']) {
      expect(client.isEnabled('async-reports', user)).toBe(evaluate(live.cache.snapshot, 'async-reports', user).value);
    }
    expect(client.isEnabled('new-checkout', 'user-1', true)).toBe(false);
  });

  it('applies a PATCH pushed over the stream and fires change with the flag key and new revision', async () => {
    const client = track(createClient({ url: live.url, token: TOKEN }));
    await client.ready();
    const changes: ChangeEvent[] = [];
    client.on('change', (event) => changes.push(event));
    const before = client.revision;
    await live.patch('async-reports', { percentage: 100 });
    await vi.waitFor(() => {
      expect(client.revision).toBeGreaterThan(before);
    });
    expect(client.isEnabled('async-reports', 'anyone')).toBe(true);
    expect(changes.at(-1)).toEqual({ flags: ['async-reports'], revision: live.cache.revision });
    expect(client.revision).toBe(live.cache.revision);
    // Incremental: the flag that did not change is still there.
    expect(client.evaluate('new-checkout', 'anyone')).toEqual({ value: false, reason: 'DISABLED' });
  });

  it('removes a deleted flag (null in the change event), so isEnabled gives the default', async () => {
    const client = track(createClient({ url: live.url, token: TOKEN }));
    await client.ready();
    await live.remove('async-reports');
    await vi.waitFor(() => {
      expect(client.evaluate('async-reports', 'user-1').errorCode).toBe('FLAG_NOT_FOUND');
    });
    expect(client.isEnabled('async-reports', 'user-1', true)).toBe(true);
    expect(client.evaluate('async-reports', 'user-1').errorCode).toBe('FLAG_NOT_FOUND');
  });

  it('reconnects with Last-Event-ID after a silent stream (no heartbeat within heartbeatTimeoutMs)', async () => {
    let connections = 0;
    const raw = await startRawServer((req, res) => {
      if (req.url !== '/sdk/v1/stream') return void res.writeHead(404).end();
      connections++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // First connection: a snapshot at revision 7, then silence (a dead proxy, a frozen server).
      if (connections === 1) res.write(`retry: 100\n\nevent: snapshot\nid: 7\ndata: {"revision":7,"flags":{"f":{"enabled":true,"percentage":100}}}\n\n`);
    });
    try {
      const client = track(createClient({ url: raw.url, heartbeatTimeoutMs: 300, pollIntervalMs: 60_000 }));
      await client.ready({ timeoutMs: 2000 });
      expect(client.isEnabled('f', 'u')).toBe(true);
      await vi.waitFor(() => {
        expect(connections).toBeGreaterThanOrEqual(2);
      }, 3000);
      const streams = raw.requests.filter((r) => r.url === '/sdk/v1/stream');
      expect(streams[0]!.headers['last-event-id']).toBeUndefined();
      expect(streams[1]!.headers['last-event-id']).toBe('7');
    } finally {
      await raw.close();
    }
  });

  it('parses frames split across chunks and CRLF line endings', async () => {
    const raw = await startRawServer((req, res) => {
      if (req.url !== '/sdk/v1/stream') return void res.writeHead(404).end();
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const text = 'event: snapshot\r\nid: 3\r\ndata: {"revision":3,"flags":{"f":{"enabled":true,"percentage":100}}}\r\n\r\n: heartbeat\r\n\r\nevent: change\r\nid: 4\r\ndata: {"revision":4,"flags":{"f":null,"g":{"enabled":true,"percentage":100}}}\r\n\r\n';
      let i = 0;
      const timer = setInterval(() => {
        res.write(text.slice(i, i + 7));
        i += 7;
        if (i >= text.length) clearInterval(timer);
      }, 1);
      res.on('close', () => {
        clearInterval(timer);
      });
    });
    try {
      const client = track(createClient({ url: raw.url, pollIntervalMs: 60_000 }));
      await vi.waitFor(() => {
        expect(client.revision).toBe(4);
      }, 3000);
      expect(client.evaluate('g', 'u').errorCode).toBeUndefined();
      expect(client.evaluate('f', 'u').errorCode).toBe('FLAG_NOT_FOUND');
    } finally {
      await raw.close();
    }
  });

  it('waits at least Retry-After before reconnecting after a 503', async () => {
    const at: number[] = [];
    const raw = await startRawServer((_req, res) => {
      at.push(Date.now());
      res.writeHead(503, { 'retry-after': '2' }).end();
    });
    try {
      const client = track(createClient({ url: raw.url, pollIntervalMs: 60_000 }));
      const errors: Error[] = [];
      client.on('error', ({ error }) => errors.push(error));
      await vi.waitFor(() => {
        expect(at.length).toBeGreaterThanOrEqual(2);
      }, 5000);
      // Without Retry-After the first retry comes after ~1 s (the SSE retry, with jitter).
      expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(1950);
      expect(errors[0]?.message).toMatch(/503/);
      expect(client.status).toBe('error');
    } finally {
      await raw.close();
    }
  });
});

describe('polling', () => {
  it('polls /sdk/v1/flags with If-None-Match when streaming is off, counting 304s on the server', async () => {
    const client = track(createClient({ url: live.url, token: TOKEN, stream: false, pollIntervalMs: 100 }));
    await client.ready();
    const route = 'rampart_http_requests_total{method="GET",route="/sdk/v1/flags",status="304"}';
    await vi.waitFor(async () => {
      expect(await live.metric(route)).toBeGreaterThanOrEqual(3);
    }, 5000);
    expect(await live.metric('rampart_http_requests_total{method="GET",route="/sdk/v1/flags",status="200"}')).toBe(1);
    expect(await live.metric('rampart_stream_subscribers')).toBe(0);
    await live.patch('async-reports', { percentage: 100 });
    await vi.waitFor(() => {
      expect(client.isEnabled('async-reports', 'anyone')).toBe(true);
    }, 3000);
  });

  it('falls back to polling while the stream is refused (429) and still sees changes', async () => {
    await live.close();
    live = await startLiveApp({ stream: { maxStreamsPerToken: 0 } });
    await live.put('async-reports', { enabled: true, percentage: 0 });
    const client = track(createClient({ url: live.url, token: TOKEN, pollIntervalMs: 100 }));
    const errors: string[] = [];
    client.on('error', ({ error }) => errors.push(error.message));
    await client.ready({ timeoutMs: 3000 });
    await live.patch('async-reports', { percentage: 100 });
    await vi.waitFor(() => {
      expect(client.isEnabled('async-reports', 'anyone')).toBe(true);
    }, 3000);
    expect(errors.some((m) => /stream: 429/.test(m))).toBe(true);
    // Retry-After: 30 keeps the stream from being retried during this test.
    const streams = await live.metric('rampart_http_requests_total{method="GET",route="/sdk/v1/stream",status="429"}');
    expect(streams).toBe(1);
  });
});

describe('ready, status and resilience', () => {
  it('rejects ready() after its timeout when the server is unreachable, and keeps trying', async () => {
    const raw = await startRawServer((_req, res) => res.writeHead(500).end());
    const client = track(createClient({ url: raw.url, pollIntervalMs: 100, stream: false }));
    const started = Date.now();
    await expect(client.ready({ timeoutMs: 300 })).rejects.toThrow(/no flag configuration within 300 ms/);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(client.status).toBe('error');
    await vi.waitFor(() => {
      expect(raw.requests.length).toBeGreaterThanOrEqual(3);
    });
    await raw.close();
  });

  it('rejects ready() when a request hangs longer than timeoutMs, then aborts it', async () => {
    const raw = await startRawServer(() => undefined); // never answers
    const client = track(createClient({ url: raw.url, timeoutMs: 200, pollIntervalMs: 60_000 }));
    const errors: string[] = [];
    client.on('error', ({ error }) => errors.push(error.message));
    await expect(client.ready({ timeoutMs: 500 })).rejects.toThrow(/within 500 ms/);
    expect(errors.some((m) => /timeout/.test(m))).toBe(true);
    await raw.close();
  });

  it('keeps answering from a bootstrap while the server is away, goes stale, then ready when it is back', async () => {
    const snapshot = live.cache.snapshot;
    const port = new URL(live.url).port;
    await live.close();
    const client = track(createClient({ url: `http://127.0.0.1:${port}`, token: TOKEN, bootstrap: snapshot, staleAfterMs: 300, pollIntervalMs: 100 }));
    expect(client.status).toBe('ready');
    const stale = vi.fn();
    client.on('stale', stale);
    await vi.waitFor(() => {
      expect(client.status).toBe('stale');
    });
    expect(stale).toHaveBeenCalledOnce();
    expect(client.isEnabled('async-reports', 'user-42')).toBe(evaluate(snapshot, 'async-reports', 'user-42').value);
    // The server comes back on the same port, with a changed flag.
    live = await startLiveApp({}, Number(port));
    await live.put('async-reports', { enabled: true, percentage: 100 });
    await vi.waitFor(() => {
      expect(client.status).toBe('ready');
      expect(client.isEnabled('async-reports', 'anyone')).toBe(true);
    }, 5000);
  });

  it('starts from storage when the server is unreachable at start (status stale), and saves what the server sends', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rampart-storage-'));
    const path = join(dir, 'flags.json');
    try {
      // A first run saves the server's snapshot.
      const first = createClient({ url: live.url, token: TOKEN, storage: fileStorage(path) });
      await first.ready();
      await vi.waitFor(async () => {
        expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ revision: live.cache.revision });
      });
      await first.close();
      const saved = JSON.parse(await readFile(path, 'utf8')) as { revision: number };
      // The next run cannot reach the server: it starts from the file.
      const port = new URL(live.url).port;
      await live.close();
      live = await startLiveApp();
      const second = track(createClient({ url: `http://127.0.0.1:${port}`, storage: fileStorage(path), pollIntervalMs: 100 }));
      await second.ready({ timeoutMs: 2000 });
      expect(second.status).toBe('stale');
      expect(second.revision).toBe(saved.revision);
      expect(second.isEnabled('new-checkout', 'u', true)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('ignores storage that holds garbage and still reports the network error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rampart-storage-'));
    try {
      await writeFile(join(dir, 'flags.json'), '{not json');
      const client = track(createClient({ url: 'http://127.0.0.1:1', storage: fileStorage(join(dir, 'flags.json')), pollIntervalMs: 100 }));
      await expect(client.ready({ timeoutMs: 300 })).rejects.toThrow(/no flag configuration/);
      expect(client.status).toBe('error');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
