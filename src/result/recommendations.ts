// Findings: plain-language advice read off a finished result.
import { formatBytes, formatMetric } from "./format.js";
import type { Recommendation, RunResult } from "./result.js";

export type { Recommendation };

/** Spearman's rank correlation of two equally long series (ties get their mean rank). */
export function spearman(xs: readonly number[], ys: readonly number[]): number {
  const rank = (v: readonly number[]) => {
    const idx = v.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < idx.length; ) {
      let j = i;
      while (j + 1 < idx.length && idx[j + 1]![0] === idx[i]![0]) j++;
      for (let k = i; k <= j; k++) r[idx[k]![1]] = (i + j) / 2 + 1;
      i = j + 1;
    }
    return r;
  };
  const rx = rank(xs);
  const ry = rank(ys);
  const n = xs.length;
  const mean = (n + 1) / 2;
  let num = 0;
  let dx = 0;
  let dy = 0;
  for (let i = 0; i < n; i++) {
    num += (rx[i]! - mean) * (ry[i]! - mean);
    dx += (rx[i]! - mean) ** 2;
    dy += (ry[i]! - mean) ** 2;
  }
  return dx === 0 || dy === 0 ? 0 : num / Math.sqrt(dx * dy);
}

const median = (v: readonly number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Minimum seconds with requests before a trend is judged; fewer is noise. */
const TREND_MIN_POINTS = 20;

/**
 * Latency that grew steadily: the per-second medians rank-correlate with time (ρ ≥ 0.6) and the
 * median of the last third is at least 25 % above that of the first third.
 */
export function latencyTrend(
  rows: ReadonlyArray<{ t: number; p50: number; requests: number }>,
): { from: number; to: number; rho: number } | null {
  const pts = rows.filter((r) => r.requests > 0);
  if (pts.length < TREND_MIN_POINTS) return null;
  const rho = spearman(
    pts.map((r) => r.t),
    pts.map((r) => r.p50),
  );
  const third = Math.floor(pts.length / 3);
  const from = median(pts.slice(0, third).map((r) => r.p50));
  const to = median(pts.slice(-third).map((r) => r.p50));
  if (rho >= 0.6 && to >= from * 1.25 && to - from >= 1) return { from, to, rho };
  return null;
}

const pct = (n: number, d: number) => `${((100 * n) / Math.max(1, d)).toFixed(1)}%`;

/** Plain-language findings from a finished run, most pressing first. */
export function recommend(r: RunResult): Recommendation[] {
  const out: Recommendation[] = [];
  for (const t of r.thresholds ?? []) {
    if (t.passed) continue;
    const who = t.scope === "all" ? "The run as a whole" : t.scope;
    const measured = t.value === null ? (t.note ?? "nothing was measured") : formatMetric(t.metric, t.value);
    out.push({
      kind: "threshold",
      ...(t.scope === "all" ? {} : { subject: t.scope }),
      message: `${who} missed its target: ${t.metric} ${t.op} ${formatMetric(t.metric, t.target)} was wanted, measured ${measured}.`,
    });
  }

  for (const row of r.comparison?.rows ?? []) {
    if (row.verdict !== "regression") continue;
    out.push({
      kind: "regression",
      subject: row.endpoint,
      message: `${row.endpoint} ${row.metric} regressed against the baseline: ${row.baseline} → ${row.current}${
        row.deltaPct === null ? "" : ` (${row.deltaPct > 0 ? "+" : ""}${row.deltaPct.toFixed(1)}%)`
      }${row.note ? `; ${row.note}` : ""}.`,
    });
  }

  // Error hot spots: endpoints by failures, with their main causes.
  const failing = r.endpoints.filter((e) => e.failures > 0).sort((a, b) => b.failures - a.failures);
  for (const e of failing.slice(0, 5)) {
    const label = `${e.method} ${e.name}`.trim();
    const causes = r.failures
      .filter((f) => f.method === e.method && f.name === e.name)
      .sort((a, b) => b.occurrences - a.occurrences)
      .slice(0, 3)
      .map((f) => `${f.error} ×${f.occurrences}`);
    out.push({
      kind: "errors",
      subject: label,
      message: `${label} failed ${pct(e.failures, e.requests)} of its requests (${e.failures} of ${e.requests})${
        causes.length > 0 ? `: ${causes.join(", ")}` : ""
      }.`,
    });
  }
  if (failing.length > 5) {
    out.push({
      kind: "errors",
      message: `${failing.length - 5} more endpoint(s) had failures; see the failures table.`,
    });
  }

  if ((r.warnings ?? []).some((w) => w.kind === "cpu")) {
    out.push({
      kind: "generator",
      message:
        "The load generator ran out of CPU during the run, so the latencies include time spent waiting inside Cicada. " +
        "Use more --processes, fewer users per machine, or more machines, and run again.",
    });
  }

  for (const e of r.endpoints) {
    const tr = latencyTrend(e.series ?? []);
    if (!tr) continue;
    const label = `${e.method} ${e.name}`.trim();
    out.push({
      kind: "trend",
      subject: label,
      message: `${label} got steadily slower during the run: its median rose from ${tr.from.toFixed(1)} ms in the first third to ${tr.to.toFixed(1)} ms in the last (rank correlation with time ${tr.rho.toFixed(2)}). Look for a leak, a growing queue or table, or a cache that stopped working.`,
    });
  }
  out.push(...soakFindings(r));
  return out;
}

/**
 * Where a soak verdict becomes a finding (docs/soak.md). A window's p95 needs requests enough to
 * rest on more than its slowest few, and a rate's variation must exceed what counting alone
 * gives (a Poisson count of mean m varies by 1/√m): below that, a finding would be noise.
 */
export const SOAK_FINDING = {
  degradationPct: 10,
  rpsDropPct: 10,
  minWindowRequests: 100,
  recoverySec: 5,
  rpsCv: 0.1,
  cvOverCounting: 2,
} as const;

/** Degradation, leaks, slow recoveries and an unstable rate, in plain words. */
function soakFindings(r: RunResult): Recommendation[] {
  const s = r.soak;
  if (!s) return [];
  const out: Recommendation[] = [];
  const d =
    s.degradation &&
    Math.min(s.degradation.first.requests, s.degradation.last.requests) >= SOAK_FINDING.minWindowRequests
      ? s.degradation
      : null;
  if (d?.p95ChangePct != null && d.p95ChangePct >= SOAK_FINDING.degradationPct) {
    out.push({
      kind: "soak",
      message: `The target degraded under sustained load: its p95 grew by ${d.p95ChangePct.toFixed(1)}% from the first to the last ${d.windowSec} s of the steady part (${d.first.p95Ms} → ${d.last.p95Ms} ms). Look for a growing queue, table or cache, a leak, or a resource running out.`,
    });
  }
  if (d?.rpsChangePct != null && d.rpsChangePct <= -SOAK_FINDING.rpsDropPct) {
    out.push({
      kind: "soak",
      message: `Throughput fell by ${(-d.rpsChangePct).toFixed(1)}% from the first to the last ${d.windowSec} s of the steady part (${d.first.rps.toFixed(1)} → ${d.last.rps.toFixed(1)} requests/s) at the same load.`,
    });
  }
  for (const l of s.leaks) {
    if (!l.growing) continue;
    const rate = l.unit === "bytes" ? `${formatBytes(l.slopePerMin)}/min` : `${l.slopePerMin}/min`;
    const ci =
      l.unit === "bytes"
        ? `${formatBytes(l.lowPerMin)} to ${formatBytes(l.highPerMin)}`
        : `${l.lowPerMin} to ${l.highPerMin}`;
    const who =
      l.kind === "target"
        ? `The target's memory (${l.source}, ${l.metric})`
        : `Cicada's own memory (${l.source}, ${l.metric})`;
    const hint =
      l.kind === "target"
        ? "Run longer to confirm, then look for a leak: caches without bounds, listeners or timers never removed, sessions kept."
        : "The loadfile may keep something per request or per user (a growing array or map).";
    out.push({
      kind: "soak",
      subject: l.source,
      message: `${who} grew steadily during the steady part: ${rate} (95% interval ${ci}), ${l.growthPct === null ? "" : `+${l.growthPct.toFixed(1)}% `}in all. ${hint}`,
    });
  }
  for (const x of s.recovery) {
    const what =
      x.cause === "burst"
        ? `the burst of ${x.count} arrivals at ${x.t} s`
        : x.cause === "spike"
          ? `the spike from ${x.from} to ${x.to} at ${x.t} s`
          : `the step from ${x.from} to ${x.to} at ${x.t} s`;
    if (x.recoverySec === null) {
      out.push({
        kind: "soak",
        message: `After ${what}, the target never got back to its error rate and p95 of before (${(x.baseline.errorRate * 100).toFixed(1)}% errors, p95 ${x.baseline.p95Ms ?? "-"} ms) before the run ended.`,
      });
    } else if (x.recoverySec >= SOAK_FINDING.recoverySec) {
      out.push({
        kind: "soak",
        message: `After ${what}, the target took ${x.recoverySec} s to get back to its error rate and p95 of before: slow to recover from a surge.`,
      });
    }
  }
  const cv = s.stability?.rpsCv;
  const mean = s.stability?.rpsMean ?? 0;
  if (
    cv != null &&
    cv >= SOAK_FINDING.rpsCv &&
    mean > 0 &&
    cv >= SOAK_FINDING.cvOverCounting / Math.sqrt(mean)
  ) {
    out.push({
      kind: "soak",
      message: `The request rate was unstable in the steady part: it varied by ${(cv * 100).toFixed(1)}% second to second (coefficient of variation ${cv.toFixed(3)}). Stalls in the target (GC pauses, a saturated pool) or in the generator make a rate jump; see the RPS chart.`,
    });
  }
  return out;
}
