import type { ThresholdConfig } from "../api/config.js";
import { UsageError } from "../core/errors.js";
import { parseDuration } from "../core/parse.js";

export type Op = "<" | "<=" | ">" | ">=" | "==" | "!=";

export type Scope =
  | { kind: "all" }
  /** Endpoints whose name, "METHOD name", "TYPE name" or "TYPE METHOD name" equals `selector`. */
  | { kind: "endpoint"; selector: string }
  | { kind: "tag"; tag: string }
  | { kind: "check"; name: string };

/** Which numbers a metric reads. Latency-like metrics come from a histogram. */
/** A built-in histogram, or `metric:NAME` for an endpoint's further metric (ttft, itl, rtt, ...). */
export type HistogramName = "latency" | "ttfb" | "corrected" | `metric:${string}`;

export type Metric =
  | { kind: "latency"; histogram: HistogramName; stat: "percentile"; p: number }
  | { kind: "latency"; histogram: HistogramName; stat: "mean" | "min" | "max" }
  | { kind: "error_rate" }
  | { kind: "rps" }
  | { kind: "requests" }
  | { kind: "failures" }
  | { kind: "checks" }
  /** Against --slo: good streams per second, their fraction, or their output tokens per second. */
  | { kind: "goodput"; what: "requests" | "attainment" | "tokens" }
  /** Soak verdicts (result/soak.ts), judged at the end of the run. */
  | { kind: "soak"; what: "degradation" | "rps_degradation" | "recovery" | "rps_cv" }
  /** Theil–Sen slope of a resource over the steady part, in bytes per minute (the worst series). */
  | { kind: "slope"; of: "target" | "generator"; metric: "rss_bytes" | "heap_used_bytes" }
  /** A statistic of a resource series (the worst series), live over the values so far. */
  | {
      kind: "resource";
      of: "target" | "generator";
      metric: "cpu_percent" | "rss_bytes";
      stat: "max" | "min" | "mean" | "percentile";
      p?: number;
    };

export interface Threshold {
  /** As written. */
  expr: string;
  /** `scenario:NAME ...`: measured over that scenario's own books, not the run's. */
  scenario?: string;
  /** Within the run's books, or the scenario's. */
  scope: Scope;
  /** "all", "POST /api", "tag:checkout", "check:has id", "scenario:buy", "scenario:buy GET /cart". */
  scopeText: string;
  metric: Metric;
  /** Normalized metric name, e.g. "p95", "ttfb_p99", "error_rate". */
  metricText: string;
  op: Op;
  /**
   * In the metric's unit: ms for latency, a fraction for rates and degradations, per second for
   * rps, seconds for recovery, bytes per minute for slopes, percent of one core for CPU, bytes for RSS.
   */
  target: number;
  abortOnFail: boolean;
  /** Seconds from the start of the run before abortOnFail may stop it. */
  delayAbortSec: number;
}

const HISTOGRAMS: Record<string, HistogramName> = {
  ttfb: "ttfb",
  corrected: "corrected",
  latency: "latency",
  response_time: "latency",
};

/** The other tools' names of the serving metrics (docs/streaming.md), read as Cicada's. */
const ALIASES: Record<string, string> = {
  e2e_latency: "e2el",
  request_latency: "e2el",
  time_to_first_token: "ttft",
  time_per_output_token: "tpot",
  inter_token_latency: "itl",
  inter_chunk_latency: "itl",
  icl: "itl",
};

const KNOWN =
  "p50 p90 p95 p99 p99.9 (or p(95)), med, avg/mean, min, max, each optionally prefixed by ttfb, corrected " +
  "or a further metric such as ttft, tpot, itl, e2el or rtt (e.g. tpot p95), error_rate, rps, requests, failures, checks, " +
  "goodput, slo_attainment, output_token_goodput, " +
  "degradation, rps_degradation, recovery, rps_cv, target_rss_slope, generator_rss_slope, " +
  "target_cpu or target_rss (and generator_cpu, generator_rss) with max, min, avg or pNN";

function bad(expr: string, why: string): never {
  throw new UsageError(`threshold "${expr}": ${why}`);
}

