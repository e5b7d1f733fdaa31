import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createEmbeddedOutcomeStore } from '../../src/store/embedded-outcome-store.js';
import type { EmbeddedOutcomeStore, EmbeddedOutcomeStoreOptions } from '../../src/store/embedded-outcome-store.js';
import { outcome, outcomeStoreContract } from './outcome-store-contract.js';

outcomeStoreContract('embedded', async (options) => {
  const dir = await mkdtemp(join(tmpdir(), 'rampart-outcomes-'));
  const store = await createEmbeddedOutcomeStore({ dir, ...options });
  return {
    store,
    async dispose() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

interface SavedFile {
  readonly sliceMs: number;
  readonly slices: readonly { flagKey: string; cohort: string; start: number; ok: number; failed: number }[];
}

describe('embedded outcome store', () => {
  let dir: string;
  const open: EmbeddedOutcomeStore[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rampart-outcomes-'));
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await rm(dir, { recursive: true, force: true });
  });

  async function store(options: Omit<EmbeddedOutcomeStoreOptions, 'dir'> = {}): Promise<EmbeddedOutcomeStore> {
    const created = await createEmbeddedOutcomeStore({ dir, ...options });
    open.push(created);
    return created;
  }

  const saved = async (): Promise<SavedFile> => JSON.parse(await readFile(join(dir, 'outcomes.json'), 'utf8')) as SavedFile;

  it('keeps the counts across a close and a reopen of the folder', async () => {
    const first = await createEmbeddedOutcomeStore({ dir });
    const at = new Date();
    await first.record([outcome('checkout', 'on', true, at, 12), outcome('checkout', 'off', false, at)]);
    await first.close();
    const second = await store();
    const { cohorts } = await second.summary('checkout', 60_000, new Date(at.getTime() + 1));
    expect(cohorts.on).toMatchObject({ count: 1, ok: 1, latencyCount: 1 });
    expect(cohorts.off).toMatchObject({ count: 1, failed: 1 });
    expect((await readdir(dir)).sort()).toEqual(['outcomes.json']);
  });

  it('writes the file at most once a second while outcomes arrive', async () => {
    const outcomes = await store();
    const at = new Date();
    await outcomes.record([outcome('checkout', 'on', true, at)]);
    // The first write goes out at once...
    await vi.waitFor(async () => {
      expect((await saved()).slices).toHaveLength(1);
    });
    await outcomes.record([outcome('checkout', 'off', true, at)]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    // ...the next waits until a second after it.
    expect((await saved()).slices).toHaveLength(1);
    await vi.waitFor(async () => {
      expect((await saved()).slices).toHaveLength(2);
    }, { timeout: 2000, interval: 50 });
  });

  it('drops slices past the retention: not counted, and pruned from the file', async () => {
    const outcomes = await store({ sliceMs: 100, retentionMs: 1000 });
    const at = new Date();
    await outcomes.record([outcome('checkout', 'on', true, at)]);
    expect((await outcomes.summary('checkout', 1000, new Date(at.getTime() + 1))).cohorts.on.count).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect((await outcomes.summary('checkout', 1000, new Date(at.getTime() + 1))).cohorts.on.count).toBe(0);
    // Already past the retention when it arrives: not kept at all.
    await outcomes.record([outcome('old', 'on', true, new Date(Date.now() - 10_000)), outcome('fresh', 'on', true, new Date())]);
    await outcomes.close();
    expect((await saved()).slices.map((s) => s.flagKey)).toEqual(['fresh']);
  });

  it('starts without past outcomes, and says so, when the file is corrupt', async () => {
    await writeFile(join(dir, 'outcomes.json'), '{"format":"rampart-outcomes", nope');
    const onError = vi.fn();
    const outcomes = await store({ onError });
    expect(onError).toHaveBeenCalledTimes(1);
    expect((await outcomes.summary('checkout', 60_000, new Date())).cohorts.on.count).toBe(0);
    await outcomes.record([outcome('checkout', 'on', true, new Date())]);
    await outcomes.close();
    expect((await saved()).slices).toHaveLength(1);
  });

  it('folds old slices into the new slice length when sliceMs changes', async () => {
    const start = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
    const first = await createEmbeddedOutcomeStore({ dir, sliceMs: 10_000 });
    await first.record([0, 10_000, 20_000, 50_000].map((offset) => outcome('checkout', 'on', true, new Date(start + offset))));
    await first.close();
    const second = await store({ sliceMs: 60_000 });
    expect((await second.summary('checkout', 1, new Date(start + 1))).cohorts.on.count).toBe(4);
  });

  it('leaves no temp files and removes those of a crashed writer', async () => {
    await writeFile(join(dir, 'outcomes.json.999.1.tmp'), 'partial');
    const outcomes = await store();
    await outcomes.record([outcome('checkout', 'on', true, new Date())]);
    await outcomes.close();
    expect(await readdir(dir)).toEqual(['outcomes.json']);
  });
});
