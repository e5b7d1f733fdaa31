// I/O helpers the metric sources share: an overall deadline, a bounded fetch, strict number
// parsing and URL redaction. Every source answers with an Observation and never throws, so these
// helpers return results or plain messages and leave the wording of the Observation to the caller.
import type { Observation } from './metric-source.js';

/**
 * Largest response body a source reads; a metric answer is a few hundred bytes.
 *
 * @example
 * if (body.length > MAX_BODY_BYTES) return { kind: 'error', detail: 'response too large' };
 */
export const MAX_BODY_BYTES = 4 * 1024 * 1024;

/**
 * Resolves with `work`'s result, or with `onTimeout()` when `timeoutMs` passes first. The work
 * is not cancelled (each source has its own timeouts for that); this only bounds the wait.
 *
 * @example
 * const observation = await withDeadline(read(), 5000, () => ({ kind: 'error', detail: 'too slow' }));
 */
export async function withDeadline<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => {
      resolve(onTimeout());
    }, timeoutMs);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `observe` within `timeoutMs` and turns anything it throws into an `error` Observation,
 * so callers of a MetricSource can rely on "never throws, never waits longer than the timeout".
 *
 * @example
 * return guarded(() => readQueue(spec), 5000, `redis LLEN jobs`);
 */
export async function guarded(observe: () => Promise<Observation>, timeoutMs: number, what: string): Promise<Observation> {
  const work = (async (): Promise<Observation> => {
    try {
      return await observe();
    } catch (error) {
      return { kind: 'error', detail: `${what}: ${errorMessage(error)}` };
    }
  })();
  return withDeadline(work, timeoutMs, () => ({ kind: 'error', detail: `${what}: no answer within ${timeoutMs} ms` }));
}

/**
 * The most useful message of an error: Node's fetch says only "fetch failed" and keeps the
 * reason (ECONNREFUSED, a TLS problem...) in `cause`, so causes are appended.
 *
 * @example
 * errorMessage(new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:1') }));
 * // 'fetch failed: connect ECONNREFUSED 127.0.0.1:1'
 */
export function errorMessage(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current !== undefined && current !== null; depth++) {
    if (current instanceof Error) {
      const message = current.message;
      // A wrapper often repeats its cause's message; say it once.
      if (message !== '' && !parts.some((part) => part.includes(message))) parts.push(message);
      current = current.cause;
    } else {
      parts.push(typeof current === 'string' ? current : describeValue(current));
      break;
    }
  }
  return parts.length === 0 ? 'unknown error' : parts.join(': ');
}

function describeValue(value: unknown): string {
  try {
    // JSON.stringify answers undefined for functions and symbols, whatever its type says.
    const text = JSON.stringify(value) as string | undefined;
    return text ?? typeof value;
  } catch {
    return typeof value;
  }
}

// Decimal numbers only: Number() alone would also take '' (0), '0x1f' and 'Infinity'.
const DECIMAL = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses a decimal number from text (surrounding blanks allowed); undefined for anything else,
 * including the empty string, hex, `NaN` and infinities.
 *
 * @example
 * parseDecimal(' 0.25 '); // 0.25
 * parseDecimal('abc'); // undefined
 */
export function parseDecimal(text: string): number | undefined {
  const trimmed = text.trim();
  if (!DECIMAL.test(trimmed)) return undefined;
  const value = Number(trimmed);
  return Number.isFinite(value) ? value : undefined;
}

/**
 * A URL fit for a log line or an Observation detail: the password is replaced by `***`.
 *
 * @example
 * redactUrl('redis://:secret@cache:6379/0'); // 'redis://:***@cache:6379/0'
 */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(invalid URL)';
  }
}

/**
 * What `fetchText` got: a response (any status) or a message saying why there is none.
 *
 * @example
 * const result: FetchResult = { ok: false, detail: 'no answer within 5000 ms' };
 */
export type FetchResult =
  | { readonly ok: true; readonly status: number; readonly contentType: string; readonly body: string }
  | { readonly ok: false; readonly detail: string };

/**
 * Settings of one `fetchText` call.
 *
 * @example
 * const options: FetchTextOptions = { fetch, timeoutMs: 2000, headers: { authorization: 'Bearer t' } };
 */
export interface FetchTextOptions {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
  readonly headers?: Readonly<Record<string, string>> | undefined;
}

/**
 * GETs `url` and reads the whole body as text, aborting after `timeoutMs` (the signal also
 * covers the body, so a server that sends headers and then stalls is cut off too) and past
 * MAX_BODY_BYTES. Never throws.
 *
 * @example
 * const result = await fetchText('http://127.0.0.1:9090/-/ready', { fetch, timeoutMs: 1000 });
 * if (result.ok && result.status === 200) console.log(result.body);
 */
export async function fetchText(url: string, options: FetchTextOptions): Promise<FetchResult> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    const { target, authorization } = splitCredentials(url);
    const response = await options.fetch(target, {
      method: 'GET',
      headers: { accept: 'application/json', ...authorization, ...options.headers },
      signal,
      redirect: 'follow',
    });
    const body = await readBounded(response, MAX_BODY_BYTES);
    if (body === undefined) return { ok: false, detail: `response body is larger than ${MAX_BODY_BYTES} bytes` };
    return { ok: true, status: response.status, contentType: response.headers.get('content-type') ?? '', body };
  } catch (error) {
    if (signal.aborted) return { ok: false, detail: `no answer within ${options.timeoutMs} ms` };
    // Errors may quote the URL; the detail ends up in logs and notifications.
    return { ok: false, detail: errorMessage(error).split(url).join(redactUrl(url)) };
  }
}

// fetch refuses URLs with credentials, but `http://user:pass@prometheus:9090` is how people write
// a Prometheus behind basic auth, so they become an Authorization header (the spec's own headers win).
function splitCredentials(url: string): { target: string; authorization: Record<string, string> } {
  const parsed = new URL(url);
  if (parsed.username === '' && parsed.password === '') return { target: url, authorization: {} };
  const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = '';
  parsed.password = '';
  return { target: parsed.toString(), authorization: { authorization: `Basic ${Buffer.from(credentials).toString('base64')}` } };
}

async function readBounded(response: Response, limit: number): Promise<string | undefined> {
  const length = Number(response.headers.get('content-length') ?? '0');
  if (length > limit) {
    await response.body?.cancel();
    return undefined;
  }
  if (response.body === null) return '';
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * The start of a response body for an error detail: one line, at most `max` characters.
 *
 * @example
 * snippet('<html>\n<body>Bad gateway</body>'); // '<html> <body>Bad gateway</body>'
 */
export function snippet(body: string, max = 200): string {
  const flat = body.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
