import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RampartError } from '../../src/core/errors.js';
import { createEmbeddedStore } from '../../src/store/embedded-store.js';
import type { EmbeddedFlagStore } from '../../src/store/embedded-store.js';
import { fields, flagStoreContract, meta } from './flag-store-contract.js';

flagStoreContract('embedded', async (options) => {
  const dir = await mkdtemp(join(tmpdir(), 'rampart-embedded-'));
  const store = await createEmbeddedStore({ dir, ...options });
  return {
    store,
    // The lock admits one store per folder, so the only other writer a subscriber can hear
    // is this same instance; "every process sharing the store" is this one process.
    peer: store,
    async dispose() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

const CHILD = fileURLToPath(new URL('./fixtures/embedded-child.ts', import.meta.url));

interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly lines: string[];
  readonly exited: Promise<void>;
}

/** Runs test/store/fixtures/embedded-child.ts in a real second Node process. */
function startChild(mode: 'hold' | 'write', dir: string, ...extra: string[]): Child {
  const child = spawn(process.execPath, ['--conditions=rampart-source', '--import', 'tsx', CHILD, mode, dir, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let buffered = '';
  child.stdout.on('data', (data: Buffer) => {
    buffered += data.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    lines.push(...parts);
  });
  let stderr = '';
  child.stderr.on('data', (data: Buffer) => {
    stderr += data.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => { resolve(); }));
  void exited.then(() => {
    if (stderr !== '' && child.signalCode === null) console.error(stderr);
  });
  if (child.pid === undefined) throw new Error('child did not start');
  return { process: child, pid: child.pid, lines, exited };
}

async function openError(dir: string): Promise<RampartError> {
  const error: unknown = await createEmbeddedStore({ dir }).then(
    async (store) => {
      await store.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RampartError);
  return error as RampartError;
}

describe('embedded store', () => {
  let dir: string;
  const open: EmbeddedFlagStore[] = [];
  const children: Child[] = [];

  async function openStore(options: { historyLimit?: number; journalMinBytes?: number; onError?: (error: Error) => void } = {}): Promise<EmbeddedFlagStore> {
    const store = await createEmbeddedStore({ dir, ...options });
    open.push(store);
    return store;
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-embedded-'));
  });
  afterEach(async () => {
    for (const store of open.splice(0)) await store.close();
    for (const child of children.splice(0)) {
      child.process.kill('SIGKILL');
      await child.exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  describe('persistence', () => {
    it('keeps flags, versions, history and revision across a close and reopen', async () => {
      const first = await openStore();
      await first.put('kept', fields(), 0, meta('ana', 'launch'));
      await first.put('kept', fields({ percentage: 60 }), 1, meta('bo'));
      await first.put('gone', fields(), 0, meta());
      await first.delete('gone', 1, meta());
      const before = { snapshot: await first.snapshot(), kept: await first.history('kept', { limit: 10 }), gone: await first.history('gone', { limit: 10 }), changes: await first.changesSince(0) };
      await first.close();

      const second = await openStore();
      expect(await second.snapshot()).toEqual(before.snapshot);
      expect(await second.history('kept', { limit: 10 })).toEqual(before.kept);
      expect(await second.history('gone', { limit: 10 })).toEqual(before.gone);
      // The feed is rebuilt from the histories, so SSE clients can resume across a restart.
      expect(await second.changesSince(0)).toEqual(before.changes);
      // A deleted flag's version survives the restart too: re-creating continues at 2.
      expect(await second.put('gone', fields(), 0, meta())).toMatchObject({ ok: true, revision: 5, flag: { version: 2 } });
    });

    it('creates a missing folder, including parents', async () => {
      const nested = join(dir, 'a', 'b');
      const store = await createEmbeddedStore({ dir: nested });
      open.push(store);
      await store.put('x', fields(), 0, meta());
      expect(existsSync(join(nested, 'state.journal'))).toBe(true);
    });

    it('appends one journal line per write, without rewriting the state file', async () => {
      const store = await openStore();
      await store.put('x', fields(), 0, meta());
      await store.close();
      const state = await readFile(join(dir, 'state.json'), 'utf8');
      const reopened = await openStore();
      for (let version = 1; version <= 20; version++) {
        const result = await reopened.put('x', fields({ percentage: version }), version, meta());
        const lines = (await readFile(join(dir, 'state.journal'), 'utf8')).split('\n').filter((line) => line !== '');
        expect(lines).toHaveLength(version);
        expect(JSON.parse(lines.at(-1) ?? '')).toMatchObject({ data: { revision: result.ok ? result.revision : -1, after: { version: version + 1 } } });
        expect(await readFile(join(dir, 'state.json'), 'utf8')).toBe(state);
      }
      expect((await readdir(dir)).sort()).toEqual(['lock', 'state.journal', 'state.json']);
    });

    it('folds the journal into the state file once it outgrows it, and on close', async () => {
      const store = await openStore({ journalMinBytes: 4096 });
      let version = 0;
      while (!existsSync(join(dir, 'state.json'))) {
        await store.put('x', fields({ percentage: version % 100 }), version, meta());
        version++;
      }
      await vi.waitFor(async () => { expect((await readFile(join(dir, 'state.journal'), 'utf8')).length).toBeLessThan(4096); });
      const folded = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { revision: number; journalSeq: number };
      // The state file was written while the loop went on writing: the journal keeps exactly the
      // writes after the ones it holds.
      expect(folded.journalSeq).toBe(folded.revision);
      const kept = (await readFile(join(dir, 'state.journal'), 'utf8')).split('\n').filter((line) => line !== '').map((line) => (JSON.parse(line) as { seq: number }).seq);
      expect(kept).toEqual(Array.from({ length: version - folded.revision }, (_, i) => folded.revision + i + 1));
      // A journal that has outgrown neither its minimum nor the state file stays a journal.
      await store.put('x', fields(), version, meta());
      expect(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'))).toMatchObject({ revision: folded.revision });
      const before = { snapshot: await store.snapshot(), history: await store.history('x', { limit: 1000 }), changes: await store.changesSince(0) };
      await store.close();
      expect(await readFile(join(dir, 'state.journal'), 'utf8')).toBe('');
      expect(JSON.parse(await readFile(join(dir, 'state.json'), 'utf8'))).toMatchObject({ revision: version + 1, journalSeq: version + 1 });
      const reopened = await openStore();
      expect({ snapshot: await reopened.snapshot(), history: await reopened.history('x', { limit: 1000 }), changes: await reopened.changesSince(0) }).toEqual(before);
    });

    it('recovers from the files a crash leaves: the state file, the journal, and lines the state file already holds', async () => {
      const store = await openStore({ journalMinBytes: 4096 });
      await store.put('kept', fields(), 0, meta('ana', 'launch'));
      await store.put('gone', fields(), 0, meta());
      await store.delete('gone', 1, meta());
      // Lines written before the next fold: replaying them again over the folded state must change nothing.
      const stale = await readFile(join(dir, 'state.journal'), 'utf8');
      let version = 1;
      while (!existsSync(join(dir, 'state.json'))) {
        await store.put('kept', fields({ percentage: version % 100 }), version, meta());
        version++;
      }
      await store.put('kept', fields({ percentage: 1 }), version, meta());
      // Once the fold is done: its state file, and a journal starting right after it.
      await vi.waitFor(async () => {
        const { journalSeq } = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { journalSeq: number };
        const first = (await readFile(join(dir, 'state.journal'), 'utf8')).split('\n')[0] ?? '';
        expect((JSON.parse(first) as { seq: number }).seq).toBe(journalSeq + 1);
      });
      const before = { snapshot: await store.snapshot(), kept: await store.history('kept', { limit: 1000 }), gone: await store.history('gone', { limit: 10 }), changes: await store.changesSince(0) };
      // What a SIGKILL now would leave, plus the stale lines a crash between folding and emptying
      // the journal would leave in front of it.
      const crashed = await mkdtemp(join(tmpdir(), 'rampart-embedded-crash-'));
      try {
        await writeFile(join(crashed, 'state.json'), await readFile(join(dir, 'state.json')));
        await writeFile(join(crashed, 'state.journal'), stale + (await readFile(join(dir, 'state.journal'), 'utf8')));
        const recovered = await createEmbeddedStore({ dir: crashed });
        try {
          expect({ snapshot: await recovered.snapshot(), kept: await recovered.history('kept', { limit: 1000 }), gone: await recovered.history('gone', { limit: 10 }), changes: await recovered.changesSince(0) }).toEqual(before);
          expect(await recovered.put('gone', fields(), 0, meta())).toMatchObject({ ok: true, revision: before.snapshot.revision + 1, flag: { version: 2 } });
        } finally {
          await recovered.close();
        }
      } finally {
        await rm(crashed, { recursive: true, force: true });
      }
    });

    it('refuses to start on a journal that does not continue the state file', async () => {
      const store = await openStore();
      await store.put('x', fields(), 0, meta());
      await store.close();
      // A journal line whose entry skips revisions: a file from elsewhere, or a lost write.
      const entry = { id: '5', flagKey: 'y', revision: 5, at: new Date().toISOString(), actor: 'ana', source: 'api', action: 'create', before: null, after: { key: 'y', description: '', enabled: true, percentage: 5, groupId: 'y', stickiness: 'userId', version: 1, updatedAt: new Date().toISOString(), updatedBy: 'ana' } };
      await writeFile(join(dir, 'state.journal'), `${JSON.stringify({ seq: 2, data: entry })}\n`);
      const error = await openError(dir);
      expect(error.code).toBe('internal');
      expect(error.message).toContain('holds revision 5 where 2 was expected');
    });

    it('loses no acknowledged write when the process is killed mid-stream', async () => {
      const child = startChild('write', dir);
      children.push(child);
      await vi.waitFor(() => { expect(child.lines.length).toBeGreaterThan(50); }, { timeout: 15_000 });
      child.process.kill('SIGKILL');
      await child.exited;
      const acknowledged = Number(child.lines.at(-1));
      // The dead child's lock is stale and taken over; its temp file, if any, is cleaned up.
      const store = await openStore();
      const snapshot = await store.snapshot();
      expect(snapshot.revision).toBeGreaterThanOrEqual(acknowledged);
      expect((await store.get('crash'))?.version).toBe(snapshot.revision);
      expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    });

    it('loses no acknowledged write when killed at any moment of folding the journal into the state file', async () => {
      // A 2 KB journal minimum folds every few writes, so the kills land before, during and
      // after folds (writing the state file, shortening the journal) at varying moments.
      for (const [round, after] of [37, 61, 90].entries()) {
        const child = startChild('write', dir, '2048');
        children.push(child);
        const start = child.lines.length;
        await vi.waitFor(() => { expect(child.lines.length).toBeGreaterThan(start + after); }, { timeout: 15_000 });
        child.process.kill('SIGKILL');
        await child.exited;
        const acknowledged = Number(child.lines.at(-1));
        const store = await createEmbeddedStore({ dir, historyLimit: 20 });
        try {
          const { revision } = await store.snapshot();
          expect(revision, `round ${round}`).toBeGreaterThanOrEqual(acknowledged);
          expect((await store.get('crash'))?.version).toBe(revision);
          // The history is whole: one entry per revision, none missing or doubled by a fold.
          const history = await store.history('crash', { limit: 100 });
          expect(history.entries.map((e) => e.revision)).toEqual(Array.from({ length: Math.min(20, revision) }, (_, i) => revision - i));
        } finally {
          await store.close();
        }
      }
    });

    it('answers a write it could not persist with store-unavailable and keeps the old state', async () => {
      const store = await openStore();
      await store.put('x', fields(), 0, meta());
      // A folder where the journal should be makes the append fail.
      await rm(join(dir, 'state.journal'));
      await mkdir(join(dir, 'state.journal'));
      const error: unknown = await store.put('x', fields({ percentage: 9 }), 1, meta()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(RampartError);
      expect((error as RampartError).code).toBe('store-unavailable');
      expect(await store.get('x')).toMatchObject({ version: 1, percentage: 12.5 });
      expect((await store.snapshot()).revision).toBe(1);
      await rmdir(join(dir, 'state.journal'));
      expect(await store.put('x', fields({ percentage: 9 }), 1, meta())).toMatchObject({ ok: true, revision: 2 });
      expect((await readdir(dir)).sort()).toEqual(['lock', 'state.journal']);
    });

    it('reports a fold it could not write, keeps every write in the journal, and folds later', async () => {
      const errors: Error[] = [];
      const store = await openStore({ journalMinBytes: 2048, onError: (error) => errors.push(error) });
      // A folder where the state file should go makes the fold's rename fail.
      await mkdir(join(dir, 'state.json'));
      let version = 0;
      while (errors.length === 0) {
        await store.put('x', fields({ percentage: version % 100 }), version, meta());
        version++;
      }
      expect(errors[0]?.message).toContain('state.json');
      await rmdir(join(dir, 'state.json'));
      // Tried again once the journal has grown by its minimum size once more, not at every write.
      const failedAt = version;
      while (!existsSync(join(dir, 'state.json')) && version < failedAt + 200) {
        await store.put('x', fields({ percentage: version % 100 }), version, meta());
        version++;
      }
      expect(version - failedAt).toBeGreaterThan(1);
      await vi.waitFor(() => { expect(existsSync(join(dir, 'state.json'))).toBe(true); });
      expect(errors).toHaveLength(1);
      await store.close();
      const reopened = await openStore();
      expect(await reopened.get('x')).toMatchObject({ version });
    });

    it('removes temp files a crashed writer left behind', async () => {
      await writeFile(join(dir, 'state.json.4242.7.tmp'), '{"half":');
      await openStore();
      expect(await readdir(dir)).toEqual(['lock']);
    });
  });

  describe('corrupt state file', () => {
    it('refuses to start on a file that is not JSON, naming the file, and leaves it alone', async () => {
      await writeFile(join(dir, 'state.json'), '{"format": "rampart-embedded-store", "revis');
      const error = await openError(dir);
      expect(error.code).toBe('internal');
      expect(error.message).toContain(join(dir, 'state.json'));
      expect(error.message).toContain('corrupt');
      expect(await readFile(join(dir, 'state.json'), 'utf8')).toBe('{"format": "rampart-embedded-store", "revis');
      // The failed start released its lock: once the file is fixed, the store opens.
      expect(existsSync(join(dir, 'lock'))).toBe(false);
      await rm(join(dir, 'state.json'));
      await openStore();
    });

    it('refuses to start on JSON of the wrong shape, saying which field is wrong', async () => {
      await writeFile(join(dir, 'state.json'), JSON.stringify({ format: 'rampart-embedded-store', formatVersion: 1, revision: 'three', flags: [], versions: {}, history: {} }));
      const error = await openError(dir);
      expect(error.message).toContain('corrupt');
      expect(error.message).toContain('revision');
    });

    it('refuses to start when a flag disagrees with the version table', async () => {
      const store = await openStore();
      await store.put('x', fields(), 0, meta());
      await store.close();
      const state = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { versions: Record<string, number> };
      state.versions.x = 9;
      await writeFile(join(dir, 'state.json'), JSON.stringify(state));
      expect((await openError(dir)).message).toContain(`flag 'x' has version 1`);
    });
  });

  describe('lock', () => {
    it('refuses a second store on a folder this live process holds, naming the pid and the folder', async () => {
      await openStore();
      const error = await openError(dir);
      expect(error.code).toBe('conflict');
      expect(error.message).toContain(String(process.pid));
      expect(error.message).toContain(dir);
    });

    it('refuses a folder held by another live process, and takes it over once that process was killed', async () => {
      const child = startChild('hold', dir);
      children.push(child);
      await vi.waitFor(() => { expect(child.lines).toContain('ready'); }, { timeout: 15_000 });
      const error = await openError(dir);
      expect(error.message).toContain(`process ${child.pid}`);
      expect(error.message).toContain(dir);
      child.process.kill('SIGKILL');
      await child.exited;
      const store = await openStore();
      await store.put('after-takeover', fields(), 0, meta());
      expect((await readFile(join(dir, 'lock'), 'utf8')).split(' ')[0]).toBe(String(process.pid));
    });

    it('takes over a stale lock whose pid has exited', async () => {
      const exited = spawn(process.execPath, ['-e', '']);
      await new Promise((resolve) => exited.once('exit', resolve));
      await writeFile(join(dir, 'lock'), `${exited.pid ?? 0}\n`);
      const store = await openStore();
      expect(await store.snapshot()).toEqual({ revision: 0, flags: [] });
    });

    it('refuses a lock file it did not write rather than guessing', async () => {
      await writeFile(join(dir, 'lock'), 'someone else\n');
      const error = await openError(dir);
      expect(error.message).toContain('not written by Rampart');
    });

    it('releases the lock on close, after which the store refuses calls and another may open', async () => {
      const store = await openStore();
      await store.close();
      expect(existsSync(join(dir, 'lock'))).toBe(false);
      await expect(store.get('x')).rejects.toMatchObject({ code: 'store-unavailable' });
      await expect(store.put('x', fields(), 0, meta())).rejects.toMatchObject({ code: 'store-unavailable' });
      await openStore();
    });

    it('finishes writes already accepted before close releases the lock', async () => {
      const store = await openStore();
      const writes = Array.from({ length: 5 }, (_, i) => store.put(`w${i}`, fields(), 0, meta()));
      await store.close();
      expect((await Promise.all(writes)).every((r) => r.ok)).toBe(true);
      expect((await (await openStore()).snapshot()).revision).toBe(5);
    });
  });

  it('keeps exactly historyLimit entries per flag', async () => {
    const store = await openStore({ historyLimit: 3 });
    for (let version = 0; version < 6; version++) await store.put('x', fields({ percentage: version }), version, meta());
    expect((await store.history('x', { limit: 100 })).entries.map((e) => e.revision)).toEqual([6, 5, 4]);
  });

  it('rejects ping once its folder is gone', async () => {
    const store = await openStore();
    await store.ping();
    await rm(dir, { recursive: true, force: true });
    await expect(store.ping()).rejects.toMatchObject({ code: 'store-unavailable' });
  });
});
