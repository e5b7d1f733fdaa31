import type { ChangeMeta, FlagFields } from '../core/flag.js';
import type { Counter, Histogram, Registry } from '../prometheus.js';
import { withSpan } from '../telemetry.js';
import type { FlagStore } from './flag-store.js';

/**
 * Wraps any FlagStore with an OpenTelemetry span per call and Prometheus error and latency
 * metrics, so both adapters are observed the same way.
 *
 * @example
 * const store = instrumentStore(await createEmbeddedStore({ dir }), registry);
 */
export function instrumentStore(inner: FlagStore, registry: Registry): FlagStore {
  const errors: Counter = registry.counter('rampart_store_errors_total', 'Failed flag store calls by operation.');
  const latency: Histogram = registry.histogram('rampart_store_duration_seconds', 'Flag store call durations by operation.', [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2]);
  const observe = <T>(operation: string, call: () => Promise<T>): Promise<T> =>
    withSpan(`store.${operation}`, async () => {
      const started = process.hrtime.bigint();
      try {
        return await call();
      } catch (error) {
        errors.inc({ operation });
        throw error;
      } finally {
        latency.observe({ operation }, Number(process.hrtime.bigint() - started) / 1e9);
      }
    });
  return {
    get: (key: string) => observe('get', () => inner.get(key)),
    snapshot: () => observe('snapshot', () => inner.snapshot()),
    put: (key: string, fields: FlagFields, expected: number, meta: ChangeMeta) => observe('put', () => inner.put(key, fields, expected, meta)),
    delete: (key: string, expected: number, meta: ChangeMeta) => observe('delete', () => inner.delete(key, expected, meta)),
    history: (key, options) => observe('history', () => inner.history(key, options)),
    changesSince: (revision: number) => observe('changesSince', () => inner.changesSince(revision)),
    subscribe: (listener) => inner.subscribe(listener),
    ping: () => observe('ping', () => inner.ping()),
    close: () => inner.close(),
  };
}
