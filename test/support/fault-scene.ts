// The scene both Redis fault tests break: `rampart serve` on a given Redis with its flags created,
// two SDK clients ready and one raw event stream open.
import { expect } from 'vitest';
import { createClient } from '@rampart/sdk';
import type { RampartClient } from '@rampart/sdk';
import { send } from './fault-load.js';
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
