import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { redisUrl, uniquePrefix } from './support/redis.js';

describe('test Redis', () => {
  const redis = new Redis(redisUrl(), { commandTimeout: 2000, lazyConnect: true });
  afterAll(async () => {
    await redis.quit();
  });

  it('answers real commands through ioredis (SET, INCR, GET round trip)', async () => {
    const key = `${uniquePrefix('smoke')}counter`;
    await redis.set(key, '41');
    expect(await redis.incr(key)).toBe(42);
    expect(await redis.get(key)).toBe('42');
    const info = await redis.info('server');
    expect(info).toMatch(/redis_version:\d+\.\d+/);
    await redis.del(key);
  });
});
