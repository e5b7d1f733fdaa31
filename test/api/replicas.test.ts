import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisUrl, uniquePrefix } from '../support/redis.js';
import { startServerProcess } from '../support/server-process.js';
import type { ServerProcess } from '../support/server-process.js';
import { openSse } from '../support/sse.js';

describe('two server processes on one Redis', () => {
  let a: ServerProcess;
  let b: ServerProcess;
  beforeAll(async () => {
    const env = { REDIS_URL: redisUrl(), RAMPART_REDIS_PREFIX: uniquePrefix('replicas') };
    [a, b] = await Promise.all([startServerProcess(env), startServerProcess(env)]);
  }, 40_000);
  afterAll(async () => {
    await Promise.all([a.stop(), b.stop()]);
  });

  it("see each other's changes on their streams within a second", async () => {
    const streamA = await openSse(`${a.url}/sdk/v1/stream`);
    const streamB = await openSse(`${b.url}/sdk/v1/stream`);
    try {
      await Promise.all([streamA.next((e) => e.event === 'snapshot'), streamB.next((e) => e.event === 'snapshot')]);
      for (const [writer, value] of [[a, 17], [b, 33]] as const) {
        const started = Date.now();
        const res = await fetch(`${writer.url}/flags/shared`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled: true, percentage: value }) });
        expect(res.status).toBeLessThan(300);
        const hasValue = (e: { event: string; data: string }) => e.event === 'change' && e.data.includes(`"percentage":${value}`);
        await Promise.all([streamA.next(hasValue, 1000), streamB.next(hasValue, 1000)]);
        expect(Date.now() - started).toBeLessThan(1000);
      }
    } finally {
      streamA.close();
      streamB.close();
    }
  });

  it('serve the same snapshot revision after a write through either one', async () => {
    await fetch(`${a.url}/flags/shared`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ percentage: 40 }) });
    await expect
      .poll(async () => {
        const [ra, rb] = await Promise.all([fetch(`${a.url}/sdk/v1/flags`), fetch(`${b.url}/sdk/v1/flags`)]);
        const [ja, jb] = (await Promise.all([ra.json(), rb.json()])) as [{ revision: number }, { revision: number }];
        return ja.revision === jb.revision && ra.headers.get('etag') === rb.headers.get('etag');
      }, { timeout: 1000 })
      .toBe(true);
  });
});
