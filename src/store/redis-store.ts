// The Redis adapter: the only module that imports ioredis. Every write is one Lua script, so the
// compare-and-set, the revision bump, both stream appends and the PUBLISH happen atomically.
import { createRedisClient, duplicateConnection } from './redis-connection.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisOptions, Result } from 'ioredis';
import { z } from 'zod';
import { asError, RampartError } from '../core/errors.js';
import { withTimeout } from '../core/timeout.js';
import type { ChangeMeta, Flag, FlagChange, FlagFields, HistoryEntry } from '../core/flag.js';
import {
  checkExpected,
  checkKey,
  checkLimit,
  checkRevision,
  decodeCursor,
  encodeCursor,
  encodeFlag,
  flagChangeSchema,
  flagSchema,
  nextFlagFromVersion,
  parseStored,
  positive,
  storedMetaSchema,
  toFlagChange,
  toHistoryEntry,
  toStoredMeta,
} from './codec.js';
import type { DeleteResult, ExpectedVersion, FlagStore, HistoryPage, StoreSnapshot, WriteResult } from './flag-store.js';

// The scripts are typed here rather than cast at each call; replies are parsed with zod anyway.
declare module 'ioredis' {
  interface RedisCommander<Context> {
    rampartPut(...args: (string | number)[]): Result<unknown, Context>;
    rampartDelete(...args: (string | number)[]): Result<unknown, Context>;
    rampartSnapshot(...args: string[]): Result<unknown, Context>;
    rampartChanges(...args: (string | number)[]): Result<unknown, Context>;
  }
}

// Redis does not roll back a script that fails half way, so each write script makes every check
// before its first write; under maxmemory Redis refuses a script at its first write, that is
// before anything changed. (Evictions must be off: `maxmemory-policy noeviction`.)
// Stream ids are `<revision>-0`, which is what lets changesSince use XRANGE.
// Needs Redis 6.2+ (exclusive XREVRANGE bounds).
// KEYS: data, versions, revision, history:<key>, changes.
// ARGV: key, expected, base version, flag JSON, meta JSON, history limit, feed limit, channel.
const PUT_LUA = `
local key = ARGV[1]
local expected = tonumber(ARGV[2])
local base = tonumber(ARGV[3])
local current = redis.call('HGET', KEYS[1], key)
local version = tonumber(redis.call('HGET', KEYS[2], key) or '0')
if expected == 0 then
  if current then return {'mismatch', current} end
  -- The flag was deleted before: its versions continue from the last one (see RedisFlagStore).
  if version ~= base then return {'retired', tostring(version)} end
elseif (not current) or version ~= expected then
  return {'mismatch', current}
end
local after = ARGV[4]
redis.call('HSET', KEYS[1], key, after)
redis.call('HSET', KEYS[2], key, tostring(base + 1))
local revision = redis.call('INCR', KEYS[3])
local id = tostring(revision) .. '-0'
local action = 'create'
if current then action = 'update' end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[6], id, 'action', action, 'meta', ARGV[5], 'before', current or '', 'after', after)
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[7], id, 'key', key, 'flag', after)
redis.call('PUBLISH', ARGV[8], '{"revision":' .. tostring(revision) .. ',"key":' .. cjson.encode(key) .. ',"flag":' .. after .. '}')
return {'ok', revision}
`;

// KEYS as for PUT. ARGV: key, expected, meta JSON, history limit, feed limit, channel.
// The versions entry is kept, so a re-created flag continues its version numbers.
const DELETE_LUA = `
local key = ARGV[1]
local expected = tonumber(ARGV[2])
local current = redis.call('HGET', KEYS[1], key)
local version = tonumber(redis.call('HGET', KEYS[2], key) or '0')
if (not current) or expected == 0 or version ~= expected then return {'mismatch', current} end
redis.call('HDEL', KEYS[1], key)
local revision = redis.call('INCR', KEYS[3])
local id = tostring(revision) .. '-0'
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[4], id, 'action', 'delete', 'meta', ARGV[3], 'before', current, 'after', '')
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], id, 'key', key, 'flag', '')
redis.call('PUBLISH', ARGV[6], '{"revision":' .. tostring(revision) .. ',"key":' .. cjson.encode(key) .. ',"flag":null}')
return {'ok', revision}
`;

