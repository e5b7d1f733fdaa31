import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Flag, HistoryEntry } from '../../src/core/flag.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { FlagStore } from '../../src/store/flag-store.js';
import { createRedisStore } from '../../src/store/redis-store.js';
import { buildTestApp } from '../support/app.js';
import { redisUrl, uniquePrefix } from '../support/redis.js';

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const stores: [string, () => Promise<FlagStore>][] = [
  ['Redis', async () => createRedisStore({ url: redisUrl(), prefix: uniquePrefix('concurrency') })],
  [
    'embedded',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rampart-conc-'));
      dirs.push(dir);
      return createEmbeddedStore({ dir });
    },
  ],
];

describe.each(stores)('concurrent writes through the API on the %s store', (_name, open) => {
  it('50 concurrent PATCHes with the same If-Match: exactly one 200 and 49 412s, one history entry', async () => {
    const t = await buildTestApp({ store: await open() });
    try {
      await t.app.inject({ method: 'PUT', url: '/flags/race', payload: { enabled: true, percentage: 1 } });
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          t.app.inject({ method: 'PATCH', url: '/flags/race', headers: { 'if-match': '"1"' }, payload: { percentage: 2 + i } }),
        ),
      );
      const statuses = results.map((r) => r.statusCode);
      expect(statuses.filter((s) => s === 200)).toHaveLength(1);
      expect(statuses.filter((s) => s === 412)).toHaveLength(49);
      const winner = results.find((r) => r.statusCode === 200)?.json<Flag>();
      const stored = (await t.app.inject({ method: 'GET', url: '/flags/race' })).json<Flag>();
      expect(stored).toEqual(winner);
      expect(stored.version).toBe(2);
      const history = (await t.app.inject({ method: 'GET', url: '/flags/race/history' })).json<{ entries: HistoryEntry[] }>();
      expect(history.entries.filter((e) => e.action === 'update')).toHaveLength(1);
      expect(history.entries[0]?.after).toEqual(stored);
    } finally {
      await t.close();
    }
  });

  it('100 concurrent unconditional PATCHes of different fields lose no update', async () => {
    const t = await buildTestApp({ store: await open() });
    try {
      await t.app.inject({ method: 'PUT', url: '/flags/busy', payload: { percentage: 0 } });
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          t.app.inject({ method: 'PATCH', url: '/flags/busy', payload: i % 2 === 0 ? { percentage: i / 2 } : { description: `writer ${i}` } }),
        ),
      );
      expect(results.every((r) => r.statusCode === 200)).toBe(true);
      const history = (await t.app.inject({ method: 'GET', url: '/flags/busy/history?limit=200' })).json<{ entries: HistoryEntry[] }>();
      const stored = (await t.app.inject({ method: 'GET', url: '/flags/busy' })).json<Flag>();
      // Every write that changed something is one version and one history entry; none vanished.
      expect(stored.version).toBe(history.entries.length);
      expect(history.entries[0]?.after).toEqual(stored);
      const versions = history.entries.map((e) => e.after?.version);
      expect(new Set(versions).size).toBe(versions.length);
      // Each acknowledged write is in history exactly as its response reported it.
      const byVersion = new Map(history.entries.map((e) => [e.after?.version, e.after]));
      for (const res of results) {
        const flag = res.json<Flag>();
        expect(byVersion.get(flag.version)).toEqual(flag);
      }
      expect(stored.version).toBeGreaterThanOrEqual(100);
    } finally {
      await t.close();
    }
  });
});
