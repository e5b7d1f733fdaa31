import type { FastifyInstance } from 'fastify';
import type { Registry } from '../../prometheus.js';
import type { FlagStore } from '../../store/flag-store.js';
import type { SnapshotCache } from '../snapshot-cache.js';
import { withTimeout } from '../../core/timeout.js';

const PING_TIMEOUT_MS = 1000;

/** `/healthz` (process alive), `/readyz` (store reachable, snapshot fresh), `/metrics`. */
export function healthRoutes(store: FlagStore, cache: SnapshotCache, registry: Registry) {
  return async (app: FastifyInstance): Promise<void> => {
    app.get('/healthz', { config: { access: 'public' } }, async () => ({ status: 'ok' }));

    app.get('/readyz', { config: { access: 'public' } }, async (_request, reply) => {
      const reasons: string[] = [];
      try {
        await withTimeout(store.ping(), PING_TIMEOUT_MS, 'the flag store');
      } catch (error) {
        reasons.push(`store unreachable: ${error instanceof Error ? error.message : String(error)}`);
      }
      const stale = cache.staleReason();
      if (stale !== undefined) reasons.push(`snapshot stale: ${stale}`);
      const body = { status: reasons.length === 0 ? 'ready' : 'not-ready', revision: cache.revision, snapshotAgeMs: cache.ageMs, reasons };
      return reply.code(reasons.length === 0 ? 200 : 503).send(body);
    });

    app.get('/metrics', { config: { access: 'public' } }, async (_request, reply) =>
      reply.type('text/plain; version=0.0.4; charset=utf-8').send(registry.render()),
    );
  };
}
