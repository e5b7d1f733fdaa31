import { describe, expect, it } from 'vitest';
import { applyCommand } from '../../../src/core/rollout/commands.js';
import { decide } from '../../../src/core/rollout/decide.js';
import type { DecideInput, Decision } from '../../../src/core/rollout/decide.js';
import type { Criterion, RolloutPlan } from '../../../src/core/rollout/plan.js';
import { initialState } from '../../../src/core/rollout/state.js';
import type { RolloutState } from '../../../src/core/rollout/state.js';
import type { Reading } from '../../../src/core/rollout/verdict.js';
import { latestSlot } from '../../../src/guard/schedule.js';

const MIN = 60_000;
const T0 = Date.parse('2026-11-02T08:00:00Z');

const queue: Criterion = { name: 'queue', source: { type: 'redis', command: 'LLEN', key: 'jobs' }, op: '<', threshold: 50 };
const success: Criterion = { name: 'success', source: { type: 'outcomes', windowMs: 15 * MIN }, metric: 'successRate', op: '>=', threshold: 0.95, minSamples: 200 };

function plan(overrides: Partial<RolloutPlan> = {}): RolloutPlan {
  return {
    stages: [{ percentage: 10, holdMs: 10 * MIN }, { percentage: 25, holdMs: 10 * MIN }, { percentage: 50, holdMs: 10 * MIN }, { percentage: 100 }],
    sampleEveryMs: MIN,
    criteria: [queue],
    onFailure: { action: 'revert', after: 2 },
    dryRun: false,
    notify: [],
    ...overrides,
  };
}

const value = (v: number, samples?: number): Reading => (samples === undefined ? { kind: 'value', value: v } : { kind: 'value', value: v, samples });
const ok: Reading = value(3);
const bad: Reading = value(120);
const down: Reading = { kind: 'error', detail: 'connect ECONNREFUSED' };
const empty: Reading = { kind: 'empty', detail: 'empty vector' };

/** Runs ticks every minute from `start` with scripted readings; returns every decision. */
function run(p: RolloutPlan, script: readonly Readonly<Record<string, Reading>>[], options: { state?: RolloutState; start?: number; step?: number; slot?: (now: number) => number | undefined } = {}): { decisions: Decision[]; state: RolloutState } {
  let state = options.state ?? initialState(p, options.start ?? T0);
  let now = options.start ?? T0;
  const decisions: Decision[] = [];
  for (const readings of script) {
    now += options.step ?? MIN;
    const input: DecideInput = { plan: p, state, readings, now, ...(options.slot === undefined ? {} : { scheduleSlot: options.slot(now) }) };
    const d = decide(input);
    decisions.push(d);
    state = d.state;
  }
  return { decisions, state };
}

const times = <T>(n: number, v: T): T[] => Array.from({ length: n }, () => v);

