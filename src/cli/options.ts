import { existsSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import type { CicadaConfig } from "../api/config.js";
import { bundleLoadfile, importBundle } from "../loadfile/bundle.js";
import { CicadaError, ExitCode } from "./errors.js";

/** Parses Locust-style durations: "90", "30s", "5m", "1h30m", "1.5h". Returns seconds. */
export function parseDuration(text: string | number, flag = "--run-time"): number {
  if (typeof text === "number") {
    if (Number.isFinite(text) && text >= 0) return text;
    throw new CicadaError(
      `${flag}: expected a duration such as 30s, 5m or 1h30m, got ${text}`,
      ExitCode.Usage,
    );
  }
  const s = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    if (m.index !== consumed) break;
    consumed += m[0].length;
    const v = Number(m[1]);
    total += m[2] === "h" ? v * 3600 : m[2] === "m" ? v * 60 : m[2] === "s" ? v : v / 1000;
  }
  if (consumed !== s.length || s.length === 0) {
    throw new CicadaError(
      `${flag}: expected a duration such as 30s, 5m or 1h30m, got "${text}"`,
      ExitCode.Usage,
    );
  }
  return total;
}

export function parseList(v: string | string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(/[,\s]+/)).filter((x) => x.length > 0);
  return items;
}

function intOption(flag: string, min: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new CicadaError(`${flag}: expected an integer ≥ ${min}, got "${v}"`, ExitCode.Usage);
    }
    return n;
  };
}

function numberOption(flag: string, min: number, exclusive: boolean) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < min || (exclusive && n === min)) {
      throw new CicadaError(
        `${flag}: expected a number ${exclusive ? ">" : "≥"} ${min}, got "${v}"`,
        ExitCode.Usage,
      );
    }
    return n;
  };
}

export const parseRate = numberOption("--rate", 0, true);
export const parseUsers = intOption("-u/--users", 1);
export const parseSpawnRate = numberOption("-r/--spawn-rate", 0, true);
export const parseIterations = intOption("-i/--iterations", 1);
export const parseExitCode = intOption("--exit-code-on-error", 0);
export const parseStopTimeout = (v: string): number => parseDuration(v, "-s/--stop-timeout");

/** `--processes N`: N ≥ 1 worker threads, or -1 for one per core (as in Locust). */
export function parseProcesses(v: string): number {
  const n = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(n) || (n < 1 && n !== -1)) {
    throw new CicadaError(
      `--processes: expected a number of workers ≥ 1, or -1 for one per core, got "${v}"`,
      ExitCode.Usage,
    );
  }
  return n;
}

export const parseWebPort = (v: string): number => {
  const n = intOption("--web-port", 0)(v);
  if (n > 65535) throw new CicadaError(`--web-port: expected a port 0–65535, got "${v}"`, ExitCode.Usage);
  return n;
};
export const parseAutoquit = intOption("--autoquit", 0);
export function parsePort(flag: string) {
  return (v: string): number => {
    const n = intOption(flag, 0)(v);
    if (n > 65535) throw new CicadaError(`${flag}: expected a port 0–65535, got "${v}"`, ExitCode.Usage);
    return n;
  };
}
export const parsePrometheusPort = (v: string): number => {
  const n = intOption("--prometheus-port", 0)(v);
  if (n > 65535)
    throw new CicadaError(`--prometheus-port: expected a port 0–65535, got "${v}"`, ExitCode.Usage);
  return n;
};
export function parseWebLogin(v: string): string {
  if (!/^[^:]+:.+$/.test(v)) {
    throw new CicadaError(
      `--web-login: expected USER:PASSWORD, got "${v.replace(/:.*/, ":…")}"`,
      ExitCode.Usage,
    );
  }
  return v;
}

/** `--accept-status 429,503` or `400-404`: status codes that count as successes. */
export function parseStatusList(v: string | string[]): number[] {
  const out: number[] = [];
  for (const item of parseList(v) ?? []) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(item);
    const lo = m ? Number(m[1]) : Number.NaN;
    const hi = m?.[2] ? Number(m[2]) : lo;
    if (!m || lo < 100 || hi > 599 || hi < lo) {
      throw new CicadaError(
        `--accept-status: expected status codes such as 429 or 400-404, got "${item}"`,
        ExitCode.Usage,
      );
    }
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

/** The worker count a `processes` setting means: default and -1 are one per core. */
export function resolveProcesses(v: number | undefined): number {
  if (v === undefined || v === -1) return availableParallelism();
  return parseProcesses(String(v));
}

function parseBool(name: string, v: string): boolean {
  const s = v.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(s)) return true;
  if (["0", "false", "no", "off", ""].includes(s)) return false;
  throw new CicadaError(`${name}: expected true or false, got "${v}"`, ExitCode.Usage);
}

