import { randomUUID } from 'node:crypto';
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
