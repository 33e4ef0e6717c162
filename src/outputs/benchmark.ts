// The benchmark table, laid out like pytest-benchmark's: one row per benchmark, one time unit.
import type { BenchmarkResult } from "../result/result.js";

/** The unit that shows the fastest minimum with digits before the point, as pytest-benchmark picks it. */
function timeUnit(minMs: number): { label: string; factor: number } {
  if (minMs < 0.001) return { label: "ns", factor: 1e6 };
  if (minMs < 1) return { label: "us", factor: 1e3 };
  if (minMs < 1000) return { label: "ms", factor: 1 };
  return { label: "s", factor: 1e-3 };
}

function opsUnit(maxOps: number): { label: string; factor: number } {
  if (maxOps >= 1e6) return { label: "OPS (Mops/s)", factor: 1e-6 };
  if (maxOps >= 1e3) return { label: "OPS (Kops/s)", factor: 1e-3 };
  return { label: "OPS", factor: 1 };
}

/** The table of `cicada bench` and `benchmark()`, with pytest-benchmark's legend. */
export function formatBenchmarks(rows: readonly BenchmarkResult[]): string {
  if (rows.length === 0) return "No benchmark ran.\n";
  const measured = rows.filter((r) => r.rounds > 0);
  const t = timeUnit(Math.min(...(measured.length > 0 ? measured : rows).map((r) => r.min)));
  const o = opsUnit(Math.max(...rows.map((r) => r.ops)));
  const anyFailed = rows.some((r) => r.failures > 0);
  const time = (ms: number) => (ms * t.factor).toFixed(4);
  const header = [
    `Name (time in ${t.label})`,
    "Min",
    "Max",
    "Mean",
    "StdDev",
    "Median",
    "IQR",
    "Outliers",
    o.label,
    "Rounds",
    ...(anyFailed ? ["Failures"] : []),
  ];
  const body = rows.map((r) => [
    r.name,
    time(r.min),
    time(r.max),
    time(r.mean),
    time(r.stddev),
    time(r.median),
    time(r.iqr),
    r.outliers,
    (r.ops * o.factor).toFixed(4),
    String(r.rounds),
    ...(anyFailed ? [String(r.failures)] : []),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  const rule = "-".repeat(widths.reduce((a, b) => a + b, 0) + 2 * (widths.length - 1));
  const out = [rule, line(header), rule, ...body.map(line), rule];
  const concurrent = rows.filter((r) => r.concurrency > 1);
  for (const r of concurrent) {
    out.push(
      `${r.name}: ${r.concurrency} rounds at a time, ${r.throughput.toFixed(1)} rounds/s completed (wall clock)`,
    );
  }
  out.push(
    "Legend:",
    "  Outliers: 1 Standard Deviation from Mean; 1.5 IQR (InterQuartile Range) from 1st Quartile and 3rd Quartile.",
    "  OPS: Operations Per Second, computed as 1 / Mean",
  );
  if (anyFailed) out.push("  Failures: rounds whose function threw; they are left out of the statistics");
  return `${out.join("\n")}\n`;
}
