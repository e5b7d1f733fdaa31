import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from './core/duration.js';
import { parseClusterSeeds } from './store/redis-connection.js';

const list = z
  .string()
  .optional()
  .transform((value) => (value ?? '').split(',').map((t) => t.trim()).filter((t) => t !== ''));

/** A bearer token and the name history records for its writes. */
export interface Token {
  readonly name: string;
  readonly secret: string;
}

// `name:secret` names a token; a bare secret is named by its role and position (admin-1, sdk-2),
// so the secret itself never lands in history or logs.
function tokens(role: string) {
  return list.transform((entries): Token[] =>
    entries.map((entry, i) => {
      const match = /^([A-Za-z0-9._-]{1,64}):(.+)$/.exec(entry);
      return match?.[1] !== undefined && match[2] !== undefined
        ? { name: match[1], secret: match[2] }
        : { name: `${role}-${i + 1}`, secret: entry };
    }),
  );
}

/** `v` in milliseconds when it is a positive duration (`500ms`, `1s`, `10m`), else undefined. */
function positiveDuration(v: string): number | undefined {
  try {
    const ms = parseDuration(v);
    return ms > 0 ? ms : undefined;
  } catch {
    return undefined;
  }
}

// A duration variable such as `1s` or `15s`, parsed to milliseconds.
const durationVar = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => positiveDuration(v) !== undefined, 'must be a positive duration such as 500ms, 1s or 15s')
    .transform((v) => positiveDuration(v) ?? 0);

// A duration that may also be `0`, meaning "never".
const durationOrOff = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .refine((v) => v.trim() === '0' || positiveDuration(v) !== undefined, 'must be 0 (never) or a positive duration such as 30s or 10m')
    .transform((v) => positiveDuration(v) ?? 0);

const level = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default('127.0.0.1'),
  REDIS_URL: z
    .string()
    .optional()
    .transform((v) => (v === '' ? undefined : v))
    .refine((v) => v === undefined || /^rediss?:\/\//.test(v) || v.startsWith('/'), 'must be a redis:// or rediss:// URL'),
  REDIS_CLUSTER: z.enum(['on', 'off']).default('off'),
  RAMPART_DATA_DIR: z.string().min(1).default('./.rampart'),
  RAMPART_REDIS_PREFIX: z.string().min(1).default('rampart:'),
  RAMPART_ADMIN_TOKENS: tokens('admin'),
  RAMPART_SDK_TOKENS: tokens('sdk'),
  RAMPART_CORS_ORIGINS: list,
  RAMPART_GUARD: z.enum(['on', 'off']).default('on'),
  RAMPART_GUARD_INTERVAL: durationVar('1s'),
  RAMPART_GUARD_LEASE_TTL: durationVar('15s'),
  RAMPART_GUARD_SOURCE_TIMEOUT: durationVar('5s'),
  RAMPART_NOTIFY_TIMEOUT: durationVar('2s'),
  RAMPART_GUARD_METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  RAMPART_OUTCOME_SLICE: durationVar('10s'),
  RAMPART_OUTCOME_RETENTION: durationVar('48h'),
  RAMPART_OUTCOME_BATCHES_PER_SECOND: z.coerce.number().int().min(1).default(50),
  RAMPART_OUTCOME_EVENTS_PER_MINUTE: z.coerce.number().int().min(1).default(20_000),
  RAMPART_MAX_STREAMS_PER_TOKEN: z.coerce.number().int().min(0).default(1000),
  RAMPART_STREAM_IDLE_TIMEOUT: durationOrOff('10m'),
  LOG_LEVEL: level.default('info'),
});

/** Server configuration, parsed once from the environment and frozen. */
export interface Config {
  readonly port: number;
  readonly host: string;
  readonly redisUrl: string | undefined;
  /** REDIS_CLUSTER=on: REDIS_URL lists seed nodes (comma-separated) of a Redis Cluster. */
  readonly redisCluster: boolean;
  readonly dataDir: string;
  readonly redisPrefix: string;
  readonly adminTokens: readonly Token[];
  readonly sdkTokens: readonly Token[];
  readonly corsOrigins: readonly string[];
  readonly guard: boolean;
  /** How often the guard wakes to renew its lease and tick due plans (ms). */
  readonly guardIntervalMs: number;
  /** Time to live of the guard lease (ms); a dead worker is replaced after at most this long. */
  readonly guardLeaseTtlMs: number;
  /** Longest wait for one metric observation (ms). */
  readonly guardSourceTimeoutMs: number;
  /** Longest wait for one webhook attempt (ms). */
  readonly notifyTimeoutMs: number;
  /** `rampart guard` serves /metrics and /healthz on this port (on HOST) when set. */
  readonly guardMetricsPort: number | undefined;
  /** Outcome counter slice and retention (ms); serve and guard must agree on the slice. */
  readonly outcomeSliceMs: number;
  readonly outcomeRetentionMs: number;
  /** Per-token outcome ingestion limits (per server process). */
  readonly outcomeBatchesPerSecond: number;
  readonly outcomeEventsPerMinute: number;
  /** Open event streams allowed per token (per server process). */
  readonly maxStreamsPerToken: number;
  /** A stream that carried no event for this long is closed (the SDK reconnects); 0 never. */
  readonly streamIdleTimeoutMs: number;
  readonly logLevel: z.infer<typeof level>;
}

