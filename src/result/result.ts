import { cpus, hostname } from "node:os";
import { VERSION } from "../core/version.js";
import type { RunPlan } from "../runner/plan.js";
import type { Run, RunWarning, ScenarioView, WorkerEvent } from "../runner/run.js";
import {
  type EndpointSeriesRow,
  type EndpointTotals,
  type SeriesRow,
  StatsAggregate,
} from "../stats/aggregate.js";
import type { Histogram, LatencySummary } from "../stats/histogram.js";
import { encodeHistogram, summarizeHistogram } from "../stats/histogram.js";
import type { ResourceSeries } from "../stats/resources.js";
import type { SampleStats } from "../stats/samples.js";
import { SLO_GOOD, SLO_GOOD_OUTPUT_TOKENS, SLO_JUDGED, type Slo } from "../stats/slo.js";
import type { Comparison } from "./comparison.js";
import { type SoakResult, soakOf } from "./soak.js";
import type { ThresholdResult } from "./thresholds.js";

/** What each JSON Cicada writes (a run's result, a sweep's) opens with. */
export interface ResultHeader {
  tool: "cicada";
  version: string;
  startedAt: string;
  endedAt: string;
  durationSec: number;
  config: Record<string, unknown>;
}

/**
 * The JSON result. Its shape is documented by schema/result.schema.json; fields may be added,
 * never renamed or removed.
 */
export interface RunResult extends ResultHeader {
  totals: {
    requests: number;
    failures: number;
    cancelled: number;
    /**
     * Caught by the hard stop before they were written: the target never saw them. Always
     * written; absent from results of older versions.
     */
    notSent?: number;
    rps: number;
    bytesReceived: number;
    iterations: number;
    latencyMs: LatencySummary;
    ttfbMs: LatencySummary;
    /** Open model: arrivals dropped because no user could start them in time. */
    droppedIterations?: number;
    /** Responses per status code over all endpoints. */
    statusCodes: Record<string, number>;
    /** Open model: latency from each iteration's scheduled start (coordinated omission corrected). */
    correctedLatencyMs?: LatencySummary;
    /** Open model: actual minus scheduled start of each iteration, over all iterations. */
    dispatchDelayMs?: LatencySummary & { count: number };
  };
  /** `--slo`: the streams that met every SLO, per second of the run and as a fraction. */
  goodput?: GoodputResult;
  endpoints: EndpointResult[];
  /** Requests made by tasks with each tag (run-wide figures per tag). */
  tags?: TagResult[];
  /** Pass counts of `check()` by check name. */
  checks?: CheckResult[];
  /** Thresholds with their measured values, as checked at the end of the run. */
  thresholds?: ThresholdResult[];
  /** The comparison with a baseline (`run --compare-to`). */
  comparison?: Comparison;
  /** Plain-language findings: endpoints over target, error hot spots, a saturated generator, latency that grew. */
  recommendations?: Recommendation[];
  failures: Array<{ method: string; name: string; error: string; occurrences: number }>;
  exceptions: Array<{ message: string; where: string; traceback: string; count: number }>;
  users: { peak: number };
  series: SeriesRow[];
  /**
   * `--warmup`, `--cooldown`: the parts of the run left out of its figures, by completion time;
   * the series rows inside them carry `window`.
   */
  windows?: { warmupSec: number; cooldownSec: number; cooldownAtSec: number | null };
  /** Bursts fired by a LoadShape, with the time until the target recovered (null: never). */
  bursts?: BurstResult[];
  /**
   * The target's resource use (`--monitor-pid`, `--monitor-url`) and the generator's own, one
   * series per (host, source, metric).
   */
  resources?: ResourceSeries[];
  /** Soak verdicts: steady part, degradation, leaks, recovery, stability (docs/soak.md). */
  soak?: SoakResult;
  /** Runs with scenarios: each scenario's own figures; the top level covers them all. */
  scenarios?: ScenarioResult[];
  /** Benchmark results (`cicada bench`): each benchmark's exact round statistics; it is also an endpoint. */
  benchmarks?: BenchmarkResult[];
  stopReason: string;
  /** Things that make the numbers suspect: a saturated generator, a lost worker. */
  warnings: Array<{
    at: string;
    kind: "cpu" | "worker";
    message: string;
    /** `worker` warnings of remote workers: who was lost, went missing, came back or joined, and where its users went. */
    worker?: WorkerEvent;
  }>;
  machine: { hostname: string; cpus: number; node: string };
  exitCode: number;
}