describe('decide: advancing only with evidence', () => {
  it('holds until the hold has passed, then advances one stage to the next percentage', () => {
    const { decisions } = run(plan(), times(10, { queue: ok }));
    expect(decisions.slice(0, 9).every((d) => d.action === 'hold')).toBe(true);
    const last = decisions[9]!;
    expect(last.action).toBe('advance');
    expect(last.flag).toEqual({ enabled: true, percentage: 25 });
    expect(last.state.stage).toBe(1);
    expect(last.state.stageStartedAt).toBe(T0 + 10 * MIN);
  });

  it('does not advance when the latest sample fails even though earlier ones passed', () => {
    const script = [...times(9, { queue: ok }), { queue: bad }];
    const { decisions } = run(plan(), script);
    expect(decisions.at(-1)!.action).toBe('hold');
    expect(decisions.at(-1)!.reason).toMatch(/no evidence/);
  });

  it('does not advance without any pass in the stage (only errors and insufficient samples)', () => {
    const { decisions, state } = run(plan(), [...times(6, { queue: down }), ...times(6, { queue: empty })]);
    expect(decisions.every((d) => d.action === 'hold')).toBe(true);
    expect(state.stage).toBe(0);
  });

  it('advances at most one stage per tick and never catches up after downtime', () => {
    // The guard was down for a day: one tick then moves one stage, and the next stage starts its hold now.
    const p = plan();
    const start = initialState(p, T0);
    const later = T0 + 24 * 60 * MIN;
    const first = decide({ plan: p, state: start, readings: { queue: ok }, now: later });
    expect(first.action).toBe('advance');
    expect(first.state.stage).toBe(1);
    const second = decide({ plan: p, state: first.state, readings: { queue: ok }, now: later + MIN });
    expect(second.action).toBe('hold');
    expect(second.state.stage).toBe(1);
  });

  it('requires a fresh pass in each stage: evidence does not carry over', () => {
    const { decisions } = run(plan(), [...times(10, { queue: ok }), ...times(10, { queue: down })]);
    expect(decisions[9]!.action).toBe('advance');
    expect(decisions.slice(10).every((d) => d.action === 'hold')).toBe(true);
  });

  it('completes at the last stage without a hold on arrival', () => {
    const p = plan({ stages: [{ percentage: 50, holdMs: MIN }, { percentage: 100 }] });
    const { decisions, state } = run(p, times(1, { queue: ok }));
    expect(decisions[0]!.action).toBe('advance');
    expect(state.status).toBe('completed');
    expect(decisions[0]!.notices.map((n) => n.kind)).toEqual(['advanced', 'completed']);
  });

  it('treats minSamples: below it a sample is insufficient and holds', () => {
    const p = plan({ criteria: [success] });
    const cohorts = (count: number, ok: number): Reading => ({
      kind: 'cohorts',
      on: { count, ok, failed: count - ok, successRate: count === 0 ? null : ok / count, p50: null, p95: null, p99: null },
      off: { count: 0, ok: 0, failed: 0, successRate: null, p50: null, p95: null, p99: null },
    });
    const { decisions } = run(p, times(12, { success: cohorts(150, 150) }));
    expect(decisions.every((d) => d.action === 'hold' && d.samples[0]!.verdict === 'insufficient')).toBe(true);
    const enough = run(p, times(10, { success: cohorts(400, 395) }));
    expect(enough.decisions.at(-1)!.action).toBe('advance');
  });
});

