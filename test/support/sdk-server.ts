// Helpers for SDK tests against a real, listening Rampart app (and a raw HTTP server for faults).
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildTestApp } from './app.js';
import type { TestApp, TestAppOptions } from './app.js';

export interface LiveApp extends TestApp {
  readonly url: string;
  /** PUT (create or replace) a flag through the admin API. */
  put(key: string, body: Record<string, unknown>): Promise<void>;
  /** PATCH a flag through the admin API. */
  patch(key: string, body: Record<string, unknown>): Promise<void>;
  remove(key: string): Promise<void>;
  /** The value of one sample of /metrics, 0 when absent. */
  metric(line: string): Promise<number>;
}

const ADMIN = { authorization: 'Bearer admin-secret' };

/** Admin calls to any Rampart server at `url` (admin token `admin-secret` when tokens are on). */
export function adminOf(url: string) {
  const send = async (method: string, key: string, body?: Record<string, unknown>): Promise<void> => {
    const res = await fetch(`${url}/flags/${key}`, body === undefined ? { method, headers: ADMIN } : { method, headers: { ...ADMIN, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status >= 300) throw new Error(`${method} /flags/${key}: ${res.status} ${await res.text()}`);
  };
  return {
    put: (key: string, body: Record<string, unknown>) => send('PUT', key, body),
    patch: (key: string, body: Record<string, unknown>) => send('PATCH', key, body),
    remove: (key: string) => send('DELETE', key),
    async metric(line: string): Promise<number> {
      const text = await (await fetch(`${url}/metrics`)).text();
      const found = text.split('\n').find((l) => l.startsWith(`${line} `));
      return found === undefined ? 0 : Number(found.slice(line.length + 1));
    },
  };
}

/** buildTestApp listening on 127.0.0.1 with an admin and an SDK token (`sdk-secret`). */
export async function startLiveApp(options: TestAppOptions = {}, port = 0): Promise<LiveApp> {
  const t = await buildTestApp({
    adminTokens: [{ name: 'ops', secret: 'admin-secret' }],
    sdkTokens: [{ name: 'app', secret: 'sdk-secret' }],
    ...options,
  });
  await t.app.listen({ host: '127.0.0.1', port });
  const url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  return { ...t, url, ...adminOf(url) };
}

export interface RawServer {
  readonly url: string;
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[];
  close(): Promise<void>;
}

/** A plain HTTP server whose handler the test writes: for faults a real Rampart never makes. */
export async function startRawServer(handler: (req: IncomingMessage, res: ServerResponse, body: string) => void): Promise<RawServer> {
  const requests: RawServer['requests'] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    req.on('end', () => {
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
