// Rollout plans for the embedded (single-process) install: in memory, every write appended to
// `rollouts.journal` (fsynced) before it resolves, the journal folded into `rollouts.json` once it
// has grown as large as that file.
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { asError, RampartError } from '../core/errors.js';
import { checkKey, checkLimit, positive } from './codec.js';
import { acquireFileLock } from './file-lock.js';
import type { FileLock } from './file-lock.js';
import { Journal } from './journal.js';
import { decisionSchema, rolloutRecordSchema } from './rollout-store.js';
import type { DecisionEntry, DecisionPage, Fence, NewDecision, RolloutRecord, RolloutStore, RolloutWriteResult } from './rollout-store.js';

const FILE = 'rollouts.json';
const JOURNAL_FILE = 'rollouts.journal';
const entrySchema = decisionSchema.extend({ id: z.string() });
const fileSchema = z.object({
  format: z.literal('rampart-rollouts'),
  formatVersion: z.literal(1),
  sequence: z.number().int(),
  records: z.array(rolloutRecordSchema),
  decisions: z.record(z.string(), z.array(entrySchema)),
  /** The last journal entry this file holds (absent in files written before the journal). */
  journalSeq: z.number().int().min(0).optional(),
});
/** One write: the record, and the decision recorded with it. */
const writeSchema = z.object({ record: rolloutRecordSchema, decision: entrySchema.optional() });
type Write = { readonly record: RolloutRecord; readonly decision?: DecisionEntry | undefined };

/**
 * Settings of createEmbeddedRolloutStore.
 *
 * @example
 * const options: EmbeddedRolloutStoreOptions = { dir: '.rampart', decisionLimit: 500 };
 */
export interface EmbeddedRolloutStoreOptions {
  readonly dir: string;
  /** Decisions kept per flag; default 1000. */
  readonly decisionLimit?: number | undefined;
  /** Journal size from which it is folded into `rollouts.json` (when also larger than it); default 1 MiB. */
  readonly journalMinBytes?: number | undefined;
  /** Errors no caller is waiting for (folding the journal into the file); default: ignored. */
  readonly onError?: ((error: Error) => void) | undefined;
}

/**
 * RolloutStore in memory and `dir/rollouts.json` plus `dir/rollouts.journal`, for one process (a
 * lock file enforces it). A write is one appended journal line, whatever the number of plans.
 *
 * @example
 * const rollouts = await createEmbeddedRolloutStore({ dir: '.rampart' });
 */
export class EmbeddedRolloutStore implements RolloutStore {
  private readonly records = new Map<string, RolloutRecord>();
  private readonly decisionLog = new Map<string, DecisionEntry[]>();
  private sequence = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  // Set once in open(), before the store is handed out.
  private journal!: Journal<Write>;

  private constructor(
    private readonly dir: string,
    private readonly lock: FileLock,
    private readonly decisionLimit: number,
    private readonly onError: (error: Error) => void,
  ) {}

  static async open(options: EmbeddedRolloutStoreOptions): Promise<EmbeddedRolloutStore> {
    await mkdir(options.dir, { recursive: true });
    const lock = await acquireFileLock(options.dir, 'rollouts.lock');
    const store = new EmbeddedRolloutStore(options.dir, lock, positive(options.decisionLimit ?? 1000, 'decisionLimit'), options.onError ?? (() => undefined));
    try {
      const text = await readFile(join(options.dir, FILE), 'utf8').catch((error: unknown) => {
        if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
        throw error;
      });
      let journalSeq = 0;
      if (text !== undefined) {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (error) {
          throw new RampartError('internal', `${join(options.dir, FILE)} is corrupt: not valid JSON`, { cause: error });
        }
        const parsed = fileSchema.safeParse(value);
        if (!parsed.success) throw new RampartError('internal', `${join(options.dir, FILE)} is corrupt: ${z.prettifyError(parsed.error)}`);
        store.sequence = parsed.data.sequence;
        journalSeq = parsed.data.journalSeq ?? 0;
        for (const record of parsed.data.records) store.records.set(record.flagKey, record as RolloutRecord);
        for (const [key, entries] of Object.entries(parsed.data.decisions)) store.decisionLog.set(key, entries as DecisionEntry[]);
      }
      const { journal, entries } = await Journal.open({
        file: join(options.dir, JOURNAL_FILE),
        after: journalSeq,
        parse: (data) => writeSchema.parse(data) as Write,
        stateFile: join(options.dir, FILE),
        stateBytes: text === undefined ? 0 : Buffer.byteLength(text),
        minBytes: options.journalMinBytes,
        onError: options.onError,
      });
      store.journal = journal;
      for (const write of entries) store.remember(write);
      // State files a process that died while folding the journal in left half written.
      for (const name of await readdir(options.dir)) {
        if (name.startsWith(`${FILE}.`) && name.endsWith('.tmp')) await unlink(join(options.dir, name));
      }
    } catch (error) {
      await lock.release();
      throw error;
    }
    return store;
  }

