import { describe, expect, it } from 'vitest';
import { ConfigError, isLoopbackHost, loadConfig } from '../src/config.js';

describe('loadConfig', () => {
  it('applies the documented defaults when the environment is empty', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ port: 8080, host: '127.0.0.1', redisUrl: undefined, dataDir: './.rampart', redisPrefix: 'rampart:', guard: true, logLevel: 'info' });
    expect(config.adminTokens).toEqual([]);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('parses named and bare tokens; bare ones are named by role and position', () => {
    const config = loadConfig({ RAMPART_ADMIN_TOKENS: 'alice:s3cret, bare-token', RAMPART_SDK_TOKENS: 'web:abc' });
    expect(config.adminTokens).toEqual([
      { name: 'alice', secret: 's3cret' },
      { name: 'admin-2', secret: 'bare-token' },
    ]);
    expect(config.sdkTokens).toEqual([{ name: 'web', secret: 'abc' }]);
  });

  it('treats an empty REDIS_URL as unset and accepts redis:// URLs', () => {
    expect(loadConfig({ REDIS_URL: '' }).redisUrl).toBeUndefined();
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6380/2' }).redisUrl).toBe('redis://127.0.0.1:6380/2');
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
    [{ REDIS_URL: 'http://example.test' }, 'REDIS_URL'],
    [{ RAMPART_GUARD: 'maybe' }, 'RAMPART_GUARD'],
  ])('fails at start naming the variable for %o', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(name);
  });

  it('refuses a non-loopback HOST without admin tokens, and allows it with one', () => {
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(/RAMPART_ADMIN_TOKENS/);
    expect(loadConfig({ HOST: '0.0.0.0', RAMPART_ADMIN_TOKENS: 'x' }).host).toBe('0.0.0.0');
  });

  it('knows which hosts are loopback', () => {
    expect(['127.0.0.1', '127.0.0.2', 'localhost', '::1'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '10.0.0.1', '::', 'example.test'].some(isLoopbackHost)).toBe(false);
  });
});

describe('loadConfig: guard, outcome and stream limits', () => {
  it('parses durations and counts, with the documented defaults', () => {
    expect(loadConfig({})).toMatchObject({ outcomeSliceMs: 10_000, outcomeRetentionMs: 48 * 3_600_000, outcomeBatchesPerSecond: 50, outcomeEventsPerMinute: 20_000, maxStreamsPerToken: 1000, streamIdleTimeoutMs: 600_000 });
    const config = loadConfig({ RAMPART_OUTCOME_SLICE: '5s', RAMPART_OUTCOME_RETENTION: '7d', RAMPART_MAX_STREAMS_PER_TOKEN: '5000', RAMPART_STREAM_IDLE_TIMEOUT: '30s' });
    expect(config).toMatchObject({ outcomeSliceMs: 5000, outcomeRetentionMs: 7 * 86_400_000, maxStreamsPerToken: 5000, streamIdleTimeoutMs: 30_000 });
    expect(loadConfig({ RAMPART_STREAM_IDLE_TIMEOUT: '0' }).streamIdleTimeoutMs).toBe(0);
  });

  it.each([
    [{ RAMPART_OUTCOME_SLICE: 'soon' }, 'RAMPART_OUTCOME_SLICE'],
    [{ RAMPART_OUTCOME_EVENTS_PER_MINUTE: '0' }, 'RAMPART_OUTCOME_EVENTS_PER_MINUTE'],
    [{ RAMPART_MAX_STREAMS_PER_TOKEN: '-1' }, 'RAMPART_MAX_STREAMS_PER_TOKEN'],
    [{ RAMPART_STREAM_IDLE_TIMEOUT: 'soon' }, 'RAMPART_STREAM_IDLE_TIMEOUT'],
    [{ RAMPART_STREAM_IDLE_TIMEOUT: '-5s' }, 'RAMPART_STREAM_IDLE_TIMEOUT'],
  ])('fails at start naming the variable for %o', (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });
});

describe('loadConfig: Redis Cluster', () => {
  it('is off by default; REDIS_CLUSTER=on takes REDIS_URL as a comma-separated list of seed nodes', () => {
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redisCluster).toBe(false);
    const config = loadConfig({ REDIS_CLUSTER: 'on', REDIS_URL: 'redis://10.0.0.1:7000, redis://10.0.0.2:7000' });
    expect(config).toMatchObject({ redisCluster: true, redisUrl: 'redis://10.0.0.1:7000, redis://10.0.0.2:7000' });
    expect(loadConfig({ REDIS_CLUSTER: 'on', REDIS_URL: 'rediss://app:s3cret@cache.internal:6380/0' }).redisCluster).toBe(true);
  });

  it.each([
    [{ REDIS_CLUSTER: 'yes', REDIS_URL: 'redis://10.0.0.1:7000' }, 'REDIS_CLUSTER'],
    [{ REDIS_CLUSTER: 'on' }, /REDIS_URL: REDIS_CLUSTER=on needs the seed nodes/],
    [{ REDIS_CLUSTER: 'on', REDIS_URL: 'redis://10.0.0.1:7000/2' }, /REDIS_URL: .*only database 0/],
    [{ REDIS_CLUSTER: 'on', REDIS_URL: '/run/redis.sock' }, /REDIS_URL: .*not a URL/],
    [{ REDIS_CLUSTER: 'on', REDIS_URL: 'redis://10.0.0.1:7000,http://10.0.0.2:7000' }, /REDIS_URL: .*not a redis:\/\/ or rediss:\/\/ URL/],
    [{ REDIS_CLUSTER: 'on', REDIS_URL: 'redis://a:x@10.0.0.1:7000,redis://a:y@10.0.0.2:7000' }, /REDIS_URL: .*same scheme, user and password/],
    [{ REDIS_CLUSTER: 'on', REDIS_URL: 'redis://10.0.0.1:7000', RAMPART_REDIS_PREFIX: 'app{1}:' }, /RAMPART_REDIS_PREFIX/],
    [{ REDIS_URL: 'redis://10.0.0.1:7000,redis://10.0.0.2:7000' }, /REDIS_URL: .*set REDIS_CLUSTER=on/],
  ])('fails at start with a clear message for %o', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });

  it('does not echo a seed password in its messages', () => {
    expect(() => loadConfig({ REDIS_CLUSTER: 'on', REDIS_URL: 'redis://app:hunter2@10.0.0.1:7000/3' })).toThrow(/\*\*\*@10\.0\.0\.1/);
    expect(() => loadConfig({ REDIS_CLUSTER: 'on', REDIS_URL: 'redis://app:hunter2@10.0.0.1:7000/3' })).not.toThrow(/hunter2/);
  });
});
