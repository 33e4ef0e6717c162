/** What `compare` concludes about two runs; read by the CLI, the JUnit writer and the reports. */
export type MetricName = "p50" | "p95" | "p99" | "rps" | "error_rate";

export type MetricVerdict =
  /** Within tolerance. */
  | "ok"
  /** Worse by more than the tolerance, and the difference is statistically significant. */
  | "regression"
  /** Better by more than the tolerance, and significant. */
  | "improvement"
  /** Beyond the tolerance, but within what chance alone explains. */
  | "noise"
  /** Too few samples (or too short a run) to judge. */
  | "inconclusive"
  /** The endpoint exists on one side only. */
  | "missing";

export interface ComparisonRow {
  /** "GET /path" (type prefix for non-HTTP types, e.g. "SSE GET /chat"), or "Aggregated". */
  endpoint: string;
  metric: MetricName;
  baseline: number | null;
  current: number | null;
  /** (current - baseline) / baseline × 100; null when undefined. */
  deltaPct: number | null;
  verdict: MetricVerdict;
  /** Plain-language reason, e.g. the confidence intervals, or "only 40 samples". */
  note?: string;
}

export interface Comparison {
  baseline: { label: string; startedAt: string; durationSec: number };
  current: { label: string; startedAt: string; durationSec: number };
  /** regression if any row regressed; inconclusive if none regressed and the main rows could not be judged. */
  verdict: "pass" | "regression" | "inconclusive";
  /** Relative tolerances per metric, as fractions (0.1 = 10 %). */
  tolerances: Record<MetricName, number>;
  rows: ComparisonRow[];
}
