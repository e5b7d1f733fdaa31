import { RampartError } from '../errors.js';
import type { RolloutPlan } from './plan.js';
import { omit, stageTarget } from './state.js';
import type { FlagTarget, RolloutState } from './state.js';

/** A person's command on a plan. */
export type RolloutCommand = 'pause' | 'resume' | 'approve' | 'abort';

/** The state after a command, and the flag fields it sets (resume re-applies the stage). */
export interface CommandResult {
  readonly state: RolloutState;
  readonly flag?: FlagTarget;
  readonly reason: string;
}

/**
 * Applies a person's command; throws RampartError('conflict') when the plan's status does not
 * allow it (approve only while awaiting approval, nothing after completed or aborted).
 *
 * @example
 * applyCommand(plan, state, 'approve', Date.now(), 'ops').state.approvedStage; // state.stage
 */
export function applyCommand(plan: RolloutPlan, state: RolloutState, command: RolloutCommand, now: number, actor: string): CommandResult {
  const refuse = (why: string): never => {
    throw new RampartError('conflict', `cannot ${command} a plan that is ${state.status}: ${why}`);
  };
  const bare = omit(state, 'reason', 'approvedStage');
  switch (command) {
    case 'pause':
      if (state.status !== 'running' && state.status !== 'awaiting-approval') return refuse('only a running plan can be paused');
      return { state: { ...state, status: 'paused', reason: `paused by ${actor}` }, reason: `paused by ${actor}` };
    case 'resume': {
      if (state.status !== 'paused' && state.status !== 'rolled-back') return refuse('only a paused or rolled-back plan can be resumed');
      // Fresh evidence is needed after a person took over; a rolled-back stage also starts its hold again.
      const restart = state.status === 'rolled-back';
      const resumed: RolloutState = restart
        ? { ...omit(bare, 'anchorAt'), status: 'running', criteria: {}, stageStartedAt: now, nextCheckAt: now }
        : { ...bare, status: 'running', criteria: {}, nextCheckAt: now };
      return { state: resumed, flag: stageTarget(plan, state.stage), reason: `resumed by ${actor} at stage ${state.stage} (${plan.stages[state.stage]?.percentage ?? 0}%)` };
    }
    case 'approve':
      if (state.status !== 'awaiting-approval') return refuse('there is no stage awaiting approval');
      return { state: { ...bare, status: 'running', approvedStage: state.stage, nextCheckAt: now }, reason: `stage ${state.stage} approved by ${actor}` };
    case 'abort':
      if (state.status === 'completed' || state.status === 'aborted') return refuse('the plan has already ended');
      return { state: { ...state, status: 'aborted', reason: `aborted by ${actor}` }, reason: `aborted by ${actor}` };
  }
}

/**
 * The state after a person changed the flag's percentage or toggle by hand while the plan ran:
 * paused, so the guard does not fight the person.
 *
 * @example
 * pauseForManualChange(state, 'ops changed percentage 10 -> 30').status; // 'paused'
 */
export function pauseForManualChange(state: RolloutState, reason: string): RolloutState {
  return { ...state, status: 'paused', reason };
}
