/**
 * A sweep's result and its analysis: each level's row (seed table figures), the knee found by
 * Kneedle on throughput against load and confirmed by a significant rise of p95 or errors, the
 * SLO-constrained maximum, and the over-saturation test run within a level.
 */
import { UsageError } from "../core/errors.js";
import type { SeriesRow } from "../stats/aggregate.js";
import type { ResultHeader, RunResult } from "./result.js";
import { theilSen } from "./soak.js";

/** How a level applies its load. */
export type LevelKind = "concurrency" | "rate" | "synchronous" | "throughput";

export interface Percentiles {
  p50: number;
  p95: number;
}

/** One level of a sweep, as the table, the CSV and the JSON show it. */
export interface SweepLevel {
  /** 0-based, in the order the levels ran (or would have). */
  index: number;
  kind: LevelKind;
  model: "closed" | "open";
  /** Users for a closed level, iterations started per second for an open one. */
  load: number;
  /** "ran"; "stopped" when the sweep's early stop or a signal cut it short; "not-run" after an early stop. */
  status: "ran" | "stopped" | "not-run";
  /** Seconds measured (after the warm-up). */
  durationSec: number;
  requests: number;
  failures: number;
  /** Completed requests that succeeded, 0–1 (1 when nothing completed, so read `requests` too). */
  successRate: number;
  errorRate: number;
  /** Completed requests per second, failures included. */
  rps: number;
  /** Successful requests per second: the throughput the knee is found on. */
  okRps: number;
  latencyMs: { p50: number; p95: number; p99: number };
  /** From the endpoints' `ttft` / `tpot` metrics (streams), the highest of any endpoint. */
  ttftMs?: Percentiles;
  tpotMs?: Percentiles;
  /** The run result's goodput, when an SLO gave one. */
  goodput?: { perSec?: number; attainment?: number; requests?: number; outputTokensPerSec?: number };
  /** Whether this level meets `--slo` and `--max-p95`; absent when neither was given. */
  sloMet?: boolean;
  /** Over-saturation was detected within this level (`--stop-on-saturation`). */
  saturated?: boolean;
  /** The level's full run result; absent for a level that did not run. */
  result?: RunResult;
}

export interface SweepKnee {
  /** Index of the knee level. */
  level: number;
  load: number;
  rps: number;
  p95Ms: number;
  /** "kneedle": the bend of throughput against load, confirmed by a later level; "p95-rise": the last level before the first significant rise. */
  method: "kneedle" | "p95-rise";
  /** What confirmed it: the first level after it with a significant p95 rise or more errors. */
  confirmedBy: { level: number; by: "p95" | "errors" };
}

export interface SweepCapacity {
  /** Successful requests per second the target sustains, and at which level. */
  rps: number;
  load: number;
  level: number;
  /** "knee": at the knee; "max": no knee within the levels, so the highest throughput measured (a lower bound). */
  from: "knee" | "max";
}

export interface SweepSlo {
  /** The `--slo` text and `--max-p95` in ms, as given. */
  slo?: string;
  maxP95Ms?: number;
  /** The highest-load level that meets them; null when none does. */
  max: { level: number; load: number; rps: number } | null;
}

export interface SweepSummary {
  mode: "concurrency" | "rates" | "auto";
  levels: SweepLevel[];
  knee: SweepKnee | null;
  capacity: SweepCapacity | null;
  slo?: SweepSlo;
  /** Why the sweep ended before its last level. */
  stoppedBy?: "max-error-rate" | "saturation" | "signal";
}

/** The JSON of `cicada sweep --json` and the value `sweep()` resolves to. */
export interface SweepResult extends ResultHeader {
  sweep: SweepSummary;
  exitCode: number;
}

// ---------------------------------------------------------------------------------------------
// One level's row.

function highest(r: RunResult, metric: string): Percentiles | undefined {
  let out: Percentiles | undefined;
  for (const e of r.endpoints) {
    const m = e.metrics?.[metric];
    if (!m || m.count === 0) continue;
    out = out ? { p50: Math.max(out.p50, m.p50), p95: Math.max(out.p95, m.p95) } : { p50: m.p50, p95: m.p95 };
  }
  return out;
}

const round = (n: number, d = 3) => Math.round(n * 10 ** d) / 10 ** d;

/** A level's figures from its run result. */
export function levelFigures(
  base: Pick<SweepLevel, "index" | "kind" | "model" | "load" | "status">,
  r: RunResult,
): SweepLevel {
  const t = r.totals;
  const ok = t.requests - t.failures;
  const ttft = highest(r, "ttft");
  const tpot = highest(r, "tpot");
  const goodput = (r as RunResult & { goodput?: SweepLevel["goodput"] }).goodput;
  return {
    ...base,
    durationSec: r.durationSec,
    requests: t.requests,
    failures: t.failures,
    successRate: t.requests > 0 ? round(ok / t.requests, 6) : 1,
    errorRate: t.requests > 0 ? round(t.failures / t.requests, 6) : 0,
    rps: t.rps,
    okRps: round(r.durationSec > 0 ? ok / r.durationSec : 0),
    latencyMs: { p50: t.latencyMs.p50, p95: t.latencyMs.p95, p99: t.latencyMs.p99 },
    ...(ttft ? { ttftMs: ttft } : {}),
    ...(tpot ? { tpotMs: tpot } : {}),
    ...(goodput ? { goodput } : {}),
    result: r,
  };
}

