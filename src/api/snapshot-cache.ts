import type { FlagSnapshot } from '@rampart/sdk';
import type { Logger } from 'pino';
import { toFlagConfig, toSnapshot } from '../core/flag.js';
import type { Flag, FlagChange } from '../core/flag.js';
import type { FlagStore } from '../store/flag-store.js';

/** A batch of changes applied to the cache, in revision order. */
export interface AppliedChanges {
  readonly changes: readonly FlagChange[];
  readonly revision: number;
}

export interface SnapshotCacheOptions {
  readonly store: FlagStore;
  readonly logger: Logger;
  /** Full re-read of the store, a safety net for pub/sub messages lost during a reconnect. */
  readonly resyncIntervalMs?: number;
  readonly now?: () => number;
}

/**
 * The server's in-memory view of every flag: loaded once, kept current from the change feed,
 * so SDK requests never cost a store round trip. Changes are applied strictly in revision order;
 * a gap is filled from the store's change feed, or by a full reload when the feed is too short.
 */
export class SnapshotCache {
  readonly #store: FlagStore;
  readonly #log: Logger;
  readonly #resyncIntervalMs: number;
  readonly #now: () => number;
  readonly #flags = new Map<string, Flag>();
  readonly #listeners = new Set<(applied: AppliedChanges) => void>();
  #revision = -1;
  #snapshot: FlagSnapshot | undefined;
  #sorted: readonly Flag[] | undefined;
  #json: string | undefined;
  #syncedAt = 0;
  #queue: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #lastError: string | undefined;

  constructor(options: SnapshotCacheOptions) {
    this.#store = options.store;
    this.#log = options.logger;
    this.#resyncIntervalMs = options.resyncIntervalMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Subscribes to the feed, then loads; changes that race the load are applied after it. */
  async start(): Promise<void> {
    this.#unsubscribe = await this.#store.subscribe((change) => {
      void this.#enqueue(() => this.#onChange(change));
    });
    await this.#enqueue(() => this.#reload());
    this.#timer = setInterval(() => {
      void this.#enqueue(() => this.#resync());
    }, this.#resyncIntervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#listeners.clear();
    await this.#unsubscribe?.();
    await this.#queue;
  }

  get revision(): number {
    return this.#revision;
  }

  /** The SDK snapshot at the current revision (built lazily, once per revision). */
  get snapshot(): FlagSnapshot {
    this.#snapshot ??= toSnapshot(this.#revision, this.sortedFlags);
    return this.#snapshot;
  }

  /** Every flag sorted by key, computed once per revision rather than per request. */
  get sortedFlags(): readonly Flag[] {
    this.#sorted ??= [...this.#flags.values()].sort((a, b) => a.key.localeCompare(b.key));
    return this.#sorted;
  }

  /** `snapshot` serialised once per revision, for the SDK endpoint. */
  get snapshotJson(): string {
    this.#json ??= JSON.stringify(this.snapshot);
    return this.#json;
  }

  flag(key: string): Flag | undefined {
    return this.#flags.get(key);
  }

  flags(): IterableIterator<Flag> {
    return this.#flags.values();
  }

  /** Milliseconds since the cache last confirmed it matches the store. */
  get ageMs(): number {
    return this.#now() - this.#syncedAt;
  }

  /** Why the cache may be out of date, or undefined when it is fresh. */
  staleReason(maxAgeMs = this.#resyncIntervalMs * 3): string | undefined {
    if (this.#revision < 0) return 'flags not loaded yet';
    if (this.ageMs > maxAgeMs) return `flags last confirmed ${Math.round(this.ageMs / 1000)} s ago${this.#lastError === undefined ? '' : `: ${this.#lastError}`}`;
    return undefined;
  }

  /** Calls `listener` after every batch of applied changes; returns an unsubscribe function. */
  onChange(listener: (applied: AppliedChanges) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Changes after `revision` for a reconnecting stream, or undefined if a snapshot is needed. */
  async changesSince(revision: number): Promise<readonly FlagChange[] | undefined> {
    if (revision === this.#revision) return [];
    if (revision > this.#revision || revision < 0) return undefined;
    const changes = await this.#store.changesSince(revision);
    return changes?.filter((c) => c.revision <= this.#revision);
  }

  /** Re-reads the store now; used by tests and after a store outage. */
  resync(): Promise<void> {
    return this.#enqueue(() => this.#resync());
  }

  #enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(task).catch((error: unknown) => {
      this.#lastError = error instanceof Error ? error.message : String(error);
      this.#log.warn({ err: error }, 'flag cache update failed; serving the last snapshot');
    });
    this.#queue = run;
    return run;
  }

  async #onChange(change: FlagChange): Promise<void> {
    if (change.revision <= this.#revision) return;
    if (change.revision === this.#revision + 1) {
      this.#apply([change]);
      return;
    }
    const missed = await this.#store.changesSince(this.#revision);
    if (missed === undefined) await this.#reload();
    else this.#apply(missed);
  }

  async #resync(): Promise<void> {
    const missed = await this.#store.changesSince(this.#revision);
    if (missed === undefined) await this.#reload();
    else this.#apply(missed);
    this.#syncedAt = this.#now();
    this.#lastError = undefined;
  }

  async #reload(): Promise<void> {
    const { revision, flags } = await this.#store.snapshot();
    if (revision < this.#revision) {
      // Only a store that lost data goes back: a Redis restarted without its append-only file,
      // or restored from an older backup. The server follows it (the store is the truth), loudly.
      this.#log.error(
        { from: this.#revision, to: revision, flags: flags.length },
        'the flag store went back to an older revision: it lost changes (a Redis restarted without persistence, or restored from a backup?); serving what it holds now',
      );
    }
    const changes: FlagChange[] = [];
    const seen = new Set<string>();
    for (const flag of flags) {
      seen.add(flag.key);
      const before = this.#flags.get(flag.key);
      if (before === undefined || JSON.stringify(toFlagConfig(before)) !== JSON.stringify(toFlagConfig(flag))) {
        changes.push({ revision, key: flag.key, flag });
      }
    }
    for (const key of this.#flags.keys()) if (!seen.has(key)) changes.push({ revision, key, flag: null });
    this.#flags.clear();
    for (const flag of flags) this.#flags.set(flag.key, flag);
    this.#setRevision(revision);
    this.#syncedAt = this.#now();
    this.#lastError = undefined;
    if (changes.length > 0) this.#notify({ changes, revision });
  }

  #apply(changes: readonly FlagChange[]): void {
    const fresh = changes.filter((c) => c.revision > this.#revision);
    if (fresh.length === 0) return;
    for (const change of fresh) {
      if (change.flag === null) this.#flags.delete(change.key);
      else this.#flags.set(change.key, change.flag);
    }
    const last = fresh[fresh.length - 1];
    if (last !== undefined) this.#setRevision(last.revision);
    this.#notify({ changes: fresh, revision: this.#revision });
  }

  #setRevision(revision: number): void {
    this.#revision = revision;
    this.#snapshot = undefined;
    this.#sorted = undefined;
    this.#json = undefined;
  }

  #notify(applied: AppliedChanges): void {
    for (const listener of this.#listeners) {
      try {
        listener(applied);
      } catch (error) {
        this.#log.error({ err: error }, 'change listener failed');
      }
    }
  }
}
