/**
 * An always-valid sequential comparison of two success rates (canary vs control).
 *
 * The statistic is a one-sided normal-mixture likelihood ratio (a mixture SPRT, Johari et al.;
 * equivalently the asymptotic confidence sequence of Waudby-Smith et al. with a half-normal mixing
 * distribution). Under the null it is (asymptotically) a non-negative martingale starting at 1, so by
 * Ville's inequality it ever reaches 1/alpha with probability at most alpha, however often it is
 * looked at. That is what lets the guard check every minute without inflating false alarms.
 * docs/rollouts.md derives it and reports the simulation figures.
 */

/**
 * Scale of the mixing distribution on the difference of success rates. The boundary is tightest
 * when tau^2 is about 6 to 8 times the variance of the difference; at p ~ 0.95 and n ~ 2000 per
 * cohort that variance is ~4.8e-5, so tau ~ 0.02 (two points of success rate).
 */
export const DEFAULT_MIXTURE_SCALE = 0.02;

/** Default false-alarm level of `compare: control`. */
export const DEFAULT_ALPHA = 0.05;

/** Below this many outcomes in a cohort the normal approximation is not trusted: `insufficient`. */
export const DEFAULT_COMPARE_MIN_SAMPLES = 100;

/** Success counts of one cohort. */
export interface Counts {
  readonly count: number;
  readonly ok: number;
}

/** The outcome of one look at the data. */
export interface ComparisonResult {
  /** `fail`: canary worse than control by more than maxDrop at level alpha. */
  readonly verdict: 'pass' | 'fail' | 'insufficient';
  /** Observed difference of success rates, on minus off. */
  readonly difference: number | null;
  /** Standard error of the difference. */
  readonly standardError: number | null;
  /** The mixture likelihood ratio against "no worse than maxDrop"; fail at >= 1/alpha. */
  readonly evidence: number;
  /** Smallest difference the always-valid upper bound still allows (difference + radius). */
  readonly upperBound: number | null;
}

// Abramowitz-Stegun 7.1.26 via erfc; |error| < 1.5e-7, plenty for a threshold at 1/alpha.
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  const erfc = poly * Math.exp(-x * x);
  return z >= 0 ? 1 - erfc / 2 : erfc / 2;
}

// log Phi(w); far in the lower tail Phi underflows, so the asymptotic series is used there
// (its -w^2/2 cancels the exp term of the mixture exactly instead of leaving a huge number).
function logNormalCdf(w: number): number {
  if (w > -8) return Math.log(normalCdf(w));
  const w2 = w * w;
  return -w2 / 2 - Math.log(-w) - 0.5 * Math.log(2 * Math.PI) + Math.log(1 - 1 / w2 + 3 / (w2 * w2));
}

/**
 * One-sided normal-mixture likelihood ratio for a standardized deviation `z` in the tested
 * direction, with x = tau^2 / variance: 2 (1+x)^-1/2 exp(z^2 x / (2(1+x))) Phi(z sqrt(x/(1+x))).
 *
 * @example
 * mixtureEvidence(3, 7) > 20; // true: past the boundary at alpha = 0.05
 */
export function mixtureEvidence(z: number, x: number): number {
  const shrink = x / (1 + x);
  const log = Math.log(2) - 0.5 * Math.log(1 + x) + (z * z * shrink) / 2 + logNormalCdf(z * Math.sqrt(shrink));
  return Math.exp(Math.min(log, 700));
}

/** Half-width of the always-valid bound for variance v (bisection on mixtureEvidence = 1/alpha). */
function radius(variance: number, alpha: number, tau: number): number {
  const x = (tau * tau) / variance;
  let lo = 0;
  let hi = 50;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (mixtureEvidence(mid, x) >= 1 / alpha) hi = mid;
    else lo = mid;
  }
  return hi * Math.sqrt(variance);
}

/**
 * Compares the canary (`on`) with control (`off`): `fail` when the canary's success rate is lower
 * by more than `maxDrop` with always-valid confidence 1 - alpha; `pass` when both cohorts have at
 * least `minSamples` outcomes and the canary does not look worse than that; else `insufficient`.
 *
 * @example
 * compareToControl({ count: 2000, ok: 1840 }, { count: 2000, ok: 1900 }, { maxDrop: 0, alpha: 0.05 }).verdict; // 'fail'
 */
export function compareToControl(
  on: Counts,
  off: Counts,
  options: { readonly maxDrop: number; readonly alpha?: number | undefined; readonly minSamples?: number | undefined; readonly tau?: number | undefined },
): ComparisonResult {
  const alpha = options.alpha ?? DEFAULT_ALPHA;
  const tau = options.tau ?? DEFAULT_MIXTURE_SCALE;
  const minSamples = Math.max(options.minSamples ?? DEFAULT_COMPARE_MIN_SAMPLES, 1);
  if (on.count <= 0 || off.count <= 0) {
    return { verdict: 'insufficient', difference: null, standardError: null, evidence: 1, upperBound: null };
  }
  const pOn = on.ok / on.count;
  const pOff = off.ok / off.count;
  const difference = pOn - pOff;
  // Wilson-style floor on the variance: with 0 or 100 % observed the plug-in variance is 0,
  // which would make a handful of outcomes look conclusive.
  const v = (p: number, n: number): number => Math.max(p * (1 - p), 1 / (n + 4)) / n;
  const variance = v(pOn, on.count) + v(pOff, off.count);
  const standardError = Math.sqrt(variance);
  const z = (-options.maxDrop - difference) / standardError;
  const evidence = mixtureEvidence(z, (tau * tau) / variance);
  const upperBound = difference + radius(variance, alpha, tau);
  if (on.count < minSamples || off.count < minSamples) {
    return { verdict: 'insufficient', difference, standardError, evidence, upperBound };
  }
  if (evidence >= 1 / alpha) return { verdict: 'fail', difference, standardError, evidence, upperBound };
  return { verdict: difference >= -options.maxDrop ? 'pass' : 'insufficient', difference, standardError, evidence, upperBound };
}
