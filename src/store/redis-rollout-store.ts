// Rollout plans on Redis. Each write is one Lua script: the plan's compare-and-set, the lease
// (fencing) check and the decision append happen atomically, so a stale or duplicate guard
// can never apply a transition twice nor record one it did not make.
import type { Result } from 'ioredis';
import { createRedisClient } from './redis-connection.js';
import type { RedisConnection } from './redis-connection.js';
import { z } from 'zod';
import { RampartError } from '../core/errors.js';
import { checkKey, checkLimit, parseStored, positive } from './codec.js';
import { decisionSchema, rolloutRecordSchema } from './rollout-store.js';
import type { DecisionEntry, DecisionPage, Fence, NewDecision, RolloutRecord, RolloutStore, RolloutWriteResult } from './rollout-store.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rampartRolloutWrite(...args: (string | number)[]): Result<unknown, Context>;
  }
}

/**
 * Key names of the rollout data; one `{rollouts}` hash tag so the scripts work on Redis Cluster.
 *
 * @example
 * rolloutKeys('rampart:').lease; // 'rampart:{rollouts}:lease'
 */
export function rolloutKeys(prefix: string): { plans: string; lease: string; fence: string; decisions(key: string): string } {
  const base = `${prefix}{rollouts}:`;
  return { plans: `${base}plans`, lease: `${base}lease`, fence: `${base}fence`, decisions: (key) => `${base}decisions:${key}` };
}

// KEYS: plans, decisions:<key>, lease. ARGV: key, expected, record JSON, decision JSON or '',
// fence token or '', fence holder, decisions kept.
const WRITE_LUA = `
local current = redis.call('HGET', KEYS[1], ARGV[1])
local version = 0
local fence = 0
if current then
  local decoded = cjson.decode(current)
  version = tonumber(decoded.version)
  fence = tonumber(decoded.fence or 0)
end
if version ~= tonumber(ARGV[2]) then return {'version', current or ''} end
if ARGV[5] ~= '' then
  if redis.call('GET', KEYS[3]) ~= ARGV[6] then return {'fence', current or ''} end
  if tonumber(ARGV[5]) < fence then return {'fence', current or ''} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
local id = ''
if ARGV[4] ~= '' then id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'd', ARGV[4]) end
return {'ok', id}
`;

const replySchema = z.tuple([z.enum(['ok', 'version', 'fence']), z.string()]);

/**
 * Settings of createRedisRolloutStore.
 *
 * @example
 * const options: RedisRolloutStoreOptions = { url: 'redis://localhost:6379', prefix: 'rampart:' };
 */
export interface RedisRolloutStoreOptions {
  readonly url: string;
  /** `url` is a comma-separated list of seed nodes of a Redis Cluster (see createRedisClient). */
  readonly cluster?: boolean | undefined;
  readonly prefix?: string | undefined;
  /** Longest wait for any Redis reply; default 2000 ms. */
  readonly commandTimeoutMs?: number | undefined;
  /** Decisions kept per flag, at least (trimming is approximate); default 10000. */
  readonly decisionLimit?: number | undefined;
  readonly onError?: ((error: Error) => void) | undefined;
}

/**
 * RolloutStore on Redis: plans in one hash, decisions in a capped stream per flag.
 *
 * @example
 * const store = await createRedisRolloutStore({ url: process.env.REDIS_URL ?? '' });
 */
export class RedisRolloutStore implements RolloutStore {
  readonly keys: ReturnType<typeof rolloutKeys>;
  private readonly client: RedisConnection;
  private readonly decisionLimit: number;
  private closed = false;

  constructor(options: RedisRolloutStoreOptions) {
    this.keys = rolloutKeys(options.prefix ?? 'rampart:');
    this.decisionLimit = positive(options.decisionLimit ?? 10_000, 'decisionLimit');
    const timeout = positive(options.commandTimeoutMs ?? 2000, 'commandTimeoutMs');
    this.client = createRedisClient(options.url, { commandTimeoutMs: timeout, cluster: options.cluster }, { scripts: { rampartRolloutWrite: { lua: WRITE_LUA, numberOfKeys: 3 } } });
    this.client.on('error', (error: Error) => {
      options.onError?.(error);
    });
  }