function parseMetric(expr: string, text: string): { metric: Metric; name: string } {
  const t = text.trim().toLowerCase().replace(/\s+/g, " ");
  switch (t) {
    case "error_rate":
    case "failure_rate":
    case "fail_ratio":
    case "errors":
      return { metric: { kind: "error_rate" }, name: "error_rate" };
    case "rps":
    case "throughput":
      return { metric: { kind: "rps" }, name: "rps" };
    case "requests":
    case "count":
      return { metric: { kind: "requests" }, name: "requests" };
    case "failures":
      return { metric: { kind: "failures" }, name: "failures" };
    case "checks":
    case "rate":
    case "pass_rate":
      return { metric: { kind: "checks" }, name: "checks" };
    case "goodput":
    case "request_goodput":
      return { metric: { kind: "goodput", what: "requests" }, name: "goodput" };
    case "slo_attainment":
    case "attainment":
      return { metric: { kind: "goodput", what: "attainment" }, name: "slo_attainment" };
    case "output_token_goodput":
    case "token_goodput":
      return { metric: { kind: "goodput", what: "tokens" }, name: "output_token_goodput" };
  }
  const soak = soakMetric(expr, t);
  if (soak) return soak;
  // "[family ]stat", the family joined by a space, "_" or ".".
  const m = /^(?:([a-z][a-z0-9_]*)[ ._])?(p\(?\d+(?:\.\d+)?\)?|med|median|avg|mean|min|max)$/.exec(t);
  if (!m) bad(expr, `unknown metric "${text.trim()}"; known: ${KNOWN}`);
  const family = ALIASES[m[1] ?? ""] ?? m[1] ?? "latency";
  // Any other family names a further metric of the endpoints (ttft, itl, rtt, connect, ...).
  const histogram: HistogramName = HISTOGRAMS[family] ?? `metric:${family}`;
  const stat = m[2]!;
  const prefix = histogram === "latency" ? "" : `${family === "response_time" ? "latency" : family}_`;
  if (stat === "med" || stat === "median") {
    return { metric: { kind: "latency", histogram, stat: "percentile", p: 50 }, name: `${prefix}p50` };
  }
  if (stat === "avg" || stat === "mean") {
    return { metric: { kind: "latency", histogram, stat: "mean" }, name: `${prefix}mean` };
  }
  if (stat === "min" || stat === "max") {
    return { metric: { kind: "latency", histogram, stat }, name: `${prefix}${stat}` };
  }
  const p = Number(stat.replace(/[p()]/g, ""));
  if (!(p > 0 && p <= 100)) bad(expr, `percentile must be in (0, 100], got ${stat}`);
  return { metric: { kind: "latency", histogram, stat: "percentile", p }, name: `${prefix}p${p}` };
}

/** The soak and resource metrics, or undefined for anything else. */
function soakMetric(expr: string, t: string): { metric: Metric; name: string } | undefined {
  switch (t) {
    case "degradation":
    case "p95_degradation":
      return { metric: { kind: "soak", what: "degradation" }, name: "degradation" };
    case "rps_degradation":
      return { metric: { kind: "soak", what: "rps_degradation" }, name: "rps_degradation" };
    case "recovery":
    case "recovery_time":
      return { metric: { kind: "soak", what: "recovery" }, name: "recovery" };
    case "rps_cv":
      return { metric: { kind: "soak", what: "rps_cv" }, name: "rps_cv" };
  }
  const slope = /^(target|generator)_(rss|heap)_slope$/.exec(t);
  if (slope) {
    const of = slope[1] as "target" | "generator";
    const metric = slope[2] === "rss" ? "rss_bytes" : "heap_used_bytes";
    return { metric: { kind: "slope", of, metric }, name: `${of}_${slope[2]}_slope` };
  }
  const res = /^(target|generator)_(cpu|rss|memory)(?:[ ._](.+))?$/.exec(t);
  if (!res) return undefined;
  const of = res[1] as "target" | "generator";
  const what = res[2] === "cpu" ? "cpu" : "rss";
  const metric = what === "cpu" ? "cpu_percent" : "rss_bytes";
  const statText = res[3] ?? "max";
  const base = `${of}_${what}`;
  if (statText === "max" || statText === "min") {
    return { metric: { kind: "resource", of, metric, stat: statText }, name: `${base}_${statText}` };
  }
  if (statText === "avg" || statText === "mean") {
    return { metric: { kind: "resource", of, metric, stat: "mean" }, name: `${base}_mean` };
  }
  const pm = /^p\(?(\d+(?:\.\d+)?)\)?$/.exec(statText);
  const p = pm ? Number(pm[1]) : Number.NaN;
  if (!(p > 0 && p <= 100)) {
    bad(
      expr,
      `unknown statistic "${statText}" for ${base}; known: max, min, avg, or a percentile such as p95`,
    );
  }
  return { metric: { kind: "resource", of, metric, stat: "percentile", p }, name: `${base}_p${p}` };
}

const BYTES: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 };
const PER_MINUTE: Record<string, number> = { s: 60, sec: 60, min: 1, h: 1 / 60, hr: 1 / 60 };

