// The one MetricSource the guard is given: it routes each spec to the source of its type, so the
// guard never needs to know which kinds of sources exist.
import type { SourceSpec } from '../core/rollout/plan.js';
import { createHttpJsonSource } from './http-json-source.js';
import type { MetricSource, Observation } from './metric-source.js';
import { createOutcomesSource } from './outcomes-source.js';
import type { OutcomeSummaries } from './outcomes-source.js';
import { createPrometheusSource } from './prometheus-source.js';
import { createRedisSource } from './redis-source.js';

/**
 * Settings of createMetricSources.
 *
 * @example
 * const options: MetricSourcesOptions = { outcomes: outcomeStore, defaultRedisUrl: 'redis://localhost:6379' };
 */
export interface MetricSourcesOptions {
  /** Where `outcomes` specs are read (normally the server's OutcomeStore). */
  readonly outcomes: OutcomeSummaries;
  /** Redis of `redis` specs without a `url` (normally the flag store's). */
  readonly defaultRedisUrl?: string | undefined;
  /** Longest wait for any one observation; default 5000 ms. */
  readonly timeoutMs?: number | undefined;
  /** The fetch of the prometheus and http sources; default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
}

/**
 * One MetricSource for every `SourceSpec` type. `observe` never throws and answers within
 * `timeoutMs` (plus scheduling slack); `close` closes the Redis connections it opened, never the
 * outcome store it was given.
 *
 * @example
 * const sources = createMetricSources({ outcomes: outcomeStore, defaultRedisUrl: config.redisUrl });
 * const observation = await sources.observe({ type: 'redis', command: 'LLEN', key: 'jobs' }, 'checkout', new Date());
 * await sources.close();
 */
export function createMetricSources(options: MetricSourcesOptions): MetricSource {
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be a positive number, got ${timeoutMs}`);
  const fetchOptions = options.fetch === undefined ? { timeoutMs } : { timeoutMs, fetch: options.fetch };
  const byType: Record<SourceSpec['type'], MetricSource> = {
    outcomes: createOutcomesSource({ outcomes: options.outcomes, timeoutMs }),
    redis: createRedisSource({ defaultUrl: options.defaultRedisUrl, timeoutMs }),
    prometheus: createPrometheusSource(fetchOptions),
    http: createHttpJsonSource(fetchOptions),
  };
  let closed = false;

  return {
    async observe(spec: SourceSpec, flagKey: string, now: Date): Promise<Observation> {
      if (closed) return { kind: 'error', detail: 'the metric sources are closed' };
      // Specs come from stored plans; an unknown type (a newer writer, a hand edit) is an error
      // observation like any other, not an exception in the guard's tick.
      const type: unknown = (spec as { readonly type?: unknown }).type;
      const source = typeof type === 'string' && Object.hasOwn(byType, type) ? byType[type as SourceSpec['type']] : undefined;
      if (source === undefined) return { kind: 'error', detail: `unknown metric source type '${String(type)}'` };
      try {
        return await source.observe(spec, flagKey, now);
      } catch (error) {
        // The sources do not throw; this keeps the promise of the interface if one ever does.
        return { kind: 'error', detail: error instanceof Error ? error.message : String(error) };
      }
    },

    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await Promise.all(Object.values(byType).map((source) => source.close()));
    },
  };
}
