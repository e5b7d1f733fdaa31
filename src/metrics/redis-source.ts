// Reads one number from a Redis the plan names (a queue length, a counter...), with read-only
// commands. One connection per URL is kept open between ticks; a connection that cannot be
// established is dropped, so the next observation tries afresh instead of reusing a dead client.
import { Redis } from 'ioredis';
import type { RedisOptions } from 'ioredis';
import type { SourceSpec } from '../core/rollout/plan.js';
import { errorMessage, guarded, parseDecimal, redactUrl, withDeadline } from './http.js';
import type { MetricSource, Observation } from './metric-source.js';

type RedisSpec = Extract<SourceSpec, { type: 'redis' }>;

/**
 * Settings of createRedisSource.
 *
 * @example
 * const options: RedisSourceOptions = { defaultUrl: 'redis://localhost:6379', timeoutMs: 2000 };
 */
export interface RedisSourceOptions {
  /** Used for specs without a `url` (normally the Redis of the flag store). */
  readonly defaultUrl?: string | undefined;
  /** Longest wait for one observation, connecting included; default 5000 ms. */
  readonly timeoutMs?: number | undefined;
}

interface Connection {
  readonly client: Redis;
  /** The last connection error, because connect() itself only says "Connection is closed". */
  lastError: Error | undefined;
  ready: Promise<void> | undefined;
}

/**
 * A MetricSource for `{ type: 'redis' }` specs: LLEN, XLEN and ZCARD read 0 for a missing key
 * (as Redis answers); GET and HGET read `empty` for a missing key or field and `error` for a
 * value that is not a decimal number.
 *
 * @example
 * const source = createRedisSource({ defaultUrl: 'redis://localhost:6379' });
 * await source.observe({ type: 'redis', command: 'LLEN', key: 'jobs' }, 'checkout', new Date());
 * // { kind: 'value', value: 12 }
 * await source.close();
 */
export function createRedisSource(options: RedisSourceOptions = {}): MetricSource {
  const timeoutMs = options.timeoutMs ?? 5000;
  const connections = new Map<string, Connection>();
  let closed = false;

  function connection(url: string): Connection {
    let found = connections.get(url);
    if (found === undefined) {
      const redisOptions: RedisOptions & { replyMapping: 'legacy' } = {
        // Replies in their RESP2 shapes, whatever protocol the server speaks.
        replyMapping: 'legacy',
        lazyConnect: true,
        connectTimeout: timeoutMs,
        commandTimeout: timeoutMs,
        // While the connection is down a read fails at once (an `error` observation) rather than
        // queueing behind a reconnect the guard's tick cannot wait for.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        // A few quick reconnects after a drop, then give up: the next observation reconnects.
        retryStrategy: (times) => (times > 3 ? null : Math.min(times * 100, 500)),
      };
      const created: Connection = { client: new Redis(url, redisOptions), lastError: undefined, ready: undefined };
      // Without a listener ioredis prints every connection error to the console.
      created.client.on('error', (error: Error) => {
        created.lastError = error;
      });
      created.client.on('ready', () => {
        created.lastError = undefined;
      });
      connections.set(url, created);
      found = created;
    }
    return found;
  }

  function forget(url: string, entry: Connection): void {
    if (connections.get(url) === entry) connections.delete(url);
    entry.client.disconnect();
  }

  async function ready(url: string): Promise<Connection> {
    const entry = connection(url);
    const { client } = entry;
    if (client.status === 'ready') return entry;
    if (client.status === 'reconnecting' || client.status === 'connecting' || client.status === 'connect') {
      // Never connected yet (our own connect() is pending), or ioredis is reconnecting: wait.
      entry.ready ??= waitForReady(client);
    } else {
      entry.lastError = undefined;
      entry.ready = client.connect();
    }
    const pending = entry.ready;
    try {
      // A TCP connection to a frozen server succeeds and then the ready check hangs; connectTimeout
      // does not cover that, so the wait is bounded here too.
      const connected = await withDeadline(pending.then(() => true), timeoutMs, () => false);
      if (!connected) throw new Error(`no connection within ${timeoutMs} ms`);
      if (entry.ready === pending) entry.ready = undefined;
      return entry;
    } catch (error) {
      forget(url, entry);
      throw new Error(`cannot connect: ${connectFailure(error, entry.lastError)}`, { cause: error });
    }
  }

  async function read(spec: RedisSpec, url: string): Promise<Observation> {
    const where = `key '${spec.key}'`;
    if (spec.command === 'HGET' && (spec.field === undefined || spec.field === '')) {
      return { kind: 'error', detail: `redis HGET ${where} needs a field` };
    }
    const { client } = await ready(url);
    switch (spec.command) {
      case 'LLEN':
        return { kind: 'value', value: await client.llen(spec.key) };
      case 'XLEN':
        return { kind: 'value', value: await client.xlen(spec.key) };
      case 'ZCARD':
        return { kind: 'value', value: await client.zcard(spec.key) };
      case 'GET':
        return numeric(await client.get(spec.key), where);
      case 'HGET': {
        const field = spec.field ?? '';
        return numeric(await client.hget(spec.key, field), `field '${field}' of ${where}`);
      }
    }
  }

  return {
    async observe(spec: SourceSpec): Promise<Observation> {
      if (spec.type !== 'redis') return { kind: 'error', detail: `the redis source cannot read a '${spec.type}' source` };
      if (closed) return { kind: 'error', detail: 'the redis source is closed' };
      const url = spec.url ?? options.defaultUrl;
      if (url === undefined || url === '') {
        return { kind: 'error', detail: `redis ${spec.command} '${spec.key}': the source has no url and no default Redis is configured` };
      }
      return guarded(() => read(spec, url), timeoutMs, `redis ${spec.command} '${spec.key}' at ${redactUrl(url)}`);
    },

    async close(): Promise<void> {
      closed = true;
      const all = [...connections.values()];
      connections.clear();
      await Promise.all(all.map((entry) => quit(entry.client, timeoutMs)));
    },
  };
}

function waitForReady(client: Redis): Promise<void> {
  return new Promise((resolve, reject) => {
    const onReady = (): void => {
      client.off('end', onEnd);
      resolve();
    };
    const onEnd = (): void => {
      client.off('ready', onReady);
      reject(new Error('Connection is closed.'));
    };
    client.once('ready', onReady);
    client.once('end', onEnd);
  });
}

function connectFailure(error: unknown, lastError: Error | undefined): string {
  const own = errorMessage(error);
  if (lastError === undefined || own.includes(lastError.message)) return own;
  // ioredis rejects connect() with a bare "Connection is closed."; the socket error says why.
  return own === 'Connection is closed.' ? lastError.message : `${lastError.message} (${own})`;
}

function numeric(text: string | null, where: string): Observation {
  if (text === null) return { kind: 'empty', detail: `${where} does not exist` };
  const value = parseDecimal(text);
  if (value === undefined) return { kind: 'error', detail: `value '${clip(text)}' at ${where} is not a number` };
  return { kind: 'value', value };
}

function clip(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

async function quit(client: Redis, timeoutMs: number): Promise<void> {
  if (client.status !== 'ready') {
    client.disconnect();
    return;
  }
  // QUIT lets a reply in flight finish; a Redis that does not answer is cut off.
  const done = await withDeadline(client.quit().then(() => true, () => false), timeoutMs, () => false);
  if (!done) client.disconnect();
}
