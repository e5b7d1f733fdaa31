// The guard worker: holds the lease, ticks every plan that is due, and applies decisions with
// compare-and-set writes. Order of a transition: (1) the plan record is written with the new
// state, the decision and a pending flag write, fenced by the lease token and compare-and-set on
// the plan's version; (2) the flag is written with compare-and-set on its version; (3) the
// pending write is cleared. A crash between (1) and (2) is finished by the next tick of any
// worker; two workers can never both win (1), and only one can win (2).
import type { Logger } from 'pino';
import type { FlagFields, Flag } from '../core/flag.js';
import { activeCriteria, decide } from '../core/rollout/decide.js';
import type { Decision, DecideInput, Notice } from '../core/rollout/decide.js';
import type { Criterion, SourceSpec } from '../core/rollout/plan.js';
import { ACTIVE_STATUSES, applyTarget, omit, stageTarget } from '../core/rollout/state.js';
import type { RolloutState } from '../core/rollout/state.js';
import type { Reading } from '../core/rollout/verdict.js';
import type { Registry } from '../prometheus.js';
import type { FlagStore } from '../store/flag-store.js';
import type { Fence, NewDecision, RolloutRecord, RolloutStore } from '../store/rollout-store.js';
import type { Lease, LeaseGrant } from './lease.js';
import type { RolloutNotifier } from './notifier.js';
import { latestSlot } from './schedule.js';

/**
 * What the guard needs; the composition root wires the adapters.
 *
 * @example
 * const guard = new GuardWorker({ flags, rollouts, sources, lease, notifier, logger }); guard.start();
 */
export interface GuardOptions {
  readonly flags: FlagStore;
  readonly rollouts: RolloutStore;
  readonly sources: MetricReader;
  readonly lease: Lease;
  readonly notifier: RolloutNotifier;
  readonly logger: Logger;
  readonly registry?: Registry | undefined;
  /** The clock; default Date.now. */
  readonly now?: (() => number) | undefined;
  /** How often the loop wakes to renew the lease and tick due plans; default 1000 ms. */
  readonly intervalMs?: number | undefined;
}

/**
 * Reads a criterion's source; the metric sources' dispatcher implements it. Declared here (not
 * imported from src/metrics) because the guard depends on interfaces it owns.
 *
 * @example
 * const reader: MetricReader = createMetricSources({ outcomes });
 */
export interface MetricReader {
  observe(spec: SourceSpec, flagKey: string, now: Date): Promise<Reading>;
}


function sameFields(a: FlagFields, b: FlagFields): boolean {
  return a.enabled === b.enabled && a.percentage === b.percentage && a.description === b.description && a.groupId === b.groupId && a.stickiness === b.stickiness;
}

/** Whether the flag is where a running plan at `state` would have it. */
function onPlan(record: RolloutRecord, flag: Flag): boolean {
  const target = stageTarget(record.plan, record.state.stage);
  return flag.enabled === target.enabled && flag.percentage === target.percentage;
}

/**
 * The sequential comparison assumes one growing sample, so `compare: control` criteria read the
 * outcomes since the stage started rather than a sliding window.
 */
function sourceFor(criterion: Criterion, state: RolloutState, now: number): SourceSpec {
  if (criterion.compare === 'control' && criterion.source.type === 'outcomes') {
    return { type: 'outcomes', windowMs: Math.max(1000, now - state.stageStartedAt) };
  }
  return criterion.source;
}

/**
 * The guard worker. `tick(now)` does one pass; `start()` runs it on a timer with the lease.
 *
 * @example
 * const guard = new GuardWorker(options);
 * guard.start();
 * await guard.stop();
 */
export class GuardWorker {
  private readonly options: GuardOptions;
  private readonly log: Logger;
  private readonly clock: () => number;
  private grant: LeaseGrant | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Last status seen per flag, to notify pauses made by people (their API has no notifier). */
  private readonly seen = new Map<string, string>();
  private readonly metrics;

  constructor(options: GuardOptions) {
    this.options = options;
    this.log = options.logger.child({ component: 'guard' });
    this.clock = options.now ?? Date.now;
    const r = options.registry;
    this.metrics =
      r === undefined
        ? undefined
        : {
            decisions: r.counter('rampart_guard_decisions_total', 'Guard decisions by action.'),
            verdicts: r.counter('rampart_guard_samples_total', 'Criterion samples by verdict.'),
            stage: r.gauge('rampart_guard_stage', 'Current stage index per flag.'),
            percentage: r.gauge('rampart_guard_stage_percentage', 'Percentage of the current stage per flag.'),
            sourceErrors: r.counter('rampart_guard_source_errors_total', 'Metric source observations that failed, by source type.'),
            sourceLatency: r.histogram('rampart_guard_source_duration_seconds', 'Metric source observation latency by source type.', [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
            leader: r.gauge('rampart_guard_lease_held', '1 while this process holds the guard lease.'),
          };
    this.metrics?.leader.set({}, 0);
  }

  /** The current grant, when this worker holds the lease. */
  get lease(): LeaseGrant | undefined {
    return this.grant;
  }

  /** Starts the loop: acquire or renew the lease, then tick due plans. */
  start(): void {
    const interval = this.options.intervalMs ?? 1000;
    const loop = (): void => {
      if (this.stopped) return;
      this.running = this.cycle().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(loop, interval);
      });
    };
    loop();
  }

