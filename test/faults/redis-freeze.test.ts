// Fault suite: Redis is frozen (SIGSTOP) for 10 s under load, then continued (SIGCONT). Unlike a
// kill, the TCP connections stay open and nothing answers, so only timeouts end each call.
// `rampart serve` runs as a real child process with its default 2 s Redis command timeout (there
// is no setting for it).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RampartClient } from '@rampart/sdk';
import { ackedWrites, lostWrites, refusedButApplied } from '../support/fault-acked.js';
import { durationOf, isProblem503, isWrite, readLoops, send, sleep, startLoad, succeeded, within } from '../support/fault-load.js';
import type { Load, LoadLoop, Sample } from '../support/fault-load.js';
import { sampleRss } from '../support/fault-rss.js';
import type { RssSampler } from '../support/fault-rss.js';
import { startRedisServer } from '../support/redis-server.js';
import type { RedisServer } from '../support/redis-server.js';
import { awaitRecovery, startFaultScene } from '../support/fault-scene.js';
import type { ServerProcess } from '../support/server-process.js';
import type { SseConnection } from '../support/sse.js';

const ADMIN = 'freeze-admin-secret';
const SDK = 'freeze-sdk-secret';
const USERS = Array.from({ length: 20 }, (_, i) => `user-${i}`);
const WRITE_KEYS = ['freeze-0', 'freeze-1', 'freeze-2'];
const FREEZE_MS = 10_000;
/** The server's Redis command timeout (RedisStoreOptions.commandTimeoutMs default, docs/api.md). */
const COMMAND_TIMEOUT_MS = 2000;
/** A write is one GET and one script call; only one of them can be the one that waits for the timeout. */
const WRITE_BOUND_MS = COMMAND_TIMEOUT_MS + 1500;
/** Reads never touch Redis; the bound only allows for a loaded machine. */
const READ_BOUND_MS = 1500;
/** Client-side timeout: far above the bounds, so a hang shows as a long sample, not an abort. */
const REQUEST_TIMEOUT_MS = 15_000;
const RECOVERY_MS = 5000;
const RSS_GROWTH_BOUND = 150 * 1024 * 1024;


function loops(): LoadLoop[] {
  // Every write to an own flag sends a percentage no other write sends, so a refused write can be
  // recognised in the history if it was applied after all.
  const own = WRITE_KEYS.map((key): LoadLoop => ({
    name: `write ${key}`,
    token: ADMIN,
    pauseMs: 20,
    next: (i) => ({ method: 'PATCH', path: `/flags/${key}`, body: { percentage: ((i % 99_999) + 1) / 1000 } }),
  }));
  // Three writers on one flag: its writes queue one behind the other inside the server.
  const shared = [0, 1, 2].map((n): LoadLoop => ({
    name: `write freeze-shared #${n}`,
    token: ADMIN,
    pauseMs: 20,
    next: (i) => ({ method: 'PUT', path: '/flags/freeze-shared', body: { enabled: true, percentage: n * 30 + (i % 300) / 10 } }),
  }));
  return [
    ...own,
    ...shared,
    ...readLoops(SDK, USERS),
  ];
}

