// The page's view of the HTTP API: the same routes curl uses, with the admin token attached.

/** A flag as `GET /flags` lists it. */
export interface FlagView {
  readonly key: string;
  readonly description: string;
  readonly enabled: boolean;
  readonly percentage: number;
  readonly version: number;
  readonly updatedAt: string;
  readonly updatedBy: string;
}

/** One criterion sample as the guard recorded it. */
export interface SampleView {
  readonly criterion: string;
  readonly source?: string;
  readonly verdict: string;
  readonly value?: number;
  readonly samples?: number;
  readonly threshold: string;
  readonly detail: string;
  readonly at?: string;
}

/** `GET /flags/:key/rollout`, the parts the page shows. */
export interface RolloutView {
  readonly status: string;
  readonly stage: number;
  readonly percentage: number;
  readonly stageStartedAt?: string;
  readonly nextCheckAt?: string | null;
  readonly reason?: string;
  readonly criteria: readonly { readonly name: string; readonly passes: number; readonly consecutiveFails: number; readonly latest: SampleView | null }[];
  readonly plan: { readonly stages: readonly { readonly percentage: number; readonly hold?: string; readonly approval?: boolean }[] };
}

/** One entry of `GET /flags/:key/history`. */
export interface HistoryView {
  readonly at: string;
  readonly actor: string;
  readonly source: string;
  readonly action: string;
  readonly before: { readonly enabled: boolean; readonly percentage: number } | null;
  readonly after: { readonly enabled: boolean; readonly percentage: number } | null;
  readonly reason?: string;
}

/** One entry of `GET /flags/:key/rollout/decisions`. */
export interface DecisionView {
  readonly at: string;
  readonly actor: string;
  readonly stage: number;
  readonly status: string;
  readonly action: string;
  readonly reason: string;
  readonly samples: readonly SampleView[];
  readonly flag?: { readonly enabled?: boolean; readonly percentage?: number };
}

/** One cohort of `GET /flags/:key/outcomes`. */
export interface CohortView {
  readonly count: number;
  readonly successRate: number | null;
  readonly p95: number | null;
}

export interface OutcomesView {
  readonly windowMs: number;
  readonly cohorts: { readonly on: CohortView; readonly off: CohortView };
}

/** An API refusal: the RFC 9457 problem the server sent, or a stand-in for a network failure. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly title: string, readonly detail: string) {
    super(`${title}: ${detail}`);
    this.name = 'ApiError';
  }
}

const TOKEN_KEY = 'rampart.adminToken';

/** The admin token of this tab (session storage: gone when the tab closes). */
export const tokenStore = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string): void => {
    sessionStorage.setItem(TOKEN_KEY, token);
  },
  clear: (): void => {
    sessionStorage.removeItem(TOKEN_KEY);
  },
};

async function problemOf(res: Response): Promise<ApiError> {
  let title = res.statusText || `HTTP ${res.status}`;
  let detail = '';
  try {
    const body = (await res.json()) as { title?: unknown; detail?: unknown };
    if (typeof body.title === 'string') title = body.title;
    if (typeof body.detail === 'string') detail = body.detail;
  } catch {
    // Not a problem document (a proxy page, say): the status line is all there is.
  }
  return new ApiError(res.status, title, detail);
}

/**
 * Calls the API with the tab's admin token; resolves to the JSON body, rejects with ApiError.
 *
 * @example
 * const { flags } = await api<{ flags: FlagView[] }>('GET', '/flags');
 */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  const token = tokenStore.get();
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  } catch (error) {
    throw new ApiError(0, 'Network error', error instanceof Error ? error.message : String(error));
  }
  if (!res.ok) throw await problemOf(res);
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** `api()`, but a 404 is `undefined` (a flag without a rollout plan). */
export async function apiOptional<T>(path: string): Promise<T | undefined> {
  try {
    return await api<T>('GET', path);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return undefined;
    throw error;
  }
}

/** `/flags/<key>` with the key escaped. */
export const flagPath = (key: string, rest = ''): string => `/flags/${encodeURIComponent(key)}${rest}`;
