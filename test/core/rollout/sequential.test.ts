import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/core/rollout/decide.js';
import type { RolloutPlan } from '../../../src/core/rollout/plan.js';
import { compareToControl, mixtureEvidence } from '../../../src/core/rollout/sequential.js';
import { initialState } from '../../../src/core/rollout/state.js';
import type { CohortCounts } from '../../../src/core/rollout/verdict.js';

/** mulberry32: a small seeded PRNG, so the simulation is the same on every run. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const MIN = 60_000;

function cohort(count: number, ok: number): CohortCounts {
  return { count, ok, failed: count - ok, successRate: count === 0 ? null : ok / count, p50: null, p95: null, p99: null };
}

/**
 * Simulates `runs` rollouts guarded by one `compare: control` criterion through decide(): each
 * minute `perTick` outcomes per cohort arrive, the guard checks the counts so far, and a
 * rollback follows `after` consecutive fails. Returns the share of rollouts rolled back.
 */
function simulate(random: () => number, options: { runs: number; pControl: number; pCanary: number; maxDrop: number; perCohort: number; perTick: number }): number {
  const plan: RolloutPlan = {
    stages: [{ percentage: 50, holdMs: 7 * 24 * 60 * MIN }, { percentage: 100 }],
    sampleEveryMs: MIN,
    criteria: [{ name: 'vs-control', source: { type: 'outcomes', windowMs: 15 * MIN }, metric: 'successRate', compare: 'control', maxDrop: options.maxDrop }],
    onFailure: { action: 'revert', after: 2 },
    dryRun: false,
    notify: [],
  };
  let rolledBack = 0;
  for (let run = 0; run < options.runs; run++) {
    let state = initialState(plan, 0);
    let onOk = 0;
    let offOk = 0;
    for (let n = options.perTick, tick = 1; n <= options.perCohort; n += options.perTick, tick++) {
      for (let i = 0; i < options.perTick; i++) {
        if (random() < options.pCanary) onOk++;
        if (random() < options.pControl) offOk++;
      }
      const d = decide({ plan, state, readings: { 'vs-control': { kind: 'cohorts', on: cohort(n, onOk), off: cohort(n, offOk) } }, now: tick * MIN });
      state = d.state;
      if (d.action === 'revert') {
        rolledBack++;
        break;
      }
    }
  }
  return rolledBack / options.runs;
}

describe('compare: control (always-valid sequential test)', () => {
  it('rolls back at most 5 % of 1,000 rollouts with no true difference, checked every minute', () => {
    const rate = simulate(seeded(20261124), { runs: 1000, pControl: 0.97, pCanary: 0.97, maxDrop: 0, perCohort: 2000, perTick: 50 });
    expect(rate).toBeLessThanOrEqual(0.05);
  });

  it('rolls back at least 90 % of 1,000 rollouts with a true drop of 3 points and 2,000 outcomes per cohort', () => {
    const rate = simulate(seeded(7), { runs: 1000, pControl: 0.97, pCanary: 0.94, maxDrop: 0, perCohort: 2000, perTick: 50 });
    expect(rate).toBeGreaterThanOrEqual(0.9);
  });

  it('stays under alpha at the 0.95 baseline too, where its power for a 3-point drop is ~89 % (docs/rollouts.md)', () => {
    const nullRate = simulate(seeded(11), { runs: 1000, pControl: 0.95, pCanary: 0.95, maxDrop: 0, perCohort: 2000, perTick: 50 });
    const power = simulate(seeded(12), { runs: 1000, pControl: 0.95, pCanary: 0.92, maxDrop: 0, perCohort: 2000, perTick: 50 });
    expect(nullRate).toBeLessThanOrEqual(0.05);
    expect(power).toBeGreaterThanOrEqual(0.85);
  });

  it('never fails a canary that is better than control, whatever the counts', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.2, noNaN: true }), (n, p, gain) => {
        const off = Math.floor(n * p);
        const on = Math.min(n, off + Math.ceil(n * gain));
        return compareToControl({ count: n, ok: on }, { count: n, ok: off }, { maxDrop: 0 }).verdict !== 'fail';
      }),
    );
  });

  it('is insufficient below minSamples even for a large gap, and passes a clean canary with enough data', () => {
    expect(compareToControl({ count: 50, ok: 10 }, { count: 50, ok: 50 }, { maxDrop: 0.01 }).verdict).toBe('insufficient');
    expect(compareToControl({ count: 5000, ok: 4760 }, { count: 5000, ok: 4750 }, { maxDrop: 0.01 }).verdict).toBe('pass');
    expect(compareToControl({ count: 5000, ok: 4500 }, { count: 5000, ok: 4750 }, { maxDrop: 0.01 }).verdict).toBe('fail');
  });

  it('has a mixture likelihood ratio of 1 at no evidence and growing with the deviation', () => {
    expect(mixtureEvidence(0, 7)).toBeLessThan(1);
    expect(mixtureEvidence(3, 7)).toBeGreaterThan(20);
    expect(mixtureEvidence(2, 7)).toBeLessThan(mixtureEvidence(2.5, 7));
  });
});
