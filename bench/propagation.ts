/**
 * Propagation benchmark: N streaming SDK clients (real `createClient` instances, default 1,000)
 * on one `rampart serve` process; PATCH a flag several times and time how long each client takes
 * to see each change. Then the heap each client costs when it holds a 10,000-flag snapshot.
 *
 * Run: npm run bench:propagation [-- --clients 5000] [-- --workers 2] [-- --patches 20]
 * (builds the SDK, then `node --expose-gc --import tsx bench/propagation.ts`). See bench/README.md.
 * Exit code: 0 all good; 1 a client missed a change or failed to connect; 3 p99 above 100 ms.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createClient } from '@rampart/sdk';
import type { FlagSnapshot, RampartClient } from '@rampart/sdk';
import { createFleet, epochNow } from './propagation-fleet.js';
import { startRedisServer } from '../test/support/redis-server.js';
import type { RedisServer } from '../test/support/redis-server.js';
import { buildDist, startServerProcess } from '../test/support/server-process.js';
import { fmtInt, heapAfterGc, requireGc } from './measure.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000' },
    patches: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    flags: { type: 'string', default: '10000' },
    'heap-clients': { type: 'string', default: '20' },
    store: { type: 'string', default: 'redis' },
    /** Worker threads holding the clients; 0 (default): all in this thread. */
    workers: { type: 'string', default: '0' },
  },
});
const CLIENTS = Number(values.clients);
const WORKERS = Number(values.workers);
const PATCHES = Number(values.patches);
/** The first PATCHes run cold code in both processes (JIT); they are timed but not counted. */
const WARMUP = Number(values.warmup);
const HEAP_FLAGS = Number(values.flags);
const HEAP_CLIENTS = Number(values['heap-clients']);
const GOAL_P99_MS = 100;
/** The server allows 1,000 streams per SDK token; spread clients over enough tokens. */
const PER_TOKEN = 500;
const gc = requireGc();

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;
const ms = (n: number): string => `${n.toFixed(1)} ms`;

console.log('Rampart propagation benchmark');
console.log(`node ${process.version} ${process.platform}/${process.arch}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'})`);
console.log(`@rampart/sdk -> ${import.meta.resolve('@rampart/sdk')}`);

