/**
 * Guard tick benchmark: one `GuardWorker.tick(now)` over 10,000 flags, each with a running staged
 * plan, on the embedded store and on Redis; against the bare cost of reading the same 10,000
 * plans and flags from the same store, measured just before every tick. See bench/README.md.
 *
 * Run: npm run bench:guard [-- --store redis] [-- --flags 10000] [-- --ticks 20]
 * (`node --conditions=rampart-source --import tsx bench/guard-tick.ts`).
 * Exit code: 0 all good; 1 a tick failed to process a plan, or decided something unexpected.
 */
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Writable } from 'node:stream';
import { defaultFields } from '../src/core/flag.js';
import type { Flag } from '../src/core/flag.js';
import type { Criterion, RolloutPlan, SourceSpec } from '../src/core/rollout/plan.js';
import type { RolloutState } from '../src/core/rollout/state.js';
import type { Reading } from '../src/core/rollout/verdict.js';
import { createInProcessLease } from '../src/guard/lease.js';
import type { Lease, LeaseGrant } from '../src/guard/lease.js';
import type { RolloutNotifier } from '../src/guard/notifier.js';
import { GuardWorker } from '../src/guard/worker.js';
import type { MetricReader } from '../src/guard/worker.js';
import { Registry } from '../src/prometheus.js';
import { toHistoryEntry, toStoredMeta } from '../src/store/codec.js';
import { createEmbeddedRolloutStore } from '../src/store/embedded-rollout-store.js';
import { createEmbeddedStore } from '../src/store/embedded-store.js';
import type { FlagStore } from '../src/store/flag-store.js';
import { createRedisLease } from '../src/store/redis-lease.js';
import { createRedisRolloutStore } from '../src/store/redis-rollout-store.js';
import { createRedisStore } from '../src/store/redis-store.js';
import type { RolloutRecord, RolloutStore } from '../src/store/rollout-store.js';
import { createLogger } from '../src/telemetry.js';
import { startRedisServer } from '../test/support/redis-server.js';
import type { RedisServer } from '../test/support/redis-server.js';
import { fmtInt, median, table } from './measure.js';

const { values } = parseArgs({
  options: {
    flags: { type: 'string', default: '10000' },
    ticks: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '2' },
    /** Ticks on the embedded store (before its journal, a tick took about a minute and 3 were run). */
    'embedded-ticks': { type: 'string', default: '20' },
    'embedded-warmup': { type: 'string', default: '2' },
    store: { type: 'string', default: 'both' },
    /** A store whose ticks have taken longer than this in all stops early. */
    'max-seconds': { type: 'string', default: '300' },
  },
});
const FLAGS = Number(values.flags);
const TICKS_OF: Readonly<Record<'embedded' | 'redis', { ticks: number; warmup: number }>> = {
  redis: { ticks: Number(values.ticks), warmup: Number(values.warmup) },
  embedded: { ticks: Number(values['embedded-ticks']), warmup: Number(values['embedded-warmup']) },
};
const MAX_MS = Number(values['max-seconds']) * 1000;
const STORES = values.store === 'both' ? ['embedded', 'redis'] : [values.store];
if (!STORES.every((s) => s === 'embedded' || s === 'redis')) throw new Error(`--store must be embedded, redis or both, not ${values.store}`);

const SEC = 1000;
const MIN = 60 * SEC;
/** The guard's defaults: it wakes every second (RAMPART_GUARD_INTERVAL) and samples a plan every minute (sampleEvery). */
const TICK_EVERY_MS = SEC;
const SAMPLE_EVERY_MS = MIN;
const HOLD_MS = 10 * MIN;
/** A Monday; the scheduled plans advance at `0 10 * * 1` Europe/Berlin, 09:00 UTC that day. */
const T0 = Date.parse('2026-11-30T12:00:30Z');
const TODAYS_SLOT = Date.parse('2026-11-30T09:00:00Z');
const WEEK = 7 * 24 * 60 * MIN;
const PERCENTAGES = [1, 5, 10, 25, 50, 100];

