/**
 * What `run()` resolves to: the JSON result, exactly as `cicada run --json` writes it, with a few
 * read-only helpers on its prototype (so JSON.stringify still gives the plain result).
 */
import hdr from "hdr-histogram-js";
import { CicadaError, ExitCode, UsageError } from "../core/errors.js";
import { formatMetric } from "../result/format.js";
import type { EndpointResult, RunResult } from "../result/result.js";
import type { ThresholdResult } from "../result/thresholds.js";
import { createHistogram, type Histogram, type LatencySummary, percentileMs } from "../stats/histogram.js";

/** Figures of one endpoint (or of several that one key names, or of all of them), times in ms. */
export interface Stats {
  /** The key it was asked by ("GET /health"), or "Aggregated" for all endpoints. */
  readonly name: string;
  /** Completed requests, failed ones included. */
  readonly requests: number;
  readonly failures: number;
  /** Cut off in flight by the stop; not in `requests`. */
  readonly cancelled: number;
  /** Requests per second over the run. */
  readonly rps: number;
  /** failures / requests; 0 with no requests. */
  readonly failRatio: number;
  /** (requests − failures) / requests; 0 with no requests: nothing measured is no success. */
  readonly successRatio: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly median: number;
  /** The result's summary: min, mean, p50, p90, p95, p99, p999, max. */
  readonly latencyMs: LatencySummary;
  /** Responses per status code. */
  readonly statusCodes: Readonly<Record<string, number>>;
  /** Any percentile (0–100) of the response time, exact to 0.1 %, from the full histogram. */
  p(percentile: number): number;
}

export interface ResultHelpers {
  /** The run's exit code is 0: no threshold failed, nothing failed, something was measured. */
  readonly passed: boolean;
  /** All endpoints together. */
  readonly total: Stats;
  /**
   * One endpoint, by the key thresholds use: "GET /health", "/health", "SSE /v1/chat" or
   * "SSE POST /v1/chat". A key that names several (GET and POST of one path) merges them.
   * Throws a UsageError listing the endpoints when none matches.
   */
  endpoint(key: string): Stats;
  /** Throws a `LoadTestFailed` that says why, unless the run passed. */
  assertPassed(): void;
}

/** The result of `run()`: the JSON result (`RunResult`) with its helpers. */
export type LoadTestResult = RunResult & ResultHelpers;

/** Thrown by `assertPassed()`: its message names each failed threshold, its limit and what was measured. */
export class LoadTestFailed extends CicadaError {
  constructor(
    message: string,
    readonly result: RunResult,
  ) {
    super(message, result.exitCode, "ERR_CICADA_FAILED");
  }
}

function matches(e: EndpointResult, key: string): boolean {
  return (
    key === e.name ||
    key === `${e.method} ${e.name}` ||
    key === `${e.type} ${e.name}` ||
    key === `${e.type} ${e.method} ${e.name}`
  );
}

function label(e: EndpointResult): string {
  const base = `${e.method} ${e.name}`.trim();
  return e.type === "HTTP" ? base : `${e.type} ${base}`;
}

const round3 = (x: number) => Math.round(x * 1000) / 1000;

function stats(
  name: string,
  es: readonly EndpointResult[],
  counts: Pick<EndpointResult, "requests" | "failures" | "cancelled" | "rps" | "statusCodes">,
  summary?: LatencySummary,
): Stats {
  let merged: Histogram | undefined;
  const histogram = (): Histogram => {
    if (merged) return merged;
    merged = createHistogram();
    for (const e of es) if (e.histogram) merged.add(hdr.decodeFromCompressedBase64(e.histogram));
    return merged;
  };
  const timed = es.filter((e) => e.requests > 0);
  const minMs = timed.length > 0 ? Math.min(...timed.map((e) => e.latencyMs.min)) : 0;
  const maxMs = timed.length > 0 ? Math.max(...timed.map((e) => e.latencyMs.max)) : 0;
  const n = timed.reduce((a, e) => a + e.requests, 0);
  const meanMs = n > 0 ? timed.reduce((a, e) => a + e.latencyMs.mean * e.requests, 0) / n : 0;
  const p = (q: number): number => {
    if (typeof q !== "number" || !(q >= 0 && q <= 100)) {
      throw new UsageError(`p(${String(q)}): expected a percentile from 0 to 100`);
    }
    const h = histogram();
    return percentileMs(h, q, minMs * 1000, maxMs * 1000);
  };
  const latencyMs: LatencySummary = summary ?? {
    min: minMs,
    mean: round3(meanMs),
    p50: p(50),
    p90: p(90),
    p95: p(95),
    p99: p(99),
    p999: p(99.9),
    max: maxMs,
  };
  const { requests, failures } = counts;
  return {
    name,
    requests,
    failures,
    cancelled: counts.cancelled,
    rps: counts.rps,
    failRatio: requests > 0 ? failures / requests : 0,
    successRatio: requests > 0 ? (requests - failures) / requests : 0,
    min: latencyMs.min,
    max: latencyMs.max,
    mean: latencyMs.mean,
    median: latencyMs.p50,
    latencyMs,
    statusCodes: counts.statusCodes,
    p,
  };
}

