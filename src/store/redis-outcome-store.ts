// Outcome counters in Redis: one hash per flag, cohort and time slice, written with one MULTI
// per batch and summed by a script, in one pipeline per summary.
import { createRedisClient } from './redis-connection.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisOptions, Result } from 'ioredis';
import { RampartError } from '../core/errors.js';
import { positive } from './codec.js';
import {
  aggregateBatch,
  BUCKET_COUNT,
  checkSummaryKey,
  COHORTS,
  DEFAULT_RETENTION_MS,
  DEFAULT_SLICE_MS,
  emptyCounts,
  positiveMs,
  toSummary,
  windowSlices,
} from './outcome-codec.js';
import type { SliceCounts } from './outcome-codec.js';
import type { Cohort, OutcomeEvent, OutcomeStore, OutcomeSummary } from './outcome-store.js';

// Hash fields: ok, failed, sum (latency ms, float) and b0..b13 (histogram slots, not cumulative).
const BUCKET_FIELDS = Array.from({ length: BUCKET_COUNT }, (_, i) => `b${i}`);
const READ_FIELDS = ['ok', 'failed', 'sum', ...BUCKET_FIELDS];

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rampartOutcomeSum(numberOfKeys: number, ...args: string[]): Result<unknown, Context>;
  }
}

// Sums the fields ARGV of the hashes KEYS (missing ones count 0). Summing in Redis turns a 48 h
// window (17,280 slices per cohort) from tens of thousands of replies into a few dozen; chunks
// of SUM_CHUNK keys keep each script to about a millisecond of Redis time. Totals go back as
// strings: Redis would truncate a Lua float reply (the latency sum) to an integer.
const SUM_LUA = `
local totals = {}
for i = 1, #ARGV do totals[i] = 0 end
for _, key in ipairs(KEYS) do
  local values = redis.call('HMGET', key, unpack(ARGV))
  for i = 1, #ARGV do
    if values[i] then totals[i] = totals[i] + tonumber(values[i]) end
  end
end
local out = {}
for i = 1, #ARGV do out[i] = string.format('%.17g', totals[i]) end
return out
`;
const SUM_CHUNK = 1000;

/**
 * Settings of createRedisOutcomeStore.
 *
 * @example
 * const options: RedisOutcomeStoreOptions = { url: 'redis://localhost:6379', prefix: 'rampart:' };
 */
export interface RedisOutcomeStoreOptions {
  /** `redis://` or `rediss://` URL; combined with `redis` when both are given. */
  readonly url?: string | undefined;
  /** `url` is a comma-separated list of seed nodes of a Redis Cluster (see createRedisClient). */
  readonly cluster?: boolean | undefined;
  /** Further ioredis options (TLS, password...); the timeouts below win over these. */
  readonly redis?: RedisOptions | undefined;
  /** Prefix of every key; default `rampart:` (the flag store's, its keys use another hash tag). */
  readonly prefix?: string | undefined;
  /** Longest wait for any single Redis reply; default 2000 ms. */
  readonly commandTimeoutMs?: number | undefined;
  /** Longest wait for a TCP connection; default 5000 ms. */
  readonly connectTimeoutMs?: number | undefined;
  /** Length of one counter slice; default 10 s. */
  readonly sliceMs?: number | undefined;
  /** How long a slice is kept after it ends; default 48 h. */
  readonly retentionMs?: number | undefined;
  /** Connection errors no caller is waiting for. */
  readonly onError?: ((error: Error) => void) | undefined;
}

/**
 * Key of one slice; every key shares the `{outcomes}` hash tag, so a batch touching many flags
 * is one MULTI on one Redis Cluster slot.
 *
 * @example
 * outcomeSliceKey('rampart:', 'checkout', 'on', 1700000000000); // 'rampart:{outcomes}:checkout:on:1700000000000'
 */
export function outcomeSliceKey(prefix: string, flagKey: string, cohort: Cohort, start: number): string {
  return `${prefix}{outcomes}:${flagKey}:${cohort}:${start}`;
}

/**
 * OutcomeStore on Redis. A summary sums the window's slices inside Redis (a script, in chunks, one
 * round trip). A slice key expires (PEXPIREAT) `retentionMs` after its slice ends,
 * so Redis itself forgets old counters; nothing needs pruning.
 *
 * @example
 * const outcomes = new RedisOutcomeStore({ url: 'redis://localhost:6379' }); await outcomes.connect();
 */
export class RedisOutcomeStore implements OutcomeStore {
  readonly sliceMs: number;
  readonly retentionMs: number;
  private readonly prefix: string;
  private readonly client: RedisConnection;
  private readonly commandTimeoutMs: number;
  private connecting: Promise<void> | undefined;
  private closed = false;

  constructor(options: RedisOutcomeStoreOptions = {}) {
    this.prefix = options.prefix ?? 'rampart:';
    this.sliceMs = positiveMs(options.sliceMs ?? DEFAULT_SLICE_MS, 'sliceMs');
    this.retentionMs = positiveMs(options.retentionMs ?? DEFAULT_RETENTION_MS, 'retentionMs');
    this.commandTimeoutMs = positive(options.commandTimeoutMs ?? 2000, 'commandTimeoutMs');
    const onError = options.onError ?? (() => undefined);
    this.client = createRedisClient(
      options.url,
      {
        commandTimeoutMs: this.commandTimeoutMs,
        connectTimeoutMs: positive(options.connectTimeoutMs ?? 5000, 'connectTimeoutMs'),
        cluster: options.cluster,
      },
      // A batch in flight when the connection drops is failed, not resent (it may count twice).
      { ...options.redis, keyPrefix: '', scripts: { rampartOutcomeSum: { lua: SUM_LUA, readOnly: true } } },
    );
    this.client.on('error', (error: Error) => {
      onError(error);
    });
  }