/**
 * The workload, fixed by the flag's index so both stores run the same one:
 * - every plan: 6 stages (1, 5, 10, 25, 50, 100%), 10 min hold each, sampled every minute;
 *   first checks spread evenly over the minute, so 1/60 of the plans are due at each 1 s tick,
 *   as a guard that keeps up sees them (ticks are 1 s apart on a fake clock; no plan is due
 *   twice within the 60 ticks a run can have);
 * - every 2nd plan has a metric criterion (`queue < 50`) read from a local reader;
 * - every 3rd plan's hold has passed: when due it advances one stage (a flag write);
 * - every 5th plan advances on a cron schedule (`0 10 * * 1`): the guard computes the slot.
 */
const hasCriterion = (i: number): boolean => i % 2 === 0;
const holdPassed = (i: number): boolean => i % 3 === 0;
const scheduled = (i: number): boolean => i % 5 === 0;
const key = (i: number): string => `flag-${String(i).padStart(5, '0')}`;

const criterion: Criterion = { name: 'queue', source: { type: 'redis', url: 'redis://metrics.invalid', command: 'LLEN', key: 'jobs' }, op: '<', threshold: 50 };

function planFor(i: number): RolloutPlan {
  return {
    stages: PERCENTAGES.map((percentage, s) => (s === PERCENTAGES.length - 1 ? { percentage } : { percentage, holdMs: HOLD_MS })),
    ...(scheduled(i) ? { schedule: { cron: '0 10 * * 1', timezone: 'Europe/Berlin' } } : {}),
    sampleEveryMs: SAMPLE_EVERY_MS,
    criteria: hasCriterion(i) ? [criterion] : [],
    onFailure: { action: 'revert', after: 2 },
    dryRun: false,
    notify: [],
  };
}

function stateFor(i: number): RolloutState {
  const stage = i % 3;
  // Hold passed: started 11 min ago; otherwise 1 min ago. On a schedule the hold counts from the
  // slot the stage began at: a week ago (hold passed, today's slot has come: advance), or today's
  // slot (hold passed, but the next slot is a week away: hold).
  const stageStartedAt = T0 - (holdPassed(i) ? HOLD_MS + MIN : MIN);
  return {
    status: 'running',
    stage,
    stageStartedAt,
    ...(scheduled(i) ? { anchorAt: holdPassed(i) ? TODAYS_SLOT - WEEK : TODAYS_SLOT } : {}),
    criteria: {},
    // Consecutive blocks of indices share a due tick, so every tick gets the same mix of plans.
    nextCheckAt: T0 + Math.floor((i * SAMPLE_EVERY_MS) / TICK_EVERY_MS / FLAGS) * TICK_EVERY_MS,
  };
}

function flagFor(i: number, at: string): Flag {
  return { ...defaultFields(key(i)), key: key(i), enabled: true, percentage: PERCENTAGES[i % 3]!, version: 1, updatedAt: at, updatedBy: 'ops' };
}

function recordFor(i: number, at: string): RolloutRecord {
  return { flagKey: key(i), version: 1, plan: planFor(i), state: stateFor(i), flagVersion: 1, fence: 0, createdAt: at, updatedAt: at, updatedBy: 'ops' };
}

/** A cheap local metric source: every read is a passing value, counted. */
function localReader(): MetricReader & { reads: number } {
  const reading: Reading = { kind: 'value', value: 3 };
  const reader = {
    reads: 0,
    async observe(_spec: SourceSpec): Promise<Reading> {
      reader.reads++;
      return reading;
    },
  };
  return reader;
}

const silentNotifier: RolloutNotifier = { send: () => undefined, flush: async () => undefined };

/** Counts the guard's error logs (a plan it could not process); everything else is dropped. */
function countingLogger(): { logger: ReturnType<typeof createLogger>; errors: () => number } {
  let errors = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (chunk.toString().includes('"level":50')) errors++;
      done();
    },
  });
  return { logger: createLogger('error', sink), errors: () => errors };
}

