import type { Server } from "node:http";
import type { CicadaConfig } from "../api/config.js";
import { LoadShape } from "../api/shape.js";
import { HttpUser } from "../api/user.js";
import { compareResults } from "../compare/compare.js";
import { BaselineStore, baselineDir } from "../compare/store.js";
import { parseTolerances } from "../compare/tolerance.js";
import { CicadaError, ExitCode, UsageError } from "../core/errors.js";
import { parseDuration, resolveProcesses } from "../core/parse.js";
import type { Bundle } from "../loadfile/bundle.js";
import { bundleLoadfile, importBundle, memoryBundle } from "../loadfile/bundle.js";
import {
  compileUserClasses,
  type EngineChoice,
  fastOnlyWarning,
  unknownTagWarnings,
} from "../loadfile/inspect.js";
import { type LiveView, statusLine, summarySink } from "../outputs/console.js";
import { CsvOutput } from "../outputs/csv.js";
import { renderHtmlReport } from "../outputs/html/report.js";
import { toJUnit } from "../outputs/junit.js";
import { OtelOutput, type OtelSource } from "../outputs/otel.js";
import { type MetricsSource, PrometheusOutput, servePrometheus, serverUrl } from "../outputs/prometheus.js";
import { jsonText, resultFile, type Sink } from "../outputs/sink.js";
import { PROXY_VARIABLE } from "../protocols/http/session.js";
import { ResourceMonitor } from "../protocols/monitor/monitor.js";
import { recommend } from "../result/recommendations.js";
import { buildResult, type RunResult } from "../result/result.js";
import { soakOf } from "../result/soak.js";
import { Coordinator, type RemoteWorkerSource } from "../runner/coordinator.js";
import type { RunPlan } from "../runner/plan.js";
import type { Run, WorkerInfo } from "../runner/run.js";
import { ScenarioGroup, type ScenarioSpec } from "../runner/scenarios.js";
import { peakPerSecond, readSchedule } from "../runner/schedule.js";
import { parseStages, stagesDuration, stagesPeak } from "../runner/stages.js";
import type { ClosedInterval } from "../stats/aggregate.js";
import { parseSlo } from "../stats/slo.js";
import { evaluate, type ScenarioSource, ThresholdWatch } from "../thresholds/evaluate.js";
import { parseThreshold } from "../thresholds/parse.js";
import { loadConfigFile } from "./config-file.js";
import { checkReachable } from "./preflight.js";
import { checkNoWorkload, fromEnv, mergeConfigs, readConfigObject, settingDefaults } from "./settings.js";

export interface RunIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

/** A front that serves a web UI for a loaded test (the CLI gets one from the `cicada` command). */
export type WebUiFront = (
  loaded: LoadedLoadfile,
  settings: CicadaConfig,
  io: RunIo,
  workers?: WorkerPool,
) => Promise<RunOutcome>;

/** `--master`: remote workers that connected, waiting to be handed to the next test. */
export type WorkerPool = RemoteWorkerSource & {
  /** Workers connected and waiting for the next test. */
  readonly connected: number;
  onCountChange(listener: () => void): void;
};

export interface RunOutcome {
  exitCode: number;
  /** Absent when the web UI quit before any test ran. */
  result?: RunResult;
}

/** Where a test's user classes come from: a loadfile to bundle, or a module already in memory. */
export type TestSource =
  | { loadfile: string }
  | {
      /** Names the module in messages, e.g. "run({ tasks })". */
      label: string;
      mod: Record<string, unknown>;
    };

/** The settings layers below the front's own, as each front reads them. */
export interface SettingLayers {
  /** The front's defaults, under the loadfile's `options` (e.g. one thread for the library). */
  base?: CicadaConfig;
  /** The config file's settings. */
  file: CicadaConfig;
  /** CICADA_* settings. */
  env: CicadaConfig;
  /** The front's own settings (command line, web form, API call): they win. */
  front: CicadaConfig;
  /** Drop these defaults, so that an unset setting stays unset for the front to decide. */
  withoutDefaults?: Array<keyof CicadaConfig>;
}

