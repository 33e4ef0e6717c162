/**
 * Every run setting, declared once: its flag, env name, config-file key, scenario and web API
 * use, parser, help text and default. The command line, CICADA_* env, config files, scenarios
 * and the web API all read their settings through this table, so they agree on names and ranges.
 */
import type { CicadaConfig, ScenarioConfig, ThresholdConfig } from "../api/config.js";
import { CicadaError, UsageError } from "../core/errors.js";
import { parseDuration, parseList } from "../core/parse.js";
import { parseMonitorQuery } from "../protocols/monitor/prometheus-text.js";
import { parseStages } from "../runner/stages.js";
import { parseSlo } from "../stats/slo.js";
import { parseThreshold } from "../thresholds/parse.js";

/** Flags of commands other than `run` that share this table's parsers. */
export interface CommandOnly {
  /** `--config FILE`. */
  config?: string;
  /** `run --worker`: run as a worker, like `cicada worker`. */
  worker?: boolean;
  masterHost?: string;
  masterPort?: number;
  /** `cicada worker --connect-timeout`: seconds to keep trying to reach the master. */
  connectTimeout?: number;
  /** `cicada worker --once`: exit after one test instead of waiting for the next. */
  once?: boolean;
  /** A worker's CA file: it connects over TLS and trusts only masters this CA signed. */
  tlsCa?: string;
  // `cicada sweep` (docs/sweep.md).
  /** Closed-model levels: this many users each. */
  concurrency?: number[];
  /** Open-model levels: these rates, or "auto" (synchronous, throughput, then rates between). */
  rates?: number[] | "auto";
  /** Measured time of each level, after its warm-up. */
  stepTime?: string | number;
  /** `--rates auto`: levels in all. */
  sweepSize?: number;
  /** Stop the sweep after the first level whose error rate is above this (0–1). */
  maxErrorRate?: number;
  /** Stop the sweep when a level shows over-saturation. */
  stopOnSaturation?: boolean;
  /** The SLO-constrained maximum: levels whose overall p95 is within this many ms. */
  maxP95?: number;
}

/** What each key holds, from whichever source it comes. */
export type SettingValues = CicadaConfig & Pick<ScenarioConfig, "startTime" | "duration"> & CommandOnly;
export type SettingKey = keyof SettingValues;

/**
 * Parses one value. `name` is how the user wrote it: the flag, the env var, the config-file key,
 * the scenario key or the web API field; every error starts with it. Values from the command
 * line and the environment are strings; config files and the web API may give any JSON value.
 */
export type Parse<T> = (value: unknown, name: string) => T;

export interface Setting<T> {
  parse: Parse<T>;
  /** Commander syntax of its flag, e.g. "-u, --users <n>"; none if it has no flag. */
  flag?: string;
  /** A flag of another command only (`cicada worker`), not of `cicada run`. */
  run?: false;
  help?: string;
  /** How the command line gives it when not by a flag. */
  cliName?: string;
  /** The value a flag without an argument sets (`--insecure` sets verifyTls to false). */
  flagSets?: T;
  /** Values given several times on the command line add up (variadic or repeatable flags). */
  many?: boolean;
  /** Read from CICADA_<KEY> (default true). */
  env?: boolean;
  /** Allowed in the config file and the loadfile's `options` (default true). */
  file?: boolean;
  /**
   * Per scenario: "workload" settings belong to each scenario, and setting them for the whole
   * run is an error when the loadfile has scenarios; "inherit" ones default to the run's;
   * "own" ones exist only per scenario.
   */
  scenario?: "workload" | "inherit" | "own";
  /** Fields of the web API's request bodies; a clearable one takes null for "no value". */
  api?: { start?: boolean; edit?: boolean; clearable?: boolean };
  /** The value a run gets when no source sets it. */
  default?: T;
}

type Table = { [K in SettingKey]-?: Setting<Exclude<SettingValues[K], undefined>> };

// ---------------------------------------------------------------------------------------------
// Parsers

function shown(v: unknown): string {
  if (typeof v === "string") return `"${v}"`;
  if (v === undefined) return "nothing";
  return JSON.stringify(v) ?? String(v);
}

export function usageError(name: string, expected: string, got: unknown): CicadaError {
  return new UsageError(`${name}: expected ${expected}, got ${shown(got)}`);
}

function numeric(v: unknown, integer: boolean): number {
  if (typeof v === "number") return v;
  if (typeof v !== "string") return Number.NaN;
  const t = v.trim();
  if (integer ? !/^-?\d+$/.test(t) : t === "") return Number.NaN;
  return Number(t);
}

