// The statistics of a benchmark's rounds, as pytest-benchmark reports them: exact, from every sample.

/** Summary of a list of round times, in milliseconds. */
export interface SampleStats {
  rounds: number;
  /** Sum of all round times. */
  total: number;
  min: number;
  max: number;
  mean: number;
  /** Sample standard deviation (n − 1); 0 for a single round. */
  stddev: number;
  median: number;
  /** First and third quartiles, and their distance. */
  q1: number;
  q3: number;
  iqr: number;
  /** Rounds further than one standard deviation from the mean. */
  stddevOutliers: number;
  /** Rounds beyond 1.5 IQR below Q1 or above Q3 (Tukey's fences). */
  iqrOutliers: number;
  /** "stddevOutliers;iqrOutliers", as pytest-benchmark's Outliers column. */
  outliers: string;
  /** Rounds per second of time spent in them (1 / mean), pytest-benchmark's OPS. */
  ops: number;
}

function medianOfSorted(s: readonly number[]): number {
  const n = s.length;
  if (n === 0) return 0;
  const mid = n >> 1;
  return n % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Quartiles as pytest-benchmark computes them (Wikipedia, "Quartile", computing methods): for an
 * even count, the medians of the lower and upper halves; for an odd count, method 3, a weighted
 * mean of the two order statistics around n/4 and 3n/4.
 */
export function quartiles(sorted: readonly number[]): { q1: number; q3: number } {
  const n = sorted.length;
  if (n === 0) return { q1: 0, q3: 0 };
  if (n === 1) return { q1: sorted[0]!, q3: sorted[0]! };
  if (n % 2 === 0) {
    return { q1: medianOfSorted(sorted.slice(0, n / 2)), q3: medianOfSorted(sorted.slice(n / 2)) };
  }
  const k = Math.floor(n / 4);
  const s = (i: number) => sorted[i]!;
  if (n % 4 === 1) {
    return { q1: 0.25 * s(k - 1) + 0.75 * s(k), q3: 0.75 * s(3 * k) + 0.25 * s(3 * k + 1) };
  }
  return { q1: 0.75 * s(k) + 0.25 * s(k + 1), q3: 0.25 * s(3 * k + 1) + 0.75 * s(3 * k + 2) };
}

/** The statistics of round times given in milliseconds. */
export function sampleStats(values: readonly number[]): SampleStats {
  const n = values.length;
  if (n === 0) {
    return {
      rounds: 0,
      total: 0,
      min: 0,
      max: 0,
      mean: 0,
      stddev: 0,
      median: 0,
      q1: 0,
      q3: 0,
      iqr: 0,
      stddevOutliers: 0,
      iqrOutliers: 0,
      outliers: "0;0",
      ops: 0,
    };
  }
  const sorted = [...values].sort((a, b) => a - b);
  let total = 0;
  for (const v of values) total += v;
  const mean = total / n;
  let squares = 0;
  for (const v of values) squares += (v - mean) ** 2;
  const stddev = n > 1 ? Math.sqrt(squares / (n - 1)) : 0;
  const { q1, q3 } = quartiles(sorted);
  const iqr = q3 - q1;
  let stddevOutliers = 0;
  let iqrOutliers = 0;
  for (const v of values) {
    if (v < mean - stddev || v > mean + stddev) stddevOutliers++;
    if (v < q1 - 1.5 * iqr || v > q3 + 1.5 * iqr) iqrOutliers++;
  }
  return {
    rounds: n,
    total,
    min: sorted[0]!,
    max: sorted[n - 1]!,
    mean,
    stddev,
    median: medianOfSorted(sorted),
    q1,
    q3,
    iqr,
    stddevOutliers,
    iqrOutliers,
    outliers: `${stddevOutliers};${iqrOutliers}`,
    ops: total > 0 ? (n * 1000) / total : 0,
  };
}
