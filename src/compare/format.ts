import type { Comparison, ComparisonRow, MetricName } from "../result/comparison.js";

function value(metric: MetricName, v: number | null): string {
  if (v === null) return "-";
  if (metric === "rps") return `${v.toFixed(1)}/s`;
  if (metric === "error_rate") return `${(v * 100).toFixed(2)}%`;
  return `${v.toFixed(2)} ms`;
}

function delta(r: ComparisonRow): string {
  if (r.deltaPct === null) {
    // From a zero error rate any rise has no finite relative size; say which way it went.
    if (r.baseline === 0 && r.current !== null && r.current > 0) return "new";
    return "-";
  }
  return `${r.deltaPct > 0 ? "+" : ""}${r.deltaPct.toFixed(1)}%`;
}

const pct = (x: number) => `${Math.round(x * 1000) / 10}%`;

function table(header: string[], rows: string[][], right: ReadonlySet<number>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const last = header.length - 1;
  const line = (r: string[]) =>
    r
      .map((cell, i) =>
        right.has(i) ? cell.padStart(widths[i]!) : i === last ? cell : cell.padEnd(widths[i]!),
      )
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

function verdictLine(c: Comparison): string {
  if (c.verdict === "regression") {
    const hits = c.rows.filter((r) => r.verdict === "regression").map((r) => `${r.endpoint} ${r.metric}`);
    return `Verdict: REGRESSION (${hits.join(", ")})`;
  }
  if (c.verdict === "inconclusive") {
    return "Verdict: inconclusive (too few samples or too short a run to judge the aggregated latency; no regression found)";
  }
  const tol = [...new Set(Object.values(c.tolerances))];
  const tolText =
    tol.length === 1
      ? pct(tol[0]!)
      : Object.entries(c.tolerances)
          .map(([m, t]) => `${m} ${pct(t)}`)
          .join(", ");
  return `Verdict: pass (no significant change beyond the tolerance of ${tolText})`;
}

/** The comparison as a plain-text table, one row per endpoint and metric, then the verdict. */
export function formatComparison(c: Comparison): string {
  const header = ["Endpoint", "Metric", "Baseline", "Current", "Delta", "Verdict", "Note"];
  const rows: string[][] = [];
  for (let i = 0; i < c.rows.length; i++) {
    const r = c.rows[i]!;
    if (r.verdict === "missing") {
      // An endpoint on one side only gets one line, not one per metric.
      const side = r.baseline !== null ? c.baseline.label : c.current.label;
      rows.push([r.endpoint, "all", "", "", "", "missing", r.note ?? `only in ${side}`]);
      while (
        i + 1 < c.rows.length &&
        c.rows[i + 1]!.endpoint === r.endpoint &&
        c.rows[i + 1]!.verdict === "missing"
      )
        i++;
      continue;
    }
    rows.push([
      r.endpoint,
      r.metric,
      value(r.metric, r.baseline),
      value(r.metric, r.current),
      delta(r),
      r.verdict,
      r.note ?? "",
    ]);
  }
  const head = `Comparing ${c.baseline.label} (${c.baseline.startedAt}, ${c.baseline.durationSec.toFixed(1)} s) with ${c.current.label} (${c.current.startedAt}, ${c.current.durationSec.toFixed(1)} s)`;
  return `${head}\n\n${table(header, rows, new Set([2, 3, 4]))}\n\n${verdictLine(c)}\n`;
}
