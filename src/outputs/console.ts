// The terminal: the live status line, the end-of-run summary and its tables.

import { formatComparison } from "../compare/format.js";
import { formatMetric } from "../result/format.js";
import { type RunResult, shownBursts } from "../result/result.js";
import { scenarioSoakFlags, soakLines, soakWorthShowing } from "../result/soak.js";
import type { Run } from "../runner/run.js";
import type { StatsAggregate } from "../stats/aggregate.js";
import { formatSlo } from "../stats/slo.js";
import type { Sink } from "./sink.js";

export function formatDuration(sec: number): string {
  const s = Math.max(0, Math.round(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = String(m).padStart(h > 0 ? 2 : 1, "0");
  return h > 0 ? `${h}:${mm}:${String(r).padStart(2, "0")}` : `${mm}:${String(r).padStart(2, "0")}`;
}

function fmtMs(ms: number): string {
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)}s`;
  if (ms >= 100) return `${ms.toFixed(0)}ms`;
  return `${ms.toFixed(1)}ms`;
}

/**
 * One line describing the run's current state; used for the TTY view and plain logs alike. A run
 * with scenarios says where each scenario stands, then the run-wide figures.
 */
export function statusLine(run: Run, tty: boolean): string {
  const st = run.status();
  const { users, dropped } = run.stats;
  const load = st.load;
  let driver: string[];
  switch (load.kind) {
    case "scenarios": {
      const states = load.scenarios.map((s) =>
        s.state === "pending"
          ? `${s.name} in ${formatDuration(s.startsInSec)}`
          : s.state === "done"
            ? `${s.name} done`
            : `${s.name} ${s.rate !== null ? `${s.rate.toFixed(0)}/s` : `${s.users}u`}`,
      );
      driver = [`[${states.join(", ")}]`, `users ${users}`, ...(dropped > 0 ? [`dropped ${dropped}`] : [])];
      break;
    }
    case "stage":
      driver = [`stage ${load.stage}/${load.stages} users ${users}`];
      break;
    case "shape":
      driver = [`${load.name} users ${users}`];
      break;
    case "users":
      driver = [`users ${users}/${load.target}`];
      break;
  }
  return [
    progressText(st.elapsedSec, st.plannedSec, tty),
    ...driver,
    ...(st.rate !== null ? [`rate ${st.rate.toFixed(0)}/s`, `dropped ${dropped}`] : []),
    ...rates(run.stats),
  ].join("  ");
}

function progressText(elapsed: number, total: number | null, tty: boolean): string {
  if (total === null || total <= 0) return `${formatDuration(elapsed)} elapsed`;
  const frac = Math.min(1, elapsed / total);
  const width = 20;
  const filled = Math.round(frac * width);
  const bar = tty ? `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ` : "";
  return `${bar}${formatDuration(elapsed)}/${formatDuration(total)} (${formatDuration(total - elapsed)} left)`;
}

function rates(stats: StatsAggregate): string[] {
  const cur = stats.current();
  const t = stats.total;
  const failPct = t.count > 0 ? (100 * t.failures) / t.count : 0;
  return [
    `rps ${cur.rps.toFixed(1)}`,
    `fail ${t.failures} (${failPct.toFixed(1)}%)`,
    `p50 ${fmtMs(cur.p50)}`,
    `p95 ${fmtMs(cur.p95)}`,
    `reqs ${t.count}`,
  ];
}

/**
 * The live terminal view: one redrawn line on a TTY, a plain line every few seconds otherwise
 * (CI logs), nothing with --only-summary.
 */
export class LiveView {
  private ticks = 0;
  private drawn = false;
  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly plainEverySec = 5,
  ) {}

  get isTty(): boolean {
    return this.out.isTTY === true;
  }

  tick(line: (tty: boolean) => string): void {
    this.ticks++;
    if (this.isTty) {
      const cols = this.out.columns || 120;
      this.out.write(`\r\x1b[2K${line(true).slice(0, cols - 1)}`);
      this.drawn = true;
    } else if (this.ticks % this.plainEverySec === 0) {
      this.out.write(`${new Date().toISOString()} ${line(false)}\n`);
    }
  }

  notice(message: string): void {
    this.clear();
    this.out.write(`${message}\n`);
  }

  clear(): void {
    if (this.drawn) this.out.write("\r\x1b[2K");
    this.drawn = false;
  }
}

/** Column widths for a table: `line` pads a row (left or right per column), `sep` underlines. */
function columns(
  header: readonly string[],
  rows: readonly string[][],
  left: (col: number) => boolean,
): { line: (r: readonly string[]) => string; sep: string } {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return {
    line: (r) =>
      r.map((cell, i) => (left(i) ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  "),
    sep: widths.map((w) => "-".repeat(w)).join("  "),
  };
}

/** A table whose last row (the aggregate) is set apart. */
function table(header: string[], rows: string[][], alignLeft: number): string {
  const { line, sep } = columns(header, rows, (i) => i < alignLeft);
  return [line(header), sep, ...rows.slice(0, -1).map(line), sep, line(rows[rows.length - 1]!)].join("\n");
}

const n2 = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

/** The end-of-run summary, like Locust's: per endpoint plus an aggregated row, then failures. */
export function formatSummary(r: RunResult): string {
  const header = ["Type", "Name", "Reqs", "Fails", "Med", "p90", "p95", "p99", "Max", "Avg", "RPS"];
  const row = (
    type: string,
    name: string,
    e: Pick<RunResult["totals"], "requests" | "failures" | "rps" | "latencyMs">,
  ) => [
    type,
    name,
    String(e.requests),
    `${e.failures}(${e.requests > 0 ? ((100 * e.failures) / e.requests).toFixed(1) : "0.0"}%)`,
    n2(e.latencyMs.p50),
    n2(e.latencyMs.p90),
    n2(e.latencyMs.p95),
    n2(e.latencyMs.p99),
    n2(e.latencyMs.max),
    n2(e.latencyMs.mean),
    e.rps.toFixed(1),
  ];
  const rows = r.endpoints.map((e) => row(e.type, `${e.method} ${e.name}`.trim(), e));
  rows.push(row("", "Aggregated", r.totals));
  const out: string[] = [];
  out.push(
    `\nCicada ${r.version}: ${r.durationSec.toFixed(1)}s, peak ${r.users.peak} users, ${r.totals.iterations} iterations, stopped by ${r.stopReason}`,
  );
  const w = r.windows;
  if (w) {
    // The figures below are not the whole run: say which part they cover.
    const to = w.cooldownAtSec === null ? "the end" : `${w.cooldownAtSec}s`;
    out.push(
      `Measured from ${w.warmupSec}s to ${to} of the run: requests that completed in the ` +
        `${[...(w.warmupSec > 0 ? ["warm-up"] : []), ...(w.cooldownSec > 0 ? ["cool-down"] : [])].join(" and ")} are left out`,
    );
  }
  out.push("Response times in ms\n");
  out.push(table(header, rows, 2));
  const withMetrics = r.endpoints.filter((e) => e.metrics || e.counters);
  if (withMetrics.length > 0) {
    out.push("\nStreaming and protocol metrics (times in ms, rates per second)\n");
    const mh = ["Type", "Name", "Metric", "Count", "Med", "p90", "p95", "p99", "Max", "Avg"];
    const mrows: string[][] = [];
    for (const e of withMetrics) {
      for (const [k, m] of Object.entries(e.metrics ?? {})) {
        mrows.push([
          e.type,
          `${e.method} ${e.name}`.trim(),
          k,
          String(m.count),
          n2(m.p50),
          n2(m.p90),
          n2(m.p95),
          n2(m.p99),
          n2(m.max),
          n2(m.mean),
        ]);
      }
    }
    if (mrows.length > 0) {
      const { line, sep } = columns(mh, mrows, (i) => i < 3);
      out.push(line(mh), sep, ...mrows.map(line));
    }
    for (const e of withMetrics) {
      if (!e.counters) continue;
      const list = Object.entries(e.counters)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ");
      out.push(`${mrows.length > 0 ? "" : ""}${e.type} ${`${e.method} ${e.name}`.trim()}: ${list}`);
    }
  }
  if (r.scenarios && r.scenarios.length > 0) {
    out.push("\nScenarios (start and duration in s; response times in ms)\n");
    const sh = [
      "Scenario",
      "Model",
      "Start",
      "Dur",
      "Peak users",
      "Iters",
      "Reqs",
      "Fails",
      "Med",
      "p95",
      "p99",
      "RPS",
      "Dropped",
      "Stopped by",
    ];
    const srows = r.scenarios.map((x) => [
      x.name,
      x.model,
      x.startOffsetSec === null ? "-" : n2(x.startOffsetSec),
      x.durationSec.toFixed(1),
      String(x.users.peak),
      String(x.totals.iterations),
      String(x.totals.requests),
      String(x.totals.failures),
      n2(x.totals.latencyMs.p50),
      n2(x.totals.latencyMs.p95),
      n2(x.totals.latencyMs.p99),
      x.totals.rps.toFixed(1),
      x.totals.droppedIterations === undefined ? "-" : String(x.totals.droppedIterations),
      x.stopReason,
    ]);
    const { line, sep } = columns(sh, srows, (i) => i < 2 || i === sh.length - 1);
    out.push(line(sh).trimEnd(), sep, ...srows.map((x) => line(x).trimEnd()));
  }
  const codes = Object.entries(r.totals.statusCodes ?? {});
  if (codes.length > 1 || (codes.length === 1 && codes[0]![0] !== "200")) {
    out.push(`\nStatus codes: ${codes.map(([code, n]) => `${code} ×${n}`).join(", ")}`);
  }
  for (const b of shownBursts(r)) {
    const where = b.scenario === undefined ? "" : ` in scenario ${b.scenario}`;
    out.push(
      `\nBurst of ${b.count}${where} at ${b.t}s: ${b.recoverySec === null ? "the target had not recovered by the end of the run" : `recovered after ${b.recoverySec}s`}`,
    );
  }
  if (r.soak && soakWorthShowing(r.soak)) {
    out.push("\nSoak verdicts (! worth a look)");
    const lines = soakLines(r.soak);
    const w = Math.max(...lines.map((x) => x.label.length));
    for (const x of lines) out.push(`  ${x.flagged ? "!" : " "} ${x.label.padEnd(w)}  ${x.text}`);
  }
  // Each scenario's own verdicts (its steady part, its time): only what is worth a look, the
  // rest is in the JSON.
  for (const x of scenarioSoakFlags(r.scenarios)) {
    out.push(`\nSoak verdicts of scenario ${x.name}, worth a look (times from its start)`);
    const w = Math.max(...x.lines.map((l) => l.label.length));
    for (const l of x.lines) out.push(`  ! ${l.label.padEnd(w)}  ${l.text}`);
  }
  const corrected = r.totals.correctedLatencyMs;
  if (corrected) {
    // The open model's honest figure: time from each iteration's scheduled start.
    out.push(
      `\nOpen model: ${r.totals.droppedIterations ?? 0} dropped iterations. Latency from the scheduled start ` +
        `(corrected for coordinated omission): med ${n2(corrected.p50)}  p90 ${n2(corrected.p90)}  ` +
        `p95 ${n2(corrected.p95)}  p99 ${n2(corrected.p99)}  max ${n2(corrected.max)} ms; the table above is ` +
        "measured from the actual send.",
    );
  }
  const delay = r.totals.dispatchDelayMs;
  if (delay) {
    out.push(
      `Dispatch delay (actual minus scheduled start of ${delay.count} iterations): med ${n2(delay.p50)}  ` +
        `p95 ${n2(delay.p95)}  p99 ${n2(delay.p99)}  max ${n2(delay.max)} ms`,
    );
  }
  if (r.goodput) {
    const g = r.goodput;
    out.push(
      `\nGoodput (${formatSlo(g.slos)}): ${g.requests} of ${g.judged} streams good, ${g.perSec.toFixed(2)}/s, ` +
        `SLO attainment ${(g.attainment * 100).toFixed(2)}%, output-token goodput ${g.outputTokensPerSec.toFixed(1)} tokens/s`,
    );
  }
  if (r.totals.cancelled > 0) {
    out.push(
      `\n${r.totals.cancelled} request(s) were still in flight at the stop timeout and were cancelled (not timed).`,
    );
  }
  const notSent = r.totals.notSent ?? 0;
  if (notSent > 0) {
    out.push(
      `\n${notSent} request(s) were stopped at the stop timeout before they were sent (still connecting or waiting for a connection): the target never saw them.`,
    );
  }
  if (r.failures.length > 0) {
    out.push("\nFailures");
    const fh = ["Occurrences", "Method", "Name", "Error"];
    const frows = r.failures.map((f) => [String(f.occurrences), f.method, f.name, f.error]);
    const { line } = columns(fh, frows, () => true);
    out.push(line(fh), ...frows.map(line));
  }
  if (r.exceptions.length > 0) {
    out.push("\nExceptions in user code");
    for (const x of r.exceptions) out.push(`${String(x.count).padStart(6)}  ${x.where}: ${x.message}`);
  }
  if (r.checks && r.checks.length > 0) {
    out.push("\nChecks");
    const w = Math.max(...r.checks.map((c) => c.name.length));
    for (const c of r.checks) {
      const mark = c.fails === 0 ? "✓" : "✗";
      out.push(
        `  ${mark} ${c.name.padEnd(w)}  ${(c.rate * 100).toFixed(2).padStart(6)}%  (${c.passes} passed, ${c.fails} failed)`,
      );
    }
  }
  if (r.thresholds && r.thresholds.length > 0) {
    out.push("\nThresholds");
    const w = Math.max(...r.thresholds.map((t) => t.expr.length));
    for (const t of r.thresholds) {
      const shown = t.value === null ? (t.note ?? "no value") : formatMetric(t.metric, t.value);
      out.push(`  ${t.passed ? "✓ pass" : "✗ FAIL"}  ${t.expr.padEnd(w)}  measured ${shown}`);
    }
  }
  if (r.recommendations && r.recommendations.length > 0) {
    out.push("\nFindings");
    for (const f of r.recommendations) out.push(`  - ${f.message}`);
  }
  // Last, where it is seen: the numbers above may not mean what they seem.
  if (r.warnings?.length > 0) {
    out.push("\nWarnings");
    for (const w of r.warnings) out.push(`  ${w.message.replace(/^warning: /, "")}`);
  }
  return `${out.join("\n")}\n`;
}

/** The summary at the end of a run, and the comparison with a baseline when there is one. */
export function summarySink(out: { write(s: string): unknown }, compareLabel?: string): Sink {
  return {
    label: "the summary",
    result(r) {
      out.write(formatSummary(r));
      if (r.comparison) out.write(`\nCompared with ${compareLabel}\n${formatComparison(r.comparison)}`);
    },
  };
}