describe('rampart serve when its Redis freezes (SIGSTOP) for 10 s under load', () => {
  let redis: RedisServer;
  let server: ServerProcess | undefined;
  let clients: RampartClient[] = [];
  let stream: SseConnection | undefined;
  let load: Load | undefined;
  let rss: RssSampler | undefined;
  const baseline = new Map<string, boolean>();
  let frozenAt = 0;
  let resumedAt = 0;
  /** Settles once Redis has been continued. */
  let resumed: Promise<void> = Promise.resolve();
  let rssAtFreeze = 0;
  let rssPeak = 0;
  const admin = (method: string, path: string, body?: unknown): Promise<Sample> =>
    send(server!.url, { method, path, body }, { token: ADMIN, timeoutMs: REQUEST_TIMEOUT_MS });

  beforeAll(async () => {
    redis = await startRedisServer();
    ({ server, clients, stream } = await startFaultScene({ redisUrl: redis.url, adminToken: ADMIN, sdkToken: SDK, sharedKey: 'freeze-shared', writeKeys: WRITE_KEYS }));
    for (const user of USERS) baseline.set(user, clients[0]!.isEnabled('steady', user));
    // Both outcomes present, so "unchanged" below could fail.
    expect(new Set(baseline.values()).size).toBe(2);
  }, 40_000);

  afterAll(async () => {
    redis.process.kill('SIGCONT');
    rss?.stop();
    await load?.stop();
    stream?.close();
    await Promise.all(clients.map((c) => c.close()));
    await server?.stop();
    await redis.stop();
  });

  it('while frozen: /readyz 503 within its ping timeout, reads and SDK answers unchanged, writes 503 problem+json, memory flat', async () => {
    load = startLoad(server!.url, loops(), { timeoutMs: REQUEST_TIMEOUT_MS });
    await sleep(1500);
    expect(ackedWrites(load.samples).length, 'writes were acknowledged before the freeze').toBeGreaterThan(10);

    rss = sampleRss(server!.process.pid!, 200);
    rssAtFreeze = rss.readings[0] ?? 0;
    redis.process.kill('SIGSTOP');
    frozenAt = Date.now();
    // Scheduled now, so Redis is continued on time even when an assertion below fails.
    resumed = sleep(FREEZE_MS).then(() => {
      rssPeak = Math.max(...(rss?.readings ?? [0]));
      redis.process.kill('SIGCONT');
      resumedAt = Date.now();
    });

    let readyz: Sample | undefined;
    await within(4000, '/readyz turns non-2xx', async () => {
      readyz = await send(server!.url, { method: 'GET', path: '/readyz' }, { token: '', timeoutMs: REQUEST_TIMEOUT_MS });
      return readyz.status !== undefined && readyz.status >= 300;
    });
    expect(readyz?.status).toBe(503);
    expect((readyz?.body as { reasons: string[] }).reasons.join('; ')).toMatch(/store unreachable: the flag store did not answer within 1000 ms/);
    expect(durationOf(readyz!), '/readyz waits at most its 1 s ping timeout').toBeLessThan(1000 + READ_BOUND_MS);

    const write = await admin('PATCH', '/flags/probe', { percentage: 50 });
    expect(write.status).toBe(503);
    expect(write.contentType).toMatch(/^application\/problem\+json/);
    expect(write.body).toMatchObject({ type: 'https://rampart.dev/problems/store-unavailable' });
    expect(durationOf(write)).toBeLessThan(WRITE_BOUND_MS);

    await sleep(Math.max(0, frozenAt + FREEZE_MS - 300 - Date.now()));
    for (const client of clients) {
      for (const user of USERS) expect(client.isEnabled('steady', user), `SDK answer for ${user}`).toBe(baseline.get(user));
      expect(client.isEnabled('probe', 'user-1')).toBe(false);
    }
    expect(server!.process.exitCode, server!.output()).toBeNull();
    await resumed;

    const during = load.samples.filter((s) => s.startedAt >= frozenAt + 200 && s.endedAt <= resumedAt);
    const duringWrites = during.filter(isWrite);
    expect(duringWrites.length, 'the write load kept going during the freeze').toBeGreaterThan(5);
    for (const s of duringWrites) expect(isProblem503(s), `${s.name} during the freeze: ${s.status} ${JSON.stringify(s.body)}`).toBe(true);
    expect(during.filter((s) => !isWrite(s)).length, 'reads during the freeze').toBeGreaterThan(50);
    expect(rssPeak - rssAtFreeze, `RSS grew from ${rssAtFreeze} to ${rssPeak} bytes`).toBeLessThan(RSS_GROWTH_BOUND);
  }, 30_000);

  it('recovers after SIGCONT: ready, writes accepted, streams and SDK clients get the next change', async () => {
    await resumed;
    const { readyMs, writeMs, streamMs, sdkMs } = await awaitRecovery({ server: server!, clients, stream: stream! }, { adminToken: ADMIN, users: USERS, since: resumedAt, withinMs: RECOVERY_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    console.info(`redis-freeze: ms after SIGCONT: /readyz 200 ${readyMs}, write 2xx ${writeMs}, stream change ${streamMs}, both SDK clients updated ${sdkMs}`);
    expect(sdkMs).toBeLessThanOrEqual(RECOVERY_MS);
    for (const client of clients) for (const user of USERS) expect(client.isEnabled('steady', user)).toBe(baseline.get(user));
  }, 20_000);

  it('served every read from the snapshot, refused writes only with 503, and lost no acknowledged write', async () => {
    await sleep(1000);
    await load!.stop();
    rss!.stop();
    const samples = load!.samples;
    expect(server!.process.exitCode, server!.output()).toBeNull();
    expect(samples.filter((s) => s.status === undefined).map((s) => `${s.name}: ${s.error ?? ''} after ${durationOf(s)} ms`)).toEqual([]);

    const reads = samples.filter((s) => !isWrite(s));
    const writes = samples.filter(isWrite);
    let late = 0;
    for (const key of WRITE_KEYS) late += (await refusedButApplied(server!.url, ADMIN, key, samples)).length;
    console.info(
      `redis-freeze: ${samples.length} requests; longest read ${Math.max(...reads.map(durationOf))} ms; ` +
        `longest write ${Math.max(...writes.filter((s) => !s.name.includes('shared')).map(durationOf))} ms to its own flag, ` +
        `${Math.max(...writes.filter((s) => s.name.includes('shared')).map(durationOf))} ms to the shared flag; ` +
        `${writes.filter(isProblem503).length} writes refused with 503, ${late} of them applied after SIGCONT; ` +
        `RSS ${(rssAtFreeze / 2 ** 20).toFixed(1)} MiB at the freeze, peak ${(rssPeak / 2 ** 20).toFixed(1)} MiB during it (+${((rssPeak - rssAtFreeze) / 2 ** 20).toFixed(1)} MiB)`,
    );
    for (const s of reads) {
      expect(s.status, `${s.name} at ${s.startedAt - frozenAt} ms from the freeze`).toBe(200);
      expect(durationOf(s), `${s.name} at ${s.startedAt - frozenAt} ms from the freeze`).toBeLessThan(READ_BOUND_MS);
      if (s.path === '/sdk/v1/flags') expect((s.body as { flags: Record<string, { percentage: number }> }).flags.steady?.percentage).toBe(37.5);
      if (s.path === '/ofrep/v1/evaluate/flags/steady') {
        const user = (s.sent as { context: { targetingKey: string } }).context.targetingKey;
        expect(s.body, `OFREP steady for ${user}`).toMatchObject({ key: 'steady', value: baseline.get(user) });
      }
    }
    for (const s of writes) expect(succeeded(s) || isProblem503(s), `${s.name}: ${s.status} ${JSON.stringify(s.body)}`).toBe(true);
    const acked = ackedWrites(samples);
    expect(acked.filter((w) => w.at > resumedAt).length, 'writes acknowledged after SIGCONT').toBeGreaterThan(5);
    expect(await lostWrites(server!.url, ADMIN, acked)).toEqual([]);
  }, 30_000);

  it('answered every write within the command timeout plus a margin, also writes queued behind others to the same flag', () => {
    const slow = load!.samples.filter((s) => isWrite(s) && durationOf(s) >= WRITE_BOUND_MS);
    // Each slow write with its answer and the write before it from the same loop, to tell what it queued behind.
    const before = (s: Sample): string => {
      const previous = load!.samples.filter((p) => p.name === s.name && p.endedAt <= s.startedAt).at(-1);
      return previous === undefined ? 'none' : `${previous.status ?? 'no answer'} ${previous.startedAt - frozenAt}..${previous.endedAt - frozenAt} ms`;
    };
    expect(slow.map((s) => `${s.name} took ${durationOf(s)} ms (started ${s.startedAt - frozenAt} ms after the freeze): ${s.status ?? 'no answer'} ${JSON.stringify(s.body)}; the write before it: ${before(s)}`)).toEqual([]);
  });
});
