import { Cluster, Redis } from 'ioredis';
import type { ClusterNode, ClusterOptions, RedisOptions } from 'ioredis';
import { RampartError } from '../core/errors.js';

/** A single Redis or a Redis Cluster: the commands, scripts, MULTI and pipelines Rampart uses work on both. */
export type RedisConnection = Redis | Cluster;

/**
 * The connection rules every Rampart Redis client shares. While Redis is away a call fails at
 * once (the API answers 503) instead of queueing: a queued write that already timed out for its
 * caller would otherwise run later, unseen. For the same reason a command in flight when the
 * connection drops is failed, not resent. Reconnection backs off up to one second.
 */
export const STRICT_REDIS_OPTIONS = {
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  autoResendUnfulfilledCommands: false,
  retryStrategy: (times: number): number => Math.min(times * 100, 1000),
} as const satisfies RedisOptions;

/** How to reach Redis and how long to wait for it. */
export interface RedisConnectionSettings {
  readonly commandTimeoutMs: number;
  readonly connectTimeoutMs?: number | undefined;
  /**
   * The url is a comma-separated list of `redis://` (or `rediss://`) seed nodes of a Redis
   * Cluster; the client learns the other nodes from them.
   */
  readonly cluster?: boolean | undefined;
}

/** Seed nodes of a cluster and the connection options (credentials, TLS) every node shares. */
export interface ClusterSeeds {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly options: Pick<RedisOptions, 'username' | 'password' | 'tls'>;
}

/**
 * Parses `redis://[user:password@]host:port[,redis://host:port...]`. Every seed must use the same
 * scheme and credentials, since they apply to every node; a database other than 0 is refused
 * because a cluster has only database 0.
 *
 * @example
 * parseClusterSeeds('redis://10.0.0.1:7000,redis://10.0.0.2:7000').nodes.length; // 2
 */
export function parseClusterSeeds(urls: string): ClusterSeeds {
  const list = urls.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (list.length === 0) throw invalidSeeds('no seed URL given');
  const parsed = list.map((text) => {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw invalidSeeds(`'${redact(text)}' is not a URL`);
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw invalidSeeds(`'${redact(text)}' is not a redis:// or rediss:// URL`);
    if (url.hostname === '') throw invalidSeeds(`'${redact(text)}' names no host`);
    if (url.pathname !== '' && url.pathname !== '/' && url.pathname !== '/0') throw invalidSeeds(`'${redact(text)}' selects a database; a cluster has only database 0`);
    return { url, host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port: url.port === '' ? 6379 : Number(url.port) };
  });
  const first = parsed[0]?.url;
  if (first === undefined) throw invalidSeeds('no seed URL given');
  for (const { url } of parsed) {
    if (url.protocol !== first.protocol || url.username !== first.username || url.password !== first.password) {
      throw invalidSeeds('every seed URL must use the same scheme, user and password');
    }
  }
  const options: ClusterSeeds['options'] = {
    ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
    ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
    ...(first.protocol === 'rediss:' ? { tls: {} } : {}),
  };
  return { nodes: parsed.map(({ host, port }) => ({ host, port })), options };
}

/**
 * A lazily connecting ioredis client with the strict rules above and the given timeouts;
 * `extra` (scripts, TLS, a password...) is merged under them. With `cluster`, an ioredis
 * `Cluster` on the seed URLs, under the same rules.
 *
 * @example
 * const client = createRedisClient('redis://127.0.0.1:6379', { commandTimeoutMs: 2000 }, { scripts });
 * const cluster = createRedisClient('redis://10.0.0.1:7000', { commandTimeoutMs: 2000, cluster: true }, { scripts });
 */
export function createRedisClient(url: string | undefined, settings: RedisConnectionSettings, extra: RedisOptions = {}): RedisConnection {
  const options = {
    ...extra,
    ...STRICT_REDIS_OPTIONS,
    // Replies are parsed in their RESP2 shapes (ioredis' default), whatever the protocol.
    replyMapping: 'legacy' as const,
    commandTimeout: settings.commandTimeoutMs,
    connectTimeout: settings.connectTimeoutMs ?? 5000,
  };
  if (settings.cluster !== true) return url === undefined ? new Redis(options) : new Redis(url, options);
  if (url === undefined) throw invalidSeeds('cluster mode needs the seed URLs');
  return createCluster(parseClusterSeeds(url), options);
}

function createCluster(seeds: ClusterSeeds, options: RedisOptions & typeof STRICT_REDIS_OPTIONS & { replyMapping: 'legacy' }): Cluster {
  const { scripts, keyPrefix, retryStrategy, enableOfflineQueue, lazyConnect, ...rest } = options;
  // What only a single Redis understands, or what the cluster sets per node itself.
  const nodeOptions = omit(rest, ['sentinels', 'host', 'port', 'path', 'readOnly', 'himportFieldsets']);
  return new Cluster(
    seeds.nodes.map((node): ClusterNode => ({ host: node.host, port: node.port })),
    {
      lazyConnect,
      // Commands never wait for the cluster: while it is unreachable they fail at once.
      enableOfflineQueue,
      clusterRetryStrategy: retryStrategy,
      // A node connection that drops fails its commands in flight (maxRetriesPerRequest 0)
      // instead of ending, which would make the cluster resend them to another node. Commands
      // that never reached a node (it was still connecting) are retried shortly, as are MOVED,
      // ASK, TRYAGAIN and CLUSTERDOWN replies: Redis gives those without running the command.
      clusterNodeRetryStrategy: retryStrategy,
      ...(scripts === undefined ? {} : { scripts: clusterScripts(scripts) }),
      ...(keyPrefix === undefined || keyPrefix === '' ? {} : { keyPrefix }),
      slotsRefreshTimeout: options.connectTimeout ?? 5000,
      redisOptions: { ...nodeOptions, ...seeds.options },
    },
  );
}

function omit<T extends object, K extends keyof T & string>(value: T, keys: readonly K[]): Omit<T, K> {
  const dropped = new Set<string>(keys);
  return Object.fromEntries(Object.entries(value).filter(([key]) => !dropped.has(key))) as Omit<T, K>;
}

// The same definitions; only their optional fields are typed differently.
function clusterScripts(scripts: NonNullable<RedisOptions['scripts']>): NonNullable<ClusterOptions['scripts']> {
  const out: NonNullable<ClusterOptions['scripts']> = {};
  for (const [name, { lua, numberOfKeys, readOnly }] of Object.entries(scripts)) {
    out[name] = { lua, ...(numberOfKeys === undefined ? {} : { numberOfKeys }), ...(readOnly === undefined ? {} : { readOnly }) };
  }
  return out;
}

/**
 * A second connection like `client` (for a subscriber, which can run nothing else).
 *
 * @example
 * const subscriber = duplicateConnection(client, 'rampart-subscriber');
 */
export function duplicateConnection(client: RedisConnection, connectionName: string): RedisConnection {
  if (client instanceof Cluster) return client.duplicate([], { redisOptions: { ...client.options.redisOptions, connectionName, replyMapping: 'legacy' as const } });
  return client.duplicate({ connectionName });
}

function invalidSeeds(detail: string): RampartError {
  return new RampartError('validation', `invalid Redis Cluster seed URLs: ${detail}`);
}

function redact(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
