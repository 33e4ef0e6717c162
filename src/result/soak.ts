// Soak verdicts read off a run's books: its steady part, degradation, leaks, recovery after bursts and steps, stability.
import type { Run } from "../runner/run.js";
import { type Stage, stageLevel } from "../runner/stages.js";
import type { SeriesRow } from "../stats/aggregate.js";
import { percentileMs } from "../stats/histogram.js";
import type { MergedSpan } from "../stats/history.js";
import type { ResourceSeries, ResourceUnit } from "../stats/resources.js";
import { formatBytes, formatChange } from "./format.js";

/** The part of the run between the ramp-up and the ramp-down or stop. */
export interface SoakSteady {
  /** Seconds since the start: the steady part covers (fromSec, toSec]. */
  fromSec: number;
  toSec: number;
  /** Per-second rows in it. */
  seconds: number;
  /**
   * What the plateau was read from: `users` alive (closed model), the `stages`' arrival rate or
   * the constant `rate` (open model), or the whole `run` (a load shape, scenarios).
   */
  basis: "users" | "stages" | "rate" | "run";
  /** The plateau: users, or arrivals per second; null for basis `run`. */
  level: number | null;
}

/** One window of the steady part. */
export interface SoakWindow {
  fromSec: number;
  toSec: number;
  requests: number;
  rps: number;
  /** Exact over the window's requests (not an average of per-second p95s); null without requests. */
  p95Ms: number | null;
}

export interface SoakDegradation {
  /** Length of each window: min(60 s, a quarter of the steady part). */
  windowSec: number;
  first: SoakWindow;
  last: SoakWindow;
  /** (last − first) / first × 100: positive when the p95 grew. */
  p95ChangePct: number | null;
  /** (last − first) / first × 100: negative when the throughput fell. */
  rpsChangePct: number | null;
}

/** A resource series fitted over the steady part (rss_bytes, heap_used_bytes). */
export interface SoakLeak {
  kind: "target" | "generator";
  source: string;
  host: string;
  metric: string;
  unit: ResourceUnit;
  /** Points fitted (after reduction to at most 200 bin medians). */
  points: number;
  /** Theil–Sen slope in the series' unit per minute, with its 95 % confidence interval. */
  slopePerMin: number;
  lowPerMin: number;
  highPerMin: number;
  /** Median of the series over the steady part. */
  median: number;
  /** The fit's growth over the fitted span, in the unit and as a percentage of the median. */
  growth: number;
  growthPct: number | null;
  /** The interval lies above zero and the growth is material (docs/soak.md). */
  growing: boolean;
}

/** How long the target took to serve as before a burst, a step up or a spike. */
export interface SoakRecovery {
  /** Seconds since the start of the disturbance (the burst, the step up, the spike's start). */
  t: number;
  cause: "burst" | "step" | "spike";
  /** Bursts: arrivals fired. */
  count?: number;
  /** Steps and spikes: the load level before and at the step. */
  from?: number;
  to?: number;
  /** Seconds since the start from which recovery is timed (a spike: when it ended). */
  measuredFrom: number;
  /** The 10 s before the disturbance: error rate (fraction) and exact p95. */
  baseline: { errorRate: number; p95Ms: number | null };
  /** Seconds from `measuredFrom` until the level was back; null: never before the run ended. */
  recoverySec: number | null;
}

export interface SoakStability {
  /** Steady seconds counted (at the plateau, outside bursts' disturbance). */
  seconds: number;
  rpsMean: number;
  rpsStdev: number;
  /** Coefficient of variation of the per-second RPS: stdev / mean. */
  rpsCv: number | null;
}

/** The soak verdicts of a run (`soak` in the JSON result; docs/soak.md). */
export interface SoakResult {
  steady: SoakSteady | null;
  degradation: SoakDegradation | null;
  stability: SoakStability | null;
  leaks: SoakLeak[];
  recovery: SoakRecovery[];
  /** Longest recovery among those that recovered; null when there were none. */
  worstRecoverySec: number | null;
  /** Disturbances the target never recovered from. */
  unrecovered: number;
  /** Why a verdict is missing, e.g. "the steady part is too short (5 s) for degradation". */
  notes: string[];
}

