import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAUSE_WAIT_MS, pauseOnManualChange } from '../../src/guard/manual-change.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { EmbeddedFlagStore } from '../../src/store/embedded-store.js';
import { createRedisRolloutStore } from '../../src/store/redis-rollout-store.js';
import type { RedisRolloutStore } from '../../src/store/redis-rollout-store.js';
import { createLogger } from '../../src/telemetry.js';
import { startRedisServer } from '../support/redis-server.js';
import type { RedisServer } from '../support/redis-server.js';
import { fields, meta } from '../store/flag-store-contract.js';

/** The rollout store's own command timeout here: far above PAUSE_WAIT_MS, so the two cannot be confused. */
const ROLLOUT_TIMEOUT_MS = 5000;

describe('API writes when the rollout store stops answering', () => {
  let redis: RedisServer;
  let rollouts: RedisRolloutStore;
  let flags: EmbeddedFlagStore;
  let dir: string;

  beforeAll(async () => {
    redis = await startRedisServer();
    rollouts = await createRedisRolloutStore({ url: redis.url, prefix: 'manual-change:', commandTimeoutMs: ROLLOUT_TIMEOUT_MS });
    dir = await mkdtemp(join(tmpdir(), 'rampart-manual-change-'));
    flags = await createEmbeddedStore({ dir });
  });
  afterAll(async () => {
    await rollouts.close();
    await flags.close();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(`answers a manual write after at most ${PAUSE_WAIT_MS} ms of waiting for the plan pause, not the store timeout`, async () => {
    const store = pauseOnManualChange(flags, rollouts, createLogger('silent'));
    expect(await store.put('frozen', fields(), 0, meta())).toMatchObject({ ok: true });
    // The pause check reads the plan from Redis, which now answers nothing.
    redis.process.kill('SIGSTOP');
    try {
      const started = Date.now();
      const first = await store.put('frozen', fields({ percentage: 40 }), 1, meta());
      const second = await store.put('frozen', fields({ percentage: 60 }), 2, meta());
      const took = Date.now() - started;
      expect(first).toMatchObject({ ok: true, flag: { version: 2, percentage: 40 } });
      expect(second).toMatchObject({ ok: true, flag: { version: 3, percentage: 60 } });
      // Two writes, each waiting PAUSE_WAIT_MS for a pause that cannot happen; unbounded, the
      // first alone would have waited ROLLOUT_TIMEOUT_MS.
      expect(took).toBeGreaterThanOrEqual(2 * PAUSE_WAIT_MS - 50);
      expect(took).toBeLessThan(ROLLOUT_TIMEOUT_MS);
      expect((await flags.get('frozen'))?.percentage).toBe(60);
    } finally {
      redis.process.kill('SIGCONT');
    }
  }, 20_000);
});