/** Goodput against `--slo`: counted per stream in the workers, so exact across any number of them. */
export interface GoodputResult {
  /** The bounds, in ms. */
  slos: Slo;
  /** Streams judged: those with counted tokens, completed or failed. */
  judged: number;
  /** Good streams: completed, with a first token, meeting every SLO. */
  requests: number;
  /** Good streams per second of the run. */
  perSec: number;
  /** requests / judged (0–1); 0 when nothing was judged. */
  attainment: number;
  /** Output tokens of good streams per second of the run. */
  outputTokensPerSec: number;
}

/** Which source gave a stream's token counts: the server's `usage`, the `tokens` counter, or `tokenizer`. */
export type TokenSource = "usage" | "preset" | "tokenizer" | "mixed";

export interface ScenarioResult {
  name: string;
  /** Seconds from the start of the run to the scenario's start; null if it never started. */
  startOffsetSec: number | null;
  durationSec: number;
  model: "open" | "closed";
  config: Record<string, unknown>;
  totals: RunResult["totals"];
  endpoints: EndpointResult[];
  failures: RunResult["failures"];
  exceptions: RunResult["exceptions"];
  tags?: TagResult[];
  checks?: CheckResult[];
  users: { peak: number };
  goodput?: GoodputResult;
  /** Per-second rows; `t` counts from the scenario's start (add startOffsetSec for run time). */
  series: SeriesRow[];
  bursts?: BurstResult[];
  /**
   * The scenario's own soak verdicts, from its own books (its plan gives the steady part; times
   * count from its start). Absent when it never started.
   */
  soak?: SoakResult;
  stopReason: string;
}

export interface BurstResult {
  /** Seconds since the start of the run. */
  t: number;
  count: number;
  /**
   * Seconds from the burst until the first second with no failures and a p95 back within 1.5×
   * (+1 ms) of the p95 before the burst; null if that never happened before the run ended.
   */
  recoverySec: number | null;
}

/** A burst as the summary and the report show it. */
export interface ShownBurst extends BurstResult {
  /** Seconds since the start of the run (`t` counts from its scenario's start). */
  runT: number;
  /** The scenario that fired it, if any. */
  scenario?: string;
}

/**
 * The run's bursts and its scenarios', each with the soak verdict's finer recovery time where
 * it has one (docs/soak.md), so the summary, the report and the verdicts say one thing.
 */
export function shownBursts(r: RunResult): ShownBurst[] {
  const finer = new Map(
    (r.soak?.recovery ?? []).filter((x) => x.cause === "burst").map((x) => [x.t, x.recoverySec]),
  );
  const shown = (b: BurstResult, offsetSec: number, scenario?: string): ShownBurst => {
    const runT = Math.round((b.t + offsetSec) * 10) / 10;
    return {
      ...b,
      runT,
      recoverySec: finer.has(runT) ? finer.get(runT)! : b.recoverySec,
      ...(scenario !== undefined ? { scenario } : {}),
    };
  };
  return [
    ...(r.bursts ?? []).map((b) => shown(b, 0)),
    ...(r.scenarios ?? []).flatMap((x) =>
      (x.bursts ?? []).map((b) => shown(b, x.startOffsetSec ?? 0, x.name)),
    ),
  ];
}

/** How long after each burst the target took to serve as before it. */
export function burstRecovery(
  series: readonly SeriesRow[],
  bursts: ReadonlyArray<{ t: number; count: number }>,
): BurstResult[] {
  return bursts.map((b) => {
    const before = series.filter((r) => r.t <= b.t && r.requests > 0).slice(-10);
    const p95s = before.map((r) => r.p95).sort((x, y) => x - y);
    const baseline = p95s.length > 0 ? p95s[Math.floor(p95s.length / 2)]! : null;
    // The burst's own second is the disturbance; recovery is looked for from the next one.
    const after = series.filter((r) => r.t >= b.t + 1 && r.requests > 0);
    const ok = after.find((r) => r.failures === 0 && (baseline === null || r.p95 <= baseline * 1.5 + 1));
    return { t: b.t, count: b.count, recoverySec: ok ? Math.round((ok.t - b.t) * 10) / 10 : null };
  });
}