describe('decide: rolling back', () => {
  it('rolls back on `after` consecutive fails and sets percentage 0', () => {
    const { decisions, state } = run(plan(), [{ queue: ok }, { queue: bad }, { queue: bad }]);
    expect(decisions[1]!.action).toBe('hold');
    expect(decisions[2]!.action).toBe('revert');
    expect(decisions[2]!.flag).toEqual({ percentage: 0 });
    expect(state.status).toBe('rolled-back');
    expect(decisions[2]!.samples[0]).toMatchObject({ criterion: 'queue', verdict: 'fail', value: 120, threshold: '< 50' });
  });

  it('resets the count of consecutive fails on a pass', () => {
    const { decisions } = run(plan(), [{ queue: bad }, { queue: ok }, { queue: bad }, { queue: ok }, { queue: bad }]);
    expect(decisions.every((d) => d.action === 'hold')).toBe(true);
  });

  it('neither counts nor resets fails on error or insufficient samples', () => {
    const { decisions } = run(plan(), [{ queue: bad }, { queue: down }, { queue: empty }, { queue: bad }]);
    expect(decisions.slice(0, 3).every((d) => d.action === 'hold')).toBe(true);
    expect(decisions[3]!.action).toBe('revert');
  });

  it('never rolls back on a metrics outage or on no data', () => {
    const { decisions } = run(plan(), times(30, { queue: down }));
    expect(decisions.every((d) => d.action === 'hold')).toBe(true);
    expect(decisions.filter((d) => d.notices.some((n) => n.kind === 'source-failing'))).toHaveLength(1);
  });

  it('with `for`, fails only after failing continuously for that long', () => {
    const backlog: Criterion = { name: 'backlog', source: { type: 'redis', command: 'LLEN', key: 'jobs' }, op: '<=', threshold: 100, forMs: 10 * MIN, onFail: 'revert' };
    const p = plan({ criteria: [backlog], onFailure: { action: 'pause', after: 1 } });
    const { decisions } = run(p, [...times(10, { backlog: value(500) }), { backlog: value(500) }]);
    expect(decisions.slice(0, 9).every((d) => d.action === 'hold')).toBe(true);
    // First fail at minute 1, so minute 11 is 10 minutes of failing.
    expect(decisions[9]!.action).toBe('hold');
    expect(decisions[10]!.action).toBe('revert');
  });

  it('with `for`, a pass in between restarts the clock', () => {
    const backlog: Criterion = { name: 'backlog', source: { type: 'redis', command: 'LLEN', key: 'jobs' }, op: '<=', threshold: 100, forMs: 5 * MIN };
    const script = [...times(4, { backlog: value(500) }), { backlog: value(10) }, ...times(5, { backlog: value(500) })];
    const { decisions } = run(plan({ criteria: [backlog] }), script);
    expect(decisions.every((d) => d.action === 'hold')).toBe(true);
  });

  it('stays rolled back: passing samples never re-ramp it by themselves', () => {
    const { state } = run(plan(), [{ queue: bad }, { queue: bad }]);
    const after = run(plan(), times(30, { queue: ok }), { state, start: T0 + 2 * MIN });
    expect(after.decisions.every((d) => d.action === 'hold' && d.flag === undefined)).toBe(true);
    expect(after.state.status).toBe('rolled-back');
  });

  it('step-back goes to the previous stage', () => {
    const p = plan({ onFailure: { action: 'step-back', after: 1 } });
    const { state } = run(p, times(10, { queue: ok }));
    expect(state.stage).toBe(1);
    const d = decide({ plan: p, state, readings: { queue: bad }, now: T0 + 11 * MIN });
    expect(d.action).toBe('step-back');
    expect(d.flag).toEqual({ enabled: true, percentage: 10 });
    expect(d.state).toMatchObject({ stage: 0, status: 'rolled-back' });
  });

  it('disable turns the master toggle off', () => {
    const d = run(plan({ onFailure: { action: 'disable', after: 1 } }), [{ queue: bad }]).decisions[0]!;
    expect(d.action).toBe('disable');
    expect(d.flag).toEqual({ enabled: false });
  });

  it('pause keeps the percentage and stops ramping', () => {
    const d = run(plan({ onFailure: { action: 'pause', after: 1 } }), [{ queue: bad }]).decisions[0]!;
    expect(d.action).toBe('pause');
    expect(d.flag).toBeUndefined();
    expect(d.state.status).toBe('paused');
  });

  it('a criterion onFail overrides the plan action, and the most severe due action wins', () => {
    const p = plan({ criteria: [queue, { ...queue, name: 'queue2', onFail: 'disable' }], onFailure: { action: 'pause', after: 1 } });
    const d = run(p, [{ queue: bad, queue2: bad }]).decisions[0]!;
    expect(d.action).toBe('disable');
  });
});

