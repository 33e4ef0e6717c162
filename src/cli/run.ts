import { writeFileSync } from "node:fs";
import type { CicadaConfig, ScenarioConfig } from "../api/config.js";
import { LoadShape } from "../api/shape.js";
import { HttpUser } from "../api/user.js";
import { compareResults } from "../compare/compare.js";
import { formatComparison } from "../compare/format.js";
import { BaselineStore, baselineDir } from "../compare/store.js";
import { bundleLoadfile, importBundle } from "../loadfile/bundle.js";
import { compileUserClasses } from "../loadfile/inspect.js";
import { formatSummary, groupStatusLine, LiveView, statusLine } from "../outputs/console.js";
import { CsvOutput } from "../outputs/csv.js";
import { renderHtmlReport } from "../outputs/html/report.js";
import { toJUnit } from "../outputs/junit.js";
import { recommend } from "../outputs/recommendations.js";
import { buildResult, buildScenarioResult, type RunResult } from "../outputs/result.js";
import { Coordinator } from "../runner/coordinator.js";
import type { RunPlan } from "../runner/plan.js";
import { ScenarioGroup, type ScenarioSpec } from "../runner/scenarios.js";
import { parseStages, stagesPeak } from "../runner/stages.js";
import { evaluate, ThresholdWatch } from "../thresholds/evaluate.js";
import { parseThreshold } from "../thresholds/parse.js";
import { parseTolerances } from "./baseline.js";
import { CicadaError, ExitCode } from "./errors.js";
import { fromEnv, loadConfigFile, mergeConfigs, parseDuration, resolveProcesses } from "./options.js";
import { checkReachable } from "./preflight.js";

export interface RunIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export interface RunOutcome {
  exitCode: number;
  result: RunResult;
}

/**
 * `cicada run`: settings are merged as defaults < loadfile `options` < config file < CICADA_*
 * env < command line; then the loadfile is bundled once and the coordinator runs it.
 */
