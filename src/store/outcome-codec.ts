// What both outcome adapters share: slicing time, aggregating a batch, and turning counts into
// the summary (the quantile estimate lives here once, so Redis and embedded answer alike).
import { RampartError } from '../core/errors.js';
import { FLAG_KEY_PATTERN } from '../core/flag.js';
import { LATENCY_BUCKETS_MS } from './outcome-store.js';
import type { Cohort, CohortStats, OutcomeEvent, OutcomeSummary } from './outcome-store.js';

/** Histogram slots: one per bound in LATENCY_BUCKETS_MS plus the open one above the last. */
export const BUCKET_COUNT = LATENCY_BUCKETS_MS.length + 1;

export const COHORTS: readonly Cohort[] = ['on', 'off'];

/** Default time slice: counters are kept per 10 s. */
export const DEFAULT_SLICE_MS = 10_000;

/** Default retention: 48 h. */
export const DEFAULT_RETENTION_MS = 48 * 3_600_000;

/** Counters of one flag, cohort and slice. */
export interface SliceCounts {
  ok: number;
  failed: number;
  /** Per histogram slot (not cumulative), BUCKET_COUNT long. */
  readonly buckets: number[];
  /** Sum of the latencies in milliseconds. */
  latencySum: number;
}

/** One slice's counters with its address. */
export interface SliceDelta {
  readonly flagKey: string;
  readonly cohort: Cohort;
  /** Start of the slice, ms since the epoch, a multiple of the slice length. */
  readonly start: number;
  readonly counts: SliceCounts;
}

/**
 * Empty counters.
 *
 * @example
 * const counts = emptyCounts();
 */
export function emptyCounts(): SliceCounts {
  return { ok: 0, failed: 0, buckets: new Array<number>(BUCKET_COUNT).fill(0), latencySum: 0 };
}

/**
 * The histogram slot of a latency: the first bound it does not exceed (Prometheus `le`).
 *
 * @example
 * bucketIndex(5); // 0
 * bucketIndex(5.1); // 1
 */
export function bucketIndex(latencyMs: number): number {
  const index = LATENCY_BUCKETS_MS.findIndex((bound) => latencyMs <= bound);
  return index === -1 ? LATENCY_BUCKETS_MS.length : index;
}

/**
 * Adds `from` into `into`.
 *
 * @example
 * addCounts(total, slice);
 */
export function addCounts(into: SliceCounts, from: SliceCounts): void {
  into.ok += from.ok;
  into.failed += from.failed;
  into.latencySum += from.latencySum;
  for (let i = 0; i < BUCKET_COUNT; i++) into.buckets[i] = (into.buckets[i] ?? 0) + (from.buckets[i] ?? 0);
}

/**
 * Checks a store option that is a duration in milliseconds.
 *
 * @example
 * const sliceMs = positiveMs(options.sliceMs ?? DEFAULT_SLICE_MS, 'sliceMs');
 */
export function positiveMs(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RampartError('validation', `${name} must be a positive whole number of milliseconds, got ${value}`);
  return value;
}

function checkEvent(event: OutcomeEvent, index: number): void {
  const fail = (field: string, message: string): never => {
    throw new RampartError('validation', `event ${index}: ${field} ${message}`, { errors: [{ path: `events.${index}.${field}`, message }] });
  };
  if (!FLAG_KEY_PATTERN.test(event.flagKey)) fail('flagKey', `must match ${FLAG_KEY_PATTERN.source}`);
  // Typed as a Cohort, but a caller outside TypeScript's reach could send anything.
  const cohort: string = event.cohort;
  if (cohort !== 'on' && cohort !== 'off') fail('cohort', "must be 'on' or 'off'");
  if (event.latencyMs !== undefined && !(Number.isFinite(event.latencyMs) && event.latencyMs >= 0)) fail('latencyMs', 'must be a finite number >= 0');
  if (!Number.isFinite(event.at.getTime())) fail('at', 'must be a valid date');
}

/**
 * Checks every event (the whole batch is refused if one is bad) and sums them per flag, cohort
 * and slice, so an adapter writes each slice once per batch.
 *
 * @example
 * const deltas = aggregateBatch(events, 10_000);
 */
