// Outcome counters for the embedded (single-process) install: in memory, written to
// `dir/outcomes.json` at most once a second and on close. Outcomes are telemetry: a crash may
// lose the last second of counts, which flags (written before each change resolves) never do.
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { asError, RampartError } from '../core/errors.js';
import { writeFileAtomic } from './atomic-file.js';
import { FLAG_KEY_PATTERN } from '../core/flag.js';
import { parseStored } from './codec.js';
import {
  addCounts,
  aggregateBatch,
  BUCKET_COUNT,
  checkSummaryKey,
  COHORTS,
  DEFAULT_RETENTION_MS,
  DEFAULT_SLICE_MS,
  emptyCounts,
  positiveMs,
  sliceStart,
  toSummary,
  windowSlices,
} from './outcome-codec.js';
import type { SliceCounts } from './outcome-codec.js';
import { LATENCY_BUCKETS_MS } from './outcome-store.js';
import type { Cohort, OutcomeEvent, OutcomeStore, OutcomeSummary } from './outcome-store.js';

const FILE = 'outcomes.json';
const FORMAT = 'rampart-outcomes';
const PERSIST_INTERVAL_MS = 1000;

const count = z.number().int().min(0);
const fileSchema = z.object({
  format: z.literal(FORMAT),
  formatVersion: z.literal(1),
  sliceMs: z.number().int().min(1),
  bucketsMs: z.array(z.number()),
  slices: z.array(
    z.object({
      flagKey: z.string().regex(FLAG_KEY_PATTERN),
      cohort: z.enum(['on', 'off']),
      start: z.number().int(),
      ok: count,
      failed: count,
      buckets: z.array(count).length(BUCKET_COUNT),
      latencySum: z.number().min(0),
    }),
  ),
});

type OutcomeFile = z.infer<typeof fileSchema>;

/**
 * Settings of createEmbeddedOutcomeStore.
 *
 * @example
 * const options: EmbeddedOutcomeStoreOptions = { dir: '.rampart', retentionMs: 86_400_000 };
 */
export interface EmbeddedOutcomeStoreOptions {
  /** Folder for `outcomes.json` (the embedded flag store's folder, whose lock admits one process). */
  readonly dir: string;
  /** Length of one counter slice; default 10 s. */
  readonly sliceMs?: number | undefined;
  /** How long a slice is kept after it ends; default 48 h. */
  readonly retentionMs?: number | undefined;
  /** Background problems: a failed periodic write, an unreadable file at start. */
  readonly onError?: ((error: Error) => void) | undefined;
}

/**
 * OutcomeStore in memory, persisted to `dir/outcomes.json` (atomic replace) at most once a
 * second and on close. Slices older than the retention are dropped on every write to disk and
 * never counted by a summary.
 *
 * @example
 * const outcomes = await EmbeddedOutcomeStore.open({ dir: '.rampart' });
 */
export class EmbeddedOutcomeStore implements OutcomeStore {
  readonly sliceMs: number;
  readonly retentionMs: number;
  private readonly dir: string;
  private readonly file: string;
  private readonly onError: (error: Error) => void;
  /** `flagKey\ncohort` -> slice start -> counters. */
  private readonly slices = new Map<string, Map<number, SliceCounts>>();
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private lastPersist = 0;
  private persisting: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(options: EmbeddedOutcomeStoreOptions, sliceMs: number, retentionMs: number) {
    this.dir = options.dir;
    this.file = join(options.dir, FILE);
    this.sliceMs = sliceMs;
    this.retentionMs = retentionMs;
    this.onError = options.onError ?? (() => undefined);
  }

  /**
   * Loads `dir/outcomes.json` if there is one. An unreadable file is reported through `onError`
   * and replaced at the next write: losing telemetry must not keep the server from starting.
   *
   * @example
   * const outcomes = await EmbeddedOutcomeStore.open({ dir: '/var/lib/rampart' });
   */
  static async open(options: EmbeddedOutcomeStoreOptions): Promise<EmbeddedOutcomeStore> {
    const store = new EmbeddedOutcomeStore(
      options,
      positiveMs(options.sliceMs ?? DEFAULT_SLICE_MS, 'sliceMs'),
      positiveMs(options.retentionMs ?? DEFAULT_RETENTION_MS, 'retentionMs'),
    );
    await mkdir(options.dir, { recursive: true });
    // Temp files of a process that died mid-write (the flag store's lock keeps others out).
    for (const name of await readdir(options.dir)) {
      if (name.startsWith(`${FILE}.`) && name.endsWith('.tmp')) await unlink(join(options.dir, name)).catch(() => undefined);
    }
    await store.load();
    return store;
  }

  async record(events: readonly OutcomeEvent[]): Promise<void> {
    if (this.closed) throw closedError();
    const deltas = aggregateBatch(events, this.sliceMs);
    const cutoff = this.cutoff();
    for (const { flagKey, cohort, start, counts } of deltas) {
      if (start + this.sliceMs <= cutoff) continue;
      addCounts(this.slot(flagKey, cohort, start), counts);
      this.dirty = true;
    }
    this.schedulePersist();
  }