export async function executeRun(cli: CicadaConfig & { config?: string }, io: RunIo): Promise<RunOutcome> {
  const { config: configPath, ...cliSettings } = cli;
  const file = await loadConfigFile(configPath);
  const env = fromEnv(io.env);
  const early = mergeConfigs(file.config, env, cliSettings);
  const loadfile = early.loadfile ?? "loadtest.ts";

  const bundle = await bundleLoadfile(loadfile);
  try {
    const mod = await importBundle(bundle.path, loadfile);
    const fromLoadfile = (mod.options ?? {}) as CicadaConfig;
    const s = mergeConfigs(
      { users: 1, spawnRate: 1, stopTimeout: 0, exitCodeOnError: 1 },
      fromLoadfile,
      file.config,
      env,
      cliSettings,
    );
    const shapes = Object.values(mod).filter(
      (v): v is new () => LoadShape => typeof v === "function" && v.prototype instanceof LoadShape,
    );
    const hosts = new Set<string>();
    let single: Resolved | undefined;
    let specs: ScenarioSpec[] | undefined;
    if (s.scenarios !== undefined) {
      specs = resolveScenarios(s, cliSettings, env, mod, shapes, loadfile, hosts);
    } else {
      // A LoadShape exported by the loadfile drives the run (like Locust's LoadTestShape).
      if (shapes.length > 1) {
        throw new CicadaError(`${loadfile}: more than one LoadShape exported; export one`, ExitCode.Usage);
      }
      single = resolvePlan(s, mod, loadfile, shapes[0], hosts);
    }
    const watch = new ThresholdWatch((s.thresholds ?? []).map((x) => parseThreshold(x)));
    // A missing baseline or a bad tolerance is a usage error before the run, not after it.
    const tolerances = s.tolerance === undefined ? undefined : parseTolerances(s.tolerance);
    const baseline =
      s.compareTo === undefined
        ? undefined
        : new BaselineStore(baselineDir(s.baselineDir, io.env)).resolve(s.compareTo);
    if (s.preflight !== false) for (const h of hosts) await checkReachable(h);
    let csv: CsvOutput | undefined;
    if (s.csv) {
      try {
        csv = new CsvOutput(s.csv, s.csvFullHistory === true);
      } catch (err) {
        throw new CicadaError(`cannot write --csv ${s.csv}: ${(err as Error).message}`, ExitCode.Usage);
      }
    }

    const view = s.onlySummary
      ? undefined
      : new LiveView(io.stderr.isTTY || s.json === "-" ? io.stderr : io.stdout);
    const onNotice = (m: string) => (view ? view.notice(m) : io.stderr.write(`${m}\n`));
    // Live thresholds: checked on the merged books once a second, after the view is drawn.
    let ticks = 0;
    // A CSV file that cannot be written (disk full, directory gone) is reported once; the run
    // and its other outputs go on.
    let csvFailed = false;
    const csvSafe = (fn: () => void) => {
      if (csvFailed) return;
      try {
        fn();
      } catch (err) {
        csvFailed = true;
        onNotice(`warning: cannot write --csv ${s.csv} files: ${(err as Error).message}`);
      }
    };
    const tick = (r: Coordinator | ScenarioGroup, line: (tty: boolean) => string) => {
      // Locust refreshes its CSV files every few seconds; a crash mid-run keeps what was written.
      if (csv && ++ticks % 2 === 0) csvSafe(() => csv!.write(r.stats, r.elapsedSec));
      if (watch.tick(r.stats, r.elapsedSec)) {
        const t = watch.abortedBy!;
        const v = watch.latest.find((x) => x.expr === t.expr)?.value;
        onNotice(`threshold "${t.expr}" failed (measured ${v}): stopping the run (abortOnFail)`);
        r.stop("threshold");
      }
      view?.tick((tty) => {
        const th = watch.status();
        return th ? `${line(tty)}  ${th}` : line(tty);
      });
    };
    const runner: Coordinator | ScenarioGroup = specs
      ? new ScenarioGroup(
          specs,
          bundle,
          {
            onTick: (g) => tick(g, (tty) => groupStatusLine(g, tty)),
            onNotice,
            onInterval: (iv) => csvSafe(() => csv?.interval(iv, runner.stats)),
          },
          s.runTime === undefined ? null : parseDuration(s.runTime),
        )
      : new Coordinator(
          single!.plan,
          bundle,
          {
            onTick: (c) => tick(c, (tty) => statusLine(c, tty)),
            onNotice,
            onInterval: (iv) => csvSafe(() => csv?.interval(iv, runner.stats)),
          },
          single!.shape,
        );
    const stopTimeoutSec = specs
      ? Math.max(...specs.map((x) => x.plan.stopTimeoutSec))
      : single!.plan.stopTimeoutSec;

    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        const msg = `${sig}: stopping (users get ${stopTimeoutSec}s to finish; again to stop at once)`;
        view ? view.notice(msg) : io.stderr.write(`${msg}\n`);
        runner.stop("signal");
      } else {
        io.stderr.write(`${sig}: stopping now\n`);
        runner.abort();
      }
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      await runner.run();
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      view?.clear();
    }

    const t = runner.stats.total;
    csvSafe(() => csv?.write(runner.stats, runner.elapsedSec));
    const thresholds = evaluate(watch.thresholds, runner.stats, runner.elapsedSec);
    let exitCode: number = ExitCode.Ok;
    if (runner.fatalError) exitCode = ExitCode.Internal;
    else if (signals >= 2) exitCode = ExitCode.Interrupted;
    else if (thresholds.some((x) => !x.passed)) exitCode = ExitCode.Thresholds;
    else if (t.failures > 0 || runner.stats.exceptions.size > 0 || runner.lostWorkers > 0) {
      // A worker thread that died took its users and its last interval with it: the run is
      // incomplete, like one where user code threw.
      exitCode = s.exitCodeOnError!;
    }
    const result =
      runner instanceof ScenarioGroup
        ? buildScenarioResult(runner, loadfile, exitCode)
        : buildResult(runner, exitCode);
    if (thresholds.length > 0) result.thresholds = thresholds;
    if (baseline) {
      result.comparison = compareResults(baseline, result, {
        ...(tolerances ? { tolerances } : {}),
        baselineLabel: s.compareTo!,
        currentLabel: "this run",
      });
      if (
        result.comparison.verdict === "regression" &&
        (exitCode === ExitCode.Ok || exitCode === s.exitCodeOnError)
      ) {
        exitCode = ExitCode.Thresholds;
        result.exitCode = exitCode;
      }
    }
    const jsonToStdout = s.json === "-";
    const findings = recommend(result);
    if (findings.length > 0) result.recommendations = findings;
    (jsonToStdout ? io.stderr : io.stdout).write(formatSummary(result));
    if (result.comparison) {
      (jsonToStdout ? io.stderr : io.stdout).write(
        `\nCompared with ${s.compareTo}\n${formatComparison(result.comparison)}`,
      );
    }
    if (s.json) {
      const text = `${JSON.stringify(result, null, 2)}\n`;
      if (jsonToStdout) io.stdout.write(text);
      else {
        try {
          writeFileSync(s.json, text);
        } catch (err) {
          throw new CicadaError(`cannot write --json ${s.json}: ${(err as Error).message}`, ExitCode.Usage);
        }
      }
    }
    if (s.junit) writeOutput(s.junit, "--junit", toJUnit(result));
    if (s.html) writeOutput(s.html, "--html", renderHtmlReport(result));
    return { exitCode, result };
  } finally {
    bundle.dispose();
  }
}

