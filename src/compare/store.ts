import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { UsageError } from "../core/errors.js";
import type { RunResult } from "../result/result.js";
import type { SweepResult } from "../result/sweep.js";

/**
 * Baselines: one `<name>.json` per baseline, holding the run's JSON result exactly as `cicada
 * run --json` wrote it, pretty-printed so that diffs stay readable when the directory is
 * committed. Nothing else lives there; listing reads the files themselves.
 */

/** Relative to the working directory. */
export const DEFAULT_BASELINE_DIR = join(".cicada", "baselines");
export const BASELINE_DIR_ENV = "CICADA_BASELINE_DIR";
/** A leading letter or digit keeps names from being hidden files or climbing out with "..". */
export const BASELINE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** The store directory: --dir, else $CICADA_BASELINE_DIR, else .cicada/baselines. */
export function baselineDir(
  flag: string | undefined,
  env: NodeJS.ProcessEnv,
  cwd: string = process.cwd(),
): string {
  const chosen = flag || env[BASELINE_DIR_ENV] || DEFAULT_BASELINE_DIR;
  return resolve(cwd, chosen);
}

export function checkBaselineName(name: string): void {
  if (!BASELINE_NAME.test(name)) {
    throw new UsageError(
      `invalid baseline name "${name}": use letters, digits, ".", "_" and "-", starting with a letter or digit`,
    );
  }
}

/** A saved result by its kind: a run's (`cicada run --json`) or a sweep's (`cicada sweep --json`). */
export type ResultDocument = { kind: "run"; result: RunResult } | { kind: "sweep"; result: SweepResult };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Parses a result document and tells a run's from a sweep's by its own fields: both open with
 * the same header ("tool": "cicada", version, startedAt, durationSec, config); a sweep's has
 * `sweep`, a run's `endpoints`. `source` names it in errors.
 */
export function parseResultDocument(text: string, source: string): ResultDocument {
  return parseDocument(text, source, true);
}

/** `sweepOk`: whether the caller takes a sweep too, so that the hints name only what it takes. */
function parseDocument(text: string, source: string, sweepOk: boolean): ResultDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${source} is not a Cicada result: not valid JSON (${(err as Error).message})`);
  }
  const writers = sweepOk ? "cicada run --json FILE or cicada sweep --json FILE" : "cicada run --json FILE";
  if (!isObject(doc) || doc.tool !== "cicada") {
    throw new UsageError(`${source} is not a Cicada result: no "tool": "cicada" (write one with ${writers})`);
  }
  if ("sweep" in doc) {
    if (!sweepOk) {
      throw new UsageError(
        `${source} is a sweep result (from cicada sweep --json), not a run result: baselines and comparisons take a run's JSON (cicada run --json FILE); each level's run result is in the sweep's sweep.levels[].result`,
      );
    }
    return { kind: "sweep", result: checkSweep(doc, source) };
  }
  if (!Array.isArray(doc.endpoints)) {
    throw new UsageError(
      sweepOk
        ? `${source} is not a Cicada result: it has neither "endpoints" (a run's, from cicada run --json) nor "sweep" (a sweep's, from cicada sweep --json)`
        : `${source} is not a Cicada result: it has no endpoints (write one with ${writers})`,
    );
  }
  return { kind: "run", result: checkRun(doc, source) };
}

function checkRun(r: Record<string, unknown>, source: string): RunResult {
  if (!isObject(r.totals) || typeof r.durationSec !== "number") {
    throw new UsageError(`${source} is not a Cicada result: it has no totals or durationSec`);
  }
  return r as unknown as RunResult;
}

