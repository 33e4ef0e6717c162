// JUnit XML for CI test reports: a run's thresholds, checks and comparison rows; a sweep's verdict and levels.
import type { RunResult } from "../result/result.js";
import type { SweepLevel, SweepResult } from "../result/sweep.js";
import { loadLabel, pct, sloText, verdictLines } from "./sweep.js";

// XML 1.0 cannot carry most control characters, even escaped; an error text may hold them.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const INVALID_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;

function esc(s: string): string {
  return s
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;")
    .replace(INVALID_XML, "");
}

interface Case {
  name: string;
  classname: string;
  failure?: { message: string; detail: string };
  skipped?: string;
  out?: string;
}

function suite(name: string, cases: Case[], timestamp: string, time: number): string {
  const failures = cases.filter((c) => c.failure).length;
  const skipped = cases.filter((c) => c.skipped !== undefined).length;
  const body = cases.map((c) => {
    const open = `    <testcase name="${esc(c.name)}" classname="${esc(c.classname)}" time="0">`;
    const inner: string[] = [];
    if (c.failure) {
      inner.push(
        `      <failure message="${esc(c.failure.message)}" type="${esc(name)}">${esc(c.failure.detail)}</failure>`,
      );
    }
    if (c.skipped !== undefined) inner.push(`      <skipped message="${esc(c.skipped)}"/>`);
    if (c.out) inner.push(`      <system-out>${esc(c.out)}</system-out>`);
    return inner.length === 0 ? `${open.slice(0, -1)}/>` : [open, ...inner, "    </testcase>"].join("\n");
  });
  return [
    `  <testsuite name="${esc(name)}" tests="${cases.length}" failures="${failures}" errors="0" skipped="${skipped}" timestamp="${esc(timestamp)}" time="${time}">`,
    ...body,
    "  </testsuite>",
  ].join("\n");
}

const fmt = (v: number | null) => (v === null ? "no value" : String(Math.round(v * 1000) / 1000));

/**
 * JUnit XML for CI systems: one suite each for thresholds, checks and the baseline comparison.
 * A threshold is a test that passes or fails; a check fails if any of its evaluations failed
 * (the pass rate is in the message); a comparison row fails on a regression and is skipped when
 * the data cannot decide.
 */
export function toJUnit(r: RunResult): string {
  const ts = r.startedAt.replace(/\.\d+Z$/, "");
  const time = r.durationSec;
  const suites: string[] = [];
  const thresholds = r.thresholds ?? [];
  suites.push(
    suite(
      "cicada.thresholds",
      thresholds.map((t) => ({
        name: t.expr,
        classname: `cicada.thresholds.${t.scope}`,
        out: `${t.metric} = ${fmt(t.value)} (target ${t.op} ${t.target})`,
        ...(t.passed
          ? {}
          : {
              failure: {
                message: `${t.expr}: measured ${fmt(t.value)}${t.note ? ` (${t.note})` : ""}`,
                detail: `scope ${t.scope}, metric ${t.metric}, target ${t.op} ${t.target}, measured ${fmt(t.value)}`,
              },
            }),
      })),
      ts,
      time,
    ),
  );
  const checks = r.checks ?? [];
  if (checks.length > 0) {
    suites.push(
      suite(
        "cicada.checks",
        checks.map((c) => {
          const passRate = `${(c.rate * 100).toFixed(2)}%`;
          return {
            name: c.name,
            classname: "cicada.checks",
            out: `${c.passes} passed, ${c.fails} failed (${passRate})`,
            ...(c.fails > 0
              ? {
                  failure: {
                    message: `${c.fails} of ${c.passes + c.fails} failed (pass rate ${passRate})`,
                    detail: `${c.passes} passed, ${c.fails} failed`,
                  },
                }
              : {}),
          };
        }),
        ts,
        time,
      ),
    );
  }
  const cmp = r.comparison;
  if (cmp) {
    suites.push(
      suite(
        "cicada.comparison",
        cmp.rows.map((row) => {
          const text = `${row.metric}: baseline ${fmt(row.baseline)}, current ${fmt(row.current)}${
            row.deltaPct === null ? "" : ` (${row.deltaPct > 0 ? "+" : ""}${row.deltaPct.toFixed(1)}%)`
          }: ${row.verdict}${row.note ? ` (${row.note})` : ""}`;
          return {
            name: `${row.endpoint} ${row.metric}`,
            classname: `cicada.comparison.${row.endpoint}`,
            out: text,
            ...(row.verdict === "regression" ? { failure: { message: text, detail: text } } : {}),
            ...(row.verdict === "inconclusive" ? { skipped: text } : {}),
          };
        }),
        ts,
        time,
      ),
    );
  }
  const tests = thresholds.length + checks.length + (cmp?.rows.length ?? 0);
  const failures =
    thresholds.filter((t) => !t.passed).length +
    checks.filter((c) => c.fails > 0).length +
    (cmp?.rows.filter((x) => x.verdict === "regression").length ?? 0);
  return document(suites, tests, failures, time);
}