/**
 * Imports the test's module once (bundling a loadfile, or taking a module in memory) and merges
 * its settings: defaults < `base` < the loadfile's `options` < config file < env < the front's.
 * The caller disposes `loaded.bundle`; on an error here it is already disposed.
 */
export async function loadTest(
  source: TestSource,
  layers: SettingLayers,
): Promise<{ loaded: LoadedLoadfile; settings: CicadaConfig }> {
  const loadfile = "loadfile" in source ? source.loadfile : source.label;
  const bundle = "loadfile" in source ? await bundleLoadfile(loadfile) : memoryBundle(loadfile, source.mod);
  try {
    const mod = "loadfile" in source ? await importBundle(bundle.path, loadfile) : source.mod;
    const fromLoadfile =
      "loadfile" in source ? readConfigObject(mod.options ?? {}, `${loadfile}: options`, ".") : {};
    const defaults = settingDefaults();
    for (const k of layers.withoutDefaults ?? []) delete defaults[k];
    const settings = mergeConfigs(
      defaults,
      layers.base ?? {},
      fromLoadfile,
      layers.file,
      layers.env,
      layers.front,
    );
    const shapes = Object.values(mod).filter(
      (v): v is new () => LoadShape => typeof v === "function" && v.prototype instanceof LoadShape,
    );
    return { loaded: { loadfile, bundle, mod, shapes, cli: layers.front, env: layers.env }, settings };
  } catch (err) {
    bundle.dispose();
    throw err;
  }
}

/**
 * The CLI's and the web UI's loading: the config file (`--config`, or cicada.config.* here) and
 * CICADA_* env under the front's settings. `use` gets the loaded loadfile and the merged
 * settings; the bundle is removed when it returns.
 */
export async function withLoadedTest<T>(
  front: CicadaConfig & { config?: string },
  io: Pick<RunIo, "env">,
  use: (loaded: LoadedLoadfile, settings: CicadaConfig) => Promise<T>,
): Promise<T> {
  const { config: configPath, ...frontSettings } = front;
  const file = (await loadConfigFile(configPath)).config;
  const env = fromEnv(io.env);
  const loadfile = mergeConfigs(file, env, frontSettings).loadfile ?? "loadtest.ts";
  const { loaded, settings } = await loadTest({ loadfile }, { file, env, front: frontSettings });
  try {
    return await use(loaded, settings);
  } finally {
    loaded.bundle.dispose();
  }
}