export function notRun(base: Pick<SweepLevel, "index" | "kind" | "model" | "load">): SweepLevel {
  return {
    ...base,
    status: "not-run",
    durationSec: 0,
    requests: 0,
    failures: 0,
    successRate: 1,
    errorRate: 0,
    rps: 0,
    okRps: 0,
    latencyMs: { p50: 0, p95: 0, p99: 0 },
  };
}

// ---------------------------------------------------------------------------------------------
// The knee.

/** Kneedle's minimum gap between the normalised curve and the diagonal for a bend to count. */
export const KNEEDLE_MIN_GAP = 0.1;
/** A p95 rise counts when more than 5 % of the later level's requests exceed this × the earlier p95 … */
export const P95_RISE_FACTOR = 1.25;
/** … plus this many ms (so sub-millisecond jitter never counts). */
export const P95_RISE_MS = 1;
/** One-sided z for p < 0.001. */
export const Z_999 = 3.090232306167813;
/** An error rate this much above the earlier level's (in points of rate) is a rise of errors. */
export const ERROR_RISE = 0.01;

/**
 * The share of a level's requests slower than `ms`, from its latency histogram (all endpoints).
 * The caller gives it, since the histograms live with the level's books.
 */
export type SlowerThan = (level: number, ms: number) => { slower: number; total: number } | undefined;

/**
 * Whether level `b`'s p95 is significantly above `p95a`: under "same latency" 5 % of its
 * requests exceed the bound, so the share that does is tested against 5 % with a one-sided
 * binomial (normal approximation) z-test at p < 0.001.
 */
export function p95Rose(slowerThan: SlowerThan, b: number, p95a: number): boolean {
  const bound = p95a * P95_RISE_FACTOR + P95_RISE_MS;
  const c = slowerThan(b, bound);
  if (!c || c.total === 0) return false;
  const q = c.slower / c.total;
  const z = (q - 0.05) / Math.sqrt((0.05 * 0.95) / c.total);
  return q > 0.05 && z > Z_999;
}

function errorsRose(a: SweepLevel, b: SweepLevel): boolean {
  return b.errorRate > a.errorRate + ERROR_RISE;
}

/** Kneedle (Satopää et al. 2011) on a concave increasing curve: the index farthest above the diagonal. */
export function kneedle(xs: readonly number[], ys: readonly number[]): number | null {
  const n = xs.length;
  if (n < 3) return null;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs);
  const y0 = Math.min(...ys);
  const y1 = Math.max(...ys);
  if (x1 === x0 || y1 === y0) return null;
  let best = -1;
  let gap = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    const d = (ys[i]! - y0) / (y1 - y0) - (xs[i]! - x0) / (x1 - x0);
    if (d > gap) {
      gap = d;
      best = i;
    }
  }
  return gap >= KNEEDLE_MIN_GAP ? best : null;
}

/**
 * The knee of the levels that measured something, in order of load: Kneedle's bend of
 * throughput, if a later level confirms it with a significant p95 rise or more errors; else the
 * last level before the first such rise from one level to the next; else none.
 */
export function findKnee(levels: readonly SweepLevel[], slowerThan: SlowerThan): SweepKnee | null {
  const pts = levels.filter((l) => l.status !== "not-run" && l.requests > 0);
  // Load in comparable units: a rate level by its rate; the synchronous and throughput runs of
  // an automatic sweep by the rate they reached.
  const loadOf = (l: SweepLevel) => (l.kind === "synchronous" || l.kind === "throughput" ? l.rps : l.load);
  pts.sort((a, b) => loadOf(a) - loadOf(b) || a.index - b.index);
  const confirm = (k: number): SweepKnee["confirmedBy"] | undefined => {
    for (let j = k + 1; j < pts.length; j++) {
      if (errorsRose(pts[k]!, pts[j]!)) return { level: pts[j]!.index, by: "errors" };
      if (p95Rose(slowerThan, pts[j]!.index, pts[k]!.latencyMs.p95))
        return { level: pts[j]!.index, by: "p95" };
    }
    return undefined;
  };
  const knee = (k: number, method: SweepKnee["method"], by: SweepKnee["confirmedBy"]): SweepKnee => ({
    level: pts[k]!.index,
    load: pts[k]!.load,
    rps: pts[k]!.okRps,
    p95Ms: pts[k]!.latencyMs.p95,
    method,
    confirmedBy: by,
  });
  const k = kneedle(
    pts.map(loadOf),
    pts.map((l) => l.okRps),
  );
  if (k !== null && k < pts.length - 1) {
    const by = confirm(k);
    if (by) return knee(k, "kneedle", by);
  }
  for (let i = 1; i < pts.length; i++) {
    const a = pts[i - 1]!;
    const b = pts[i]!;
    if (errorsRose(a, b)) return knee(i - 1, "p95-rise", { level: b.index, by: "errors" });
    if (p95Rose(slowerThan, b.index, a.latencyMs.p95))
      return knee(i - 1, "p95-rise", { level: b.index, by: "p95" });
  }
  return null;
}

