/**
 * `run()`: a load test from inside a program or a test suite. It runs in this process, resolves to
 * the result, prints nothing unless asked, installs no signal handler and never exits.
 */
import type { CicadaConfig, ScenarioConfig, ThresholdConfig } from "../api/config.js";
import { LoadShape } from "../api/shape.js";
import type { TaskSpec } from "../api/tasks.js";
import { HttpUser, isUserClass, type UserClass } from "../api/user.js";
import type { WaitTime } from "../api/wait.js";
import { UsageError } from "../core/errors.js";
import { type EmbeddedSource, runEmbedded, type ShapeClass } from "../testrun/embedded.js";
import { closest, readConfigObject, SETTINGS } from "../testrun/settings.js";
import type { RunIo } from "../testrun/testrun.js";
import { type LoadTestResult, withHelpers } from "./result.js";

/** A task given as a function: it gets the user, whose `client` is its HTTP client. */
export type TaskFn = (user: HttpUser) => unknown;

/** A task of `tasks`: a function, or one with a weight and tags. */
export type TaskEntry = TaskFn | { task: TaskFn; weight?: number; tags?: string[] };

/** Where a run's text goes: nowhere (default), the terminal (true), or a function of each chunk. */
export type LogOption = boolean | ((text: string) => void);

export interface RunOptions {
  // What runs: exactly one of loadfile, classes and tasks.
  /** A loadfile, bundled and run as `cicada run` runs it; the only source worker threads can load. */
  loadfile?: string;
  /** User classes (extending User or HttpUser) to run in this thread. */
  classes?: UserClass[];
  /** The tasks of one HttpUser, by name, run in this thread: `{ health: (u) => u.client.get("/health") }`. */
  tasks?: Record<string, TaskEntry>;
  /** With `tasks`: the wait after each task, e.g. between(0.5, 2); none by default. */
  waitTime?: WaitTime;

  /** Base URL of the target; wins over the classes' static host. */
  host?: string;
  /** Closed model: concurrent users, started at `spawnRate` per second (default: all at once). */
  users?: number;
  spawnRate?: number;
  /** Open model: iterations started per second. */
  rate?: number;
  maxUsers?: number;
  maxDelay?: string | number;
  /** Open model: "constant" (default), "poisson" or "gamma" gaps; `burstiness` is the gamma's shape. */
  arrivals?: CicadaConfig["arrivals"];
  burstiness?: number;
  /** Seed of the arrival gaps: the same seed repeats the schedule. */
  seed?: number;
  /** Most iterations in flight at once. */
  maxConcurrency?: number;
  /** Traffic that the figures leave out: the first `warmup` and the last `cooldown` of the run. */
  warmup?: string | number;
  cooldown?: string | number;
  /** Trace replay: a JSONL or CSV file of start offsets (docs/arrivals.md). */
  schedule?: string;
  /** Users (or, with `rate`, rates) over time: "30s:100,1m:100" or [{ duration, target }]. */
  stages?: CicadaConfig["stages"];
  /** A LoadShape (class or instance) that drives the run, or the name of one the loadfile exports. */
  shape?: string | LoadShape | ShapeClass;
  /** Stop after this long: "30s", "5m", or seconds. */
  duration?: string | number;
  /** Stop after this many task iterations in total. */
  iterations?: number;
  /** Each user stops after this many task iterations. */
  iterationsPerUser?: number;
  /** Seconds users get to finish their task when the run stops (default 0). */
  stopTimeout?: number;
  /** With `loadfile`: the classes to run, by name (default all). */
  userClasses?: string[];
  tags?: string[];
  excludeTags?: string[];
  scenarios?: Record<string, ScenarioConfig>;
  scenario?: string[];
  /** Pass/fail criteria: "p95<500", "error_rate<1%", "GET /health: p99<100", ... */
  thresholds?: Array<string | ThresholdConfig>;
  /** Status codes ≥ 400 that count as successes. */
  acceptStatus?: number[];
  /** Service-level objectives of streams, for goodput: "ttft<500ms,tpot<50ms,e2el<10s". */
  slo?: CicadaConfig["slo"];
  exitCodeOnError?: number;
  verifyTls?: boolean;
  /** Every HttpUser's client: "auto", "fast" or "undici"; wins over each class's static engine. */
  httpEngine?: CicadaConfig["httpEngine"];
  /** Check that each host accepts connections first (default true). */
  preflight?: boolean;
  /** Worker threads (needs `loadfile`); default 1: the users run in this thread. */
  processes?: number;

