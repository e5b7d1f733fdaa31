/** One flag as the SDK sees it: the master toggle, the rollout percentage and the bucketing keys. */
export interface FlagConfig {
  /** Master toggle (kill switch): when false nobody is in, whatever the percentage. */
  readonly enabled: boolean;
  /** Rollout percentage in [0, 100], at most three decimals. */
  readonly percentage: number;
  /** Hash salt; defaults to the flag key. Flags sharing a groupId share cohorts on purpose. */
  readonly groupId?: string;
  /** Context attribute whose value is the unit id; defaults to `userId`. */
  readonly stickiness?: string;
}

/** Everything an SDK needs to evaluate every flag locally. */
export interface FlagSnapshot {
  /** Global revision: grows with every change on the server. */
  readonly revision: number;
  readonly flags: Readonly<Record<string, FlagConfig>>;
}

/** Evaluation context: a plain string is the userId. */
export type EvaluationContext = string | { readonly userId?: string; readonly [attribute: string]: unknown };

/** The stickiness attribute used when a flag does not name one. */
export const DEFAULT_STICKINESS = 'userId';