type Key = keyof CicadaConfig;
// Scenarios are structured; they come from the loadfile or config file, not the environment.
const ENV_KEYS: Record<Exclude<Key, "scenarios">, (v: string, name: string) => unknown> = {
  loadfile: (v) => v,
  userClasses: (v) => parseList(v),
  host: (v) => v,
  users: (v) => parseUsers(v),
  spawnRate: (v) => parseSpawnRate(v),
  runTime: (v) => v,
  tags: (v) => parseList(v),
  excludeTags: (v) => parseList(v),
  iterations: (v) => parseIterations(v),
  iterationsPerUser: (v) => parseIterations(v),
  stopTimeout: (v) => parseStopTimeout(v),
  json: (v) => v,
  onlySummary: (v, n) => parseBool(n, v),
  exitCodeOnError: (v) => parseExitCode(v),
  headless: (v, n) => parseBool(n, v),
  verifyTls: (v, n) => parseBool(n, v),
  preflight: (v, n) => parseBool(n, v),
  processes: (v) => parseProcesses(v),
  stages: (v) => v,
  rate: (v) => parseRate(v),
  maxUsers: (v) => parseUsers(v),
  maxDelay: (v) => v,
  scenario: (v) => parseList(v),
  acceptStatus: (v) => parseStatusList(v),
  // Threshold expressions contain spaces and commas: one per line, or separated by ";".
  thresholds: (v) =>
    v
      .split(/[;\n]/)
      .map((x) => x.trim())
      .filter((x) => x.length > 0),
  junit: (v) => v,
  compareTo: (v) => v,
  tolerance: (v) => v,
  baselineDir: (v) => v,
  csv: (v) => v,
  csvFullHistory: (v, n) => parseBool(n, v),
  html: (v) => v,
  shape: (v) => v,
  webHost: (v) => v,
  webPort: (v) => parseWebPort(v),
  autostart: (v, n) => parseBool(n, v),
  autoquit: (v) => parseAutoquit(v),
  webLogin: (v) => parseWebLogin(v),
  prometheusPort: (v) => parsePrometheusPort(v),
  prometheusHost: (v) => v,
  master: (v, n) => parseBool(n, v),
  masterBindHost: (v) => v,
  masterBindPort: (v) => parsePort("--master-bind-port")(v),
  expectWorkers: (v) => parseUsers(v),
  expectWorkersMaxWait: (v) => parseDuration(v, "--expect-workers-max-wait"),
};

export function envName(key: string): string {
  return `CICADA_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/** Settings from CICADA_* environment variables. */
export function fromEnv(env: NodeJS.ProcessEnv): CicadaConfig {
  const out: Record<string, unknown> = {};
  for (const [key, parse] of Object.entries(ENV_KEYS)) {
    const name = envName(key);
    const v = env[name];
    if (v !== undefined) out[key] = parse(v, name);
  }
  return out as CicadaConfig;
}

const CONFIG_NAMES = ["cicada.config.ts", "cicada.config.mts", "cicada.config.js", "cicada.config.mjs"];

/** Loads `--config FILE`, or cicada.config.* from the working directory if there is one. */
export async function loadConfigFile(
  explicit: string | undefined,
): Promise<{ path?: string; config: CicadaConfig }> {
  const path = explicit ?? CONFIG_NAMES.map((n) => resolve(n)).find((p) => existsSync(p));
  if (!path) return { config: {} };
  const bundle = await bundleLoadfile(path, "config file");
  try {
    const mod = await importBundle(bundle.path, path);
    const config = (mod.default ?? mod.config ?? {}) as CicadaConfig;
    if (typeof config !== "object" || config === null) {
      throw new CicadaError(`${path}: the default export must be a config object`, ExitCode.Usage);
    }
    const unknown = Object.keys(config).filter((k) => !(k in ENV_KEYS));
    if (unknown.length > 0) {
      throw new CicadaError(`${path}: unknown setting(s): ${unknown.join(", ")}`, ExitCode.Usage);
    }
    return { path, config };
  } finally {
    bundle.dispose();
  }
}

/** Later sources win; undefined never overrides. */
export function mergeConfigs(...layers: CicadaConfig[]): CicadaConfig {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) if (v !== undefined) out[k] = v;
  }
  return out as CicadaConfig;
}