export function aggregateBatch(events: readonly OutcomeEvent[], sliceMs: number): SliceDelta[] {
  events.forEach(checkEvent);
  const deltas = new Map<string, SliceDelta>();
  for (const event of events) {
    const start = sliceStart(event.at.getTime(), sliceMs);
    const id = `${event.flagKey}\n${event.cohort}\n${start}`;
    let delta = deltas.get(id);
    if (delta === undefined) {
      delta = { flagKey: event.flagKey, cohort: event.cohort, start, counts: emptyCounts() };
      deltas.set(id, delta);
    }
    if (event.ok) delta.counts.ok += 1;
    else delta.counts.failed += 1;
    if (event.latencyMs !== undefined) {
      const slot = bucketIndex(event.latencyMs);
      delta.counts.buckets[slot] = (delta.counts.buckets[slot] ?? 0) + 1;
      delta.counts.latencySum += event.latencyMs;
    }
  }
  return [...deltas.values()];
}

/**
 * Start of the slice holding `ms`.
 *
 * @example
 * sliceStart(12_345, 10_000); // 10000
 */
export function sliceStart(ms: number, sliceMs: number): number {
  return Math.floor(ms / sliceMs) * sliceMs;
}

/**
 * Starts of the slices overlapping [now - windowMs, now], oldest first.
 *
 * @example
 * windowSlices(60_000, new Date(125_000), 10_000); // [60000, 70000, ..., 120000]
 */
export function windowSlices(windowMs: number, now: Date, sliceMs: number): number[] {
  if (!Number.isSafeInteger(windowMs) || windowMs < 1) {
    throw new RampartError('validation', `window must be a positive whole number of milliseconds, got ${windowMs}`, { errors: [{ path: 'window', message: 'must be positive' }] });
  }
  const to = now.getTime();
  if (!Number.isFinite(to)) throw new RampartError('validation', 'now must be a valid date');
  const starts: number[] = [];
  for (let start = sliceStart(to - windowMs, sliceMs); start <= to; start += sliceMs) starts.push(start);
  return starts;
}

/**
 * Estimates quantile `q` (0-1) from histogram slots the way Prometheus' histogram_quantile does:
 * find the slot holding the rank `q * count` and interpolate linearly between its bounds (the
 * first slot starts at 0). A rank in the open slot above the last bound answers that bound.
 * Null without latencies.
 *
 * @example
 * estimateQuantile([0, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0], 0.5); // 175: half way through (100, 250]
 */
export function estimateQuantile(buckets: readonly number[], q: number): number | null {
  const total = buckets.reduce((sum, n) => sum + n, 0);
  if (total === 0) return null;
  const rank = q * total;
  let below = 0;
  for (let i = 0; i < LATENCY_BUCKETS_MS.length; i++) {
    const inSlot = buckets[i] ?? 0;
    if (inSlot > 0 && below + inSlot >= rank) {
      const lower = i === 0 ? 0 : (LATENCY_BUCKETS_MS[i - 1] ?? 0);
      const upper = LATENCY_BUCKETS_MS[i] ?? lower;
      return lower + (upper - lower) * Math.max(0, rank - below) / inSlot;
    }
    below += inSlot;
  }
  return LATENCY_BUCKETS_MS[LATENCY_BUCKETS_MS.length - 1] ?? null;
}

/**
 * The stats of one cohort from its summed counters.
 *
 * @example
 * const stats = cohortStats(total);
 */
export function cohortStats(counts: SliceCounts): CohortStats {
  const count = counts.ok + counts.failed;
  const latencyCount = counts.buckets.reduce((sum, n) => sum + n, 0);
  return {
    count,
    ok: counts.ok,
    failed: counts.failed,
    successRate: count === 0 ? null : counts.ok / count,
    latencyCount,
    p50: estimateQuantile(counts.buckets, 0.5),
    p95: estimateQuantile(counts.buckets, 0.95),
    p99: estimateQuantile(counts.buckets, 0.99),
  };
}

/**
 * The summary of a window; `from` is the start of the oldest slice read, so it may lie up to
 * one slice before `now - windowMs`.
 *
 * @example
 * const summary = toSummary('checkout', 900_000, now, starts[0], totals);
 */
export function toSummary(flagKey: string, windowMs: number, now: Date, from: number, totals: Readonly<Record<Cohort, SliceCounts>>): OutcomeSummary {
  return {
    flagKey,
    windowMs,
    from: new Date(from).toISOString(),
    to: now.toISOString(),
    cohorts: { on: cohortStats(totals.on), off: cohortStats(totals.off) },
  };
}

/**
 * Checks the flag key a summary is asked for.
 *
 * @example
 * checkSummaryKey('checkout');
 */
export function checkSummaryKey(flagKey: string): void {
  if (!FLAG_KEY_PATTERN.test(flagKey)) {
    throw new RampartError('validation', `flag key '${flagKey}' is not valid`, { errors: [{ path: 'key', message: `must match ${FLAG_KEY_PATTERN.source}` }] });
  }
}