/** Thrown with every bad variable named, so a wrong value fails at start with a clear message. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Whether a HOST binds only to this machine. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

// Cluster mode names its seeds in REDIS_URL; every key of one script must hash to one slot, which
// the `{flags}`-style hash tags ensure unless the prefix brings braces of its own.
function checkRedisCluster(config: Config): void {
  const invalid = (line: string): ConfigError => new ConfigError(`invalid configuration:\n  ${line}`);
  if (!config.redisCluster) {
    if (config.redisUrl !== undefined && /,\s*rediss?:\/\//.test(config.redisUrl)) {
      throw invalid('REDIS_URL: a list of URLs names the seed nodes of a Redis Cluster; set REDIS_CLUSTER=on');
    }
    return;
  }
  if (config.redisUrl === undefined) throw invalid('REDIS_URL: REDIS_CLUSTER=on needs the seed nodes, e.g. REDIS_URL=redis://10.0.0.1:7000,redis://10.0.0.2:7000');
  try {
    parseClusterSeeds(config.redisUrl);
  } catch (error) {
    throw invalid(`REDIS_URL: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (/[{}]/.test(config.redisPrefix)) {
    throw invalid('RAMPART_REDIS_PREFIX: must not contain { or } with REDIS_CLUSTER=on (the keys carry their own hash tags)');
  }
}

/**
 * Parses the environment once.
 *
 * @example
 * const config = loadConfig(process.env);
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const config: Config = {
    port: e.PORT,
    host: e.HOST,
    redisUrl: e.REDIS_URL,
    redisCluster: e.REDIS_CLUSTER === 'on',
    dataDir: e.RAMPART_DATA_DIR,
    redisPrefix: e.RAMPART_REDIS_PREFIX,
    adminTokens: e.RAMPART_ADMIN_TOKENS,
    sdkTokens: e.RAMPART_SDK_TOKENS,
    corsOrigins: e.RAMPART_CORS_ORIGINS,
    guard: e.RAMPART_GUARD === 'on',
    guardIntervalMs: e.RAMPART_GUARD_INTERVAL,
    guardLeaseTtlMs: e.RAMPART_GUARD_LEASE_TTL,
    guardSourceTimeoutMs: e.RAMPART_GUARD_SOURCE_TIMEOUT,
    notifyTimeoutMs: e.RAMPART_NOTIFY_TIMEOUT,
    guardMetricsPort: e.RAMPART_GUARD_METRICS_PORT,
    outcomeSliceMs: e.RAMPART_OUTCOME_SLICE,
    outcomeRetentionMs: e.RAMPART_OUTCOME_RETENTION,
    outcomeBatchesPerSecond: e.RAMPART_OUTCOME_BATCHES_PER_SECOND,
    outcomeEventsPerMinute: e.RAMPART_OUTCOME_EVENTS_PER_MINUTE,
    maxStreamsPerToken: e.RAMPART_MAX_STREAMS_PER_TOKEN,
    streamIdleTimeoutMs: e.RAMPART_STREAM_IDLE_TIMEOUT,
    logLevel: e.LOG_LEVEL,
  };
  if (config.guardLeaseTtlMs < 3 * config.guardIntervalMs) {
    throw new ConfigError('invalid configuration:\n  RAMPART_GUARD_LEASE_TTL: must be at least 3 times RAMPART_GUARD_INTERVAL, so the lease is renewed before it expires');
  }
  checkRedisCluster(config);
  if (config.adminTokens.length === 0 && !isLoopbackHost(config.host)) {
    throw new ConfigError(
      `refusing to start: HOST=${config.host} is reachable from other machines and RAMPART_ADMIN_TOKENS is empty; set admin tokens or bind to 127.0.0.1`,
    );
  }
  return Object.freeze(config);
}