// KEYS: revision, data. One script, so the flags and the revision belong together.
const SNAPSHOT_LUA = `
return {redis.call('GET', KEYS[1]) or '0', redis.call('HVALS', KEYS[2])}
`;

// KEYS: revision, changes. ARGV: since. The revision comes along so the caller can tell
// "nothing new" from "trimmed" from "this Redis was reset below the caller's revision".
const CHANGES_LUA = `
local revision = tonumber(redis.call('GET', KEYS[1]) or '0')
local since = tonumber(ARGV[1])
if since >= revision then return {revision, {}} end
return {revision, redis.call('XRANGE', KEYS[2], tostring(since + 1) .. '-0', '+')}
`;

const CATCH_UP_RETRY_MS = 250;

const writeReplySchema = z.union([
  z.tuple([z.literal('ok'), z.number().int()]),
  z.tuple([z.literal('mismatch'), z.string().nullable()]),
  z.tuple([z.literal('retired'), z.string()]),
]);
const snapshotReplySchema = z.tuple([z.string(), z.array(z.string())]);
const streamEntrySchema = z.tuple([z.string(), z.array(z.string())]);
const changesReplySchema = z.tuple([z.number().int(), z.array(streamEntrySchema)]);

/**
 * Settings of createRedisStore; everything but the connection has a default.
 *
 * @example
 * const options: RedisStoreOptions = { url: 'redis://localhost:6379', commandTimeoutMs: 1000 };
 */
export interface RedisStoreOptions {
  /** `redis://` or `rediss://` URL; combined with `redis` when both are given. */
  readonly url?: string | undefined;
  /** `url` is a comma-separated list of seed nodes of a Redis Cluster (see createRedisClient). */
  readonly cluster?: boolean | undefined;
  /** Further ioredis options (TLS, password, sentinels...); the timeouts below win over these. */
  readonly redis?: RedisOptions | undefined;
  /** Prefix of every key and of the channel; default `rampart:`. */
  readonly prefix?: string | undefined;
  /** Longest wait for any single Redis reply; default 2000 ms. */
  readonly commandTimeoutMs?: number | undefined;
  /** Longest wait for a TCP connection; default 5000 ms. */
  readonly connectTimeoutMs?: number | undefined;
  /** Audit entries kept per flag, at least (trimming is approximate); default 1000. */
  readonly historyLimit?: number | undefined;
  /** Change-feed entries kept, at least (trimming is approximate); default 10000. */
  readonly changeFeedLimit?: number | undefined;
  /** Problems no caller is waiting for: connection errors, a failed subscriber catch-up. */
  readonly onError?: ((error: Error) => void) | undefined;
  /**
   * How often subscribers check the change feed for a change whose message they missed; 0 never.
   * Default 5000 ms on a cluster, whose subscriber connection moves to another node on its own
   * (after a node failure) without telling the store; 0 on a single Redis, where a reconnect
   * already triggers that check.
   */
  readonly resyncIntervalMs?: number | undefined;
}

/**
 * Key names of one store; all share the `{flags}` hash tag so scripts work on Redis Cluster.
 *
 * @example
 * redisStoreKeys('rampart:').history('checkout'); // 'rampart:{flags}:history:checkout'
 */
export interface RedisStoreKeys {
  readonly data: string;
  readonly versions: string;
  readonly revision: string;
  readonly changes: string;
  readonly channel: string;
  history(key: string): string;
}

/**
 * Key layout for a prefix.
 *
 * @example
 * redisStoreKeys('rampart:').data; // 'rampart:{flags}:data'
 */
export function redisStoreKeys(prefix: string): RedisStoreKeys {
  const base = `${prefix}{flags}:`;
  return {
    data: `${base}data`,
    versions: `${base}versions`,
    revision: `${base}revision`,
    changes: `${base}changes`,
    channel: `${base}events`,
    history: (key) => `${base}history:${key}`,
  };
}

interface FeedRead {
  readonly revision: number;
  /** undefined: the feed does not reach back to the requested revision. */
  readonly changes: readonly FlagChange[] | undefined;
}

interface Subscription {
  readonly listener: (change: FlagChange) => void;
  /** Changes up to this revision happened before subscribe() resolved. */
  after: number;
}