  /** Stops the loop, waits for the tick in progress and releases the lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    if (this.grant !== undefined) await this.options.lease.release(this.grant).catch(() => undefined);
    this.grant = undefined;
    await this.options.notifier.flush();
  }

  private async cycle(): Promise<void> {
    try {
      if (this.grant === undefined) {
        this.grant = await this.options.lease.acquire();
        if (this.grant !== undefined) this.log.info({ token: this.grant.token }, 'guard lease acquired');
      } else if (!(await this.options.lease.renew(this.grant))) {
        this.log.warn({ token: this.grant.token }, 'guard lease lost');
        this.grant = undefined;
      }
      this.metrics?.leader.set({}, this.grant === undefined ? 0 : 1);
      if (this.grant !== undefined) await this.tick(this.clock(), this.grant);
    } catch (error) {
      this.log.error({ err: error }, 'guard cycle failed');
    }
  }

  /**
   * One pass over every plan with `grant` as the fence: finishes pending flag writes and decides
   * the plans that are due.
   */
  async tick(now: number, grant: LeaseGrant): Promise<void> {
    const records = await this.options.rollouts.list();
    await Promise.all(
      records.map((record) =>
        this.process(record, now, grant).catch((error: unknown) => {
          this.log.error({ err: error, flag: record.flagKey }, 'guard could not process a plan');
        }),
      ),
    );
  }

  private async process(initial: RolloutRecord, now: number, grant: LeaseGrant): Promise<void> {
    const fence: Fence = { token: grant.token, holder: grant.holder };
    let record = initial;
    if (record.pending !== undefined) {
      const finished = await this.finishPending(record, fence, now);
      if (finished === undefined) return;
      record = finished;
    }
    const before = this.seen.get(record.flagKey);
    this.seen.set(record.flagKey, record.state.status);
    if (before !== undefined && before !== 'paused' && record.state.status === 'paused' && record.updatedBy !== 'guard') {
      this.notify(record, [{ kind: 'paused', text: record.state.reason ?? `paused by ${record.updatedBy}` }], now);
    }
    this.metrics?.stage.set({ flag: record.flagKey }, record.state.stage);
    this.metrics?.percentage.set({ flag: record.flagKey }, record.plan.stages[record.state.stage]?.percentage ?? 0);
    if (!ACTIVE_STATUSES.includes(record.state.status) || now < record.state.nextCheckAt) return;

    const flag = await this.options.flags.get(record.flagKey);
    if (flag === undefined) {
      await this.commit(record, { ...record.state, status: 'aborted', reason: 'the flag was deleted' }, fence, now, {
        action: 'abort',
        reason: 'the flag was deleted',
      });
      return;
    }
    let flagVersion = record.flagVersion;
    if (flag.version !== record.flagVersion) {
      if (!onPlan(record, flag)) {
        const reason = `flag changed outside the plan by ${flag.updatedBy} (enabled ${String(flag.enabled)}, ${flag.percentage}%); paused`;
        await this.commit({ ...record, flagVersion: flag.version }, { ...record.state, status: 'paused', reason }, fence, now, { action: 'pause', reason, notice: { kind: 'paused', text: reason } });
        return;
      }
      flagVersion = flag.version;
    }

    const criteria = activeCriteria(record.plan, record.state.stage);
    const readings: Record<string, Reading> = {};
    await Promise.all(criteria.map(async (criterion) => {
      readings[criterion.name] = await this.observe(criterion, record, now);
    }));
    const input: DecideInput = {
      plan: record.plan,
      state: record.state,
      readings,
      now,
      ...(record.plan.schedule === undefined ? {} : { scheduleSlot: latestSlot(record.plan.schedule.cron, record.plan.schedule.timezone, now) }),
    };
    const decision = decide(input);
    for (const sample of decision.samples) this.metrics?.verdicts.inc({ flag: record.flagKey, verdict: sample.verdict });
    await this.apply({ ...record, flagVersion }, flag, decision, input, fence, now);
  }

