// Rampart demo service: processes "reports" synchronously, or asynchronously through a Redis list
// and an in-process worker when `async-reports` is on for the user. It exists so that the runbooks
// in docs/runbooks can be run (and tested) against real metrics: outcomes through the SDK's
// track(), queue depth as a real LLEN, Prometheus metrics labelled by cohort, and /stats JSON.
//
// Plain JavaScript on purpose: the Docker `demo` target runs it with plain `node` against the built
// SDK, and scripts/stack.sh runs it with `--conditions=rampart-source --import tsx` against the
// SDK's sources. Both resolve `@rampart/sdk` through the workspace link.
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import { clearInterval, setInterval, setTimeout } from 'node:timers';
import { createClient } from '@rampart/sdk';
import { Redis } from 'ioredis';

const env = process.env;

/** A number from the environment, or `fallback` when unset; anything else stops the start. */
function numberFrom(name, fallback, min, max) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) throw new Error(`${name} must be a number from ${min} to ${max}, got '${raw}'`);
  return value;
}

const config = Object.freeze({
  port: numberFrom('PORT', 3000, 0, 65535),
  // The Docker image sets HOST=0.0.0.0; natively the demo stays on loopback (its admin routes are open).
  host: env.HOST ?? '127.0.0.1',
  rampartUrl: env.RAMPART_URL ?? 'http://127.0.0.1:8080',
  sdkToken: env.RAMPART_SDK_TOKEN === '' ? undefined : env.RAMPART_SDK_TOKEN,
  // scripts/stack.sh's Redis (REDIS_PORT, default 6390) unless REDIS_URL says otherwise.
  redisUrl: env.REDIS_URL ?? `redis://127.0.0.1:${env.REDIS_PORT ?? '6390'}`,
  flag: env.DEMO_FLAG ?? 'async-reports',
  queueKey: env.DEMO_QUEUE_KEY ?? 'celery:reports',
  workerPaused: env.DEMO_WORKER_PAUSED === '1' || env.DEMO_WORKER_PAUSED === 'true',
  workerConcurrency: numberFrom('DEMO_WORKER_CONCURRENCY', 8, 1, 256),
  faults: {
    asyncErrorRate: numberFrom('DEMO_ASYNC_ERROR_RATE', 0, 0, 1),
    syncErrorRate: numberFrom('DEMO_SYNC_ERROR_RATE', 0, 0, 1),
    asyncWorkMs: numberFrom('DEMO_ASYNC_WORK_MS', 10, 0, 60_000),
    syncWorkMs: numberFrom('DEMO_SYNC_WORK_MS', 20, 0, 60_000),
  },
});

const log = (level, msg, fields = {}) => {
  process.stdout.write(`${JSON.stringify({ level, time: new Date().toISOString(), component: 'demo', msg, ...fields })}\n`);
};
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Metrics: a tiny Prometheus text exposition (no client library in the image).

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
const reportsTotal = new Map(); // `${cohort}|${outcome}` -> count
const httpTotal = new Map(); // `${route}|${code}` -> count
const jobSeconds = { on: newHistogram(), off: newHistogram() };

function newHistogram() {
  return { counts: BUCKETS.map(() => 0), count: 0, sum: 0 };
}
function observe(cohort, seconds) {
  const h = jobSeconds[cohort];
  h.count += 1;
  h.sum += seconds;
  for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]) h.counts[i] += 1;
}
const increment = (map, key) => map.set(key, (map.get(key) ?? 0) + 1);

// The last 60 one-second slots of outcomes, for /stats' error rate.
const WINDOW_SLOTS = 60;
const slots = Array.from({ length: WINDOW_SLOTS }, () => ({ second: -1, ok: 0, failed: 0 }));
function recordOutcome(ok) {
  const second = Math.floor(Date.now() / 1000);
  const slot = slots[second % WINDOW_SLOTS];
  if (slot.second !== second) Object.assign(slot, { second, ok: 0, failed: 0 });
  if (ok) slot.ok += 1;
  else slot.failed += 1;
}
function windowCounts() {
  const now = Math.floor(Date.now() / 1000);
  let ok = 0;
  let failed = 0;
  for (const slot of slots) {
    if (now - slot.second < WINDOW_SLOTS) {
      ok += slot.ok;
      failed += slot.failed;
    }
  }
  return { ok, failed };
}

/** Counts a finished report everywhere it is reported: metrics, /stats and the SDK's outcomes. */
function finish(cohort, userId, ok, startedAtMs) {
  const latencyMs = Math.max(0, Date.now() - startedAtMs);
  increment(reportsTotal, `${cohort}|${ok ? 'ok' : 'failed'}`);
  observe(cohort, latencyMs / 1000);
  recordOutcome(ok);
  client.track(config.flag, userId, { ok, latencyMs });
}