const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-'));
const tokens = Array.from({ length: Math.ceil(CLIENTS / PER_TOKEN) }, (_, i) => `bench-${i}`);
// Redis (a private redis-server, or REDIS_URL) by default; --store embedded for the file store.
const redis: RedisServer | undefined = values.store === 'redis' && !process.env.REDIS_URL ? await startRedisServer() : undefined;
const redisUrl = values.store === 'redis' ? (process.env.REDIS_URL ?? redis?.url ?? '') : '';
// The server as users run it (`npm start`): the dist/ bundle, built from the sources first.
buildDist();
const server = await startServerProcess({
  ...(redisUrl === '' ? {} : { REDIS_URL: redisUrl, RAMPART_REDIS_PREFIX: `bench:${process.pid}:` }),
  RAMPART_DATA_DIR: dir,
  RAMPART_GUARD: 'off',
  RAMPART_ADMIN_TOKENS: 'ops:bench-admin',
  RAMPART_SDK_TOKENS: tokens.map((t) => `${t}:${t}`).join(','),
  LOG_LEVEL: 'warn',
}, 15_000, { dist: true });
const admin = { authorization: 'Bearer bench-admin', 'content-type': 'application/json' };
const patch = async (body: Record<string, unknown>, method = 'PATCH'): Promise<void> => {
  const res = await fetch(`${server.url}/flags/bench-flag`, { method, headers: admin, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${method} /flags/bench-flag: ${res.status} ${await res.text()}`);
};
let exitCode = 0;
const fleet = createFleet({ url: server.url, tokens: Array.from({ length: CLIENTS }, (_, i) => tokens[Math.floor(i / PER_TOKEN)]!) }, WORKERS);
const where = WORKERS > 0 ? `over ${WORKERS} worker threads` : 'in one thread';
try {
  await patch({ enabled: true, percentage: 0 }, 'PUT');
  console.log(`server: rampart serve (${redisUrl === '' ? 'embedded store' : 'Redis store'}) at ${server.url}; ${fmtInt(CLIENTS)} clients over ${tokens.length} SDK tokens, ${where} of the benchmark process\n`);

  // Connect the fleet in waves so connecting is not what is measured.
  const connectStart = performance.now();
  const failedReady = await fleet.connect();
  console.log(`connect: ${fmtInt(CLIENTS - failedReady)}/${fmtInt(CLIENTS)} ready in ${ms(performance.now() - connectStart)}`);
  if (failedReady > 0) exitCode = 1;
  await new Promise((r) => setTimeout(r, 500));

  const all: number[] = [];
  const perPatch: { p50: number; p99: number; max: number; missed: number; answered: number }[] = [];
  // How busy the clients' event loops (stream parsing and change events) were while PATCHes
  // propagated: near 100% means the clients, not the server, set the pace.
  await fleet.startBusy();
  for (let p = 0; p < WARMUP + PATCHES; p++) {
    const started = epochNow();
    await patch({ percentage: ((p + 1) % 2) * 100 });
    const answered = epochNow() - started;
    // The revision the PATCH produced: read from the server's snapshot ETag.
    const etag = (await fetch(`${server.url}/sdk/v1/flags`, { headers: { authorization: `Bearer ${tokens[0]!}` } })).headers.get('etag') ?? '';
    const revision = Number(etag.replace(/\D/g, ''));
    const latencies = (await fleet.seen(revision, epochNow() + 10_000)).map((at) => at - started);
    const missed = latencies.filter(Number.isNaN).length;
    const sorted = latencies.filter((n) => !Number.isNaN(n)).sort((a, b) => a - b);
    if (p >= WARMUP) all.push(...sorted);
    perPatch.push({ p50: quantile(sorted, 0.5), p99: quantile(sorted, 0.99), max: sorted.at(-1) ?? Number.NaN, missed, answered });
    if (missed > 0) exitCode = 1;
    await new Promise((r) => setTimeout(r, 200));
  }
  const busy = await fleet.busy();
  console.log('\nPATCH -> change event in every client (ms from sending the PATCH):');
  console.log('patch   PATCH answered  p50       p99       max       missed');
  perPatch.forEach((r, i) => {
    console.log(`${(i < WARMUP ? `w${i + 1}` : String(i + 1 - WARMUP)).padEnd(8)}${ms(r.answered).padEnd(16)}${ms(r.p50).padEnd(10)}${ms(r.p99).padEnd(10)}${ms(r.max).padEnd(10)}${r.missed}`);
  });
  all.sort((a, b) => a - b);
  const p99 = quantile(all, 0.99);
  console.log(`\nall ${fmtInt(all.length)} deliveries (w = warm-up, not counted): p50 ${ms(quantile(all, 0.5))}, p99 ${ms(p99)}, max ${ms(all.at(-1) ?? Number.NaN)}`);
  console.log(`clients' event loops: event loop busy ${busy.map((b) => `${(b * 100).toFixed(0)}%`).join(', ')} of the PATCH phase (${fmtInt(CLIENTS)} clients ${where})`);
  if (!(p99 <= GOAL_P99_MS) && exitCode === 0) exitCode = 3;
  console.log(`GOAL p99 = ${ms(p99)} (goal <= ${GOAL_P99_MS} ms) at ${fmtInt(CLIENTS)} clients: ${p99 <= GOAL_P99_MS ? 'PASS' : 'FAIL'}`);
} finally {
  await fleet.close();
  await server.stop();
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
}

// Heap per client holding a 10,000-flag snapshot: each client parses its own copy, as one
// received over the network would, and compiles it for isEnabled.
const flags: Record<string, unknown> = {};
for (let i = 0; i < HEAP_FLAGS; i++) flags[`flag-${i}`] = { enabled: i % 3 !== 0, percentage: (i % 100) + 0.5, groupId: `flag-${i}`, stickiness: 'userId' };
const json = JSON.stringify({ revision: 1, flags });
const before = heapAfterGc(gc);
const holders: RampartClient[] = [];
for (let i = 0; i < HEAP_CLIENTS; i++) holders.push(createClient({ bootstrap: JSON.parse(json) as FlagSnapshot, offline: true }));
const after = heapAfterGc(gc);
const perClient = (after - before) / HEAP_CLIENTS;
console.log(`\nheap: ${fmtInt(HEAP_CLIENTS)} clients x ${fmtInt(HEAP_FLAGS)} flags (snapshot JSON ${fmtInt(json.length)} B): ${(perClient / 1024 / 1024).toFixed(2)} MiB per client (${fmtInt(Math.round(perClient / HEAP_FLAGS))} B per flag)`);
console.log(`check: ${holders.filter((c) => c.isEnabled('flag-1', 'u') === c.evaluate('flag-1', 'u').value).length}/${HEAP_CLIENTS} clients answer`);
process.exitCode = exitCode;