export interface EndpointResult {
  type: string;
  method: string;
  name: string;
  requests: number;
  failures: number;
  cancelled: number;
  /** As in the totals. */
  notSent?: number;
  rps: number;
  bytesReceived: number;
  latencyMs: LatencySummary;
  ttfbMs: LatencySummary;
  /** Open model: latency from the iteration's scheduled start. */
  correctedLatencyMs?: LatencySummary;
  /** Responses per status code, e.g. {"200": 950, "429": 50}. */
  statusCodes: Record<string, number>;
  /** Compressed base64 HdrHistogram of latency in microseconds, for later reports and merges. */
  histogram: string;
  /** Per-second rows of this endpoint, only for seconds with requests. */
  series?: EndpointSeriesRow[];
  /**
   * Further distributions (streaming and protocol metrics: ttft, itl, rtt, connect, ...), each
   * in its display unit (ms for times, tokens/s for rates), with `count` values.
   */
  metrics?: Record<string, MetricSummary>;
  /** Further counts: events, tokens, messages, stream ends and closes by kind, ... */
  counters?: Record<string, number>;
  /** Streams: where the output and input token counts came from ("mixed" when requests differed). */
  tokenSource?: { output?: TokenSource; input?: TokenSource };
}

export type MetricSummary = LatencySummary & { count: number };

export type TagResult = Omit<
  EndpointResult,
  "type" | "method" | "name" | "histogram" | "series" | "statusCodes" | "tokenSource"
> & {
  tag: string;
};

export interface CheckResult {
  name: string;
  passes: number;
  fails: number;
  /** passes / (passes + fails). */
  rate: number;
}

function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function statusCodesOf(e: EndpointTotals): Record<string, number> {
  return Object.fromEntries([...(e.statuses ?? new Map<number, number>())].sort((a, b) => a[0] - b[0]));
}

function correctedOf(e: EndpointTotals): { correctedLatencyMs?: LatencySummary } {
  const c = e.correctedSummary();
  return c ? { correctedLatencyMs: c } : {};
}

export function metricsOf(e: EndpointTotals): Pick<EndpointResult, "metrics" | "counters"> {
  const out: Pick<EndpointResult, "metrics" | "counters"> = {};
  const ms = [...(e.metrics ?? new Map<string, Histogram>())].filter(([, h]) => h.totalCount > 0);
  if (ms.length > 0) {
    const metrics: Record<string, MetricSummary> = {};
    for (const [k, h] of ms.sort((a, b) => a[0].localeCompare(b[0]))) {
      const m = { count: h.totalCount, ...summarizeHistogram(h, h.minNonZeroValue, h.maxValue) };
      // A recorded zero has no "min non-zero": say 0.
      if (h.getValueAtPercentile(0) === 0) m.min = 0;
      metrics[k] = m;
    }
    out.metrics = metrics;
  }
  if (e.counters && e.counters.size > 0) {
    out.counters = Object.fromEntries([...e.counters].sort((a, b) => a[0].localeCompare(b[0])));
  }
  return out;
}

function endpoint(e: EndpointTotals, durationSec: number): EndpointResult {
  return {
    type: e.type,
    method: e.method,
    name: e.name,
    requests: e.count,
    failures: e.failures,
    cancelled: e.cancelled,
    notSent: e.notSent,
    rps: round(durationSec > 0 ? e.count / durationSec : 0),
    bytesReceived: e.bytes,
    latencyMs: e.latencySummary(),
    ttfbMs: e.ttfbSummary(),
    ...correctedOf(e),
    statusCodes: statusCodesOf(e),
    histogram: e.count > 0 ? encodeHistogram(e.latency) : "",
    ...(e.series.length > 0 ? { series: e.series } : {}),
    ...metricsOf(e),
    ...tokenSourceOf(e),
  };
}

/** The source every counted stream used, from the `output_tokens_from:SOURCE` counters. */
function tokenSourceOf(e: EndpointTotals): Pick<EndpointResult, "tokenSource"> {
  const out: NonNullable<EndpointResult["tokenSource"]> = {};
  for (const side of ["output", "input"] as const) {
    const prefix = `${side}_tokens_from:`;
    const used = [...(e.counters?.keys() ?? [])].filter((k) => k.startsWith(prefix));
    if (used.length === 1) out[side] = used[0]!.slice(prefix.length) as TokenSource;
    else if (used.length > 1) out[side] = "mixed";
  }
  return out.output || out.input ? { tokenSource: out } : {};
}

/** Goodput from the judged counts over all endpoints (`scope` narrows it, for thresholds). */
export function goodputOf(
  counters: ReadonlyMap<string, number> | undefined,
  slo: Slo,
  durationSec: number,
): GoodputResult {
  const judged = counters?.get(SLO_JUDGED) ?? 0;
  const good = counters?.get(SLO_GOOD) ?? 0;
  const tokens = counters?.get(SLO_GOOD_OUTPUT_TOKENS) ?? 0;
  return {
    slos: slo,
    judged,
    requests: good,
    perSec: round(durationSec > 0 ? good / durationSec : 0),
    attainment: round(judged > 0 ? good / judged : 0, 6),
    outputTokensPerSec: round(durationSec > 0 ? tokens / durationSec : 0),
  };
}

