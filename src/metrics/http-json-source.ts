// Reads one number out of a JSON document some service publishes (a stats or health endpoint).
import type { SourceSpec } from '../core/rollout/plan.js';
import { fetchText, guarded, parseDecimal, redactUrl, snippet } from './http.js';
import type { MetricSource, Observation } from './metric-source.js';

type HttpSpec = Extract<SourceSpec, { type: 'http' }>;

/**
 * Settings of createHttpJsonSource.
 *
 * @example
 * const options: HttpJsonSourceOptions = { timeoutMs: 2000 };
 */
export interface HttpJsonSourceOptions {
  /** Longest wait for one response, body included; default 5000 ms. */
  readonly timeoutMs?: number | undefined;
  /** The fetch to use (e.g. one with a proxy agent); default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
}

/**
 * The reference tokens of a path: a JSON Pointer (RFC 6901) when it is empty or starts with
 * `/` (`/queues/0/depth`, with `~1` for `/` and `~0` for `~`), otherwise a dotted path
 * (`queues.0.depth`), which is shorter to write but cannot name keys that contain a dot.
 * Undefined for a pointer with a bad `~` escape.
 *
 * @example
 * pathTokens('/a~1b/0'); // ['a/b', '0']
 * pathTokens('stats.errorRate'); // ['stats', 'errorRate']
 */
export function pathTokens(path: string): string[] | undefined {
  if (path === '') return [];
  if (path.startsWith('/')) {
    const tokens = path.slice(1).split('/');
    if (tokens.some((token) => /~(?![01])/.test(token))) return undefined;
    // Order matters: '~01' is the token '~1', not '/'.
    return tokens.map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
  }
  return path.split('.');
}

/** What a path finds in a document: the value, or the token at which it went missing. */
type Lookup = { readonly found: true; readonly value: unknown } | { readonly found: false; readonly at: string };

function lookup(document: unknown, tokens: readonly string[]): Lookup {
  let current: unknown = document;
  for (const token of tokens) {
    if (Array.isArray(current)) {
      // RFC 6901 array indexes: decimal, no leading zeros; '-' (past the end) never exists.
      if (!/^(?:0|[1-9]\d*)$/.test(token)) return { found: false, at: token };
      const items: readonly unknown[] = current;
      const index = Number(token);
      if (index >= items.length) return { found: false, at: token };
      current = items[index];
    } else if (typeof current === 'object' && current !== null && Object.hasOwn(current, token)) {
      current = (current as Record<string, unknown>)[token];
    } else {
      return { found: false, at: token };
    }
  }
  return { found: true, value: current };
}

/**
 * A MetricSource for `{ type: 'http' }` specs: GET the URL, parse the body as JSON, and read the
 * number at `path` (see pathTokens). A number or a decimal string is a `value`; a missing path or
 * `null` is `empty`; any other type, a non-2xx status, a body that is not JSON, or a timeout is an
 * `error`.
 *
 * @example
 * const source = createHttpJsonSource({ timeoutMs: 2000 });
 * await source.observe({ type: 'http', url: 'http://payments/stats', path: '/errorRate' }, 'checkout', new Date());
 * // { kind: 'value', value: 0.004 }
 */
export function createHttpJsonSource(options: HttpJsonSourceOptions = {}): MetricSource {
  const timeoutMs = options.timeoutMs ?? 5000;
  const fetchFn = options.fetch ?? fetch;

  async function read(spec: HttpSpec): Promise<Observation> {
    const where = `http ${redactUrl(spec.url)}`;
    const tokens = pathTokens(spec.path);
    if (tokens === undefined) return { kind: 'error', detail: `path '${spec.path}' is not a valid JSON Pointer (a '~' must be followed by 0 or 1)` };
    if (!isHttpUrl(spec.url)) return { kind: 'error', detail: `${where}: not a valid http(s) URL` };

    const result = await fetchText(spec.url, { fetch: fetchFn, timeoutMs, headers: spec.headers });
    if (!result.ok) return { kind: 'error', detail: `${where}: ${result.detail}` };
    if (result.status < 200 || result.status > 299) {
      return { kind: 'error', detail: `${where} answered HTTP ${result.status}: ${snippet(result.body)}` };
    }
    let document: unknown;
    try {
      document = JSON.parse(result.body);
    } catch {
      const type = result.contentType === '' ? 'no content type' : result.contentType;
      return { kind: 'error', detail: `${where} answered with a body that is not JSON (${type}): ${snippet(result.body)}` };
    }

    const found = lookup(document, tokens);
    if (!found.found) return { kind: 'empty', detail: `${where}: nothing at '${spec.path}' (no '${found.at}')` };
    const value = found.value;
    if (value === null) return { kind: 'empty', detail: `${where}: the value at '${spec.path}' is null` };
    if (typeof value === 'number') {
      // JSON has no NaN or Infinity, but JSON.parse reads 1e400 as Infinity.
      if (Number.isFinite(value)) return { kind: 'value', value };
      return { kind: 'error', detail: `${where}: the value at '${spec.path}' is out of range` };
    }
    if (typeof value === 'string') {
      const parsed = parseDecimal(value);
      if (parsed !== undefined) return { kind: 'value', value: parsed };
      return { kind: 'error', detail: `${where}: value '${snippet(value, 40)}' at '${spec.path}' is not a number` };
    }
    const type = Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`;
    return { kind: 'error', detail: `${where}: the value at '${spec.path}' is ${type}, not a number` };
  }

  return {
    async observe(spec: SourceSpec): Promise<Observation> {
      if (spec.type !== 'http') return { kind: 'error', detail: `the http source cannot read a '${spec.type}' source` };
      return guarded(() => read(spec), timeoutMs, `http ${redactUrl(spec.url)}`);
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}

function isHttpUrl(url: string): boolean {
  try {
    const { protocol } = new URL(url);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}