  /** Output files, as the flags of `cicada run` write them. */
  json?: string;
  html?: string;
  csv?: string;
  csvFullHistory?: boolean;
  junit?: string;
  /** Compare with a stored baseline (name or result file); a regression fails the run. */
  compareTo?: string;
  tolerance?: string;
  baselineDir?: string;

  /** A config file to read (none is looked for otherwise). */
  config?: string;
  /** Read CICADA_* settings from this environment, e.g. process.env (none are read otherwise). */
  env?: NodeJS.ProcessEnv;
  /** Ends the run early; `run()` then resolves with the result so far (exit code 130). */
  signal?: AbortSignal;
  /** The summary and notices: not printed (default), printed (true), or handed to a function. */
  log?: LogOption;
}

/** Options of this front that are no setting of the settings table, or are renamed. */
const OWN = ["classes", "tasks", "waitTime", "shape", "duration", "config", "env", "signal", "log"] as const;
/** Settings the call passes through as they are. */
const PASSED = [
  "loadfile",
  "host",
  "users",
  "spawnRate",
  "rate",
  "maxUsers",
  "maxDelay",
  "arrivals",
  "burstiness",
  "seed",
  "maxConcurrency",
  "warmup",
  "cooldown",
  "schedule",
  "stages",
  "iterations",
  "iterationsPerUser",
  "stopTimeout",
  "userClasses",
  "tags",
  "excludeTags",
  "scenarios",
  "scenario",
  "thresholds",
  "acceptStatus",
  "slo",
  "exitCodeOnError",
  "verifyTls",
  "httpEngine",
  "preflight",
  "processes",
  "json",
  "html",
  "csv",
  "csvFullHistory",
  "junit",
  "compareTo",
  "tolerance",
  "baselineDir",
] as const satisfies ReadonlyArray<keyof CicadaConfig>;
const KNOWN: readonly string[] = [...PASSED, ...OWN];

