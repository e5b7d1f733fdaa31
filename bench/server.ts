/**
 * Server benchmark: `rampart serve` (a real child process) against a bare fastify server (another
 * child process) that answers the same routes with the same bytes, both loaded by autocannon in
 * the same run; reported as ratios rampart/bare. Then admin PATCH throughput and sequential write
 * latency on Redis and on the embedded store.
 *
 * Run: npm run bench:server [-- --store redis] [-- --rounds 5] [-- --duration 2] [-- --connections 50]
 * (`node --import tsx bench/server.ts`). See bench/README.md.
 * Exit code: 0 all good; 1 unexpected status codes, errors or different bytes; 3 a ratio below 0.8.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { startRedisServer } from '../test/support/redis-server.js';
import type { RedisServer } from '../test/support/redis-server.js';
import { buildDist, startServerProcess, TS_NODE_ARGS } from '../test/support/server-process.js';
import type { ServerProcess } from '../test/support/server-process.js';
import { autocannon } from './autocannon.js';
import type { AutocannonRequest } from './autocannon.js';
import { fmtInt, fmtRatio, median, table } from './measure.js';


/**
 * CPU time (user + system, ms) a process has used, from /proc/<pid>/stat; NaN off Linux. CPU per
 * request barely moves when other processes load the machine, unlike requests per second.
 */
function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of those.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}
/**
 * Pins `servers` to the last CPU and this process to the others with taskset; returns what was
 * done, or undefined when it could not be (one CPU, no taskset).
 */
function pinCpus(servers: readonly (number | undefined)[]): string | undefined {
  const count = cpus().length;
  if (count < 2) return undefined;
  const last = String(count - 1);
  const rest = count === 2 ? '0' : `0-${count - 2}`;
  try {
    for (const pid of servers) if (pid !== undefined) execFileSync('taskset', ['-a', '-cp', last, String(pid)], { stdio: 'ignore' });
    execFileSync('taskset', ['-a', '-cp', rest, String(process.pid)], { stdio: 'ignore' });
    return `CPU pinning: both servers on CPU ${last}, the load generator on CPU ${rest}`;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux Node supports. */
const CLOCK_TICKS_PER_SECOND = 100;

/** What the bare server answers: the bytes Rampart sent, with its content type and ETag. */
interface Canned {
  body: string;
  contentType: string;
  etag: string | null;
}
interface CannedSet {
  flags: Canned;
  single: Canned;
  bulk: Canned;
}

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'embedded' },
    flags: { type: 'string', default: '50' },
    connections: { type: 'string', default: '50' },
    duration: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1' },
    'write-samples': { type: 'string', default: '300' },
    'bare-child': { type: 'string' },
  },
});

// ---- Child mode: the bare fastify server. -------------------------------------------------------
if (values['bare-child'] !== undefined) {
  const canned = JSON.parse(readFileSync(values['bare-child'], 'utf8')) as CannedSet;
  const app = Fastify({ logger: false });
  app.get('/sdk/v1/flags', async (request, reply) => {
    const tag = canned.flags.etag ?? '';
    void reply.header('etag', tag).header('cache-control', 'no-cache');
    if (request.headers['if-none-match'] === tag) return reply.code(304).send();
    return reply.type(canned.flags.contentType).send(canned.flags.body);
  });
  app.post('/ofrep/v1/evaluate/flags/:key', async (_request, reply) => reply.type(canned.single.contentType).send(canned.single.body));
  app.post('/ofrep/v1/evaluate/flags', async (_request, reply) => {
    if (canned.bulk.etag !== null) void reply.header('etag', canned.bulk.etag);
    return reply.type(canned.bulk.contentType).send(canned.bulk.body);
  });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  console.log(`LISTENING ${address}`);
  process.once('SIGTERM', () => void app.close().then(() => process.exit(0)));
} else {
  await main();
}

