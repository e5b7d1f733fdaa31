import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';

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

/**
 * A lazily connecting ioredis client with the strict rules above and the given timeouts;
 * `extra` (scripts, TLS, a password...) is merged under them.
 *
 * @example
 * const client = createRedisClient('redis://127.0.0.1:6379', { commandTimeoutMs: 2000 }, { scripts });
 */
export function createRedisClient(
  url: string | undefined,
  timeouts: { readonly commandTimeoutMs: number; readonly connectTimeoutMs?: number | undefined },
  extra: RedisOptions = {},
): Redis {
  const options = {
    ...extra,
    ...STRICT_REDIS_OPTIONS,
    // Replies are parsed in their RESP2 shapes (ioredis' default), whatever the protocol.
    replyMapping: 'legacy' as const,
    commandTimeout: timeouts.commandTimeoutMs,
    connectTimeout: timeouts.connectTimeoutMs ?? 5000,
  };
  return url === undefined ? new Redis(options) : new Redis(url, options);
}