  async connect(): Promise<void> {
    try {
      await this.client.connect();
    } catch (error) {
      this.client.disconnect();
      throw unavailable('connect', error);
    }
  }

  async get(key: string): Promise<RolloutRecord | undefined> {
    const text = await this.call('HGET', () => this.client.hget(this.keys.plans, key));
    return text === null ? undefined : parseRecord(text, key);
  }

  async list(): Promise<readonly RolloutRecord[]> {
    const all = await this.call('HGETALL', () => this.client.hgetall(this.keys.plans));
    return Object.entries(all)
      .map(([key, text]) => parseRecord(text, key))
      .sort((a, b) => (a.flagKey < b.flagKey ? -1 : 1));
  }

  async write(record: RolloutRecord, expected: number, options: { readonly decision?: NewDecision | undefined; readonly fence?: Fence | undefined } = {}): Promise<RolloutWriteResult> {
    checkKey(record.flagKey);
    if (record.version !== expected + 1) throw new RampartError('internal', `rollout record version ${record.version} does not follow ${expected}`);
    const reply = await this.call('write', () =>
      this.client.rampartRolloutWrite(
        this.keys.plans, this.keys.decisions(record.flagKey), this.keys.lease,
        record.flagKey, expected, JSON.stringify(record), options.decision === undefined ? '' : JSON.stringify(options.decision),
        options.fence === undefined ? '' : options.fence.token, options.fence?.holder ?? '', this.decisionLimit,
      ),
    );
    const parsed = replySchema.safeParse(reply);
    if (!parsed.success) throw new RampartError('internal', 'unexpected reply from Redis to a rollout write');
    const [status, payload] = parsed.data;
    if (status === 'ok') return { ok: true, record, ...(payload === '' ? {} : { decisionId: payload }) };
    return { ok: false, reason: status, current: payload === '' ? undefined : parseRecord(payload, record.flagKey) };
  }

  async decisions(key: string, options: { readonly limit: number; readonly before?: string | undefined }): Promise<DecisionPage> {
    checkLimit(options.limit);
    if (options.before !== undefined && !/^\d{1,20}-\d{1,20}$/.test(options.before)) {
      throw new RampartError('validation', 'decision cursor is not valid', { errors: [{ path: 'query.before', message: 'not a cursor returned by this API' }] });
    }
    const end = options.before === undefined ? '+' : `(${options.before}`;
    const rows = await this.call('XREVRANGE', () => this.client.xrevrange(this.keys.decisions(key), end, '-', 'COUNT', options.limit + 1));
    const entries = rows.slice(0, options.limit).map(([id, fields]): DecisionEntry => {
      const text = fields[1] ?? '';
      return { id, ...parseStored(decisionSchema, text, `decision ${id} of '${key}' in Redis`) } as DecisionEntry;
    });
    const last = entries.at(-1);
    return rows.length > options.limit && last !== undefined ? { entries, next: last.id } : { entries };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.client.quit().catch(() => {
      this.client.disconnect();
    });
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) throw new RampartError('store-unavailable', 'the Redis rollout store is closed');
    try {
      return await run();
    } catch (error) {
      if (error instanceof RampartError) throw error;
      throw unavailable(what, error);
    }
  }
}

function parseRecord(text: string, key: string): RolloutRecord {
  // The schema mirrors RolloutRecord; zod's optional fields admit undefined, which exactOptionalPropertyTypes tells apart.
  return parseStored(rolloutRecordSchema, text, `rollout of '${key}' in Redis`) as RolloutRecord;
}

function unavailable(what: string, error: unknown): RampartError {
  return new RampartError('store-unavailable', `Redis ${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}

/**
 * Connects and returns the Redis rollout store.
 *
 * @example
 * const rollouts = await createRedisRolloutStore({ url: 'redis://localhost:6379', prefix: 'rampart:' });
 */
export async function createRedisRolloutStore(options: RedisRolloutStoreOptions): Promise<RedisRolloutStore> {
  const store = new RedisRolloutStore(options);
  await store.connect();
  return store;
}
