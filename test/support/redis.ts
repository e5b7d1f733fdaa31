import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { inject } from 'vitest';

/** URL of the test run's Redis; throws the reason when there is none. */
export function redisUrl(): string {
  const url = inject('redisUrl');
  if (url === '') throw new Error(`These tests need Redis: ${inject('redisError')}`);
  return url;
}

/** A key prefix no other test uses, so test files can share one Redis in parallel. */
export function uniquePrefix(name: string): string {
  return `test:${name}:${randomUUID().slice(0, 8)}:`;
}

/** A plain client for test setup and inspection (not the code under test). */
export function adminClient(url: string): Redis {
  return new Redis(url, { commandTimeout: 2000, lazyConnect: true });
}

/** Every key starting with `prefix`, sorted. */
export async function keysWithPrefix(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** Deletes every key starting with `prefix`, so a test leaves the shared Redis as it found it. */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const admin = adminClient(url);
  const keys = await keysWithPrefix(admin, prefix);
  if (keys.length > 0) await admin.del(...keys);
  await admin.quit();
}
