import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RampartError } from '../../src/core/errors.js';
import { Journal } from '../../src/store/journal.js';

interface Entry {
  readonly n: number;
}

const parse = (data: unknown): Entry => {
  if (typeof data !== 'object' || data === null || typeof (data as { n?: unknown }).n !== 'number') throw new Error('n must be a number');
  return data as Entry;
};

describe('journal', () => {
  let dir: string;
  let file: string;
  let stateFile: string;
  const errors: Error[] = [];
  const openJournal = (after = 0, minBytes?: number, stateBytes = 0) =>
    Journal.open<Entry>({ file, after, parse, minBytes, stateFile, stateBytes, onError: (error) => errors.push(error) });
  /** Runs tasks at once, as a store's write queue does when it is idle. */
  const now = (task: () => Promise<void>): Promise<void> => task();
  const openError = async (after = 0): Promise<RampartError> => {
    const error: unknown = await openJournal(after).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RampartError);
    return error as RampartError;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-journal-'));
    file = join(dir, 'test.journal');
    stateFile = join(dir, 'test.json');
    errors.length = 0;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts empty without a file and gives back every appended entry, in order, on the next open', async () => {
    const { journal, entries } = await openJournal();
    expect(entries).toEqual([]);
    expect(journal.seq).toBe(0);
    expect(journal.due()).toBe(false);
    for (let n = 1; n <= 5; n++) await journal.append({ n: n * 10 });
    expect(journal.seq).toBe(5);
    expect(journal.bytes).toBe((await readFile(file)).length);

    const reopened = await openJournal();
    expect(reopened.entries).toEqual([{ n: 10 }, { n: 20 }, { n: 30 }, { n: 40 }, { n: 50 }]);
    expect(reopened.journal.seq).toBe(5);
    await reopened.journal.append({ n: 60 });
    expect((await openJournal()).entries.map((e) => e.n)).toEqual([10, 20, 30, 40, 50, 60]);
  });

  it('drops a torn last line (an append that never returned) and cuts it off the file', async () => {
    const { journal } = await openJournal();
    await journal.append({ n: 1 });
    await journal.append({ n: 2 });
    const intact = await readFile(file, 'utf8');
    await appendFile(file, '{"seq":3,"data":{"n":');

    const reopened = await openJournal();
    expect(reopened.entries).toEqual([{ n: 1 }, { n: 2 }]);
    expect(await readFile(file, 'utf8')).toBe(intact);
    // The next append takes the torn line's sequence number and is read back whole.
    await reopened.journal.append({ n: 3 });
    expect((await openJournal()).entries).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('refuses to open when a complete line is not a journal entry, naming the file and the line', async () => {
    await writeFile(file, '{"seq":1,"data":{"n":1}}\nnot json\n{"seq":3,"data":{"n":3}}\n');
    const error = await openError();
    expect(error.code).toBe('internal');
    expect(error.message).toContain(`journal ${file} line 2 is not a journal entry`);
    // Left as it was, for whoever restores it.
    expect(await readFile(file, 'utf8')).toContain('not json');
  });

  it('refuses to open on an entry of the wrong shape or a gap in the sequence', async () => {
    await writeFile(file, '{"seq":1,"data":{"n":"one"}}\n');
    expect((await openError()).message).toContain('line 1 does not have the expected shape (n must be a number)');
    await writeFile(file, '{"seq":1,"data":{"n":1}}\n{"seq":3,"data":{"n":3}}\n');
    expect((await openError()).message).toContain('line 2 has sequence 3 where 2 was expected');
    // The state file says it holds up to 5; a journal starting at 7 misses 6.
    await writeFile(file, '{"seq":7,"data":{"n":7}}\n');
    expect((await openError(5)).message).toContain('line 1 has sequence 7 where 6 was expected');
  });

  it('skips the entries a state file already holds (a crash between writing it and emptying the journal)', async () => {
    const { journal } = await openJournal();
    for (let n = 1; n <= 4; n++) await journal.append({ n });
    const reopened = await openJournal(3);
    expect(reopened.entries).toEqual([{ n: 4 }]);
    expect(reopened.journal.seq).toBe(4);
    expect((await openJournal(4)).entries).toEqual([]);
  });

  it('folds into the state file, and keeps the lines appended while the state file was written', async () => {
    const { journal } = await openJournal();
    await journal.append({ n: 1 });
    await journal.append({ n: 2 });
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => { release = resolve; });
    const queued: Promise<void>[] = [];
    // The cut waits its turn behind writes, as in a store's write queue.
    journal.fold((seq) => JSON.stringify({ through: seq }), (task) => {
      const run = gate.then(task);
      queued.push(run);
      return run;
    });
    expect(journal.due()).toBe(false);
    await vi.waitFor(async () => { expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ through: 2 }); });
    await journal.append({ n: 3 });
    release();
    await vi.waitFor(() => { expect(queued).toHaveLength(1); });
    await queued[0];
    expect(await readFile(file, 'utf8')).toBe('{"seq":3,"data":{"n":3}}\n');
    expect(journal.bytes).toBe((await readFile(file)).length);
    expect(journal.seq).toBe(3);
    await journal.append({ n: 4 });
    expect((await openJournal(2)).entries).toEqual([{ n: 3 }, { n: 4 }]);
    expect(errors).toEqual([]);
  });

  it('empties once everything is folded, keeps counting, and leaves nothing behind on close', async () => {
    const { journal } = await openJournal();
    await journal.append({ n: 1 });
    await journal.append({ n: 2 });
    await journal.close((seq) => JSON.stringify({ through: seq }));
    expect(journal.bytes).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('');
    expect(JSON.parse(await readFile(stateFile, 'utf8'))).toEqual({ through: 2 });
    await journal.append({ n: 3 });
    expect(journal.seq).toBe(3);
    expect((await openJournal(2)).entries).toEqual([{ n: 3 }]);
    expect((await readdir(dir)).sort()).toEqual(['test.journal', 'test.json']);
  });

  it('is due once it is at least its minimum size and at least the state file size', async () => {
    const { journal } = await openJournal(0, 100, 200);
    while (journal.bytes < 100) await journal.append({ n: journal.seq });
    // Past its minimum, still smaller than the state file (lines are about 25 bytes).
    expect(journal.bytes).toBeLessThan(200);
    expect(journal.due()).toBe(false);
    while (journal.bytes < 200) await journal.append({ n: journal.seq });
    expect(journal.due()).toBe(true);
    // After a fold, the state file it wrote is the size to outgrow.
    journal.fold(() => 'x'.repeat(1000), now);
    await vi.waitFor(() => { expect(journal.bytes).toBe(0); });
    while (journal.bytes < 200) await journal.append({ n: journal.seq });
    expect(journal.due()).toBe(false);
    while (journal.bytes < 1000) await journal.append({ n: journal.seq });
    expect(journal.due()).toBe(true);
  });

  it('reports a fold it could not write, keeps every line, and is due again once it grew by its minimum', async () => {
    const { journal } = await openJournal(0, 100);
    while (journal.bytes < 100) await journal.append({ n: journal.seq });
    const failedAt = journal.bytes;
    // A folder where the state file should go makes its atomic rename fail.
    await mkdir(stateFile);
    journal.fold(() => '{}', now);
    await vi.waitFor(() => { expect(errors).toHaveLength(1); });
    expect(errors[0]?.message).toContain(stateFile);
    // Not after every write: a disk that refuses the state file is not asked again at once.
    await journal.append({ n: journal.seq });
    expect(journal.due()).toBe(false);
    while (journal.bytes < failedAt + 100) await journal.append({ n: journal.seq });
    expect(journal.due()).toBe(true);
    expect((await openJournal()).entries).toHaveLength(journal.seq);
  });

  it('fails an append it cannot make with store-unavailable, and appends again once it can', async () => {
    const { journal } = await openJournal();
    await journal.append({ n: 1 });
    await rm(file);
    await mkdir(file);
    const error: unknown = await journal.append({ n: 2 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RampartError);
    expect((error as RampartError).code).toBe('store-unavailable');
    expect(journal.seq).toBe(1);
    await rmdir(file);
    // The failed append left nothing behind: the next one takes its sequence number.
    await journal.append({ n: 2 });
    expect(await readFile(file, 'utf8')).toBe('{"seq":2,"data":{"n":2}}\n');
  });
});