/** An integer in [min, max]. */
export function int(min: number, max = Number.MAX_SAFE_INTEGER, expected?: string): Parse<number> {
  const what =
    expected ?? (max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer ${min}–${max}`);
  return (v, name) => {
    const n = numeric(v, true);
    if (!Number.isSafeInteger(n) || n < min || n > max) throw usageError(name, what, v);
    return n;
  };
}

/** A number > 0. */
export const positive: Parse<number> = (v, name) => {
  const n = numeric(v, false);
  if (!Number.isFinite(n) || n <= 0) throw usageError(name, "a number > 0", v);
  return n;
};

export const port = int(0, 65535, "a port 0–65535");
/** Exit codes wrap modulo 256: 256 would read as success. */
export const exitCode = int(0, 255, "an exit code 0–255");

const processes: Parse<number> = (v, name) => {
  const n = numeric(v, true);
  if (!Number.isSafeInteger(n) || (n < 1 && n !== -1)) {
    throw usageError(name, "a number of workers ≥ 1, or -1 for one per core", v);
  }
  return n;
};

export const text: Parse<string> = (v, name) => {
  if (typeof v !== "string") throw usageError(name, "a string", v);
  return v;
};

/** A duration in seconds: "90", "30s", "5m", "1h30m", or a number. */
export const seconds: Parse<number> = (v, name) => {
  if (typeof v !== "string" && typeof v !== "number") throw usageError(name, "a duration such as 30s", v);
  return parseDuration(v, name);
};

/** A duration > 0 in seconds. */
export const positiveSeconds: Parse<number> = (v, name) => {
  const sec = seconds(v, name);
  if (!(sec > 0)) throw new UsageError(`${name}: must be more than 0, got ${shown(v)}`);
  return sec;
};

/** A duration, checked but kept as written ("30s" reads better than 30 in the web UI). */
const duration: Parse<string | number> = (v, name) => {
  seconds(v, name);
  return v as string | number;
};

export const bool: Parse<boolean> = (v, name) => {
  if (typeof v === "boolean") return v;
  const s = typeof v === "string" ? v.trim().toLowerCase() : undefined;
  if (s !== undefined && ["1", "true", "yes", "on"].includes(s)) return true;
  if (s !== undefined && ["0", "false", "no", "off", ""].includes(s)) return false;
  throw usageError(name, "true or false", v);
};

/** `--arrivals`: one of the arrival processes. */
const arrivalProcess: Parse<"constant" | "poisson" | "gamma"> = (v, name) => {
  const t = typeof v === "string" ? v.trim().toLowerCase() : v;
  if (t === "constant" || t === "poisson" || t === "gamma") return t;
  throw usageError(name, "constant, poisson or gamma", v);
};

/** `--http-engine`: which HTTP client the users' `this.client` runs on. */
const httpEngine: Parse<NonNullable<CicadaConfig["httpEngine"]>> = (v, name) => {
  const t = typeof v === "string" ? v.trim().toLowerCase() : v;
  if (t === "auto" || t === "fast" || t === "undici") return t;
  throw usageError(name, "auto, fast or undici", v);
};

/** Names, comma or space separated, or a list of them. */
const list: Parse<string[]> = (v, name) => {
  if (typeof v === "string") return parseList(v) ?? [];
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return parseList(v) ?? [];
  throw usageError(name, "a list of names", v);
};

/** `429,503` or `400-404`, or a list of codes: status codes that count as successes. */
const statusList: Parse<number[]> = (v, name) => {
  const items = typeof v === "string" ? [v] : Array.isArray(v) ? v : [v];
  const out: number[] = [];
  for (const item of items.flatMap((x) => (typeof x === "string" ? (parseList(x) ?? []) : [x]))) {
    const m = typeof item === "number" ? [String(item), String(item)] : /^(\d{3})(?:-(\d{3}))?$/.exec(item);
    const lo = m ? Number(m[1]) : Number.NaN;
    const hi = m?.[2] ? Number(m[2]) : lo;
    if (!m || !Number.isInteger(lo) || lo < 100 || hi > 599 || hi < lo) {
      throw usageError(name, "status codes such as 429 or 400-404", item);
    }
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
};

const hostUrl: Parse<string> = (v, name) => {
  if (typeof v !== "string" || !/^(https?|wss?):\/\/[^/]/i.test(v)) {
    throw usageError(name, "an http://, https://, ws:// or wss:// URL", v);
  }
  return v;
};

/**
 * `--otel`: true (bare flag, or true in a config file) leaves the endpoint to the OpenTelemetry
 * SDK's own variables; a URL is the OTLP/HTTP base, to which /v1/metrics and /v1/traces are added.
 */
const otelEndpoint: Parse<string | boolean> = (v, name) => {
  if (typeof v === "boolean") return v;
  if (typeof v === "string") {
    const t = v.trim();
    if (/^https?:\/\/[^/]/i.test(t)) return t.replace(/\/+$/, "");
    if (["1", "true", "yes", "on"].includes(t.toLowerCase())) return true;
    if (["0", "false", "no", "off"].includes(t.toLowerCase())) return false;
  }
  throw usageError(name, "an http:// or https:// URL of an OTLP/HTTP receiver, or true", v);
};

/** The master/worker token: long enough that a captured challenge cannot be brute-forced. */
const token: Parse<string> = (v, name) => {
  if (typeof v !== "string" || v.trim().length < 16) {
    // Never echo a secret, even a short one.
    throw new UsageError(
      `${name}: expected a secret of at least 16 characters (e.g. the output of openssl rand -hex 32), got ${typeof v === "string" ? `${v.trim().length} character(s)` : shown(v)}`,
    );
  }
  return v.trim();
};

const webLogin: Parse<string> = (v, name) => {
  if (typeof v !== "string" || !/^[^:]+:.+$/.test(v)) {
    // Never echo a password.
    throw usageError(name, "USER:PASSWORD", typeof v === "string" ? v.replace(/:.*/, ":…") : v);
  }
  return v;
};

type StagesValue = Exclude<CicadaConfig["stages"], undefined>;
const stages: Parse<StagesValue> = (v, name) => {
  if (typeof v !== "string" && !Array.isArray(v)) {
    throw usageError(name, "stages such as 30s:100,2m:100 or a list of {duration, target}", v);
  }
  parseStages(v, name);
  return v;
};

/** Threshold expressions: one per value, or several separated by ";" or line breaks. */
const thresholds: Parse<Array<string | ThresholdConfig>> = (v, name) => {
  const items =
    typeof v === "string"
      ? v
          .split(/[;\n]/)
          .map((x) => x.trim())
          .filter((x) => x.length > 0)
      : v;
  if (!Array.isArray(items)) throw usageError(name, 'a list of thresholds such as "p95<500"', v);
  for (const t of items) {
    try {
      parseThreshold(t as string | ThresholdConfig);
    } catch (err) {
      if (err instanceof CicadaError) throw err.within(name);
      throw err;
    }
  }
  return items as Array<string | ThresholdConfig>;
};

/** `--monitor-pid`: pids or process names, comma or space separated, or a list of them. */
const pidList: Parse<string[]> = (v, name) => {
  const items = typeof v === "number" ? [String(v)] : list(v, name);
  for (const p of items) {
    if (/^\d+$/.test(p) ? Number(p) < 1 : !/^[^\s/]{1,255}$/.test(p)) {
      throw usageError(name, "a process id or a process name", p);
    }
  }
  return items;
};

/** `--monitor-url`: http(s) URLs of Prometheus endpoints. */
const metricsUrls: Parse<string[]> = (v, name) => {
  const items = typeof v === "string" ? [v] : Array.isArray(v) ? v : [v];
  for (const u of items) {
    if (typeof u !== "string" || !/^https?:\/\/[^/]/i.test(u)) {
      throw usageError(name, "an http:// or https:// URL of a Prometheus endpoint", u);
    }
  }
  return items as string[];
};

/** `--monitor-query NAME=SERIES`: checked by the monitor's own parser, so both agree. */
const monitorQueries: Parse<string[]> = (v, name) => {
  const items = typeof v === "string" ? [v] : Array.isArray(v) ? v : [v];
  for (const q of items) {
    if (typeof q !== "string") throw usageError(name, "NAME=SERIES", q);
    try {
      parseMonitorQuery(q);
    } catch (err) {
      if (err instanceof CicadaError) throw err.within(name);
      throw err;
    }
  }
  return items as string[];
};

/** A list of numbers > 0 (integers for user counts), comma or space separated; errors name the item. */
function positiveList(integer: boolean): Parse<number[]> {
  return (v, name) => {
    const items = Array.isArray(v)
      ? v
      : typeof v === "number"
        ? [v]
        : typeof v === "string"
          ? (parseList(v) ?? [])
          : null;
    const expected = integer ? `a list of user counts such as 10,50,100` : "a list of rates such as 10,20,50";
    if (!items || items.length === 0) throw usageError(name, expected, v);
    return items.map((x) => {
      const n = numeric(x, integer);
      if (!(Number.isFinite(n) && n > 0 && (!integer || Number.isSafeInteger(n)))) {
        throw new UsageError(
          `${name}: expected ${expected}; ${shown(x)} is not ${integer ? "an integer ≥ 1" : "a number > 0"} (in ${shown(v)})`,
        );
      }
      return n;
    });
  };
}

const rateList: Parse<number[] | "auto"> = (v, name) =>
  typeof v === "string" && v.trim().toLowerCase() === "auto" ? "auto" : positiveList(false)(v, name);

/** A number written as a share, "0.05" or "5%"; NaN when it is neither. */
function share(v: unknown): number {
  const t = typeof v === "string" ? v.trim() : v;
  return typeof t === "string" && t.endsWith("%") ? numeric(t.slice(0, -1), false) / 100 : numeric(t, false);
}

/** A share 0–1: "0.05" or "5%". */
const fraction: Parse<number> = (v, name) => {
  const n = share(v);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw usageError(name, "a share such as 0.05 or 5%", v);
  return n;
};

/** A sampling ratio 0 < r ≤ 1: "0.01" or "1%" (0 would trace nothing: leave tracing off instead). */
const sampleRatio: Parse<number> = (v, name) => {
  const n = share(v);
  if (!Number.isFinite(n) || n <= 0 || n > 1)
    throw usageError(name, "a ratio 0 < r ≤ 1 such as 0.01 or 1%", v);
  return n;
};

/** Milliseconds: "500", "500ms", "1.5s". */
const milliseconds: Parse<number> = (v, name) => {
  const m =
    typeof v === "number"
      ? [String(v), String(v), "ms"]
      : typeof v === "string"
        ? /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/i.exec(v)
        : null;
  if (!m || !(Number(m[1]) > 0)) throw usageError(name, "a time such as 500ms or 1.5s", v);
  return m[2]?.toLowerCase() === "s" ? Number(m[1]) * 1000 : Number(m[1]);
};

const shapeName: Parse<string | null> = (v, name) => (v === null ? null : text(v, name));

const scenarios: Parse<Record<string, ScenarioConfig>> = (v, name) => {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw usageError(name, "an object of named scenarios, e.g. { browse: { users: 10 } }", v);
  }
  const out: Record<string, ScenarioConfig> = {};
  for (const [scenario, sc] of Object.entries(v)) {
    if (sc === null || typeof sc !== "object" || Array.isArray(sc)) {
      throw usageError(`${name}.${scenario}`, "an object of settings", sc);
    }
    out[scenario] = readObject(sc as Record<string, unknown>, SCENARIO_KEYS, `${name}.${scenario}`, ".");
  }
  return out;
};

// ---------------------------------------------------------------------------------------------
// The table. The order of the flags is the order of `cicada run --help`.

export const SETTINGS: Table = {
  loadfile: { parse: text, flag: "-f, --loadfile <file>", help: "loadfile (default loadtest.ts)" },
  host: {
    parse: hostUrl,
    flag: "-H, --host <url>",
    help: "base URL of the target, e.g. http://127.0.0.1:8000",
    scenario: "inherit",
    api: { start: true },
  },
  users: {
    parse: int(1),
    flag: "-u, --users <n>",
    help: "peak number of concurrent users",
    scenario: "workload",
    api: { start: true, edit: true },
    default: 1,
  },
  spawnRate: {
    parse: positive,
    flag: "-r, --spawn-rate <n>",
    help: "users started per second",
    scenario: "workload",
    api: { start: true, edit: true },
    default: 1,
  },
  runTime: {
    parse: duration,
    flag: "-t, --run-time <duration>",
    help: "stop after this long: 30s, 5m, 1h30m",
    api: { start: true, clearable: true },
  },
  tags: {
    parse: list,
    flag: "-T, --tags <tags...>",
    help: "run only tasks with any of these tags (comma or space separated); a loadfile after them ends the list",
    many: true,
    scenario: "inherit",
    api: { start: true },
  },
  excludeTags: {
    parse: list,
    flag: "-E, --exclude-tags <tags...>",
    help: "skip tasks with any of these tags, listed as for --tags; wins over --tags",
    many: true,
    scenario: "inherit",
    api: { start: true },
  },
  iterations: {
    parse: int(1),
    flag: "-i, --iterations <n>",
    help: "stop after this many task iterations in total",
    scenario: "workload",
  },
  stopTimeout: {
    parse: seconds,
    flag: "-s, --stop-timeout <seconds>",
    help: "seconds users get to finish their task when the run stops",
    default: 0,
  },
  json: { parse: text, flag: "--json <file>", help: "write the JSON result to FILE (- for stdout)" },
  onlySummary: { parse: bool, flag: "--only-summary", help: "no live view; print only the final summary" },
  exitCodeOnError: {
    parse: exitCode,
    flag: "--exit-code-on-error <n>",
    help: "exit code when any request failed or user code threw (default 1; a run that completed no request exits 1 regardless)",
    default: 1,
  },
  headless: {
    parse: bool,
    flag: "--headless",
    help: "no web UI: start at once, print the summary and exit (CI)",
  },
  webHost: {
    parse: text,
    flag: "--web-host <host>",
    help: "address the web UI binds to (default 127.0.0.1)",
    default: "127.0.0.1",
  },
  webPort: {
    parse: port,
    flag: "-P, --web-port <port>",
    help: "port of the web UI (default 8089; 0 = any free port)",
    default: 8089,
  },
  autostart: { parse: bool, flag: "--autostart", help: "web UI: start the test at once" },
  autoquit: {
    parse: int(0),
    flag: "--autoquit <seconds>",
    help: "web UI, with --autostart: quit this many seconds after the test ends",
  },
  webLogin: {
    parse: webLogin,
    flag: "--web-login <user:pass>",
    help: "web UI: require this HTTP Basic login",
  },
  prometheusPort: {
    parse: port,
    flag: "--prometheus-port <port>",
    help: "serve Prometheus metrics at /metrics on this port (0 = any free one)",
  },
  prometheusHost: {
    parse: text,
    flag: "--prometheus-host <host>",
    help: "address of the metrics endpoint (default 127.0.0.1)",
    default: "127.0.0.1",
  },
  // OpenTelemetry (--otel, --otel-traces).
  otel: {
    parse: otelEndpoint,
    flag: "--otel [url]",
    help: "send metrics over OTLP/HTTP to URL (default: OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318)",
  },
  otelTraces: {
    parse: bool,
    flag: "--otel-traces",
    help: "send one span per HTTP request over OTLP/HTTP and a W3C traceparent header with the request",
  },
  otelTracesSample: {
    parse: sampleRatio,
    flag: "--otel-traces-sample <ratio>",
    help: "--otel-traces: record and send the spans of this share of requests, 0 < r ≤ 1 (default 1, or OTEL_TRACES_SAMPLER); the others still carry a traceparent, flagged not sampled",
  },
  master: {
    parse: bool,
    flag: "--master",
    help: "run as the master of workers on other machines (cicada worker); headless",
  },
  masterBindHost: {
    parse: text,
    flag: "--master-bind-host <host>",
    help: "address the master listens on (default 127.0.0.1; beyond loopback it needs --token)",
    default: "127.0.0.1",
  },
  masterBindPort: {
    parse: port,
    flag: "--master-bind-port <port>",
    help: "port the master listens on (default 5557; 0 = any free one)",
    default: 5557,
  },
  expectWorkers: {
    parse: int(1),
    flag: "--expect-workers <n>",
    help: "workers the master waits for before it starts (default 1)",
    default: 1,
  },
  expectWorkersMaxWait: {
    parse: seconds,
    flag: "--expect-workers-max-wait <duration>",
    help: "give up when they have not all come within this long",
  },
  heartbeatTimeout: {
    parse: positiveSeconds,
    flag: "--heartbeat-timeout <duration>",
    help: "a worker silent this long is missing and its users move to the others (default 3s)",
    default: 3,
  },
  failOnWorkerLoss: {
    parse: bool,
    flag: "--fail-on-worker-loss",
    help: "exit with code 4 when a worker was lost during the run",
  },
  worker: {
    parse: bool,
    flag: "--worker",
    help: "run as a worker of a master (the same as cicada worker)",
    env: false,
    file: false,
  },
  masterHost: {
    parse: text,
    flag: "--master-host <host>",
    help: "with --worker: the master's address (default 127.0.0.1)",
    env: false,
    file: false,
    default: "127.0.0.1",
  },
  masterPort: {
    parse: port,
    flag: "--master-port <port>",
    help: "with --worker: the master's port (default 5557)",
    env: false,
    file: false,
    default: 5557,
  },
  token: {
    parse: token,
    flag: "--token <secret>",
    help: "master and workers: the shared secret workers prove they know (required when the master listens beyond loopback)",
    file: false,
  },
  tokenFile: {
    parse: text,
    flag: "--token-file <file>",
    help: "master and workers: read the token from this file",
  },
  tlsCert: {
    parse: text,
    flag: "--tls-cert <file>",
    help: "master: serve workers over TLS with this certificate (PEM; with --tls-key)",
  },
  tlsKey: {
    parse: text,
    flag: "--tls-key <file>",
    help: "master: the private key of --tls-cert (PEM)",
  },
  tlsCa: {
    parse: text,
    flag: "--tls-ca <file>",
    help: "worker: connect over TLS and trust only a master whose certificate this CA (PEM) signed",
    file: false,
  },
  handshakeTimeout: {
    parse: positiveSeconds,
    flag: "--handshake-timeout <duration>",
    help: "master and workers: drop a peer that has not completed the greeting within this long",
    default: 5,
  },
  config: {
    parse: text,
    flag: "--config <file>",
    help: "config file (default ./cicada.config.ts if present)",
    env: false,
    file: false,
  },
  verifyTls: {
    parse: bool,
    flag: "--insecure",
    help: "do not verify TLS certificates",
    flagSets: false,
    default: true,
  },
  httpEngine: {
    parse: httpEngine,
    flag: "--http-engine <engine>",
    help: "HTTP client of every HttpUser, over its class's static engine: auto (fast unless a proxy is set or the server speaks only HTTP/2), fast or undici",
  },
  preflight: {
    parse: bool,
    flag: "--no-preflight",
    help: "skip the check that each host accepts connections",
    default: true,
  },
  processes: {
    parse: processes,
    flag: "--processes <n>",
    help: "worker threads running the users, each with its own event loop; -1 = one per core (default)",
    scenario: "inherit",
  },
  iterationsPerUser: {
    parse: int(1),
    flag: "--iterations-per-user <n>",
    help: "each user stops after N task iterations",
    scenario: "workload",
  },
  rate: {
    parse: positive,
    flag: "--rate <n>",
    help: "open model: start N iterations per second, whatever the response times",
    scenario: "workload",
    api: { start: true, edit: true, clearable: true },
  },
  maxUsers: {
    parse: int(1),
    flag: "--max-users <n>",
    help: "open model: most users the pool may grow to",
    scenario: "workload",
    api: { start: true, clearable: true },
  },
  maxDelay: {
    parse: duration,
    flag: "--max-delay <duration>",
    help: "open model: drop an arrival that cannot start within this (default 10s)",
    scenario: "inherit",
    default: "10s",
  },
  // Arrivals, concurrency, windows and trace replay (docs/arrivals.md).
  arrivals: {
    parse: arrivalProcess,
    flag: "--arrivals <process>",
    help: "open model: how arrivals are spaced: constant (default), poisson or gamma",
    scenario: "workload",
  },
  burstiness: {
    parse: positive,
    flag: "--burstiness <b>",
    help: "gamma arrivals: shape B; <1 burstier, 1 = Poisson, >1 more even (default 1)",
    scenario: "workload",
  },
  seed: {
    parse: int(0, 2 ** 32 - 1, "an integer 0–4294967295"),
    flag: "--seed <n>",
    help: "seed of the arrival gaps (and the default of datasets): the same seed repeats the schedule",
    scenario: "inherit",
  },
  maxConcurrency: {
    parse: int(1),
    flag: "--max-concurrency <n>",
    help: "most iterations in flight at once across the run; further ones wait for a slot",
    scenario: "workload",
  },
  warmup: {
    parse: duration,
    flag: "--warmup <duration>",
    help: "traffic runs, but the figures, thresholds and verdicts start this long after the start",
  },
  cooldown: {
    parse: duration,
    flag: "--cooldown <duration>",
    help: "traffic runs, but the figures stop this long before the end (needs --run-time)",
  },
  schedule: {
    parse: text,
    flag: "--schedule <file>",
    help: "trace replay: start one iteration at each offset of a JSONL or CSV file",
  },
  stages: {
    parse: stages,
    flag: "--stages <list>",
    help: "load shape: ramp users linearly, e.g. 30s:100,2m:100,10s:0 (replaces -u/-r)",
    scenario: "workload",
    api: { start: true, clearable: true },
  },
  scenario: {
    parse: list,
    flag: "--scenario <names...>",
    help: "run only these of the loadfile's scenarios (comma or space separated)",
    many: true,
  },
  thresholds: {
    parse: thresholds,
    flag: "--threshold <expr>",
    help: 'pass/fail criterion, repeatable: "p95<500", "error_rate<1%", "POST /api: p99<1s", "tag:checkout p95<300", "checks>99%"',
    many: true,
  },
  // Serving metrics of streamed responses.
  slo: {
    parse: (v, name) => {
      parseSlo(v, name);
      return v as NonNullable<CicadaConfig["slo"]>;
    },
    flag: "--slo <slos>",
    help: 'service-level objectives of streams, for goodput: "ttft<500ms,tpot<50ms,e2el<10s" (a stream meeting all is good)',
  },
  acceptStatus: {
    parse: statusList,
    flag: "--accept-status <codes...>",
    help: "status codes that are not failures, e.g. 429 or 400-404",
    many: true,
  },
  junit: {
    parse: text,
    flag: "--junit <file>",
    help: "write thresholds, checks and comparison verdicts as JUnit XML",
  },
  compareTo: {
    parse: text,
    flag: "--compare-to <baseline>",
    help: "compare the result with a stored baseline name or a result file",
  },
  tolerance: {
    parse: text,
    flag: "--tolerance <spec>",
    help: 'tolerances for --compare-to: "15%" or "p99=20%,error_rate=50%"',
  },
  baselineDir: {
    parse: text,
    flag: "--baseline-dir <dir>",
    help: "directory of stored baselines (default .cicada/baselines)",
  },
  csv: {
    parse: text,
    flag: "--csv <prefix>",
    help: "write Locust-compatible CSV files PREFIX_stats.csv, _stats_history.csv, ...",
  },
  csvFullHistory: {
    parse: bool,
    flag: "--csv-full-history",
    help: "per-endpoint rows in PREFIX_stats_history.csv",
  },
  html: { parse: text, flag: "--html <file>", help: "write the self-contained HTML report" },

  // Resource monitoring of the target (also flags of `cicada worker`).
  monitorPid: {
    parse: pidList,
    flag: "--monitor-pid <pid|name>",
    help: "watch this process of the target (a pid, or a name: every process of that name) from /proc: CPU %, RSS, fds, threads, I/O; repeatable",
    many: true,
  },
  monitorUrl: {
    parse: metricsUrls,
    flag: "--monitor-url <url>",
    help: "scrape this Prometheus endpoint of the target once a second; repeatable",
    many: true,
  },
  monitorQuery: {
    parse: monitorQueries,
    flag: "--monitor-query <name=series>",
    help: 'with --monitor-url: record this series as NAME, e.g. queue=queue_length{queue="jobs"}; repeatable',
    many: true,
  },

  // `cicada sweep` (docs/sweep.md): flags of that command only.
  concurrency: {
    parse: positiveList(true),
    flag: "--concurrency <list>",
    help: "closed model: one level per number of users, e.g. 10,50,100,200,500",
    run: false,
    env: false,
    file: false,
  },
  rates: {
    parse: rateList,
    flag: "--rates <list|auto>",
    help: "open model: one level per rate (iterations/s), e.g. 10,20,50; or auto: synchronous, throughput, then rates between",
    run: false,
    env: false,
    file: false,
  },
  stepTime: {
    parse: (v, name) => {
      positiveSeconds(v, name);
      return v as string | number;
    },
    flag: "--step-time <duration>",
    help: "measured time of each level, after its warm-up (default 30s)",
    run: false,
    env: false,
    file: false,
  },
  sweepSize: {
    parse: int(3),
    flag: "--sweep-size <n>",
    help: "with --rates auto: levels in all, the synchronous and throughput runs included (default 10)",
    run: false,
    env: false,
    file: false,
  },
  maxErrorRate: {
    parse: fraction,
    flag: "--max-error-rate <x>",
    help: "stop the sweep after the first level whose error rate is above X (0.05 or 5%)",
    run: false,
    env: false,
    file: false,
  },
  stopOnSaturation: {
    parse: bool,
    flag: "--stop-on-saturation",
    help: "stop the sweep when a level shows over-saturation (latency and requests in flight climbing)",
    run: false,
    env: false,
    file: false,
  },
  maxP95: {
    parse: milliseconds,
    flag: "--max-p95 <ms>",
    help: "SLO: a level meets it when its p95 is within this (500, 500ms, 1.5s)",
    run: false,
    env: false,
    file: false,
  },

  // Not flags of `run`.
  userClasses: {
    parse: list,
    cliName: "user class arguments",
    scenario: "workload",
    api: { start: true },
  },
  shape: { parse: shapeName, scenario: "own", api: { start: true } },
  scenarios: { parse: scenarios, env: false },
  startTime: { parse: duration, scenario: "own", env: false, file: false },
  duration: { parse: duration, scenario: "own", env: false, file: false },
  connectTimeout: {
    parse: int(0),
    flag: "--connect-timeout <seconds>",
    help: "keep trying to reach the master this long",
    run: false,
    env: false,
    file: false,
    default: 60,
  },
  once: {
    parse: bool,
    flag: "--once",
    help: "with --worker: run one test, then exit (default: wait for the master's next test)",
    env: false,
    file: false,
  },
};

const ALL_KEYS = Object.keys(SETTINGS) as SettingKey[];
const setting = (key: SettingKey) => SETTINGS[key] as Setting<unknown>;
const FILE_KEYS = ALL_KEYS.filter((k) => setting(k).file !== false);
const ENV_KEYS = ALL_KEYS.filter((k) => setting(k).env !== false);
const SCENARIO_KEYS = ALL_KEYS.filter((k) => setting(k).scenario !== undefined);

/** The keys whose flags `cicada run` has, in help order. */
export const RUN_FLAGS = ALL_KEYS.filter((k) => setting(k).flag !== undefined && setting(k).run !== false);

/** How the command line names a setting: "-u/--users", "--iterations-per-user". */
export function flagLabel(key: SettingKey): string {
  const s = setting(key);
  if (!s.flag) return s.cliName ?? key;
  const m = /^(?:(-\w),\s*)?(--[\w-]+)/.exec(s.flag)!;
  return m[1] ? `${m[1]}/${m[2]}` : m[2]!;
}

export function envName(key: string): string {
  return `CICADA_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** The values a run starts from before any source sets one. */
export function settingDefaults(): CicadaConfig {
  const out: Record<string, unknown> = {};
  for (const k of ALL_KEYS) {
    const s = setting(k);
    if (s.default !== undefined && s.file !== false) out[k] = s.default;
  }
  return out as CicadaConfig;
}

/** Later sources win; undefined never overrides. */
export function mergeConfigs(...layers: CicadaConfig[]): CicadaConfig {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) out[k] = v;
  }
  return out as CicadaConfig;
}