function writeOutput(path: string, flag: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (err) {
    throw new CicadaError(`cannot write ${flag} ${path}: ${(err as Error).message}`, ExitCode.Usage);
  }
}

interface Resolved {
  plan: RunPlan;
  shape?: LoadShape;
}

/** One workload's plan from merged settings; checks its classes and collects its hosts. */
function resolvePlan(
  s: CicadaConfig,
  mod: Record<string, unknown>,
  loadfile: string,
  shapeClass: (new () => LoadShape) | undefined,
  hosts: Set<string>,
): Resolved {
  const plan: RunPlan = {
    loadfile,
    userClasses: s.userClasses ?? [],
    host: s.host,
    users: s.users!,
    spawnRate: s.spawnRate!,
    runTimeSec: s.runTime === undefined ? null : parseDuration(s.runTime),
    iterations: s.iterations ?? null,
    iterationsPerUser: s.iterationsPerUser ?? null,
    stopTimeoutSec:
      typeof s.stopTimeout === "number" ? s.stopTimeout : parseDuration(s.stopTimeout!, "--stop-timeout"),
    tags: s.tags ?? [],
    excludeTags: s.excludeTags ?? [],
    verifyTls: s.verifyTls ?? true,
    acceptStatus: s.acceptStatus ?? [],
    processes: resolveProcesses(s.processes),
    stages: s.stages === undefined ? null : parseStages(s.stages),
    rate: s.rate ?? null,
    maxUsers: 0,
    maxDelaySec: s.maxDelay === undefined ? 10 : parseDuration(s.maxDelay, "--max-delay"),
    shape: null,
  };
  // Open model: the pool may grow to --max-users, by default enough for one second of
  // arrivals at the peak rate, and at least -u.
  const peakRate = plan.stages && plan.rate !== null ? stagesPeak(plan.stages) : (plan.rate ?? 0);
  plan.maxUsers = s.maxUsers ?? Math.max(s.users ?? 1, Math.ceil(peakRate), 1);
  if (plan.stages && plan.rate === null) {
    // The shape sets the user count over time; -u is its peak, for the views.
    plan.users = Math.max(1, stagesPeak(plan.stages));
  }
  if (plan.rate !== null) plan.users = plan.maxUsers;
  const shape = shapeClass ? new shapeClass() : undefined;
  if (shape) {
    plan.shape = shapeClass!.name;
    // The shape decides how many users; every worker may get some.
    plan.users = Math.max(plan.users, plan.processes, plan.maxUsers);
  }
  if (plan.host !== undefined && !/^https?:\/\/[^/]/i.test(plan.host)) {
    throw new CicadaError(
      `-H/--host: expected an http:// or https:// URL, got "${plan.host}"`,
      ExitCode.Usage,
    );
  }
  // Same checks the workers will make, but here they fail before anything starts.
  const classes = compileUserClasses(mod, {
    loadfile,
    userClasses: plan.userClasses,
    include: plan.tags,
    exclude: plan.excludeTags,
  });
  // With only fixedCount classes there are never more users than their sum, whatever -u says;
  // a worker beyond that would sit idle on an iteration share nobody uses.
  if (!classes.some((c) => c.fixedCount <= 0 && c.weight > 0)) {
    const fixed = classes.reduce((n, c) => n + c.fixedCount, 0);
    plan.processes = Math.max(1, Math.min(plan.processes, fixed));
  }
  for (const c of classes) {
    const host = plan.host ?? c.host;
    if (host) hosts.add(host);
    else if (c.cls.prototype instanceof HttpUser) {
      throw new CicadaError(
        `no host for ${c.name}: pass -H/--host or set static host on the class`,
        ExitCode.Usage,
      );
    }
  }
  return { plan, shape };
}

