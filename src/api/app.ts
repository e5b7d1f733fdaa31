import { SpanStatusCode } from '@opentelemetry/api';
import type { Span } from '@opentelemetry/api';
import { fastify, LogController } from 'fastify';
import type { FastifyBaseLogger, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { Registry } from '../prometheus.js';
import type { FlagStore } from '../store/flag-store.js';
import { tracer } from '../telemetry.js';
import { TokenAuthenticator } from './auth.js';
import type { TokenEntry } from './auth.js';
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
    /** performance.now() when the request arrived. */
    startedAt?: number;
    /** The matched route's pattern (`/flags/:key`) or `unmatched`: the label of its metrics. */
    routeLabel?: string;
  }
}

/**
 * Answers CORS for the browser routes: adds the headers for an allowed origin and answers a
 * preflight itself. Returns true when the reply was sent (a preflight).
 */
function applyCors(request: FastifyRequest, reply: FastifyReply, allowed: ReadonlySet<string>): boolean {
  const origin = request.headers.origin;
  if (origin === undefined || allowed.size === 0 || !BROWSER_PREFIXES.some((p) => request.url.startsWith(p))) return false;
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
    return503OnClosing: true,
    // A URL fastify cannot decode (e.g. `/flags/%ZZ`) is refused before routing; it still gets
    // a problem document like every other 4xx.
    frameworkErrors: (error, request, reply) => {
      void sendProblem(reply, problemOf(new RampartError('validation', `the URL is not valid: ${error.message}`), request.url));
    },
    forceCloseConnections: 'idle',
  });
  app.decorateRequest('startedAt', undefined);
  app.decorateRequest('routeLabel', undefined);
  app.decorateRequest('span', undefined);
  app.setValidatorCompiler(zodValidatorCompiler);
  // JSON only: a text body must be a clear 415, not a string that fails validation.
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) =>
    reply
      .code(404)
      .type('application/problem+json')
      .send(problemOf(new RampartError('not-found', `no route for ${request.method} ${request.url.split('?')[0] ?? ''}`), request.url)),
  );

  const requests = deps.registry.counter('rampart_http_requests_total', 'HTTP requests by method, route and status.');
  const durations = deps.registry.histogram('rampart_http_request_duration_seconds', 'HTTP request durations by route.', [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]);
  // Metric series per method, route and status, resolved once: a bounded set (routes are fixed,
  // Node accepts a fixed list of methods, statuses are three digits).
  const series = new Map<string, { readonly requests: { inc(): void }; readonly duration: { observe(seconds: number): void } }>();
  const seriesOf = (method: string, route: string, status: number) => {
    const key = `${method} ${route} ${status}`;
    let found = series.get(key);
    if (found === undefined) {
      found = { requests: requests.child({ method, route, status: String(status) }), duration: durations.child({ method, route }) };
      series.set(key, found);
    }
    return found;
  };
  const auth = new TokenAuthenticator({ adminTokens: deps.adminTokens, sdkTokens: deps.sdkTokens });
  const corsOrigins = new Set(deps.corsOrigins ?? []);
  const spans = tracer();

  // One synchronous hook per request and one per response: timer and span, CORS, then auth.
  // (Every hook and every promise a hook returns costs a measurable share of a cheap request.)
  app.addHook('onRequest', (request, reply, done) => {
    request.startedAt = performance.now();
    const options = request.routeOptions;
    const route = options.url ?? 'unmatched';
    request.routeLabel = route;
    request.span = spans.startSpan(`${request.method} ${route}`, {
      attributes: { 'http.request.method': request.method, 'http.route': options.url ?? '' },
    });
    try {
      if (applyCors(request, reply, corsOrigins)) return;
      // An unknown URL is a plain 404 for everyone; the route list is public in /openapi.json anyway.
      auth.authorize(request, reply, request.is404 ? 'public' : (options.config.access ?? 'admin'));
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const { statusCode } = reply;
    const { requests: count, duration } = seriesOf(request.method, request.routeLabel ?? 'unmatched', statusCode);
    count.inc();
    if (request.startedAt !== undefined) duration.observe((performance.now() - request.startedAt) / 1000);
    request.span?.setAttribute('http.response.status_code', statusCode);
    if (statusCode >= 500) request.span?.setStatus({ code: SpanStatusCode.ERROR });
    request.span?.end();
    done();
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