function sum(es: readonly EndpointResult[], k: "requests" | "failures" | "cancelled" | "rps"): number {
  return es.reduce((a, e) => a + e[k], 0);
}

function mergeCodes(es: readonly EndpointResult[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const e of es) for (const [c, n] of Object.entries(e.statusCodes)) out[c] = (out[c] ?? 0) + n;
  return out;
}

/** A limit as precise as it was written (0.5 ms, not 0.50 ms; 0.1 %, not 0.10 %). */
function formatLimit(metric: string, target: number): string {
  const trim = (x: number) => String(Number(x.toFixed(6)));
  if (metric === "error_rate" || metric === "checks") return `${trim(target * 100)}%`;
  if (metric === "rps") return `${trim(target)}/s`;
  const shown = formatMetric(metric, target);
  if (shown.endsWith(" ms")) return `${trim(target)} ms`;
  // Soak and resource metrics carry their unit (%, s, MB/min); the others are plain numbers.
  return /^(degradation|rps_degradation|recovery|(target|generator)_)/.test(metric) ? shown : trim(target);
}

/** 'threshold "GET /health: p95<100" failed: p95 of GET /health measured 250.31 ms, limit < 100 ms'. */
function describeThreshold(t: ThresholdResult): string {
  const what = t.scope === "all" ? t.metric : `${t.metric} of ${t.scope}`;
  const measured =
    t.value === null ? (t.note ?? "nothing measured") : `measured ${formatMetric(t.metric, t.value)}`;
  return `threshold "${t.expr}" failed: ${what} ${measured}, limit ${t.op} ${formatLimit(t.metric, t.target)}`;
}

/** Every reason a run did not pass, one per line. */
export function failureReport(r: RunResult): string {
  const lines: string[] = [];
  for (const t of r.thresholds ?? []) if (!t.passed) lines.push(describeThreshold(t));
  if (r.comparison?.verdict === "regression") {
    const worse = r.comparison.rows.filter((x) => x.verdict === "regression");
    for (const x of worse) {
      lines.push(
        `regression against ${r.comparison.baseline.label}: ${x.metric} of ${x.endpoint} ${x.baseline} → ${x.current}` +
          (x.deltaPct !== null ? ` (${x.deltaPct > 0 ? "+" : ""}${x.deltaPct}%)` : ""),
      );
    }
  }
  const t = r.totals;
  if (t.requests === 0 && r.exitCode !== ExitCode.Interrupted) {
    lines.push("no request completed, so the run measured nothing");
  }
  if (t.failures > 0) {
    lines.push(`${t.failures} of ${t.requests} requests failed`);
    for (const f of r.failures.slice(0, 5)) {
      lines.push(`  ${`${f.method} ${f.name}`.trim()}: ${f.error} (×${f.occurrences})`);
    }
  }
  for (const x of r.exceptions.slice(0, 5))
    lines.push(`user code threw in ${x.where}: ${x.message} (×${x.count})`);
  for (const w of r.warnings) if (w.kind === "worker") lines.push(w.message);
  if (r.exitCode === ExitCode.Interrupted) lines.push("the run was aborted before its end");
  if (r.exitCode === ExitCode.Internal)
    lines.push("the run failed with an internal error (see the warnings)");
  if (lines.length === 0) lines.push(`the run exited with code ${r.exitCode}`);
  return lines.join("\n");
}

const helpers: ResultHelpers & ThisType<LoadTestResult> = {
  get passed(): boolean {
    return (this as unknown as RunResult).exitCode === ExitCode.Ok;
  },
  get total(): Stats {
    const r = this as unknown as RunResult;
    const t = r.totals;
    return stats("Aggregated", r.endpoints, t, t.latencyMs);
  },
  endpoint(key: string): Stats {
    const r = this as unknown as RunResult;
    const es = r.endpoints.filter((e) => matches(e, key));
    if (es.length === 0) {
      const known = r.endpoints.map(label);
      throw new UsageError(
        `no endpoint "${key}" in the result; ${known.length > 0 ? `it has: ${known.join(", ")}` : "it has none"}`,
      );
    }
    const counts = {
      requests: sum(es, "requests"),
      failures: sum(es, "failures"),
      cancelled: sum(es, "cancelled"),
      rps: round3(sum(es, "rps")),
      statusCodes: mergeCodes(es),
    };
    return stats(key, es, counts, es.length === 1 ? es[0]!.latencyMs : undefined);
  },
  assertPassed(): void {
    const r = this as unknown as RunResult;
    if (r.exitCode === ExitCode.Ok) return;
    throw new LoadTestFailed(`load test failed (exit code ${r.exitCode}):\n${failureReport(r)}`, r);
  },
};

const proto: object = Object.create(Object.prototype, Object.getOwnPropertyDescriptors(helpers));
for (const k of Object.keys(helpers)) Object.defineProperty(proto, k, { enumerable: false });

/** The result with its helpers; its own properties are the JSON result's, untouched. */
export function withHelpers(r: RunResult): LoadTestResult {
  return Object.assign(Object.create(proto) as object, r) as LoadTestResult;
}
