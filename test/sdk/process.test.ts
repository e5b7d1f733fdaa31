// The client against `rampart serve` as a real process: Redis store, SIGKILL and restart, and a
// Node process that exits by itself after close().
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient } from '@rampart/sdk';
import type { RampartClient } from '@rampart/sdk';
import { freePort } from '../support/redis-server.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';
import { adminOf, startLiveApp } from '../support/sdk-server.js';
import { startServerProcess, TS_NODE_ARGS } from '../support/server-process.js';
import type { ServerProcess } from '../support/server-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../support/sdk-exit-script.ts', import.meta.url));
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe('client against rampart serve on Redis', () => {
  it('gets a PATCH over the stream, survives SIGKILL (stale, same answers) and recovers the new revision after a restart on the same port', async () => {
    const env = { REDIS_URL: redisUrl(), RAMPART_REDIS_PREFIX: uniquePrefix('sdk-live'), RAMPART_GUARD: 'off', PORT: String(await freePort()) };
    let server: ServerProcess = await startServerProcess(env);
    cleanup.push(() => server.stop('SIGKILL'));
    const admin = adminOf(server.url);
    await admin.put('live-flag', { enabled: true, percentage: 0 });

    const client: RampartClient = createClient({ url: server.url, staleAfterMs: 500, pollIntervalMs: 200 });
    cleanup.push(() => client.close());
    await client.ready({ timeoutMs: 5000 });
    expect(client.isEnabled('live-flag', 'user-1')).toBe(false);

    await admin.patch('live-flag', { percentage: 100 });
    await vi.waitFor(() => {
      expect(client.isEnabled('live-flag', 'user-1')).toBe(true);
    }, 5000);
    const before = client.revision;

    await server.stop('SIGKILL');
    await vi.waitFor(() => {
      expect(client.status).toBe('stale');
    }, 5000);
    // Never flip users to the default because the server is gone.
    for (let i = 0; i < 100; i++) expect(client.isEnabled('live-flag', `user-${i}`)).toBe(true);
    expect(client.revision).toBe(before);

    server = await startServerProcess(env);
    await adminOf(server.url).patch('live-flag', { percentage: 0 });
    await vi.waitFor(() => {
      expect(client.status).toBe('ready');
      expect(client.revision).toBeGreaterThan(before);
      expect(client.isEnabled('live-flag', 'user-1')).toBe(false);
    }, 15_000);
  }, 60_000);
});

describe('close()', () => {
  it('lets a Node process with a streaming client exit on its own right after close()', async () => {
    const live = await startLiveApp({ sdkTokens: [{ name: 'app', secret: 'sdk-secret' }] });
    cleanup.push(() => live.close());
    await live.put('exit-flag', { enabled: true, percentage: 100 });
    const child = spawn(process.execPath, [...TS_NODE_ARGS, SCRIPT, live.url, 'sdk-secret'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let closedAt = 0;
    child.stdout.on('data', (d: Buffer) => {
      output += d.toString();
      if (closedAt === 0 && output.includes('closed')) closedAt = Date.now();
    });
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => child.once('exit', (c, s) => {
      resolve([c, s]);
    }));
    const exitedAfter = Date.now() - closedAt;
    clearTimeout(killer);
    expect(output).toMatch(/ready \d+ true\nclosed\n/);
    expect(signal).toBeNull();
    expect(code).toBe(0);
    expect(exitedAfter).toBeLessThan(2000);
  }, 30_000);
});
