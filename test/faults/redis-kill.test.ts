// Fault suite: Redis is SIGKILLed under read and write load and restarted on the same port and
// folder (AOF, appendfsync always). `rampart serve` runs as a real child process; nothing here
// imitates Redis or the server.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RampartClient } from '@rampart/sdk';
import { ackedWrites, lostWrites, refusedButApplied } from '../support/fault-acked.js';
import { durationOf, isProblem503, isWrite, readLoops, send, sleep, startLoad, succeeded, within } from '../support/fault-load.js';
import type { Load, LoadLoop, Sample } from '../support/fault-load.js';
import { startRedisServer } from '../support/redis-server.js';
import type { RedisServer } from '../support/redis-server.js';
import { awaitRecovery, startFaultScene } from '../support/fault-scene.js';
import type { ServerProcess } from '../support/server-process.js';
import type { SseConnection } from '../support/sse.js';

const ADMIN = 'kill-admin-secret';
const SDK = 'kill-sdk-secret';
const USERS = Array.from({ length: 20 }, (_, i) => `user-${i}`);
const WRITE_KEYS = ['kill-0', 'kill-1', 'kill-2'];
/** The brief's promise: back to normal within 5 s of Redis coming back. */
const RECOVERY_MS = 5000;
/** Client-side timeout of every load request; an answer must come well before it. */
const REQUEST_TIMEOUT_MS = 5000;


function writeLoops(): LoadLoop[] {
  // Every write to an own flag sends a percentage no other write sends: each acknowledged PATCH
  // is a new version, and a refused write can be recognised in the history if it was applied.
  const own = WRITE_KEYS.map((key): LoadLoop => ({
    name: `write ${key}`,
    token: ADMIN,
    pauseMs: 20,
    next: (i) => ({ method: 'PATCH', path: `/flags/${key}`, body: { percentage: ((i % 99_999) + 1) / 1000 } }),
  }));
  // Two writers on one flag: the per-flag queue and compare-and-set retries are in play too.
  const shared = [0, 1].map((n): LoadLoop => ({
    name: `write kill-shared #${n}`,
    token: ADMIN,
    pauseMs: 20,
    next: (i) => ({ method: 'PUT', path: '/flags/kill-shared', body: { enabled: true, percentage: n * 50 + (i % 500) / 10 } }),
  }));
  return [...own, ...shared];
}


