import type { ComparisonOp, Criterion, SourceSpec } from './plan.js';
import { compareToControl } from './sequential.js';

/** A criterion's sample: pass, fail, or one of the two that hold the stage. */
export type Verdict = 'pass' | 'fail' | 'insufficient' | 'error';

/** Aggregates of one cohort, as far as decisions need them (a subset of the outcome store's). */
export interface CohortCounts {
  readonly count: number;
  readonly ok: number;
  readonly failed: number;
  readonly successRate: number | null;
  readonly p50: number | null;
  readonly p95: number | null;
  readonly p99: number | null;
}

/**
 * What one look at a source found; the same shape as the metric sources' `Observation`, declared
 * here because core imports nothing outside core.
 */
export type Reading =
  | { readonly kind: 'value'; readonly value: number; readonly samples?: number | undefined }
  | { readonly kind: 'cohorts'; readonly on: CohortCounts; readonly off: CohortCounts }
  | { readonly kind: 'empty'; readonly detail: string }
  | { readonly kind: 'error'; readonly detail: string };

/** One criterion's evaluated sample, as history records it. */
export interface CriterionSample {
  readonly criterion: string;
  /** Human description of the source and query (`redis LLEN celery:reports`). */
  readonly source: string;
  readonly verdict: Verdict;
  /** The observed value compared (for compare: the difference on - off). */
  readonly value?: number;
  /** How many outcomes (or source samples) the value rests on. */
  readonly samples?: number;
  /** `< 50`, `>= 0.95`, `drop <= 0.01 vs control`. */
  readonly threshold: string;
  readonly detail: string;
}

/**
 * One line naming a source and its query, for history and notifications.
 *
 * @example
 * describeSource({ type: 'redis', command: 'LLEN', key: 'jobs' }); // 'redis LLEN jobs'
 */
export function describeSource(source: SourceSpec): string {
  switch (source.type) {
    case 'outcomes':
      return `outcomes window ${source.windowMs}ms`;
    case 'redis':
      return `redis${source.url === undefined ? '' : ` ${redactUrl(source.url)}`} ${source.command} ${source.key}${source.field === undefined ? '' : ` ${source.field}`}`;
    case 'prometheus':
      return `prometheus ${redactUrl(source.url)} ${source.query}`;
    case 'http':
      return `http ${redactUrl(source.url)} ${source.path}`;
  }
}

// Credentials in a URL never reach history or a webhook.
function redactUrl(url: string): string {
  return url.replace(/\/\/[^/@]*@/, '//***@');
}

/**
 * Whether `value op threshold` holds.
 *
 * @example
 * compare(12, '<', 50); // true
 */
export function compare(value: number, op: ComparisonOp, threshold: number): boolean {
  switch (op) {
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
  }
}

function metricOf(criterion: Criterion, cohort: CohortCounts): number | null {
  switch (criterion.metric ?? 'successRate') {
    case 'successRate':
      return cohort.successRate ?? (cohort.count > 0 ? cohort.ok / cohort.count : null);
    case 'errorRate':
      return cohort.count > 0 ? cohort.failed / cohort.count : null;
    case 'count':
      return cohort.count;
    case 'p50':
      return cohort.p50;
    case 'p95':
      return cohort.p95;
    case 'p99':
      return cohort.p99;
  }
}

/**
 * Turns one reading of a criterion's source into a verdict. Errors and missing data never pass
 * or fail; below `minSamples` a sample is `insufficient`.
 *
 * @example
 * evaluateCriterion({ name: 'queue', source, op: '<', threshold: 50 }, { kind: 'value', value: 12 }).verdict; // 'pass'
 */
export function evaluateCriterion(criterion: Criterion, reading: Reading): CriterionSample {
  const source = describeSource(criterion.source);
  const base = { criterion: criterion.name, source };
  if (criterion.compare === 'control') {
    const maxDrop = criterion.maxDrop ?? 0;
    const threshold = `drop <= ${maxDrop} vs control (alpha ${criterion.alpha ?? 0.05})`;
    if (reading.kind === 'error') return { ...base, threshold, verdict: 'error', detail: reading.detail };
    if (reading.kind === 'empty') return { ...base, threshold, verdict: 'insufficient', detail: reading.detail };
    if (reading.kind !== 'cohorts') return { ...base, threshold, verdict: 'error', detail: 'compare: control needs cohort counts from an outcomes source' };
    const result = compareToControl(reading.on, reading.off, { maxDrop, alpha: criterion.alpha, minSamples: criterion.minSamples });
    const samples = Math.min(reading.on.count, reading.off.count);
    const detail =
      result.difference === null
        ? 'no outcomes in one of the cohorts'
        : `on ${reading.on.ok}/${reading.on.count}, off ${reading.off.ok}/${reading.off.count}, difference ${result.difference.toFixed(4)}, evidence ${result.evidence.toPrecision(3)}`;
    return { ...base, threshold, verdict: result.verdict, samples, detail, ...(result.difference === null ? {} : { value: result.difference }) };
  }
  const op = criterion.op ?? '<';
  const limit = criterion.threshold ?? 0;
  const threshold = `${op} ${limit}`;
  if (reading.kind === 'error') return { ...base, threshold, verdict: 'error', detail: reading.detail };
  if (reading.kind === 'empty') return { ...base, threshold, verdict: 'insufficient', detail: reading.detail };
  let value: number | null;
  let samples: number | undefined;
  if (reading.kind === 'cohorts') {
    value = metricOf(criterion, reading.on);
    samples = reading.on.count;
  } else {
    value = reading.value;
    samples = reading.samples;
  }
  const counted = samples === undefined ? {} : { samples };
  if (value === null || !Number.isFinite(value)) return { ...base, threshold, verdict: 'insufficient', ...counted, detail: 'no data in the window' };
  if (criterion.minSamples !== undefined && (samples ?? 0) < criterion.minSamples) {
    return { ...base, threshold, verdict: 'insufficient', value, ...counted, detail: `${samples ?? 0} samples, fewer than minSamples ${criterion.minSamples}` };
  }
  const ok = compare(value, op, limit);
  return { ...base, threshold, verdict: ok ? 'pass' : 'fail', value, ...counted, detail: `${value} ${ok ? 'meets' : 'breaks'} ${threshold}` };
}
