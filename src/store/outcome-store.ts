/** Which side of a flag a user was on when an outcome happened. */
export type Cohort = 'on' | 'off';

/** One outcome reported by an SDK's `track()`. */
export interface OutcomeEvent {
  readonly flagKey: string;
  readonly cohort: Cohort;
  readonly ok: boolean;
  readonly latencyMs?: number | undefined;
  /** When it happened (the server's receive time; SDK clocks are not trusted). */
  readonly at: Date;
}

/** Aggregates of one cohort over a window. Rates and quantiles are null without data. */
export interface CohortStats {
  readonly count: number;
  readonly ok: number;
  readonly failed: number;
  readonly successRate: number | null;
  /** How many outcomes carried a latency. */
  readonly latencyCount: number;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
}

export interface OutcomeSummary {
  readonly flagKey: string;
  readonly windowMs: number;
  readonly from: string;
  readonly to: string;
  readonly cohorts: { readonly on: CohortStats; readonly off: CohortStats };
}

/** Latency histogram bucket upper bounds in milliseconds (the last bucket is open). */
export const LATENCY_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000] as const;

/**
 * Outcome counters per flag, cohort and time slice, with a fixed latency histogram, expiring
 * after a retention period. The guard reads them through `summary`.
 */
export interface OutcomeStore {
  /** How far back counters are kept; the API refuses longer windows. Optional so fakes need not say. */
  readonly retentionMs?: number;
  record(events: readonly OutcomeEvent[]): Promise<void>;
  /** Aggregates of both cohorts over the `windowMs` before `now`. */
  summary(flagKey: string, windowMs: number, now: Date): Promise<OutcomeSummary>;
  close(): Promise<void>;
}
