import type { SoakResult } from "../result/soak.js";
import type { ThresholdResult } from "../result/thresholds.js";
import type { EndpointTotals, StatsAggregate } from "../stats/aggregate.js";
import { createHistogram, type Histogram, percentileMs } from "../stats/histogram.js";
import { SLO_GOOD, SLO_GOOD_OUTPUT_TOKENS, SLO_JUDGED } from "../stats/slo.js";
import { compare, type HistogramName, type Threshold } from "./parse.js";

export type { ThresholdResult };

type Books = Pick<StatsAggregate, "total" | "endpoints" | "tags" | "checks"> &
  Partial<Pick<StatsAggregate, "resources" | "dispatchDelay">>;

/** The soak verdicts so far, computed only when a threshold asks for them. */
export type SoakSource = () => SoakResult | undefined;

/** One scenario's own books, for `scenario:NAME` thresholds. */
export interface ScenarioBooks {
  books: Books;
  durationSec: number;
  soak: SoakSource;
}

/**
 * A run's scenarios by name: their books once started, null before (or when the run ended
 * first), undefined for a name the run does not have.
 */
export type ScenarioSource = (name: string) => ScenarioBooks | null | undefined;

/** A statistic of one series' values (nearest-rank percentile). */
function statOf(values: readonly number[], stat: "max" | "min" | "mean" | "percentile", p = 100): number {
  // Loops, not Math.max(...v): a day-long series is too many arguments for a call.
  if (stat === "max") return values.reduce((a, b) => Math.max(a, b), Number.NEGATIVE_INFINITY);
  if (stat === "min") return values.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  if (stat === "mean") return values.reduce((a, b) => a + b, 0) / values.length;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const NO_SERIES = "watch the target with --monitor-pid or --monitor-url";

/** Soak, slope and resource metrics; undefined for the others. */
function measureSoak(
  t: Threshold,
  books: Books,
  soak: SoakSource | undefined,
): { value: number | null; note?: string } | undefined {
  const m = t.metric;
  if (m.kind === "resource") {
    // Each series' statistic over its values so far; the worst series counts.
    const series = (books.resources?.valuesOf(m.of, m.metric) ?? []).filter((v) => v.length > 0);
    if (series.length === 0) {
      return {
        value: null,
        note: `no ${m.of} ${m.metric} series${m.of === "target" ? ` (${NO_SERIES})` : ""}`,
      };
    }
    const vals = series.map((v) => statOf(v, m.stat, m.p));
    return { value: m.stat === "min" ? Math.min(...vals) : Math.max(...vals) };
  }
  if (m.kind !== "soak" && m.kind !== "slope") return undefined;
  const s = soak?.();
  if (!s) return { value: null, note: "no soak analysis yet" };
  const why = (fallback: string) => s.notes[0] ?? fallback;
  if (m.kind === "slope") {
    const fits = s.leaks.filter((l) => l.kind === m.of && l.metric === m.metric);
    if (fits.length === 0) {
      return {
        value: null,
        note: `no ${m.of} ${m.metric} series fitted${m.of === "target" ? ` (${NO_SERIES})` : ""}`,
      };
    }
    return { value: Math.max(...fits.map((l) => l.slopePerMin)) };
  }
  switch (m.what) {
    case "degradation": {
      const v = s.degradation?.p95ChangePct;
      return v === null || v === undefined
        ? { value: null, note: why("no p95 in a steady window") }
        : { value: v / 100 };
    }
    case "rps_degradation": {
      const v = s.degradation?.rpsChangePct;
      return v === null || v === undefined
        ? { value: null, note: why("no requests in a steady window") }
        : { value: -v / 100 };
    }
    case "rps_cv": {
      const v = s.stability?.rpsCv;
      return v === null || v === undefined
        ? { value: null, note: why("no steady throughput") }
        : { value: v };
    }
    case "recovery":
      if (s.recovery.length === 0) return { value: null, note: "no bursts or steps up to recover from" };
      if (s.unrecovered > 0) {
        const first = s.recovery.find((r) => r.recoverySec === null)!;
        return {
          value: null,
          note: `${s.unrecovered} of ${s.recovery.length} never recovered (the first: the ${first.cause} at ${first.t} s)`,
        };
      }
      return { value: s.worstRecoverySec };
  }
}

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

/** Goodput from the per-stream judgements the workers counted: exact, whatever the number of workers. */
function goodputValue(
  what: "requests" | "attainment" | "tokens",
  es: EndpointTotals[],
  durationSec: number,
): { value: number | null; note?: string } {
  const sum = (k: string) => es.reduce((n, e) => n + (e.counters?.get(k) ?? 0), 0);
  const judged = sum(SLO_JUDGED);
  if (judged === 0) {
    return { value: null, note: "no streams judged: set --slo and count tokens (tokens or tokenizer)" };
  }
  if (what === "attainment") return { value: sum(SLO_GOOD) / judged };
  if (durationSec <= 0) return { value: null, note: "no time has passed" };
  return { value: sum(what === "requests" ? SLO_GOOD : SLO_GOOD_OUTPUT_TOKENS) / durationSec };
}

/** Open model: dispatch delay is the run's, not an endpoint's. */
function dispatchDelayValue(t: Threshold, books: Books): { value: number | null; note?: string } {
  const h = books.dispatchDelay;
  if (t.scope.kind !== "all") return { value: null, note: "dispatch_delay is measured over the whole run" };
  if (!h || h.totalCount === 0) return { value: null, note: "no open-model iterations" };
  const m = t.metric as Extract<Threshold["metric"], { kind: "latency" }>;
  if (m.stat === "mean") return { value: h.mean / 1000 };
  if (m.stat === "min") return { value: h.getValueAtPercentile(0) / 1000 };
  if (m.stat === "max") return { value: h.maxValue / 1000 };
  return { value: percentileMs(h, m.stat === "percentile" ? m.p : 100, h.minNonZeroValue, h.maxValue) };
}

/** Measures one threshold's metric over the merged books; `durationSec` is the run's so far. */
export function measure(
  t: Threshold,
  books: Books,
  durationSec: number,
  soak?: SoakSource,
): { value: number | null; note?: string } {
  const sk = measureSoak(t, books, soak);
  if (sk) return sk;
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
  if (t.metric.kind === "goodput") return goodputValue(t.metric.what, es, durationSec);
  if (t.metric.kind === "latency" && t.metric.histogram === "metric:dispatch_delay") {
    return dispatchDelayValue(t, books);
  }
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

/** A threshold's measure: over the run's books, or its scenario's. */
function measureIn(
  t: Threshold,
  books: Books,
  durationSec: number,
  soak: SoakSource | undefined,
  scenarios: ScenarioSource | undefined,
): { value: number | null; note?: string } {
  if (t.scenario === undefined) return measure(t, books, durationSec, soak);
  const sc = scenarios?.(t.scenario);
  if (sc === undefined) return { value: null, note: `no scenario "${t.scenario}" in this run` };
  if (sc === null) return { value: null, note: `scenario "${t.scenario}" has not started` };
  return measure(t, sc.books, sc.durationSec, sc.soak);
}

/** Evaluates every threshold. A threshold with nothing to measure fails: a typo must not pass. */
export function evaluate(
  thresholds: readonly Threshold[],
  books: Books,
  durationSec: number,
  soak?: SoakSource,
  scenarios?: ScenarioSource,
): ThresholdResult[] {
  return thresholds.map((t) => {
    const { value, note } = measureIn(t, books, durationSec, soak, scenarios);
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

const SOAK_EVERY_SEC = 5;

/**
 * Checks thresholds once a second while the run goes on. A failing abortOnFail threshold
 * whose delay has passed asks for the run to stop.
 */
export class ThresholdWatch {
  latest: ThresholdResult[] = [];
  /** The threshold that stopped the run, if one did. */
  abortedBy: Threshold | undefined;

  /** Soak verdicts so far, per source ("" the run's, else a scenario's), and when they were computed. */
  private readonly soakSoFar = new Map<string, { at: number; soak: SoakResult | undefined }>();

  constructor(readonly thresholds: readonly Threshold[]) {}

  /** Whether any threshold reads the run's soak verdicts (judged at the end; shown live so far). */
  get needsSoak(): boolean {
    return this.thresholds.some(
      (t) => t.scenario === undefined && (t.metric.kind === "soak" || t.metric.kind === "slope"),
    );
  }

  /** The scenarios the thresholds name. */
  get scenarios(): string[] {
    return [...new Set(this.thresholds.flatMap((t) => (t.scenario === undefined ? [] : [t.scenario])))];
  }

  /** `soak` recomputed at most every SOAK_EVERY_SEC; a stats reset starts the clock again. */
  private cachedSoak(key: string, soak: SoakSource, elapsedSec: number): SoakSource {
    return () => {
      const c = this.soakSoFar.get(key);
      if (c && elapsedSec - c.at < SOAK_EVERY_SEC && elapsedSec >= c.at) return c.soak;
      const fresh = { at: elapsedSec, soak: soak() };
      this.soakSoFar.set(key, fresh);
      return fresh.soak;
    };
  }

  /**
   * Returns true when the run should stop now. Soak verdicts so far are recomputed at most every
   * SOAK_EVERY_SEC: they read the whole run, and none of them can abort it.
   */
  tick(books: Books, elapsedSec: number, soak?: SoakSource, scenarios?: ScenarioSource): boolean {
    if (this.thresholds.length === 0) return false;
    const cachedScenarios: ScenarioSource | undefined =
      scenarios &&
      ((name) => {
        const sc = scenarios(name);
        return sc ? { ...sc, soak: this.cachedSoak(`scenario:${name}`, sc.soak, sc.durationSec) } : sc;
      });
    this.latest = evaluate(
      this.thresholds,
      books,
      elapsedSec,
      soak && this.cachedSoak("", soak, elapsedSec),
      cachedScenarios,
    );
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