function dispatchDelayOf(s: StatsAggregate): { dispatchDelayMs?: LatencySummary & { count: number } } {
  const h = s.dispatchDelay;
  if (h.totalCount === 0) return {};
  const m = { count: h.totalCount, ...summarizeHistogram(h, h.minNonZeroValue, h.maxValue) };
  if (h.getValueAtPercentile(0) === 0) m.min = 0;
  return { dispatchDelayMs: m };
}

/** The figures every level of the result has: totals, endpoints, failures, exceptions. */
function figures(s: StatsAggregate, durationSec: number, open: boolean, slo?: Slo) {
  const t = s.total;
  return {
    totals: {
      requests: t.count,
      failures: t.failures,
      cancelled: t.cancelled,
      notSent: t.notSent,
      rps: round(durationSec > 0 ? t.count / durationSec : 0),
      bytesReceived: t.bytes,
      iterations: s.iterations,
      latencyMs: t.latencySummary(),
      ttfbMs: t.ttfbSummary(),
      ...(open ? { droppedIterations: s.dropped } : {}),
      statusCodes: statusCodesOf(t),
      ...correctedOf(t),
      ...(open ? dispatchDelayOf(s) : {}),
    },
    ...(slo ? { goodput: goodputOf(t.counters, slo, durationSec) } : {}),
    endpoints: s.sortedEndpoints().map((e) => endpoint(e, durationSec)),
    failures: [...s.errors.values()].sort((a, b) => b.occurrences - a.occurrences).map((x) => ({ ...x })),
    exceptions: [...s.exceptions.values()].sort((a, b) => b.count - a.count).map((x) => ({ ...x })),
    ...(s.tags.size > 0
      ? {
          tags: [...s.tags.values()]
            .sort((a, b) => a.name.localeCompare(b.name))
            .map((e) => {
              const {
                series: _s,
                histogram: _h,
                type: _t,
                method: _m,
                statusCodes: _c,
                name,
                ...rest
              } = endpoint(e, durationSec);
              return { tag: name, ...rest };
            }),
        }
      : {}),
    ...(s.checks.size > 0
      ? {
          checks: [...s.checks].map(([name, c]) => ({
            name,
            passes: c.passes,
            fails: c.fails,
            rate: round(c.passes / Math.max(1, c.passes + c.fails), 6),
          })),
        }
      : {}),
  };
}

function header(startedAt: number, endedAt: number, durationSec: number) {
  return {
    tool: "cicada" as const,
    version: VERSION,
    startedAt: new Date(startedAt).toISOString(),
    endedAt: new Date(endedAt || Date.now()).toISOString(),
    durationSec,
  };
}

function withoutIds(plan: RunPlan): Record<string, unknown> {
  // A replayed trace is summed up by its size: its rows are the input, not the configuration.
  const { userIds: _ids, schedule, ...rest } = plan;
  return schedule ? { ...rest, schedule: { rows: schedule.length } } : rest;
}

function modelOf(plan: RunPlan): "open" | "closed" {
  return plan.rate !== null ? "open" : "closed";
}

function planConfig(run: Run, plan: RunPlan): Record<string, unknown> {
  return {
    ...withoutIds(plan),
    processes: run.workerCount,
    model: modelOf(plan),
    userClassesRun: run.classes.map((k) => k.name),
  };
}

function warningsOf(ws: readonly RunWarning[]): RunResult["warnings"] {
  return ws.map((w) => ({
    at: new Date(w.at).toISOString(),
    kind: w.kind,
    message: w.message,
    ...(w.worker ? { worker: w.worker } : {}),
  }));
}

function machine(): RunResult["machine"] {
  return { hostname: hostname(), cpus: cpus().length, node: process.version };
}