// ---------------------------------------------------------------------------------------------
// Sources

/** Settings from CICADA_* environment variables. */
export function fromEnv(env: NodeJS.ProcessEnv): CicadaConfig {
  const out: Record<string, unknown> = {};
  for (const key of ENV_KEYS) {
    const name = envName(key);
    const v = env[name];
    if (v !== undefined) out[key] = setting(key).parse(v, name);
  }
  return out as CicadaConfig;
}

/** The closest of `known` to a misspelt `word`, if one is close enough to be what was meant. */
export function closest(word: string, known: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, "");
  const w = norm(word);
  let best: string | undefined;
  let bestDist = Math.max(1, Math.floor(w.length / 3)) + 1;
  for (const k of known) {
    const d = editDistance(w, norm(k));
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best;
}

/** Edits (insert, delete, replace, swap two neighbours) that turn `a` into `b`. */
function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      let d = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d = Math.min(d, before[j - 2]! + 1);
      cur[j] = d;
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

function unknownKeys(keys: string[], known: readonly string[], what: string): string {
  const hints = keys.map((k) => {
    const near = closest(k, known);
    return near ? `"${k}" (did you mean "${near}"?)` : `"${k}"`;
  });
  const plural = keys.length > 1 ? "s" : "";
  const anyHint = keys.some((k) => closest(k, known) !== undefined);
  return `unknown ${what}${plural} ${hints.join(", ")}${anyHint ? "" : `; known: ${known.join(", ")}`}`;
}

