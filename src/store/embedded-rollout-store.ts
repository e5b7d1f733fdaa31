// Rollout plans for the embedded (single-process) install: in memory, every write persisted to
// `rollouts.json` (temp file, fsync, rename) before it resolves.
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { RampartError } from '../core/errors.js';
import { checkKey, checkLimit, positive } from './codec.js';
import { acquireFileLock } from './file-lock.js';
import type { FileLock } from './file-lock.js';
import { decisionSchema, rolloutRecordSchema } from './rollout-store.js';
import type { DecisionEntry, DecisionPage, Fence, NewDecision, RolloutRecord, RolloutStore, RolloutWriteResult } from './rollout-store.js';

const FILE = 'rollouts.json';
const fileSchema = z.object({
  format: z.literal('rampart-rollouts'),
  formatVersion: z.literal(1),
  sequence: z.number().int(),
  records: z.array(rolloutRecordSchema),
  decisions: z.record(z.string(), z.array(decisionSchema.extend({ id: z.string() }))),
});

/**
 * RolloutStore in memory and `dir/rollouts.json`, for one process (a lock file enforces it).
 *
 * @example
 * const rollouts = await createEmbeddedRolloutStore({ dir: '.rampart' });
 */
export class EmbeddedRolloutStore implements RolloutStore {
  private readonly records = new Map<string, RolloutRecord>();
  private readonly decisionLog = new Map<string, DecisionEntry[]>();
  private sequence = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private temp = 0;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private readonly lock: FileLock,
    private readonly decisionLimit: number,
  ) {}

  static async open(options: { dir: string; decisionLimit?: number | undefined }): Promise<EmbeddedRolloutStore> {
    await mkdir(options.dir, { recursive: true });
    const lock = await acquireFileLock(options.dir, 'rollouts.lock');
    const store = new EmbeddedRolloutStore(options.dir, lock, positive(options.decisionLimit ?? 1000, 'decisionLimit'));
    try {
      const text = await readFile(join(options.dir, FILE), 'utf8').catch((error: unknown) => {
        if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
        throw error;
      });
      if (text !== undefined) {
        const parsed = fileSchema.safeParse(JSON.parse(text));
        if (!parsed.success) throw new RampartError('internal', `${join(options.dir, FILE)} is corrupt: ${z.prettifyError(parsed.error)}`);
        store.sequence = parsed.data.sequence;
        for (const record of parsed.data.records) store.records.set(record.flagKey, record as RolloutRecord);
        for (const [key, entries] of Object.entries(parsed.data.decisions)) store.decisionLog.set(key, entries as DecisionEntry[]);
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
      const log = this.decisionLog.get(record.flagKey) ?? [];
      let entry: DecisionEntry | undefined;
      if (options.decision !== undefined) entry = { ...options.decision, id: String(this.sequence + 1) };
      const records = new Map(this.records).set(record.flagKey, record);
      const nextLog = entry === undefined ? log : [...log, entry].slice(-this.decisionLimit);
      const logs = new Map(this.decisionLog).set(record.flagKey, nextLog);
      const sequence = entry === undefined ? this.sequence : this.sequence + 1;
      await this.persist(sequence, records, logs);
      this.records.set(record.flagKey, record);
      this.decisionLog.set(record.flagKey, nextLog);
      this.sequence = sequence;
      return { ok: true, record, ...(entry === undefined ? {} : { decisionId: entry.id }) };
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
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
    await this.queue;
    await this.lock.release();
  }

  private check(): void {
    if (this.closed) throw new RampartError('store-unavailable', 'the embedded rollout store is closed');
  }

  private async persist(sequence: number, records: Map<string, RolloutRecord>, logs: Map<string, DecisionEntry[]>): Promise<void> {
    const text = JSON.stringify({ format: 'rampart-rollouts', formatVersion: 1, sequence, records: [...records.values()], decisions: Object.fromEntries(logs) });
    const temp = join(this.dir, `${FILE}.${process.pid}.${++this.temp}.tmp`);
    try {
      const handle = await open(temp, 'w', 0o600);
      try {
        await handle.writeFile(text);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(temp, join(this.dir, FILE));
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw new RampartError('store-unavailable', `could not write ${FILE}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}

/**
 * Opens (and locks) the embedded rollout store in `dir`.
 *
 * @example
 * const rollouts = await createEmbeddedRolloutStore({ dir: config.dataDir });
 */
export function createEmbeddedRolloutStore(options: { dir: string; decisionLimit?: number | undefined }): Promise<EmbeddedRolloutStore> {
  return EmbeddedRolloutStore.open(options);
}
