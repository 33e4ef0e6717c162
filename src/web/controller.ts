import type { CicadaConfig } from "../api/config.js";
import { CicadaError } from "../core/errors.js";
import { compileUserClasses } from "../loadfile/inspect.js";
import type { MetricsSource } from "../outputs/prometheus.js";
import { metricsOf, type RunResult } from "../result/result.js";
import type { EndpointSeriesRow, SeriesRow, StatsAggregate } from "../stats/aggregate.js";
import { readApiBody } from "../testrun/settings.js";
import {
  type LoadedLoadfile,
  type RunIo,
  type RunOutcome,
  TestRun,
  type WorkerPool,
} from "../testrun/testrun.js";

interface ClassSummary {
  name: string;
  weight: number;
  fixedCount: number;
  tags: string[];
  host: string | null;
}

export type UiStatus = "ready" | "spawning" | "running" | "stopping" | "stopped";

/** A request the API rejects: its status code and one clear message. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** What a client has already been sent, so each stats event carries only new rows. */
export interface SeriesCursor {
  runId: number;
  books: StatsAggregate | undefined;
  series: number;
  endpoints: Map<string, number>;
  /** Points sent of each resource series. */
  resources: Map<string, number>;
}

export function newCursor(): SeriesCursor {
  return { runId: 0, books: undefined, series: 0, endpoints: new Map(), resources: new Map() };
}

const endpointKey = (e: { type: string; method: string; name: string }) => `${e.type} ${e.method} ${e.name}`;

/**
 * The web UI's model: at most one test at a time, started, steered and stopped through the API.
 * Every test is a TestRun, the same as a headless run, so its outputs are the CLI's.
 */
export class WebController {
  private test: TestRun | undefined;
  private running: Promise<RunOutcome> | undefined;
  runId = 0;
  lastOutcome: RunOutcome | undefined;
  /** Told about every state change and every second of a running test. */
  onChange: ((kind: "state" | "stats") => void) | undefined;

  constructor(
    private readonly loaded: LoadedLoadfile,
    private readonly base: CicadaConfig,
    private readonly io: RunIo,
    private readonly webLogin: boolean,
    /** `--master`: each test runs on the remote workers connected when it starts. */
    private readonly workers?: WorkerPool,
  ) {
    // The start form shows how many workers wait; it hears of each one that comes or goes.
    workers?.onCountChange(() => this.onChange?.("state"));
  }