/** What the analysis reads: plain data, so it runs on a finished run or on books still filling. */
export interface SoakInput {
  series: readonly SeriesRow[];
  /** Exact latencies over spans of the run; without it the window p95s are null. */
  span?: (fromT: number, toT: number) => MergedSpan | null;
  /** `users` reads the series, `stages` and `rate` the plan, `run` takes the whole run. */
  basis: SoakSteady["basis"];
  rate: number | null;
  stages: readonly Stage[] | null;
  bursts: ReadonlyArray<{ t: number; count: number }>;
  resources: readonly ResourceSeries[];
}

/** Steady seconds needed for degradation (two windows of at least 2 s) and stability. */
const MIN_DEGRADATION_SECONDS = 8;
const MIN_STABILITY_SECONDS = 4;
const MAX_WINDOW_SEC = 60;
/** Resource series are reduced to this many bin medians before the O(n²) fit. */
const MAX_FIT_POINTS = 200;
const MIN_FIT_POINTS = 10;
/** A leak is flagged only when the fit grows the series by this much over the steady part. */
const LEAK_MIN_GROWTH_PCT = 5;
const LEAK_MIN_GROWTH_BYTES = 1024 * 1024;
const LEAK_METRICS = new Set(["rss_bytes", "heap_used_bytes"]);
/** Recovery: seconds before a disturbance that set the level, and the tolerance around it. */
const BASELINE_SEC = 10;
const ERROR_RATE_TOLERANCE = 0.01;
const P95_FACTOR = 1.5;
const P95_SLACK_MS = 1;
/**
 * Seconds that must stay within the level (each second's error rate, and their p95 together)
 * for the first of them to count as recovered.
 */
const RECOVERY_HOLD = 3;

const round = (n: number, digits = 3) => Math.round(n * 10 ** digits) / 10 ** digits;

function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Value at a 1-based, possibly fractional, rank of an ascending array, clamped to its ends. */
function atRank(sorted: ArrayLike<number>, rank: number): number {
  const i = Math.min(sorted.length - 1, Math.max(0, rank - 1));
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (i - lo);
}

/** The standard normal quantile for a two-sided 95 % interval. */
const Z_975 = 1.959963984540054;

/**
 * Theil–Sen slope (the median of the slopes of all pairs with distinct x) and Sen's 95 %
 * confidence interval from the variance of Kendall's S, with the correction for tied y values:
 * C = z·√Var(S), M1 = (N − C)/2, M2 = (N + C)/2, the limits being the M1-th and (M2+1)-th of
 * the N ordered slopes (Sen 1968; Gilbert 1987, §16.5).
 */
export function theilSen(
  xs: readonly number[],
  ys: readonly number[],
): { slope: number; low: number; high: number; n: number } | null {
  const n = Math.min(xs.length, ys.length);
  // A typed array sorts numerically without a comparator: several times faster on 80,000 slopes.
  const all = new Float64Array((n * (n - 1)) / 2);
  let N = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = xs[j]! - xs[i]!;
      if (dx !== 0) all[N++] = (ys[j]! - ys[i]!) / dx;
    }
  }
  if (N === 0) return null;
  const slopes = all.subarray(0, N).sort();
  const ties = new Map<number, number>();
  for (let i = 0; i < n; i++) ties.set(ys[i]!, (ties.get(ys[i]!) ?? 0) + 1);
  let tieTerm = 0;
  for (const t of ties.values()) if (t > 1) tieTerm += t * (t - 1) * (2 * t + 5);
  const varS = (n * (n - 1) * (2 * n + 5) - tieTerm) / 18;
  const c = Z_975 * Math.sqrt(Math.max(0, varS));
  return {
    slope: atRank(slopes, (N + 1) / 2),
    low: atRank(slopes, (N - c) / 2),
    high: atRank(slopes, (N + c) / 2 + 1),
    n,
  };
}

/** Up to `max` points: the medians of time and value in equal-time bins (robust, deterministic). */
export function reducePoints(
  points: ReadonlyArray<[number, number]>,
  max = MAX_FIT_POINTS,
): Array<[number, number]> {
  if (points.length <= max) return points.map((p) => [p[0], p[1]]);
  const t0 = points[0]![0];
  const span = points[points.length - 1]![0] - t0 || 1;
  const bins: Array<Array<[number, number]>> = Array.from({ length: max }, () => []);
  for (const p of points) bins[Math.min(max - 1, Math.floor(((p[0] - t0) / span) * max))]!.push(p);
  return bins
    .filter((b) => b.length > 0)
    .map((b) => [median(b.map((p) => p[0])), median(b.map((p) => p[1]))] as [number, number]);
}