/**
 * FlagStore on Redis: flags in one hash, history and change feed in capped streams, changes on pub/sub.
 *
 * A deleted flag keeps its last version in the `versions` hash and a re-created flag continues
 * from it (v3, delete, re-create: v4), so a version, which is also the HTTP ETag, never names
 * two different states of one key. Its history stream stays and continues as well.
 *
 * @example
 * const store = new RedisFlagStore({ url: 'redis://localhost:6379' }); await store.connect();
 */
export class RedisFlagStore implements FlagStore {
  readonly keys: RedisStoreKeys;
  private readonly client: RedisConnection;
  private readonly historyLimit: number;
  private readonly changeFeedLimit: number;
  private readonly commandTimeoutMs: number;
  private readonly onError: (error: Error) => void;
  private readonly subscriptions = new Set<Subscription>();
  private subscriber: RedisConnection | undefined;
  private connecting: Promise<void> | undefined;
  private subscribing: Promise<void> | undefined;
  /** Highest revision handed to listeners: drops duplicates and reveals gaps. */
  private delivered: number | undefined;
  /** Deliveries run one at a time, so listeners see revisions in order even across a catch-up. */
  private deliveryQueue: Promise<void> = Promise.resolve();
  private catchUpTimer: NodeJS.Timeout | undefined;
  private readonly resyncIntervalMs: number;
  private resyncTimer: NodeJS.Timeout | undefined;
  private resyncPending = false;
  private closed = false;

  constructor(options: RedisStoreOptions = {}) {
    this.keys = redisStoreKeys(options.prefix ?? 'rampart:');
    this.historyLimit = positive(options.historyLimit ?? 1000, 'historyLimit');
    this.changeFeedLimit = positive(options.changeFeedLimit ?? 10_000, 'changeFeedLimit');
    this.commandTimeoutMs = positive(options.commandTimeoutMs ?? 2000, 'commandTimeoutMs');
    this.onError = options.onError ?? (() => undefined);
    this.resyncIntervalMs = options.resyncIntervalMs ?? (options.cluster === true ? 5000 : 0);
    if (!Number.isInteger(this.resyncIntervalMs) || this.resyncIntervalMs < 0) throw new RampartError('validation', 'resyncIntervalMs must be a whole number of milliseconds, 0 or more');
    this.client = createRedisClient(
      options.url,
      {
        commandTimeoutMs: this.commandTimeoutMs,
        connectTimeoutMs: positive(options.connectTimeoutMs ?? 5000, 'connectTimeoutMs'),
        cluster: options.cluster,
      },
      {
        ...options.redis,
        // Our own prefix covers it; an ioredis keyPrefix would not apply to the channel.
        keyPrefix: '',
        // Resubscription is done by hand (see openSubscriber) so it can be followed by a catch-up.
        autoResubscribe: false,
        scripts: {
          rampartPut: { lua: PUT_LUA, numberOfKeys: 5 },
          rampartDelete: { lua: DELETE_LUA, numberOfKeys: 5 },
          rampartSnapshot: { lua: SNAPSHOT_LUA, numberOfKeys: 2, readOnly: true },
          rampartChanges: { lua: CHANGES_LUA, numberOfKeys: 2, readOnly: true },
        },
      },
    );
    this.client.on('error', (error: Error) => {
      this.onError(error);
    });
  }

  /** Opens the connection; rejects (and stops retrying) when Redis cannot be reached. Idempotent. */
  connect(): Promise<void> {
    this.connecting ??= this.client.connect().catch((error: unknown) => {
      this.client.disconnect();
      throw unavailable('connect', error);
    });
    return this.connecting;
  }

  async get(key: string): Promise<Flag | undefined> {
    const text = await this.call('HGET', () => this.client.hget(this.keys.data, key));
    return text === null ? undefined : parseStored(flagSchema, text, `flag '${key}' in Redis`);
  }

  async snapshot(): Promise<StoreSnapshot> {
    const reply = await this.call('snapshot', () => this.client.rampartSnapshot(this.keys.revision, this.keys.data));
    const [revision, values] = parseReply(snapshotReplySchema, reply, 'snapshot');
    const flags = values.map((text) => parseStored(flagSchema, text, 'a flag in Redis'));
    flags.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { revision: Number(revision), flags };
  }