interface Stores {
  readonly flags: FlagStore;
  readonly rollouts: RolloutStore;
  readonly lease: Lease;
  close(): Promise<void>;
}

/**
 * The embedded stores, seeded by writing their state files before opening them: through the API
 * the 20,000 creations would each wait for their own fsync.
 */
async function embeddedStores(dir: string): Promise<Stores> {
  const at = new Date(T0 - HOLD_MS - 2 * MIN);
  const flags = Array.from({ length: FLAGS }, (_, i) => flagFor(i, at.toISOString()));
  const meta = toStoredMeta({ actor: 'ops', source: 'api', at });
  writeFileSync(join(dir, 'state.json'), JSON.stringify({
    format: 'rampart-embedded-store',
    formatVersion: 1,
    revision: FLAGS,
    flags,
    versions: Object.fromEntries(flags.map((f) => [f.key, 1])),
    history: Object.fromEntries(flags.map((f, i) => [f.key, [toHistoryEntry(f.key, i + 1, 'create', null, f, meta)]])),
  }));
  writeFileSync(join(dir, 'rollouts.json'), JSON.stringify({
    format: 'rampart-rollouts',
    formatVersion: 1,
    sequence: 0,
    records: Array.from({ length: FLAGS }, (_, i) => recordFor(i, at.toISOString())),
    decisions: {},
  }));
  const mb = (file: string): string => `${(statSync(join(dir, file)).size / 1024 / 1024).toFixed(1)} MB`;
  console.log(`embedded store files as seeded: state.json ${mb('state.json')}, rollouts.json ${mb('rollouts.json')} (each write appends to the journal beside them)`);
  const flagStore = await createEmbeddedStore({ dir });
  const rollouts = await createEmbeddedRolloutStore({ dir });
  const lease = createInProcessLease();
  return {
    flags: flagStore,
    rollouts,
    lease,
    async close() {
      await lease.close();
      await rollouts.close();
      await flagStore.close();
    },
  };
}

/** The Redis stores (a private redis-server, or REDIS_URL), seeded through the stores' own writes. */
async function redisStores(url: string): Promise<Stores> {
  const prefix = `bench:guard:${process.pid}:`;
  const flags = await createRedisStore({ url, prefix, commandTimeoutMs: 30_000 });
  const rollouts = await createRedisRolloutStore({ url, prefix, commandTimeoutMs: 30_000 });
  const lease = await createRedisLease({ url, prefix, ttlMs: 3_600_000 });
  const at = new Date(T0 - HOLD_MS - 2 * MIN);
  const BATCH = 500;
  for (let from = 0; from < FLAGS; from += BATCH) {
    await Promise.all(Array.from({ length: Math.min(BATCH, FLAGS - from) }, async (_, j) => {
      const i = from + j;
      const flag = flagFor(i, at.toISOString());
      const fields = { description: flag.description, enabled: flag.enabled, percentage: flag.percentage, groupId: flag.groupId, stickiness: flag.stickiness };
      const put = await flags.put(flag.key, fields, 0, { actor: 'ops', source: 'api', at });
      if (!put.ok) throw new Error(`seeding ${flag.key} failed`);
      const written = await rollouts.write({ ...recordFor(i, at.toISOString()), flagVersion: put.flag.version }, 0);
      if (!written.ok) throw new Error(`seeding the plan of ${flag.key} failed`);
    }));
  }
  return {
    flags,
    rollouts,
    lease,
    async close() {
      await lease.close();
      await rollouts.close();
      await flags.close();
    },
  };
}

interface TickRow {
  readonly floorMs: number;
  readonly tickMs: number;
  readonly due: number;
  readonly reads: number;
  readonly decisions: number;
  readonly advanced: number;
}

interface StoreResult {
  readonly store: string;
  readonly seedMs: number;
  readonly warmup: number;
  readonly rows: readonly TickRow[];
  readonly counted: readonly TickRow[];
  readonly stoppedEarly: boolean;
  readonly errors: number;
  readonly unexpected: string[];
}

