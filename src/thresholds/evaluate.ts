import type { ThresholdResult } from "../result/thresholds.js";
import type { EndpointTotals, StatsAggregate } from "../stats/aggregate.js";
import { createHistogram, type Histogram, percentileMs } from "../stats/histogram.js";
import { compare, type HistogramName, type Threshold } from "./parse.js";

export type { ThresholdResult };

type Books = Pick<StatsAggregate, "total" | "endpoints" | "tags" | "checks">;

function matches(e: EndpointTotals, selector: string): boolean {
  return (
    selector === e.name ||
    selector === `${e.method} ${e.name}` ||
    selector === `${e.type} ${e.name}` ||
    selector === `${e.type} ${e.method} ${e.name}`
  );
}

/** The endpoints a scope covers: one, several (e.g. GET and POST of one name), or none. */
function scoped(t: Threshold, books: Books): EndpointTotals[] {
  switch (t.scope.kind) {
    case "all":
      return [books.total];
    case "tag": {
      const e = books.tags.get(t.scope.tag);
      return e ? [e] : [];
    }
    case "endpoint": {
      const sel = t.scope.selector;
      return [...books.endpoints.values()].filter((e) => matches(e, sel));
    }
    case "check":
      return [];
  }
}

function histogramOf(e: EndpointTotals, name: HistogramName): Histogram | undefined {
  if (name.startsWith("metric:")) return e.metrics?.get(name.slice(7));
  return e[name as "latency" | "ttfb" | "corrected"];
}

function latencyValue(t: Threshold, es: EndpointTotals[]): number | null {
  if (t.metric.kind !== "latency") return null;
  const m = t.metric;
  // The response time keeps an exact min, max and sum beside its histogram; use them.
  const exact = m.histogram === "latency";
  const counted = es.filter((e) => e.count > 0);
  if (exact && counted.length === 0) return null;
  const minUs = Math.min(...counted.map((e) => e.minUs));
  const maxUs = Math.max(0, ...counted.map((e) => e.maxUs));
  if (exact && m.stat === "mean")
    return counted.reduce((n, e) => n + e.sumUs, 0) / counted.reduce((n, e) => n + e.count, 0) / 1000;
  if (exact && m.stat === "min") return minUs / 1000;
  if (exact && m.stat === "max") return maxUs / 1000;
  const hs = es
    .map((e) => histogramOf(e, m.histogram))
    .filter((h): h is Histogram => h !== undefined && h.totalCount > 0);
  if (hs.length === 0) return null;
  const h = hs.length === 1 ? hs[0]! : createHistogram();
  if (hs.length > 1) for (const x of hs) h.add(x);
  if (m.stat === "mean") return h.mean / 1000;
  // Further metrics may record 0 (e.g. no polls), which has no "min non-zero".
  if (m.stat === "min") return (h.getValueAtPercentile(0) === 0 ? 0 : h.minNonZeroValue) / 1000;
  if (m.stat === "max") return h.maxValue / 1000;
  if (m.stat !== "percentile") return null;
  return exact ? percentileMs(h, m.p, minUs, maxUs) : percentileMs(h, m.p, h.minNonZeroValue, h.maxValue);
}

/** Measures one threshold's metric over the merged books; `durationSec` is the run's so far. */
export function measure(
  t: Threshold,
  books: Books,
  durationSec: number,
): { value: number | null; note?: string } {
  if (t.metric.kind === "checks") {
    let passes = 0;
    let fails = 0;
    if (t.scope.kind === "check") {
      const c = books.checks.get(t.scope.name);
      if (c) ({ passes, fails } = c);
    } else {
      for (const c of books.checks.values()) {
        passes += c.passes;
        fails += c.fails;
      }
    }
    if (passes + fails === 0) return { value: null, note: "no checks were evaluated" };
    return { value: passes / (passes + fails) };
  }
  const es = scoped(t, books);
  const count = es.reduce((n, e) => n + e.count, 0);
  switch (t.metric.kind) {
    case "requests":
      return { value: count };
    case "failures":
      return { value: es.reduce((n, e) => n + e.failures, 0) };
    case "rps":
      return durationSec > 0 ? { value: count / durationSec } : { value: null, note: "no time has passed" };
  }
  if (count === 0) return { value: null, note: es.length === 0 ? "no requests matched" : "no requests" };
  if (t.metric.kind === "error_rate") return { value: es.reduce((n, e) => n + e.failures, 0) / count };
  const v = latencyValue(t, es);
  return v === null ? { value: null, note: "nothing measured" } : { value: v };
}

/** Evaluates every threshold. A threshold with nothing to measure fails: a typo must not pass. */
export function evaluate(
  thresholds: readonly Threshold[],
  books: Books,
  durationSec: number,
): ThresholdResult[] {
  return thresholds.map((t) => {
    const { value, note } = measure(t, books, durationSec);
    const rounded = value === null ? null : Math.round(value * 1e6) / 1e6;
    return {
      expr: t.expr,
      scope: t.scopeText,
      metric: t.metricText,
      op: t.op,
      target: t.target,
      value: rounded,
      passed: value !== null && compare(value, t.op, t.target),
      ...(note ? { note } : {}),
      ...(t.abortOnFail ? { abortOnFail: true } : {}),
    };
  });
}

/**
 * Checks thresholds once a second while the run goes on. A failing abortOnFail threshold
 * whose delay has passed asks for the run to stop.
 */
export class ThresholdWatch {
  latest: ThresholdResult[] = [];
  /** The threshold that stopped the run, if one did. */
  abortedBy: Threshold | undefined;

  constructor(readonly thresholds: readonly Threshold[]) {}

  /** Returns true when the run should stop now. */
  tick(books: Books, elapsedSec: number): boolean {
    if (this.thresholds.length === 0) return false;
    this.latest = evaluate(this.thresholds, books, elapsedSec);
    if (this.abortedBy) return false;
    for (const [i, t] of this.thresholds.entries()) {
      const r = this.latest[i]!;
      // No data yet is not a reason to abort: the run may be ramping up.
      if (t.abortOnFail && !r.passed && r.value !== null && elapsedSec >= t.delayAbortSec) {
        this.abortedBy = t;
        return true;
      }
    }
    return false;
  }

  /** A few words for the live status line. */
  status(): string {
    if (this.latest.length === 0) return "";
    const ok = this.latest.filter((r) => r.passed).length;
    return `thresholds ${ok}/${this.latest.length} ok`;
  }
}
