// Hands the guard both cohorts' outcome aggregates for a window. The comparison with control and
// the metric a criterion picks (successRate, p95...) are the guard's business, not this source's.
import type { SourceSpec } from '../core/rollout/plan.js';
import type { OutcomeStore } from '../store/outcome-store.js';
import { errorMessage, guarded } from './http.js';
import type { MetricSource, Observation } from './metric-source.js';

/**
 * The one capability of an OutcomeStore this source uses, so tests and other callers can hand
 * in anything that summarises outcomes; every OutcomeStore fits.
 *
 * @example
 * const outcomes: OutcomeSummaries = await createRedisOutcomeStore({ url });
 */
export type OutcomeSummaries = Pick<OutcomeStore, 'summary'>;

/**
 * Settings of createOutcomesSource.
 *
 * @example
 * const options: OutcomesSourceOptions = { outcomes: store, timeoutMs: 2000 };
 */
export interface OutcomesSourceOptions {
  readonly outcomes: OutcomeSummaries;
  /** Longest wait for one summary; default 5000 ms. */
  readonly timeoutMs?: number | undefined;
}

/**
 * A MetricSource for `{ type: 'outcomes' }` specs: the store's summary of the flag over the
 * `windowMs` before `now`, as a `cohorts` observation; a store failure is an `error`.
 * Closing it leaves the store open (the caller owns the store).
 *
 * @example
 * const source = createOutcomesSource({ outcomes: store });
 * await source.observe({ type: 'outcomes', windowMs: 300_000 }, 'checkout', new Date());
 * // { kind: 'cohorts', on: { count: 812, successRate: 0.991, ... }, off: { ... } }
 */
export function createOutcomesSource(options: OutcomesSourceOptions): MetricSource {
  const timeoutMs = options.timeoutMs ?? 5000;
  return {
    async observe(spec: SourceSpec, flagKey: string, now: Date): Promise<Observation> {
      if (spec.type !== 'outcomes') return { kind: 'error', detail: `the outcomes source cannot read a '${spec.type}' source` };
      const what = `outcomes of '${flagKey}' over ${spec.windowMs} ms`;
      return guarded(
        async () => {
          try {
            const { cohorts } = await options.outcomes.summary(flagKey, spec.windowMs, now);
            return { kind: 'cohorts', on: cohorts.on, off: cohorts.off };
          } catch (error) {
            return { kind: 'error', detail: `${what}: the outcome store failed: ${errorMessage(error)}` };
          }
        },
        timeoutMs,
        what,
      );
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}