// ---------------------------------------------------------------------------------------------
// Flags, Redis and the worker.

const client = createClient({ url: config.rampartUrl, ...(config.sdkToken === undefined ? {} : { token: config.sdkToken }) });
client.on('change', ({ flags, revision }) => log('info', 'flags changed', { flags, revision }));
client.on('stale', ({ since }) => log('warn', 'flag server unreachable; using last good flags', { since }));

// Every Redis call has a timeout; the worker has its own connection because BLPOP blocks it.
const redisOptions = { commandTimeout: 3000, maxRetriesPerRequest: 1, lazyConnect: false };
const redis = new Redis(config.redisUrl, redisOptions);
const workerRedis = new Redis(config.redisUrl, { ...redisOptions, commandTimeout: 5000 });
// One line per outage, not one per reconnect attempt.
for (const [name, connection] of [['redis', redis], ['worker', workerRedis]]) {
  let down = false;
  connection.on('error', (error) => {
    if (!down) log('warn', 'redis unavailable; retrying', { connection: name, error: error.message });
    down = true;
  });
  connection.on('ready', () => {
    if (down) log('info', 'redis back', { connection: name });
    down = false;
  });
}

const faults = { ...config.faults };
let workerPaused = config.workerPaused;
let stopping = false;
let inFlight = 0;
let lastQueueDepth = 0;

async function queueDepth() {
  lastQueueDepth = await redis.llen(config.queueKey);
  return lastQueueDepth;
}

async function runJob(raw) {
  inFlight += 1;
  try {
    const job = JSON.parse(raw);
    await sleep(faults.asyncWorkMs);
    finish('on', String(job.userId), Math.random() >= faults.asyncErrorRate, Number(job.enqueuedAt));
  } catch (error) {
    log('warn', 'bad job', { error: error instanceof Error ? error.message : String(error) });
  } finally {
    inFlight -= 1;
  }
}

