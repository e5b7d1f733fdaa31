import { appendFile, mkdir, mkdtemp, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
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
  const openJournal = (after = 0, minBytes?: number) => Journal.open<Entry>({ file, after, parse, minBytes });
  const openError = async (after = 0): Promise<RampartError> => {
    const error: unknown = await openJournal(after).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RampartError);
    return error as RampartError;
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-journal-'));
    file = join(dir, 'test.journal');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('starts empty without a file and gives back every appended entry, in order, on the next open', async () => {
    const { journal, entries } = await openJournal();
    expect(entries).toEqual([]);
    expect(journal.seq).toBe(0);
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

  it('empties on reset and keeps counting, so a state file written after it names its place', async () => {
    const { journal } = await openJournal();
    await journal.append({ n: 1 });
    await journal.append({ n: 2 });
    await journal.reset();
    expect(journal.bytes).toBe(0);
    expect(await readFile(file, 'utf8')).toBe('');
    await journal.append({ n: 3 });
    expect(journal.seq).toBe(3);
    expect((await openJournal(2)).entries).toEqual([{ n: 3 }]);
  });

  it('is due for folding once it is at least its minimum size and at least the state file size', async () => {
    const { journal } = await openJournal(0, 100);
    expect(journal.due(0)).toBe(false);
    while (journal.bytes < 100) await journal.append({ n: journal.seq });
    expect(journal.due(0)).toBe(true);
    expect(journal.due(journal.bytes)).toBe(true);
    expect(journal.due(journal.bytes + 1)).toBe(false);
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
