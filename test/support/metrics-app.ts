// A tiny real HTTP app for metric-source tests: `/metrics` in the Prometheus text format (a gauge
// and a histogram the test drives) and any other path answering what the test scripted, including
// nothing at all. A real socket, so timeouts, status codes and bodies are the real thing.
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Registry } from '../../src/prometheus.js';
import type { Gauge, Histogram } from '../../src/prometheus.js';

/** Histogram buckets of `job_seconds`, in seconds. */
export const JOB_SECONDS_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;

/** What a scripted path answers. */
export interface ScriptedResponse {
  readonly status?: number;
  /** Sent as JSON (`application/json`). */
  readonly json?: unknown;
  /** Sent as is, with `contentType` (default `text/plain`). */
  readonly text?: string;
  readonly contentType?: string;
  /** Answer 401 unless every one of these request headers has exactly this value. */
  readonly requireHeaders?: Readonly<Record<string, string>>;
  /** Send the headers, then stall the body forever. */
  readonly stallBody?: boolean;
}

export interface MetricsApp {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** `host:port`, as a Prometheus scrape target. */
  readonly target: string;
  /** `queue_depth{queue}`: a gauge. */
  readonly queueDepth: Gauge;
  /** `job_seconds`: a histogram with JOB_SECONDS_BUCKETS. */
  readonly jobSeconds: Histogram;
  /** Makes `path` answer `response` from now on. */
  respond(path: string, response: ScriptedResponse): void;
  /** Makes `path` accept requests and never answer them. */
  hang(path: string): void;
  /** How many requests `path` has received. */
  hits(path: string): number;
  stop(): Promise<void>;
}

/** Starts the app on a free loopback port. */
export async function startMetricsApp(): Promise<MetricsApp> {
  const registry = new Registry();
  const queueDepth = registry.gauge('queue_depth', 'Jobs waiting, per queue.');
  const jobSeconds = registry.histogram('job_seconds', 'Job durations.', JOB_SECONDS_BUCKETS);
  const scripts = new Map<string, ScriptedResponse | 'hang'>();
  const counts = new Map<string, number>();

  function handle(request: IncomingMessage, response: ServerResponse): void {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    if (path === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(registry.render());
      return;
    }
    const script = scripts.get(path);
    if (script === 'hang') return;
    if (script === undefined) {
      response.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `no script for ${path}` }));
      return;
    }
    for (const [name, value] of Object.entries(script.requireHeaders ?? {})) {
      if (request.headers[name.toLowerCase()] !== value) {
        response.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: `missing header ${name}` }));
        return;
      }
    }
    const isJson = script.json !== undefined;
    const contentType = script.contentType ?? (isJson ? 'application/json' : 'text/plain');
    const body = isJson ? JSON.stringify(script.json) : (script.text ?? '');
    response.writeHead(script.status ?? 200, { 'content-type': contentType });
    if (script.stallBody === true) {
      response.write(body.slice(0, 1));
      return;
    }
    response.end(body);
  }

  const server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    target: `127.0.0.1:${port}`,
    queueDepth,
    jobSeconds,
    respond(path, response) {
      scripts.set(path, response);
    },
    hang(path) {
      scripts.set(path, 'hang');
    },
    hits(path) {
      return counts.get(path) ?? 0;
    },
    async stop() {
      // Hanging requests would keep close() waiting forever.
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => { resolve(); }));
    },
  };
}