/** The run's streams: a sink unless the caller asked for the text. */
export function ioFor(log: LogOption | undefined, env: NodeJS.ProcessEnv): RunIo {
  if (log === true) return { stdout: process.stdout, stderr: process.stderr, env };
  const to = typeof log === "function" ? log : undefined;
  const sink = {
    isTTY: false,
    write(chunk: string | Uint8Array): boolean {
      to?.(String(chunk).replace(/\n$/, ""));
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  return { stdout: sink, stderr: sink, env };
}

function checkLog(log: unknown, where: string): void {
  if (log !== undefined && typeof log !== "boolean" && typeof log !== "function") {
    throw new UsageError(`${where}: log: expected true, false or a function of each text`);
  }
}

function checkKeys(o: Record<string, unknown>, known: readonly string[], where: string): void {
  for (const k of Object.keys(o)) {
    if (known.includes(k)) continue;
    const near = closest(k, known);
    throw new UsageError(
      `${where}: unknown option "${k}"${near ? ` (did you mean "${near}"?)` : `; known: ${known.join(", ")}`}`,
    );
  }
}

function isShapeClass(v: unknown): v is ShapeClass {
  return typeof v === "function" && v.prototype instanceof LoadShape;
}

/** A shape instance as a class whose instances are that one object. */
function shapeOf(v: unknown): ShapeClass {
  if (isShapeClass(v)) return v;
  if (v instanceof LoadShape) {
    const given = v;
    const C = class extends LoadShape {
      tick(elapsedSec: number) {
        return given.tick(elapsedSec);
      }
    };
    Object.defineProperty(C, "name", { value: given.constructor.name || "shape" });
    return C;
  }
  throw new UsageError("run(): shape: expected a LoadShape (class or instance) or the name of one");
}

function tasksClass(tasks: unknown, waitTime: unknown): UserClass {
  if (
    tasks === null ||
    typeof tasks !== "object" ||
    Array.isArray(tasks) ||
    Object.keys(tasks).length === 0
  ) {
    throw new UsageError(
      "run(): tasks: expected an object of named task functions, e.g. { health: (u) => ... }",
    );
  }
  if (waitTime !== undefined && typeof waitTime !== "function") {
    throw new UsageError("run(): waitTime: expected a wait-time function such as between(1, 3)");
  }
  const specs: TaskSpec[] = Object.entries(tasks as Record<string, unknown>).map(([name, v]) => {
    if (typeof v === "function") return { task: v as TaskFn, name };
    const e = v as { task?: unknown; weight?: unknown; tags?: unknown } | null;
    if (e === null || typeof e !== "object" || typeof e.task !== "function") {
      throw new UsageError(`run(): tasks.${name}: expected a function, or { task, weight, tags }`);
    }
    const weight = e.weight === undefined ? 1 : e.weight;
    if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 0) {
      throw new UsageError(`run(): tasks.${name}.weight: expected an integer ≥ 0, got ${String(e.weight)}`);
    }
    if (e.tags !== undefined && !(Array.isArray(e.tags) && e.tags.every((t) => typeof t === "string"))) {
      throw new UsageError(`run(): tasks.${name}.tags: expected a list of names`);
    }
    return { task: e.task as TaskFn, name, weight, ...(e.tags ? { tags: e.tags as string[] } : {}) };
  });
  return class Tasks extends HttpUser {
    static override tasks = specs;
    static override waitTime = waitTime as WaitTime | undefined;
  } as unknown as UserClass;
}

function classesModule(classes: unknown): Record<string, unknown> {
  if (!Array.isArray(classes) || classes.length === 0) {
    throw new UsageError(
      "run(): classes: expected a list of user classes (classes that extend User or HttpUser)",
    );
  }
  const mod: Record<string, unknown> = {};
  classes.forEach((c, i) => {
    if (!isUserClass(c)) {
      throw new UsageError(`run(): classes[${i}]: not a user class (it must extend User or HttpUser)`);
    }
    if (!c.name) throw new UsageError(`run(): classes[${i}]: a user class needs a name`);
    if (mod[c.name] !== undefined) throw new UsageError(`run(): classes: two classes are named ${c.name}`);
    mod[c.name] = c;
  });
  return mod;
}

/**
 * Runs a load test in this process and resolves to its result: the JSON result of `cicada run`
 * with helpers (`result.endpoint("GET /health").p(95)`, `result.assertPassed()`). A failed
 * threshold or failed requests do not reject: check `result.passed`. It rejects only when the
 * test cannot start, with a UsageError, TargetUnreachable or another CicadaError.
 */
export async function run(options: RunOptions): Promise<LoadTestResult> {
  if (options === null || typeof options !== "object") {
    throw new UsageError("run(): expected an object of options, e.g. run({ tasks, host, users: 10 })");
  }
  const o = options as RunOptions & Record<string, unknown>;
  checkKeys(o, KNOWN, "run()");
  checkLog(o.log, "run()");
  const given = (["loadfile", "classes", "tasks"] as const).filter((k) => o[k] !== undefined);
  if (given.length !== 1) {
    throw new UsageError(
      given.length === 0
        ? "run(): nothing to run: give loadfile, classes or tasks"
        : `run(): give one of loadfile, classes and tasks, not ${given.join(" and ")}`,
    );
  }
  if (o.waitTime !== undefined && o.tasks === undefined) {
    throw new UsageError("run(): waitTime goes with tasks; user classes set their own static waitTime");
  }
  if (o.json === "-") throw new UsageError("run(): json: give a file name (run() returns the result itself)");
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new UsageError("run(): signal: expected an AbortSignal");
  }
  if (o.env !== undefined && (o.env === null || typeof o.env !== "object")) {
    throw new UsageError("run(): env: expected an object of environment variables, e.g. process.env");
  }

  const passed: Record<string, unknown> = {};
  for (const k of PASSED) if (o[k] !== undefined) passed[k] = o[k];
  if (typeof o.shape === "string") passed.shape = o.shape;
  const settings = readConfigObject(passed, "run()");
  if (o.duration !== undefined) settings.runTime = SETTINGS.runTime.parse(o.duration, "run(): duration");
  const shape = o.shape === undefined || typeof o.shape === "string" ? undefined : shapeOf(o.shape);

  let source: EmbeddedSource;
  if (o.loadfile !== undefined) {
    source = { loadfile: o.loadfile };
  } else {
    const label = o.classes !== undefined ? "run({ classes })" : "run({ tasks })";
    const mod =
      o.classes !== undefined ? classesModule(o.classes) : { Tasks: tasksClass(o.tasks, o.waitTime) };
    // The host can only come from the call here, unless a config file or env may set it.
    if (o.host === undefined && o.config === undefined && o.env?.CICADA_HOST === undefined) {
      for (const c of Object.values(mod) as UserClass[]) {
        if (c.prototype instanceof HttpUser && !c.host) {
          throw new UsageError(
            `${label}: no host for ${c.name}: pass host (e.g. host: "http://127.0.0.1:8080") or set static host on the class`,
          );
        }
      }
    }
    source = { label, mod };
  }
  const env = o.env ?? {};
  const outcome = await runEmbedded({
    source,
    settings,
    base: { processes: 1 },
    spawnAtOnce: true,
    requireEnd: true,
    ...(shape ? { shape } : {}),
    ...(o.config !== undefined ? { config: o.config } : {}),
    ...(o.env !== undefined ? { env } : {}),
    io: ioFor(o.log, env),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  return withHelpers(outcome.result!);
}
