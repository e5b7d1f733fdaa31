import { SpanStatusCode } from '@opentelemetry/api';
import type { Span } from '@opentelemetry/api';
import { fastify, LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from '../prometheus.js';
import type { FlagStore } from '../store/flag-store.js';
import { tracer } from '../telemetry.js';
import { TokenAuthenticator } from './auth.js';
import type { Access, TokenEntry } from './auth.js';
import { loadOpenApi } from './openapi.js';
import { errorHandler, problemOf, sendProblem } from './problem.js';
import { flagRoutes } from './routes/flags.js';
import { healthRoutes } from './routes/health.js';
import { ofrepRoutes } from './routes/ofrep.js';
import { sdkRoutes } from './routes/sdk.js';
import { registerFlagGauges } from './server-metrics.js';
import type { StreamOptions } from './routes/sdk.js';
import type { SnapshotCache } from './snapshot-cache.js';
import { zodValidatorCompiler } from './validation.js';
import { RampartError } from '../core/errors.js';

/** Everything the HTTP app needs; the composition root builds these. */
export interface AppDeps {
  readonly store: FlagStore;
  readonly cache: SnapshotCache;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly adminTokens: readonly TokenEntry[];
  readonly sdkTokens: readonly TokenEntry[];
  readonly corsOrigins?: readonly string[];
  readonly stream?: StreamOptions;
  /** Extra route plugins (rollouts, outcomes) registered after the core ones. */
  readonly plugins?: readonly ((app: FastifyInstance) => Promise<void>)[];
}

/** Request bodies are limited to 1 MiB; larger ones get 413. */
export const BODY_LIMIT = 1024 * 1024;

const BROWSER_PREFIXES = ['/sdk/', '/ofrep/'];

declare module 'fastify' {
  interface FastifyRequest {
    span?: Span;
  }
}

/** A route option's hooks as a list (fastify takes one function or an array). */
function hooksOf<T>(hooks: T | readonly T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? [...(hooks as readonly T[])] : [hooks as T];
}

/**
 * Answers CORS on a browser route (one under BROWSER_PREFIXES, chosen when the route is
 * registered): adds the headers for an allowed origin and answers a preflight itself. Returns
 * true when the reply was sent (a preflight).
 */
function applyCors(request: FastifyRequest, reply: FastifyReply, allowed: ReadonlySet<string>): boolean {
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  if (!allowed.has(origin) && !allowed.has('*')) return false;
  void reply
    .header('access-control-allow-origin', origin)
    .header('vary', 'Origin')
    .header('access-control-expose-headers', 'ETag, Retry-After');
  if (request.method !== 'OPTIONS') return false;
  void reply
    .code(204)
    .header('access-control-allow-methods', 'GET, POST, OPTIONS')
    .header('access-control-allow-headers', 'Authorization, Content-Type, If-None-Match, Last-Event-ID')
    .header('access-control-max-age', '600')
    .send();
  return true;
}

/**
 * Builds the Rampart HTTP app from its dependencies; only `main` listens.
 *
 * @example
 * const app = await buildApp(deps);
 * const res = await app.inject({ method: 'GET', url: '/flags' });
 */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = fastify({
    // pino's Logger and Fastify's base logger differ only in generics; the cast keeps the app's type plain.
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion
    loggerInstance: deps.logger.child({ component: 'api' }) as FastifyBaseLogger,
    bodyLimit: BODY_LIMIT,
    // Above any URL Node accepts, so an over-long key always gets our 400 problem, never a bare 414.
    routerOptions: { maxParamLength: 16_384 },
    // Per-request lines would drown the change log; metrics and spans cover requests.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (it costs a measurable share of a cheap request): the few lines
    // logged while serving one carry its id themselves (see errorHandler).
    childLoggerFactory: (logger) => logger,
    return503OnClosing: true,
    // A URL fastify cannot decode (e.g. `/flags/%ZZ`) is refused before routing; it still gets
    // a problem document like every other 4xx.
    frameworkErrors: (error, request, reply) => {
      recordUnmatched(request.method, reply);
      void sendProblem(reply, problemOf(new RampartError('validation', `the URL is not valid: ${error.message}`), request.url));
    },
    forceCloseConnections: 'idle',
  });
  app.decorateRequest('span', undefined);
  app.setValidatorCompiler(zodValidatorCompiler);
  // JSON only: a text body must be a clear 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler);

  const requests = deps.registry.counter('rampart_http_requests_total', 'HTTP requests by method, route and status.');
  const durations = deps.registry.histogram('rampart_http_request_duration_seconds', 'HTTP request durations by route.', [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  const auth = new TokenAuthenticator({ adminTokens: deps.adminTokens, sdkTokens: deps.sdkTokens });
  const corsOrigins = new Set(deps.corsOrigins ?? []);
  const spans = tracer();

  /** The request counter of one method and route, per status, and its duration histogram. */
  const metricsFor = (method: string, route: string) => {
    const byStatus = new Map<number, { inc(): void }>();
    const duration = durations.child({ method, route });
    return (reply: FastifyReply): void => {
      const status = reply.statusCode;
      let count = byStatus.get(status);
      if (count === undefined) {
        count = requests.child({ method, route, status: String(status) });
        byStatus.set(status, count);
      }
      count.inc();
      duration.observe(reply.elapsedTime / 1000);
    };
  };

  // Hooks are attached to each route as it is registered, with its label, span name, access rule
  // and metric series fixed then: a request pays for no lookup of them, and for one synchronous
  // hook each way (every hook, and every promise a hook returns, is a measurable share of a cheap
  // request).
  app.addHook('onRoute', (route) => {
    const method = Array.isArray(route.method) ? route.method.join(',') : route.method;
    const { url } = route;
    const access: Access = route.config?.access ?? 'admin';
    const browser = corsOrigins.size > 0 && BROWSER_PREFIXES.some((p) => url.startsWith(p));
    const spanName = `${method} ${url}`;
    const attributes = { 'http.request.method': method, 'http.route': url };
    const record = metricsFor(method, url);
    const onRequest = (request: FastifyRequest, reply: FastifyReply, done: (error?: Error) => void): void => {
      request.span = spans.startSpan(spanName, { attributes });
      try {
        if (browser && applyCors(request, reply, corsOrigins)) return;
        auth.authorize(request, reply, access);
      } catch (error) {
        done(error as Error);
        return;
      }
      done();
    };
    const onResponse = (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
      record(reply);
      request.span?.setAttribute('http.response.status_code', reply.statusCode);
      if (reply.statusCode >= 500) request.span?.setStatus({ code: SpanStatusCode.ERROR });
      request.span?.end();
      done();
    };
    route.onRequest = [onRequest, ...hooksOf(route.onRequest)];
    route.onResponse = [...hooksOf(route.onResponse), onResponse];
  });

  // An unknown URL is a plain 404 for everyone (the route list is public in /openapi.json anyway);
  // it is counted under route `unmatched`, as is a URL fastify cannot decode.
  const unmatched = new Map<string, (reply: FastifyReply) => void>();
  const recordUnmatched = (method: string, reply: FastifyReply): void => {
    let record = unmatched.get(method);
    if (record === undefined) {
      record = metricsFor(method, 'unmatched');
      unmatched.set(method, record);
    }
    reply.raw.once('finish', () => {
      record(reply);
    });
  };
  app.setNotFoundHandler((request, reply) => {
    recordUnmatched(request.method, reply);
    return reply
      .code(404)
      .type('application/problem+json')
      .send(problemOf(new RampartError('not-found', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`), request.url));
  });

  for (const prefix of ['/sdk/*', '/ofrep/*']) {
    // Preflights are answered by the CORS hook; this route only exists so they are not 404s.
    app.options(prefix, { config: { access: 'public' } }, async (_request, reply) => reply.code(204).send());
  }

  const openapi = loadOpenApi();
  app.get('/openapi.json', { config: { access: 'public' } }, async () => openapi);

  await app.register(healthRoutes(deps.store, deps.cache, deps.registry));
  await app.register(flagRoutes(deps.store, deps.logger.child({ component: 'audit' })));
  registerFlagGauges(deps.registry, deps.cache);
  const subscribers = deps.registry.gauge('rampart_stream_subscribers', 'Open SDK event streams.');
  subscribers.set({}, 0);
  await app.register(sdkRoutes(deps.cache, { ...deps.stream, subscribers }));
  await app.register(ofrepRoutes(deps.cache));
  for (const plugin of deps.plugins ?? []) await app.register(plugin);
  return app;
}
