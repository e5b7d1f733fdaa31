/** Rollout plans as the guard runs them: the parsed form of `PUT /flags/:key/rollout`. */

/** What to do when a plan fails: percentage 0, previous stage, toggle off, or hold and notify. */
export type FailureAction = 'revert' | 'step-back' | 'disable' | 'pause';

export type ComparisonOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

/** Redis commands a Redis source may run (all read-only). */
export type RedisCommand = 'LLEN' | 'GET' | 'XLEN' | 'ZCARD' | 'HGET';

/** Outcome metrics computed from the SDK's `track()` counts. */
export type OutcomeMetric = 'successRate' | 'errorRate' | 'count' | 'p50' | 'p95' | 'p99';

/** Where a criterion's value comes from. */
export type SourceSpec =
  | { readonly type: 'outcomes'; readonly windowMs: number }
  | { readonly type: 'redis'; readonly url?: string; readonly command: RedisCommand; readonly key: string; readonly field?: string }
  | { readonly type: 'prometheus'; readonly url: string; readonly query: string }
  | { readonly type: 'http'; readonly url: string; readonly path: string; readonly headers?: Readonly<Record<string, string>> };

/** One metric criterion: a threshold check, or a comparison of the flag-on cohort with control. */
export interface Criterion {
  readonly name: string;
  readonly source: SourceSpec;
  /** For outcome sources: which metric of the flag-on cohort (default successRate). */
  readonly metric?: OutcomeMetric;
  readonly op?: ComparisonOp;
  readonly threshold?: number;
  /** `control`: compare the on cohort with the off cohort (sequential test). */
  readonly compare?: 'control';
  /** With compare: the largest tolerated drop of the on cohort's success rate. */
  readonly maxDrop?: number;
  /** With compare: the test's false-alarm level (default 0.05). */
  readonly alpha?: number;
  /** Fewer samples than this is `insufficient`, never pass or fail. */
  readonly minSamples?: number;
  /** Fail only when failing continuously for this long (ms). */
  readonly forMs?: number;
  /** Overrides the plan's failure action for this criterion. */
  readonly onFail?: FailureAction;
  /** Record what would happen; never act on this criterion. */
  readonly dryRun?: boolean;
}

export interface Stage {
  readonly percentage: number;
  /** Minimum time at this stage before advancing (ms); absent on the last stage. */
  readonly holdMs?: number;
  /** A person must approve before leaving this stage. */
  readonly approval?: boolean;
  /** Extra criteria for this stage only (thresholds tighten as exposure grows). */
  readonly criteria?: readonly Criterion[];
}

export interface Notifier {
  readonly url: string;
  readonly format: 'slack' | 'json';
}

export interface RolloutPlan {
  readonly stages: readonly Stage[];
  /** Advance only at these cron times (weekly ramps). */
  readonly schedule?: { readonly cron: string; readonly timezone: string };
  readonly sampleEveryMs: number;
  readonly criteria: readonly Criterion[];
  readonly onFailure: { readonly action: FailureAction; readonly after: number };
  readonly onNoData?: { readonly afterMs: number; readonly action: FailureAction };
  readonly dryRun: boolean;
  readonly notify: readonly Notifier[];
}