const quantile = (sorted: readonly number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? Number.NaN;

async function runStore(name: 'embedded' | 'redis', open: () => Promise<Stores>): Promise<StoreResult> {
  const { ticks, warmup } = TICKS_OF[name];
  const seedStart = performance.now();
  const stores = await open();
  const seedMs = performance.now() - seedStart;
  const reader = localReader();
  const { logger, errors } = countingLogger();
  const worker = new GuardWorker({ flags: stores.flags, rollouts: stores.rollouts, sources: reader, lease: stores.lease, notifier: silentNotifier, logger, registry: new Registry() });
  const grant: LeaseGrant | undefined = await stores.lease.acquire();
  if (grant === undefined) throw new Error(`${name}: could not acquire the guard lease`);
  const rows: TickRow[] = [];
  const unexpected: string[] = [];
  let stoppedEarly = false;
  const started = performance.now();
  try {
    let before = await stores.rollouts.list();
    for (let t = 0; t < warmup + ticks; t++) {
      const now = T0 + t * TICK_EVERY_MS;
      // The floor: the same store's reads of every plan and every flag, in one go.
      const f0 = performance.now();
      const [plans, snapshot] = await Promise.all([stores.rollouts.list(), stores.flags.snapshot()]);
      const floorMs = performance.now() - f0;
      if (plans.length !== FLAGS || snapshot.flags.length !== FLAGS) unexpected.push(`tick ${t}: read ${plans.length} plans and ${snapshot.flags.length} flags`);
      const due = plans.filter((r) => r.state.status === 'running' && r.state.nextCheckAt <= now).length;
      const readsBefore = reader.reads;
      const t0 = performance.now();
      await worker.tick(now, grant);
      const tickMs = performance.now() - t0;
      // What the tick did, from the stores (not timed).
      const after = await stores.rollouts.list();
      const was = new Map(before.map((r) => [r.flagKey, r]));
      let decisions = 0;
      let advanced = 0;
      for (const r of after) {
        const prev = was.get(r.flagKey);
        if (prev === undefined || prev.version === r.version) continue;
        decisions++;
        if (r.state.stage > prev.state.stage) advanced++;
        if (r.pending !== undefined) unexpected.push(`tick ${t}: ${r.flagKey} left a pending flag write`);
        if (r.state.status !== 'running') unexpected.push(`tick ${t}: ${r.flagKey} is ${r.state.status}: ${r.state.reason ?? ''}`);
      }
      before = after;
      rows.push({ floorMs, tickMs, due, reads: reader.reads - readsBefore, decisions, advanced });
      if (performance.now() - started > MAX_MS && t + 1 < warmup + ticks) {
        stoppedEarly = true;
        break;
      }
    }
  } finally {
    await stores.lease.release(grant).catch(() => undefined);
    await stores.close();
  }
  const counted = rows.length > warmup ? rows.slice(warmup) : rows;
  return { store: name, seedMs, warmup, rows, counted, stoppedEarly, errors: errors(), unexpected };
}

const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

console.log('Rampart guard tick benchmark');
console.log(`node ${process.version} ${process.platform}/${process.arch}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'}); load average ${load()}`);
console.log(`${fmtInt(FLAGS)} flags, each with a running 6-stage plan (every 2nd with a metric criterion, every 5th on a cron schedule); ` +
  `ticks ${TICK_EVERY_MS / SEC} s apart on a fake clock, plans sampled every ${SAMPLE_EVERY_MS / SEC} s, so about ${fmtInt(Math.round(FLAGS * TICK_EVERY_MS / SAMPLE_EVERY_MS))} plans are due per tick; ` +
  `ticks (warm-up + counted): Redis ${TICKS_OF.redis.warmup} + ${TICKS_OF.redis.ticks}, embedded ${TICKS_OF.embedded.warmup} + ${TICKS_OF.embedded.ticks}\n`);

const results: StoreResult[] = [];
let exitCode = 0;
for (const store of STORES as readonly ('embedded' | 'redis')[]) {
  let result: StoreResult;
  if (store === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'rampart-bench-guard-'));
    try {
      result = await runStore('embedded', () => embeddedStores(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } else {
    const redis: RedisServer | undefined = process.env.REDIS_URL === undefined ? await startRedisServer() : undefined;
    try {
      result = await runStore('redis', () => redisStores(process.env.REDIS_URL ?? redis?.url ?? ''));
    } finally {
      await redis?.stop();
    }
  }
  results.push(result);
  console.log(`${store} store: seeded ${fmtInt(FLAGS)} flags and plans in ${ms(result.seedMs)} ms; load average now ${load()}`);
  console.log(table(
    ['tick', 'floor ms', 'tick ms', 'tick/floor', 'due', 'metric reads', 'plans written', 'stages applied'],
    result.rows.map((r, i) => [i < result.warmup ? `w${i + 1}` : String(i + 1 - result.warmup), ms(r.floorMs), ms(r.tickMs), `${(r.tickMs / r.floorMs).toFixed(1)}x`, fmtInt(r.due), fmtInt(r.reads), fmtInt(r.decisions), fmtInt(r.advanced)]),
    [false, true, true, true, true, true, true, true],
  ));
  if (result.stoppedEarly) console.log(`(stopped after ${result.rows.length} ticks: over --max-seconds ${MAX_MS / 1000})`);
  console.log(`(w = warm-up, not counted; the tick reads every plan itself, then for each due plan reads its flag, takes its metric reading, decides and writes the plan; a stage applied is a flag write plus a second plan write)`);
  if (result.errors > 0 || result.unexpected.length > 0) {
    exitCode = 1;
    console.log(`PROBLEMS: ${result.errors} plans the guard could not process; ${result.unexpected.slice(0, 5).join('; ')}`);
  }
  console.log('');
}

console.log('Summary (counted ticks; tick/floor = median tick / median floor, and the median of per-tick ratios):');
const summary: Record<string, unknown>[] = [];
for (const r of results) {
  const ticks = r.counted.map((x) => x.tickMs).sort((a, b) => a - b);
  const floors = r.counted.map((x) => x.floorMs).sort((a, b) => a - b);
  const ratio = median(ticks) / median(floors);
  const perTick = median(r.counted.map((x) => x.tickMs / x.floorMs));
  const stages = median(r.counted.map((x) => x.advanced));
  const due = median(r.counted.map((x) => x.due));
  // Store writes per tick: a plan write per due plan, and per stage applied a flag write and a
  // second plan write (clearing the pending flag write).
  const writes = median(r.counted.map((x) => x.decisions + 2 * x.advanced));
  console.log(
    `GUARD ${r.store}: tick p50 ${ms(quantile(ticks, 0.5))} ms, p99 ${ms(quantile(ticks, 0.99))} ms over ${r.counted.length} ticks; ` +
      `floor p50 ${ms(median(floors))} ms; tick/floor ${ratio.toFixed(1)}x (per tick ${perTick.toFixed(1)}x); ` +
      `${fmtInt(due)} due, ${fmtInt(stages)} stages applied, ${fmtInt(writes)} store writes per tick (median; tick minus floor per write ${ms((median(ticks) - median(floors)) / writes)} ms)`,
  );
  summary.push({ store: r.store, ticks: r.counted.length, stoppedEarly: r.stoppedEarly, tickP50: quantile(ticks, 0.5), tickP99: quantile(ticks, 0.99), floorP50: median(floors), ratio, perTickRatio: perTick, duePerTick: due, stagesPerTick: stages, writesPerTick: writes, seedMs: r.seedMs, rows: r.rows });
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const out = new URL('./results/guard-tick.json', import.meta.url);
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), loadAverage: loadavg(), options: { flags: FLAGS, ticks: TICKS_OF, tickEveryMs: TICK_EVERY_MS, sampleEveryMs: SAMPLE_EVERY_MS }, results: summary, exitCode }, null, 2)}\n`);
console.log(`results: ${out.pathname}`);
process.exitCode = exitCode;
