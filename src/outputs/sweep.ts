// A sweep's outputs in text: the per-level table on the terminal, its verdict lines, and the CSV (one row per level).
import type { SweepLevel, SweepResult } from "../result/sweep.js";
import { csvLine } from "./csv.js";

const ms = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
/** A share as the sweep's outputs write it: "12.5%". */
export const pct = (x: number) => `${(x * 100).toFixed(1)}%`;

/** A level's load as the table shows it: "8 users", "40/s", "sync (1 user)", "max (100 users)". */
export function loadLabel(l: SweepLevel): string {
  if (l.kind === "synchronous") return "sync (1 user)";
  if (l.kind === "throughput") return `max (${l.load} users)`;
  return l.model === "closed" ? `${l.load} user${l.load === 1 ? "" : "s"}` : `${l.load}/s`;
}

/** Numbers for a level that did not run: dashes. */
function cells(l: SweepLevel, withGoodput: boolean, withTtft: boolean, withTpot: boolean): string[] {
  const head = [String(l.index + 1), loadLabel(l)];
  if (l.status === "not-run") {
    const n = 7 + (withGoodput ? 1 : 0) + (withTtft ? 2 : 0) + (withTpot ? 2 : 0);
    return [...head, ...Array.from({ length: n - 1 }, () => "-"), "not run"];
  }
  const note = [
    ...(l.status === "stopped" ? ["stopped"] : []),
    ...(l.saturated ? ["saturated"] : []),
    ...(l.sloMet === true ? ["SLO ok"] : l.sloMet === false ? ["SLO missed"] : []),
  ].join(", ");
  return [
    ...head,
    String(l.requests),
    pct(l.successRate),
    ms(l.latencyMs.p50),
    ms(l.latencyMs.p95),
    ms(l.latencyMs.p99),
    l.rps.toFixed(1),
    ...(withGoodput ? [l.goodput?.perSec !== undefined ? l.goodput.perSec.toFixed(1) : "-"] : []),
    ...(withTtft ? [l.ttftMs ? ms(l.ttftMs.p50) : "-", l.ttftMs ? ms(l.ttftMs.p95) : "-"] : []),
    ...(withTpot ? [l.tpotMs ? ms(l.tpotMs.p50) : "-", l.tpotMs ? ms(l.tpotMs.p95) : "-"] : []),
    note,
  ];
}

/** The seed table: per level success rate, p50/p95/p99, RPS, goodput and TTFT/TPOT when measured; then the knee. */
export function formatSweep(r: SweepResult): string {
  const levels = r.sweep.levels;
  const withGoodput = levels.some((l) => l.goodput?.perSec !== undefined);
  const withTtft = levels.some((l) => l.ttftMs);
  const withTpot = levels.some((l) => l.tpotMs);
  const header = [
    "#",
    "Load",
    "Reqs",
    "Success",
    "p50",
    "p95",
    "p99",
    "RPS",
    ...(withGoodput ? ["Goodput/s"] : []),
    ...(withTtft ? ["TTFT p50", "TTFT p95"] : []),
    ...(withTpot ? ["TPOT p50", "TPOT p95"] : []),
    "",
  ];
  const rows = levels.map((l) => cells(l, withGoodput, withTtft, withTpot));
  // The notes column only when some level has a note.
  if (rows.every((x) => x[x.length - 1] === "")) {
    header.pop();
    for (const x of rows) x.pop();
  }
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((x) => x[i]!.length)));
  const line = (x: string[]) =>
    x
      .map((c, i) =>
        i === 1 || (i === x.length - 1 && i > 7) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!),
      )
      .join("  ")
      .trimEnd();
  const out = [
    "",
    `Cicada ${r.version} sweep: ${levels.filter((l) => l.status !== "not-run").length} of ${levels.length} levels run, ${r.durationSec.toFixed(1)}s${r.sweep.stoppedBy ? `, stopped early by ${r.sweep.stoppedBy}` : ""}`,
    "Response times in ms",
    "",
    line(header),
    widths.map((w) => "-".repeat(w)).join("  "),
    ...rows.map(line),
    "",
    ...verdictLines(r),
  ];
  return `${out.join("\n")}\n`;
}

/** The SLO a sweep judged its levels by, as given: "ttft<500ms, p95<200ms". */
export function sloText(slo: NonNullable<SweepResult["sweep"]["slo"]>): string {
  return [slo.slo, slo.maxP95Ms !== undefined ? `p95<${slo.maxP95Ms}ms` : undefined]
    .filter(Boolean)
    .join(", ");
}

/** The knee, the capacity and the SLO maximum in words. */
export function verdictLines(r: SweepResult): string[] {
  const { knee, capacity, slo, levels } = r.sweep;
  const label = (i: number) => loadLabel(levels[i]!);
  const out: string[] = [];
  if (knee) {
    out.push(
      `Knee: level ${knee.level + 1} (${label(knee.level)}): ${knee.rps.toFixed(1)} successful req/s at p95 ${ms(knee.p95Ms)} ms; ` +
        `level ${knee.confirmedBy.level + 1} shows ${knee.confirmedBy.by === "p95" ? "a significant p95 rise" : "more errors"} (${knee.method})`,
    );
  } else {
    out.push(
      "Knee: not found within these levels (throughput kept rising and p95 did not rise significantly)",
    );
  }
  if (capacity) {
    out.push(
      capacity.from === "knee"
        ? `Capacity estimate: ${capacity.rps.toFixed(1)} req/s (${label(capacity.level)})`
        : `Capacity estimate: at least ${capacity.rps.toFixed(1)} req/s (the most measured, at ${label(capacity.level)}; no knee)`,
    );
  } else {
    out.push("Capacity estimate: none (no level measured anything)");
  }
  if (slo) {
    const what = sloText(slo);
    out.push(
      slo.max
        ? `SLO (${what}) met up to ${slo.max.rps.toFixed(1)} req/s (${label(slo.max.level)})`
        : `SLO (${what}) not met at any level`,
    );
  }
  return out;
}

export const SWEEP_CSV_HEADER = [
  "Level",
  "Kind",
  "Model",
  "Load",
  "Status",
  "Duration (s)",
  "Requests",
  "Failures",
  "Success Rate",
  "RPS",
  "Successful RPS",
  "p50 (ms)",
  "p95 (ms)",
  "p99 (ms)",
  "Goodput/s",
  "SLO Attainment",
  "TTFT p50 (ms)",
  "TTFT p95 (ms)",
  "TPOT p50 (ms)",
  "TPOT p95 (ms)",
  "SLO Met",
  "Saturated",
  "Knee",
];

/** One row per level; empty cells where a figure was not measured. */
export function sweepCsv(r: SweepResult): string {
  const opt = (v: number | undefined) => (v === undefined ? "" : v);
  const rows = r.sweep.levels.map((l) =>
    csvLine([
      l.index + 1,
      l.kind,
      l.model,
      l.load,
      l.status,
      l.durationSec,
      l.requests,
      l.failures,
      l.successRate,
      l.rps,
      l.okRps,
      l.latencyMs.p50,
      l.latencyMs.p95,
      l.latencyMs.p99,
      opt(l.goodput?.perSec),
      opt(l.goodput?.attainment),
      opt(l.ttftMs?.p50),
      opt(l.ttftMs?.p95),
      opt(l.tpotMs?.p50),
      opt(l.tpotMs?.p95),
      l.sloMet === undefined ? "" : String(l.sloMet),
      l.saturated ? "true" : "",
      r.sweep.knee?.level === l.index ? "knee" : "",
    ]),
  );
  return [csvLine(SWEEP_CSV_HEADER), ...rows].join("");
}
