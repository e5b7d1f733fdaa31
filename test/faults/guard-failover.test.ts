// Guard failover: three `rampart serve` replicas (guard off) and two `rampart guard` workers on
// one Redis, a schedule-driven plan with seconds-long stages, and the guard holding the lease
// killed with SIGKILL mid-plan. The other guard must take the lease within its TTL (plus one
// interval to notice), the plan must complete, and the decision history and the flag's audit
// history must show every stage applied exactly once, in order, none skipped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sleep } from '../support/fault-load.js';
import { startGuardProcess } from '../support/guard-process.js';
import type { GuardProcess } from '../support/guard-process.js';
import { adminClient, deleteKeys, redisUrl, uniquePrefix } from '../support/redis.js';
import { startServerProcess } from '../support/server-process.js';
import type { ServerProcess } from '../support/server-process.js';

const INTERVAL_MS = 300;
const LEASE_TTL_MS = 1500;
const FLAG = 'guarded-ramp';
const STAGES = [10, 25, 50, 75, 100];

interface View {
  status: string;
  stage: number;
  percentage: number;
}
interface Decision {
  id: string;
  at: string;
  actor: string;
  action: string;
  stage: number;
  status: string;
  leaseToken?: number;
}
interface HistoryEntry {
  id: string;
  revision: number;
  source: string;
  actor: string;
  after: { enabled: boolean; percentage: number } | null;
}

