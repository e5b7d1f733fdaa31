// The embedded adapter: one process, state in memory, every change appended to a journal and
// fsynced before the write resolves, the journal folded into one JSON state file once it has
// grown as large as that file. For a laptop or a single-node install without Redis.
import { constants } from 'node:fs';
import { access, mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { asError, RampartError } from '../core/errors.js';
import type { ChangeMeta, Flag, FlagChange, FlagFields, HistoryEntry } from '../core/flag.js';
import {
  checkExpected,
  checkKey,
  checkLimit,
  checkRevision,
  decodeCursor,
  encodeCursor,
  flagSchema,
  fromStoredEntry,
  historyEntrySchema,
  nextFlagFromVersion,
  parseStored,
  positive,
  toHistoryEntry,
  toStoredMeta,
} from './codec.js';
import { acquireFileLock } from './file-lock.js';
import type { FileLock } from './file-lock.js';
import { Journal } from './journal.js';
import type { DeleteResult, ExpectedVersion, FlagStore, HistoryPage, StoreSnapshot, WriteResult } from './flag-store.js';

const STATE_FILE = 'state.json';
const JOURNAL_FILE = 'state.journal';
const FORMAT = 'rampart-embedded-store';

const stateFileSchema = z.object({
  format: z.literal(FORMAT),
  formatVersion: z.literal(1),
  revision: z.number().int().min(0),
  flags: z.array(flagSchema),
  /** Last version of every key ever written, deleted ones included (see EmbeddedFlagStore). */
  versions: z.record(z.string(), z.number().int().min(1)),
  /** Oldest first, at most historyLimit per flag. */
  history: z.record(z.string(), z.array(historyEntrySchema)),
  /** The last journal entry this file holds (absent in files written before the journal). */
  journalSeq: z.number().int().min(0).optional(),
});

type StateFile = z.infer<typeof stateFileSchema>;

/**
 * Settings of createEmbeddedStore.
 *
 * @example
 * const options: EmbeddedStoreOptions = { dir: '.rampart', historyLimit: 200 };
 */
export interface EmbeddedStoreOptions {
  /** Folder for `state.json`, `state.journal` and `lock`; created when missing. */
  readonly dir: string;
  /** Audit entries kept per flag; default 1000. */
  readonly historyLimit?: number | undefined;
  /** Change-feed entries kept in memory; default 10000. */
  readonly changeFeedLimit?: number | undefined;
  /** Errors no caller is waiting for: thrown by subscribers, or from folding the journal into the state file. */
  readonly onError?: ((error: Error) => void) | undefined;
  /** Journal size from which it is folded into the state file (when also larger than it); default 1 MiB. */
  readonly journalMinBytes?: number | undefined;
}

/**
 * FlagStore kept in memory and in `dir/state.json` plus `dir/state.journal`, for a single process
 * (a lock file enforces it). A write is one appended journal line (its history entry, which says
 * everything the write changed), so its cost does not grow with the number of flags.
 *
 * A deleted flag keeps its last version and a re-created flag continues from it (v3, delete,
 * re-create: v4), so a version, which is also the HTTP ETag, never names two different states of
 * one key; its history continues too. Same rule as the Redis store.
 *
 * @example
 * const store = await EmbeddedFlagStore.open({ dir: '.rampart' });
 */
export class EmbeddedFlagStore implements FlagStore {
  private readonly dir: string;
  private readonly lock: FileLock;
  private readonly journal: Journal<HistoryEntry>;
  private readonly historyLimit: number;
  private readonly changeFeedLimit: number;
  private readonly onError: (error: Error) => void;
  private revision: number;
  private readonly flags: Map<string, Flag>;
  private readonly versions: Map<string, number>;
  private readonly histories: Map<string, HistoryEntry[]>;
  /** Oldest first and contiguous up to `revision`; rebuilt from the histories at start. */
  private changes: FlagChange[];
  private readonly listeners = new Set<(change: FlagChange) => void>();
  /** Writes run one at a time: each compare-and-set sees the state the previous one left. */
  private writeQueue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(options: EmbeddedStoreOptions, lock: FileLock, loaded: Loaded, journal: Journal<HistoryEntry>, historyLimit: number, changeFeedLimit: number) {
    const { state } = loaded;
    this.dir = options.dir;
    this.lock = lock;
    this.journal = journal;
    this.historyLimit = historyLimit;
    this.changeFeedLimit = changeFeedLimit;
    this.onError = options.onError ?? (() => undefined);
    this.revision = state.revision;
    this.flags = new Map(state.flags.map((flag) => [flag.key, flag]));
    this.versions = new Map(Object.entries(state.versions));
    this.histories = new Map(Object.entries(state.history).map(([key, entries]) => [key, entries.map(fromStoredEntry).slice(-historyLimit)]));
    this.changes = [];
  }

  /**
   * Locks `dir`, loads its state file and returns the store; fails clearly on a corrupt file or a live lock holder.
   *
   * @example
   * const store = await EmbeddedFlagStore.open({ dir: '/var/lib/rampart', historyLimit: 500 });
   */
  static async open(options: EmbeddedStoreOptions): Promise<EmbeddedFlagStore> {
    const historyLimit = positive(options.historyLimit ?? 1000, 'historyLimit');
    const changeFeedLimit = positive(options.changeFeedLimit ?? 10_000, 'changeFeedLimit');
    await mkdir(options.dir, { recursive: true });
    const lock = await acquireFileLock(options.dir);
    try {
      const loaded = await loadState(join(options.dir, STATE_FILE));
      const journalFile = join(options.dir, JOURNAL_FILE);
      const { journal, entries } = await Journal.open({
        file: journalFile,
        after: loaded.state.journalSeq ?? 0,
        parse: (data) => fromStoredEntry(historyEntrySchema.parse(data)),
        stateFile: join(options.dir, STATE_FILE),
        stateBytes: loaded.bytes,
        minBytes: options.journalMinBytes,
        onError: options.onError,
      });
      // Temp files of a process that died mid-write; with the lock held nobody else writes here.
      for (const name of await readdir(options.dir)) {
        if (name.startsWith(`${STATE_FILE}.`) && name.endsWith('.tmp')) await unlink(join(options.dir, name));
      }
      const store = new EmbeddedFlagStore(options, lock, loaded, journal, historyLimit, changeFeedLimit);
      for (const entry of entries) {
        if (entry.revision !== store.revision + 1) {
          throw new RampartError('internal', `journal ${journalFile} holds revision ${entry.revision} where ${store.revision + 1} was expected, refusing to start`);
        }
        store.remember(entry);
      }
      store.changes = rebuildChanges(store.histories, store.revision, changeFeedLimit);
      return store;
    } catch (error) {
      await lock.release();
      throw error;
    }
  }

  get(key: string): Promise<Flag | undefined> {
    return this.read(() => this.flags.get(key));
  }

  snapshot(): Promise<StoreSnapshot> {
    return this.read(() => {
      const flags = [...this.flags.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      return { revision: this.revision, flags };
    });
  }

  put(key: string, fields: FlagFields, expected: ExpectedVersion, meta: ChangeMeta): Promise<WriteResult> {
    return this.serial(async (): Promise<WriteResult> => {
      checkKey(key);
      checkExpected(expected);
      const current = this.flags.get(key);
      if (expected === 0 ? current !== undefined : current?.version !== expected) return { ok: false, current };
      const base = expected === 0 ? (this.versions.get(key) ?? 0) : expected;
      const flag = nextFlagFromVersion(key, fields, base, meta);
      const revision = this.revision + 1;
      const entry = toHistoryEntry(key, revision, current === undefined ? 'create' : 'update', current ?? null, flag, toStoredMeta(meta));
      await this.apply(entry);
      return { ok: true, flag, created: expected === 0, revision };
    });
  }

  delete(key: string, expected: ExpectedVersion, meta: ChangeMeta): Promise<DeleteResult> {
    return this.serial(async (): Promise<DeleteResult> => {
      checkExpected(expected);
      const current = this.flags.get(key);
      if (current === undefined || expected === 0 || current.version !== expected) return { ok: false, current };
      const revision = this.revision + 1;
      const entry = toHistoryEntry(key, revision, 'delete', current, null, toStoredMeta(meta));
      await this.apply(entry);
      return { ok: true, revision };
    });
  }

  history(key: string, options: { readonly limit: number; readonly before?: string | undefined }): Promise<HistoryPage> {
    return this.read(() => {
      checkLimit(options.limit);
      const before = options.before === undefined ? Number.POSITIVE_INFINITY : decodeCursor(options.before);
      const all = this.histories.get(key) ?? [];
      let end = all.length;
      while (end > 0 && (all[end - 1]?.revision ?? 0) >= before) end--;
      const start = Math.max(0, end - options.limit);
      const entries = all.slice(start, end).reverse();
      const last = entries.at(-1);
      return start > 0 && last !== undefined ? { entries, next: encodeCursor(last.revision) } : { entries };
    });
  }

  changesSince(revision: number): Promise<readonly FlagChange[] | undefined> {
    return this.read(() => {
      checkRevision(revision);
      // Ahead of this store: that revision never existed here, so only a snapshot can help.
      if (revision > this.revision) return undefined;
      if (revision === this.revision) return [];
      const oldest = this.changes[0]?.revision;
      if (oldest === undefined || oldest > revision + 1) return undefined;
      return this.changes.slice(revision + 1 - oldest);
    });
  }

  /**
   * Listeners are in-process: this store is single-process by design (the lock file keeps a
   * second process out), so every writer is this very instance.
   */
  subscribe(listener: (change: FlagChange) => void): Promise<() => Promise<void>> {
    return this.read(() => {
      // A wrapper per call, so subscribing the same function twice gives two subscriptions.
      const wrapped = (change: FlagChange): void => {
        listener(change);
      };
      this.listeners.add(wrapped);
      return () => {
        this.listeners.delete(wrapped);
        return Promise.resolve();
      };
    });
  }

  async ping(): Promise<void> {
    if (this.closed) throw closedError();
    try {
      await access(this.dir, constants.R_OK | constants.W_OK);
    } catch (error) {
      throw new RampartError('store-unavailable', `folder ${this.dir} is not accessible`, { cause: error });
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // Writes already accepted finish (and are durable) before the lock goes; a clean stop leaves
    // the whole state in the state file and an empty journal.
    await this.writeQueue;
    await this.journal.close((seq) => this.stateText(seq)).catch((error: unknown) => {
      // The journal still holds every write; the next start replays it.
      this.onError(asError(error));
    });
    this.listeners.clear();
    await this.lock.release();
  }

  /** Runs `fn` now; a throw (closed store, bad argument) becomes a rejection, as callers expect. */
  private read<T>(fn: () => T): Promise<T> {
    return new Promise((resolve) => {
      if (this.closed) throw closedError();
      resolve(fn());
    });
  }

  private serial<T>(task: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(closedError());
    return this.queued(task);
  }

  /** Runs `task` after every write queued before it, closed or not (close waits for the queue). */
  private queued<T>(task: () => Promise<T>): Promise<T> {
    const run = this.writeQueue.then(task);
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  /**
   * Appends a write's history entry to the journal, and only once it is on disk applies it in
   * memory and tells listeners: readers never see a state that a crash could take back.
   */
  private async apply(entry: HistoryEntry): Promise<void> {
    await this.journal.append(entry);
    this.remember(entry);
    const change: FlagChange = { revision: entry.revision, key: entry.flagKey, flag: entry.after };
    this.changes.push(change);
    if (this.changes.length > this.changeFeedLimit) this.changes = this.changes.slice(-this.changeFeedLimit);
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch (error) {
        this.onError(asError(error));
      }
    }
    if (this.journal.due()) this.journal.fold((seq) => this.stateText(seq), (task) => this.queued(task));
  }

  /** Applies a durable write to memory: at start for each journal entry, then for each new write. */
  private remember(entry: HistoryEntry): void {
    const key = entry.flagKey;
    this.revision = entry.revision;
    if (entry.after === null) this.flags.delete(key);
    else this.flags.set(key, entry.after);
    const version = entry.after?.version ?? entry.before?.version;
    if (version !== undefined) this.versions.set(key, version);
    const history = this.histories.get(key) ?? [];
    history.push(entry);
    if (history.length > this.historyLimit) history.splice(0, history.length - this.historyLimit);
    this.histories.set(key, history);
  }

  /** The whole state as the state file holds it, with the last journal entry it includes. */
  private stateText(journalSeq: number): string {
    const state: StateFile = {
      format: FORMAT,
      formatVersion: 1,
      revision: this.revision,
      flags: [...this.flags.values()],
      versions: Object.fromEntries(this.versions),
      history: Object.fromEntries(this.histories),
      journalSeq,
    };
    return JSON.stringify(state);
  }
}

/**
 * Opens (creating if needed) the embedded store in `dir`.
 *
 * @example
 * const store = await createEmbeddedStore({ dir: '.rampart' });
 */
export function createEmbeddedStore(options: EmbeddedStoreOptions): Promise<EmbeddedFlagStore> {
  return EmbeddedFlagStore.open(options);
}

/** The state file's content and size in bytes. */
interface Loaded {
  readonly state: StateFile;
  readonly bytes: number;
}

async function loadState(file: string): Promise<Loaded> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') {
      return { state: { format: FORMAT, formatVersion: 1, revision: 0, flags: [], versions: {}, history: {} }, bytes: 0 };
    }
    throw new RampartError('store-unavailable', `cannot read state file ${file}`, { cause: error });
  }
  let state: StateFile;
  try {
    state = parseStored(stateFileSchema, text, `state file ${file}`);
  } catch (error) {
    // Starting empty would silently drop every flag: refuse, and say how to recover.
    const reason = error instanceof Error ? error.message : String(error);
    throw new RampartError('internal', `state file ${file} is corrupt, refusing to start (${reason}); restore it from a backup, or move it away to start with no flags`, { cause: error });
  }
  for (const flag of state.flags) {
    if (state.versions[flag.key] !== flag.version) {
      throw new RampartError('internal', `state file ${file} is corrupt, refusing to start: flag '${flag.key}' has version ${flag.version} but the version table says ${state.versions[flag.key] ?? 'nothing'}`);
    }
  }
  return { state, bytes: Buffer.byteLength(text) };
}

/** The longest run of history entries that ends at `revision` without a gap, as changes. */
function rebuildChanges(histories: ReadonlyMap<string, readonly HistoryEntry[]>, revision: number, limit: number): FlagChange[] {
  const entries = [...histories.values()].flat().sort((a, b) => b.revision - a.revision);
  const changes: FlagChange[] = [];
  for (const entry of entries) {
    if (entry.revision !== revision - changes.length || changes.length >= limit) break;
    changes.push({ revision: entry.revision, key: entry.flagKey, flag: entry.after });
  }
  return changes.reverse();
}

function closedError(): RampartError {
  return new RampartError('store-unavailable', 'the embedded store is closed');
}

