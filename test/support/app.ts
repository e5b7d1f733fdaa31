// The HTTP app wired for tests: an embedded store in a fresh temp dir unless one is given.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from '../../src/api/app.js';
import type { AppDeps } from '../../src/api/app.js';
import { SnapshotCache } from '../../src/api/snapshot-cache.js';
import { Registry } from '../../src/prometheus.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { FlagStore } from '../../src/store/flag-store.js';
import { createLogger } from '../../src/telemetry.js';

/** Options of buildTestApp; everything AppDeps takes except the wiring it does itself. */
export interface TestAppOptions extends Partial<Pick<AppDeps, 'adminTokens' | 'sdkTokens' | 'corsOrigins' | 'stream' | 'plugins'>> {
  /** The store to serve; closed by `close()`. Default: an embedded store in a temp dir. */
  readonly store?: FlagStore;
  /** Default: a silent logger. */
  readonly logger?: Logger;
  /** Default: a fresh registry (pass one to share it with an instrumented store). */
  readonly registry?: Registry;
  /** Route plugins that need the app's own store, cache or registry (added after `plugins`). */
  readonly pluginsFor?: (deps: { readonly store: FlagStore; readonly cache: SnapshotCache; readonly registry: Registry }) => NonNullable<AppDeps['plugins']>;
}

/** A built app, its dependencies, and one call to tear it all down. */
export interface TestApp {
  readonly app: FastifyInstance;
  readonly store: FlagStore;
  readonly cache: SnapshotCache;
  readonly registry: Registry;
  /** Closes the app, the cache and the store, and removes the temp dir if one was made. */
  close(): Promise<void>;
}

/**
 * Builds the Rampart app for `app.inject` tests; no tokens means open mode.
 *
 * @example
 * const t = await buildTestApp({ adminTokens: [{ name: 'ops', secret: 'admin-secret' }] });
 * const res = await t.app.inject({ method: 'GET', url: '/flags', headers: { authorization: 'Bearer admin-secret' } });
 * await t.close();
 */
export async function buildTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  const dir = options.store === undefined ? await mkdtemp(join(tmpdir(), 'rampart-api-')) : undefined;
  const store = options.store ?? (await createEmbeddedStore({ dir: dir ?? '' }));
  const logger = options.logger ?? createLogger('silent');
  const registry = options.registry ?? new Registry();
  const cache = new SnapshotCache({ store, logger });
  let app: FastifyInstance | undefined;
  const close = async (): Promise<void> => {
    try {
      await app?.close();
      await cache.stop();
      await store.close();
    } finally {
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    await cache.start();
    app = await buildApp({
      store,
      cache,
      logger,
      registry,
      adminTokens: options.adminTokens ?? [],
      sdkTokens: options.sdkTokens ?? [],
      ...(options.corsOrigins === undefined ? {} : { corsOrigins: options.corsOrigins }),
      ...(options.stream === undefined ? {} : { stream: options.stream }),
      plugins: [...(options.plugins ?? []), ...(options.pluginsFor?.({ store, cache, registry }) ?? [])],
    });
    await app.ready();
  } catch (error) {
    await close();
    throw error;
  }
  return { app, store, cache, registry, close };
}