/** What the sweep's reports read, checked so that a damaged file gets a usage error, not a crash. */
function checkSweep(r: Record<string, unknown>, source: string): SweepResult {
  const bad = (what: string) => new UsageError(`${source} is not a valid Cicada sweep result: ${what}`);
  const s = r.sweep;
  if (!isObject(s) || !Array.isArray(s.levels) || typeof s.mode !== "string") {
    throw bad('"sweep" needs "mode" and a list of "levels"');
  }
  if (typeof r.version !== "string" || typeof r.startedAt !== "string" || typeof r.durationSec !== "number") {
    throw bad("it has no version, startedAt or durationSec");
  }
  if (!isObject(r.config) || typeof r.exitCode !== "number") throw bad("it has no config or exitCode");
  const num = (o: Record<string, unknown>, keys: string[]) => keys.every((k) => typeof o[k] === "number");
  s.levels.forEach((l: unknown, i: number) => {
    const ok =
      isObject(l) &&
      l.index === i &&
      typeof l.status === "string" &&
      typeof l.kind === "string" &&
      num(l, ["load", "requests", "failures", "successRate", "errorRate", "rps", "okRps", "durationSec"]) &&
      isObject(l.latencyMs) &&
      num(l.latencyMs, ["p50", "p95", "p99"]);
    if (!ok) throw bad(`level ${i + 1} (sweep.levels[${i}]) lacks its index, status or figures`);
  });
  // The knee, the capacity and the SLO maximum point at levels by index.
  const points = [s.knee, s.capacity, isObject(s.slo) ? s.slo.max : null];
  for (const p of points) {
    if (p === null || p === undefined) continue;
    if (!isObject(p) || typeof p.level !== "number" || !(p.level in s.levels)) {
      throw bad("its knee, capacity or SLO maximum names a level it does not have");
    }
  }
  return r as unknown as SweepResult;
}

/** Parses and checks a run's result document; `source` names it in errors. */
export function parseResult(text: string, source: string): RunResult {
  // Without `sweepOk` the document is a run's or an error.
  return parseDocument(text, source, false).result as RunResult;
}

function readText(path: string, shownAs: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${shownAs}: ${(err as Error).message}`);
  }
}

/** `shownAs` names the file in errors, e.g. as the user typed it. */
export function readResultFile(path: string, shownAs: string = path): RunResult {
  return parseResult(readText(path, shownAs), shownAs);
}

/** A run's or a sweep's result file, for what renders either (`cicada report`). */
export function readResultDocument(path: string, shownAs: string = path): ResultDocument {
  return parseResultDocument(readText(path, shownAs), shownAs);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

export interface BaselineInfo {
  name: string;
  startedAt: string;
  durationSec: number;
  requests: number;
  version: string;
}

export class BaselineStore {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = resolve(dir);
  }

  pathOf(name: string): string {
    checkBaselineName(name);
    return join(this.dir, `${name}.json`);
  }

  has(name: string): boolean {
    return BASELINE_NAME.test(name) && isFile(join(this.dir, `${name}.json`));
  }

  /** Writes the baseline and returns its path. */
  save(name: string, result: RunResult, opts: { force?: boolean } = {}): string {
    const path = this.pathOf(name);
    if (!opts.force && existsSync(path)) {
      throw new UsageError(`baseline "${name}" already exists in ${this.dir}; pass --force to overwrite it`);
    }
    mkdirSync(this.dir, { recursive: true });
    // Through a temporary file, so an interrupted save never leaves half a baseline behind.
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(result, null, 2)}\n`);
    renameSync(tmp, path);
    return path;
  }

  list(): BaselineInfo[] {
    if (!existsSync(this.dir)) return [];
    const names = readdirSync(this.dir)
      .filter((f) => f.endsWith(".json"))
      .map((f) => f.slice(0, -".json".length))
      .filter((n) => BASELINE_NAME.test(n) && isFile(join(this.dir, `${n}.json`)))
      .sort();
    return names.map((name) => {
      const r = this.load(name);
      return {
        name,
        startedAt: r.startedAt,
        durationSec: r.durationSec,
        requests: r.totals.requests,
        version: r.version,
      };
    });
  }

  load(name: string): RunResult {
    const path = this.pathOf(name);
    if (!isFile(path)) throw new UsageError(`no baseline "${name}" in ${this.dir}`);
    return readResultFile(path);
  }

  delete(name: string): void {
    const path = this.pathOf(name);
    if (!isFile(path)) throw new UsageError(`no baseline "${name}" in ${this.dir}`);
    unlinkSync(path);
  }

  /** A result file if `nameOrPath` is one, else the stored baseline of that name. */
  resolve(nameOrPath: string, cwd: string = process.cwd()): RunResult {
    const asPath = resolve(cwd, nameOrPath);
    if (isFile(asPath)) return readResultFile(asPath, nameOrPath);
    if (this.has(nameOrPath)) return this.load(nameOrPath);
    throw new UsageError(`"${nameOrPath}" is neither a result file nor a baseline in ${this.dir}`);
  }
}