describe('guard failover (three replicas, two guards, one Redis)', () => {
  let replicas: ServerProcess[] = [];
  let guards: GuardProcess[] = [];
  const prefix = uniquePrefix('guard-failover');
  const leaseKey = `${prefix}{rollouts}:lease`;
  const redis = adminClient(redisUrl());

  beforeAll(async () => {
    const env = {
      REDIS_URL: redisUrl(),
      RAMPART_REDIS_PREFIX: prefix,
      RAMPART_GUARD_INTERVAL: `${INTERVAL_MS}ms`,
      RAMPART_GUARD_LEASE_TTL: `${LEASE_TTL_MS}ms`,
      RAMPART_GUARD_SOURCE_TIMEOUT: '1s',
    };
    await redis.connect();
    [replicas, guards] = await Promise.all([
      Promise.all([0, 1, 2].map(() => startServerProcess({ ...env, RAMPART_GUARD: 'off' }, 30_000))),
      Promise.all([0, 1].map(() => startGuardProcess(env, 30_000))),
    ]);
  }, 45_000);

  afterAll(async () => {
    await Promise.all([...guards, ...replicas].map((p) => p.stop('SIGKILL')));
    await deleteKeys(redisUrl(), prefix);
    redis.disconnect();
  });

  /** Calls replica `n` (each request through another replica, as behind a load balancer). */
  const call = async (n: number, method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${replicas[n % replicas.length]!.url}${path}`, {
      method,
      signal: AbortSignal.timeout(3000),
      ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    });
  let n = 0;
  const view = async (): Promise<View> => (await call(n++, 'GET', `/flags/${FLAG}/rollout`)).json() as Promise<View>;
  const until = async (what: string, ok: (v: View) => boolean, timeoutMs: number): Promise<View> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = await view();
      if (ok(v)) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}\n${guards.map((g) => g.output().slice(-2000)).join('\n')}`);
      await sleep(50);
    }
  };
  /** Every page of a newest-first listing, oldest first. */
  const all = async <T extends { id: string }>(path: string): Promise<T[]> => {
    const entries: T[] = [];
    let before = '';
    for (;;) {
      const page = (await (await call(n++, 'GET', `${path}?limit=200${before}`)).json()) as { entries: T[]; next?: string };
      entries.push(...page.entries);
      if (page.next === undefined || page.entries.length === 0) return entries.reverse();
      before = `&before=${encodeURIComponent(page.next)}`;
    }
  };

  it('hands the lease to the other guard within the TTL and applies every stage exactly once, in order', async () => {
    expect((await call(0, 'PUT', `/flags/${FLAG}`, { enabled: false, percentage: 0 })).status).toBe(201);
    const plan = {
      stages: [...STAGES.slice(0, -1).map((percentage) => ({ percentage, hold: '1s' })), { percentage: 100 }],
      // Every two seconds: a weekly production cron, compressed.
      schedule: { cron: '*/2 * * * * *', timezone: 'UTC' },
      sampleEvery: '500ms',
      criteria: [{ name: 'queue', source: { type: 'redis', command: 'LLEN', key: `${prefix}queue` }, op: '<', threshold: 50 }],
      onFailure: { action: 'revert', after: 2 },
    };
    expect((await call(1, 'PUT', `/flags/${FLAG}/rollout`, plan)).status).toBe(201);

    // Mid-plan: the first stage left, the plan still running.
    const before = await until('stage 1', (v) => v.stage >= 1, 15_000);
    const holder = await redis.get(leaseKey);
    expect(holder).not.toBeNull();
    const leaderIndex = guards.findIndex((g) => holder!.includes(`:${g.process.pid}-`));
    expect(leaderIndex, `lease holder ${holder}`).toBeGreaterThanOrEqual(0);
    const leader = guards[leaderIndex]!;
    const standby = guards[1 - leaderIndex]!;
    const oldToken = Number(holder!.slice(0, holder!.indexOf(':')));

    await leader.stop('SIGKILL');
    const killedAt = Date.now();
    expect(before.status).toBe('running');
    const atKill = await view();
    expect(atKill.status, 'the plan is still running when its guard dies').toBe('running');

    // Takeover: the lease key names the standby, with a greater fencing token.
    let takenAt = 0;
    let newHolder = '';
    while (Date.now() - killedAt < LEASE_TTL_MS + 3000) {
      const current = await redis.get(leaseKey);
      if (current !== null && current !== holder) {
        takenAt = Date.now();
        newHolder = current;
        break;
      }
      await sleep(10);
    }
    const takeoverMs = takenAt - killedAt;
    expect(newHolder).toContain(`:${standby.process.pid}-`);
    const newToken = Number(newHolder.slice(0, newHolder.indexOf(':')));
    expect(newToken).toBeGreaterThan(oldToken);
    // The lease runs out at most TTL after the dead guard's last renewal (at or before the kill);
    // the standby tries every interval.
    expect(takeoverMs).toBeGreaterThan(0);
    expect(takeoverMs).toBeLessThan(LEASE_TTL_MS + INTERVAL_MS + 500);

    const done = await until('completion', (v) => v.status === 'completed', 20_000);
    expect(done.percentage).toBe(100);
    expect(done.stage).toBe(STAGES.length - 1);

    // The decision history: one advance per stage, stages in order, none repeated, no failure action.
    const decisions = await all<Decision>(`/flags/${FLAG}/rollout/decisions`);
    const guardDecisions = decisions.filter((d) => d.actor === 'guard');
    expect(new Set(guardDecisions.map((d) => d.action))).toEqual(new Set(['hold', 'advance']));
    const advances = guardDecisions.filter((d) => d.action === 'advance');
    expect(advances.map((d) => d.stage)).toEqual([1, 2, 3, 4]);
    expect(advances.at(-1)!.status).toBe('completed');
    // The fencing tokens only grow; the standby made at least two of the advances.
    const tokens = guardDecisions.map((d) => d.leaseToken!);
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]).toBeGreaterThanOrEqual(tokens[i - 1]!);
    expect(advances.filter((d) => d.leaseToken === newToken).length).toBeGreaterThanOrEqual(2);
    expect(guardDecisions.filter((d) => Date.parse(d.at) > killedAt).every((d) => d.leaseToken === newToken)).toBe(true);
    // Nothing was decided while no guard held the lease.
    const gap = guardDecisions.filter((d) => Date.parse(d.at) > killedAt && Date.parse(d.at) < takenAt - 50);
    expect(gap).toEqual([]);

    // The flag's audit history: the plan's install set stage 0, then the guard wrote each next
    // stage exactly once, in order.
    const history = await all<HistoryEntry>(`/flags/${FLAG}/history`);
    const percentages = history.filter((e) => e.after !== null && e.after.enabled).map((e) => `${e.source}:${e.after!.percentage}`);
    expect(percentages).toEqual(['api:10', 'guard:25', 'guard:50', 'guard:75', 'guard:100']);
    const revisions = history.map((e) => e.revision);
    expect([...revisions].sort((a, b) => a - b)).toEqual(revisions);

    // Every replica serves the final flag to SDKs.
    for (let i = 0; i < replicas.length; i++) {
      await expect
        .poll(async () => ((await (await call(i, 'GET', '/sdk/v1/flags')).json()) as { flags: Record<string, { percentage: number }> }).flags[FLAG]?.percentage, { timeout: 3000 })
        .toBe(100);
    }
    console.log(`guard failover: lease taken over ${takeoverMs} ms after the SIGKILL (TTL ${LEASE_TTL_MS} ms, interval ${INTERVAL_MS} ms); advances by token ${advances.map((d) => d.leaseToken).join(',')}; ${guardDecisions.length} guard decisions`);
    expect(standby.output()).toContain('guard lease acquired');
  }, 60_000);
});