  async summary(flagKey: string, windowMs: number, now: Date): Promise<OutcomeSummary> {
    if (this.closed) throw closedError();
    checkSummaryKey(flagKey);
    const starts = windowSlices(windowMs, now, this.sliceMs);
    const cutoff = this.cutoff();
    const totals: Record<Cohort, SliceCounts> = { on: emptyCounts(), off: emptyCounts() };
    for (const cohort of COHORTS) {
      const slices = this.slices.get(seriesKey(flagKey, cohort));
      if (slices === undefined) continue;
      for (const start of starts) {
        const counts = slices.get(start);
        if (counts !== undefined && start + this.sliceMs > cutoff) addCounts(totals[cohort], counts);
      }
    }
    return toSummary(flagKey, windowMs, now, starts[0] ?? now.getTime(), totals);
  }

  /** Writes what is pending; rejects if that write fails. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.persist(true);
  }

  /** Slices ending at or before this instant are past the retention. */
  private cutoff(): number {
    return Date.now() - this.retentionMs;
  }

  private slot(flagKey: string, cohort: Cohort, start: number): SliceCounts {
    const key = seriesKey(flagKey, cohort);
    let series = this.slices.get(key);
    if (series === undefined) {
      series = new Map();
      this.slices.set(key, series);
    }
    let counts = series.get(start);
    if (counts === undefined) {
      counts = emptyCounts();
      series.set(start, counts);
    }
    return counts;
  }

  private prune(): void {
    const cutoff = this.cutoff();
    for (const [key, series] of this.slices) {
      for (const start of series.keys()) if (start + this.sliceMs <= cutoff) series.delete(start);
      if (series.size === 0) this.slices.delete(key);
    }
  }

  private schedulePersist(): void {
    if (!this.dirty || this.timer !== undefined || this.closed) return;
    const delay = Math.max(0, this.lastPersist + PERSIST_INTERVAL_MS - Date.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.persist(false);
    }, delay);
    // Pending counts never keep the process alive; close() writes them.
    this.timer.unref();
  }

  /** One write at a time; `rethrow` is for close(), whose caller wants to know. */
  private persist(rethrow: boolean): Promise<void> {
    const run = this.persisting.then(async () => {
      this.prune();
      if (!this.dirty) return;
      this.dirty = false;
      this.lastPersist = Date.now();
      try {
        await this.writeFile(JSON.stringify(this.toFile()));
      } catch (error) {
        this.dirty = true;
        if (rethrow) throw error;
        this.onError(asError(error));
        this.schedulePersist();
      }
    });
    this.persisting = run.catch(() => undefined);
    return run;
  }

  private toFile(): OutcomeFile {
    const slices: OutcomeFile['slices'] = [];
    for (const [key, series] of this.slices) {
      const [flagKey = '', cohort = 'on'] = key.split('\n');
      for (const [start, counts] of series) {
        slices.push({ flagKey, cohort: cohort === 'off' ? 'off' : 'on', start, ok: counts.ok, failed: counts.failed, buckets: [...counts.buckets], latencySum: counts.latencySum });
      }
    }
    return { format: FORMAT, formatVersion: 1, sliceMs: this.sliceMs, bucketsMs: [...LATENCY_BUCKETS_MS], slices };
  }

  private async load(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return;
      this.onError(new RampartError('store-unavailable', `cannot read ${this.file}; starting without past outcomes`, { cause: error }));
      return;
    }
    let file: OutcomeFile;
    try {
      file = parseStored(fileSchema, text, `outcome file ${this.file}`);
    } catch (error) {
      this.onError(new RampartError('internal', `${this.file} is unreadable; starting without past outcomes`, { cause: error }));
      return;
    }
    if (file.bucketsMs.join() !== LATENCY_BUCKETS_MS.join()) {
      this.onError(new RampartError('internal', `${this.file} uses other latency buckets; starting without past outcomes`));
      return;
    }
    // A changed slice length folds each old slice into the new slice holding its start.
    for (const slice of file.slices) {
      addCounts(this.slot(slice.flagKey, slice.cohort, sliceStart(slice.start, this.sliceMs)), { ok: slice.ok, failed: slice.failed, buckets: slice.buckets, latencySum: slice.latencySum });
    }
    this.prune();
  }

  private writeFile(text: string): Promise<void> {
    return writeFileAtomic(this.file, text);
  }

}

function seriesKey(flagKey: string, cohort: Cohort): string {
  return `${flagKey}\n${cohort}`;
}

function closedError(): RampartError {
  return new RampartError('store-unavailable', 'the embedded outcome store is closed');
}

/**
 * Opens the embedded outcome store in `dir` (normally the embedded flag store's folder).
 *
 * @example
 * const outcomes = await createEmbeddedOutcomeStore({ dir: '.rampart' });
 */
export function createEmbeddedOutcomeStore(options: EmbeddedOutcomeStoreOptions): Promise<EmbeddedOutcomeStore> {
  return EmbeddedOutcomeStore.open(options);
}