  get status(): UiStatus {
    const t = this.test;
    if (!t) return "ready";
    if (t.outcome) return "stopped";
    switch (t.runner.phase) {
      case "starting":
      case "spawning":
        return "spawning";
      case "running":
        return "running";
      case "stopping":
        return "stopping";
      default:
        return "stopped";
    }
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  private classesCache: ClassSummary[] | undefined;

  private classes(): ClassSummary[] {
    if (this.classesCache) return this.classesCache;
    const { mod, loadfile } = this.loaded;
    let classes: ClassSummary[] = [];
    try {
      classes = compileUserClasses(mod, { loadfile, userClasses: [], include: [], exclude: [] }).map((c) => ({
        name: c.name,
        weight: c.weight,
        fixedCount: c.fixedCount,
        tags: [...new Set(c.tasks.flatMap((t) => [...t.tags]))].sort(),
        host: c.host ?? null,
      }));
    } catch {
      // A loadfile whose classes do not compile cannot start; the start request says why.
    }
    this.classesCache = classes;
    return classes;
  }

  state(): Record<string, unknown> {
    const { loadfile, shapes } = this.loaded;
    const s = this.base;
    const classes = this.classes();
    const t = this.test;
    return {
      status: this.status,
      loadfile,
      classes,
      tags: [...new Set(classes.flatMap((c) => c.tags))].sort(),
      shapes: shapes.map((x) => x.name),
      scenarios: s.scenarios ? Object.keys(s.scenarios) : [],
      // `--master`: the workers waiting for the next test; null on one machine.
      workers: this.workers ? { connected: this.workers.connected } : null,
      defaults: {
        users: s.users ?? 1,
        spawnRate: s.spawnRate ?? 1,
        rate: s.rate ?? null,
        maxUsers: s.maxUsers ?? null,
        host: s.host ?? classes.find((c) => c.host)?.host ?? null,
        runTime: s.runTime ?? null,
        stages: typeof s.stages === "string" ? s.stages : s.stages ? JSON.stringify(s.stages) : null,
        shape: s.shape ?? null,
        userClasses: s.userClasses ?? [],
        tags: s.tags ?? [],
        excludeTags: s.excludeTags ?? [],
      },
      run: t
        ? {
            id: this.runId,
            startedAt: t.runner.startedAt > 0 ? new Date(t.runner.startedAt).toISOString() : null,
            config: t.runner.plan ? { ...t.runner.plan, userIds: undefined } : { scenarios: true },
            stopReason: t.runner.stopReason ?? null,
            exitCode: t.outcome?.exitCode ?? null,
          }
        : null,
      webLogin: this.webLogin,
    };
  }

  /** Settings for a new test: the run's settings, overridden by the start form. */
  private settingsFor(req: Record<string, unknown>): CicadaConfig {
    return { ...this.base, ...readApiBody(req, "start") };
  }

  async start(req: Record<string, unknown>): Promise<{ id: number }> {
    if (this.busy) throw new ApiError(409, "a test is running; stop it first");
    let test: TestRun;
    try {
      const settings = this.settingsFor(req);
      const pool = this.workers;
      if (pool && pool.connected === 0) {
        throw new ApiError(
          409,
          "no worker has connected to this master yet: start cicada worker on the load machines",
        );
      }
      test = await TestRun.create(
        this.loaded,
        pool ? { ...settings, processes: pool.connected } : settings,
        this.io,
        {
          onTick: () => this.onChange?.("stats"),
          onNotice: (m) => this.io.stderr.write(`${m}\n`),
          ...(pool ? { remote: pool } : {}),
        },
      );
    } catch (err) {
      if (err instanceof CicadaError) throw new ApiError(400, err.message);
      throw err;
    }
    this.test = test;
    this.runId++;
    const run = test.run();
    this.running = run;
    run
      .then((outcome) => {
        this.lastOutcome = outcome;
      })
      .catch((err: unknown) => {
        this.io.stderr.write(`test failed: ${(err as Error)?.message ?? err}\n`);
      })
      .finally(() => {
        this.running = undefined;
        this.onChange?.("stats");
        this.onChange?.("state");
      });
    // The coordinator leaves "starting" once its workers are ready: tell clients then too.
    setTimeout(() => this.onChange?.("state"), 300).unref();
    this.onChange?.("state");
    return { id: this.runId };
  }

  /** Resolves when the current test (if any) has ended and written its outputs. */
  async settled(): Promise<RunOutcome | undefined> {
    try {
      await this.running;
    } catch {
      // reported where it happened
    }
    return this.lastOutcome;
  }

  stop(): void {
    if (!this.busy || !this.test) throw new ApiError(409, "no test is running");
    this.test.stop("api");
    this.onChange?.("state");
  }

  abort(): void {
    this.test?.abort();
  }

  edit(req: Record<string, unknown>): void {
    const t = this.test;
    if (!this.busy || !t) throw new ApiError(409, "no test is running");
    const r = t.runner;
    try {
      const e = readApiBody(req, "edit");
      if (e.rate !== undefined) r.setRate(e.rate);
      else if (e.users !== undefined) r.setUsers(e.users, e.spawnRate);
      else throw new ApiError(400, 'expected {"users": N} or {"rate": R}');
    } catch (err) {
      if (err instanceof ApiError) throw err;
      if (err instanceof CicadaError) throw new ApiError(400, err.message);
      throw new ApiError(409, (err as Error).message);
    }
    this.onChange?.("state");
  }

  reset(): void {
    const t = this.test;
    if (!this.busy || !t) throw new ApiError(409, "no test is running");
    try {
      t.runner.resetStats();
    } catch (err) {
      // The run's model has no such knob (a run with scenarios).
      throw new ApiError(409, (err as Error).message);
    }
    this.onChange?.("stats");
  }

  /** The books the Prometheus exporter reads: the current or last test's. */
  metricsSource(): MetricsSource | undefined {
    return this.test?.metricsSource();
  }

  /** The current or last test's result, as `--json` writes it. */
  result(): RunResult {
    if (!this.test) throw new ApiError(404, "no test has run yet");
    return this.test.currentResult();
  }

  /** The test whose books the downloads read. */
  get current(): TestRun {
    if (!this.test) throw new ApiError(404, "no test has run yet");
    return this.test;
  }

  /**
   * A stats event for one client: the figures of now, plus the series rows it has not been sent
   * yet (all of them after a new test or a reset).
   */
  statsEvent(cursor: SeriesCursor): Record<string, unknown> | undefined {
    const t = this.test;
    if (!t) return undefined;
    const r = t.runner;
    const books = r.stats;
    if (!books) return undefined;
    const fresh = cursor.runId !== this.runId || cursor.books !== books;
    if (fresh) {
      cursor.runId = this.runId;
      cursor.books = books;
      cursor.series = 0;
      cursor.endpoints = new Map();
      cursor.resources = new Map();
    }
    const seriesFrom = cursor.series;
    const series: SeriesRow[] = books.series.slice(seriesFrom);
    cursor.series = books.series.length;
    const endpointSeries: Record<string, EndpointSeriesRow[]> = {};
    const endpoints = books.sortedEndpoints().map((e) => {
      const key = endpointKey(e);
      const from = cursor.endpoints.get(key) ?? 0;
      if (e.series.length > from) endpointSeries[key] = e.series.slice(from);
      cursor.endpoints.set(key, e.series.length);
      const last = e.series[e.series.length - 1];
      return {
        key,
        type: e.type,
        method: e.method,
        name: e.name,
        requests: e.count,
        failures: e.failures,
        rps: t.statsElapsedSec > 0 ? Math.round((e.count / t.statsElapsedSec) * 10) / 10 : 0,
        currentRps: last ? last.requests : 0,
        latencyMs: e.latencySummary(),
        bytesReceived: e.bytes,
        // Summarized as in the JSON result, by the same code.
        ...metricsOf(e),
      };
    });
    const cur = books.current();
    const total = books.total;
    const st = r.status();
    return {
      runId: this.runId,
      status: this.status,
      elapsedSec: Math.round(r.elapsedSec * 10) / 10,
      users: books.users,
      targetUsers: st.targetUsers,
      rate: st.rate,
      dropped: books.dropped,
      current: {
        rps: Math.round(cur.rps * 10) / 10,
        failuresPerSec: Math.round(cur.failuresPerSec * 10) / 10,
        p50: cur.p50,
        p95: cur.p95,
      },
      totals: {
        requests: total.count,
        failures: total.failures,
        rps: t.statsElapsedSec > 0 ? Math.round((total.count / t.statsElapsedSec) * 10) / 10 : 0,
        latencyMs: total.latencySummary(),
      },
      endpoints,
      seriesFrom,
      series,
      endpointSeries,
      failures: [...books.errors.values()].sort((a, b) => b.occurrences - a.occurrences),
      exceptions: [...books.exceptions.values()].sort((a, b) => b.count - a.count),
      thresholds: t.watch.latest,
      checks: [...books.checks].map(([name, c]) => ({
        name,
        passes: c.passes,
        fails: c.fails,
        rate: c.passes / Math.max(1, c.passes + c.fails),
      })),
      workers: t.workerInfo(),
      // The resource points added since this client's last event; all of them after a new
      // test or a reset, which `resourcesReset` tells it.
      resourcesReset: fresh,
      resources: books.resources.since(r.statsStartedAt, cursor.resources),
    };
  }
}