/** One scenario's figures, from its own books; a scenario the run ended before has none. */
function scenarioResult(sc: ScenarioView): ScenarioResult {
  const c = sc.run;
  const model = modelOf(sc.plan);
  const open = model === "open";
  if (!c?.stats) {
    return {
      name: sc.name,
      startOffsetSec: null,
      durationSec: 0,
      model,
      config: { ...withoutIds(sc.plan), startSec: sc.startSec },
      ...figures(new StatsAggregate(0), 0, open),
      users: { peak: 0 },
      series: [],
      stopReason: "not-started",
    };
  }
  const d = round(c.elapsedSec);
  const soak = soakOf(c);
  return {
    name: sc.name,
    startOffsetSec: sc.offsetSec,
    durationSec: d,
    model,
    config: { ...planConfig(c, sc.plan), startSec: sc.startSec },
    ...figures(c.stats, d, open, sc.plan.slo),
    users: { peak: c.peakUsers },
    series: c.stats.series,
    ...(c.bursts.length > 0 ? { bursts: burstRecovery(c.stats.series, c.bursts) } : {}),
    ...(soak ? { soak } : {}),
    stopReason: c.stopReason ?? "unknown",
  };
}

/**
 * The result of a run: its figures on top, and for a run with scenarios each scenario's below.
 * After a stats reset (web UI) it covers the books since the reset.
 */
export function buildResult(
  run: Run,
  exitCode: number,
  soak: SoakResult | undefined = soakOf(run),
): RunResult {
  const durationSec = round(run.statsElapsedSec);
  const scenarios = run.scenarios?.map(scenarioResult);
  const models = new Set(scenarios ? scenarios.map((x) => x.model) : run.plan ? [modelOf(run.plan)] : []);
  const config = run.plan
    ? planConfig(run, run.plan)
    : {
        loadfile: run.scenarios?.[0]?.plan.loadfile,
        model: models.size === 1 ? [...models][0] : "mixed",
        scenarios: (scenarios ?? []).map((x) => x.name),
        runTimeSec: run.status().plannedSec,
      };
  return {
    ...header(run.statsStartedAt, run.endedAt, durationSec),
    config,
    ...figures(run.stats, durationSec, models.has("open"), (run.plan ?? run.scenarios?.[0]?.plan)?.slo),
    users: { peak: run.peakUsers },
    series: run.stats.series,
    ...(run.plan?.windows ? { windows: run.plan.windows } : {}),
    // A run with scenarios lists its bursts per scenario; its soak verdicts time them all.
    ...(run.bursts.length > 0 && !scenarios ? { bursts: burstRecovery(run.stats.series, run.bursts) } : {}),
    ...(soak ? { soak } : {}),
    ...(scenarios ? { scenarios } : {}),
    ...(run.stats.resources.size > 0 ? { resources: run.stats.resources.series(run.statsStartedAt) } : {}),
    stopReason: run.stopReason ?? "unknown",
    warnings: warningsOf(run.warnings),
    machine: machine(),
    exitCode,
  };
}

/**
 * One benchmark: pytest-benchmark's statistics of its successful rounds (times in ms, `ops` per
 * second), with what it ran. Its rounds are also the endpoint (type "BENCH", the benchmark's name).
 */
export interface BenchmarkResult extends SampleStats {
  name: string;
  /** Rounds whose function threw; they are not in the statistics. */
  failures: number;
  /** Rounds run before the measured ones, not counted. */
  warmup: number;
  /** Rounds in flight at once. */
  concurrency: number;
  /** Wall-clock seconds of the measured rounds. */
  durationSec: number;
  /** Rounds completed per wall-clock second (with concurrency above 1, more than `ops`). */
  throughput: number;
}

/**
 * A result from books filled without a coordinator (benchmarks): the same figures as a run's.
 * `rates` sets an endpoint's rps from its own duration, keyed by its name.
 */
export function buildBooksResult(
  s: StatsAggregate,
  info: {
    startedAt: number;
    endedAt: number;
    durationSec: number;
    config: Record<string, unknown>;
    peakUsers: number;
    stopReason: string;
    exitCode: number;
    rates?: ReadonlyMap<string, number>;
  },
): RunResult {
  const durationSec = round(info.durationSec);
  const f = figures(s, durationSec, false);
  if (info.rates) {
    for (const e of f.endpoints) {
      const r = info.rates.get(e.name);
      if (r !== undefined) e.rps = round(r);
    }
  }
  return {
    ...header(info.startedAt, info.endedAt, durationSec),
    config: info.config,
    ...f,
    users: { peak: info.peakUsers },
    series: s.series,
    stopReason: info.stopReason,
    warnings: [],
    machine: machine(),
    exitCode: info.exitCode,
  };
}

/** One finding about a run (see recommendations.ts). */
export interface Recommendation {
  kind: "threshold" | "regression" | "errors" | "generator" | "trend" | "soak";
  /** The endpoint ("GET /x"), tag or check the finding is about; absent for the whole run. */
  subject?: string;
  message: string;
}
