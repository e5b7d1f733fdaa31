// The scene both Redis fault tests break: `rampart serve` on a given Redis with its flags created,
// two SDK clients ready and one raw event stream open.
import { expect } from 'vitest';
import { createClient } from '@rampart/sdk';
import type { RampartClient } from '@rampart/sdk';
import { send, succeeded, within } from './fault-load.js';
import { startServerProcess } from './server-process.js';
import type { ServerProcess } from './server-process.js';
import { openSse } from './sse.js';
import type { SseConnection } from './sse.js';

export interface FaultScene {
  readonly server: ServerProcess;
  readonly clients: RampartClient[];
  readonly stream: SseConnection;
}

/**
 * Starts the server on `redisUrl` with flags `steady` (37.5%), `probe` (0%), `sharedKey` and
 * `writeKeys` (0%), then two streaming SDK clients and an SSE stream that has had its snapshot.
 */
export async function startFaultScene(options: {
  readonly redisUrl: string;
  readonly adminToken: string;
  readonly sdkToken: string;
  readonly sharedKey: string;
  readonly writeKeys: readonly string[];
}): Promise<FaultScene> {
  const server = await startServerProcess({ REDIS_URL: options.redisUrl, RAMPART_ADMIN_TOKENS: `ops:${options.adminToken}`, RAMPART_SDK_TOKENS: `app:${options.sdkToken}` });
  const flags: [string, Record<string, unknown>][] = [
    ['steady', { enabled: true, percentage: 37.5 }],
    ['probe', { enabled: true, percentage: 0 }],
    [options.sharedKey, { enabled: true, percentage: 0 }],
    ...options.writeKeys.map((key): [string, Record<string, unknown>] => [key, { enabled: true, percentage: 0 }]),
  ];
  for (const [key, body] of flags) {
    expect((await send(server.url, { method: 'PUT', path: `/flags/${key}`, body }, { token: options.adminToken, timeoutMs: 5000 })).status).toBe(201);
  }
  const clients = [createClient({ url: server.url, token: options.sdkToken }), createClient({ url: server.url, token: options.sdkToken })];
  await Promise.all(clients.map((c) => c.ready({ timeoutMs: 5000 })));
  const stream = await openSse(`${server.url}/sdk/v1/stream`, { authorization: `Bearer ${options.sdkToken}` });
  await stream.next((e) => e.event === 'snapshot');
  return { server, clients, stream };
}

/** Milliseconds from the moment Redis came back until each part of the scene had recovered. */
export interface Recovery {
  /** `/readyz` answered 200. */
  readonly readyMs: number;
  /** A PATCH of `probe` to 100% was accepted. */
  readonly writeMs: number;
  /** That change arrived on the raw event stream. */
  readonly streamMs: number;
  /** Both SDK clients enable `probe` for every one of `users`. */
  readonly sdkMs: number;
}

/**
 * Waits for the scene to recover once Redis is back (at `since`), all within `withinMs` of it:
 * ready, a write accepted, its change on the stream and in both SDK clients. Fails the test
 * otherwise.
 */
export async function awaitRecovery(scene: FaultScene, options: { readonly adminToken: string; readonly users: readonly string[]; readonly since: number; readonly withinMs: number; readonly requestTimeoutMs: number }): Promise<Recovery> {
  const { server, clients, stream } = scene;
  const { since, withinMs } = options;
  const left = (): number => Math.max(100, since + withinMs - Date.now());
  await within(withinMs, '/readyz answers 200', async () => (await send(server.url, { method: 'GET', path: '/readyz' }, { token: '', timeoutMs: 2000 })).status === 200);
  const readyMs = Date.now() - since;
  const fromIndex = stream.events.length;
  await within(withinMs, 'a write is accepted', async () =>
    succeeded(await send(server.url, { method: 'PATCH', path: '/flags/probe', body: { percentage: 100 } }, { token: options.adminToken, timeoutMs: options.requestTimeoutMs })),
  );
  const writeMs = Date.now() - since;
  await stream.next((e) => e.event === 'change' && /"probe":\{[^}]*"percentage":100\b/.test(e.data), left(), fromIndex);
  const streamMs = Date.now() - since;
  await within(left(), 'SDK clients see the change', () => clients.every((c) => options.users.every((u) => c.isEnabled('probe', u))));
  return { readyMs, writeMs, streamMs, sdkMs: Date.now() - since };
}
