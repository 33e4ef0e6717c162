import hdr from "hdr-histogram-js";
import type { Comparison, ComparisonRow, MetricName, MetricVerdict } from "../result/comparison.js";
import type { EndpointResult, RunResult } from "../result/result.js";
import { createHistogram, type Histogram } from "../stats/histogram.js";
import {
  classify,
  type Direction,
  directionOfZ,
  inconclusiveReason,
  poissonRateZ,
  QUANTILES,
  quantileCI,
  relativeChange,
  separation,
  twoProportionZ,
} from "./stats.js";

export const METRICS: readonly MetricName[] = ["p50", "p95", "p99", "rps", "error_rate"];
export const DEFAULT_TOLERANCE = 0.1;
export const AGGREGATED = "Aggregated";

export interface CompareOptions {
  /** Relative tolerances as fractions (0.1 = 10 %); unset metrics get DEFAULT_TOLERANCE. */
  tolerances?: Partial<Record<MetricName, number>>;
  baselineLabel?: string;
  currentLabel?: string;
}

/** One side of one row: what the metrics are computed from. */
interface Side {
  label: string;
  histogram: Histogram | null;
  requests: number;
  failures: number;
  durationSec: number;
}

export function endpointLabel(e: Pick<EndpointResult, "type" | "method" | "name">): string {
  const base = `${e.method} ${e.name}`.trim();
  return e.type === "HTTP" ? base : `${e.type} ${base}`;
}

const keyOf = (e: EndpointResult) => JSON.stringify([e.type, e.method, e.name]);

function decode(encoded: string): Histogram | null {
  return encoded ? hdr.decodeFromCompressedBase64(encoded) : null;
}

/** The run-wide latency histogram, which the result does not store: the endpoints' merged. */
function merged(endpoints: readonly EndpointResult[]): Histogram | null {
  let out: Histogram | null = null;
  for (const e of endpoints) {
    const h = decode(e.histogram);
    if (!h) continue;
    out ??= createHistogram();
    out.add(h);
  }
  return out;
}

const ms = (us: number) => us / 1000;
const f2 = (x: number) => x.toFixed(2);
const roundTo = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;

function deltaPct(baseline: number, current: number): number | null {
  if (baseline === 0) return null;
  return roundTo(((current - baseline) / baseline) * 100, 2);
}

function worseDirection(metric: MetricName): Direction {
  return metric === "rps" ? "lower" : "higher";
}

function latencyRow(endpoint: string, metric: MetricName, b: Side, c: Side, tol: number): ComparisonRow {
  const q = QUANTILES[metric]!;
  const bci = b.histogram ? quantileCI(b.histogram, q) : null;
  const cci = c.histogram ? quantileCI(c.histogram, q) : null;
  const base = bci ? roundTo(ms(bci.value), 3) : null;
  const cur = cci ? roundTo(ms(cci.value), 3) : null;
  const row = {
    endpoint,
    metric,
    baseline: base,
    current: cur,
    deltaPct: base !== null && cur !== null ? deltaPct(base, cur) : null,
  };
  const why = inconclusiveReason(metric, [
    { label: b.label, samples: bci?.n ?? 0, durationSec: b.durationSec },
    { label: c.label, samples: cci?.n ?? 0, durationSec: c.durationSec },
  ]);
  if (why || !bci || !cci) return { ...row, verdict: "inconclusive", note: why ?? "no samples" };
  const verdict = classify(
    relativeChange(bci.value, cci.value),
    worseDirection(metric),
    tol,
    separation(bci, cci),
  );
  const note = `${metric} CI ${f2(ms(bci.lo))}–${f2(ms(bci.hi))} ms vs ${f2(ms(cci.lo))}–${f2(ms(cci.hi))} ms`;
  return { ...row, verdict, note };
}

