// Replica failover under load: three `rampart serve` replicas on one Redis behind a round-robin
// TCP proxy (the load balancer), SDK clients streaming through it, a writer changing flags all
// along, and the replicas carrying streams killed with SIGKILL one after the other. Every client
// must reconnect through the proxy, keep answering from its last good config during the gap, and
// end with every change: each state it held matches the server's state at that revision, its
// revisions only grow, and it ends at the server's last revision.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../support/fault-load.js';
import { createClient } from '@rampart/sdk';
import type { FlagConfig, FlagSnapshot, RampartClient } from '@rampart/sdk';
import { redisUrl, uniquePrefix, deleteKeys } from '../support/redis.js';
import { startServerProcess } from '../support/server-process.js';
import type { ServerProcess } from '../support/server-process.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import type { TcpProxy } from '../support/tcp-proxy.js';

const CLIENTS = 6;
const KEYS = ['fo-a', 'fo-b', 'fo-c'] as const;
/** Enabled at 100 % and never changed: any answer but `true` means the client lost its config. */
const SENTINEL = 'fo-sentinel';

interface HistoryEntry {
  revision: number;
  after: { enabled: boolean; percentage: number } | null;
}

/** What one client went through, recorded from its public surface. */
interface Watched {
  readonly client: RampartClient;
  /** Every state the client held, in order (from its storage hook, called after each applied frame or poll). */
  readonly states: { at: number; snapshot: FlagSnapshot }[];
  /** Revisions of `change` events, in order. */
  readonly changes: number[];
  /** When each stream request got its response, and the Last-Event-ID it sent. */
  readonly streams: { at: number; lastEventId: string | undefined }[];
  readonly errors: number[];
}

function watch(url: string): Watched {
  const states: Watched['states'] = [];
  const streams: Watched['streams'] = [];
  const errors: number[] = [];
  const changes: number[] = [];
  // The real platform fetch, only noting when stream requests are answered.
  const noting: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const target = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (target.endsWith('/sdk/v1/stream')) {
      const headers = (init?.headers ?? {}) as Record<string, string>;
      streams.push({ at: Date.now(), lastEventId: headers['last-event-id'] });
    }
    return res;
  };
  const client = createClient({
    url,
    timeoutMs: 2000,
    fetch: noting,
    storage: {
      load: async () => undefined,
      save: async (json) => {
        states.push({ at: Date.now(), snapshot: JSON.parse(json) as FlagSnapshot });
      },
    },
  });
  client.on('change', ({ revision }) => changes.push(revision));
  client.on('error', () => errors.push(Date.now()));
  return { client, states, changes, streams, errors };
}

