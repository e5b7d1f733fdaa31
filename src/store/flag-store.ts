import type { ChangeMeta, Flag, FlagChange, FlagFields, HistoryEntry } from '../core/flag.js';

/** What a compare-and-set write expects the current version to be; 0 means "must not exist". */
export type ExpectedVersion = number;

export type WriteResult =
  | { readonly ok: true; readonly flag: Flag; readonly created: boolean; readonly revision: number }
  | { readonly ok: false; readonly current: Flag | undefined };

export type DeleteResult =
  | { readonly ok: true; readonly revision: number }
  | { readonly ok: false; readonly current: Flag | undefined };

export interface HistoryPage {
  readonly entries: readonly HistoryEntry[];
  /** Pass as `before` to read the next (older) page; absent on the last page. */
  readonly next?: string;
}

/** A consistent view of every flag at one global revision. */
export interface StoreSnapshot {
  readonly revision: number;
  readonly flags: readonly Flag[];
}

/**
 * Flag storage. Every write is a compare-and-set on the flag's version, bumps the global
 * revision, appends to the flag's history and to the change feed, and tells subscribers in
 * every process sharing the store. A resolved write is durable.
 */
export interface FlagStore {
  get(key: string): Promise<Flag | undefined>;
  snapshot(): Promise<StoreSnapshot>;
  /** Writes `fields` if the flag's version is `expected` (0: only if absent). */
  put(key: string, fields: FlagFields, expected: ExpectedVersion, meta: ChangeMeta): Promise<WriteResult>;
  /** Deletes the flag if its version is `expected`. */
  delete(key: string, expected: ExpectedVersion, meta: ChangeMeta): Promise<DeleteResult>;
  /** Newest first; `before` is the `next` of the previous page. */
  history(key: string, options: { readonly limit: number; readonly before?: string | undefined }): Promise<HistoryPage>;
  /** Changes after `revision` in order, or undefined when the feed no longer reaches back that far. */
  changesSince(revision: number): Promise<readonly FlagChange[] | undefined>;
  /** Calls `listener` for every change made by any writer; returns an unsubscribe function. */
  subscribe(listener: (change: FlagChange) => void): Promise<() => Promise<void>>;
  /** Rejects when the store cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
