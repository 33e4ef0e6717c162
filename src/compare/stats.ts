/**
 * The statistics behind `cicada compare`: small pure functions, documented in docs/compare.md.
 *
 * Every test here assumes independent samples. Requests in a load test are not independent
 * (they share connections, queues, GC pauses), so the intervals are a lower bound on the real
 * uncertainty; that is why a regression must also exceed the tolerance.
 */

import type { MetricName } from "../result/comparison.js";
import type { Histogram } from "../stats/histogram.js";

/** Two-sided 95 %. */
export const Z95 = 1.959964;

/** Fewer samples than this on either side: no verdict for any metric. */
export const MIN_SAMPLES = 100;
/**
 * Runs shorter than this: no verdict. Warm-up (JIT, connection setup, cold caches) dominates a
 * shorter run, whatever its sample count.
 */
export const MIN_DURATION_SEC = 5;
/**
 * Throughput needs a longer run: ramp-up and the stop phase sit in the denominator, and in a
 * 6 s run one second of ramp-up moves the rate by about as much as the default tolerance.
 */
export const MIN_RATE_DURATION_SEC = 10;

export const QUANTILES: Partial<Record<MetricName, number>> = { p50: 0.5, p95: 0.95, p99: 0.99 };

/**
 * Samples a quantile q needs: at least 10 beyond it (10/(1−q)), so that the upper rank of its
 * confidence interval exists and rests on more than a couple of observations; never under
 * MIN_SAMPLES. p50 → 100, p95 → 200, p99 → 1000.
 */
export function minSamplesForQuantile(q: number): number {
  // 10/(1−0.99) is 1000.0000000000009 in floating point.
  return Math.max(MIN_SAMPLES, Math.ceil(10 / (1 - q) - 1e-9));
}

export function minSamples(metric: MetricName): number {
  const q = QUANTILES[metric];
  return q === undefined ? MIN_SAMPLES : minSamplesForQuantile(q);
}

export interface SideSize {
  label: string;
  samples: number;
  durationSec: number;
}

/** Why `metric` cannot be judged from these two runs, or null if it can. */
export function inconclusiveReason(metric: MetricName, sides: readonly SideSize[]): string | null {
  const need = minSamples(metric);
  for (const s of sides) {
    if (s.samples < need) {
      const what = QUANTILES[metric] === undefined ? "requests" : "samples";
      return `only ${s.samples} ${what} in ${s.label} (${metric} needs ${need})`;
    }
  }
  const minSec = metric === "rps" ? MIN_RATE_DURATION_SEC : MIN_DURATION_SEC;
  for (const s of sides) {
    if (s.durationSec < minSec) {
      return `${s.label} lasted ${s.durationSec.toFixed(1)} s (${metric} needs ${minSec} s)`;
    }
  }
  return null;
}

/**
 * 1-based order-statistic ranks bracketing quantile q of n samples with confidence z: the
 * number of samples below the true quantile is Binomial(n, q), so n·q ± z·√(n·q·(1−q)) covers
 * it with the normal approximation to the binomial. Distribution-free.
 */
export function quantileRanks(n: number, q: number, z: number = Z95): { lo: number; hi: number } {
  const mid = n * q;
  const half = z * Math.sqrt(n * q * (1 - q));
  return {
    lo: Math.min(n, Math.max(1, Math.floor(mid - half))),
    hi: Math.min(n, Math.max(1, Math.ceil(mid + half))),
  };
}

/** The JS histogram's bucket accessors, which the Histogram interface does not declare. */
interface Buckets {
  countsArrayLength: number;
  getCountAtIndex(i: number): number;
  valueFromIndex(i: number): number;
  lowestEquivalentValue(v: number): number;
  highestEquivalentValue(v: number): number;
}

/** A histogram's non-empty buckets, lowest first: [lowest value, highest value, count]. */
function buckets(h: Histogram): Array<[lo: number, hi: number, count: number]> {
  const j = h as unknown as Buckets;
  const out: Array<[number, number, number]> = [];
  for (let i = 0; i < j.countsArrayLength; i++) {
    const c = j.getCountAtIndex(i);
    if (c > 0) {
      const v = j.valueFromIndex(i);
      out.push([j.lowestEquivalentValue(v), j.highestEquivalentValue(v), c]);
    }
  }
  return out;
}