/** "4GB" → bytes and "1MB/min" → bytes per minute; KB, MB, GB count in 1024s (KiB, MiB, GiB too). */
function bytesUnit(unit: string): { factor: number; perMinute: number | null } | undefined {
  const m = /^([kmgt]?)i?b(?:\/(s|sec|min|h|hr))?$/.exec(unit);
  if (!m) return undefined;
  return { factor: BYTES[`${m[1]}b`]!, perMinute: m[2] ? PER_MINUTE[m[2]]! : null };
}

/** Converts a soak or resource threshold's value to its metric's unit (see Threshold.target). */
function soakValue(
  expr: string,
  metric: Metric,
  name: string,
  value: number,
  unit: string | undefined,
): number {
  switch (metric.kind) {
    case "soak":
      if (metric.what === "recovery") {
        if (unit === "ms") return value / 1000;
        if (unit === undefined || unit === "s") return value;
        bad(expr, `recovery is a time: write it in s or ms, e.g. recovery<5s, not ${unit}`);
      }
      if (unit === "%") return value / 100;
      if (unit === undefined) return value;
      bad(expr, `${name} is a fraction: write a percentage (10%) or a fraction (0.1), not ${unit}`);
      break;
    case "slope": {
      const u = unit === undefined ? undefined : bytesUnit(unit);
      if (!u || u.perMinute === null) {
        bad(
          expr,
          `${name} is a growth rate: write bytes per time, e.g. ${name}<1MB/min (B, KB, MB, GB per s, min or h), got ${unit ?? "a plain number"}`,
        );
      }
      return value * u.factor * u.perMinute;
    }
    case "resource":
      if (metric.metric === "cpu_percent") {
        if (unit === undefined || unit === "%") return value;
        bad(
          expr,
          `${name} is a percentage of one core (100% = one core busy), e.g. ${name}<80%, not ${unit}`,
        );
      } else {
        if (unit === undefined) return value;
        const u = bytesUnit(unit);
        if (!u || u.perMinute !== null)
          bad(expr, `${name} is a size: write it in B, KB, MB or GB, e.g. 4GB, not ${unit}`);
        return value * u.factor;
      }
  }
  return value;
}

function parseScope(expr: string, text: string): { scope: Scope; scopeText: string } {
  const t = text.trim();
  if (t === "") bad(expr, "empty scope before ':'");
  if (/^tag:/i.test(t)) {
    const tag = t.slice(4).trim();
    if (!tag) bad(expr, "tag: needs a tag name");
    return { scope: { kind: "tag", tag }, scopeText: `tag:${tag}` };
  }
  if (/^check:/i.test(t)) {
    const name = t.slice(6).trim();
    if (!name) bad(expr, "check: needs a check name");
    return { scope: { kind: "check", name }, scopeText: `check:${name}` };
  }
  return { scope: { kind: "endpoint", selector: t.replace(/\s+/g, " ") }, scopeText: t.replace(/\s+/g, " ") };
}

/**
 * Parses `[scope:] metric op value[unit] [abortOnFail] [delayAbortEval=10s]`, e.g.
 * "p95<500", "POST /api/v1/agents/invoke: p99<1s", "error_rate<1%", "tag:checkout p95<300",
 * "check:status is 200: rate>99%", "ttfb p99<=200ms", "scenario:checkout GET /cart: p95<300".
 */