describe('SDK clients through a load balancer while replicas are killed (SIGKILL)', () => {
  let replicas: ServerProcess[] = [];
  let proxy: TcpProxy | undefined;
  const watched: Watched[] = [];
  let sampler: NodeJS.Timeout | undefined;
  const prefix = uniquePrefix('replica-failover');

  beforeAll(async () => {
    const env = { REDIS_URL: redisUrl(), RAMPART_REDIS_PREFIX: prefix, RAMPART_GUARD: 'off' };
    replicas = await Promise.all([startServerProcess(env, 30_000), startServerProcess(env, 30_000), startServerProcess(env, 30_000)]);
    proxy = await startTcpProxy(replicas.map((r) => Number(new URL(r.url).port)));
  }, 45_000);

  afterAll(async () => {
    clearInterval(sampler);
    await Promise.all(watched.map((w) => w.client.close()));
    await proxy?.close();
    await Promise.all(replicas.map((r) => r.stop('SIGKILL')));
    await deleteKeys(redisUrl(), prefix);
  });

  it('reconnects every client to a live replica, keeps serving in the gap and ends with every change in order', async () => {
    const lb = proxy!;
    // The writer talks to one replica directly; the other two carry streams and are killed.
    const writer = replicas[0]!;
    const doomed = [replicas[1]!, replicas[2]!];
    const write = async (method: string, key: string, body: unknown): Promise<void> => {
      const res = await fetch(`${writer.url}/flags/${key}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(3000) });
      expect(res.status, await res.text()).toBeLessThan(300);
    };
    await write('PUT', SENTINEL, { enabled: true, percentage: 100 });
    for (const key of KEYS) await write('PUT', key, { enabled: true, percentage: 0 });

    for (let i = 0; i < CLIENTS; i++) watched.push(watch(lb.url));
    await Promise.all(watched.map((w) => w.client.ready({ timeoutMs: 10_000 })));
    // Round robin: every replica carries streams, the doomed ones included.
    await expect.poll(() => lb.backends.map((b) => b.open.size), { timeout: 5000 }).toEqual([2, 2, 2]);

    // The clients answer all along: the sentinel is on for everyone, the changing flags are known.
    let samples = 0;
    const sampledAt: number[] = [];
    const wrong: string[] = [];
    sampler = setInterval(() => {
      samples++;
      sampledAt.push(Date.now());
      for (const [i, w] of watched.entries()) {
        if (!w.client.isEnabled(SENTINEL, `user-${samples}`, false)) wrong.push(`client ${i}: sentinel off at sample ${samples}`);
        for (const key of KEYS) {
          const { errorCode } = w.client.evaluate(key, `user-${samples}`);
          if (errorCode !== undefined) wrong.push(`client ${i}: ${key} ${errorCode} at sample ${samples}`);
        }
        if (w.client.status === 'error') wrong.push(`client ${i}: status error at sample ${samples}`);
      }
    }, 5);

    // Writes all along: each flag's percentage moves on every write to it, so every revision differs.
    const stopWriting = new AbortController();
    let writes = 0;
    const writes$ = (async () => {
      while (!stopWriting.signal.aborted) {
        const key = KEYS[writes % KEYS.length]!;
        await write('PATCH', key, { percentage: (Math.floor(writes / KEYS.length) % 99) + 1 });
        writes++;
        await sleep(15);
      }
    })();

    const kills: { at: number; backend: number; carried: number }[] = [];
    try {
      for (const victim of doomed) {
        await sleep(1200);
        const index = replicas.indexOf(victim);
        const carried = lb.backends[index]!.open.size;
        expect(carried, 'the replica to kill carries streams').toBeGreaterThan(0);
        await victim.stop('SIGKILL');
        kills.push({ at: Date.now(), backend: index, carried });
        // Its streams are gone at once (the kernel closes a killed process's sockets).
        await expect.poll(() => lb.backends[index]!.open.size, { timeout: 2000 }).toBe(0);
        // Every client reconnects through the proxy; only the live replicas carry streams.
        await expect.poll(() => lb.backends.reduce((n, b) => n + b.open.size, 0), { timeout: 8000 }).toBe(CLIENTS);
      }
      await sleep(800);
    } finally {
      stopWriting.abort();
      await writes$;
    }
    expect(writes).toBeGreaterThan(50);
    // Everything ends on the survivor.
    expect(lb.backends.map((b) => b.open.size)).toEqual([CLIENTS, 0, 0]);

    // The server's final state, and its state at every revision, from each flag's audit history.
    const final = (await (await fetch(`${writer.url}/sdk/v1/flags`)).json()) as FlagSnapshot;
    await expect.poll(() => watched.map((w) => w.client.revision), { timeout: 10_000 }).toEqual(watched.map(() => final.revision));
    clearInterval(sampler);

    const histories = new Map<string, HistoryEntry[]>();
    for (const key of KEYS) {
      const entries: HistoryEntry[] = [];
      let before = '';
      for (;;) {
        const page = (await (await fetch(`${writer.url}/flags/${key}/history?limit=200${before}`)).json()) as { entries: (HistoryEntry & { id: string })[]; next?: string };
        entries.push(...page.entries);
        if (page.next === undefined || page.entries.length === 0) break;
        before = `&before=${encodeURIComponent(page.next)}`;
      }
      histories.set(key, entries.sort((a, b) => a.revision - b.revision));
    }
    expect(histories.get(KEYS[0])!.length).toBeGreaterThan(writes / KEYS.length);
    const stateAt = (revision: number): Record<string, { enabled: boolean; percentage: number } | undefined> => {
      const state: Record<string, { enabled: boolean; percentage: number } | undefined> = {};
      for (const key of KEYS) {
        const last = histories.get(key)!.filter((e) => e.revision <= revision).at(-1);
        state[key] = last === undefined || last.after === null ? undefined : { enabled: last.after.enabled, percentage: last.after.percentage };
      }
      return state;
    };
    const viewOf = (flags: Readonly<Record<string, FlagConfig>>): Record<string, { enabled: boolean; percentage: number } | undefined> =>
      Object.fromEntries(KEYS.map((key) => [key, flags[key] === undefined ? undefined : { enabled: flags[key].enabled, percentage: flags[key].percentage }]));

    for (const [i, w] of watched.entries()) {
      // The final config equals the server's.
      const last = w.states.at(-1)!.snapshot;
      expect(last.revision, `client ${i}`).toBe(final.revision);
      expect(last.flags, `client ${i}`).toEqual(final.flags);
      // Revisions only grow, and every state held is exactly the server's state at that revision:
      // a catch-up after a reconnect may fold several changes into one, but never loses one.
      const revisions = w.states.map((s) => s.snapshot.revision);
      for (let n = 1; n < revisions.length; n++) expect(revisions[n], `client ${i} revisions ${revisions.join(',')}`).toBeGreaterThanOrEqual(revisions[n - 1]!);
      for (let n = 1; n < w.changes.length; n++) expect(w.changes[n], `client ${i} change revisions`).toBeGreaterThan(w.changes[n - 1]!);
      expect(w.changes.at(-1)).toBe(final.revision);
      for (const { snapshot } of w.states) expect(viewOf(snapshot.flags), `client ${i} at revision ${snapshot.revision}`).toEqual(stateAt(snapshot.revision));
      // Every reconnect resumed from the revision the client held.
      for (const stream of w.streams.slice(1)) expect(stream.lastEventId, `client ${i}`).toMatch(/^\d+$/);
    }

    // Clients that lost a stream in a kill: how long until their next stream was answered.
    const gaps: number[] = [];
    for (const kill of kills) {
      const hit = watched.filter((w) => w.errors.some((t) => t >= kill.at - 50 && t <= kill.at + 1500));
      expect(hit.length, `clients whose stream was on backend ${kill.backend}`).toBe(kill.carried);
      for (const w of hit) {
        const reopened = w.streams.find((s) => s.at > kill.at);
        expect(reopened).toBeDefined();
        gaps.push(reopened!.at - kill.at);
        // The gap was sampled (so "kept serving" above is not vacuous).
        expect(sampledAt.filter((t) => t > kill.at && t < reopened!.at).length).toBeGreaterThan(20);
      }
    }
    // Only the clients of a killed replica reconnected; the others kept their first stream.
    expect(watched.reduce((sum, w) => sum + w.streams.length, 0)).toBe(CLIENTS + kills.reduce((sum, k) => sum + k.carried, 0));
    console.log(`replica failover: ${writes} writes, final revision ${final.revision}, kills carried ${kills.map((k) => k.carried).join('+')} streams, reconnect gaps ${gaps.join(', ')} ms, ${samples} samples of every client`);
    // The SDK's first reconnect waits the server's retry (1 s) ±20 % jitter.
    expect(Math.max(...gaps)).toBeLessThan(3000);
    expect(samples).toBeGreaterThan(100);
    expect(wrong.slice(0, 10)).toEqual([]);
  }, 60_000);
});
