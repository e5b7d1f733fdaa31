// The behaviour every OutcomeStore adapter must show, run against each of them with a factory.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RampartError } from '../../src/core/errors.js';
import type { Cohort, OutcomeEvent, OutcomeStore } from '../../src/store/outcome-store.js';

/** Settings a test needs on its store; the adapter's defaults otherwise. */
export interface OutcomeContractOptions {
  readonly sliceMs?: number;
  readonly retentionMs?: number;
}

/** A store on a fresh, empty backing. */
export interface OutcomeContractBacking {
  readonly store: OutcomeStore;
  /** Closes the store and removes the backing. */
  dispose(): Promise<void>;
}

export type OutcomeContractFactory = (options: OutcomeContractOptions) => Promise<OutcomeContractBacking>;

const SLICE = 1000;

/** An event; `at` is close to the real clock because Redis expires keys by its own clock. */
export function outcome(flagKey: string, cohort: Cohort, ok: boolean, at: Date, latencyMs?: number): OutcomeEvent {
  return latencyMs === undefined ? { flagKey, cohort, ok, at } : { flagKey, cohort, ok, at, latencyMs };
}

/** A slice-aligned instant a little before now, so every test's slices are fresh and retained. */
function alignedNow(): number {
  return Math.floor(Date.now() / SLICE) * SLICE - 10 * SLICE;
}

async function rejection(promise: Promise<unknown>): Promise<RampartError> {
  const error: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RampartError);
  return error as RampartError;
}

/**
 * Registers the OutcomeStore contract for one adapter.
 *
 * @example
 * outcomeStoreContract('embedded', async (options) => { ... });
 */