  async put(key: string, fields: FlagFields, expected: ExpectedVersion, meta: ChangeMeta): Promise<WriteResult> {
    checkKey(key);
    checkExpected(expected);
    // Normally the new version is expected + 1. Re-creating a deleted flag continues from its
    // last version, which only Redis knows: the script answers 'retired' with it and we rebuild.
    // Each retry means another writer re-created and deleted the flag meanwhile, so a few suffice.
    let base = expected;
    for (let attempt = 0; attempt < 5; attempt++) {
      const flag = nextFlagFromVersion(key, fields, base, meta);
      const reply = await this.call('put', () =>
        this.client.rampartPut(
          ...this.writeKeys(key),
          key, expected, base, encodeFlag(flag), JSON.stringify(toStoredMeta(meta)),
          this.historyLimit, this.changeFeedLimit, this.keys.channel,
        ),
      );
      const result = parseReply(writeReplySchema, reply, 'put');
      if (result[0] === 'ok') return { ok: true, flag, created: expected === 0, revision: result[1] };
      if (result[0] === 'mismatch') return { ok: false, current: this.parseFlag(result[1], key) };
      base = Number(result[1]);
    }
    throw new RampartError('conflict', `flag '${key}' was re-created and deleted concurrently too often; try again`);
  }

  async delete(key: string, expected: ExpectedVersion, meta: ChangeMeta): Promise<DeleteResult> {
    checkExpected(expected);
    const reply = await this.call('delete', () =>
      this.client.rampartDelete(
        ...this.writeKeys(key),
        key, expected, JSON.stringify(toStoredMeta(meta)), this.historyLimit, this.changeFeedLimit, this.keys.channel,
      ),
    );
    const result = parseReply(writeReplySchema, reply, 'delete');
    if (result[0] === 'ok') return { ok: true, revision: result[1] };
    if (result[0] === 'mismatch') return { ok: false, current: this.parseFlag(result[1], key) };
    throw new RampartError('internal', `unexpected reply to delete of '${key}'`);
  }

  async history(key: string, options: { readonly limit: number; readonly before?: string | undefined }): Promise<HistoryPage> {
    checkLimit(options.limit);
    // Exclusive range end: the page starts strictly below the last entry of the previous page.
    const end = options.before === undefined ? '+' : `(${decodeCursor(options.before)}-0`;
    const rows = await this.call('XREVRANGE', () => this.client.xrevrange(this.keys.history(key), end, '-', 'COUNT', options.limit + 1));
    const entries = rows.slice(0, options.limit).map(([id, fields]) => this.parseHistoryEntry(key, id, fields));
    const last = entries.at(-1);
    return rows.length > options.limit && last !== undefined ? { entries, next: encodeCursor(last.revision) } : { entries };
  }

  async changesSince(revision: number): Promise<readonly FlagChange[] | undefined> {
    return (await this.readFeed(revision)).changes;
  }

  async subscribe(listener: (change: FlagChange) => void): Promise<() => Promise<void>> {
    if (this.closed) throw closedError();
    this.subscribing ??= this.openSubscriber().catch((error: unknown) => {
      this.subscribing = undefined;
      throw error;
    });
    await this.subscribing;
    const subscription: Subscription = { listener, after: 0 };
    // Registered from inside the delivery queue, after reading the revision there: every message
    // queued before this task was published before that read, every later one after it. So the
    // listener gets exactly the changes above `after`, with nothing lost in between.
    await this.enqueueAndWait(async () => {
      const text = await this.call('GET', () => this.client.get(this.keys.revision));
      subscription.after = Number(text ?? '0');
      this.delivered ??= subscription.after;
      this.subscriptions.add(subscription);
    });
    return () => {
      this.subscriptions.delete(subscription);
      return Promise.resolve();
    };
  }

  async ping(): Promise<void> {
    await this.call('PING', () => this.client.ping());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.subscriptions.clear();
    clearTimeout(this.catchUpTimer);
    clearInterval(this.resyncTimer);
    const connections = [this.client, this.subscriber].filter((c): c is RedisConnection => c !== undefined);
    await Promise.all(connections.map((c) => shutdown(c, this.commandTimeoutMs)));
  }

