import type { Criterion, FailureAction, RolloutPlan } from './plan.js';
import { ACTIVE_STATUSES, FRESH_CRITERION, omit, stageTarget } from './state.js';
import type { CriterionState, FlagTarget, RolloutState } from './state.js';
import { evaluateCriterion } from './verdict.js';
import type { CriterionSample, Reading } from './verdict.js';

/** Everything a decision depends on; history stores it so the decision can be recomputed. */
export interface DecideInput {
  readonly plan: RolloutPlan;
  readonly state: RolloutState;
  /** This tick's reading of every active criterion, by criterion name. */
  readonly readings: Readonly<Record<string, Reading>>;
  /** The tick's time (ms since epoch). */
  readonly now: number;
  /** With a schedule: the latest cron time at or before `now` (ms), computed by the caller. */
  readonly scheduleSlot?: number | undefined;
}

/** What a tick did: hold, move forward, wait for a person, finish, or one of the failure actions. */
export type DecisionAction = 'hold' | 'advance' | 'await-approval' | 'complete' | FailureAction;

/** State changes worth telling people about. */
export type NoticeKind = 'advanced' | 'awaiting-approval' | 'paused' | 'rolled-back' | 'completed' | 'source-failing' | 'dry-run';

export interface Notice {
  readonly kind: NoticeKind;
  readonly text: string;
}

/** The result of decide(): the action, why, the evaluated samples and the next state. */
export interface Decision {
  /** What is applied. In a dry run a due failure action is recorded in `dryRun` and this is `hold`. */
  readonly action: DecisionAction;
  readonly reason: string;
  /** What would have happened, had the plan (or the criteria) not been a dry run. */
  readonly dryRun?: { readonly action: FailureAction; readonly reason: string };
  readonly samples: readonly CriterionSample[];
  readonly state: RolloutState;
  /** Flag fields to write (compare-and-set) when the action changes the flag. */
  readonly flag?: FlagTarget;
  readonly notices: readonly Notice[];
}

/** After this many consecutive `error` samples a criterion's source is reported as failing (once). */
export const SOURCE_FAILING_AFTER = 5;

const SEVERITY: Readonly<Record<FailureAction, number>> = { pause: 1, 'step-back': 2, revert: 3, disable: 4 };

/**
 * The criteria that apply at `stage`: the plan's and the stage's own.
 *
 * @example
 * activeCriteria(plan, 2).map((c) => c.name); // ['success', 'queue', 'p95-tight']
 */
export function activeCriteria(plan: RolloutPlan, stage: number): readonly Criterion[] {
  return [...plan.criteria, ...(plan.stages[stage]?.criteria ?? [])];
}

function update(previous: CriterionState | undefined, sample: CriterionSample, now: number): CriterionState {
  const prev = previous ?? FRESH_CRITERION;
  const latest = { ...sample, at: now };
  switch (sample.verdict) {
    case 'pass':
      return { passes: prev.passes + 1, consecutiveFails: 0, consecutiveErrors: 0, latest };
    case 'fail':
      return { passes: prev.passes, consecutiveFails: prev.consecutiveFails + 1, failingSince: prev.failingSince ?? now, consecutiveErrors: 0, latest };
    case 'insufficient':
    case 'error': {
      const consecutiveErrors = sample.verdict === 'error' ? prev.consecutiveErrors + 1 : 0;
      return {
        passes: prev.passes,
        consecutiveFails: prev.consecutiveFails,
        ...(prev.failingSince === undefined ? {} : { failingSince: prev.failingSince }),
        silentSince: prev.silentSince ?? now,
        consecutiveErrors,
        latest,
      };
    }
  }
}

/** Whether a criterion's failure is due: `for` long failing, else `after` consecutive fails. */
function failureDue(criterion: Criterion, state: CriterionState, sample: CriterionSample, plan: RolloutPlan, now: number): boolean {
  if (sample.verdict !== 'fail') return false;
  if (criterion.forMs !== undefined) return now - (state.failingSince ?? now) >= criterion.forMs;
  return state.consecutiveFails >= plan.onFailure.after;
}

function flagFor(plan: RolloutPlan, state: RolloutState, action: FailureAction): { stage: number; flag?: FlagTarget } {
  switch (action) {
    case 'revert':
      return { stage: 0, flag: { percentage: 0 } };
    case 'step-back':
      return state.stage === 0 ? { stage: 0, flag: { percentage: 0 } } : { stage: state.stage - 1, flag: stageTarget(plan, state.stage - 1) };
    case 'disable':
      return { stage: state.stage, flag: { enabled: false } };
    case 'pause':
      return { stage: state.stage };
  }
}

