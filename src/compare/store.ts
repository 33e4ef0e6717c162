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

/** Parses and checks a result document; `source` names it in errors. */
export function parseResult(text: string, source: string): RunResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${source} is not a Cicada result: not valid JSON (${(err as Error).message})`);
  }
  const r = doc as Partial<RunResult> | null;
  if (typeof r !== "object" || r === null || Array.isArray(r) || r.tool !== "cicada") {
    throw new UsageError(
      `${source} is not a Cicada result: no "tool": "cicada" (write one with cicada run --json FILE)`,
    );
  }
  if (!Array.isArray(r.endpoints)) {
    throw new UsageError(`${source} is not a Cicada result: it has no endpoints`);
  }
  if (typeof r.totals !== "object" || r.totals === null || typeof r.durationSec !== "number") {
    throw new UsageError(`${source} is not a Cicada result: it has no totals or durationSec`);
  }
  return r as RunResult;
}

/** `shownAs` names the file in errors, e.g. as the user typed it. */
export function readResultFile(path: string, shownAs: string = path): RunResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new UsageError(`cannot read ${shownAs}: ${(err as Error).message}`);
  }
  return parseResult(text, shownAs);
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