/** The bucket holding the rank-th smallest sample (1-based). */
function bucketAtRank(bs: ReadonlyArray<[number, number, number]>, rank: number): [number, number] {
  let seen = 0;
  for (const [lo, hi, c] of bs) {
    seen += c;
    if (seen >= rank) return [lo, hi];
  }
  const last = bs[bs.length - 1];
  return last ? [last[0], last[1]] : [0, 0];
}

export interface QuantileCI {
  q: number;
  n: number;
  /** Point estimate and interval, in the histogram's unit (µs for latency). */
  value: number;
  lo: number;
  hi: number;
}

/**
 * Confidence interval of quantile q read from a histogram at the order-statistic ranks. The
 * lower bound takes the lowest value of its bucket and the upper bound the highest, so the
 * histogram's rounding (0.1 %) widens the interval instead of biasing it. The point estimate is
 * the highest value of its bucket, as HdrHistogram reports percentiles.
 */
export function quantileCI(h: Histogram, q: number, z: number = Z95): QuantileCI {
  const n = h.totalCount;
  if (n === 0) return { q, n, value: 0, lo: 0, hi: 0 };
  const bs = buckets(h);
  const r = quantileRanks(n, q, z);
  return {
    q,
    n,
    value: bucketAtRank(bs, Math.max(1, Math.ceil(n * q)))[1],
    lo: bucketAtRank(bs, r.lo)[0],
    hi: bucketAtRank(bs, r.hi)[1],
  };
}

export type Direction = "higher" | "lower";

/** Which way the second interval lies from the first, or null if they overlap. */
export function separation(a: { lo: number; hi: number }, b: { lo: number; hi: number }): Direction | null {
  if (b.lo > a.hi) return "higher";
  if (b.hi < a.lo) return "lower";
  return null;
}

/**
 * Two-proportion z statistic for failure counts f of n requests (positive: the second rate is
 * higher), with Yates' continuity correction, which keeps the test conservative when failures
 * are few. 0 when the pooled rate is 0 or 1: nothing to tell apart.
 */
export function twoProportionZ(f1: number, n1: number, f2: number, n2: number): number {
  if (n1 <= 0 || n2 <= 0) return 0;
  const p1 = f1 / n1;
  const p2 = f2 / n2;
  const p = (f1 + f2) / (n1 + n2);
  const se = Math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2));
  if (se === 0) return 0;
  const diff = Math.max(0, Math.abs(p2 - p1) - 0.5 * (1 / n1 + 1 / n2));
  return (Math.sign(p2 - p1) * diff) / se;
}

/**
 * z statistic comparing two Poisson rates, c1 events in t1 seconds against c2 in t2 (positive:
 * the second rate is higher). Conditional test: given c1 + c2 events, under equal rates c2 is
 * Binomial(c1 + c2, t2 / (t1 + t2)); normal approximation with continuity correction.
 */
export function poissonRateZ(c1: number, t1: number, c2: number, t2: number): number {
  const total = c1 + c2;
  if (total <= 0 || t1 <= 0 || t2 <= 0) return 0;
  const share = t2 / (t1 + t2);
  const sd = Math.sqrt(total * share * (1 - share));
  if (sd === 0) return 0;
  const diff = c2 - total * share;
  return (Math.sign(diff) * Math.max(0, Math.abs(diff) - 0.5)) / sd;
}

export function directionOfZ(z: number, critical: number = Z95): Direction | null {
  if (z > critical) return "higher";
  if (z < -critical) return "lower";
  return null;
}

/** (current − baseline) / baseline; ±Infinity from a zero baseline, 0 when both are 0. */
export function relativeChange(baseline: number, current: number): number {
  if (baseline === 0) return current === 0 ? 0 : current > 0 ? Infinity : -Infinity;
  return (current - baseline) / baseline;
}

/**
 * The verdict on one metric. `change` is the relative change, `worse` the direction that is
 * bad for this metric, `significant` the direction a test found at 95 % (null: none). Both the
 * tolerance and the test must agree before anything but "ok" or "noise" is said.
 */
export function classify(
  change: number,
  worse: Direction,
  tolerance: number,
  significant: Direction | null,
): "ok" | "regression" | "improvement" | "noise" {
  const worsening = worse === "higher" ? change : -change;
  if (Math.abs(worsening) <= tolerance) return "ok";
  const direction: Direction = change > 0 ? "higher" : "lower";
  if (significant !== direction) return "noise";
  return worsening > 0 ? "regression" : "improvement";
}
