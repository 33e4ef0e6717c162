/**
 * Sweeps: the same test at one load level after another (users, rates, or GuideLLM's automatic
 * rates), each level a TestRun of its own on the loadfile bundled once, with its warm-up left out
 * of its figures; then the knee, the capacity and the SLO maximum (src/result/sweep.ts).
 */
import { writeFileSync } from "node:fs";
import type { CicadaConfig } from "../api/config.js";
import { ExitCode, UsageError } from "../core/errors.js";
import { VERSION } from "../core/version.js";
import { renderSweepHtml } from "../outputs/html/sweep.js";
import { sweepToJUnit } from "../outputs/junit.js";
import { checkWritable } from "../outputs/sink.js";
import { sweepCsv } from "../outputs/sweep.js";
import type { RunResult } from "../result/result.js";
import {
  capacityOf,
  findKnee,
  type LevelKind,
  levelFigures,
  meetsSlo,
  notRun,
  overSaturated,
  parseSlo,
  type SloBound,
  type SweepLevel,
  type SweepResult,
  type SweepSummary,
  sloMax,
} from "../result/sweep.js";
import { type SparseHistogram, toSparse } from "../stats/histogram.js";
import { positiveSeconds, SETTINGS, type SettingKey, type SettingValues, seconds } from "./settings.js";
import { type LoadedLoadfile, type RunIo, TestRun } from "./testrun.js";

/** The settings only a sweep has (its levels and early stops), for both fronts that run sweeps. */
export const SWEEP_SETTINGS = [
  "concurrency",
  "rates",
  "stepTime",
  "sweepSize",
  "maxErrorRate",
  "stopOnSaturation",
  "maxP95",
] as const satisfies readonly SettingKey[];

export const DEFAULT_STEP_TIME = "30s";
export const DEFAULT_WARMUP_SEC = 5;
export const DEFAULT_SWEEP_SIZE = 10;
/** `--rates auto` without --max-users or --concurrency: users of the throughput run. */
export const DEFAULT_THROUGHPUT_USERS = 100;

/** The sweep's own options, read and checked from whichever front. */
export interface SweepPlan {
  mode: SweepSummary["mode"];
  concurrency: number[];
  rates: number[];
  stepTimeSec: number;
  warmupSec: number;
  sweepSize: number;
  throughputUsers: number;
  maxErrorRate?: number;
  stopOnSaturation: boolean;
  slo?: string;
  sloBounds: SloBound[];
  maxP95Ms?: number;
}

/** What a front hands in besides the merged settings (flags named as the front names them). */
export interface SweepInput {
  warmup?: string | number;
  slo?: string;
}

/** Checks the sweep's settings; `names` maps a setting to how the front calls it, for errors. */
export function sweepPlan(s: SettingValues, extra: SweepInput, name: (key: string) => string): SweepPlan {
  const given = [
    s.concurrency !== undefined ? name("concurrency") : "",
    s.rates !== undefined ? name("rates") : "",
  ].filter(Boolean);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? `nothing to sweep: give ${name("concurrency")} LIST (closed model) or ${name("rates")} LIST|auto (open model)`
        : `give ${name("concurrency")} or ${name("rates")}, not both`,
    );
  }
  const mode: SweepPlan["mode"] =
    s.concurrency !== undefined ? "concurrency" : s.rates === "auto" ? "auto" : "rates";
  const stepTimeSec = positiveSeconds(s.stepTime ?? DEFAULT_STEP_TIME, name("stepTime"));
  // Whole seconds: the books can only start afresh at a snapshot's boundary.
  const warmupSec = Math.ceil(
    extra.warmup === undefined ? DEFAULT_WARMUP_SEC : seconds(extra.warmup, name("warmup")),
  );
  if (s.sweepSize !== undefined && mode !== "auto") {
    throw new UsageError(`${name("sweepSize")} goes with ${name("rates")} auto`);
  }
  if (s.stages !== undefined)
    throw new UsageError(`${name("stages")} does not apply to a sweep: the levels set the load`);
  if (s.scenarios !== undefined) {
    throw new UsageError(
      "a sweep runs one workload: the loadfile's scenarios do not apply (run it without scenarios)",
    );
  }
  return {
    mode,
    concurrency: s.concurrency ?? [],
    rates: Array.isArray(s.rates) ? s.rates : [],
    stepTimeSec,
    warmupSec,
    sweepSize: s.sweepSize ?? DEFAULT_SWEEP_SIZE,
    throughputUsers: s.maxUsers ?? DEFAULT_THROUGHPUT_USERS,
    ...(s.maxErrorRate !== undefined ? { maxErrorRate: s.maxErrorRate } : {}),
    stopOnSaturation: s.stopOnSaturation === true,
    ...(extra.slo !== undefined ? { slo: extra.slo } : {}),
    sloBounds: extra.slo !== undefined ? parseSlo(extra.slo, name("slo")) : [],
    ...(s.maxP95 !== undefined ? { maxP95Ms: s.maxP95 } : {}),
  };
}

