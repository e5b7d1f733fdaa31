// The durability check of the fault tests: every write a client saw acknowledged must be in the
// store afterwards, found through the public API (GET /flags/:key and the audit history).
import { succeeded } from './fault-load.js';
import type { Sample } from './fault-load.js';

/** A write the server acknowledged: the flag state its 2xx answer reported. */
export interface AckedWrite {
  readonly key: string;
  readonly version: number;
  readonly percentage: number;
  readonly at: number;
}

interface FlagState {
  readonly key: string;
  readonly version: number;
  readonly percentage: number;
}

function isFlagState(body: unknown): body is FlagState {
  if (typeof body !== 'object' || body === null) return false;
  const b = body as Record<string, unknown>;
  return typeof b.key === 'string' && typeof b.version === 'number' && typeof b.percentage === 'number';
}

const isWrite = (s: Sample): boolean => s.method === 'PUT' || s.method === 'PATCH';

/**
 * The acknowledged PUT and PATCH writes among `samples`, in the order they were answered.
 *
 * @example
 * const acked = ackedWrites(load.samples); // [{ key: 'kill-0', version: 7, percentage: 3.5, at }]
 */
export function ackedWrites(samples: readonly Sample[]): AckedWrite[] {
  return samples
    .filter((s) => isWrite(s) && succeeded(s) && isFlagState(s.body))
    .map((s) => {
      const body = s.body as FlagState;
      return { key: body.key, version: body.version, percentage: body.percentage, at: s.endedAt };
    })
    .sort((a, b) => a.at - b.at);
}

async function getJson<T>(url: string, token: string): Promise<T> {
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  if (res.status !== 200) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as T;
}

interface HistoryPage {
  readonly entries: readonly { readonly after: FlagState | null }[];
  readonly next?: string;
}

/** Every state a flag's audit history records it was written to, newest first. */
async function writtenStates(baseUrl: string, token: string, key: string): Promise<FlagState[]> {
  const states: FlagState[] = [];
  let before: string | undefined;
  for (let page = 0; page < 100; page++) {
    const query = before === undefined ? '' : `&before=${encodeURIComponent(before)}`;
    const { entries, next } = await getJson<HistoryPage>(`${baseUrl}/flags/${key}/history?limit=200${query}`, token);
    for (const entry of entries) if (entry.after !== null) states.push(entry.after);
    if (next === undefined) break;
    before = next;
  }
  return states;
}

/**
 * The acknowledged writes the server no longer knows: absent from the flag's audit history, or
 * newer than the flag's current version. An empty list means nothing acknowledged was lost.
 *
 * @example
 * expect(await lostWrites(server.url, ADMIN, ackedWrites(load.samples))).toEqual([]);
 */
export async function lostWrites(baseUrl: string, adminToken: string, acked: readonly AckedWrite[]): Promise<AckedWrite[]> {
  const lost: AckedWrite[] = [];
  for (const key of new Set(acked.map((w) => w.key))) {
    const current = await getJson<FlagState>(`${baseUrl}/flags/${key}`, adminToken);
    const recorded = new Set((await writtenStates(baseUrl, adminToken, key)).map((s) => `${s.version}:${s.percentage}`));
    for (const write of acked) {
      if (write.key === key && (!recorded.has(`${write.version}:${write.percentage}`) || current.version < write.version)) lost.push(write);
    }
  }
  return lost;
}

/**
 * The refused (non-2xx) or unanswered PATCH writes to `key` whose percentage the history shows
 * anyway: the server gave up waiting for Redis, which ran the write later. Only meaningful when
 * every write to `key` sends a percentage no other write sends.
 *
 * @example
 * const late = await refusedButApplied(server.url, ADMIN, 'freeze-0', load.samples);
 */
export async function refusedButApplied(baseUrl: string, adminToken: string, key: string, samples: readonly Sample[]): Promise<Sample[]> {
  const written = new Set((await writtenStates(baseUrl, adminToken, key)).map((s) => s.percentage));
  return samples.filter((s) => {
    const sent = s.sent as { percentage?: unknown } | undefined;
    return s.method === 'PATCH' && s.path === `/flags/${key}` && !succeeded(s) && typeof sent?.percentage === 'number' && written.has(sent.percentage);
  });
}