const SCENARIO_KEYS = new Set<keyof ScenarioConfig>([
  "userClasses",
  "users",
  "spawnRate",
  "rate",
  "maxUsers",
  "maxDelay",
  "stages",
  "shape",
  "startTime",
  "duration",
  "iterations",
  "iterationsPerUser",
  "tags",
  "excludeTags",
  "host",
  "processes",
]);

/** Settings that describe one workload: with scenarios they belong to each scenario. */
const PER_SCENARIO: Array<[keyof CicadaConfig, string]> = [
  ["users", "-u/--users"],
  ["spawnRate", "-r/--spawn-rate"],
  ["rate", "--rate"],
  ["stages", "--stages"],
  ["maxUsers", "--max-users"],
  ["iterations", "-i/--iterations"],
  ["iterationsPerUser", "--iterations-per-user"],
  ["userClasses", "user class arguments"],
];

/**
 * The scenarios to run, each as its own plan. A scenario inherits the run-wide settings that
 * are not about the workload (host, tags, stop timeout, TLS, processes) and sets its own load.
 */
function resolveScenarios(
  s: CicadaConfig,
  cli: CicadaConfig,
  env: CicadaConfig,
  mod: Record<string, unknown>,
  shapes: Array<new () => LoadShape>,
  loadfile: string,
  hosts: Set<string>,
): ScenarioSpec[] {
  const all = s.scenarios;
  if (all === null || typeof all !== "object" || Array.isArray(all)) {
    throw new CicadaError(
      "scenarios: expected an object of named scenarios, e.g. { browse: { users: 10 } }",
      ExitCode.Usage,
    );
  }
  for (const [key, flag] of PER_SCENARIO) {
    if (cli[key] !== undefined || env[key] !== undefined) {
      throw new CicadaError(
        `${flag} does not apply when the loadfile defines scenarios; set it per scenario (scenarios: ${Object.keys(all).join(", ")})`,
        ExitCode.Usage,
      );
    }
  }
  const names = Object.keys(all);
  if (names.length === 0) throw new CicadaError("scenarios: none defined", ExitCode.Usage);
  const picked = s.scenario && s.scenario.length > 0 ? s.scenario : names;
  for (const n of picked) {
    if (!names.includes(n)) {
      throw new CicadaError(`--scenario: no scenario "${n}"; defined: ${names.join(", ")}`, ExitCode.Usage);
    }
  }
  return picked.map((name) => {
    const sc = all[name]!;
    try {
      if (sc === null || typeof sc !== "object") throw new CicadaError("expected an object", ExitCode.Usage);
      for (const k of Object.keys(sc)) {
        if (!SCENARIO_KEYS.has(k as keyof ScenarioConfig)) {
          throw new CicadaError(
            `unknown setting "${k}"; known: ${[...SCENARIO_KEYS].join(", ")}`,
            ExitCode.Usage,
          );
        }
      }
      let shapeClass: (new () => LoadShape) | undefined;
      if (sc.shape !== undefined) {
        shapeClass = shapes.find((x) => x.name === sc.shape);
        if (!shapeClass) {
          throw new CicadaError(
            `shape "${sc.shape}" is not a LoadShape exported by ${loadfile}` +
              (shapes.length > 0 ? ` (exported: ${shapes.map((x) => x.name).join(", ")})` : ""),
            ExitCode.Usage,
          );
        }
      }
      const merged: CicadaConfig = {
        users: sc.users ?? 1,
        spawnRate: sc.spawnRate ?? 1,
        rate: sc.rate,
        maxUsers: sc.maxUsers,
        maxDelay: sc.maxDelay ?? s.maxDelay,
        stages: sc.stages,
        runTime: sc.duration,
        iterations: sc.iterations,
        iterationsPerUser: sc.iterationsPerUser,
        userClasses: sc.userClasses,
        tags: sc.tags ?? s.tags,
        excludeTags: sc.excludeTags ?? s.excludeTags,
        // The command line's -H wins over a scenario's host, as it wins over a class's.
        host: cli.host ?? env.host ?? sc.host ?? s.host,
        stopTimeout: s.stopTimeout,
        verifyTls: s.verifyTls,
        acceptStatus: s.acceptStatus,
        processes: sc.processes ?? s.processes,
      };
      const { plan, shape } = resolvePlan(merged, mod, loadfile, shapeClass, hosts);
      const startSec = sc.startTime === undefined ? 0 : parseDuration(sc.startTime, "startTime");
      return { name, plan, shape, startSec };
    } catch (err) {
      if (err instanceof CicadaError)
        throw new CicadaError(`scenario "${name}": ${err.message}`, err.exitCode);
      throw err;
    }
  });
}