/** Checks the keys and values of a settings object, naming each as `${where}${sep}${key}`. */
function readObject<T>(
  obj: Record<string, unknown>,
  known: readonly SettingKey[],
  where: string,
  sep: string,
): T {
  const unknown = Object.keys(obj).filter((k) => !(known as readonly string[]).includes(k));
  if (unknown.length > 0) {
    throw new UsageError(`${where}: ${unknownKeys(unknown, known, "setting")}`);
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) {
    if (v !== undefined) out[k] = setting(k as SettingKey).parse(v, `${where}${sep}${k}`);
  }
  return out as T;
}

/**
 * A config file's default export, or a loadfile's `options`: every key must be a setting, every
 * value must parse. `where` names the source, e.g. "cicada.config.ts" or "loadtest.ts: options".
 */
export function readConfigObject(obj: unknown, where: string, sep = ": "): CicadaConfig {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new UsageError(`${where}: expected an object of settings, got ${shown(obj)}`);
  }
  return readObject<CicadaConfig>(obj as Record<string, unknown>, FILE_KEYS, where, sep);
}

/**
 * With scenarios, the workload settings belong to each scenario: one given for the whole run on
 * the command line or in the environment would be ignored, so it is refused.
 */
export function checkNoWorkload(cli: CicadaConfig, env: CicadaConfig, scenarioNames: string[]): void {
  for (const key of SCENARIO_KEYS) {
    if (setting(key).scenario !== "workload") continue;
    const k = key as keyof CicadaConfig;
    const from = cli[k] !== undefined ? flagLabel(key) : env[k] !== undefined ? envName(key) : undefined;
    if (from) {
      throw new UsageError(
        `${from} does not apply when the loadfile defines scenarios; set it per scenario (scenarios: ${scenarioNames.join(", ")})`,
      );
    }
  }
}

/**
 * The settings in a web API request body (`start` or `edit`). Unknown fields are refused, so a
 * typo is not silently ignored; an empty string means "not given", as in the form; null clears a
 * clearable field. Errors name the field.
 */
export function readApiBody(body: Record<string, unknown>, request: "start" | "edit"): Partial<CicadaConfig> {
  const known = ALL_KEYS.filter((k) => setting(k).api?.[request]);
  const unknown = Object.keys(body).filter((k) => !(known as string[]).includes(k));
  if (unknown.length > 0) throw new UsageError(unknownKeys(unknown, known, "field"));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    const s = setting(k as SettingKey);
    if (v === undefined || v === "") continue;
    if (v === null && s.api?.clearable) out[k] = undefined;
    else out[k] = s.parse(v, k);
  }
  return out as Partial<CicadaConfig>;
}