  private writeKeys(key: string): [string, string, string, string, string] {
    return [this.keys.data, this.keys.versions, this.keys.revision, this.keys.history(key), this.keys.changes];
  }

  private parseFlag(text: string | null, key: string): Flag | undefined {
    return text === null ? undefined : parseStored(flagSchema, text, `flag '${key}' in Redis`);
  }

  private parseHistoryEntry(key: string, id: string, fields: readonly string[]): HistoryEntry {
    const where = `history entry ${id} of '${key}' in Redis`;
    const map = pairs(fields);
    const action = z.enum(['create', 'update', 'delete']).safeParse(map.get('action'));
    const metaText = map.get('meta');
    if (!action.success || metaText === undefined) throw new RampartError('internal', `${where} lacks action or meta`);
    const meta = parseStored(storedMetaSchema, metaText, where);
    const before = map.get('before') ?? '';
    const after = map.get('after') ?? '';
    return toHistoryEntry(
      key,
      revisionOfId(id),
      action.data,
      before === '' ? null : parseStored(flagSchema, before, where),
      after === '' ? null : parseStored(flagSchema, after, where),
      meta,
    );
  }

  private async readFeed(since: number): Promise<FeedRead> {
    checkRevision(since);
    const reply = await this.call('changes', () => this.client.rampartChanges(this.keys.revision, this.keys.changes, since));
    const [revision, rows] = parseReply(changesReplySchema, reply, 'changesSince');
    // A caller ahead of Redis saw a revision this Redis never reached (it was reset): no list
    // of changes leads from there, so the caller must start over from a snapshot.
    if (since > revision) return { revision, changes: undefined };
    const changes: FlagChange[] = [];
    for (const [id, fields] of rows) {
      // Entries are contiguous from since + 1; anything else means the oldest ones were trimmed.
      if (revisionOfId(id) !== since + 1 + changes.length) return { revision, changes: undefined };
      const map = pairs(fields);
      const key = map.get('key') ?? '';
      const flag = map.get('flag') ?? '';
      changes.push({ revision: revisionOfId(id), key, flag: flag === '' ? null : parseStored(flagSchema, flag, `change ${id} in Redis`) });
    }
    return { revision, changes: since + changes.length === revision ? changes : undefined };
  }

