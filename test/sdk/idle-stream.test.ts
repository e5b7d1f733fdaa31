// The server closes streams that carried nothing but heartbeats; the SDK reconnects and misses nothing.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createClient } from '@rampart/sdk';
import type { RampartClient } from '@rampart/sdk';
import { startLiveApp } from '../support/sdk-server.js';
import type { LiveApp } from '../support/sdk-server.js';

let live: LiveApp | undefined;
let client: RampartClient | undefined;

afterEach(async () => {
  await client?.close();
  await live?.close();
});

describe('idle stream timeout', () => {
  it('closes quiet streams; the client reconnects with Last-Event-ID, holds its slot once, and gets later changes', async () => {
    live = await startLiveApp({ stream: { heartbeatMs: 100, idleTimeoutMs: 300, maxStreamsPerToken: 1 } });
    await live.put('async-reports', { enabled: true, percentage: 10 });
    client = createClient({ url: live.url, token: 'sdk-secret' });
    const ends: string[] = [];
    client.on('error', ({ error }) => ends.push(error.message));
    await client.ready({ timeoutMs: 3000 });

    // Two idle closes in a row; each reconnect fits in the one-stream budget, so the slot was freed.
    await vi.waitFor(() => {
      expect(ends.filter((m) => m.includes('end')).length).toBeGreaterThanOrEqual(2);
    }, { timeout: 8000, interval: 50 });
    expect(ends.some((m) => m.includes('429'))).toBe(false);
    // Still serving the config it had across the reconnects.
    expect(client.evaluate('async-reports', 'user-1').errorCode).toBeUndefined();
    expect(client.revision).toBe(live.cache.revision);

    await live.patch('async-reports', { percentage: 100 });
    await vi.waitFor(() => {
      expect(client?.revision).toBe(live?.cache.revision);
    }, { timeout: 5000, interval: 50 });
    expect(client.isEnabled('async-reports', 'anyone')).toBe(true);
  });
});