/** `--prometheus-port`: a /metrics endpoint that reads the running test's merged books. */
export async function startMetrics(
  s: CicadaConfig,
  io: RunIo,
  source: () => MetricsSource | undefined,
): Promise<Sink | undefined> {
  if (s.prometheusPort === undefined) return undefined;
  const host = s.prometheusHost!;
  const output = new PrometheusOutput(source);
  let server: Server;
  try {
    server = await servePrometheus(output, host, s.prometheusPort);
  } catch (err) {
    throw new UsageError(
      `cannot serve Prometheus metrics on ${host}:${s.prometheusPort}: ${(err as Error).message}`,
    );
  }
  io.stderr.write(`Prometheus metrics on ${serverUrl(server)}/metrics\n`);
  return {
    label: `--prometheus-port ${s.prometheusPort}`,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** What every test of one `cicada run` shares: the loadfile, bundled and imported once. */
export interface LoadedLoadfile {
  loadfile: string;
  bundle: Bundle;
  mod: Record<string, unknown>;
  shapes: Array<new () => LoadShape>;
  /** Settings from the command line and the environment, kept apart for scenario checks. */
  cli: CicadaConfig;
  env: CicadaConfig;
}

export interface TestRunOptions {
  /** The live terminal line; none for --only-summary or the web UI. */
  view?: LiveView;
  /** Once a second, after the books were updated and thresholds checked. */
  onTick?(t: TestRun): void;
  onNotice?(message: string): void;
  /** `--master`: the connected remote workers run the users. */
  remote?: RemoteWorkerSource;
  /**
   * Warnings about the plan already shown, and added to: a sweep's levels share one set, so a
   * class's warning is said once, not once per level.
   */
  warned?: Set<string>;
}

/**
 * One test: plan, runner, live thresholds and CSV, and at the end the result with every
 * requested output. The headless CLI runs one; the web UI runs one per start.
 */
export class TestRun {
  /** Set once the run has ended and its outputs were written. */
  outcome: RunOutcome | undefined;
  private signals = 0;
  private ticks = 0;
  /** Live sinks that failed once: reported, then left alone for the rest of the run. */
  private readonly broken = new Set<Sink>();

  private constructor(
    readonly loaded: LoadedLoadfile,
    readonly settings: CicadaConfig,
    private readonly io: RunIo,
    readonly runner: Run,
    readonly watch: ThresholdWatch,
    readonly csv: CsvOutput | undefined,
    /** Every output of the test, in the order it writes at the end (the CSV files among them). */
    private readonly sinks: readonly Sink[],
    private readonly baseline: RunResult | undefined,
    private readonly tolerances: ReturnType<typeof parseTolerances> | undefined,
    private readonly opts: TestRunOptions,
    /** The target's processes and endpoints, and this process's own CPU and memory. */
    private readonly monitor: ResourceMonitor,
  ) {}

  /** Resolves the plan and checks everything that can be checked before any load starts. */
  static async create(
    loaded: LoadedLoadfile,
    s: CicadaConfig,
    io: RunIo,
    opts: TestRunOptions = {},
  ): Promise<TestRun> {
    const { loadfile, mod, shapes, bundle } = loaded;
    const hosts = new Set<string>();
    const warnings = new Set<string>();
    const engine = engineChoice(s, loaded, !!opts.remote);
    let single: Resolved | undefined;
    let specs: ScenarioSpec[] | undefined;
    if (s.scenarios !== undefined) {
      specs = resolveScenarios(s, loaded.cli, loaded.env, mod, shapes, loadfile, hosts, !!opts.remote, {
        engine,
        warnings,
      });
    } else {
      // A LoadShape exported by the loadfile drives the run (like Locust's LoadTestShape); the
      // web UI may pick one by name.
      let shape = shapes[0];
      if (s.shape !== undefined && s.shape !== null) {
        shape = shapes.find((x) => x.name === s.shape);
        if (!shape) throw new UsageError(`shape "${s.shape}" is not a LoadShape exported by ${loadfile}`);
      } else if (shapes.length > 1) {
        throw new UsageError(`${loadfile}: more than one LoadShape exported; export one`);
      }
      single = resolvePlan(s, mod, loadfile, s.shape === null ? undefined : shape, hosts, {
        engine,
        warnings,
      });
    }
    const watch = new ThresholdWatch((s.thresholds ?? []).map((x) => parseThreshold(x)));
    // A scenario threshold names a scenario that runs: a typo is an error now, not a failed run.
    const known = specs?.map((x) => x.name) ?? [];
    for (const name of watch.scenarios) {
      if (!known.includes(name)) {
        const t = watch.thresholds.find((x) => x.scenario === name)!;
        throw new UsageError(
          `threshold "${t.expr}": ${specs ? `no scenario "${name}" runs (scenarios: ${known.join(", ")})` : `"scenario:${name}" needs a loadfile with scenarios`}`,
        );
      }
    }
    // A missing baseline or a bad tolerance is a usage error before the run, not after it.
    const tolerances = s.tolerance === undefined ? undefined : parseTolerances(s.tolerance);
    const baseline =
      s.compareTo === undefined
        ? undefined
        : new BaselineStore(baselineDir(s.baselineDir, io.env)).resolve(s.compareTo);
    // An output that cannot be written is found out now, not after the whole test.
    const files = resultSinks(s, io);
    if (s.preflight !== false) for (const h of hosts) await checkReachable(h);
    let self: TestRun | undefined;
    // Checked now: a process or endpoint that is not there fails before any load starts.
    const monitor = await ResourceMonitor.open({
      pids: s.monitorPid,
      urls: s.monitorUrl,
      queries: s.monitorQuery,
      host: "master",
      self: "master",
      onNotice: (m) => self?.notice(m),
    });
    let csv: CsvOutput | undefined;
    const keepHistory = s.headless !== true;
    if (s.csv || keepHistory) {
      try {
        csv = new CsvOutput(s.csv ?? null, s.csvFullHistory === true, keepHistory);
      } catch (err) {
        throw new UsageError(`cannot write --csv ${s.csv}: ${(err as Error).message}`);
      }
    }
    const sinks: Sink[] = [...(csv ? [csv] : []), ...files];
    if (s.otel !== undefined && s.otel !== false) {
      sinks.push(
        new OtelOutput(
          {
            url: typeof s.otel === "string" ? s.otel : undefined,
            env: io.env,
            warn: (line) => (self ? self.notice(line) : io.stderr.write(`${line}\n`)),
          },
          () => self?.otelSource(),
        ),
      );
    }
    const onInterval = (iv: ClosedInterval) => self?.toSinks((k) => k.interval?.(iv, self!.runner.stats));
    const hooks = {
      onTick: (r: Run) => self?.tick((tty) => statusLine(r, tty)),
      onNotice: (m: string) => self?.notice(m),
      onInterval,
    };
    const runner: Run = specs
      ? new ScenarioGroup(
          specs,
          bundle,
          hooks,
          s.runTime === undefined ? null : parseDuration(s.runTime),
          opts.remote,
        )
      : new Coordinator(single!.plan, bundle, hooks, single!.shape, opts.remote);
    self = new TestRun(loaded, s, io, runner, watch, csv, sinks, baseline, tolerances, opts, monitor);
    // Before the live view draws anything: straight to stderr (or the front's notices), even when
    // the view writes to stdout.
    for (const w of warnings) {
      if (opts.warned?.has(w)) continue;
      opts.warned?.add(w);
      if (opts.onNotice) opts.onNotice(w);
      else io.stderr.write(`${w}\n`);
    }
    return self;
  }

  get stopTimeoutSec(): number {
    return this.runner.stopTimeoutSec;
  }

  /** Seconds the current books cover (since the start, or the last stats reset). */
  get statsElapsedSec(): number {
    return this.runner.statsElapsedSec;
  }

  notice(m: string): void {
    const view = this.opts.view;
    if (this.opts.onNotice) this.opts.onNotice(m);
    else if (view) view.notice(m);
    else this.io.stderr.write(`${m}\n`);
  }

  /** A live output that cannot write (disk full, directory gone) is reported once; the run goes on. */
  private toSinks(call: (sink: Sink) => void): void {
    for (const sink of this.sinks) {
      if (this.broken.has(sink)) continue;
      try {
        call(sink);
      } catch (err) {
        this.broken.add(sink);
        this.notice(`warning: cannot write ${sink.label}: ${(err as Error).message}`);
      }
    }
  }

  private tick(line: (tty: boolean) => string): void {
    const r = this.runner;
    const n = ++this.ticks;
    this.toSinks((k) => k.tick?.(r.stats, this.statsElapsedSec, n));
    // Live thresholds: checked on the merged books once a second.
    if (
      this.watch.tick(
        r.stats,
        this.statsElapsedSec,
        this.watch.needsSoak ? () => soakOf(r) : undefined,
        scenarioBooks(r),
      )
    ) {
      const t = this.watch.abortedBy!;
      const v = this.watch.latest.find((x) => x.expr === t.expr)?.value;
      this.notice(`threshold "${t.expr}" failed (measured ${v}): stopping the run (abortOnFail)`);
      r.stop("threshold");
    }
    this.opts.view?.tick((tty) => {
      const th = this.watch.status();
      return th ? `${line(tty)}  ${th}` : line(tty);
    });
    this.opts.onTick?.(this);
  }

  stop(reason: "signal" | "api" = "signal"): void {
    this.signals = Math.max(this.signals, 1);
    this.runner.stop(reason);
  }

  /** Stops at once; the outputs are still written. */
  abort(): void {
    this.signals = 2;
    this.runner.abort();
  }

  async run(): Promise<RunOutcome> {
    // The books exist once the clock starts; samples taken before that have no run to go to.
    this.monitor.start((samples) => this.runner.stats?.resources.add(samples));
    try {
      try {
        await this.runner.run();
        this.runner.stats?.resources.add(this.monitor.sampleLocal(true));
      } finally {
        this.monitor.stop();
        this.opts.view?.clear();
      }
      this.outcome = this.finish();
      return this.outcome;
    } finally {
      // Also after a failure: what was measured still goes out (OpenTelemetry's last export).
      await this.closeSinks();
    }
  }

  private async closeSinks(): Promise<void> {
    for (const sink of this.sinks) {
      try {
        await sink.close?.();
      } catch (err) {
        this.notice(`warning: cannot close ${sink.label}: ${(err as Error).message}`);
      }
    }
  }

  /** What the OpenTelemetry output observes: the Prometheus figures and the arrival rate. */
  otelSource(): OtelSource | undefined {
    const m = this.metricsSource();
    return m ? { ...m, arrivalRate: this.runner.status().rate } : undefined;
  }

  /** What the Prometheus exporter reads at each scrape; undefined until the books exist. */
  metricsSource(): MetricsSource | undefined {
    const r = this.runner;
    if (!r.stats) return undefined;
    return {
      stats: r.stats,
      elapsedSec: this.statsElapsedSec,
      thresholds: this.watch.latest,
      workers: this.workerInfo(),
      soak: () => soakOf(r),
    };
  }

  /** Every worker of the test, over all scenarios: users, event-loop use, heap. */
  workerInfo(): WorkerInfo[] {
    return this.runner.workerInfo();
  }

  /** The result as of now, with thresholds (a running test's downloads in the web UI). */
  currentResult(): RunResult {
    if (this.outcome?.result) return this.outcome.result;
    const r = this.runner;
    if (!r.stats) throw new UsageError("the test is still starting; try again in a moment");
    const soak = soakOf(r);
    const result = buildResult(r, 0, soak);
    const thresholds = evaluate(
      this.watch.thresholds,
      r.stats,
      this.statsElapsedSec,
      () => soak,
      scenarioBooks(r),
    );
    if (thresholds.length > 0) result.thresholds = thresholds;
    const findings = recommend(result);
    if (findings.length > 0) result.recommendations = findings;
    return result;
  }

  private finish(): RunOutcome {
    const { runner, settings: s, io } = this;
    const t = runner.stats.total;
    this.toSinks((k) => k.end?.(runner.stats, this.statsElapsedSec));
    const soak = soakOf(runner);
    const thresholds = evaluate(
      this.watch.thresholds,
      runner.stats,
      this.statsElapsedSec,
      () => soak,
      scenarioBooks(runner),
    );
    let exitCode: number = ExitCode.Ok;
    if (runner.fatalError) exitCode = ExitCode.Internal;
    else if (this.signals >= 2) exitCode = ExitCode.Interrupted;
    // The user asked that a lost worker fail the run as unreachable machines do.
    else if (s.failOnWorkerLoss && runner.lostWorkers > 0) exitCode = ExitCode.Unreachable;
    else if (thresholds.some((x) => !x.passed)) exitCode = ExitCode.Thresholds;
    // Nothing completed, nothing measured: a target that never answers in time must not pass,
    // whatever --exit-code-on-error says. Any recorded row counts (WebSocket, SSE, custom ones).
    else if (t.count === 0) exitCode = ExitCode.Failures;
    else if (t.failures > 0 || runner.stats.exceptions.size > 0 || runner.lostWorkers > 0) {
      // A worker thread that died took its users and its last interval with it: the run is
      // incomplete, like one where user code threw.
      exitCode = s.exitCodeOnError!;
    }
    const result = buildResult(runner, exitCode, soak);
    if (thresholds.length > 0) result.thresholds = thresholds;
    if (this.baseline) {
      result.comparison = compareResults(this.baseline, result, {
        ...(this.tolerances ? { tolerances: this.tolerances } : {}),
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
    const findings = recommend(result);
    if (findings.length > 0) result.recommendations = findings;
    // Every output gets the result even when one of them cannot write: the first error is
    // thrown once all have had their turn, so nothing measured is lost with it.
    let failed: unknown;
    for (const sink of this.sinks) {
      try {
        sink.result?.(result);
      } catch (err) {
        failed ??= err;
      }
    }
    if (t.count === 0 && exitCode !== ExitCode.Internal && exitCode !== ExitCode.Interrupted) {
      io.stderr.write(`${noRequestMessage(t.cancelled, t.notSent)}\n`);
    }
    if (failed !== undefined) throw failed;
    return { exitCode, result };
  }
}

/**
 * The outputs of the finished result that the settings ask for, in the order they are written:
 * the summary on the terminal, then the JSON result, the JUnit XML and the HTML report. Each
 * checks its path now, so a test is not run for an output that cannot be written.
 */
function resultSinks(s: CicadaConfig, io: RunIo): Sink[] {
  const jsonToStdout = s.json === "-";
  return [
    summarySink(jsonToStdout ? io.stderr : io.stdout, s.compareTo),
    ...(s.json ? [resultFile("--json", s.json, jsonText, io.stdout)] : []),
    ...(s.junit ? [resultFile("--junit", s.junit, toJUnit)] : []),
    ...(s.html ? [resultFile("--html", s.html, renderHtmlReport)] : []),
  ];
}

/** Why a run that completed no request does not pass. */
function noRequestMessage(cancelled: number, notSent: number): string {
  const cut = [
    ...(cancelled > 0 ? [`${cancelled} cut off in flight`] : []),
    ...(notSent > 0 ? [`${notSent} never sent`] : []),
  ];
  return (
    `cicada: no request completed, so the run measured nothing${cut.length > 0 ? ` (at the stop: ${cut.join(", ")})` : ""}; ` +
    "check that the target answers within the request timeout and that the tasks make requests"
  );
}

interface Resolved {
  plan: RunPlan;
  shape?: LoadShape;
}

/** What resolving a plan notes beside the plan: warnings that do not stop the run. */
interface PlanNotes {
  readonly engine: EngineChoice;
  /** One line each, deduplicated (a class may run in several scenarios). */
  readonly warnings: Set<string>;
}

/**
 * The run's engine setting and what "auto" means here. The master decides for every worker:
 * --http-engine travels in the plan. A proxy only counts for this process's own worker threads;
 * remote workers' environments are their own.
 */
function engineChoice(s: CicadaConfig, loaded: LoadedLoadfile, remote: boolean): EngineChoice {
  const engine = s.httpEngine;
  const proxy = remote ? undefined : PROXY_VARIABLE;
  const source =
    loaded.cli.httpEngine === engine
      ? `--http-engine ${engine}`
      : loaded.env.httpEngine === engine
        ? `CICADA_HTTP_ENGINE=${engine}`
        : `httpEngine: "${engine}"`;
  return {
    ...(engine !== undefined ? { engine, source } : {}),
    ...(proxy !== undefined ? { proxyVariable: proxy } : {}),
  };
}

/** One workload's plan from merged settings; checks its classes and collects its hosts. */
function resolvePlan(
  s: CicadaConfig,
  mod: Record<string, unknown>,
  loadfile: string,
  shapeClass: (new () => LoadShape) | undefined,
  hosts: Set<string>,
  notes: PlanNotes,
): Resolved {
  if (s.otelTracesSample !== undefined && !s.otelTraces) {
    // A ratio without tracing would be silently ignored: the user meant to trace.
    throw new UsageError(
      `--otel-traces-sample ${s.otelTracesSample}: it samples --otel-traces, which is off`,
    );
  }
  const plan: RunPlan = {
    loadfile,
    userClasses: s.userClasses ?? [],
    host: s.host,
    users: s.users!,
    spawnRate: s.spawnRate!,
    runTimeSec: s.runTime === undefined ? null : parseDuration(s.runTime),
    iterations: s.iterations ?? null,
    iterationsPerUser: s.iterationsPerUser ?? null,
    stopTimeoutSec: s.stopTimeout!,
    tags: s.tags ?? [],
    excludeTags: s.excludeTags ?? [],
    verifyTls: s.verifyTls!,
    ...(s.httpEngine !== undefined ? { httpEngine: s.httpEngine } : {}),
    acceptStatus: s.acceptStatus ?? [],
    ...(s.slo !== undefined ? { slo: parseSlo(s.slo, "slo") } : {}),
    processes: resolveProcesses(s.processes),
    stages: s.stages === undefined ? null : parseStages(s.stages),
    rate: s.rate ?? null,
    maxUsers: 0,
    maxDelaySec: parseDuration(s.maxDelay!),
    shape: null,
    // Without a URL the workers' exporters read OTEL_EXPORTER_OTLP_* themselves.
    ...(s.otelTraces
      ? {
          traces: {
            ...(typeof s.otel === "string" ? { url: `${s.otel}/v1/traces` } : {}),
            ...(s.otelTracesSample !== undefined ? { sample: s.otelTracesSample } : {}),
          },
        }
      : {}),
  };
  const schedulePeak = arrivalSettings(s, plan);
  // Open model: the pool may grow to --max-users, by default enough for one second of
  // arrivals at the peak rate, and at least -u.
  const peakRate =
    schedulePeak ?? (plan.stages && plan.rate !== null ? stagesPeak(plan.stages) : (plan.rate ?? 0));
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
  // Same checks the workers will make, but here they fail before anything starts.
  const picking = { loadfile, userClasses: plan.userClasses, include: plan.tags, exclude: plan.excludeTags };
  const classes = compileUserClasses(mod, picking);
  // With only fixedCount classes there are never more users than their sum, whatever -u says;
  // a worker beyond that would sit idle on an iteration share nobody uses.
  if (!classes.some((c) => c.fixedCount <= 0 && c.weight > 0)) {
    const fixed = classes.reduce((n, c) => n + c.fixedCount, 0);
    plan.processes = Math.max(1, Math.min(plan.processes, fixed));
  }
  for (const w of unknownTagWarnings(mod, picking)) notes.warnings.add(w);
  for (const c of classes) {
    const warning = fastOnlyWarning(c, notes.engine);
    if (warning) notes.warnings.add(warning);
    const host = plan.host ?? c.host;
    if (host) hosts.add(host);
    else if (c.cls.prototype instanceof HttpUser) {
      throw new UsageError(`no host for ${c.name}: pass -H/--host or set static host on the class`);
    }
  }
  return { plan, shape };
}

/**
 * Arrivals, --max-concurrency, the warm-up and cool-down windows and trace replay, into the plan;
 * returns a replay's peak arrivals per second (for the pool's default size), else null.
 */
function arrivalSettings(s: CicadaConfig, plan: RunPlan): number | null {
  let peak: number | null = null;
  if (s.schedule !== undefined) {
    if (plan.rate !== null || plan.stages !== null) {
      throw new UsageError(
        `--schedule ${s.schedule}: the schedule sets when iterations start; drop --rate and --stages`,
      );
    }
    plan.schedule = readSchedule(s.schedule);
    // Replay is open-model: a pool of users serves the rows, none of them loops on its own.
    plan.rate = 0;
    peak = peakPerSecond(plan.schedule);
  }
  // vLLM's --burstiness alone means gamma arrivals.
  const process = s.arrivals ?? (s.burstiness !== undefined ? "gamma" : "constant");
  if (s.burstiness !== undefined && process !== "gamma" && s.burstiness !== 1) {
    throw new UsageError(
      `--burstiness ${s.burstiness}: only gamma arrivals have a burstiness; add --arrivals gamma`,
    );
  }
  if (process !== "constant") {
    if (plan.rate === null) {
      throw new UsageError(`--arrivals ${process}: arrivals need an arrival rate; add --rate N`);
    }
    if (plan.schedule) throw new UsageError(`--arrivals ${process}: a --schedule sets the arrivals itself`);
  }
  plan.arrivals = { process, burstiness: s.burstiness ?? 1, seed: s.seed ?? null };
  plan.maxConcurrency = s.maxConcurrency ?? null;
  const warmupSec = s.warmup === undefined ? 0 : parseDuration(s.warmup, "--warmup");
  const cooldownSec = s.cooldown === undefined ? 0 : parseDuration(s.cooldown, "--cooldown");
  if (warmupSec > 0 || cooldownSec > 0) {
    // The cool-down is the end of the run: it needs a known end.
    const endSec = plan.runTimeSec ?? (plan.stages ? stagesDuration(plan.stages) : null);
    if (cooldownSec > 0 && endSec === null) {
      throw new UsageError(
        `--cooldown ${s.cooldown}: the cool-down ends the run, so it needs --run-time (or --stages)`,
      );
    }
    if (endSec !== null && warmupSec + cooldownSec >= endSec) {
      throw new UsageError(
        `--warmup ${s.warmup ?? 0} and --cooldown ${s.cooldown ?? 0} leave nothing of a ${endSec}s run to measure`,
      );
    }
    plan.windows = {
      warmupSec,
      cooldownSec,
      cooldownAtSec: cooldownSec > 0 && endSec !== null ? endSec - cooldownSec : null,
    };
  }
  return peak;
}

/** The books of a run's scenarios by name, for `scenario:NAME` thresholds. */
function scenarioBooks(r: Run): ScenarioSource | undefined {
  const views = r.scenarios;
  if (!views) return undefined;
  return (name) => {
    const v = views.find((x) => x.name === name);
    if (!v) return undefined;
    const run = v.run;
    if (!run?.stats) return null;
    return { books: run.stats, durationSec: run.statsElapsedSec, soak: () => soakOf(run) };
  };
}

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
  /** `--master`: each scenario spreads over every remote worker, whatever its `processes`. */
  remote: boolean,
  notes: PlanNotes,
): ScenarioSpec[] {
  // Every scenario's keys and values were checked where it was read (config file or loadfile).
  const all = s.scenarios!;
  const names = Object.keys(all);
  checkNoWorkload(cli, env, names);
  for (const [key, flag] of [
    ["warmup", "--warmup"],
    ["cooldown", "--cooldown"],
    ["schedule", "--schedule"],
  ] as const) {
    if (s[key] !== undefined) {
      throw new UsageError(
        `${flag} does not apply when the loadfile defines scenarios (scenarios: ${names.join(", ")})`,
      );
    }
  }
  if (names.length === 0) throw new UsageError("scenarios: none defined");
  const picked = s.scenario && s.scenario.length > 0 ? s.scenario : names;
  for (const n of picked) {
    if (!names.includes(n)) {
      throw new UsageError(`--scenario: no scenario "${n}"; defined: ${names.join(", ")}`);
    }
  }
  return picked.map((name) => {
    const sc = all[name]!;
    try {
      let shapeClass: (new () => LoadShape) | undefined;
      if (sc.shape !== undefined) {
        shapeClass = shapes.find((x) => x.name === sc.shape);
        if (!shapeClass) {
          throw new UsageError(
            `shape "${sc.shape}" is not a LoadShape exported by ${loadfile}` +
              (shapes.length > 0 ? ` (exported: ${shapes.map((x) => x.name).join(", ")})` : ""),
          );
        }
      }
      const merged: CicadaConfig = {
        users: sc.users ?? 1,
        spawnRate: sc.spawnRate ?? 1,
        rate: sc.rate,
        maxUsers: sc.maxUsers,
        maxDelay: sc.maxDelay ?? s.maxDelay,
        arrivals: sc.arrivals,
        burstiness: sc.burstiness,
        seed: sc.seed ?? s.seed,
        maxConcurrency: sc.maxConcurrency,
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
        httpEngine: s.httpEngine,
        acceptStatus: s.acceptStatus,
        slo: s.slo,
        otel: s.otel,
        otelTraces: s.otelTraces,
        otelTracesSample: s.otelTracesSample,
        processes: remote ? s.processes : (sc.processes ?? s.processes),
      };
      const { plan, shape } = resolvePlan(merged, mod, loadfile, shapeClass, hosts, notes);
      const startSec = sc.startTime === undefined ? 0 : parseDuration(sc.startTime);
      return { name, plan, shape, startSec };
    } catch (err) {
      if (err instanceof CicadaError) throw err.within(`scenario "${name}"`);
      throw err;
    }
  });
}