/** Pops jobs while not paused, at most `workerConcurrency` running at once. */
async function workerLoop() {
  while (!stopping) {
    if (workerPaused || inFlight >= config.workerConcurrency) {
      await sleep(workerPaused ? 100 : 5);
      continue;
    }
    try {
      const popped = await workerRedis.blpop(config.queueKey, 1);
      if (popped !== null) void runJob(popped[1]);
    } catch (error) {
      if (!stopping) {
        log('warn', 'worker pop failed', { error: error instanceof Error ? error.message : String(error) });
        await sleep(500);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// HTTP.

function send(res, route, status, body, type = 'application/json') {
  increment(httpTotal, `${route}|${status}`);
  res.writeHead(status, { 'content-type': type });
  res.end(type === 'application/json' ? JSON.stringify(body) : body);
}

async function handleReport(url, res) {
  const userId = url.searchParams.get('user');
  if (userId === null || userId === '') return send(res, '/reports', 400, { error: 'query parameter user is required' });
  const startedAt = Date.now();
  if (client.isEnabled(config.flag, userId)) {
    try {
      await redis.rpush(config.queueKey, JSON.stringify({ userId, enqueuedAt: startedAt }));
    } catch (error) {
      finish('on', userId, false, startedAt);
      return send(res, '/reports', 503, { mode: 'async', cohort: 'on', ok: false, error: error instanceof Error ? error.message : String(error) });
    }
    return send(res, '/reports', 202, { mode: 'async', cohort: 'on' });
  }
  await sleep(faults.syncWorkMs);
  const ok = Math.random() >= faults.syncErrorRate;
  finish('off', userId, ok, startedAt);
  return send(res, '/reports', ok ? 200 : 500, { mode: 'sync', cohort: 'off', ok });
}

function metricsText() {
  const lines = [
    '# HELP demo_reports_total Reports finished, by cohort (on: async, off: sync) and outcome.',
    '# TYPE demo_reports_total counter',
  ];
  for (const [key, value] of reportsTotal) {
    const [cohort, outcome] = key.split('|');
    lines.push(`demo_reports_total{cohort="${cohort}",outcome="${outcome}"} ${value}`);
  }
  lines.push('# HELP job_seconds Time from request to finished report (async: including the queue wait).', '# TYPE job_seconds histogram');
  for (const [cohort, h] of Object.entries(jobSeconds)) {
    BUCKETS.forEach((le, i) => lines.push(`job_seconds_bucket{cohort="${cohort}",le="${le}"} ${h.counts[i]}`));
    lines.push(`job_seconds_bucket{cohort="${cohort}",le="+Inf"} ${h.count}`, `job_seconds_sum{cohort="${cohort}"} ${h.sum}`, `job_seconds_count{cohort="${cohort}"} ${h.count}`);
  }
  lines.push('# HELP demo_http_requests_total HTTP requests answered, by route and status code.', '# TYPE demo_http_requests_total counter');
  for (const [key, value] of httpTotal) {
    const [route, code] = key.split('|');
    lines.push(`demo_http_requests_total{route="${route}",code="${code}"} ${value}`);
  }
  lines.push(
    '# HELP demo_queue_depth Jobs waiting in the Redis list (LLEN at the last scrape).',
    '# TYPE demo_queue_depth gauge',
    `demo_queue_depth ${lastQueueDepth}`,
    '# HELP demo_worker_paused 1 while the worker is paused.',
    '# TYPE demo_worker_paused gauge',
    `demo_worker_paused ${workerPaused ? 1 : 0}`,
    '',
  );
  return lines.join('\n');
}

async function handle(req, res) {
  const url = new URL(req.url ?? '/', 'http://demo.local');
  const route = `${req.method ?? 'GET'} ${url.pathname}`;
  switch (route) {
    case 'GET /healthz':
      return send(res, '/healthz', 200, { ok: true, flags: client.status, revision: client.revision });
    case 'POST /reports':
    case 'GET /reports':
      return handleReport(url, res);
    case 'GET /metrics':
      await queueDepth().catch(() => undefined);
      return send(res, '/metrics', 200, metricsText(), 'text/plain; version=0.0.4');
    case 'GET /stats': {
      const { ok, failed } = windowCounts();
      const depth = await queueDepth().catch(() => null);
      return send(res, '/stats', 200, {
        flag: config.flag,
        errorRate: ok + failed === 0 ? 0 : failed / (ok + failed),
        reports: ok + failed,
        queueDepth: depth,
        workerPaused,
        inFlight,
        faults,
      });
    }
    case 'POST /admin/worker': {
      const paused = url.searchParams.get('paused');
      if (paused !== 'true' && paused !== 'false') return send(res, '/admin', 400, { error: 'paused must be true or false' });
      workerPaused = paused === 'true';
      log('info', workerPaused ? 'worker paused' : 'worker resumed');
      return send(res, '/admin', 200, { workerPaused });
    }
    case 'POST /admin/faults': {
      const names = { asyncErrorRate: [0, 1], syncErrorRate: [0, 1], asyncWorkMs: [0, 60_000], syncWorkMs: [0, 60_000] };
      const next = { ...faults };
      for (const [name, [min, max]] of Object.entries(names)) {
        const raw = url.searchParams.get(name);
        if (raw === null) continue;
        const value = Number(raw);
        if (raw === '' || !Number.isFinite(value) || value < min || value > max) return send(res, '/admin', 400, { error: `${name} must be from ${min} to ${max}` });
        next[name] = value;
      }
      Object.assign(faults, next);
      log('info', 'faults set', { faults });
      return send(res, '/admin', 200, { faults });
    }
    default:
      return send(res, 'other', 404, { error: `no route ${route}` });
  }
}

const server = createServer((req, res) => {
  handle(req, res).catch((error) => {
    log('error', 'request failed', { error: error instanceof Error ? error.message : String(error) });
    if (!res.headersSent) send(res, 'other', 500, { error: 'internal error' });
  });
});
// Longer than the load script's (undici's) idle keep-alive, so the server never closes a socket a request is racing onto.
server.keepAliveTimeout = 65_000;

const started = performance.now();
await client.ready({ timeoutMs: 5000 }).catch((error) => log('warn', 'flags not loaded yet: defaults apply', { error: error instanceof Error ? error.message : String(error) }));
await new Promise((resolve) => server.listen(config.port, config.host, resolve));
const worker = workerLoop();
const depthPoll = setInterval(() => void queueDepth().catch(() => undefined), 1000);
log('info', 'demo service listening', {
  url: `http://${config.host}:${server.address().port}`,
  rampart: config.rampartUrl,
  queue: config.queueKey,
  workerPaused,
  startMs: Math.round(performance.now() - started),
});

async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  log('info', 'shutting down', { signal });
  clearInterval(depthPoll);
  server.close();
  server.closeAllConnections();
  // Disconnecting ends a pending BLPOP at once; jobs already popped finish (and are tracked).
  workerRedis.disconnect();
  await Promise.race([worker, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
  while (inFlight > 0) await sleep(10);
  await client.close().catch(() => undefined);
  redis.disconnect();
}
process.once('SIGTERM', () => void shutdown('SIGTERM'));
process.once('SIGINT', () => void shutdown('SIGINT'));
