// The behaviour every FlagStore adapter must show, run against each of them with a factory.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RampartError } from '../../src/core/errors.js';
import type { ChangeMeta, Flag, FlagChange, FlagFields } from '../../src/core/flag.js';
import type { FlagStore, StoreSnapshot } from '../../src/store/flag-store.js';

/** Limits a test needs on its store; the adapter's defaults otherwise. */
export interface ContractStoreOptions {
  readonly historyLimit?: number;
  readonly changeFeedLimit?: number;
}

/** Stores on one fresh, empty backing. */
export interface ContractBacking {
  readonly store: FlagStore;
  /**
   * A second store on the same backing, as another replica would have it. Where the adapter
   * allows only one instance per backing (embedded), this is `store` itself.
   */
  readonly peer: FlagStore;
  /** Closes both stores and removes the backing. */
  dispose(): Promise<void>;
}

export type ContractFactory = (options: ContractStoreOptions) => Promise<ContractBacking>;

const AT = new Date('2025-03-04T05:06:07.000Z');

/** Fields of a test flag, with overrides. */
export function fields(overrides: Partial<FlagFields> = {}): FlagFields {
  return { description: 'test flag', enabled: true, percentage: 12.5, groupId: 'group', stickiness: 'userId', ...overrides };
}

/** Change metadata for a test write. */
export function meta(actor = 'ana', reason?: string, source: ChangeMeta['source'] = 'api'): ChangeMeta {
  return reason === undefined ? { actor, source, at: AT } : { actor, source, at: AT, reason };
}

/** Writes `key` through `store` until it wins, reading the current version each time. */
async function readModifyWrite(store: FlagStore, key: string, change: (flag: Flag) => FlagFields): Promise<number> {
  for (let attempts = 1; ; attempts++) {
    const flag = await store.get(key);
    if (flag === undefined) throw new Error(`flag ${key} vanished`);
    const result = await store.put(key, change(flag), flag.version, meta('loop'));
    if (result.ok) return attempts;
  }
}

async function expectRampartError(promise: Promise<unknown>, code: string): Promise<void> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RampartError);
  expect((error as RampartError).code).toBe(code);
}

/**
 * Registers the contract tests for one adapter.
 *
 * @example
 * flagStoreContract('embedded', async (options) => { ... });
 */