/** The files a sweep writes, checked before any load starts. */
export function checkSweepOutputs(s: CicadaConfig): void {
  if (s.json && s.json !== "-") checkWritable(s.json, "--json");
  if (s.html) checkWritable(s.html, "--html");
  if (s.junit) checkWritable(s.junit, "--junit");
  if (s.csv) checkWritable(`${s.csv}_sweep.csv`, "--csv");
}

export interface SweepControl {
  /** Ends the running level (its figures are kept) and runs no further level. */
  stop(): void;
}

export interface SweepHooks {
  /** A line of progress: which level starts, what it measured. */
  onProgress?(line: string): void;
  /** Called once the sweep can be stopped. */
  onControl?(c: SweepControl): void;
}

interface LevelSpec {
  kind: LevelKind;
  model: "closed" | "open";
  load: number;
}

/** Settings no level takes from the sweep's: its outputs are the sweep's, its load is the level's. */
function levelSettings(s: SettingValues, plan: SweepPlan, spec: LevelSpec, first: boolean): CicadaConfig {
  const {
    json: _j,
    html: _h,
    csv: _c,
    csvFullHistory: _cf,
    junit: _u,
    compareTo: _ct,
    thresholds: _t,
    prometheusPort: _p,
    iterations: _i,
    iterationsPerUser: _ipu,
    stages: _s,
    ...rest
  } = s;
  const load: CicadaConfig =
    spec.model === "closed"
      ? // Every user at once: the coordinator reaches the count by its first spawn tick.
        { users: spec.load, spawnRate: spec.load * 10, rate: undefined, maxUsers: undefined }
      : { rate: spec.load, maxUsers: s.maxUsers, users: 1, spawnRate: 1 };
  // The sweep keeps its own warm-up; a run-wide one would be left out twice.
  delete (rest as Record<string, unknown>).warmup;
  // Each level's run computes its goodput against the SLO.
  const slo = plan.slo !== undefined ? { slo: SETTINGS.slo.parse(plan.slo, "--slo") } : {};
  return {
    ...rest,
    ...slo,
    ...load,
    shape: null,
    runTime: plan.warmupSec + plan.stepTimeSec,
    headless: true,
    onlySummary: true,
    // The target was checked before the first level; a later level measures what it finds.
    preflight: first ? s.preflight : false,
  };
}

/** A stream that drops what is written: the levels' own summaries stay off the terminal. */
const quiet = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

/** Evenly spaced rates between the synchronous and the throughput rate, the latter included (GuideLLM). */
export function autoRates(syncRps: number, maxRps: number, size: number): number[] {
  const n = size - 1;
  const out: number[] = [];
  for (let i = 1; i < n; i++)
    out.push(Math.round((syncRps + ((maxRps - syncRps) * i) / (n - 1)) * 100) / 100);
  return out.map((r) => Math.max(0.01, r));
}

function describe(spec: LevelSpec): string {
  if (spec.kind === "synchronous") return "synchronous (1 user)";
  if (spec.kind === "throughput") return `throughput (${spec.load} users)`;
  return spec.model === "closed" ? `${spec.load} user${spec.load === 1 ? "" : "s"}` : `${spec.load}/s`;
}

/**
 * Runs the levels in order and analyses them. Resolves to the sweep's result, whose exit code
 * is 1 when no level completed a successful request, 3 when an SLO was given and no level met it, 130 when
 * stopped by a signal, else 0. Throws the CicadaError of a sweep that cannot start (bad input 2,
 * unreachable target 4).
 */
