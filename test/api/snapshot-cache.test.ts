import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SnapshotCache } from '../../src/api/snapshot-cache.js';
import type { AppliedChanges } from '../../src/api/snapshot-cache.js';
import { defaultFields } from '../../src/core/flag.js';
import type { ChangeMeta, FlagChange } from '../../src/core/flag.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { FlagStore } from '../../src/store/flag-store.js';
import { createLogger } from '../../src/telemetry.js';
import { captureLogs } from '../support/log-capture.js';

const meta = (): ChangeMeta => ({ actor: 'test', source: 'api', at: new Date() });
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const clean of cleanups.splice(0)) await clean();
});

async function openStore(changeFeedLimit?: number): Promise<FlagStore> {
  const dir = mkdtempSync(join(tmpdir(), 'rampart-cache-'));
  const store = await createEmbeddedStore({ dir, changeFeedLimit });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return store;
}

/** A store whose change notifications can be held back, to simulate lost pub/sub messages. */
function withMutedFeed(inner: FlagStore): { store: FlagStore; mute: (on: boolean) => void } {
  let muted = false;
  const store: FlagStore = {
    ...inner,
    get: (key) => inner.get(key),
    snapshot: () => inner.snapshot(),
    put: (...args) => inner.put(...args),
    delete: (...args) => inner.delete(...args),
    history: (...args) => inner.history(...args),
    changesSince: (revision) => inner.changesSince(revision),
    ping: () => inner.ping(),
    close: () => inner.close(),
    subscribe: (listener) =>
      inner.subscribe((change: FlagChange) => {
        if (!muted) listener(change);
      }),
  };
  return { store, mute: (on) => (muted = on) };
}

describe('SnapshotCache', () => {
  it('loads the store, then applies each change in revision order and notifies listeners', async () => {
    const store = await openStore();
    await store.put('a', { ...defaultFields('a'), percentage: 5 }, 0, meta());
    const cache = new SnapshotCache({ store, logger: createLogger('silent') });
    cleanups.unshift(() => cache.stop());
    await cache.start();
    expect(cache.snapshot.flags.a?.percentage).toBe(5);
    const seen: AppliedChanges[] = [];
    cache.onChange((applied) => seen.push(applied));
    await store.put('a', { ...defaultFields('a'), percentage: 6 }, 1, meta());
    await store.put('b', defaultFields('b'), 0, meta());
    await expect.poll(() => cache.revision).toBe(3);
    expect(seen.map((s) => s.revision)).toEqual([2, 3]);
    expect(cache.snapshot).toEqual({ revision: 3, flags: { a: { enabled: false, percentage: 6, groupId: 'a', stickiness: 'userId' }, b: { enabled: false, percentage: 0, groupId: 'b', stickiness: 'userId' } } });
    expect(JSON.parse(cache.snapshotJson)).toEqual(cache.snapshot);
  });

  it('fills a gap from the change feed when notifications were lost', async () => {
    const raw = await openStore();
    const { store, mute } = withMutedFeed(raw);
    const cache = new SnapshotCache({ store, logger: createLogger('silent') });
    cleanups.unshift(() => cache.stop());
    await cache.start();
    const seen: AppliedChanges[] = [];
    cache.onChange((applied) => seen.push(applied));
    mute(true);
    await raw.put('x', defaultFields('x'), 0, meta());
    await raw.put('y', defaultFields('y'), 0, meta());
    mute(false);
    await raw.put('z', defaultFields('z'), 0, meta());
    await expect.poll(() => cache.revision).toBe(3);
    expect(Object.keys(cache.snapshot.flags).sort()).toEqual(['x', 'y', 'z']);
    expect(seen.flatMap((s) => s.changes.map((c) => c.key))).toEqual(['x', 'y', 'z']);
  });

  it('reloads the whole snapshot when the feed no longer reaches back, reporting deletions', async () => {
    const raw = await openStore(2);
    const { store, mute } = withMutedFeed(raw);
    await raw.put('gone', defaultFields('gone'), 0, meta());
    const cache = new SnapshotCache({ store, logger: createLogger('silent') });
    cleanups.unshift(() => cache.stop());
    await cache.start();
    const seen: AppliedChanges[] = [];
    cache.onChange((applied) => seen.push(applied));
    mute(true);
    await raw.delete('gone', 1, meta());
    for (const key of ['p', 'q', 'r', 's']) await raw.put(key, defaultFields(key), 0, meta());
    await cache.resync();
    expect(Object.keys(cache.snapshot.flags).sort()).toEqual(['p', 'q', 'r', 's']);
    expect(cache.revision).toBe(6);
    const changes = seen.flatMap((s) => s.changes);
    expect(changes.find((c) => c.key === 'gone')?.flag).toBeNull();
  });

  it('answers changesSince for a reconnecting stream: [] when current, undefined when ahead', async () => {
    const store = await openStore();
    await store.put('a', defaultFields('a'), 0, meta());
    await store.put('b', defaultFields('b'), 0, meta());
    const cache = new SnapshotCache({ store, logger: createLogger('silent') });
    cleanups.unshift(() => cache.stop());
    await cache.start();
    expect(await cache.changesSince(2)).toEqual([]);
    expect((await cache.changesSince(1))?.map((c) => c.key)).toEqual(['b']);
    expect(await cache.changesSince(99)).toBeUndefined();
  });

  it('reports itself stale when it could not confirm the store for too long', async () => {
    const store = await openStore();
    let clock = 1_000_000;
    const cache = new SnapshotCache({ store, logger: createLogger('silent'), now: () => clock, resyncIntervalMs: 1000 });
    cleanups.unshift(() => cache.stop());
    await cache.start();
    expect(cache.staleReason()).toBeUndefined();
    clock += 3001;
    expect(cache.staleReason()).toMatch(/last confirmed 3 s ago/);
    await cache.resync();
    expect(cache.staleReason()).toBeUndefined();
  });
});

describe('SnapshotCache over a store that lost data', () => {
  it('follows the store back to an older revision and logs an error saying so', async () => {
    const before = await openStore();
    const reset = await openStore();
    let target = before;
    const store: FlagStore = {
      get: (key) => target.get(key),
      snapshot: () => target.snapshot(),
      put: (...args) => target.put(...args),
      delete: (...args) => target.delete(...args),
      history: (...args) => target.history(...args),
      changesSince: (revision) => target.changesSince(revision),
      ping: () => target.ping(),
      close: async () => undefined,
      subscribe: (listener) => before.subscribe(listener),
    };
    const logs = captureLogs();
    const cache = new SnapshotCache({ store, logger: createLogger('info', logs.stream) });
    await cache.start();
    cleanups.push(() => cache.stop());
    await before.put('a', { ...defaultFields('a'), percentage: 5 }, 0, meta());
    await before.put('b', { ...defaultFields('b'), percentage: 6 }, 0, meta());
    await cache.resync();
    expect(cache.revision).toBe(2);

    target = reset; // the store now holds nothing, at revision 0
    await cache.resync();
    expect(cache.revision).toBe(0);
    expect([...cache.flags()]).toEqual([]);
    const line = logs.lines.map((l) => JSON.parse(l) as { level: number; msg: string; from?: number; to?: number }).find((l) => l.msg.includes('went back'));
    expect(line).toMatchObject({ level: 50, from: 2, to: 0 });
  });
});
