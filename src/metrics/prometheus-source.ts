// Evaluates one PromQL instant query at the guard's `now`. A criterion compares one number with a
// threshold, so the query must come down to one series; anything else is the plan's mistake and
// is reported as such rather than guessed at (which of several series would be the right one?).
import { z } from 'zod';
import type { SourceSpec } from '../core/rollout/plan.js';
import { fetchText, guarded, redactUrl, snippet } from './http.js';
import type { MetricSource, Observation } from './metric-source.js';

type PrometheusSpec = Extract<SourceSpec, { type: 'prometheus' }>;

/**
 * Settings of createPrometheusSource.
 *
 * @example
 * const options: PrometheusSourceOptions = { timeoutMs: 3000 };
 */
export interface PrometheusSourceOptions {
  /** Longest wait for one query; also sent to Prometheus as the query's `timeout`. Default 5000 ms. */
  readonly timeoutMs?: number | undefined;
  /** The fetch to use (e.g. one with a proxy agent); default the global fetch. */
  readonly fetch?: typeof fetch | undefined;
}

// Prometheus sends sample values as strings ("1.5", "NaN", "+Inf").
const sampleSchema = z.tuple([z.number(), z.string()]);
const responseSchema = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.discriminatedUnion('resultType', [
      z.object({ resultType: z.literal('vector'), result: z.array(z.object({ metric: z.record(z.string(), z.string()), value: sampleSchema })) }),
      z.object({ resultType: z.literal('scalar'), result: sampleSchema }),
      z.object({ resultType: z.literal('matrix'), result: z.array(z.unknown()) }),
      z.object({ resultType: z.literal('string'), result: z.unknown() }),
    ]),
  }),
  z.object({ status: z.literal('error'), errorType: z.string().optional(), error: z.string().optional() }),
]);

/**
 * A MetricSource for `{ type: 'prometheus' }` specs: one instant query at `now`.
 * One series or a scalar is a `value`; no series or a NaN sample is `empty`; several series, a
 * range vector, an HTTP or query error is an `error`. An infinite sample is a `value` (±Infinity):
 * `histogram_quantile` answers +Inf when the quantile lies above the highest bucket, which is a
 * real, failing latency and must not be hidden as "no data".
 *
 * @example
 * const source = createPrometheusSource({ timeoutMs: 3000 });
 * await source.observe({ type: 'prometheus', url: 'http://prometheus:9090', query: 'sum(rate(http_errors_total[5m]))' }, 'checkout', new Date());
 * // { kind: 'value', value: 0.02, samples: 1 }
 */
export function createPrometheusSource(options: PrometheusSourceOptions = {}): MetricSource {
  const timeoutMs = options.timeoutMs ?? 5000;
  const fetchFn = options.fetch ?? fetch;

  async function query(spec: PrometheusSpec, now: Date): Promise<Observation> {
    const url = queryUrl(spec, now, timeoutMs);
    if (url === undefined) return { kind: 'error', detail: `prometheus url '${redactUrl(spec.url)}' is not a valid http(s) URL` };
    const where = `prometheus at ${redactUrl(spec.url)}`;
    const result = await fetchText(url, { fetch: fetchFn, timeoutMs });
    if (!result.ok) return { kind: 'error', detail: `${where}: ${result.detail}` };

    let json: unknown;
    try {
      json = JSON.parse(result.body);
    } catch {
      return { kind: 'error', detail: `${where} answered HTTP ${result.status} with a body that is not JSON: ${snippet(result.body)}` };
    }
    const parsed = responseSchema.safeParse(json);
    if (!parsed.success) {
      return { kind: 'error', detail: `${where} answered HTTP ${result.status} with an unexpected body: ${snippet(result.body)}` };
    }
    const body = parsed.data;
    if (body.status === 'error') {
      const type = body.errorType === undefined ? '' : ` ${body.errorType}`;
      return { kind: 'error', detail: `${where} rejected the query (HTTP ${result.status}${type}): ${body.error ?? 'no message'}` };
    }
    // A 2xx is expected with status success; anything else means a proxy in between rewrote it.
    if (result.status < 200 || result.status > 299) {
      return { kind: 'error', detail: `${where} answered HTTP ${result.status}: ${snippet(result.body)}` };
    }
    const data = body.data;
    switch (data.resultType) {
      case 'scalar':
        return sample(data.result[1], 'the scalar');
      case 'vector': {
        const [first, ...rest] = data.result;
        if (first === undefined) return { kind: 'empty', detail: 'query returned no series' };
        if (rest.length > 0) {
          return { kind: 'error', detail: `query returned ${data.result.length} series; aggregate it to one (e.g. sum(...))` };
        }
        return sample(first.value[1], 'the series');
      }
      case 'matrix':
        return { kind: 'error', detail: 'query returned a range vector; use an instant vector (e.g. rate(...[5m]))' };
      case 'string':
        return { kind: 'error', detail: 'query returned a string, not a number' };
    }
  }

  return {
    async observe(spec: SourceSpec, _flagKey: string, now: Date): Promise<Observation> {
      if (spec.type !== 'prometheus') return { kind: 'error', detail: `the prometheus source cannot read a '${spec.type}' source` };
      return guarded(() => query(spec, now), timeoutMs, `prometheus at ${redactUrl(spec.url)}`);
    },
    close(): Promise<void> {
      return Promise.resolve();
    },
  };
}

function queryUrl(spec: PrometheusSpec, now: Date, timeoutMs: number): string | undefined {
  let base: URL;
  try {
    base = new URL(spec.url);
  } catch {
    return undefined;
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') return undefined;
  // Keep a path prefix (Prometheus behind `--web.route-prefix` or a proxy path).
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/api/v1/query`;
  base.search = '';
  base.searchParams.set('query', spec.query);
  base.searchParams.set('time', (now.getTime() / 1000).toFixed(3));
  // Prometheus stops evaluating an expensive query nobody waits for any more.
  base.searchParams.set('timeout', `${Math.max(1, Math.floor(timeoutMs))}ms`);
  return base.toString();
}

function sample(text: string, what: string): Observation {
  // Prometheus writes NaN, +Inf and -Inf; Number() reads 'NaN' but not '+Inf'.
  const value = text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text);
  if (Number.isNaN(value)) return { kind: 'empty', detail: `${what} is NaN (e.g. a rate or a ratio over no data)` };
  return { kind: 'value', value, samples: 1 };
}
