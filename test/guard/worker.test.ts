import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultFields } from '../../src/core/flag.js';
import { decide } from '../../src/core/rollout/decide.js';
import type { DecideInput } from '../../src/core/rollout/decide.js';
import type { RolloutPlan, SourceSpec } from '../../src/core/rollout/plan.js';
import { initialState } from '../../src/core/rollout/state.js';
import type { Reading } from '../../src/core/rollout/verdict.js';
import { createInProcessLease } from '../../src/guard/lease.js';
import type { LeaseGrant } from '../../src/guard/lease.js';
import type { RolloutNotifier, NotificationMessage } from '../../src/guard/notifier.js';
import { GuardWorker } from '../../src/guard/worker.js';
import type { MetricReader } from '../../src/guard/worker.js';
import { Registry } from '../../src/prometheus.js';
import { createEmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import type { EmbeddedRolloutStore } from '../../src/store/embedded-rollout-store.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { FlagStore } from '../../src/store/flag-store.js';
import { createRedisLease } from '../../src/store/redis-lease.js';
import { createRedisRolloutStore } from '../../src/store/redis-rollout-store.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import type { RolloutRecord, RolloutStore } from '../../src/store/rollout-store.js';
import { createLogger } from '../../src/telemetry.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';

const SEC = 1000;
const T0 = Date.parse('2026-11-24T00:00:00Z');

const plan: RolloutPlan = {
  stages: [{ percentage: 10, holdMs: 3 * SEC }, { percentage: 50, holdMs: 3 * SEC }, { percentage: 100 }],
  sampleEveryMs: SEC,
  criteria: [{ name: 'queue', source: { type: 'redis', url: 'redis://x', command: 'LLEN', key: 'jobs' }, op: '<', threshold: 50 }],
  onFailure: { action: 'revert', after: 2 },
  dryRun: false,
  notify: [{ url: 'http://127.0.0.1:1/hook', format: 'slack' }],
};

/** A metric reader that answers from a script the test changes between ticks. */
function scripted(): MetricReader & { next: Reading; calls: SourceSpec[] } {
  const reader = {
    next: { kind: 'value', value: 3 } as Reading,
    calls: [] as SourceSpec[],
    async observe(spec: SourceSpec): Promise<Reading> {
      reader.calls.push(spec);
      return reader.next;
    },
  };
  return reader;
}

function recordingNotifier(): RolloutNotifier & { sent: NotificationMessage[] } {
  const sent: NotificationMessage[] = [];
  return { sent, send: (_targets, m) => sent.push(m), flush: async () => undefined };
}

async function install(flags: FlagStore, rollouts: RolloutStore, p: RolloutPlan = plan, now = T0): Promise<void> {
  const existing = await flags.get('reports');
  const put = await flags.put('reports', { ...defaultFields('reports'), enabled: true, percentage: p.stages[0]!.percentage }, existing?.version ?? 0, { actor: 'ops', source: 'api', at: new Date(now) });
  if (!put.ok) throw new Error('seed failed');
  const record: RolloutRecord = { flagKey: 'reports', version: 1, plan: p, state: initialState(p, now), flagVersion: put.flag.version, fence: 0, createdAt: 'x', updatedAt: 'x', updatedBy: 'ops' };
  expect((await rollouts.write(record, 0)).ok).toBe(true);
}

describe('guard worker on the embedded stores', () => {
  let dir: string;
  let flags: FlagStore;
  let rollouts: EmbeddedRolloutStore;
  let reader: ReturnType<typeof scripted>;
  let notifier: ReturnType<typeof recordingNotifier>;
  let worker: GuardWorker;
  let grant: LeaseGrant;
  let registry: Registry;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-guard-'));
    flags = await createEmbeddedStore({ dir });
    rollouts = await createEmbeddedRolloutStore({ dir });
    reader = scripted();
    notifier = recordingNotifier();
    registry = new Registry();
    const lease = createInProcessLease();
    worker = new GuardWorker({ flags, rollouts, sources: reader, lease, notifier, logger: createLogger('silent'), registry });
    grant = (await lease.acquire())!;
  });
  afterEach(async () => {
    await rollouts.close();
    await flags.close();
    await rm(dir, { recursive: true, force: true });
  });

  const tickAt = (s: number) => worker.tick(T0 + s * SEC, grant);

  it('ramps stage by stage with compare-and-set writes by the guard, then completes', async () => {
    await install(flags, rollouts);
    for (let s = 1; s <= 7; s++) await tickAt(s);
    const flag = (await flags.get('reports'))!;
    expect(flag).toMatchObject({ percentage: 100, enabled: true, updatedBy: 'guard' });
    const record = (await rollouts.get('reports'))!;
    expect(record.state.status).toBe('completed');
    expect(record.pending).toBeUndefined();
    expect(record.flagVersion).toBe(flag.version);
    const history = await flags.history('reports', { limit: 10 });
    expect(history.entries.filter((e) => e.source === 'guard').map((e) => e.after?.percentage)).toEqual([100, 50]);
    expect(notifier.sent.map((m) => m.event)).toEqual(['advanced', 'advanced', 'completed']);
    expect(registry.render()).toMatch(/rampart_guard_decisions_total\{flag="reports",action="advance"\} 2/);
  });

  it('records every decision with samples, lease token and an input that recomputes the same action', async () => {
    await install(flags, rollouts);
    await tickAt(1);
    reader.next = { kind: 'value', value: 120 };
    await tickAt(2);
    await tickAt(3);
    const { entries } = await rollouts.decisions('reports', { limit: 10 });
    expect(entries.map((e) => e.action)).toEqual(['revert', 'hold', 'hold']);
    const revert = entries[0]!;
    expect(revert).toMatchObject({ actor: 'guard', leaseToken: grant.token, stage: 0, status: 'rolled-back', flag: { percentage: 0 } });
    expect(revert.samples[0]).toMatchObject({ criterion: 'queue', source: 'redis redis://x LLEN jobs', verdict: 'fail', value: 120, threshold: '< 50' });
    for (const entry of entries) expect(decide(entry.input as DecideInput).action).toBe(entry.action);
    expect((await flags.get('reports'))!.percentage).toBe(0);
  });

  it('samples only when due (sampleEvery) and not at all once rolled back', async () => {
    await install(flags, rollouts);
    await worker.tick(T0 + 1000, grant);
    await worker.tick(T0 + 1500, grant);
    expect(reader.calls).toHaveLength(1);
    reader.next = { kind: 'value', value: 120 };
    await tickAt(2);
    await tickAt(3);
    const calls = reader.calls.length;
    reader.next = { kind: 'value', value: 1 };
    for (let s = 4; s < 10; s++) await tickAt(s);
    expect(reader.calls).toHaveLength(calls);
    expect((await rollouts.get('reports'))!.state.status).toBe('rolled-back');
  });

  it('finishes a pending flag write left by a crash between the plan write and the flag write', async () => {
    await install(flags, rollouts);
    const record = (await rollouts.get('reports'))!;
    const flag = (await flags.get('reports'))!;
    const crashed: RolloutRecord = {
      ...record,
      version: 2,
      state: { ...record.state, stage: 1, stageStartedAt: T0 + 3 * SEC },
      pending: { expectedVersion: flag.version, fields: { ...defaultFields('reports'), enabled: true, percentage: 50 }, reason: 'guard: advance' },
    };
    expect((await rollouts.write(crashed, 1)).ok).toBe(true);
    await tickAt(3.5);
    expect((await flags.get('reports'))!.percentage).toBe(50);
    const after = (await rollouts.get('reports'))!;
    expect(after.pending).toBeUndefined();
    expect(after.state.stageStartedAt).toBe(T0 + 3 * SEC);
  });

  it('finishes a pending rollback even when a person aborted the plan in between', async () => {
    await install(flags, rollouts);
    const record = (await rollouts.get('reports'))!;
    const flag = (await flags.get('reports'))!;
    const crashed: RolloutRecord = {
      ...record,
      version: 2,
      state: { ...record.state, status: 'aborted' },
      pending: { expectedVersion: flag.version, fields: { ...defaultFields('reports'), enabled: true, percentage: 0 }, reason: 'guard: revert' },
    };
    expect((await rollouts.write(crashed, 1)).ok).toBe(true);
    await tickAt(1);
    expect((await flags.get('reports'))!.percentage).toBe(0);
    expect((await rollouts.get('reports'))!.pending).toBeUndefined();
  });

  it('pauses when the flag was changed outside the plan', async () => {
    await install(flags, rollouts);
    const flag = (await flags.get('reports'))!;
    await flags.put('reports', { ...defaultFields('reports'), enabled: true, percentage: 40 }, flag.version, { actor: 'someone', source: 'api', at: new Date() });
    await tickAt(1);
    const record = (await rollouts.get('reports'))!;
    expect(record.state.status).toBe('paused');
    expect(record.state.reason).toMatch(/outside the plan by someone/);
    expect((await flags.get('reports'))!.percentage).toBe(40);
  });

  it('notifies a pause made by a person (API) once, at its next tick', async () => {
    await install(flags, rollouts);
    await tickAt(1);
    const record = (await rollouts.get('reports'))!;
    await rollouts.write({ ...record, version: record.version + 1, state: { ...record.state, status: 'paused', reason: 'manual change by ops' }, updatedBy: 'ops' }, record.version);
    await tickAt(2);
    await tickAt(3);
    expect(notifier.sent.map((m) => [m.event, m.text])).toEqual([['paused', '[rampart] reports: manual change by ops']]);
  });

  it('in a dry run records "would have" and leaves the flag alone', async () => {
    await install(flags, rollouts, { ...plan, dryRun: true });
    reader.next = { kind: 'value', value: 120 };
    for (let s = 1; s <= 4; s++) await tickAt(s);
    const record = (await rollouts.get('reports'))!;
    expect(record.state.status).toBe('running');
    expect(record.state.wouldHave).toMatchObject({ action: 'revert', at: T0 + 2 * SEC });
    expect((await flags.get('reports'))!.percentage).toBe(10);
    expect(notifier.sent.map((m) => m.event)).toEqual(['dry-run']);
  });

  it('aborts the plan of a deleted flag', async () => {
    await install(flags, rollouts);
    const flag = (await flags.get('reports'))!;
    await flags.delete('reports', flag.version, { actor: 'ops', source: 'api', at: new Date() });
    await tickAt(1);
    expect((await rollouts.get('reports'))!.state.status).toBe('aborted');
  });

  it('reads compare: control outcomes since the stage started', async () => {
    await install(flags, rollouts, { ...plan, criteria: [{ name: 'vs', source: { type: 'outcomes', windowMs: 900_000 }, compare: 'control', maxDrop: 0.01 }] });
    await tickAt(2);
    expect(reader.calls[0]).toEqual({ type: 'outcomes', windowMs: 2000 });
  });
});

