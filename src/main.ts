import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './api/app.js';
import { outcomeRoutes } from './api/routes/outcomes.js';
import { rolloutRoutes } from './api/routes/rollouts.js';
import { SnapshotCache } from './api/snapshot-cache.js';
import type { Config } from './config.js';
import { ConfigError, isLoopbackHost } from './config.js';
import { createInProcessLease } from './guard/lease.js';
import type { Lease } from './guard/lease.js';
import { pauseOnManualChange } from './guard/manual-change.js';
import { createWebhookNotifier } from './guard/notifier.js';
import { GuardWorker } from './guard/worker.js';
import { createMetricSources } from './metrics/sources.js';
import { Registry } from './prometheus.js';
import { createEmbeddedOutcomeStore } from './store/embedded-outcome-store.js';
import { createEmbeddedRolloutStore } from './store/embedded-rollout-store.js';
import { createEmbeddedStore } from './store/embedded-store.js';
import type { FlagStore } from './store/flag-store.js';
import { instrumentStore } from './store/instrumented-store.js';
import type { OutcomeStore } from './store/outcome-store.js';
import { createRedisLease } from './store/redis-lease.js';
import { createRedisOutcomeStore } from './store/redis-outcome-store.js';
import { createRedisRolloutStore } from './store/redis-rollout-store.js';
import { createRedisStore } from './store/redis-store.js';
import type { RolloutStore } from './store/rollout-store.js';
import { uiRoutes } from './ui/routes.js';

/** A running server and how to stop it. */
export interface RunningServer {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly store: FlagStore;
  stop(): Promise<void>;
}

/** Opens the store the configuration names: Redis (or a Redis Cluster) with REDIS_URL, else the embedded file store. */
export async function openStore(config: Config, onError?: (error: Error) => void): Promise<FlagStore> {
  return config.redisUrl === undefined
    ? createEmbeddedStore({ dir: config.dataDir, onError })
    : createRedisStore({ url: config.redisUrl, cluster: config.redisCluster, prefix: config.redisPrefix, onError });
}

/** The single Redis a `redis` metric criterion without its own url reads: the store's, unless that is a cluster. */
function storeRedisUrl(config: Config): string | undefined {
  return config.redisCluster ? undefined : config.redisUrl;
}

/** Background store errors (lost subscriptions, failed file writes) that no caller awaits. */
function storeErrorLogger(logger: Logger, component: string): (error: Error) => void {
  const log = logger.child({ component });
  return (error) => {
    log.warn({ err: error }, 'store background error');
  };
}

/** Opens the rollout plan store beside the flag store. */
export async function openRolloutStore(config: Config, onError?: (error: Error) => void): Promise<RolloutStore> {
  return config.redisUrl === undefined
    ? createEmbeddedRolloutStore({ dir: config.dataDir, onError })
    : createRedisRolloutStore({ url: config.redisUrl, cluster: config.redisCluster, prefix: config.redisPrefix });
}

/** Opens the outcome counters beside the flag store. */
export async function openOutcomeStore(config: Config, onError?: (error: Error) => void): Promise<OutcomeStore> {
  const options = { sliceMs: config.outcomeSliceMs, retentionMs: config.outcomeRetentionMs, onError };
  return config.redisUrl === undefined
    ? createEmbeddedOutcomeStore({ dir: config.dataDir, ...options })
    : createRedisOutcomeStore({ url: config.redisUrl, cluster: config.redisCluster, prefix: config.redisPrefix, ...options });
}

/** A started guard and how to stop it. */
export interface RunningGuard {
  readonly worker: GuardWorker;
  stop(): Promise<void>;
}

/**
 * Starts the guard worker on the given stores: a Redis lease with REDIS_URL (any number of
 * workers, one acts), else an in-process lease (the embedded store admits one process anyway).
 *
 * @example
 * const guard = await startGuard(config, logger, { flags, rollouts, outcomes, registry });
 */
export async function startGuard(
  config: Config,
  logger: Logger,
  deps: { readonly flags: FlagStore; readonly rollouts: RolloutStore; readonly outcomes: OutcomeStore; readonly registry: Registry },
): Promise<RunningGuard> {
  const lease: Lease =
    config.redisUrl === undefined
      ? createInProcessLease()
      : await createRedisLease({ url: config.redisUrl, cluster: config.redisCluster, prefix: config.redisPrefix, ttlMs: config.guardLeaseTtlMs });
  // The `redis` metric source speaks to a single Redis; a cluster is no default for it.
  const sources = createMetricSources({ outcomes: deps.outcomes, defaultRedisUrl: storeRedisUrl(config), timeoutMs: config.guardSourceTimeoutMs });
  const delivered = deps.registry.counter('rampart_guard_notifications_total', 'Webhook notifications by result.');
  const notifier = createWebhookNotifier({
    timeoutMs: config.notifyTimeoutMs,
    logger,
    onDelivery: (ok) => {
      delivered.inc({ result: ok ? 'delivered' : 'failed' });
    },
  });
  const worker = new GuardWorker({ flags: deps.flags, rollouts: deps.rollouts, sources, lease, notifier, logger, registry: deps.registry, intervalMs: config.guardIntervalMs });
  worker.start();
  return {
    worker,
    async stop() {
      await worker.stop();
      await sources.close();
      await lease.close();
    },
  };
}

