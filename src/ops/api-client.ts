// The HTTP side of the ops commands: one request helper with a timeout, and problem documents
// turned into messages a person can act on and exit codes a script can trust.
import { EXIT, exitCodeForStatus } from './exit-codes.js';
import type { ExitCode } from './exit-codes.js';

/** A failure the CLI reports as a message and an exit code. */
export class OpsError extends Error {
  override name = 'OpsError';
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    /** Extra lines printed under the message (field errors, hints). */
    readonly details: readonly string[] = [],
    /** The raw error body, printed as-is with --json. */
    readonly body?: unknown,
  ) {
    super(message);
  }
}

export interface ApiResponse {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ApiClientOptions {
  readonly baseUrl: string;
  readonly token: string | undefined;
  readonly timeoutMs: number;
  readonly fetch: typeof fetch;
}

/** A thin client of the Rampart HTTP API; throws OpsError for every non-2xx answer. */
export interface ApiClient {
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
}

interface FieldError {
  readonly path: string;
  readonly message: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function fieldErrors(body: Record<string, unknown>): FieldError[] {
  const errors = body.errors;
  if (!Array.isArray(errors)) return [];
  return errors.filter(isRecord).map((e) => ({ path: typeof e.path === 'string' ? e.path : '?', message: typeof e.message === 'string' ? e.message : JSON.stringify(e) }));
}

const HINT: Partial<Record<number, string>> = {
  401: 'check RAMPART_TOKEN: it must be one of the server\'s RAMPART_ADMIN_TOKENS',
  403: 'this token may not call the admin API (an SDK token?); use an admin token',
  412: 'the flag changed since it was read; re-read it (rampart flags get) and retry',
  409: 'the flag kept changing under this write; retry',
};

/** The OpsError for a non-2xx response, with the problem's detail and each field error. */
export function errorFromResponse(method: string, path: string, status: number, body: unknown): OpsError {
  const code = exitCodeForStatus(status);
  const problem = isRecord(body) ? body : {};
  const title = typeof problem.title === 'string' ? problem.title : `HTTP ${status}`;
  const detail = typeof problem.detail === 'string' ? problem.detail : typeof body === 'string' && body !== '' ? body.slice(0, 500) : undefined;
  const message = `${method} ${path} failed: ${status} ${title}${detail === undefined ? '' : `: ${detail}`}`;
  const details = fieldErrors(problem).map((e) => `  ${e.path}: ${e.message}`);
  const hint = HINT[status];
  if (hint !== undefined) details.push(`hint: ${hint}`);
  return new OpsError(code, message, details, body);
}

async function readBody(response: Response): Promise<unknown> {
  const text = await response.text();
  if (text === '') return undefined;
  const type = response.headers.get('content-type') ?? '';
  if (type.includes('json')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  }
  return text;
}

/**
 * Creates the client. Every request gives up after `timeoutMs`.
 *
 * @example
 * const api = createApiClient({ baseUrl: 'http://127.0.0.1:8080', token: undefined, timeoutMs: 10_000, fetch });
 * const { body } = await api.request('GET', '/flags');
 */
export function createApiClient(options: ApiClientOptions): ApiClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  return {
    async request(method, path, request = {}) {
      const headers: Record<string, string> = { accept: 'application/json, application/problem+json', ...request.headers };
      if (options.token !== undefined && options.token !== '') headers.authorization = `Bearer ${options.token}`;
      let payload: string | undefined;
      if (request.body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = JSON.stringify(request.body);
      }
      let response: Response;
      let body: unknown;
      try {
        response = await options.fetch(`${base}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }), signal: AbortSignal.timeout(options.timeoutMs) });
        body = await readBody(response);
      } catch (error) {
        const name = error instanceof Error ? error.name : '';
        if (name === 'TimeoutError' || name === 'AbortError') {
          throw new OpsError(EXIT.unavailable, `${method} ${path}: no answer from ${base} within ${options.timeoutMs / 1000} s`, ['hint: is the server up? raise the limit with --timeout <seconds>']);
        }
        const cause = error instanceof Error && error.cause instanceof Error ? error.cause.message : error instanceof Error ? error.message : String(error);
        throw new OpsError(EXIT.unavailable, `${method} ${path}: cannot reach ${base} (${cause})`, ['hint: check RAMPART_URL (or --url) and that `rampart serve` is running']);
      }
      if (response.status >= 400) throw errorFromResponse(method, path, response.status, body);
      return { status: response.status, headers: response.headers, body };
    },
  };
}
