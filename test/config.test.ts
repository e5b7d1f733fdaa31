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
    expect(loadConfig({})).toMatchObject({ outcomeSliceMs: 10_000, outcomeRetentionMs: 48 * 3_600_000, outcomeBatchesPerSecond: 50, outcomeEventsPerMinute: 20_000, maxStreamsPerToken: 1000 });
    const config = loadConfig({ RAMPART_OUTCOME_SLICE: '5s', RAMPART_OUTCOME_RETENTION: '7d', RAMPART_MAX_STREAMS_PER_TOKEN: '5000' });
    expect(config).toMatchObject({ outcomeSliceMs: 5000, outcomeRetentionMs: 7 * 86_400_000, maxStreamsPerToken: 5000 });
  });

  it.each([
    [{ RAMPART_OUTCOME_SLICE: 'soon' }, 'RAMPART_OUTCOME_SLICE'],
    [{ RAMPART_OUTCOME_EVENTS_PER_MINUTE: '0' }, 'RAMPART_OUTCOME_EVENTS_PER_MINUTE'],
    [{ RAMPART_MAX_STREAMS_PER_TOKEN: '-1' }, 'RAMPART_MAX_STREAMS_PER_TOKEN'],
  ])('fails at start naming the variable for %o', (env, name) => {
    expect(() => loadConfig(env)).toThrow(name);
  });
});
