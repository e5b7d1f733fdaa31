// HTTP load for the fault tests: a few request loops run against a live server while a test breaks
// its Redis, and every request is recorded with its timing and answer, so the test can judge each one.
import { setTimeout as setTimeoutPromise } from 'node:timers/promises';

/** One request as a client saw it. */
export interface Sample {
  /** The loop that sent it (or the label of a one-off request). */
  readonly name: string;
  readonly method: string;
  readonly path: string;
  /** The request body sent, if any. */
  readonly sent: unknown;
  /** Wall-clock times (ms epoch), comparable with the moments a test broke or repaired Redis. */
  readonly startedAt: number;
  readonly endedAt: number;
  /** undefined when no answer came: the client timed out or the connection failed. */
  readonly status: number | undefined;
  readonly contentType: string;
  /** The parsed JSON body, else the text. */
  readonly body: unknown;
  readonly error?: string;
}

/** What one request of a loop sends. */
export interface RequestSpec {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
}

/** A request loop: `next(i)` gives its i-th request; one request at a time, `pauseMs` apart. */
export interface LoadLoop {
  readonly name: string;
  readonly token: string;
  readonly pauseMs: number;
  next(i: number): RequestSpec;
}

/** A running load: every sample so far, and how to end it. */
export interface Load {
  readonly samples: readonly Sample[];
  /** Ends every loop after its current request and resolves once none is in flight. */
  stop(): Promise<void>;
}

/** Milliseconds a sample took. */
export function durationOf(sample: Sample): number {
  return sample.endedAt - sample.startedAt;
}

/** Whether a sample got a 2xx. */
export function succeeded(sample: Sample): boolean {
  return sample.status !== undefined && sample.status >= 200 && sample.status < 300;
}

/**
 * Sends one request with a client-side timeout and records it; never throws.
 *
 * @example
 * const s = await send(server.url, { method: 'GET', path: '/readyz' }, { token: '', timeoutMs: 3000, name: 'readyz' });
 */
export async function send(baseUrl: string, spec: RequestSpec, options: { readonly token: string; readonly timeoutMs: number; readonly name?: string }): Promise<Sample> {
  const headers: Record<string, string> = {};
  if (options.token !== '') headers.authorization = `Bearer ${options.token}`;
  if (spec.body !== undefined) headers['content-type'] = 'application/json';
  const startedAt = Date.now();
  const base = { name: options.name ?? `${spec.method} ${spec.path}`, method: spec.method, path: spec.path, sent: spec.body, startedAt };
  try {
    const res = await fetch(`${baseUrl}${spec.path}`, {
      method: spec.method,
      headers,
      ...(spec.body === undefined ? {} : { body: JSON.stringify(spec.body) }),
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    const text = await res.text();
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { ...base, endedAt: Date.now(), status: res.status, contentType: res.headers.get('content-type') ?? '', body };
  } catch (error) {
    return { ...base, endedAt: Date.now(), status: undefined, contentType: '', body: undefined, error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

/**
 * Starts the loops; each sends at most `maxRequests` requests, so a forgotten load still ends.
 *
 * @example
 * const load = startLoad(server.url, [{ name: 'read', token: SDK, pauseMs: 5, next: () => ({ method: 'GET', path: '/sdk/v1/flags' }) }], { timeoutMs: 5000 });
 * await load.stop();
 */
export function startLoad(baseUrl: string, loops: readonly LoadLoop[], options: { readonly timeoutMs: number; readonly maxRequests?: number }): Load {
  const samples: Sample[] = [];
  const maxRequests = options.maxRequests ?? 20_000;
  let stopping = false;
  const running = loops.map(async (loop) => {
    for (let i = 0; i < maxRequests && !stopping; i++) {
      samples.push(await send(baseUrl, loop.next(i), { token: loop.token, timeoutMs: options.timeoutMs, name: loop.name }));
      if (loop.pauseMs > 0) await new Promise((r) => setTimeout(r, loop.pauseMs));
    }
  });
  return {
    samples,
    async stop() {
      stopping = true;
      await Promise.all(running);
    },
  };
}

/** The read loops both Redis fault tests run: the SDK snapshot, OFREP single on `steady`, OFREP bulk. */
export function readLoops(sdkToken: string, users: readonly string[]): LoadLoop[] {
  const context = (i: number) => ({ context: { targetingKey: users[i % users.length] } });
  return [
    { name: 'read sdk', token: sdkToken, pauseMs: 5, next: () => ({ method: 'GET', path: '/sdk/v1/flags' }) },
    { name: 'read ofrep', token: sdkToken, pauseMs: 5, next: (i) => ({ method: 'POST', path: '/ofrep/v1/evaluate/flags/steady', body: context(i) }) },
    { name: 'read ofrep bulk', token: sdkToken, pauseMs: 10, next: (i) => ({ method: 'POST', path: '/ofrep/v1/evaluate/flags', body: context(i) }) },
  ];
}

export const isWrite = (s: Sample): boolean => s.method === 'PUT' || s.method === 'PATCH';

/** A 503 `store-unavailable` problem document: how a write is refused while Redis is away. */
export const isProblem503 = (s: Sample): boolean =>
  s.status === 503 && s.contentType.startsWith('application/problem+json') && (s.body as { type?: string }).type === 'https://rampart.dev/problems/store-unavailable';

/** Waits `ms` milliseconds: Node's own promise timer. */
export const sleep = (ms: number): Promise<void> => setTimeoutPromise(ms);

/** Polls `probe` every 100 ms until it holds; resolves with the ms it took, rejects after `timeoutMs`. */
export async function within(timeoutMs: number, what: string, probe: () => Promise<boolean> | boolean): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await probe()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(100);
  }
}