function rateRow(
  endpoint: string,
  metric: "rps" | "error_rate",
  b: Side,
  c: Side,
  tol: number,
): ComparisonRow {
  const value = (s: Side) =>
    metric === "rps"
      ? s.durationSec > 0
        ? s.requests / s.durationSec
        : 0
      : s.requests > 0
        ? s.failures / s.requests
        : 0;
  const bv = value(b);
  const cv = value(c);
  const row = {
    endpoint,
    metric,
    baseline: roundTo(bv, metric === "rps" ? 3 : 6),
    current: roundTo(cv, metric === "rps" ? 3 : 6),
    deltaPct: deltaPct(bv, cv),
  };
  const why = inconclusiveReason(metric, [
    { label: b.label, samples: b.requests, durationSec: b.durationSec },
    { label: c.label, samples: c.requests, durationSec: c.durationSec },
  ]);
  if (why) return { ...row, verdict: "inconclusive", note: why };
  const z =
    metric === "rps"
      ? poissonRateZ(b.requests, b.durationSec, c.requests, c.durationSec)
      : twoProportionZ(b.failures, b.requests, c.failures, c.requests);
  const verdict = classify(relativeChange(bv, cv), worseDirection(metric), tol, directionOfZ(z));
  if (metric === "error_rate" && b.failures === 0 && c.failures === 0) {
    return { ...row, verdict, note: "no failures on either side" };
  }
  const test = metric === "rps" ? "Poisson" : "two-proportion";
  return { ...row, verdict, note: `${test} z = ${z.toFixed(1)}` };
}

function rows(endpoint: string, b: Side, c: Side, tol: Record<MetricName, number>): ComparisonRow[] {
  return METRICS.map((m) =>
    m === "rps" || m === "error_rate"
      ? rateRow(endpoint, m, b, c, tol[m])
      : latencyRow(endpoint, m, b, c, tol[m]),
  );
}

function missingRows(endpoint: string, e: EndpointResult, side: "baseline" | "current"): ComparisonRow[] {
  const note = `only in the ${side} run`;
  return METRICS.map((metric) => {
    let v: number;
    if (metric === "rps") v = e.rps;
    else if (metric === "error_rate") v = e.requests > 0 ? roundTo(e.failures / e.requests, 6) : 0;
    else v = e.latencyMs[metric];
    return {
      endpoint,
      metric,
      baseline: side === "baseline" ? v : null,
      current: side === "current" ? v : null,
      deltaPct: null,
      verdict: "missing" as MetricVerdict,
      note,
    };
  });
}

/**
 * Compares two runs per endpoint (matched by type, method and name) and over all endpoints.
 * Latency quantiles come from the full histograms, not the rounded summaries, so each has a
 * confidence interval; see docs/compare.md for the method and its limits.
 */
export function compareResults(
  baseline: RunResult,
  current: RunResult,
  opts: CompareOptions = {},
): Comparison {
  const tolerances = Object.fromEntries(
    METRICS.map((m) => [m, opts.tolerances?.[m] ?? DEFAULT_TOLERANCE]),
  ) as Record<MetricName, number>;
  const bl = opts.baselineLabel ?? "baseline";
  const cl = opts.currentLabel ?? "current";
  const side = (label: string, r: RunResult, e: EndpointResult): Side => ({
    label,
    histogram: decode(e.histogram),
    requests: e.requests,
    failures: e.failures,
    durationSec: r.durationSec,
  });

  const out: ComparisonRow[] = [];
  const currentByKey = new Map(current.endpoints.map((e) => [keyOf(e), e]));
  const baselineKeys = new Set(baseline.endpoints.map(keyOf));
  for (const be of baseline.endpoints) {
    const ce = currentByKey.get(keyOf(be));
    const label = endpointLabel(be);
    if (ce) out.push(...rows(label, side(bl, baseline, be), side(cl, current, ce), tolerances));
    else out.push(...missingRows(label, be, "baseline"));
  }
  for (const ce of current.endpoints) {
    if (!baselineKeys.has(keyOf(ce))) out.push(...missingRows(endpointLabel(ce), ce, "current"));
  }
  const total = (label: string, r: RunResult): Side => ({
    label,
    histogram: merged(r.endpoints),
    requests: r.totals.requests,
    failures: r.totals.failures,
    durationSec: r.durationSec,
  });
  const aggregated = rows(AGGREGATED, total(bl, baseline), total(cl, current), tolerances);
  out.push(...aggregated);

  const latencyInconclusive = aggregated
    .filter((r) => QUANTILES[r.metric] !== undefined)
    .every((r) => r.verdict === "inconclusive");
  const verdict = out.some((r) => r.verdict === "regression")
    ? "regression"
    : latencyInconclusive
      ? "inconclusive"
      : "pass";
  return {
    baseline: { label: bl, startedAt: baseline.startedAt, durationSec: baseline.durationSec },
    current: { label: cl, startedAt: current.startedAt, durationSec: current.durationSec },
    verdict,
    tolerances,
    rows: out,
  };
}