describe('decide: onNoData, approval, schedule, dry run, per-stage criteria', () => {
  it('applies onNoData after a long silence', () => {
    const p = plan({ onNoData: { afterMs: 30 * MIN, action: 'pause' } });
    const { decisions } = run(p, times(31, { queue: down }));
    expect(decisions.slice(0, 29).every((d) => d.action === 'hold')).toBe(true);
    // Silent since the first tick (minute 1), so minute 31 is 30 minutes of silence.
    expect(decisions[30]!.action).toBe('pause');
    expect(decisions[30]!.reason).toMatch(/onNoData/);
  });

  it('waits for approval, then advances after approve', () => {
    const p = plan({ stages: [{ percentage: 1, holdMs: 2 * MIN }, { percentage: 5, holdMs: 2 * MIN, approval: true }, { percentage: 100 }] });
    const first = run(p, times(2, { queue: ok }));
    expect(first.state.stage).toBe(1);
    const second = run(p, times(4, { queue: ok }), { state: first.state, start: T0 + 2 * MIN });
    expect(second.decisions.map((d) => d.action)).toEqual(['hold', 'await-approval', 'hold', 'hold']);
    expect(second.state.status).toBe('awaiting-approval');
    const approved = applyCommand(p, second.state, 'approve', T0 + 7 * MIN, 'ops');
    expect(approved.state).toMatchObject({ status: 'running', approvedStage: 1 });
    const d = decide({ plan: p, state: approved.state, readings: { queue: ok }, now: T0 + 8 * MIN });
    expect(d.action).toBe('advance');
    expect(d.state.status).toBe('completed');
  });

  it('rolls back while awaiting approval when the criteria fail', () => {
    const p = plan({ stages: [{ percentage: 1, holdMs: MIN, approval: true }, { percentage: 100 }], onFailure: { action: 'revert', after: 1 } });
    const { state } = run(p, [{ queue: ok }]);
    expect(state.status).toBe('awaiting-approval');
    expect(decide({ plan: p, state, readings: { queue: bad }, now: T0 + 2 * MIN }).action).toBe('revert');
  });

  it('with a schedule advances only when a cron slot has come after the hold (Europe/Berlin)', () => {
    const schedule = { cron: '0 10 * * 1', timezone: 'Europe/Berlin' };
    const p = plan({ schedule, stages: [{ percentage: 10, holdMs: 60 * MIN }, { percentage: 25, holdMs: 60 * MIN }, { percentage: 100 }] });
    // Monday 2026-11-02 10:00 Berlin (CET, UTC+1) is 09:00 UTC. Start Sunday, tick hourly for 9 days.
    const start = Date.parse('2026-11-01T12:00:00Z');
    const slot = (now: number): number | undefined => latestSlot(schedule.cron, schedule.timezone, now);
    const { decisions } = run(p, times(24 * 9, { queue: ok }), { start, step: 60 * MIN, slot });
    const advances = decisions.map((d, i) => ({ d, at: start + (i + 1) * 60 * MIN })).filter(({ d }) => d.action === 'advance');
    expect(advances.map(({ at }) => new Date(at).toISOString())).toEqual(['2026-11-02T09:00:00.000Z', '2026-11-09T09:00:00.000Z']);
  });

  it('with a one-week hold and a weekly cron, advances on consecutive Mondays even when evidence came late', () => {
    const schedule = { cron: '0 10 * * 1', timezone: 'Europe/Berlin' };
    const week = 7 * 24 * 60 * MIN;
    const p = plan({ schedule, stages: [{ percentage: 10, holdMs: 3 * 24 * 60 * MIN }, { percentage: 25, holdMs: week }, { percentage: 50, holdMs: week }, { percentage: 100 }] });
    const start = Date.parse('2026-10-29T12:00:00Z');
    const slot = (now: number): number | undefined => latestSlot(schedule.cron, schedule.timezone, now);
    // Every Monday the queue is over the threshold at 10:00 (Berlin), so evidence comes 15 minutes late.
    const script: Record<string, Reading>[] = [];
    const ticks = (3 * week) / (15 * MIN);
    for (let i = 1; i <= ticks; i++) {
      const local = new Date(start + i * 15 * MIN);
      const mondayMorning = local.getUTCDay() === 1 && local.getUTCHours() === 9 && local.getUTCMinutes() === 0;
      script.push({ queue: mondayMorning ? bad : ok });
    }
    const { decisions } = run(p, script, { start, step: 15 * MIN, slot });
    const advances = decisions.map((d, i) => ({ d, at: start + (i + 1) * 15 * MIN })).filter(({ d }) => d.action === 'advance');
    expect(advances.map(({ at }) => new Date(at).toISOString())).toEqual(['2026-11-02T09:15:00.000Z', '2026-11-09T09:15:00.000Z', '2026-11-16T09:15:00.000Z']);
  });

  it('latestSlot follows daylight saving time in the plan time zone', () => {
    // 10:00 Berlin is 08:00 UTC in summer (CEST) and 09:00 UTC in winter (CET).
    expect(new Date(latestSlot('0 10 * * 1', 'Europe/Berlin', Date.parse('2026-07-08T00:00:00Z'))!).toISOString()).toBe('2026-07-06T08:00:00.000Z');
    expect(new Date(latestSlot('0 10 * * 1', 'Europe/Berlin', Date.parse('2026-11-25T00:00:00Z'))!).toISOString()).toBe('2026-11-23T09:00:00.000Z');
  });

  it('dry run records what it would have done and acts not', () => {
    const p = plan({ dryRun: true });
    const { decisions, state } = run(p, [{ queue: bad }, { queue: bad }, { queue: bad }]);
    expect(decisions.every((d) => d.action === 'hold' && d.flag === undefined)).toBe(true);
    expect(decisions[1]!.dryRun).toMatchObject({ action: 'revert' });
    expect(state.status).toBe('running');
    expect(state.wouldHave).toMatchObject({ action: 'revert', at: T0 + 2 * MIN });
    expect(decisions.flatMap((d) => d.notices).filter((n) => n.kind === 'dry-run')).toHaveLength(1);
  });

  it('a dry-run criterion only records, while the others still act', () => {
    const p = plan({ criteria: [{ ...queue, dryRun: true }, { ...queue, name: 'other' }], onFailure: { action: 'revert', after: 1 } });
    const d1 = decide({ plan: p, state: initialState(p, T0), readings: { queue: bad, other: ok }, now: T0 + MIN });
    expect(d1.action).toBe('hold');
    expect(d1.dryRun?.action).toBe('revert');
    const d2 = decide({ plan: p, state: initialState(p, T0), readings: { queue: bad, other: bad }, now: T0 + MIN });
    expect(d2.action).toBe('revert');
  });

  it('applies per-stage criteria only in their stage', () => {
    const tight: Criterion = { name: 'tight', source: { type: 'redis', command: 'LLEN', key: 'jobs' }, op: '<', threshold: 5 };
    const p = plan({ stages: [{ percentage: 10, holdMs: MIN }, { percentage: 50, holdMs: MIN, criteria: [tight] }, { percentage: 100 }], onFailure: { action: 'revert', after: 1 } });
    const first = decide({ plan: p, state: initialState(p, T0), readings: { queue: value(10) }, now: T0 + MIN });
    expect(first.action).toBe('advance');
    expect(first.samples.map((s) => s.criterion)).toEqual(['queue']);
    const second = decide({ plan: p, state: first.state, readings: { queue: value(10), tight: value(10) }, now: T0 + 2 * MIN });
    expect(second.action).toBe('revert');
    expect(second.samples.map((s) => s.criterion)).toEqual(['queue', 'tight']);
  });

  it('does nothing for paused, completed, aborted or rolled-back plans', () => {
    for (const status of ['paused', 'completed', 'aborted', 'rolled-back'] as const) {
      const d = decide({ plan: plan(), state: { ...initialState(plan(), T0), status }, readings: { queue: bad }, now: T0 + 60 * MIN });
      expect(d.action).toBe('hold');
      expect(d.samples).toEqual([]);
    }
  });

  it('recomputes the same decision from a JSON round trip of its input (what history stores)', () => {
    const p = plan();
    let state = initialState(p, T0);
    for (const [i, reading] of [ok, bad, ok, bad, bad].entries()) {
      const input: DecideInput = { plan: p, state, readings: { queue: reading }, now: T0 + (i + 1) * MIN };
      const d = decide(input);
      const again = decide(JSON.parse(JSON.stringify(input)) as DecideInput);
      expect(again).toEqual(JSON.parse(JSON.stringify(d)));
      state = d.state;
    }
    expect(state.status).toBe('rolled-back');
  });
});

describe('commands', () => {
  it('refuses approve when nothing awaits approval (conflict)', () => {
    expect(() => applyCommand(plan(), initialState(plan(), T0), 'approve', T0, 'ops')).toThrow(/cannot approve/);
  });

  it('resume after a rollback restarts the stage and re-applies its percentage', () => {
    const { state } = run(plan(), [{ queue: bad }, { queue: bad }]);
    const resumed = applyCommand(plan(), state, 'resume', T0 + 10 * MIN, 'ops');
    expect(resumed.state).toMatchObject({ status: 'running', stage: 0, stageStartedAt: T0 + 10 * MIN, criteria: {} });
    expect(resumed.flag).toEqual({ enabled: true, percentage: 10 });
  });

  it('abort ends any plan that has not ended, and only once', () => {
    const aborted = applyCommand(plan(), initialState(plan(), T0), 'abort', T0, 'ops');
    expect(aborted.state.status).toBe('aborted');
    expect(() => applyCommand(plan(), aborted.state, 'abort', T0, 'ops')).toThrow(/already ended/);
  });
});