export async function runSweep(
  loaded: LoadedLoadfile,
  s: SettingValues,
  plan: SweepPlan,
  io: RunIo,
  hooks: SweepHooks = {},
): Promise<SweepResult> {
  const startedAt = Date.now();
  const levelIo: RunIo = { stdout: quiet, stderr: io.stderr, env: io.env };
  const specs: LevelSpec[] =
    plan.mode === "concurrency"
      ? plan.concurrency.map((n) => ({ kind: "concurrency", model: "closed", load: n }))
      : plan.mode === "rates"
        ? plan.rates.map((r) => ({ kind: "rate", model: "open", load: r }))
        : [
            { kind: "synchronous", model: "closed", load: 1 },
            { kind: "throughput", model: "closed", load: plan.throughputUsers },
          ];
  const levels: SweepLevel[] = [];
  const histograms = new Map<number, SparseHistogram>();
  let stoppedBy: SweepSummary["stoppedBy"];
  let current: TestRun | undefined;
  let stopRequested = false;
  // Every level runs the same classes: a warning about them is said at the first level only.
  const warned = new Set<string>();
  hooks.onControl?.({
    stop: () => {
      stopRequested = true;
      stoppedBy = "signal";
      current?.stop("signal");
    },
  });

  const total = () => (plan.mode === "auto" ? plan.sweepSize : specs.length);
  const warmupSec = plan.warmupSec;
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i]!;
    if (stoppedBy) {
      levels.push(notRun({ index: i, ...spec }));
      continue;
    }
    let saturated = false;
    let warm = warmupSec <= 0;
    const test = await TestRun.create(
      { ...loaded, shapes: [] },
      levelSettings(s, plan, spec, i === 0),
      levelIo,
      {
        onNotice: (m) => io.stderr.write(`${m}\n`),
        warned,
        onTick: (t) => {
          if (!warm || !plan.stopOnSaturation || saturated) return;
          if (overSaturated(t.runner.stats.series)) {
            saturated = true;
            hooks.onProgress?.(`sweep: level ${i + 1} is over-saturated: stopping the sweep`);
            t.stop("api");
          }
        },
      },
    );
    hooks.onProgress?.(
      `sweep: level ${i + 1}/${total()}: ${describe(spec)} for ${plan.stepTimeSec}s${warmupSec > 0 ? ` after ${warmupSec}s of warm-up` : ""}`,
    );
    current = test;
    // The warm-up runs like the rest of the level; then the books start afresh. The workers'
    // snapshots cover whole seconds of the run, so the books are reset half-way through the
    // second after the warm-up, between its snapshots, and dated from the warm-up's end.
    const warmer = setInterval(() => {
      const r = test.runner;
      if (!warm && r.startedAt > 0 && Date.now() - r.startedAt >= (warmupSec + 0.5) * 1000) {
        r.resetStats(r.startedAt + warmupSec * 1000);
        warm = true;
      }
    }, 20);
    if (stopRequested) test.stop("signal");
    let outcome: Awaited<ReturnType<TestRun["run"]>>;
    try {
      outcome = await test.run();
    } finally {
      clearInterval(warmer);
      current = undefined;
    }
    const result = outcome.result as RunResult;
    histograms.set(i, test.runner.stats ? toSparse(test.runner.stats.total.latency) : []);
    const level = levelFigures(
      { index: i, ...spec, status: stopRequested || saturated ? "stopped" : "ran" },
      result,
    );
    if (saturated) {
      level.saturated = true;
      stoppedBy ??= "saturation";
    }
    if (plan.sloBounds.length > 0 || plan.maxP95Ms !== undefined) {
      level.sloMet = meetsSlo(level, plan.sloBounds, plan.maxP95Ms);
    }
    levels.push(level);
    hooks.onProgress?.(
      `sweep: level ${i + 1}: ${level.requests} requests, ${(level.successRate * 100).toFixed(1)}% ok, ` +
        `${level.rps.toFixed(1)} req/s, p95 ${level.latencyMs.p95.toFixed(1)} ms`,
    );
    if (plan.maxErrorRate !== undefined && level.requests > 0 && level.errorRate > plan.maxErrorRate) {
      stoppedBy ??= "max-error-rate";
      hooks.onProgress?.(
        `sweep: level ${i + 1}'s error rate ${(level.errorRate * 100).toFixed(1)}% is above --max-error-rate ${(plan.maxErrorRate * 100).toFixed(1)}%: stopping the sweep`,
      );
    }
    // After the synchronous and throughput runs, the rates between them.
    if (plan.mode === "auto" && i === 1) {
      const sync = levels[0]!.okRps;
      const max = levels[1]!.okRps;
      const rates = sync > 0 && max > 0 ? autoRates(sync, max, plan.sweepSize) : [];
      if (rates.length === 0 && !stoppedBy && plan.sweepSize > 2) {
        hooks.onProgress?.(
          "sweep: the synchronous or throughput run measured no successful request: no rates to sweep",
        );
      }
      for (const r of rates) specs.push({ kind: "rate", model: "open", load: r });
    }
  }

  const slowerThan = (level: number, ms: number) => {
    const h = histograms.get(level);
    if (!h) return undefined;
    const us = ms * 1000;
    let slower = 0;
    let all = 0;
    for (let k = 0; k < h.length; k += 2) {
      all += h[k + 1]!;
      if (h[k]! > us) slower += h[k + 1]!;
    }
    return { slower, total: all };
  };
  const knee = findKnee(levels, slowerThan);
  const summary: SweepSummary = {
    mode: plan.mode,
    levels,
    knee,
    capacity: capacityOf(levels, knee),
    ...(plan.slo !== undefined || plan.maxP95Ms !== undefined
      ? {
          slo: {
            ...(plan.slo !== undefined ? { slo: plan.slo } : {}),
            ...(plan.maxP95Ms !== undefined ? { maxP95Ms: plan.maxP95Ms } : {}),
            max: sloMax(levels),
          },
        }
      : {}),
    ...(stoppedBy ? { stoppedBy } : {}),
  };
  // A target that failed every request of every level measured nothing worth a pass.
  const measured = levels.some((l) => l.requests > l.failures);
  const exitCode =
    stoppedBy === "signal"
      ? ExitCode.Interrupted
      : !measured
        ? ExitCode.Failures
        : summary.slo && summary.slo.max === null
          ? ExitCode.Thresholds
          : ExitCode.Ok;
  const endedAt = Date.now();
  return {
    tool: "cicada",
    version: VERSION,
    startedAt: new Date(startedAt).toISOString(),
    endedAt: new Date(endedAt).toISOString(),
    durationSec: Math.round((endedAt - startedAt) / 10) / 100,
    config: {
      loadfile: loaded.loadfile,
      ...(s.host ? { host: s.host } : {}),
      mode: plan.mode,
      ...(plan.mode === "concurrency" ? { concurrency: plan.concurrency } : {}),
      ...(plan.mode === "rates" ? { rates: plan.rates } : {}),
      ...(plan.mode === "auto" ? { sweepSize: plan.sweepSize, throughputUsers: plan.throughputUsers } : {}),
      stepTimeSec: plan.stepTimeSec,
      warmupSec: plan.warmupSec,
      ...(plan.maxErrorRate !== undefined ? { maxErrorRate: plan.maxErrorRate } : {}),
      ...(plan.stopOnSaturation ? { stopOnSaturation: true } : {}),
      ...(plan.slo !== undefined ? { slo: plan.slo } : {}),
      ...(plan.maxP95Ms !== undefined ? { maxP95Ms: plan.maxP95Ms } : {}),
    },
    sweep: summary,
    exitCode,
  };
}

/** Writes the sweep's files: --json (- for stdout), --csv PREFIX_sweep.csv, --html, --junit. */
export function writeSweepOutputs(r: SweepResult, s: CicadaConfig, io: Pick<RunIo, "stdout">): string[] {
  const written: string[] = [];
  const put = (flag: string, path: string, text: string) => {
    try {
      writeFileSync(path, text);
    } catch (err) {
      throw new UsageError(`cannot write ${flag} ${path}: ${(err as Error).message}`);
    }
    written.push(path);
  };
  if (s.json === "-") io.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
  else if (s.json) put("--json", s.json, `${JSON.stringify(r, null, 2)}\n`);
  if (s.csv) put("--csv", `${s.csv}_sweep.csv`, sweepCsv(r));
  if (s.html) put("--html", s.html, renderSweepHtml(r));
  if (s.junit) put("--junit", s.junit, sweepToJUnit(r));
  return written;
}
