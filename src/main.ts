import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from './api/app.js';
import { SnapshotCache } from './api/snapshot-cache.js';
import type { Config } from './config.js';
import { isLoopbackHost } from './config.js';
import { Registry } from './prometheus.js';
import { createEmbeddedStore } from './store/embedded-store.js';
import type { FlagStore } from './store/flag-store.js';
import { instrumentStore } from './store/instrumented-store.js';
import { createRedisStore } from './store/redis-store.js';

/** A running server and how to stop it. */
export interface RunningServer {
  readonly app: FastifyInstance;
  readonly url: string;
  readonly store: FlagStore;
  stop(): Promise<void>;
}

/** Opens the store the configuration names: Redis with REDIS_URL, else the embedded file store. */
export async function openStore(config: Config): Promise<FlagStore> {
  return config.redisUrl === undefined
    ? createEmbeddedStore({ dir: config.dataDir })
    : createRedisStore({ url: config.redisUrl, prefix: config.redisPrefix });
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
  const raw = await openStore(config);
  const store = instrumentStore(raw, registry);
  const cache = new SnapshotCache({ store, logger: logger.child({ component: 'snapshot-cache' }) });
  try {
    await cache.start();
  } catch (error) {
    await raw.close();
    throw error;
  }
  const app = await buildApp({
    store,
    cache,
    logger,
    registry,
    adminTokens: config.adminTokens,
    sdkTokens: config.sdkTokens,
    corsOrigins: config.corsOrigins,
  });
  const address = await app.listen({ port: config.port, host: config.host });
  log.info({ address, store: config.redisUrl === undefined ? `embedded (${config.dataDir})` : 'redis', revision: cache.revision }, 'rampart listening');
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
        await app.close();
        await cache.stop();
        await raw.close();
        log.info('rampart stopped');
      })();
      return stopping;
    },
  };
}