/** The capacity estimate: the knee's throughput, or without a knee the most measured (a lower bound). */
export function capacityOf(levels: readonly SweepLevel[], knee: SweepKnee | null): SweepCapacity | null {
  if (knee) return { rps: knee.rps, load: knee.load, level: knee.level, from: "knee" };
  const ran = levels.filter((l) => l.status !== "not-run" && l.okRps > 0);
  if (ran.length === 0) return null;
  const top = ran.reduce((a, b) => (b.okRps > a.okRps ? b : a));
  return { rps: top.okRps, load: top.load, level: top.index, from: "max" };
}

// ---------------------------------------------------------------------------------------------
// SLOs.

export interface SloBound {
  metric: "ttft" | "tpot" | "e2el" | "itl";
  ms: number;
}

/** `--slo "ttft<500ms,tpot<50ms,e2el<10s"`: bounds in ms (a bare number is ms). */
export function parseSlo(text: string, name = "--slo"): SloBound[] {
  const out: SloBound[] = [];
  const parts = text
    .split(/[,;]/)
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
  if (parts.length === 0)
    throw new UsageError(`${name}: expected bounds such as "ttft<500ms,e2el<10s", got "${text}"`);
  for (const p of parts) {
    const m = /^(ttft|tpot|e2el|itl)\s*<=?\s*(\d+(?:\.\d+)?)\s*(ms|s)?$/i.exec(p);
    if (!m) {
      throw new UsageError(
        `${name}: expected bounds such as "ttft<500ms,tpot<50ms,e2el<10s" (metrics ttft, tpot, itl, e2el), got "${p}"`,
      );
    }
    const v = Number(m[2]);
    out.push({
      metric: m[1]!.toLowerCase() as SloBound["metric"],
      ms: m[3]?.toLowerCase() === "s" ? v * 1000 : v,
    });
  }
  return out;
}

/**
 * Whether a level meets the SLO: the p95 of each bounded metric within its bound (`e2el` is the
 * request latency when the endpoints report no `e2el`), and its overall p95 within `maxP95Ms`.
 * A level that measured nothing meets nothing.
 */
export function meetsSlo(level: SweepLevel, bounds: readonly SloBound[], maxP95Ms?: number): boolean {
  const r = level.result;
  if (!r || level.requests === 0 || level.failures === level.requests) return false;
  if (maxP95Ms !== undefined && level.latencyMs.p95 > maxP95Ms) return false;
  for (const b of bounds) {
    const p = highest(r, b.metric)?.p95 ?? (b.metric === "e2el" ? level.latencyMs.p95 : undefined);
    if (p === undefined || p > b.ms) return false;
  }
  return true;
}

/** The highest-load level that meets the SLO. */
export function sloMax(levels: readonly SweepLevel[]): SweepSlo["max"] {
  const ok = levels.filter((l) => l.sloMet === true);
  if (ok.length === 0) return null;
  const top = ok.reduce((a, b) => (b.okRps > a.okRps ? b : a));
  return { level: top.index, load: top.load, rps: top.okRps };
}

// ---------------------------------------------------------------------------------------------
// Over-saturation within a level.

/** Seconds of a level's series the test needs before it may call a level over-saturated. */
export const SATURATION_MIN_POINTS = 5;

/**
 * GuideLLM's over-saturation idea on a level's per-second rows: requests in flight (by Little's
 * law, rate × mean-ish latency) and latency both have a Theil–Sen slope whose 95 % interval lies
 * above zero, and both rose by more than 25 % of their first value over the rows. A target that
 * keeps up shows neither: its queue, and so its latency, stays level.
 */
export function overSaturated(rows: readonly SeriesRow[]): boolean {
  const pts = rows.filter((r) => r.requests > 0);
  if (pts.length < SATURATION_MIN_POINTS) return false;
  const xs = pts.map((r) => r.t);
  const lat = pts.map((r) => r.p50);
  const inFlight = pts.map((r) => (r.rps * r.p50) / 1000);
  const a = theilSen(xs, lat);
  const b = theilSen(xs, inFlight);
  if (!a || !b || !(a.low > 0) || !(b.low > 0)) return false;
  // Significant is not enough: the climb must matter, a quarter of where each started.
  const span = xs[xs.length - 1]! - xs[0]!;
  return a.slope * span > 0.25 * Math.max(1, lat[0]!) && b.slope * span > 0.25 * Math.max(0.1, inFlight[0]!);
}
