import hdr from "hdr-histogram-js";

export type Histogram = hdr.Histogram;

/** Microsecond values, 3 significant digits: ±0.1 % at any magnitude, 1 µs to hours. */
export function createHistogram(): Histogram {
  return hdr.build({
    bitBucketSize: 32,
    autoResize: true,
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export function encodeHistogram(h: Histogram): string {
  return hdr.encodeIntoCompressedBase64(h);
}

/**
 * A histogram as `[value, count, value, count, ...]` over its non-empty buckets, each value the
 * lowest of its bucket. Adding it to a histogram of the same precision fills exactly the same
 * buckets, so merges stay exact. Used for the once-a-second worker snapshots: scanning the
 * counts is several times cheaper than compressing them, and the pause it causes in a worker's
 * event loop shows in the tail latency.
 */
export type SparseHistogram = number[];

export function toSparse(h: Histogram): SparseHistogram {
  const j = h as unknown as hdr.JsHistogram;
  const out: number[] = [];
  if (h.totalCount === 0) return out;
  const n = j.countsArrayLength;
  for (let i = 0; i < n; i++) {
    const c = j.getCountAtIndex(i);
    if (c > 0) out.push(j.valueFromIndex(i), c);
  }
  return out;
}

/**
 * The fields and methods of hdr-histogram-js's JS histograms that its own `recordValue` and
 * `recordValueWithCount` use. The master of a distributed run adds about 10 million sparse
 * entries a second for 1,000 workers, and each worker records two values per request; the
 * library finds each one's bucket with `Math.log2` and `Math.pow` (~200 ns an entry), and the
 * integer form below finds the same bucket several times faster.
 */
interface HdrInternals {
  readonly countsArrayLength: number;
  readonly unitMagnitude: number;
  readonly subBucketHalfCountMagnitude: number;
  readonly subBucketHalfCount: number;
  addToCountAtIndex(index: number, count: number): void;
  incrementCountAtIndex(index: number): void;
  updateMinAndMax(value: number): void;
  addToTotalCount(count: number): void;
  incrementTotalCount(): void;
}

/**
 * The library's countsArrayIndex(v), for integers in [1, 2^31): floor(log2 v) is
 * 31 - clz32(v) and floor(v / 2^k) is v >>> k. -1 for anything else, which takes the library's
 * own path (resizing included).
 */
function fastIndex(j: HdrInternals, v: number): number {
  if (!(v >= 1 && v <= 0x7fffffff && (v | 0) === v)) return -1;
  const half = j.subBucketHalfCountMagnitude;
  const unit = j.unitMagnitude;
  const bucket = Math.max(31 - Math.clz32(v) - half - unit, 0);
  const index = (bucket + 1) * (1 << half) + (v >>> (bucket + unit)) - j.subBucketHalfCount;
  return index < j.countsArrayLength ? index : -1;
}

/**
 * Records one value, as `h.recordValue(v)` does, minus the library's floating-point bucket
 * search: two of these per request are on the hot path.
 */
export function recordValue(h: Histogram, v: number): void {
  const j = h as unknown as HdrInternals;
  const index = fastIndex(j, v);
  if (index < 0) {
    h.recordValue(v);
    return;
  }
  j.incrementCountAtIndex(index);
  j.updateMinAndMax(v);
  j.incrementTotalCount();
}

export function addSparse(into: Histogram, s: ArrayLike<number>): void {
  const j = into as unknown as HdrInternals;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  let total = 0;
  for (let i = 0; i + 1 < s.length; i += 2) {
    const v = s[i]!;
    const c = s[i + 1]!;
    const index = fastIndex(j, v);
    if (index >= 0) {
      j.addToCountAtIndex(index, c);
      total += c;
      if (v < min) min = v;
      if (v > max) max = v;
      continue;
    }
    into.recordValueWithCount(v, c);
  }
  // The library updates these per value; over the batch the result is the same.
  if (total !== 0 || min <= max) {
    j.addToTotalCount(total);
    j.updateMinAndMax(min);
    if (max !== min) j.updateMinAndMax(max);
  }
}

export const PERCENTILES = [50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100] as const;

/** Latency summary in milliseconds, the shape used throughout the JSON result. */
export interface LatencySummary {
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

const msRound = (us: number): number => Math.round(us) / 1000;

/**
 * Percentiles come from the histogram (±0.1 %), clamped to the exact min and max, which we
 * track beside it so that no percentile can exceed the maximum, as Locust's can.
 */
export function percentileMs(h: Histogram, p: number, exactMinUs: number, exactMaxUs: number): number {
  if (h.totalCount === 0) return 0;
  const v = h.getValueAtPercentile(p);
  return msRound(Math.min(exactMaxUs, Math.max(exactMinUs, v)));
}

export function summarize(
  h: Histogram,
  minUs: number,
  maxUs: number,
  sumUs: number,
  count: number,
): LatencySummary {
  if (count === 0 || h.totalCount === 0)
    return { min: 0, mean: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  return {
    min: msRound(minUs),
    mean: Math.round((sumUs / count) * 1000) / 1e6,
    p50: percentileMs(h, 50, minUs, maxUs),
    p90: percentileMs(h, 90, minUs, maxUs),
    p95: percentileMs(h, 95, minUs, maxUs),
    p99: percentileMs(h, 99, minUs, maxUs),
    p999: percentileMs(h, 99.9, minUs, maxUs),
    max: msRound(maxUs),
  };
}

/**
 * For histograms without exact side counters (TTFB, corrected latency): the mean comes from the
 * histogram, and the bounds too unless the caller knows tighter ones.
 */
export function summarizeHistogram(
  h: Histogram,
  minUs: number = h.minNonZeroValue,
  maxUs: number = h.maxValue,
): LatencySummary {
  return summarize(h, minUs, maxUs, h.mean * h.totalCount, h.totalCount);
}