describe('rampart serve when its Redis is SIGKILLed under load and restarted', () => {
  let redis: RedisServer;
  let server: ServerProcess | undefined;
  let clients: RampartClient[] = [];
  let stream: SseConnection | undefined;
  let load: Load | undefined;
  /** OFREP value of `steady` per user before the kill. */
  const baseline = new Map<string, boolean>();
  let killedAt = 0;
  let notReadySeenAt = 0;
  let restartedAt = 0;
  const admin = (method: string, path: string, body?: unknown): Promise<Sample> =>
    send(server!.url, { method, path, body }, { token: ADMIN, timeoutMs: REQUEST_TIMEOUT_MS });

  beforeAll(async () => {
    redis = await startRedisServer(['--appendonly', 'yes', '--appendfsync', 'always']);
    ({ server, clients, stream } = await startFaultScene({ redisUrl: redis.url, adminToken: ADMIN, sdkToken: SDK, sharedKey: 'kill-shared', writeKeys: WRITE_KEYS }));
    for (const user of USERS) {
      const res = await send(server.url, { method: 'POST', path: '/ofrep/v1/evaluate/flags/steady', body: { context: { targetingKey: user } } }, { token: SDK, timeoutMs: 5000 });
      baseline.set(user, (res.body as { value: boolean }).value);
    }
    // Both outcomes present, so "unchanged" below could fail.
    expect(new Set(baseline.values()).size).toBe(2);
  }, 40_000);

  afterAll(async () => {
    await load?.stop();
    stream?.close();
    await Promise.all(clients.map((c) => c.close()));
    await server?.stop();
    await redis.stop();
  });

  it('keeps serving reads and SDKs, reports not-ready and refuses writes with 503 while Redis is dead', async () => {
    load = startLoad(server!.url, [...readLoops(SDK, USERS), ...writeLoops()], { timeoutMs: REQUEST_TIMEOUT_MS });
    await sleep(1500);
    expect(ackedWrites(load.samples).length, 'writes were acknowledged before the kill').toBeGreaterThan(10);

    const exited = new Promise((resolve) => redis.process.once('exit', resolve));
    redis.process.kill('SIGKILL');
    killedAt = Date.now();
    await exited;

    let readyz: Sample | undefined;
    await within(3000, '/readyz turns non-2xx', async () => {
      readyz = await send(server!.url, { method: 'GET', path: '/readyz' }, { token: '', timeoutMs: 3000 });
      return readyz.status !== undefined && readyz.status >= 300;
    });
    notReadySeenAt = Date.now();
    expect(readyz?.status).toBe(503);
    const reasons = (readyz?.body as { reasons: string[] }).reasons.join('; ');
    expect(reasons).toMatch(/store unreachable/);
    expect(reasons).toMatch(/Redis/);

    const write = await admin('PATCH', '/flags/probe', { percentage: 50 });
    expect(write.status).toBe(503);
    expect(write.contentType).toMatch(/^application\/problem\+json/);
    expect(write.body).toMatchObject({ type: 'https://rampart.dev/problems/store-unavailable', status: 503 });

    // Stay down a while under load before checking what the clients saw.
    await sleep(Math.max(0, killedAt + 3000 - Date.now()));
    expect(server!.process.exitCode, server!.output()).toBeNull();
    expect((await send(server!.url, { method: 'GET', path: '/healthz' }, { token: '', timeoutMs: 2000 })).status).toBe(200);
    for (const client of clients) {
      for (const user of USERS) expect(client.isEnabled('steady', user), `SDK answer for ${user}`).toBe(baseline.get(user));
      expect(client.isEnabled('probe', 'user-1')).toBe(false);
    }
    const downWrites = load.samples.filter((s) => isWrite(s) && s.startedAt > notReadySeenAt);
    expect(downWrites.length, 'the write load kept going while Redis was dead').toBeGreaterThan(10);
    for (const s of downWrites) expect(isProblem503(s), `${s.name} while Redis was dead: ${s.status} ${JSON.stringify(s.body)}`).toBe(true);
  }, 20_000);

  it('recovers by itself within 5 s of Redis restarting on the same port and folder', async () => {
    restartedAt = Date.now();
    await redis.restart();
    const redisUpMs = Date.now() - restartedAt;
    const { readyMs, writeMs, streamMs, sdkMs } = await awaitRecovery({ server: server!, clients, stream: stream! }, { adminToken: ADMIN, users: USERS, since: restartedAt, withinMs: RECOVERY_MS, requestTimeoutMs: REQUEST_TIMEOUT_MS });
    console.info(`redis-kill: ms after the restart began: redis answers PING ${redisUpMs}, /readyz 200 ${readyMs}, write 2xx ${writeMs}, stream change ${streamMs}, both SDK clients updated ${sdkMs}`);
    expect(sdkMs).toBeLessThanOrEqual(RECOVERY_MS);
    // The SDK clients' other answers never moved.
    for (const client of clients) for (const user of USERS) expect(client.isEnabled('steady', user)).toBe(baseline.get(user));
  }, 20_000);

  it('answered every request, served every read, and lost no acknowledged write', async () => {
    await sleep(1000);
    await load!.stop();
    const samples = load!.samples;
    expect(server!.process.exitCode, server!.output()).toBeNull();

    const unanswered = samples.filter((s) => s.status === undefined);
    expect(unanswered.map((s) => `${s.name}: ${s.error ?? ''} after ${durationOf(s)} ms`)).toEqual([]);

    const reads = samples.filter((s) => !isWrite(s));
    expect(reads.filter((s) => s.startedAt > killedAt && s.endedAt < restartedAt).length, 'reads during the outage').toBeGreaterThan(50);
    // While Redis was dead the snapshot served was the last one, unchanged.
    const outageRevisions = reads.filter((s) => s.path === '/sdk/v1/flags' && s.startedAt > notReadySeenAt && s.endedAt < restartedAt).map((s) => (s.body as { revision?: number }).revision);
    expect(outageRevisions.length).toBeGreaterThan(10);
    expect(new Set(outageRevisions).size, 'revisions served while Redis was dead').toBe(1);
    for (const s of reads) {
      expect(s.status, `${s.name} at ${s.startedAt - killedAt} ms from the kill`).toBe(200);
      if (s.path === '/sdk/v1/flags') expect((s.body as { flags: Record<string, { percentage: number }> }).flags.steady?.percentage).toBe(37.5);
    }
    // Each OFREP answer equals the one before the kill for the same user.
    for (const s of reads.filter((r) => r.path === '/ofrep/v1/evaluate/flags/steady')) {
      const user = (s.sent as { context: { targetingKey: string } }).context.targetingKey;
      expect(s.body, `OFREP steady for ${user}`).toMatchObject({ key: 'steady', value: baseline.get(user) });
    }
    const writes = samples.filter(isWrite);
    for (const s of writes) expect(succeeded(s) || isProblem503(s), `${s.name}: ${s.status} ${JSON.stringify(s.body)}`).toBe(true);
    const acked = ackedWrites(samples);
    expect(acked.filter((w) => w.at > restartedAt).length, 'writes acknowledged after the restart').toBeGreaterThan(5);
    expect(await lostWrites(server!.url, ADMIN, acked)).toEqual([]);
    let late = 0;
    for (const key of WRITE_KEYS) late += (await refusedButApplied(server!.url, ADMIN, key, samples)).length;
    const inFlight = writes.filter((s) => s.startedAt <= killedAt && s.endedAt >= killedAt).length;
    console.info(`redis-kill: ${samples.length} requests, ${inFlight} writes in flight at the kill, ${acked.length} writes acknowledged (none lost), ${writes.filter(isProblem503).length} refused with 503 (${late} of them applied anyway); longest write ${Math.max(...writes.map(durationOf))} ms, longest read ${Math.max(...reads.map(durationOf))} ms`);
  }, 30_000);
});