describe('guard workers sharing Redis', () => {
  it('lets a worker whose lease was taken over apply nothing, so each transition happens once', async () => {
    const prefix = uniquePrefix('guard');
    const url = redisUrl();
    const flags = await createRedisStore({ url, prefix });
    const rollouts = await createRedisRolloutStore({ url, prefix });
    const leaseA = await createRedisLease({ url, prefix, ttlMs: 200 });
    const leaseB = await createRedisLease({ url, prefix, ttlMs: 5000 });
    try {
      await install(flags, rollouts);
      const mk = (lease: typeof leaseA) => new GuardWorker({ flags, rollouts, sources: scripted(), lease, notifier: recordingNotifier(), logger: createLogger('silent') });
      const a = mk(leaseA);
      const b = mk(leaseB);
      const grantA = (await leaseA.acquire())!;
      await new Promise((r) => setTimeout(r, 300));
      const grantB = (await leaseB.acquire())!;
      // Both tick the same due plan at the same moment; only the lease holder's writes land.
      for (let s = 1; s <= 4; s++) await Promise.all([a.tick(T0 + s * SEC, grantA), b.tick(T0 + s * SEC, grantB)]);
      const { entries } = await rollouts.decisions('reports', { limit: 50 });
      expect(entries.every((e) => e.leaseToken === grantB.token)).toBe(true);
      expect(entries.filter((e) => e.action === 'advance')).toHaveLength(1);
      const history = await flags.history('reports', { limit: 50 });
      expect(history.entries.filter((e) => e.source === 'guard')).toHaveLength(1);
    } finally {
      await leaseA.close();
      await leaseB.close();
      await rollouts.close();
      await flags.close();
    }
  });
});