export function flagStoreContract(name: string, factory: ContractFactory): void {
  describe(`FlagStore contract: ${name}`, () => {
    let backing: ContractBacking;
    let store: FlagStore;
    const extra: ContractBacking[] = [];

    /** A separate backing with special limits, disposed after the test. */
    async function withLimits(options: ContractStoreOptions): Promise<FlagStore> {
      const other = await factory(options);
      extra.push(other);
      return other.store;
    }

    beforeEach(async () => {
      backing = await factory({});
      store = backing.store;
    });
    afterEach(async () => {
      await backing.dispose();
      for (const other of extra.splice(0)) await other.dispose();
    });

    describe('get and put', () => {
      it('returns undefined for a flag that was never written', async () => {
        expect(await store.get('never-written')).toBeUndefined();
      });

      it('creates a flag at version 1 with expected 0, stamping actor and time', async () => {
        const result = await store.put('checkout', fields(), 0, meta('ana'));
        const expected: Flag = { key: 'checkout', ...fields(), version: 1, updatedAt: AT.toISOString(), updatedBy: 'ana' };
        expect(result).toEqual({ ok: true, flag: expected, created: true, revision: 1 });
        expect(await store.get('checkout')).toEqual(expected);
        expect(await backing.peer.get('checkout')).toEqual(expected);
      });

      it('replaces every field and moves to version 2 when expected is the current version', async () => {
        await store.put('checkout', fields(), 0, meta());
        const next = fields({ description: 'new', enabled: false, percentage: 99.999, groupId: 'other', stickiness: 'accountId' });
        const result = await store.put('checkout', next, 1, meta('bo', undefined, 'guard'));
        expect(result).toMatchObject({ ok: true, created: false, revision: 2, flag: { ...next, key: 'checkout', version: 2, updatedBy: 'bo' } });
        expect(await store.get('checkout')).toEqual({ ...next, key: 'checkout', version: 2, updatedAt: AT.toISOString(), updatedBy: 'bo' });
      });

      it('refuses expected 0 on an existing flag, answers with the current flag and changes nothing', async () => {
        const created = await store.put('checkout', fields(), 0, meta());
        const result = await store.put('checkout', fields({ percentage: 50 }), 0, meta());
        expect(result).toEqual({ ok: false, current: created.ok ? created.flag : undefined });
        expect((await store.snapshot()).revision).toBe(1);
        expect((await store.history('checkout', { limit: 10 })).entries).toHaveLength(1);
      });

      it('refuses a stale version and answers with the current flag', async () => {
        await store.put('checkout', fields(), 0, meta());
        const second = await store.put('checkout', fields({ percentage: 20 }), 1, meta());
        const stale = await store.put('checkout', fields({ percentage: 30 }), 1, meta());
        expect(stale).toEqual({ ok: false, current: second.ok ? second.flag : undefined });
        expect((await store.get('checkout'))?.percentage).toBe(20);
      });

      it('refuses a version on a missing flag with current undefined', async () => {
        expect(await store.put('missing', fields(), 3, meta())).toEqual({ ok: false, current: undefined });
        expect(await store.get('missing')).toBeUndefined();
        expect((await store.snapshot()).revision).toBe(0);
      });

      it('rejects an invalid key or expected version with a validation error', async () => {
        await expectRampartError(store.put('Bad Key', fields(), 0, meta()), 'validation');
        await expectRampartError(store.put('ok', fields(), -1, meta()), 'validation');
      });
    });

    describe('delete', () => {
      it('refuses a stale version, answers with the current flag and keeps the flag', async () => {
        await store.put('checkout', fields(), 0, meta());
        const second = await store.put('checkout', fields({ percentage: 1 }), 1, meta());
        expect(await store.delete('checkout', 1, meta())).toEqual({ ok: false, current: second.ok ? second.flag : undefined });
        expect(await store.get('checkout')).toBeDefined();
      });

      it('removes the flag with the current version, bumps the revision and records a delete entry', async () => {
        const created = await store.put('checkout', fields(), 0, meta());
        const result = await store.delete('checkout', 1, meta('cy', 'rollback done'));
        expect(result).toEqual({ ok: true, revision: 2 });
        expect(await store.get('checkout')).toBeUndefined();
        expect((await store.snapshot()).flags).toEqual([]);
        const [entry] = (await store.history('checkout', { limit: 1 })).entries;
        expect(entry).toMatchObject({ action: 'delete', revision: 2, actor: 'cy', reason: 'rollback done', after: null });
        expect(entry?.before).toEqual(created.ok ? created.flag : undefined);
      });

      it('refuses to delete a missing flag, or with expected 0, answering with the current flag', async () => {
        expect(await store.delete('missing', 1, meta())).toEqual({ ok: false, current: undefined });
        const created = await store.put('checkout', fields(), 0, meta());
        expect(await store.delete('checkout', 0, meta())).toEqual({ ok: false, current: created.ok ? created.flag : undefined });
      });

      it('re-creates a deleted flag with expected 0, continuing its version numbers and its history', async () => {
        await store.put('checkout', fields(), 0, meta());
        await store.put('checkout', fields({ percentage: 40 }), 1, meta());
        await store.delete('checkout', 2, meta());
        expect(await store.put('checkout', fields(), 2, meta())).toEqual({ ok: false, current: undefined });
        const recreated = await store.put('checkout', fields({ percentage: 5 }), 0, meta('dee'));
        // Versions are ETags: continuing (3) instead of restarting (1) means a stale If-Match
        // taken before the delete can never match the re-created flag.
        expect(recreated).toMatchObject({ ok: true, created: true, revision: 4, flag: { version: 3, percentage: 5 } });
        expect(await store.put('checkout', fields({ percentage: 6 }), 3, meta())).toMatchObject({ ok: true, flag: { version: 4 } });
        const history = (await store.history('checkout', { limit: 10 })).entries;
        expect(history.map((e) => e.action)).toEqual(['update', 'create', 'delete', 'update', 'create']);
        expect(history[1]?.before).toBeNull();
        expect(history.map((e) => e.after?.version ?? null)).toEqual([4, 3, null, 2, 1]);
      });
    });

    describe('revision and snapshot', () => {
      it('raises the revision by exactly one per successful write and not at all for a refused one', async () => {
        const revisions: number[] = [];
        const record = (result: { ok: boolean; revision?: number }): void => {
          if (result.ok && result.revision !== undefined) revisions.push(result.revision);
        };
        record(await store.put('a', fields(), 0, meta()));
        record(await store.put('b', fields(), 0, meta()));
        record(await store.put('a', fields(), 7, meta()));
        record(await store.put('a', fields({ percentage: 1 }), 1, meta()));
        record(await store.delete('b', 1, meta()));
        record(await store.delete('b', 1, meta()));
        record(await store.put('c', fields(), 0, meta()));
        expect(revisions).toEqual([1, 2, 3, 4, 5]);
        expect((await store.snapshot()).revision).toBe(5);
      });

      it('lists every flag with the revision they belong to', async () => {
        await store.put('b', fields({ percentage: 2 }), 0, meta());
        await store.put('a', fields({ percentage: 1 }), 0, meta());
        await store.put('c', fields(), 0, meta());
        await store.delete('c', 1, meta());
        const snapshot = await backing.peer.snapshot();
        expect(snapshot.revision).toBe(4);
        expect([...snapshot.flags].sort((x, y) => x.key.localeCompare(y.key))).toEqual([await store.get('a'), await store.get('b')]);
      });

      it('is consistent under concurrent writes: the versions of all flags add up to the revision', async () => {
        const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
        const progress = { writing: true };
        const writers = Promise.all(
          keys.map(async (key) => {
            for (let version = 0; version < 20; version++) {
              const result = await store.put(key, fields({ percentage: version }), version, meta());
              expect(result.ok).toBe(true);
            }
          }),
        ).finally(() => {
          progress.writing = false;
        });
        // Only puts happen, each raising one flag's version and the revision by one.
        const inconsistent: StoreSnapshot[] = [];
        let taken = 0;
        const check = (snapshot: StoreSnapshot): void => {
          taken++;
          if (snapshot.flags.reduce((sum, flag) => sum + flag.version, 0) !== snapshot.revision) inconsistent.push(snapshot);
        };
        while (progress.writing) {
          check(await backing.peer.snapshot());
          // An in-memory snapshot never waits on I/O; let the writers' file writes progress.
          await new Promise((resolve) => setImmediate(resolve));
        }
        await writers;
        const last = await store.snapshot();
        check(last);
        expect(inconsistent).toEqual([]);
        expect(taken).toBeGreaterThan(10);
        expect(last.revision).toBe(100);
      });
    });

    describe('history', () => {
      it('lists entries newest first with id, flagKey, revision, at, actor, source, action, before, after and reason', async () => {
        const created = await store.put('checkout', fields(), 0, meta('ana', 'launch'));
        await store.put('other', fields(), 0, meta());
        const updated = await store.put('checkout', fields({ percentage: 25 }), 1, meta('guard-1', 'metrics healthy', 'guard'));
        const { entries, next } = await store.history('checkout', { limit: 10 });
        expect(next).toBeUndefined();
        expect(entries).toHaveLength(2);
        const [newest, oldest] = entries;
        expect(newest).toEqual({
          id: expect.any(String) as string,
          flagKey: 'checkout',
          revision: 3,
          at: AT.toISOString(),
          actor: 'guard-1',
          source: 'guard',
          action: 'update',
          before: created.ok ? created.flag : undefined,
          after: updated.ok ? updated.flag : undefined,
          reason: 'metrics healthy',
        });
        expect(oldest).toMatchObject({ revision: 1, action: 'create', actor: 'ana', source: 'api', before: null, reason: 'launch' });
        expect(newest?.id).not.toBe(oldest?.id);
      });

      it('leaves reason out of an entry whose change gave none', async () => {
        await store.put('checkout', fields(), 0, meta('ana'));
        const { entries } = await store.history('checkout', { limit: 1 });
        expect(entries).toHaveLength(1);
        expect(Object.keys(entries[0]!)).not.toContain('reason');
      });

      it('pages with an opaque cursor until the last page, which has no next', async () => {
        for (let version = 0; version < 5; version++) await store.put('checkout', fields({ percentage: version }), version, meta());
        const first = await store.history('checkout', { limit: 2 });
        expect(first.entries.map((e) => e.revision)).toEqual([5, 4]);
        expect(typeof first.next).toBe('string');
        const second = await store.history('checkout', { limit: 2, before: first.next });
        expect(second.entries.map((e) => e.revision)).toEqual([3, 2]);
        const third = await backing.peer.history('checkout', { limit: 2, before: second.next });
        expect(third.entries.map((e) => e.revision)).toEqual([1]);
        expect(third.next).toBeUndefined();
        const all = await store.history('checkout', { limit: 100 });
        expect([...first.entries, ...second.entries, ...third.entries]).toEqual(all.entries);
      });

      it('gives no next when the last page is exactly full', async () => {
        for (let version = 0; version < 4; version++) await store.put('checkout', fields({ percentage: version }), version, meta());
        const first = await store.history('checkout', { limit: 2 });
        const second = await store.history('checkout', { limit: 2, before: first.next });
        expect(second.entries.map((e) => e.revision)).toEqual([2, 1]);
        expect(second.next).toBeUndefined();
      });

      it('is empty, without next, for a flag never written', async () => {
        expect(await store.history('never-written', { limit: 10 })).toEqual({ entries: [] });
      });

      it('rejects a cursor it did not make and a limit below 1 with validation errors', async () => {
        await store.put('checkout', fields(), 0, meta());
        await expectRampartError(store.history('checkout', { limit: 10, before: '5' }), 'validation');
        await expectRampartError(store.history('checkout', { limit: 10, before: 'h1.!!' }), 'validation');
        await expectRampartError(store.history('checkout', { limit: 0 }), 'validation');
      });

      it('keeps at least historyLimit newest entries per flag and drops old ones', async () => {
        const small = await withLimits({ historyLimit: 5 });
        for (let version = 0; version < 250; version++) await small.put('busy', fields({ percentage: version % 100 }), version, meta());
        const { entries } = await small.history('busy', { limit: 1000 });
        // Redis trims approximately (MAXLEN ~), in whole stream nodes; the embedded store exactly.
        expect(entries.length).toBeGreaterThanOrEqual(5);
        expect(entries.length).toBeLessThan(250);
        expect(entries.map((e) => e.revision)).toEqual(entries.map((_, i) => 250 - i));
      });
    });

    describe('change feed', () => {
      it('returns the changes after a revision in order, a delete as flag null', async () => {
        await store.put('a', fields(), 0, meta());
        const b = await store.put('b', fields(), 0, meta());
        const a2 = await store.put('a', fields({ percentage: 3 }), 1, meta());
        await store.delete('b', 1, meta());
        const changes = await backing.peer.changesSince(1);
        expect(changes).toEqual([
          { revision: 2, key: 'b', flag: b.ok ? b.flag : undefined },
          { revision: 3, key: 'a', flag: a2.ok ? a2.flag : undefined },
          { revision: 4, key: 'b', flag: null },
        ]);
        expect((await store.changesSince(0))?.map((c) => c.revision)).toEqual([1, 2, 3, 4]);
      });

      it('is empty at the current revision, also on an empty store', async () => {
        expect(await store.changesSince(0)).toEqual([]);
        await store.put('a', fields(), 0, meta());
        expect(await store.changesSince(1)).toEqual([]);
      });

      it('is undefined for a revision the store never reached, so the caller takes a snapshot', async () => {
        await store.put('a', fields(), 0, meta());
        expect(await store.changesSince(2)).toBeUndefined();
      });

      it('is undefined once the feed was trimmed past the revision, and complete after it', async () => {
        const small = await withLimits({ changeFeedLimit: 5, historyLimit: 5 });
        for (let version = 0; version < 250; version++) await small.put('busy', fields({ percentage: version % 100 }), version, meta());
        expect(await small.changesSince(0)).toBeUndefined();
        expect(await small.changesSince(1)).toBeUndefined();
        expect((await small.changesSince(245))?.map((c) => c.revision)).toEqual([246, 247, 248, 249, 250]);
      });

      it('rejects a negative revision with a validation error', async () => {
        await expectRampartError(store.changesSince(-1), 'validation');
      });
    });

    describe('subscribe', () => {
      it('tells a subscriber on the second store every change made through the first, in order', async () => {
        const received: FlagChange[] = [];
        const unsubscribe = await backing.peer.subscribe((change) => received.push(change));
        const created = await store.put('checkout', fields(), 0, meta());
        const updated = await store.put('checkout', fields({ percentage: 77 }), 1, meta());
        await store.delete('checkout', 2, meta());
        await vi.waitFor(() => {
          expect(received).toHaveLength(3);
        });
        expect(received).toEqual([
          { revision: 1, key: 'checkout', flag: created.ok ? created.flag : undefined },
          { revision: 2, key: 'checkout', flag: updated.ok ? updated.flag : undefined },
          { revision: 3, key: 'checkout', flag: null },
        ]);
        await unsubscribe();
      });

      it('stops calling a listener once it unsubscribed, while others keep receiving', async () => {
        const gone: FlagChange[] = [];
        const kept: FlagChange[] = [];
        const unsubscribe = await backing.peer.subscribe((change) => gone.push(change));
        const keep = await backing.peer.subscribe((change) => kept.push(change));
        await store.put('a', fields(), 0, meta());
        await vi.waitFor(() => {
          expect(gone).toHaveLength(1);
        });
        await unsubscribe();
        await store.put('b', fields(), 0, meta());
        await vi.waitFor(() => {
          expect(kept).toHaveLength(2);
        });
        expect(gone).toHaveLength(1);
        await keep();
      });

      it('does not replay changes made before subscribe resolved', async () => {
        await store.put('early', fields(), 0, meta());
        const received: FlagChange[] = [];
        await backing.peer.subscribe((change) => received.push(change));
        await store.put('late', fields(), 0, meta());
        await vi.waitFor(() => {
          expect(received.map((c) => c.key)).toEqual(['late']);
        });
      });
    });

    describe('concurrency', () => {
      it('lets exactly one of 50 concurrent creates with expected 0 win, with one history entry', async () => {
        const stores = [store, backing.peer];
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => stores[i % 2]!.put('race', fields({ description: `writer ${i}` }), 0, meta(`w${i}`))),
        );
        const winners = results.filter((r) => r.ok);
        expect(winners).toHaveLength(1);
        const winner = winners[0]!;
        for (const loser of results.filter((r) => !r.ok)) expect(loser).toEqual({ ok: false, current: winner.flag });
        const { entries } = await store.history('race', { limit: 100 });
        expect(entries).toHaveLength(1);
        expect(entries[0]?.after).toEqual(winner.flag);
        expect((await store.snapshot()).revision).toBe(1);
      });

      it('lets exactly one of 50 concurrent updates with the same expected version win', async () => {
        await store.put('race', fields(), 0, meta());
        const stores = [store, backing.peer];
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => stores[i % 2]!.put('race', fields({ description: `writer ${i}` }), 1, meta(`w${i}`))),
        );
        expect(results.filter((r) => r.ok)).toHaveLength(1);
        expect((await store.get('race'))?.version).toBe(2);
        expect((await store.history('race', { limit: 100 })).entries).toHaveLength(2);
      });

      it('loses no update among 100 concurrent read-modify-write loops', async () => {
        await store.put('counter', fields({ description: '0' }), 0, meta());
        const stores = [store, backing.peer];
        const attempts = await Promise.all(
          Array.from({ length: 100 }, (_, i) =>
            readModifyWrite(stores[i % 2]!, 'counter', (flag) => ({ ...flag, description: String(Number(flag.description) + 1) })),
          ),
        );
        // There was contention to resolve (else the test proves nothing).
        expect(Math.max(...attempts)).toBeGreaterThan(1);
        const final = await store.get('counter');
        expect(final).toMatchObject({ description: '100', version: 101 });
        const { entries } = await store.history('counter', { limit: 1000 });
        expect(entries).toHaveLength(101);
        expect(entries.map((e) => e.after?.description)).toEqual(Array.from({ length: 101 }, (_, i) => String(100 - i)));
        for (const entry of entries.slice(0, -1)) expect(entry.after?.version).toBe((entry.before?.version ?? 0) + 1);
        expect((await store.snapshot()).revision).toBe(101);
      });
    });
  });
}