  private async observe(criterion: Criterion, record: RolloutRecord, now: number): Promise<Reading> {
    const spec = sourceFor(criterion, record.state, now);
    const started = process.hrtime.bigint();
    const observation = await this.options.sources.observe(spec, record.flagKey, new Date(now));
    this.metrics?.sourceLatency.observe({ type: spec.type }, Number(process.hrtime.bigint() - started) / 1e9);
    if (observation.kind === 'error') this.metrics?.sourceErrors.inc({ type: spec.type });
    return observation;
  }

  private async apply(record: RolloutRecord, flag: Flag, decision: Decision, input: DecideInput, fence: Fence, now: number): Promise<void> {
    const pending = decision.flag === undefined ? undefined : { expectedVersion: flag.version, fields: applyTarget(flag, decision.flag), reason: `guard: ${decision.action}: ${decision.reason}`.slice(0, 500) };
    const next: RolloutRecord = { ...omit(record, 'pending'), version: record.version + 1, state: decision.state, fence: Math.max(record.fence, fence.token), updatedAt: new Date(now).toISOString(), updatedBy: 'guard', ...(pending === undefined ? {} : { pending }) };
    const entry: NewDecision = {
      flagKey: record.flagKey,
      at: new Date(now).toISOString(),
      actor: 'guard',
      leaseToken: fence.token,
      planVersion: next.version,
      stage: decision.state.stage,
      status: decision.state.status,
      action: decision.action,
      reason: decision.reason,
      samples: decision.samples,
      ...(decision.dryRun === undefined ? {} : { dryRun: decision.dryRun }),
      ...(decision.flag === undefined ? {} : { flag: decision.flag }),
      input,
    };
    const written = await this.options.rollouts.write(next, record.version, { decision: entry, fence });
    if (!written.ok) {
      this.log.info({ flag: record.flagKey, reason: written.reason }, 'plan changed under this tick; the decision was dropped');
      return;
    }
    this.metrics?.decisions.inc({ flag: record.flagKey, action: decision.action });
    if (decision.action !== 'hold') this.log.info({ flag: record.flagKey, action: decision.action, stage: decision.state.stage, reason: decision.reason }, 'rollout decision');
    this.notify(next, decision.notices, now);
    if (pending !== undefined) await this.finishPending(next, fence, now);
  }

  /** Applies a recorded pending flag write (compare-and-set) and clears it. Undefined: the record moved on. */
  private async finishPending(record: RolloutRecord, fence: Fence, now: number): Promise<RolloutRecord | undefined> {
    const pending = record.pending;
    if (pending === undefined) return record;
    const result = await this.options.flags.put(record.flagKey, pending.fields, pending.expectedVersion, { actor: 'guard', source: 'guard', at: new Date(now), reason: pending.reason });
    let flagVersion = record.flagVersion;
    if (result.ok) flagVersion = result.flag.version;
    else if (result.current !== undefined && result.current.updatedBy === 'guard' && sameFields(result.current, pending.fields)) flagVersion = result.current.version;
    // Otherwise someone else wrote the flag first: the next tick sees it off plan and pauses.
    const next: RolloutRecord = { ...omit(record, 'pending'), version: record.version + 1, flagVersion, updatedAt: new Date(now).toISOString() };
    const written = await this.options.rollouts.write(next, record.version, { fence });
    return written.ok ? next : undefined;
  }

  private async commit(
    record: RolloutRecord,
    state: RolloutState,
    fence: Fence,
    now: number,
    what: { action: string; reason: string; notice?: Notice },
  ): Promise<void> {
    const next: RolloutRecord = { ...omit(record, 'pending'), version: record.version + 1, state, fence: Math.max(record.fence, fence.token), updatedAt: new Date(now).toISOString(), updatedBy: 'guard' };
    const written = await this.options.rollouts.write(next, record.version, {
      fence,
      decision: { flagKey: record.flagKey, at: new Date(now).toISOString(), actor: 'guard', leaseToken: fence.token, planVersion: next.version, stage: state.stage, status: state.status, action: what.action, reason: what.reason, samples: [] },
    });
    if (written.ok) {
      this.metrics?.decisions.inc({ flag: record.flagKey, action: what.action });
      if (what.notice !== undefined) this.notify(next, [what.notice], now);
    }
  }

  private notify(record: RolloutRecord, notices: readonly Notice[], now: number): void {
    if (record.plan.notify.length === 0) return;
    for (const notice of notices) {
      this.options.notifier.send(record.plan.notify, {
        flag: record.flagKey,
        event: notice.kind,
        text: `[rampart] ${record.flagKey}: ${notice.text}`,
        status: record.state.status,
        stage: record.state.stage,
        percentage: record.plan.stages[record.state.stage]?.percentage ?? 0,
        at: new Date(now).toISOString(),
      });
    }
  }
}