/**
 * Wires the adapters and starts listening. Only this module and the CLI choose adapters.
 *
 * @example
 * const server = await startServer(loadConfig(process.env), logger);
 */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const log = logger.child({ component: 'serve' });
  const registry = new Registry();
  const onError = storeErrorLogger(logger, 'serve');
  const raw = await openStore(config, onError);
  const closers: (() => Promise<void>)[] = [() => raw.close()];
  const closeAll = async (): Promise<void> => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  };
  try {
    const store = instrumentStore(raw, registry);
    const rollouts = await openRolloutStore(config, onError);
    closers.push(() => rollouts.close());
    const outcomes = await openOutcomeStore(config, onError);
    closers.push(() => outcomes.close());
    // API writes that move a flag off its running plan pause the plan; the guard writes unwrapped.
    const apiStore = pauseOnManualChange(store, rollouts, logger);
    const cache = new SnapshotCache({ store: apiStore, logger: logger.child({ component: 'snapshot-cache' }) });
    await cache.start();
    closers.push(() => cache.stop());
    const app = await buildApp({
      store: apiStore,
      cache,
      logger,
      registry,
      adminTokens: config.adminTokens,
      sdkTokens: config.sdkTokens,
      corsOrigins: config.corsOrigins,
      stream: { maxStreamsPerToken: config.maxStreamsPerToken, idleTimeoutMs: config.streamIdleTimeoutMs },
      plugins: [
        rolloutRoutes({ flags: store, rollouts, storeRedis: storeRedisUrl(config) !== undefined }),
        outcomeRoutes({ outcomes, cache, registry, limits: { batchesPerSecond: config.outcomeBatchesPerSecond, eventsPerMinute: config.outcomeEventsPerMinute } }),
        uiRoutes(),
      ],
    });
    closers.push(() => app.close());
    const address = await app.listen({ port: config.port, host: config.host });
    const guard = config.guard ? await startGuard(config, logger, { flags: store, rollouts, outcomes, registry }) : undefined;
    if (guard !== undefined) closers.push(() => guard.stop());
    log.info({ address, store: config.redisUrl === undefined ? `embedded (${config.dataDir})` : config.redisCluster ? 'redis cluster' : 'redis', revision: cache.revision, guard: config.guard }, 'rampart listening');
    if (config.adminTokens.length === 0 && isLoopbackHost(config.host)) {
      log.warn('NO TOKENS CONFIGURED: the admin API is open to anyone on this machine. Set RAMPART_ADMIN_TOKENS before exposing Rampart.');
    }
    let stopping: Promise<void> | undefined;
    return {
      app,
      url: address,
      store,
      stop() {
        stopping ??= (async () => {
          await closeAll();
          log.info('rampart stopped');
        })();
        return stopping;
      },
    };
  } catch (error) {
    await closeAll();
    throw error;
  }
}

/** A running `rampart guard` process. */
export interface RunningGuardProcess {
  /** `http://host:port` of /metrics and /healthz, when RAMPART_GUARD_METRICS_PORT is set. */
  readonly metricsUrl: string | undefined;
  stop(): Promise<void>;
}

// A bare node:http server: the worker alone needs two read-only endpoints, not the whole API.
async function serveGuardMetrics(registry: Registry, host: string, port: number): Promise<{ url: string; server: Server }> {
  const server = createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0];
    if (request.method === 'GET' && path === '/metrics') {
      response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(registry.render());
    } else if (request.method === 'GET' && path === '/healthz') {
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    } else {
      response.writeHead(404, { 'content-type': 'application/problem+json' }).end(JSON.stringify({ type: 'https://rampart.dev/problems/not-found', title: 'Not found', status: 404, detail: 'rampart guard serves /metrics and /healthz only' }));
    }
  });
  // Nothing here may wait forever: slow clients are cut off.
  server.requestTimeout = 5000;
  server.headersTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return { url: `http://${host.includes(':') ? `[${host}]` : host}:${address.port}`, server };
}

/**
 * `rampart guard`: the worker alone, on the Redis stores (REDIS_URL is required, since a
 * separate process cannot share the embedded store's folder).
 *
 * @example
 * const guard = await startGuardProcess(loadConfig(process.env), logger);
 */
export async function startGuardProcess(config: Config, logger: Logger): Promise<RunningGuardProcess> {
  const url = config.redisUrl;
  if (url === undefined) throw new ConfigError('rampart guard needs REDIS_URL: it shares the stores with rampart serve through Redis (with the embedded store, rampart serve runs the guard itself)');
  const registry = new Registry();
  const onError = storeErrorLogger(logger, 'guard');
  const flags = await openStore(config, onError);
  const rollouts = await createRedisRolloutStore({ url, cluster: config.redisCluster, prefix: config.redisPrefix });
  const outcomes = await openOutcomeStore(config, onError);
  const guard = await startGuard(config, logger, { flags, rollouts, outcomes, registry });
  const metrics = config.guardMetricsPort === undefined ? undefined : await serveGuardMetrics(registry, config.host, config.guardMetricsPort);
  logger.info({ component: 'guard', metrics: metrics?.url }, 'rampart guard started');
  return {
    metricsUrl: metrics?.url,
    async stop() {
      if (metrics !== undefined) {
        metrics.server.closeAllConnections();
        await new Promise((resolve) => metrics.server.close(resolve));
      }
      await guard.stop();
      await outcomes.close();
      await rollouts.close();
      await flags.close();
    },
  };
}