export function outcomeStoreContract(name: string, factory: OutcomeContractFactory): void {
  describe(`OutcomeStore contract: ${name}`, () => {
    let backing: OutcomeContractBacking;
    let store: OutcomeStore;
    let base: number;
    beforeEach(async () => {
      backing = await factory({ sliceMs: SLICE });
      store = backing.store;
      base = alignedNow();
    });
    afterEach(async () => {
      await backing.dispose();
    });

    it('answers zero counts and null rates and quantiles for a flag without outcomes', async () => {
      const now = new Date(base + 500);
      const summary = await store.summary('quiet', 60_000, now);
      const empty = { count: 0, ok: 0, failed: 0, successRate: null, latencyCount: 0, p50: null, p95: null, p99: null };
      expect(summary).toEqual({
        flagKey: 'quiet',
        windowMs: 60_000,
        from: new Date(base - 60_000).toISOString(),
        to: now.toISOString(),
        cohorts: { on: empty, off: empty },
      });
    });

    it('counts ok and failed outcomes per cohort and derives the success rate', async () => {
      const at = new Date(base + 100);
      await store.record([
        ...Array.from({ length: 9 }, () => outcome('checkout', 'on', true, at)),
        outcome('checkout', 'on', false, at),
        outcome('checkout', 'off', true, at),
        outcome('checkout', 'off', false, at),
        outcome('checkout', 'off', false, at),
        outcome('checkout', 'off', false, at),
        outcome('other', 'on', false, at),
      ]);
      const { cohorts } = await store.summary('checkout', 60_000, new Date(base + 900));
      expect(cohorts.on).toMatchObject({ count: 10, ok: 9, failed: 1, successRate: 0.9, latencyCount: 0, p50: null });
      expect(cohorts.off).toMatchObject({ count: 4, ok: 1, failed: 3, successRate: 0.25 });
    });

    it('adds up batches and slices inside the window', async () => {
      for (let i = 0; i < 5; i++) await store.record([outcome('checkout', 'on', true, new Date(base - i * SLICE + 10))]);
      await store.record([outcome('checkout', 'on', false, new Date(base + 20)), outcome('checkout', 'on', true, new Date(base + 30))]);
      const { cohorts } = await store.summary('checkout', 10_000, new Date(base + 999));
      expect(cohorts.on).toMatchObject({ count: 7, ok: 6, failed: 1 });
    });

    it('estimates p50/p95/p99 exactly for 1000 latencies spread evenly over 0-1000 ms', async () => {
      const at = new Date(base + 1);
      await store.record(Array.from({ length: 1000 }, (_, i) => outcome('latency', 'on', true, at, i + 0.5)));
      const { on } = (await store.summary('latency', 60_000, new Date(base + 999))).cohorts;
      expect(on.latencyCount).toBe(1000);
      expect(on.p50).toBeCloseTo(500, 6);
      expect(on.p95).toBeCloseTo(950, 6);
      expect(on.p99).toBeCloseTo(990, 6);
    });

    it('interpolates inside a bucket: 1000 latencies uniform in (100, 250] give p50 175, p95 242.5, p99 248.5', async () => {
      const at = new Date(base + 1);
      await store.record(Array.from({ length: 1000 }, (_, i) => outcome('latency', 'off', i % 2 === 0, at, 100 + (i + 0.5) * 0.15)));
      const { off, on } = (await store.summary('latency', 60_000, new Date(base + 999))).cohorts;
      expect(off.successRate).toBe(0.5);
      expect(off.p50).toBeCloseTo(175, 6);
      expect(off.p95).toBeCloseTo(242.5, 6);
      expect(off.p99).toBeCloseTo(248.5, 6);
      expect(on.p50).toBeNull();
    });

    it('puts a latency equal to a bound in that bound\'s bucket and answers the last bound for the open bucket', async () => {
      const at = new Date(base + 1);
      // 98 of 100 at exactly 10 ms (bucket (5, 10]), two above 60 s (the open bucket).
      await store.record([
        ...Array.from({ length: 98 }, () => outcome('edges', 'on', true, at, 10)),
        outcome('edges', 'on', false, at, 90_000),
        outcome('edges', 'on', false, at, 3_600_000),
        outcome('edges', 'on', true, at),
      ]);
      const { on } = (await store.summary('edges', 60_000, new Date(base + 999))).cohorts;
      expect(on).toMatchObject({ count: 101, latencyCount: 100 });
      // rank 50 of the 98 in (5, 10]: 5 + 5 * 50/98
      expect(on.p50).toBeCloseTo(5 + (5 * 50) / 98, 6);
      expect(on.p95).toBeCloseTo(5 + (5 * 95) / 98, 6);
      expect(on.p99).toBe(60_000);
    });

    it('includes every slice overlapping [now - window, now] and no other', async () => {
      // One outcome in each of the slices base-5s .. base+1s.
      await store.record([-5, -4, -3, -2, -1, 0, 1].map((s) => outcome('edges', 'on', true, new Date(base + s * SLICE + 500))));
      const now = new Date(base + 200);
      // [base-2800, base+200]: slices base-3s, -2s, -1s, 0 (base+1s is after now).
      const three = await store.summary('edges', 3000, now);
      expect(three.cohorts.on.count).toBe(4);
      expect(three.from).toBe(new Date(base - 3 * SLICE).toISOString());
      expect(three.to).toBe(now.toISOString());
      expect(three.windowMs).toBe(3000);
      // [base-2000, base+200]: the slice starting exactly at now - window overlaps it.
      expect((await store.summary('edges', 2200, now)).cohorts.on.count).toBe(3);
      expect((await store.summary('edges', 2201, now)).cohorts.on.count).toBe(4);
      // A window inside one slice still reads that whole slice.
      expect((await store.summary('edges', 1, new Date(base + SLICE + 999))).cohorts.on.count).toBe(1);
      // Before anything happened.
      expect((await store.summary('edges', 3000, new Date(base - 6 * SLICE))).cohorts.on.count).toBe(0);
    });

    it('refuses a batch with one bad event and counts none of it', async () => {
      const at = new Date(base + 1);
      const bad = { flagKey: 'checkout', cohort: 'on', ok: true, at, latencyMs: Number.NaN } as const;
      const error = await rejection(store.record([outcome('checkout', 'on', true, at), bad]));
      expect(error.code).toBe('validation');
      expect(error.errors[0]?.path).toBe('events.1.latencyMs');
      expect(await rejection(store.record([outcome('Not A Key', 'on', true, at)]))).toMatchObject({ code: 'validation' });
      expect((await store.summary('checkout', 60_000, new Date(base + 999))).cohorts.on.count).toBe(0);
    });

    it('accepts an empty batch', async () => {
      await store.record([]);
      expect((await store.summary('checkout', 60_000, new Date(base))).cohorts.on.count).toBe(0);
    });

    it('refuses a summary for an invalid key or a non-positive window', async () => {
      expect((await rejection(store.summary('Bad Key', 1000, new Date(base)))).code).toBe('validation');
      expect((await rejection(store.summary('checkout', 0, new Date(base)))).code).toBe('validation');
    });
  });
}
