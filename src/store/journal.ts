// The write-ahead journal of the embedded stores. A write appends one JSON line and fsyncs it, so
// its cost follows the size of the change, not of the whole state; the state file is rewritten
// only when the journal has grown as large as it (see Journal.fold), while writes go on.
import { open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { asError, RampartError } from '../core/errors.js';
import { syncFolder, writeFileAtomic } from './atomic-file.js';

/** The journal is folded into the state file once it is this large and larger than that file. */
export const JOURNAL_MIN_BYTES = 1024 * 1024;

const lineSchema = z.object({ seq: z.number().int().min(1), data: z.unknown() });

/**
 * What {@link Journal.open} found: the entries to replay over the state file, in order.
 *
 * @example
 * const { journal, entries } = await Journal.open({ file, after: state.journalSeq ?? 0, parse });
 */
export interface OpenedJournal<T> {
  readonly journal: Journal<T>;
  readonly entries: readonly T[];
}

/**
 * Settings of {@link Journal.open}.
 *
 * @example
 * const options: JournalOptions<HistoryEntry> = { file: '.rampart/state.journal', after: 0, parse: (data) => historyEntrySchema.parse(data) };
 */
export interface JournalOptions<T> {
  readonly file: string;
  /** The last sequence number the state file already holds: lines up to it are skipped. */
  readonly after: number;
  /** Checks one line's data; throws on a shape this store did not write. */
  readonly parse: (data: unknown) => T;
  /** The state file this journal belongs to, rewritten by {@link Journal.fold}. */
  readonly stateFile: string;
  /** Its size in bytes now (0 when there is none). */
  readonly stateBytes: number;
  /** The journal size from which {@link Journal.due} may say yes; default JOURNAL_MIN_BYTES. */
  readonly minBytes?: number | undefined;
  /** Errors no caller waits for: a background fold that failed (it is tried again later). */
  readonly onError?: ((error: Error) => void) | undefined;
}

/** Runs a task after every write before it and before any after it: the store's write queue. */
export type Exclusive = (task: () => Promise<void>) => Promise<void>;

/**
 * An append-only file of `{"seq":n,"data":…}` lines. Each line is on disk (fdatasync) before
 * `append` resolves. A crash can only leave a torn last line, which was never acknowledged: it is
 * dropped on open. Any other line that does not parse, or a gap in the sequence, is corruption,
 * and open refuses rather than start from a guess.
 *
 * Sequence numbers keep counting across folds; the state file records the last one it holds,
 * so lines a crash left between writing the state file and emptying the journal are skipped.
 *
 * @example
 * const { journal, entries } = await Journal.open({ file, after: 0, parse: (d) => d as Entry });
 * await journal.append(entry);
 */
export class Journal<T> {
  readonly #file: string;
  readonly #stateFile: string;
  readonly #minBytes: number;
  readonly #onError: (error: Error) => void;
  #stateBytes: number;
  /** The fold under way, if any. */
  #folding: Promise<void> | undefined;
  /** After a failed fold, the journal size at which to try again (not after every write). */
  #retryAt = 0;
  #seq: number;
  /** Bytes of complete lines; anything past it is the remains of a failed append. */
  #length: number;
  #dirty = false;
  /** Whether the journal's name is known to be on disk (it existed, or its folder was synced). */
  #named: boolean;

  private constructor(options: JournalOptions<T>, seq: number, length: number, named: boolean) {
    this.#file = options.file;
    this.#stateFile = options.stateFile;
    this.#stateBytes = options.stateBytes;
    this.#minBytes = options.minBytes ?? JOURNAL_MIN_BYTES;
    this.#onError = options.onError ?? (() => undefined);
    this.#seq = seq;
    this.#length = length;
    this.#named = named;
  }

  /** Reads the journal (a missing one is empty), drops a torn last line, and returns what to replay. */
  static async open<T>(options: JournalOptions<T>): Promise<OpenedJournal<T>> {
    const { file, after } = options;
    let text = '';
    let exists = true;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      exists = false;
      if (!(error instanceof Error && 'code' in error && error.code === 'ENOENT')) {
        throw new RampartError('store-unavailable', `cannot read journal ${file}`, { cause: error });
      }
    }
    // Everything after the last newline is a line whose append never returned.
    const complete = text.slice(0, text.lastIndexOf('\n') + 1);
    const entries: T[] = [];
    let seq = after;
    const lines = complete.split('\n');
    lines.pop();
    lines.forEach((line, index) => {
      const where = `journal ${file} line ${index + 1}`;
      let parsed: { seq: number; data: unknown };
      try {
        parsed = lineSchema.parse(JSON.parse(line));
      } catch (error) {
        throw corrupt(where, 'is not a journal entry', error);
      }
      if (parsed.seq <= after) return;
      if (parsed.seq !== seq + 1) throw corrupt(where, `has sequence ${parsed.seq} where ${seq + 1} was expected`);
      try {
        entries.push(options.parse(parsed.data));
      } catch (error) {
        throw corrupt(where, `does not have the expected shape (${error instanceof Error ? error.message : String(error)})`, error);
      }
      seq = parsed.seq;
    });
    const journal = new Journal<T>(options, seq, Buffer.byteLength(complete), exists);
    // Journals a process that died while shortening this one left behind (it was still whole).
    const folder = dirname(file);
    for (const name of await readdir(folder)) {
      if (name.startsWith(`${basename(file)}.`) && name.endsWith('.tmp')) await unlink(join(folder, name));
    }
    if (complete.length !== text.length) {
      journal.#dirty = true;
      await journal.#withFile(async () => undefined);
    }
    return { journal, entries };
  }

  /** The sequence number of the last line written: what a state file written now holds. */
  get seq(): number {
    return this.#seq;
  }

  /** Bytes of complete lines in the journal. */
  get bytes(): number {
    return this.#length;
  }

  /** Whether the journal has outgrown its minimum and the state file, and no fold is under way. */
  due(): boolean {
    return this.#folding === undefined && this.#length >= Math.max(this.#minBytes, this.#stateBytes, this.#retryAt);
  }

  /** Appends one entry and returns once it is on disk; fails with `store-unavailable`. */
  async append(data: T): Promise<void> {
    const line = Buffer.from(`${JSON.stringify({ seq: this.#seq + 1, data })}\n`, 'utf8');
    await this.#withFile(async (handle) => {
      this.#dirty = true;
      await handle.write(line, 0, line.length, null);
      await handle.datasync();
      this.#dirty = false;
    });
    this.#seq++;
    this.#length += line.length;
  }

  /**
   * Starts folding the journal into the state file, unless a fold is under way. Call it from
   * inside the store's write queue, so `state` sees no write half done: `state(seq)` is the whole
   * state as of the journal's last line, serialised now. The state file is written while later
   * writes go on appending; only cutting the lines it now holds waits its turn in `exclusive`. A
   * failed fold is reported to onError and costs nothing but time: the journal still holds every
   * write, and due() says yes again once it has grown by its minimum size.
   */
  fold(state: (seq: number) => string, exclusive: Exclusive): void {
    if (this.#folding !== undefined) return;
    const seq = this.#seq;
    const through = this.#length;
    const text = state(seq);
    this.#folding = (async () => {
      try {
        await writeFileAtomic(this.#stateFile, text);
        this.#stateBytes = Buffer.byteLength(text);
        await exclusive(() => this.#cut(through));
      } catch (error) {
        this.#retryAt = this.#length + this.#minBytes;
        this.#onError(asError(error));
      } finally {
        this.#folding = undefined;
      }
    })();
  }

  /**
   * For a clean stop, with no write left to come: waits for a fold under way, then folds whatever
   * the journal still holds, so the state file alone holds everything. Fails like append.
   */
  async close(state: (seq: number) => string): Promise<void> {
    await this.#folding;
    if (this.#length === 0) return;
    const text = state(this.#seq);
    await writeFileAtomic(this.#stateFile, text);
    this.#stateBytes = Buffer.byteLength(text);
    await this.#cut(this.#length);
  }

  /**
   * Drops the first `through` bytes (lines the state file now holds): empties the journal when
   * nothing came after them, else writes what did to a new journal that replaces this one
   * atomically. A crash on the way leaves the old journal, whose first lines open() skips.
   */
  async #cut(through: number): Promise<void> {
    if (through === this.#length) {
      this.#length = 0;
      this.#dirty = true;
      await this.#withFile(async () => undefined);
      return;
    }
    const rest = Buffer.alloc(this.#length - through);
    const temp = `${this.#file}.${process.pid}.tmp`;
    try {
      const source = await open(this.#file, 'r');
      try {
        await source.read(rest, 0, rest.length, through);
      } finally {
        await source.close();
      }
      const target = await open(temp, 'w', 0o600);
      try {
        await target.write(rest, 0, rest.length, 0);
        await target.sync();
      } finally {
        await target.close();
      }
      await rename(temp, this.#file);
      this.#dirty = false;
      await syncFolder(dirname(this.#file));
    } catch (error) {
      await unlink(temp).catch(() => undefined);
      throw new RampartError('store-unavailable', `could not shorten journal ${this.#file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    this.#length = rest.length;
  }

  /**
   * Opens the journal for appending (creating it, and making its name durable, the first time),
   * first cutting off whatever a failed append or a crash left past the last complete line.
   */
  async #withFile(use: (handle: Awaited<ReturnType<typeof open>>) => Promise<void>): Promise<void> {
    try {
      const handle = await open(this.#file, 'a', 0o600);
      try {
        if (this.#dirty) {
          await handle.truncate(this.#length);
          await handle.datasync();
          this.#dirty = false;
        }
        await use(handle);
        if (!this.#named) {
          await syncFolder(dirname(this.#file));
          this.#named = true;
        }
      } finally {
        await handle.close();
      }
    } catch (error) {
      throw new RampartError('store-unavailable', `could not write journal ${this.#file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}

function corrupt(where: string, what: string, cause?: unknown): RampartError {
  return new RampartError('internal', `${where} ${what}, refusing to start; restore the folder from a backup, or remove the journal to start from the state file alone (losing the writes since it was written)`, cause === undefined ? {} : { cause });
}