function mostSevere(actions: readonly FailureAction[]): FailureAction | undefined {
  let worst: FailureAction | undefined;
  for (const action of actions) if (worst === undefined || SEVERITY[action] > SEVERITY[worst]) worst = action;
  return worst;
}

/**
 * Decides one tick of a rollout: a pure function of the plan, the stored state, this tick's
 * readings and the time. It advances at most one stage, and only with evidence (hold passed,
 * cron slot come, every criterion passed in this stage and passes now, approval given); it rolls
 * back on `after` consecutive fails or a `for`-long failure; errors and missing data hold.
 *
 * @example
 * const d = decide({ plan, state, readings: { queue: { kind: 'value', value: 3 } }, now: Date.now() });
 * if (d.flag !== undefined) await writeFlag(d.flag);
 */
export function decide(input: DecideInput): Decision {
  const { plan, state, readings, now } = input;
  if (!ACTIVE_STATUSES.includes(state.status)) {
    return { action: 'hold', reason: `plan is ${state.status}`, samples: [], state, notices: [] };
  }
  const criteria = activeCriteria(plan, state.stage);
  const samples: CriterionSample[] = [];
  const next: Record<string, CriterionState> = {};
  const notices: Notice[] = [];
  const failing: { criterion: Criterion; action: FailureAction; reason: string }[] = [];
  const silent: string[] = [];
  for (const criterion of criteria) {
    const reading: Reading = readings[criterion.name] ?? { kind: 'error', detail: 'no reading was taken' };
    const sample = evaluateCriterion(criterion, reading);
    const updated = update(state.criteria[criterion.name], sample, now);
    samples.push(sample);
    next[criterion.name] = updated;
    if (failureDue(criterion, updated, sample, plan, now)) {
      const how = criterion.forMs === undefined ? `${updated.consecutiveFails} consecutive fails` : `failing for ${now - (updated.failingSince ?? now)} ms`;
      failing.push({ criterion, action: criterion.onFail ?? plan.onFailure.action, reason: `${criterion.name}: ${sample.detail} (${how})` });
    }
    if (updated.silentSince !== undefined && plan.onNoData !== undefined && now - updated.silentSince >= plan.onNoData.afterMs) {
      silent.push(`${criterion.name}: no pass or fail for ${now - updated.silentSince} ms (${sample.detail})`);
    }
    if (sample.verdict === 'error' && updated.consecutiveErrors === SOURCE_FAILING_AFTER) {
      notices.push({ kind: 'source-failing', text: `source of ${criterion.name} (${sample.source}) failed ${SOURCE_FAILING_AFTER} times in a row: ${sample.detail}` });
    }
  }
  const checked: RolloutState = { ...state, criteria: next, lastCheckAt: now, nextCheckAt: now + plan.sampleEveryMs };
  const hold = (reason: string, extra: Partial<Decision> = {}): Decision => ({ action: 'hold', reason, samples, state: checked, notices, ...extra });

  // Failures first: a due rollback wins over any advance in the same tick.
  const real = failing.filter((f) => !(plan.dryRun || f.criterion.dryRun === true));
  const dry = failing.filter((f) => plan.dryRun || f.criterion.dryRun === true);
  let failure: { action: FailureAction; reason: string } | undefined;
  const worst = mostSevere(real.map((f) => f.action));
  if (worst !== undefined) failure = { action: worst, reason: real.map((f) => f.reason).join('; ') };
  else if (silent.length > 0 && plan.onNoData !== undefined && !plan.dryRun) failure = { action: plan.onNoData.action, reason: `onNoData: ${silent.join('; ')}` };

  if (failure !== undefined) {
    const { stage, flag } = flagFor(plan, state, failure.action);
    const status = failure.action === 'pause' ? 'paused' : 'rolled-back';
    const after: RolloutState = { ...checked, status, stage, reason: failure.reason };
    notices.push({ kind: status, text: `${failure.action} at stage ${state.stage} (${plan.stages[state.stage]?.percentage ?? 0}%): ${failure.reason}` });
    return { action: failure.action, reason: failure.reason, samples, state: after, notices, ...(flag === undefined ? {} : { flag }) };
  }

  const dryWorst = mostSevere(dry.map((f) => f.action)) ?? (plan.dryRun && silent.length > 0 && plan.onNoData !== undefined ? plan.onNoData.action : undefined);
  let dryRun: Decision['dryRun'];
  let stateAfterDry = checked;
  if (dryWorst !== undefined) {
    const reason = dry.length > 0 ? dry.map((f) => f.reason).join('; ') : `onNoData: ${silent.join('; ')}`;
    dryRun = { action: dryWorst, reason };
    // "Would have rolled back at T": T is when it first became due, kept while it stays due.
    const since = state.wouldHave?.action === dryWorst ? state.wouldHave.at : now;
    stateAfterDry = { ...checked, wouldHave: { action: dryWorst, at: since, reason } };
    if (state.wouldHave?.action !== dryWorst) notices.push({ kind: 'dry-run', text: `dry run: would have ${dryWorst === 'pause' ? 'paused' : `done ${dryWorst}`} at ${new Date(now).toISOString()}: ${reason}` });
  }
  const holdWith = (reason: string): Decision => ({ ...hold(reason), state: stateAfterDry, ...(dryRun === undefined ? {} : { dryRun }) });

  const stage = plan.stages[state.stage];
  if (stage === undefined) return holdWith(`stage ${state.stage} does not exist in the plan`);
  const last = state.stage === plan.stages.length - 1;
  const holdMs = stage.holdMs ?? 0;
  const heldFrom = plan.schedule === undefined ? state.stageStartedAt : (state.anchorAt ?? state.stageStartedAt);
  if (now - heldFrom < holdMs) return holdWith(`holding stage ${state.stage} until ${new Date(heldFrom + holdMs).toISOString()}`);
  if (plan.schedule !== undefined && !last && (input.scheduleSlot === undefined || input.scheduleSlot < heldFrom + holdMs)) {
    return holdWith(`hold passed; waiting for the next cron slot of '${plan.schedule.cron}' (${plan.schedule.timezone})`);
  }
  const missing = criteria.filter((c) => (next[c.name]?.passes ?? 0) === 0 || next[c.name]?.latest?.verdict !== 'pass').map((c) => c.name);
  if (missing.length > 0) return holdWith(`no evidence yet: ${missing.join(', ')} ${missing.length === 1 ? 'has' : 'have'} not passed in this stage or do not pass now`);
  if (last) {
    const done: RolloutState = { ...stateAfterDry, status: 'completed', reason: 'last stage held with every criterion passing' };
    notices.push({ kind: 'completed', text: `completed at ${stage.percentage}%` });
    return { action: 'complete', reason: done.reason ?? '', samples, state: done, notices, ...(dryRun === undefined ? {} : { dryRun }) };
  }
  if (stage.approval === true && state.approvedStage !== state.stage) {
    if (state.status === 'awaiting-approval') return holdWith(`stage ${state.stage} is waiting for approval`);
    const waiting: RolloutState = { ...stateAfterDry, status: 'awaiting-approval', reason: `stage ${state.stage} (${stage.percentage}%) needs approval to go on` };
    notices.push({ kind: 'awaiting-approval', text: `${stage.percentage}% held with every criterion passing; approve to go on to ${plan.stages[state.stage + 1]?.percentage ?? 100}%` });
    return { action: 'await-approval', reason: waiting.reason ?? '', samples, state: waiting, notices, ...(dryRun === undefined ? {} : { dryRun }) };
  }
  return advanceFrom(plan, stateAfterDry, state.stage, now, samples, notices, dryRun, plan.schedule === undefined ? undefined : input.scheduleSlot);
}

function advanceFrom(
  plan: RolloutPlan,
  state: RolloutState,
  from: number,
  now: number,
  samples: readonly CriterionSample[],
  notices: Notice[],
  dryRun: Decision['dryRun'],
  slot: number | undefined,
): Decision {
  const to = from + 1;
  const target = plan.stages[to];
  const finished = to === plan.stages.length - 1 && target?.holdMs === undefined;
  const rest = omit(state, 'approvedStage', 'reason', 'wouldHave', 'anchorAt');
  const after: RolloutState = { ...rest, status: finished ? 'completed' : 'running', stage: to, stageStartedAt: now, criteria: {}, ...(slot === undefined ? {} : { anchorAt: slot }) };
  const reason = `stage ${from} (${plan.stages[from]?.percentage ?? 0}%) held with every criterion passing; on to ${target?.percentage ?? 100}%`;
  notices.push({ kind: 'advanced', text: `advanced to ${target?.percentage ?? 100}%: ${reason}` });
  if (finished) notices.push({ kind: 'completed', text: `completed at ${target?.percentage ?? 100}%` });
  return { action: 'advance', reason, samples, state: after, flag: stageTarget(plan, to), notices, ...(dryRun === undefined ? {} : { dryRun }) };
}