  async get(key: string): Promise<RolloutRecord | undefined> {
    this.check();
    return this.records.get(key);
  }

  async list(): Promise<readonly RolloutRecord[]> {
    this.check();
    return [...this.records.values()].sort((a, b) => (a.flagKey < b.flagKey ? -1 : 1));
  }

  write(record: RolloutRecord, expected: number, options: { readonly decision?: NewDecision | undefined; readonly fence?: Fence | undefined } = {}): Promise<RolloutWriteResult> {
    const run = async (): Promise<RolloutWriteResult> => {
      this.check();
      checkKey(record.flagKey);
      if (record.version !== expected + 1) throw new RampartError('internal', `rollout record version ${record.version} does not follow ${expected}`);
      const current = this.records.get(record.flagKey);
      if ((current?.version ?? 0) !== expected) return { ok: false, reason: 'version', current };
      // One process, one in-process lease: only the token order can be checked here.
      if (options.fence !== undefined && options.fence.token < (current?.fence ?? 0)) return { ok: false, reason: 'fence', current };
      const entry: DecisionEntry | undefined = options.decision === undefined ? undefined : { ...options.decision, id: String(this.sequence + 1) };
      const write: Write = entry === undefined ? { record } : { record, decision: entry };
      // On disk first; memory changes only once the write is durable.
      await this.journal.append(write);
      this.remember(write);
      if (this.journal.due()) this.journal.fold((seq) => this.fileText(seq), (task) => this.enqueue(task));
      return { ok: true, record, ...(entry === undefined ? {} : { decisionId: entry.id }) };
    };
    return this.enqueue(run);
  }

  /** Runs writes (and folds) one at a time, each after the one before, whatever its outcome. */
  private enqueue<T>(task: () => Promise<T>): Promise<T> {
    const result = this.queue.then(task, task);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /** Applies a durable write to memory: at start for each journal entry, then for each new write. */
  private remember(write: Write): void {
    const { record, decision } = write;
    this.records.set(record.flagKey, record);
    if (decision === undefined) return;
    const log = this.decisionLog.get(record.flagKey) ?? [];
    log.push(decision);
    if (log.length > this.decisionLimit) log.splice(0, log.length - this.decisionLimit);
    this.decisionLog.set(record.flagKey, log);
    this.sequence = Number(decision.id);
  }

  async decisions(key: string, options: { readonly limit: number; readonly before?: string | undefined }): Promise<DecisionPage> {
    this.check();
    checkLimit(options.limit);
    if (options.before !== undefined && !/^[1-9]\d{0,15}$/.test(options.before)) {
      throw new RampartError('validation', 'decision cursor is not valid', { errors: [{ path: 'query.before', message: 'not a cursor returned by this API' }] });
    }
    const before = options.before === undefined ? Infinity : Number(options.before);
    const older = (this.decisionLog.get(key) ?? []).filter((e) => Number(e.id) < before).reverse();
    const entries = older.slice(0, options.limit);
    const last = entries.at(-1);
    return older.length > options.limit && last !== undefined ? { entries, next: last.id } : { entries };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // A clean stop leaves everything in rollouts.json and an empty journal.
    await this.queue;
    await this.journal.close((seq) => this.fileText(seq)).catch((error: unknown) => {
      // The journal still holds every write; the next start replays it.
      this.onError(asError(error));
    });
    await this.lock.release();
  }

  private check(): void {
    if (this.closed) throw new RampartError('store-unavailable', 'the embedded rollout store is closed');
  }

  /** Every record and decision as `rollouts.json` holds them, with the last journal entry it includes. */
  private fileText(journalSeq: number): string {
    return JSON.stringify({
      format: 'rampart-rollouts',
      formatVersion: 1,
      sequence: this.sequence,
      records: [...this.records.values()],
      decisions: Object.fromEntries(this.decisionLog),
      journalSeq,
    });
  }
}

/**
 * Opens (and locks) the embedded rollout store in `dir`.
 *
 * @example
 * const rollouts = await createEmbeddedRolloutStore({ dir: config.dataDir });
 */
export function createEmbeddedRolloutStore(options: EmbeddedRolloutStoreOptions): Promise<EmbeddedRolloutStore> {
  return EmbeddedRolloutStore.open(options);
}