  private async openSubscriber(): Promise<void> {
    // A connection in subscriber mode can run nothing else, hence a second one. (A Cluster
    // subscribes on a connection of its own anyway; the second one keeps both modes alike.)
    const subscriber = duplicateConnection(this.client, 'rampart-subscriber');
    this.subscriber = subscriber;
    let connectedOnce = false;
    subscriber.on('error', (error: Error) => {
      this.onError(error);
    });
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.keys.channel) this.enqueue(() => this.onMessage(message));
    });
    subscriber.on('ready', () => {
      if (!connectedOnce) return;
      // After a reconnect: subscribe again, then fetch what was published while we were away.
      withTimeout(subscriber.subscribe(this.keys.channel), this.commandTimeoutMs, 'SUBSCRIBE').then(
        () => {
          this.enqueue(() => this.catchUp());
        },
        (error: unknown) => {
          this.onError(unavailable('resubscribe', error));
          subscriber.disconnect(true);
        },
      );
    });
    try {
      await subscriber.connect();
      // A Cluster's subscriber connection has no command timeout of its own.
      await withTimeout(subscriber.subscribe(this.keys.channel), this.commandTimeoutMs, 'SUBSCRIBE');
      connectedOnce = true;
      if (this.resyncIntervalMs > 0 && !this.closed) this.startResync();
    } catch (error) {
      subscriber.disconnect();
      this.subscriber = undefined;
      throw unavailable('subscribe', error);
    }
    if (this.closed) subscriber.disconnect();
  }

  private startResync(): void {
    this.resyncTimer = setInterval(() => {
      if (this.resyncPending || this.closed) return;
      this.resyncPending = true;
      this.enqueue(() => this.catchUp().finally(() => {
        this.resyncPending = false;
      }));
    }, this.resyncIntervalMs);
    this.resyncTimer.unref();
  }

  private enqueue(task: () => Promise<void>): void {
    this.deliveryQueue = this.deliveryQueue.then(task).catch((error: unknown) => {
      this.onError(asError(error));
    });
  }

  private enqueueAndWait(task: () => Promise<void>): Promise<void> {
    return new Promise((resolve, reject) => {
      this.enqueue(() => task().then(resolve, reject));
    });
  }

  private async onMessage(message: string): Promise<void> {
    const change = toFlagChange(parseStored(flagChangeSchema, message, 'a change message from Redis'));
    // A gap: fill it from the change feed, which holds this change too.
    if (this.delivered !== undefined && change.revision > this.delivered + 1) {
      await this.catchUp();
      return;
    }
    if (this.delivered !== undefined && change.revision <= this.delivered) return;
    this.emit(change);
  }

  /**
   * Delivers every change after the last delivered one. When Redis cannot be read yet (the
   * subscriber often reconnects before the command connection), it tries again shortly, so
   * listeners are never left behind waiting for a next change.
   */
  private async catchUp(): Promise<void> {
    const from = this.delivered;
    if (from === undefined || this.closed) return;
    let feed: FeedRead;
    try {
      feed = await this.readFeed(from);
    } catch (error) {
      this.onError(asError(error));
      this.catchUpTimer ??= setTimeout(() => {
        this.catchUpTimer = undefined;
        this.enqueue(() => this.catchUp());
      }, CATCH_UP_RETRY_MS);
      return;
    }
    if (feed.changes === undefined) {
      // Trimmed or reset: listeners cannot be told every change; they continue from here and
      // SDK clients repair themselves with their next snapshot poll.
      this.delivered = feed.revision;
      this.onError(new RampartError('store-unavailable', `subscriber missed changes after revision ${from}: the change feed no longer reaches back that far`));
      return;
    }
    for (const change of feed.changes) {
      if (change.revision > (this.delivered ?? 0)) this.emit(change);
    }
  }

  private emit(change: FlagChange): void {
    this.delivered = change.revision;
    for (const { listener, after } of this.subscriptions) {
      if (change.revision <= after) continue;
      try {
        listener(change);
      } catch (error) {
        this.onError(asError(error));
      }
    }
  }

  private async call<T>(what: string, run: () => Promise<T>): Promise<T> {
    if (this.closed) throw closedError();
    try {
      return await run();
    } catch (error) {
      if (error instanceof RampartError) throw error;
      throw unavailable(what, error);
    }
  }
}

/**
 * Connects to Redis and returns the store; rejects with 'store-unavailable' when Redis is unreachable.
 *
 * @example
 * const store = await createRedisStore({ url: process.env.REDIS_URL, prefix: 'rampart:' });
 */
export async function createRedisStore(options: RedisStoreOptions = {}): Promise<RedisFlagStore> {
  const store = new RedisFlagStore(options);
  await store.connect();
  return store;
}

/**
 * QUIT lets replies in flight arrive; when Redis is gone it fails at once and the socket is
 * dropped. Resolves once the socket is closed, so close() leaves no handle behind, but never
 * waits longer than `timeoutMs` for it.
 */
async function shutdown(connection: RedisConnection, timeoutMs: number): Promise<void> {
  const ended = new Promise<void>((resolve) => connection.once('end', () => { resolve(); }));
  await connection.quit().catch(() => {
    connection.disconnect();
  });
  // Without a live socket (already ended, or between reconnects) there is nothing to wait for.
  if (connection.status === 'end' || connection.status === 'reconnecting' || connection.status === 'close' || connection.status === 'wait') return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([ended, new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); })]);
  clearTimeout(timer);
}

function unavailable(what: string, error: unknown): RampartError {
  const detail = error instanceof Error ? error.message : String(error);
  return new RampartError('store-unavailable', `Redis ${what} failed: ${detail}`, { cause: error });
}

function closedError(): RampartError {
  return new RampartError('store-unavailable', 'the Redis store is closed');
}

function parseReply<T>(schema: z.ZodType<T>, reply: unknown, what: string): T {
  const parsed = schema.safeParse(reply);
  if (!parsed.success) throw new RampartError('internal', `unexpected reply from Redis to ${what}`, { cause: parsed.error });
  return parsed.data;
}

function pairs(fields: readonly string[]): Map<string, string> {
  const map = new Map<string, string>();
  for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i] ?? '', fields[i + 1] ?? '');
  return map;
}

function revisionOfId(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

