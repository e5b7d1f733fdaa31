// One private redis-server for the whole run unless REDIS_URL is set. A failure to start it is
// passed on as a message, so only the tests that need Redis fail, and they say why.
import type { TestProject } from 'vitest/node';
import { startRedisServer } from './redis-server.js';
import type { RedisServer } from './redis-server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    redisError: string;
  }
}

let server: RedisServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv !== undefined && fromEnv !== '') {
    project.provide('redisUrl', fromEnv);
    project.provide('redisError', '');
    return;
  }
  try {
    server = await startRedisServer();
    project.provide('redisUrl', server.url);
    project.provide('redisError', '');
  } catch (error) {
    project.provide('redisUrl', '');
    project.provide('redisError', error instanceof Error ? error.message : String(error));
  }
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
