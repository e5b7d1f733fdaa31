// The write-ahead journal of the embedded stores. A write appends one JSON line and fsyncs it, so
// its cost follows the size of the change, not of the whole state; the state file is rewritten
// only when the journal has grown as large as it (see Journal.due), after which the journal
// starts empty again.
import { open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { z } from 'zod';
import { RampartError } from '../core/errors.js';
import { syncFolder } from './atomic-file.js';

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
  /** The journal size from which {@link Journal.due} may say yes; default JOURNAL_MIN_BYTES. */
  readonly minBytes?: number | undefined;
}

/**
 * An append-only file of `{"seq":n,"data":…}` lines. Each line is on disk (fdatasync) before
 * `append` resolves. A crash can only leave a torn last line, which was never acknowledged: it is
 * dropped on open. Any other line that does not parse, or a gap in the sequence, is corruption,
 * and open refuses rather than start from a guess.
 *
 * Sequence numbers keep counting across resets; the state file records the last one it holds,
 * so lines a crash left between writing the state file and emptying the journal are skipped.
 *
 * @example
 * const { journal, entries } = await Journal.open({ file, after: 0, parse: (d) => d as Entry });
 * await journal.append(entry);
 */
export class Journal<T> {
  readonly #file: string;
  readonly #minBytes: number;
  #seq: number;
  /** Bytes of complete lines; anything past it is the remains of a failed append. */
  #length: number;
  #dirty = false;
  /** Whether the journal's name is known to be on disk (it existed, or its folder was synced). */
  #named: boolean;

  private constructor(file: string, seq: number, length: number, minBytes: number, named: boolean) {
    this.#file = file;
    this.#seq = seq;
    this.#length = length;
    this.#minBytes = minBytes;
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
    const journal = new Journal<T>(file, seq, Buffer.byteLength(complete), options.minBytes ?? JOURNAL_MIN_BYTES, exists);
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

  /** Whether the journal has outgrown a state file of `stateBytes` and should be folded into it. */
  due(stateBytes: number): boolean {
    return this.#length >= Math.max(this.#minBytes, stateBytes);
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

  /** Empties the journal once a state file holding everything up to `seq` is on disk. */
  async reset(): Promise<void> {
    this.#length = 0;
    this.#dirty = true;
    await this.#withFile(async () => undefined);
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