  /** Opens the connection; rejects when Redis cannot be reached. Idempotent. */
  connect(): Promise<void> {
    this.connecting ??= this.client.connect().catch((error: unknown) => {
      this.client.disconnect();
      throw unavailable('connect', error);
    });
    return this.connecting;
  }

  async record(events: readonly OutcomeEvent[]): Promise<void> {
    const deltas = aggregateBatch(events, this.sliceMs);
    if (deltas.length === 0) return;
    // MULTI: the batch lands as one step, so a summary never sees half of it; Redis refuses the
    // whole transaction if a command is malformed. A timeout leaves the outcome unknown, as for
    // any write; outcomes are telemetry and are not retried here.
    const multi = this.client.multi();
    for (const { flagKey, cohort, start, counts } of deltas) {
      const key = outcomeSliceKey(this.prefix, flagKey, cohort, start);
      if (counts.ok > 0) multi.hincrby(key, 'ok', counts.ok);
      if (counts.failed > 0) multi.hincrby(key, 'failed', counts.failed);
      counts.buckets.forEach((n, i) => {
        if (n > 0) multi.hincrby(key, BUCKET_FIELDS[i] ?? `b${i}`, n);
      });
      if (counts.latencySum > 0) multi.hincrbyfloat(key, 'sum', counts.latencySum);
      multi.pexpireat(key, start + this.sliceMs + this.retentionMs);
    }
    const results = await this.call('MULTI', () => multi.exec());
    const failed = results?.find(([error]) => error !== null)?.[0];
    if (results === null || failed !== undefined) throw unavailable('MULTI', failed ?? new Error('transaction aborted'));
  }

  async summary(flagKey: string, windowMs: number, now: Date): Promise<OutcomeSummary> {
    checkSummaryKey(flagKey);
    const starts = windowSlices(windowMs, now, this.sliceMs);
    // All chunks of both cohorts in one pipeline: one round trip.
    const pipeline = this.client.pipeline();
    const chunks: Cohort[] = [];
    for (const cohort of COHORTS) {
      for (let i = 0; i < starts.length; i += SUM_CHUNK) {
        const keys = starts.slice(i, i + SUM_CHUNK).map((start) => outcomeSliceKey(this.prefix, flagKey, cohort, start));
        pipeline.rampartOutcomeSum(keys.length, ...keys, ...READ_FIELDS);
        chunks.push(cohort);
      }
    }
    const results = await this.call('outcome summary', () => pipeline.exec());
    if (results === null) throw unavailable('outcome summary', new Error('no replies'));
    const totals: Record<Cohort, SliceCounts> = { on: emptyCounts(), off: emptyCounts() };
    results.forEach(([error, reply], i) => {
      if (error !== null) throw unavailable('outcome summary', error);
      addReply(totals[chunks[i] ?? 'on'], reply);
    });
    return toSummary(flagKey, windowMs, now, starts[0] ?? now.getTime(), totals);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const ended = new Promise<void>((resolve) => this.client.once('end', () => { resolve(); }));
    await this.client.quit().catch(() => {
      this.client.disconnect();
    });
    if (this.client.status === 'end' || this.client.status === 'wait' || this.client.status === 'reconnecting' || this.client.status === 'close') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ended, new Promise<void>((resolve) => { timer = setTimeout(resolve, this.commandTimeoutMs); })]);
    clearTimeout(timer);
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new RampartError('store-unavailable', 'the Redis outcome store is closed');
    try {
      return await run();
    } catch (error) {
      if (error instanceof RampartError) throw error;
      throw unavailable(what, error);
    }
  }
}

/** Adds one sum reply (values in READ_FIELDS order) to `into`. */
function addReply(into: SliceCounts, reply: unknown): void {
  if (!Array.isArray(reply)) throw new RampartError('internal', 'unexpected reply from Redis to the outcome summary');
  const values = reply.map((value: unknown) => {
    if (value === null) return 0;
    const n = typeof value === 'string' ? Number(value) : Number.NaN;
    if (!Number.isFinite(n)) throw new RampartError('internal', `unexpected outcome counter in Redis: ${JSON.stringify(value)}`);
    return n;
  });
  into.ok += values[0] ?? 0;
  into.failed += values[1] ?? 0;
  into.latencySum += values[2] ?? 0;
  for (let i = 0; i < BUCKET_COUNT; i++) into.buckets[i] = (into.buckets[i] ?? 0) + (values[3 + i] ?? 0);
}

function unavailable(what: string, error: unknown): RampartError {
  const detail = error instanceof Error ? error.message : String(error);
  return new RampartError('store-unavailable', `Redis ${what} failed: ${detail}`, { cause: error });
}

/**
 * Connects to Redis and returns the outcome store; rejects with 'store-unavailable' when unreachable.
 *
 * @example
 * const outcomes = await createRedisOutcomeStore({ url: process.env.REDIS_URL, prefix: 'rampart:' });
 */
export async function createRedisOutcomeStore(options: RedisOutcomeStoreOptions = {}): Promise<RedisOutcomeStore> {
  const store = new RedisOutcomeStore(options);
  await store.connect();
  return store;
}