export function parseThreshold(input: string | ThresholdConfig): Threshold {
  const cfg: ThresholdConfig = typeof input === "string" ? { threshold: input } : input;
  const expr = typeof cfg.threshold === "string" ? cfg.threshold.trim() : "";
  if (!expr) {
    throw new UsageError(`threshold: expected an expression such as "p95<500", got ${JSON.stringify(input)}`);
  }
  const m =
    /^(.*?)\s*(<=|>=|==|!=|<|>)\s*(-?\d+(?:\.\d+)?)\s*(ms|s|%|\/s|[kmgt]?i?b(?:\/(?:s|sec|min|h|hr))?)?(?:\s+(.*))?$/i.exec(
      expr,
    );
  if (!m) bad(expr, `expected "[scope:] metric <op> value", e.g. "p95<500" or "error_rate<1%"`);
  const left = m[1]!;
  const op = m[2] as Op;
  let value = Number(m[3]);
  const unit = m[4]?.toLowerCase();
  const options = (m[5] ?? "").trim();

  let scope: Scope = { kind: "all" };
  let scopeText = "all";
  let metricText = left;
  // "scenario:NAME rest": the rest is read as a threshold of its own, over the scenario's books.
  let scenario: string | undefined;
  const sc = /^scenario:(\S*)(?:\s+|$)/i.exec(metricText);
  if (sc) {
    scenario = sc[1]!.replace(/:$/, "");
    if (!scenario) bad(expr, "scenario: needs a scenario name, e.g. scenario:checkout p95<300");
    metricText = metricText.slice(sc[0].length);
  }
  // "SCOPE: metric", split at the last ": " so endpoint names may hold colons (/a:b).
  const colon = metricText.lastIndexOf(": ");
  if (colon >= 0) {
    ({ scope, scopeText } = parseScope(expr, metricText.slice(0, colon)));
    metricText = metricText.slice(colon + 2);
  } else if (/^tag:\S+\s/i.test(metricText)) {
    // "tag:checkout p95": the tag is one word.
    const sp = metricText.search(/\s/);
    ({ scope, scopeText } = parseScope(expr, metricText.slice(0, sp)));
    metricText = metricText.slice(sp + 1);
  }
  if (scenario !== undefined) scopeText = `scenario:${scenario}${scopeText === "all" ? "" : ` ${scopeText}`}`;
  const { metric, name } = parseMetric(expr, metricText);
  if (scope.kind === "check" && metric.kind !== "checks") {
    bad(expr, "a check: scope takes the checks (pass rate) metric, e.g. check:has id: rate>99%");
  }

  const runWide = metric.kind === "soak" || metric.kind === "slope" || metric.kind === "resource";
  if (runWide && scope.kind !== "all") {
    bad(expr, `${name} is measured over the whole run; it takes no scope, got "${scopeText}"`);
  }
  // A scenario has soak verdicts of its own; the resource series and their slopes are the machine's.
  if (scenario !== undefined && (metric.kind === "resource" || metric.kind === "slope")) {
    bad(expr, `${name} is the machine's, measured over the whole run; it takes no scenario`);
  }
  if (runWide) {
    value = soakValue(expr, metric, name, value, unit);
  } else if (metric.kind === "latency") {
    if (unit !== undefined && unit !== "ms" && unit !== "s") bad(expr, `latency takes ms or s, not ${unit}`);
    if (unit === "s") value *= 1000;
  } else if (metric.kind === "goodput" && metric.what !== "attainment") {
    if (unit !== undefined && unit !== "/s")
      bad(expr, `${name} is a rate per second, e.g. ${name}>20/s, not ${unit}`);
  } else if (metric.kind === "rps") {
    if (unit !== undefined && unit !== "/s") bad(expr, `rps takes a plain number or /s, not ${unit}`);
  } else if (metric.kind === "error_rate" || metric.kind === "checks" || metric.kind === "goodput") {
    if (unit === "%") value /= 100;
    else if (unit) bad(expr, `${name} is a rate: write it as a percentage (1%) or a fraction (0.01)`);
    else if (value > 1)
      bad(expr, `${name} ${value} is more than 1: write a percentage with %, e.g. ${value}%`);
  } else if (unit) {
    bad(expr, `${name} takes a plain number, not ${unit}`);
  }

  let abortOnFail = cfg.abortOnFail === true;
  let delay: string | number | undefined = cfg.delayAbortEval;
  for (const opt of options.split(/\s+/).filter((x) => x)) {
    const [k, v] = opt.split("=", 2);
    if (k?.toLowerCase() === "abortonfail" && v === undefined) abortOnFail = true;
    else if (k?.toLowerCase() === "delayaborteval" && v !== undefined) delay = v;
    else bad(expr, `unknown option "${opt}"; known: abortOnFail, delayAbortEval=DURATION`);
  }
  if (abortOnFail && (metric.kind === "soak" || metric.kind === "slope")) {
    bad(
      expr,
      `${name} is judged at the end of the run, so it cannot abortOnFail; live metrics such as p95, error_rate, target_cpu or target_rss can`,
    );
  }
  const delayAbortSec = delay === undefined ? 0 : parseDuration(delay, `threshold "${expr}" delayAbortEval`);
  return {
    expr,
    ...(scenario !== undefined ? { scenario } : {}),
    scope,
    scopeText,
    metric,
    metricText: name,
    op,
    target: value,
    abortOnFail,
    delayAbortSec,
  };
}

export function compare(value: number, op: Op, target: number): boolean {
  switch (op) {
    case "<":
      return value < target;
    case "<=":
      return value <= target;
    case ">":
      return value > target;
    case ">=":
      return value >= target;
    case "==":
      return value === target;
    case "!=":
      return value !== target;
  }
}
