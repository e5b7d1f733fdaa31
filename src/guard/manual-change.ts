// A person who changes a flag's percentage or toggle while its plan runs has taken over: the plan
// pauses at once (and says so in its decisions), instead of the guard fighting the person.
import type { Logger } from 'pino';
import type { ChangeMeta, Flag, FlagFields } from '../core/flag.js';
import { withTimeout } from '../core/timeout.js';
import { pauseForManualChange } from '../core/rollout/commands.js';
import { ACTIVE_STATUSES, omit, stageTarget } from '../core/rollout/state.js';
import type { DeleteResult, ExpectedVersion, FlagStore, WriteResult } from '../store/flag-store.js';
import type { RolloutStore } from '../store/rollout-store.js';

/**
 * Pauses the running plan of `flag` when it no longer sits where the plan put it. Returns
 * whether it paused. Retries the plan's compare-and-set a few times against concurrent ticks.
 *
 * @example
 * await pauseIfOffPlan(rollouts, flag, { actor: 'ops', source: 'api', at: new Date() });
 */
export async function pauseIfOffPlan(rollouts: RolloutStore, flag: Flag, meta: ChangeMeta): Promise<boolean> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const record = await rollouts.get(flag.key);
    if (record === undefined || !ACTIVE_STATUSES.includes(record.state.status)) return false;
    const target = stageTarget(record.plan, record.state.stage);
    if (flag.enabled === target.enabled && flag.percentage === target.percentage) return false;
    const reason = `manual change by ${meta.actor}: ${target.enabled === flag.enabled ? '' : `enabled ${String(flag.enabled)}, `}percentage ${target.percentage ?? 0} -> ${flag.percentage}${meta.reason === undefined ? '' : ` (${meta.reason})`}; plan paused`;
    const state = pauseForManualChange(record.state, reason);
    const next = { ...omit(record, 'pending'), version: record.version + 1, state, flagVersion: flag.version, updatedAt: meta.at.toISOString(), updatedBy: meta.actor };
    const written = await rollouts.write(next, record.version, {
      decision: { flagKey: flag.key, at: meta.at.toISOString(), actor: meta.actor, planVersion: next.version, stage: state.stage, status: state.status, action: 'pause', reason, samples: [] },
    });
    if (written.ok) return true;
  }
  return false;
}

/**
 * How long an API write waits for its plan to be paused before answering. The flag is written by
 * then; a pause still under way finishes (or fails, logged) on its own, and the guard's next tick
 * notices the manual change either way. Without this bound, a rollout store that stops answering
 * right after a flag write would hold that flag's write queue for a whole store timeout, and the
 * writes queued behind it would wait for two (found by test/faults/redis-freeze.test.ts).
 */
export const PAUSE_WAIT_MS = 1000;

/**
 * Wraps the API's FlagStore so that every successful API write of a flag with a running plan
 * that moves it off the plan pauses the plan. The guard's own writes use the unwrapped store.
 *
 * @example
 * const apiStore = pauseOnManualChange(store, rollouts, logger);
 */
export function pauseOnManualChange(store: FlagStore, rollouts: RolloutStore, logger: Logger): FlagStore {
  const log = logger.child({ component: 'guard' });
  return {
    get: (key) => store.get(key),
    snapshot: () => store.snapshot(),
    async put(key: string, fields: FlagFields, expected: ExpectedVersion, meta: ChangeMeta): Promise<WriteResult> {
      const result = await store.put(key, fields, expected, meta);
      if (result.ok && meta.source === 'api') {
        // The flag write has happened either way; a failure here is caught by the guard's next tick.
        const paused = pauseIfOffPlan(rollouts, result.flag, meta).catch((error: unknown) => {
          log.warn({ err: error, flag: key }, 'could not pause the plan after a manual change');
        });
        await withTimeout(paused, PAUSE_WAIT_MS, 'pausing the plan').catch(() => {
          log.warn({ flag: key }, `the plan was not paused within ${PAUSE_WAIT_MS} ms of a manual change; the write is answered, the pause goes on`);
        });
      }
      return result;
    },
    delete: (key: string, expected: ExpectedVersion, meta: ChangeMeta): Promise<DeleteResult> => store.delete(key, expected, meta),
    history: (key, options) => store.history(key, options),
    changesSince: (revision) => store.changesSince(revision),
    subscribe: (listener) => store.subscribe(listener),
    ping: () => store.ping(),
    close: () => store.close(),
  };
}