async function main(): Promise<void> {
  // Rampart runs as users run it (`npm start`): the esbuild bundle in dist/, built now from the sources.
  buildDist();
  const STORE = values.store === 'redis' ? 'redis' : 'embedded';
  const FLAGS = Number(values.flags);
  const CONNECTIONS = Number(values.connections);
  const DURATION = Number(values.duration);
  const ROUNDS = Math.max(1, Number(values.rounds));
  const WARMUP = Number(values.warmup);
  const WRITE_SAMPLES = Number(values['write-samples']);
  const GOAL = 0.8;
  const SDK_TOKEN = 'bench-sdk';
  const ADMIN_TOKEN = 'bench-admin';
  const ofrepBody = JSON.stringify({ context: { targetingKey: 'user-42', plan: 'pro' } });
  const sdkHeaders = { authorization: `Bearer ${SDK_TOKEN}` };
  const ofrepHeaders = { ...sdkHeaders, 'content-type': 'application/json' };
  const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' };

  console.log('Rampart server benchmark');
  console.log(`node ${process.version} ${process.platform}/${process.arch}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'})`);
  console.log(`autocannon: ${CONNECTIONS} connections, ${ROUNDS} rounds of ${DURATION} s per server per route after ${WARMUP} s warm-up, loopback; ${FLAGS} flags\n`);

  const failures: { code: number; message: string }[] = [];
  const fail = (code: number, message: string): void => {
    failures.push({ code, message });
    console.log(`  FAIL: ${message}`);
  };
  const dirs: string[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];

  let redis: RedisServer | undefined;
  const redisUrl = async (): Promise<string> => {
    if (process.env.REDIS_URL) return process.env.REDIS_URL;
    if (redis === undefined) {
      redis = await startRedisServer();
      const started = redis;
      cleanups.push(() => started.stop());
    }
    return redis.url;
  };
  const startRampart = async (store: 'redis' | 'embedded'): Promise<ServerProcess> => {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-server-'));
    dirs.push(dir);
    const server = await startServerProcess({
      ...(store === 'redis' ? { REDIS_URL: await redisUrl(), RAMPART_REDIS_PREFIX: `bench-server:${process.pid}:` } : {}),
      RAMPART_DATA_DIR: dir,
      RAMPART_GUARD: 'off',
      RAMPART_ADMIN_TOKENS: `ops:${ADMIN_TOKEN}`,
      RAMPART_SDK_TOKENS: `bench:${SDK_TOKEN}`,
      LOG_LEVEL: 'warn',
    }, 15_000, { dist: true });
    cleanups.push(() => server.stop());
    return server;
  };
  const call = async (url: string, init: RequestInit): Promise<Response> => {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url}: ${res.status} ${await res.text()}`);
    return res;
  };
  const putFlags = async (server: ServerProcess): Promise<void> => {
    for (let i = 0; i < FLAGS; i++) {
      const body = { enabled: i % 5 !== 0, percentage: (i * 7) % 100, description: `bench flag ${i}` };
      await call(`${server.url}/flags/flag-${i}`, { method: 'PUT', headers: adminHeaders, body: JSON.stringify(body) });
    }
  };
  const canned = async (res: Response): Promise<Canned> => ({
    body: await res.text(),
    contentType: res.headers.get('content-type') ?? 'application/json',
    etag: res.headers.get('etag'),
  });

  interface Run {
    reqPerSec: number;
    p50: number;
    p99: number;
    total: number;
    statuses: Record<string, number>;
    errors: number;
    /** CPU time (user + system) the server process spent per request, in microseconds. */
    cpuUsPerRequest: number;
  }
  const load = async (url: string, request: AutocannonRequest, expected: number, label: string, warmup = true, pid?: number): Promise<Run> => {
    const options = { url, connections: CONNECTIONS, timeout: 10, requests: [request] };
    if (warmup && WARMUP > 0) await autocannon({ ...options, duration: WARMUP });
    const cpuBefore = cpuMsOf(pid);
    const r = await autocannon({ ...options, duration: DURATION });
    const cpuUsPerRequest = ((cpuMsOf(pid) - cpuBefore) * 1000) / Math.max(1, r.requests.total);
    const statuses = Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, s]) => [code, s?.count ?? 0]));
    const unexpected = Object.entries(statuses).filter(([code]) => Number(code) !== expected);
    if (r.errors > 0 || unexpected.length > 0 || r.requests.total === 0) {
      fail(1, `${label}: ${r.errors} errors (${r.timeouts} timeouts), statuses ${JSON.stringify(statuses)}, expected only ${expected}`);
    }
    return { reqPerSec: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, total: r.requests.total, statuses, errors: r.errors, cpuUsPerRequest };
  };
  const fmtRps = (n: number): string => fmtInt(Math.round(n));
  const fmtMs = (n: number): string => `${n.toFixed(n < 10 ? 2 : 1)} ms`;
  const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;

  let bare: ChildProcess | undefined;
  const results: Record<string, unknown> = {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    options: { store: STORE, flags: FLAGS, connections: CONNECTIONS, durationS: DURATION, rounds: ROUNDS, warmupS: WARMUP, writeSamples: WRITE_SAMPLES, goal: GOAL },
  };
  try {
    // ---- Reads: Rampart vs bare fastify with the same bytes. -----------------------------------
    const rampart = await startRampart(STORE);
    await putFlags(rampart);
    const flagsRes = await canned(await call(`${rampart.url}/sdk/v1/flags`, { headers: sdkHeaders }));
    const single = await canned(await call(`${rampart.url}/ofrep/v1/evaluate/flags/flag-7`, { method: 'POST', headers: ofrepHeaders, body: ofrepBody }));
    const bulk = await canned(await call(`${rampart.url}/ofrep/v1/evaluate/flags`, { method: 'POST', headers: ofrepHeaders, body: ofrepBody }));
    const cannedSet: CannedSet = { flags: flagsRes, single, bulk };
    const cannedDir = mkdtempSync(join(tmpdir(), 'rampart-bench-bare-'));
    dirs.push(cannedDir);
    const cannedFile = join(cannedDir, 'canned.json');
    writeFileSync(cannedFile, JSON.stringify(cannedSet));

    const child = spawn(process.execPath, [...TS_NODE_ARGS, fileURLToPath(import.meta.url), '--bare-child', cannedFile], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    bare = child;
    const bareUrl = await new Promise<string>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => { reject(new Error(`bare server did not start within 15 s: ${out}`)); }, 15_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const match = /LISTENING (\S+)/.exec(out);
        if (match?.[1] !== undefined) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      });
      child.once('exit', (code) => { reject(new Error(`bare server exited with ${code}: ${out}`)); });
    });

    // On a machine with more than one core, the servers share the last core and the load
    // generator (this process) keeps the others: they no longer take turns on the same core,
    // which moved the ratios by 0.3 from run to run. Off Linux, or without taskset, nothing moves.
    const pinned = pinCpus([rampart.process.pid, child.pid]);
    if (pinned !== undefined) console.log(pinned);

    // Same bytes, same content type from both servers.
    for (const [name, path, init] of [
      ['flags', '/sdk/v1/flags', { headers: sdkHeaders }],
      ['single', '/ofrep/v1/evaluate/flags/flag-7', { method: 'POST', headers: ofrepHeaders, body: ofrepBody }],
      ['bulk', '/ofrep/v1/evaluate/flags', { method: 'POST', headers: ofrepHeaders, body: ofrepBody }],
    ] as const) {
      const a = await canned(await call(`${rampart.url}${path}`, init));
      const b = await canned(await call(`${bareUrl}${path}`, init));
      if (a.body !== b.body || a.contentType !== b.contentType) fail(1, `${name}: bare server does not answer the same bytes as Rampart`);
    }
    console.log(`rampart serve (${STORE} store, SDK token auth) at ${rampart.url}; bare fastify at ${bareUrl}`);
    console.log(
      `bytes: snapshot ${fmtInt(flagsRes.body.length)} B (ETag ${flagsRes.etag ?? '-'}), OFREP single ${fmtInt(single.body.length)} B, OFREP bulk ${fmtInt(bulk.body.length)} B; same bytes from both: ${failures.length === 0 ? 'yes' : 'NO'}\n`,
    );

    let distinctUsers = 0;
    const scenarios: { name: string; request: AutocannonRequest; expected: number; inGoal?: boolean }[] = [
      { name: 'GET /sdk/v1/flags (200)', request: { method: 'GET', path: '/sdk/v1/flags', headers: sdkHeaders }, expected: 200 },
      { name: 'GET /sdk/v1/flags If-None-Match (304)', request: { method: 'GET', path: '/sdk/v1/flags', headers: { ...sdkHeaders, 'if-none-match': flagsRes.etag ?? '' } }, expected: 304 },
      { name: 'POST /ofrep/v1/evaluate/flags/:key', request: { method: 'POST', path: '/ofrep/v1/evaluate/flags/flag-7', headers: ofrepHeaders, body: ofrepBody }, expected: 200 },
      { name: 'POST /ofrep/v1/evaluate/flags (bulk)', request: { method: 'POST', path: '/ofrep/v1/evaluate/flags', headers: ofrepHeaders, body: ofrepBody }, expected: 200 },
      // Every request a user never seen before: no recent answer to reuse, 50 evaluations each.
      // (The bare server still answers its prepared bytes, so this ratio is the evaluation's cost.)
      {
        name: 'POST /ofrep/v1/evaluate/flags (bulk, new user each time)',
        request: {
          method: 'POST',
          path: '/ofrep/v1/evaluate/flags',
          headers: ofrepHeaders,
          setupRequest: (request) => ({ ...request, body: JSON.stringify({ context: { targetingKey: `user-${distinctUsers++}`, plan: 'pro' } }) }),
        },
        expected: 200,
        // Beside the goal, not in it: the goal compares answers of the same bytes for the same request.
        inGoal: false,
      },
    ];
    // Each route runs in ROUNDS short rounds, rampart and bare back to back (the order alternating
    // per round); the verdict is the median of the per-round ratios, so a burst of load from
    // another process on a shared machine spoils one round, not the result.
    // Beside it, the CPU ratio: bare's CPU time per request over Rampart's (1.0 = as cheap as bare),
    // which other processes on the machine disturb far less than throughput.
    const reads: { route: string; rampart: Run; bare: Run; ratio: number; ratios: number[]; cpuRatio: number; inGoal: boolean; pass: boolean }[] = [];
    for (const s of scenarios) {
      const rounds: { rampart: Run; bare: Run; ratio: number }[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? (['rampart', 'bare'] as const) : (['bare', 'rampart'] as const);
        const runs: Partial<Record<'rampart' | 'bare', Run>> = {};
        for (const who of order) runs[who] = await load(who === 'rampart' ? rampart.url : bareUrl, s.request, s.expected, `${s.name} (${who})`, round === 0, who === 'rampart' ? rampart.process.pid : child.pid);
        const r = runs.rampart!;
        const b = runs.bare!;
        rounds.push({ rampart: r, bare: b, ratio: r.reqPerSec / b.reqPerSec });
      }
      const ratios = rounds.map((r) => r.ratio);
      const ratio = median(ratios);
      const cpuRatio = median(rounds.map((r) => r.bare.cpuUsPerRequest / r.rampart.cpuUsPerRequest));
      // The round whose ratio is the median stands for the route in the table.
      const typical = rounds.reduce((best, r) => (Math.abs(r.ratio - ratio) < Math.abs(best.ratio - ratio) ? r : best));
      reads.push({ route: s.name, rampart: typical.rampart, bare: typical.bare, ratio, ratios, cpuRatio, inGoal: s.inGoal ?? true, pass: ratio >= GOAL });
      console.log(`  ${s.name}: median ${fmtRatio(ratio)} over ${ROUNDS} rounds (${ratios.map((x) => fmtRatio(x)).join(' ')}); CPU per request, bare/rampart ${fmtRatio(cpuRatio)}`);
    }
    console.log('');
    console.log(
      table(
        ['route', 'rampart req/s', 'p50', 'p99', 'bare req/s', 'p50', 'p99', 'rampart/bare', `goal >= ${GOAL}`, 'CPU us/req rampart', 'bare', 'CPU bare/rampart'],
        reads.map((r) => [
          r.route,
          fmtRps(r.rampart.reqPerSec),
          fmtMs(r.rampart.p50),
          fmtMs(r.rampart.p99),
          fmtRps(r.bare.reqPerSec),
          fmtMs(r.bare.p50),
          fmtMs(r.bare.p99),
          fmtRatio(r.ratio),
          r.inGoal ? (r.pass ? 'PASS' : 'FAIL') : '(not in goal)',
          r.rampart.cpuUsPerRequest.toFixed(1),
          r.bare.cpuUsPerRequest.toFixed(1),
          fmtRatio(r.cpuRatio),
        ]),
        [false, true, true, true, true, true, true, true, false, true, true, true],
      ),
    );
    results.reads = reads;
    results.bytes = { snapshot: flagsRes.body.length, ofrepSingle: single.body.length, ofrepBulk: bulk.body.length };
    child.kill('SIGTERM');
    bare = undefined;

    // ---- Writes: admin PATCH on Redis and on the embedded store. -------------------------------
    const writes: { store: string; concurrent: Run & { writes: number }; sequential: { samples: number; p50: number; p99: number; max: number } }[] = [];
    for (const store of ['redis', 'embedded'] as const) {
      const server = store === STORE ? rampart : await startRampart(store);
      if (server !== rampart) await putFlags(server);
      const versionOf = async (): Promise<number> => ((await (await call(`${server.url}/flags/x`, { headers: adminHeaders })).json()) as { version: number }).version;
      await call(`${server.url}/flags/x`, { method: 'PUT', headers: adminHeaders, body: JSON.stringify({ enabled: true, percentage: 0 }) });

      // Sequential: one PATCH at a time, alternating percentages, each one a real write.
      const latencies: number[] = [];
      for (let i = 0; i < WRITE_SAMPLES; i++) {
        const started = performance.now();
        await call(`${server.url}/flags/x`, { method: 'PATCH', headers: adminHeaders, body: JSON.stringify({ percentage: i % 2 === 0 ? 25 : 75 }) });
        latencies.push(performance.now() - started);
      }
      const skip = Math.min(20, Math.floor(WRITE_SAMPLES / 10)); // cold code in both processes
      const sorted = latencies.slice(skip).sort((a, b) => a - b);
      const sequential = { samples: sorted.length, p50: median(sorted), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN };

      // Concurrent: autocannon PATCHes, each with a different percentage from the one before.
      let n = 0;
      const before = await versionOf();
      const concurrent = await load(
        server.url,
        {
          method: 'PATCH',
          path: '/flags/x',
          headers: adminHeaders,
          setupRequest: (request) => ({ ...request, body: JSON.stringify({ percentage: (n++ % 100) + 0.5 }) }),
        },
        200,
        `PATCH /flags/x (${store})`,
      );
      const writesMade = (await versionOf()) - before;
      writes.push({ store, concurrent: { ...concurrent, writes: writesMade }, sequential });
    }
    console.log('\nadmin writes: PATCH /flags/x, alternating percentages (store write + history + change feed):');
    console.log(
      table(
        ['store', `concurrent req/s (${CONNECTIONS} conns)`, 'p50', 'p99', 'versions written (incl. warm-up)', 'sequential p50', 'p99', 'max'],
        writes.map((w) => [
          w.store,
          fmtRps(w.concurrent.reqPerSec),
          fmtMs(w.concurrent.p50),
          fmtMs(w.concurrent.p99),
          fmtInt(w.concurrent.writes),
          fmtMs(w.sequential.p50),
          fmtMs(w.sequential.p99),
          fmtMs(w.sequential.max),
        ]),
        [false, true, true, true, true, true, true, true],
      ),
    );
    results.writes = writes;
  } finally {
    bare?.kill('SIGTERM');
    for (const cleanup of cleanups.reverse()) await cleanup();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }

  const reads = ((results.reads ?? []) as { ratio: number; pass: boolean; inGoal: boolean; route: string }[]).filter((r) => r.inGoal);
  const worst = Math.min(...reads.map((r) => r.ratio));
  const pass = reads.length > 0 && reads.every((r) => r.pass);
  if (!pass) failures.push({ code: 3, message: `lowest rampart/bare ratio ${fmtRatio(worst)} < ${GOAL}` });
  results.goal = { metric: 'rampart/bare req/s, worst route', value: worst, limit: GOAL, pass };
  results.failures = failures;
  const resultsDir = new URL('./results/', import.meta.url);
  mkdirSync(resultsDir, { recursive: true });
  const resultsFile = new URL('server.json', resultsDir);
  writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\nresults: ${resultsFile.pathname}`);
  for (const f of failures) console.log(`FAIL (exit ${f.code}): ${f.message}`);
  console.log(`GOAL worst rampart/bare = ${fmtRatio(worst)} (goal >= ${GOAL}x): ${pass ? 'PASS' : 'FAIL'}`);
  process.exitCode = failures.length === 0 ? 0 : Math.min(...failures.map((f) => f.code));
}