function document(suites: string[], tests: number, failures: number, time: number): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="cicada" tests="${tests}" failures="${failures}" errors="0" time="${time}">`,
    ...suites,
    "</testsuites>",
    "",
  ].join("\n");
}

/**
 * What a level that ran missed of what the sweep judges levels by (its SLO or --max-p95, an error
 * rate above --max-error-rate, over-saturation, no successful request); empty when nothing.
 */
function levelFailures(l: SweepLevel, r: SweepResult): string[] {
  const why: string[] = [];
  if (l.requests === 0) why.push("completed no request");
  else if (l.failures >= l.requests) why.push(`no request succeeded (${l.failures} failed)`);
  const maxErrorRate = r.config.maxErrorRate;
  if (typeof maxErrorRate === "number" && l.requests > 0 && l.errorRate > maxErrorRate) {
    why.push(`error rate ${pct(l.errorRate)} above --max-error-rate ${pct(maxErrorRate)}`);
  }
  if (l.saturated) why.push("over-saturated: queue and latency kept climbing (--stop-on-saturation)");
  const slo = r.sweep.slo;
  if (l.sloMet === false && slo) {
    // The p95 is the figure --max-p95 bounds; the stream metrics of --slo are in the level's result.
    why.push(
      `SLO (${sloText(slo)}) missed${slo.slo === undefined ? `: p95 ${fmt(l.latencyMs.p95)} ms` : ""}`,
    );
  }
  return why;
}

function sweepVerdict(r: SweepResult): string | undefined {
  if (r.exitCode === 0) return undefined;
  const why =
    r.exitCode === 1
      ? "no level completed a successful request"
      : r.exitCode === 3 && r.sweep.slo
        ? `SLO (${sloText(r.sweep.slo)}) not met at any level`
        : r.exitCode === 130
          ? "interrupted by a signal (Ctrl-C or SIGTERM)"
          : "failed";
  return `exit code ${r.exitCode}: ${why}`;
}

/**
 * A sweep's JUnit XML. Suite cicada.sweep holds one test case, the sweep's verdict: it fails
 * exactly when the sweep's exit code is not 0. Suite cicada.sweep.levels holds one test case per
 * level, named by its number and load so that a CI's history follows a level from run to run: a
 * level that ran passes, its output giving its figures and what it missed (levels past the
 * capacity miss their SLO by design), and a level the sweep did not run is skipped.
 */
export function sweepToJUnit(r: SweepResult): string {
  const ts = r.startedAt.replace(/\.\d+Z$/, "");
  const time = r.durationSec;
  const verdict = sweepVerdict(r);
  const lines = verdictLines(r);
  const verdictCase: Case = {
    name: "verdict",
    classname: "cicada.sweep",
    out: [...lines, `Exit code ${r.exitCode}`].join("\n"),
    ...(verdict ? { failure: { message: verdict, detail: lines.join("\n") } } : {}),
  };
  const levels: Case[] = r.sweep.levels.map((l) => {
    const name = `level ${l.index + 1}: ${loadLabel(l)}`;
    const classname = "cicada.sweep.levels";
    if (l.status === "not-run") {
      return {
        name,
        classname,
        skipped: `not run: the sweep stopped early${r.sweep.stoppedBy ? ` (${r.sweep.stoppedBy})` : ""}`,
      };
    }
    const figures =
      `${l.requests} requests, ${l.failures} failed (${pct(l.errorRate)}), ${fmt(l.okRps)} successful req/s, ` +
      `p50 ${fmt(l.latencyMs.p50)} ms, p95 ${fmt(l.latencyMs.p95)} ms, p99 ${fmt(l.latencyMs.p99)} ms` +
      (l.status === "stopped" ? "; stopped before its end" : "") +
      (r.sweep.knee?.level === l.index ? "; the knee" : "");
    // What the sweep judged a level by is written, not failed: levels past the capacity miss
    // their SLO by design, and a failed case turns a CI red that the exit code left green.
    const why = levelFailures(l, r);
    return {
      name,
      classname,
      out: why.length > 0 ? `${figures}\nOver what the sweep judges by: ${why.join("; ")}` : figures,
    };
  });
  const cases = [verdictCase, ...levels];
  return document(
    [suite("cicada.sweep", [verdictCase], ts, time), suite("cicada.sweep.levels", levels, ts, time)],
    cases.length,
    cases.filter((c) => c.failure).length,
    time,
  );
}
