import type { Flag, FlagFields } from '../flag.js';
import type { FailureAction, RolloutPlan } from './plan.js';
import type { CriterionSample, Verdict } from './verdict.js';

/** Where a plan is in its life. `completed` and `aborted` are final; `rolled-back` waits for a person. */
export type RolloutStatus = 'running' | 'awaiting-approval' | 'paused' | 'completed' | 'rolled-back' | 'aborted';

/** Statuses in which the guard samples and acts. */
export const ACTIVE_STATUSES: readonly RolloutStatus[] = ['running', 'awaiting-approval'];

/** What the guard remembers of one criterion within the current stage. */
export interface CriterionState {
  /** Passing samples since the stage started. */
  readonly passes: number;
  /** Fails since the last pass (error and insufficient neither count nor reset). */
  readonly consecutiveFails: number;
  /** When the current run of fails began (ms since epoch). */
  readonly failingSince?: number;
  /** When the current run without a pass or fail began: the clock of `onNoData`. */
  readonly silentSince?: number;
  /** Consecutive `error` samples: a failing source is reported once it reaches a few. */
  readonly consecutiveErrors: number;
  readonly latest?: CriterionSample & { readonly at: number };
}

/** Everything decide() needs to remember between ticks; stored with the plan. */
export interface RolloutState {
  readonly status: RolloutStatus;
  readonly stage: number;
  /** When the current stage started (ms since epoch); survives restarts. */
  readonly stageStartedAt: number;
  /**
   * With a schedule: the cron slot the stage began at. Holds count from it, so a stage entered a
   * few minutes after Monday 10:00 (waiting for evidence) still leaves at next Monday 10:00 with
   * a one-week hold, instead of slipping a whole week.
   */
  readonly anchorAt?: number;
  /** The stage a person approved leaving, if any. */
  readonly approvedStage?: number;
  readonly criteria: Readonly<Record<string, CriterionState>>;
  readonly lastCheckAt?: number;
  readonly nextCheckAt: number;
  /** Why the plan is paused, rolled back or aborted. */
  readonly reason?: string;
  /** Dry-run: the action that would have been taken, and when, the last time one was due. */
  readonly wouldHave?: { readonly action: FailureAction | 'advance' | 'complete'; readonly at: number; readonly reason: string };
}

/** The flag fields a transition sets; absent fields stay as they are. */
export interface FlagTarget {
  readonly enabled?: boolean;
  readonly percentage?: number;
}

/**
 * The fields of `flag` once a transition's target is applied.
 *
 * @example
 * applyTarget(flag, { percentage: 25 }).percentage; // 25, every other field as it was
 */
export function applyTarget(flag: Flag, target: FlagTarget): FlagFields {
  return {
    description: flag.description,
    enabled: target.enabled ?? flag.enabled,
    percentage: target.percentage ?? flag.percentage,
    groupId: flag.groupId,
    stickiness: flag.stickiness,
  };
}

/**
 * The state of a freshly installed plan: stage 0 running from `now` (completed at once when the
 * only stage has no hold).
 *
 * @example
 * initialState(plan, Date.now()).status; // 'running'
 */
export function initialState(plan: RolloutPlan, now: number): RolloutState {
  const onlyStage = plan.stages.length === 1 && plan.stages[0]?.holdMs === undefined;
  return { status: onlyStage ? 'completed' : 'running', stage: 0, stageStartedAt: now, criteria: {}, nextCheckAt: now };
}

/** The flag fields of running `stage` of `plan`. */
export function stageTarget(plan: RolloutPlan, stage: number): FlagTarget {
  return { enabled: true, percentage: plan.stages[stage]?.percentage ?? 0 };
}

/** A criterion's state at the start of a stage. */
export const FRESH_CRITERION: CriterionState = { passes: 0, consecutiveFails: 0, consecutiveErrors: 0 };

/** Whether a verdict is evidence (pass or fail) rather than silence. */
export function isEvidence(verdict: Verdict): boolean {
  return verdict === 'pass' || verdict === 'fail';
}

/**
 * A copy of `value` without `keys` (optional fields must be absent, not undefined).
 *
 * @example
 * omit({ a: 1, b: 2 }, 'b'); // { a: 1 }
 */
export function omit<T extends object, K extends keyof T>(value: T, ...keys: readonly K[]): Omit<T, K> {
  const drop = new Set<PropertyKey>(keys);
  return Object.fromEntries(Object.entries(value).filter(([key]) => !drop.has(key))) as Omit<T, K>;
}
