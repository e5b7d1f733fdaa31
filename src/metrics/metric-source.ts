import type { SourceSpec } from '../core/rollout/plan.js';
import type { CohortStats } from '../store/outcome-store.js';

/**
 * What one look at a metric source found. `empty` (no data, e.g. an empty Prometheus vector)
 * and `error` (unreachable, timeout, malformed answer) never pass or fail a criterion.
 */
export type Observation =
  | { readonly kind: 'value'; readonly value: number; readonly samples?: number }
  | { readonly kind: 'cohorts'; readonly on: CohortStats; readonly off: CohortStats }
  | { readonly kind: 'empty'; readonly detail: string }
  | { readonly kind: 'error'; readonly detail: string };

/** Reads one criterion's source for one flag. Never throws; failures are `error` observations. */
export interface MetricSource {
  observe(spec: SourceSpec, flagKey: string, now: Date): Promise<Observation>;
  close(): Promise<void>;
}