function levelKey(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** Each row's load level per the basis; NaN where the level is unknown (after the stages). */
function levels(inp: SoakInput): number[] {
  return inp.series.map((r) => {
    switch (inp.basis) {
      case "users":
        return r.users;
      case "stages":
        return levelKey(stageLevel(inp.stages ?? [], Math.max(0, r.t - 0.5)) ?? Number.NaN);
      case "rate":
        return inp.rate ?? 1;
      default:
        return 1;
    }
  });
}

/**
 * The steady part: the plateau is the load level held for the most seconds (ties: the higher);
 * it starts with the second after the one in which the level first reached the plateau (that
 * second is still part ramp) and ends with the last second at or above it, the run's final,
 * usually cut-short second left out.
 */
function steadyPart(
  inp: SoakInput,
  lv: readonly number[],
): { from: number; to: number; plateau: number } | null {
  const counts = new Map<number, number>();
  for (const l of lv) if (l > 0) counts.set(l, (counts.get(l) ?? 0) + 1);
  let plateau = Number.NaN;
  let best = 0;
  for (const [l, c] of counts) {
    if (c > best || (c === best && l > plateau)) {
      plateau = l;
      best = c;
    }
  }
  if (best === 0) return null;
  const first = lv.findIndex((l) => l >= plateau);
  let last = lv.length - 1;
  while (last >= 0 && !(lv[last]! >= plateau)) last--;
  if (last === inp.series.length - 1) last--;
  const from = first + 1;
  if (last < from) return null;
  return { from, to: last, plateau };
}

function windowOf(inp: SoakInput, rows: readonly SeriesRow[], from: number, to: number): SoakWindow {
  const start = from > 0 ? rows[from - 1]!.t : Math.max(0, rows[from]!.t - 1);
  let requests = 0;
  for (let i = from; i <= to; i++) requests += rows[i]!.requests;
  const sec = to - from + 1;
  const sp = inp.span?.(rows[from]!.t, rows[to]!.t) ?? null;
  return {
    fromSec: round(start, 1),
    toSec: round(rows[to]!.t, 1),
    requests,
    rps: round(requests / sec),
    p95Ms: sp ? percentileMs(sp.histogram, 95, sp.minUs, sp.maxUs) : null,
  };
}

const changePct = (a: number | null, b: number | null) =>
  a === null || b === null || a <= 0 ? null : round(((b - a) / a) * 100, 2);

interface Disturbance {
  t: number;
  measuredFrom: number;
  cause: SoakRecovery["cause"];
  count?: number;
  from?: number;
  to?: number;
}

/** Steps up in the stages (a zero-length stage to a higher level); a spike when a later jump comes back down. */
function stageSteps(stages: readonly Stage[]): Disturbance[] {
  const out: Disturbance[] = [];
  let at = 0;
  let level = 0;
  let open: Disturbance | undefined;
  for (const s of stages) {
    if (s.durationSec === 0 && s.target !== level) {
      if (s.target > level && level > 0) {
        open = { t: at, measuredFrom: at, cause: "step", from: level, to: s.target };
        out.push(open);
      } else if (s.target < level && open && s.target <= open.from!) {
        open.cause = "spike";
        open.measuredFrom = at;
        open = undefined;
      }
    }
    at += s.durationSec;
    level = s.target;
  }
  return out;
}

/** A span's latencies only when the history still holds those seconds one by one (not merged). */
function exactSpan(inp: SoakInput, fromT: number, toT: number): MergedSpan | null {
  const sp = inp.span?.(fromT, toT) ?? null;
  return sp && sp.fromT >= fromT && sp.toT <= toT ? sp : null;
}

function recoveryOf(inp: SoakInput, d: Disturbance): SoakRecovery {
  const rows = inp.series;
  const before = rows.filter((r) => r.t <= d.t && r.requests > 0).slice(-BASELINE_SEC);
  const req = before.reduce((n, r) => n + r.requests, 0);
  const errorRate = req > 0 ? before.reduce((n, r) => n + r.failures, 0) / req : 0;
  let p95Ms: number | null = null;
  if (before.length > 0) {
    const sp = exactSpan(inp, before[0]!.t, before[before.length - 1]!.t);
    p95Ms = sp ? percentileMs(sp.histogram, 95, sp.minUs, sp.maxUs) : median(before.map((r) => r.p95));
  }
  const p95Ok = (r: SeriesRow) => p95Ms === null || r.p95 <= p95Ms * P95_FACTOR + P95_SLACK_MS;
  const errOk = (r: SeriesRow) => r.failures / r.requests <= errorRate + ERROR_RATE_TOLERANCE;
  // Rows from the one the measurement starts in.
  const start = rows.findIndex((r) => r.t > d.measuredFrom);
  let recoverySec: number | null = null;
  if (start >= 0) {
    for (let i = start; i < rows.length; i++) {
      const hold = rows.slice(i, i + RECOVERY_HOLD);
      if (!hold.every((r) => r.requests > 0 && errOk(r))) continue;
      // The p95 over the held seconds together: a second's p95 of a dozen requests is one slow
      // request, not a verdict.
      const sp = p95Ms === null ? null : exactSpan(inp, hold[0]!.t, hold[hold.length - 1]!.t);
      const heldP95 = sp ? percentileMs(sp.histogram, 95, sp.minUs, sp.maxUs) : null;
      if (heldP95 !== null ? heldP95 > p95Ms! * P95_FACTOR + P95_SLACK_MS : !hold.every(p95Ok)) continue;
      let moment = d.measuredFrom;
      if (i > start) {
        // The last bad second: the level came back within it. When only its failures made it
        // bad, arrivals spread evenly through it put the moment after its share of failures.
        const p = rows[i - 1]!;
        const pStart = i >= 2 ? rows[i - 2]!.t : p.t - 1;
        moment = p.requests > 0 && p95Ok(p) ? pStart + (p.failures / p.requests) * (p.t - pStart) : p.t;
      }
      recoverySec = round(Math.max(0, moment - d.measuredFrom), 1);
      break;
    }
  }
  return {
    t: round(d.t, 1),
    cause: d.cause,
    ...(d.count !== undefined ? { count: d.count } : {}),
    ...(d.from !== undefined ? { from: d.from, to: d.to } : {}),
    measuredFrom: round(d.measuredFrom, 1),
    baseline: { errorRate: round(errorRate, 6), p95Ms },
    recoverySec,
  };
}

/**
 * Whether a heap series fell at least once (by 1 %) between readings: a garbage collection ran.
 * Until one does, a heap grows with garbage whether the program leaks or not.
 */
function collected(points: ReadonlyArray<[number, number]>): boolean {
  for (let i = 1; i < points.length; i++) if (points[i]![1] < points[i - 1]![1] * 0.99) return true;
  return false;
}

function leakOf(s: ResourceSeries, from: number, to: number): SoakLeak | null {
  const inWindow = s.points.filter((p) => p[0] > from && p[0] <= to);
  const pts = reducePoints(inWindow);
  if (pts.length < MIN_FIT_POINTS) return null;
  const fit = theilSen(
    pts.map((p) => p[0]),
    pts.map((p) => p[1]),
  );
  if (!fit) return null;
  const span = pts[pts.length - 1]![0] - pts[0]![0];
  const med = median(pts.map((p) => p[1]));
  const growth = fit.slope * span;
  const growthPct = med > 0 ? (growth / med) * 100 : null;
  const material =
    growthPct !== null &&
    growthPct >= LEAK_MIN_GROWTH_PCT &&
    (s.unit !== "bytes" || growth >= LEAK_MIN_GROWTH_BYTES);
  return {
    kind: s.kind,
    source: s.source,
    host: s.host,
    metric: s.metric,
    unit: s.unit,
    points: pts.length,
    slopePerMin: round(fit.slope * 60),
    lowPerMin: round(fit.low * 60),
    highPerMin: round(fit.high * 60),
    median: round(med),
    growth: round(growth),
    growthPct: growthPct === null ? null : round(growthPct, 2),
    growing: fit.low > 0 && material && (s.metric !== "heap_used_bytes" || collected(inWindow)),
  };
}

/** Every soak verdict of a run, from its per-second rows, latency history, bursts and resources. */
export function analyseSoak(inp: SoakInput): SoakResult {
  const rows = inp.series;
  const notes: string[] = [];
  const lv = levels(inp);
  const part = rows.length >= 3 ? steadyPart(inp, lv) : null;
  let steady: SoakSteady | null = null;
  if (part) {
    steady = {
      fromSec: round(rows[part.from - 1]!.t, 1),
      toSec: round(rows[part.to]!.t, 1),
      seconds: part.to - part.from + 1,
      basis: inp.basis,
      level: inp.basis === "run" ? null : part.plateau,
    };
  } else notes.push("no steady part: the load never held a level for a full second before it ended");

  let degradation: SoakDegradation | null = null;
  if (part && steady) {
    if (steady.seconds < MIN_DEGRADATION_SECONDS) {
      notes.push(
        `the steady part is too short (${steady.seconds} s) for degradation; it takes ${MIN_DEGRADATION_SECONDS} s`,
      );
    } else {
      const w = Math.min(MAX_WINDOW_SEC, Math.floor(steady.seconds / 4));
      const first = windowOf(inp, rows, part.from, part.from + w - 1);
      const last = windowOf(inp, rows, part.to - w + 1, part.to);
      degradation = {
        windowSec: w,
        first,
        last,
        p95ChangePct: changePct(first.p95Ms, last.p95Ms),
        rpsChangePct: changePct(first.rps, last.rps),
      };
    }
  }

  const disturbances: Disturbance[] = [
    ...inp.bursts.map((b) => ({ t: b.t, measuredFrom: b.t, cause: "burst" as const, count: b.count })),
    ...(inp.stages ? stageSteps(inp.stages) : []),
  ].sort((a, b) => a.t - b.t);
  const recovery = disturbances
    .filter((d) => d.t < (rows[rows.length - 1]?.t ?? 0))
    .map((d) => recoveryOf(inp, d));
  const recovered = recovery.filter((r) => r.recoverySec !== null).map((r) => r.recoverySec!);

  let stability: SoakStability | null = null;
  if (part && steady) {
    // Seconds off the plateau (a spike) or inside a burst's disturbance are not the steady rate.
    const disturbed = (t: number) =>
      recovery.some(
        (r) =>
          t > r.t &&
          t <= (r.recoverySec === null ? Number.POSITIVE_INFINITY : r.measuredFrom + r.recoverySec + 1),
      );
    const rps: number[] = [];
    for (let i = part.from; i <= part.to; i++) {
      if (lv[i] !== part.plateau || disturbed(rows[i]!.t)) continue;
      rps.push(rows[i]!.rps);
    }
    if (rps.length < MIN_STABILITY_SECONDS) {
      notes.push(`too few steady seconds (${rps.length}) for stability; it takes ${MIN_STABILITY_SECONDS}`);
    } else {
      const mean = rps.reduce((a, b) => a + b, 0) / rps.length;
      const sd = Math.sqrt(rps.reduce((a, b) => a + (b - mean) ** 2, 0) / (rps.length - 1));
      stability = {
        seconds: rps.length,
        rpsMean: round(mean),
        rpsStdev: round(sd),
        rpsCv: mean > 0 ? round(sd / mean, 4) : null,
      };
    }
  }

  const from = steady ? steady.fromSec : Number.NEGATIVE_INFINITY;
  const to = steady ? steady.toSec : Number.POSITIVE_INFINITY;
  const leaks: SoakLeak[] = [];
  for (const s of inp.resources) {
    if (!LEAK_METRICS.has(s.metric)) continue;
    const l = leakOf(s, from, to);
    if (l) leaks.push(l);
    else
      notes.push(
        `${s.kind} ${s.source} ${s.metric}: fewer than ${MIN_FIT_POINTS} points in the steady part to fit`,
      );
  }

  return {
    steady,
    degradation,
    stability,
    leaks,
    recovery,
    worstRecoverySec: recovered.length > 0 ? Math.max(...recovered) : null,
    unrecovered: recovery.length - recovered.length,
    notes,
  };
}

/** The soak verdicts of a run, finished or still going; undefined before its books exist. */
export function soakOf(run: Run): SoakResult | undefined {
  const s = run.stats;
  if (!s) return undefined;
  const plan = run.plan;
  // A load shape (or scenarios) may switch between users and rates: the whole run it is.
  let basis: SoakSteady["basis"] = "run";
  if (plan && plan.shape === null) {
    if (plan.rate === null) basis = "users";
    else basis = plan.stages ? "stages" : "rate";
  }
  return analyseSoak({
    // Warm-up and cool-down seconds are not part of any verdict.
    series: s.series.filter((r) => r.window === undefined),
    span: (a, b) => s.history.span(a, b),
    basis,
    rate: plan?.rate ?? null,
    stages: plan?.stages ?? null,
    bursts: run.bursts,
    resources: s.resources.series(run.statsStartedAt),
  });
}

/** One line of the soak verdicts as the summary and the report word them. */
export interface SoakLine {
  label: "steady" | "degradation" | "stability" | "recovery" | "memory";
  text: string;
  /** Worth a look: a grown p95, a fallen rate, an unrecovered disturbance, a growing series. */
  flagged: boolean;
}

const ms = (v: number | null) => (v === null ? "-" : `${v.toFixed(2)} ms`);

function levelText(s: SoakSteady): string {
  if (s.level === null) return "; a load shape or scenarios: the whole run";
  return ` at ${s.basis === "users" ? `${s.level} users` : `${s.level} arrivals/s`}`;
}

function disturbanceText(r: SoakRecovery): string {
  if (r.cause === "burst") return `burst of ${r.count} at ${r.t} s`;
  if (r.cause === "spike") return `spike ${r.from}→${r.to} at ${r.t} s (ended ${r.measuredFrom} s)`;
  return `step ${r.from}→${r.to} at ${r.t} s`;
}

/** Whether the verdicts have anything to say beyond the steady part (a short run has not). */
export function soakWorthShowing(s: SoakResult): boolean {
  return s.degradation !== null || s.recovery.length > 0 || s.leaks.length > 0;
}

/** Each scenario's soak verdicts worth a look, for the summary and the report; none: left out. */
export function scenarioSoakFlags(
  scenarios: ReadonlyArray<{ name: string; soak?: SoakResult }> | undefined,
): Array<{ name: string; lines: SoakLine[] }> {
  return (scenarios ?? []).flatMap((x) => {
    const lines = x.soak ? soakLines(x.soak).filter((l) => l.flagged) : [];
    return lines.length > 0 ? [{ name: x.name, lines }] : [];
  });
}

/** The soak verdicts in words, one line per finding (summary, HTML report). */
export function soakLines(s: SoakResult): SoakLine[] {
  const out: SoakLine[] = [];
  if (s.steady) {
    out.push({
      label: "steady",
      text: `${s.steady.fromSec}–${s.steady.toSec} s (${s.steady.seconds} s${levelText(s.steady)})`,
      flagged: false,
    });
  }
  const d = s.degradation;
  if (d) {
    const p = d.p95ChangePct === null ? "" : ` (${formatChange(d.p95ChangePct)})`;
    const r = d.rpsChangePct === null ? "" : ` (${formatChange(d.rpsChangePct)})`;
    out.push({
      label: "degradation",
      text: `p95 ${ms(d.first.p95Ms)} → ${ms(d.last.p95Ms)}${p}, RPS ${d.first.rps.toFixed(1)} → ${d.last.rps.toFixed(1)}${r}; first vs last ${d.windowSec} s of the steady part`,
      flagged: (d.p95ChangePct ?? 0) >= 10 || (d.rpsChangePct ?? 0) <= -10,
    });
  }
  if (s.stability && s.stability.rpsCv !== null) {
    out.push({
      label: "stability",
      text: `RPS varies by ${(s.stability.rpsCv * 100).toFixed(1)}% (cv ${s.stability.rpsCv.toFixed(3)}; mean ${s.stability.rpsMean.toFixed(1)}/s, sd ${s.stability.rpsStdev.toFixed(1)} over ${s.stability.seconds} s)`,
      flagged: s.stability.rpsCv >= 0.1,
    });
  }
  for (const r of s.recovery) {
    out.push({
      label: "recovery",
      text: `${disturbanceText(r)}: ${r.recoverySec === null ? "not recovered by the end of the run" : `recovered after ${r.recoverySec} s`}`,
      flagged: r.recoverySec === null || r.recoverySec >= 5,
    });
  }
  for (const l of s.leaks) {
    const unit = (v: number) => (l.unit === "bytes" ? formatBytes(v) : v.toFixed(2));
    const sign = (v: number) => (v > 0 ? "+" : v < 0 ? "-" : "");
    out.push({
      label: "memory",
      text: `${l.kind} ${l.source} ${l.metric}: ${sign(l.slopePerMin)}${unit(Math.abs(l.slopePerMin))}/min (95% CI ${unit(l.lowPerMin)} to ${unit(l.highPerMin)}), ${l.growthPct === null ? "" : `${formatChange(l.growthPct)} `}over the steady part${l.growing ? ": growing steadily" : ""}`,
      flagged: l.growing,
    });
  }
  return out;
}
