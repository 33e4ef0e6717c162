/**
 * `sweep()`: `cicada sweep` from a program. It runs the levels in this process, resolves to the
 * sweep's result (levels, knee, capacity), prints nothing unless asked and installs no signal handler.
 */
import { UsageError } from "../core/errors.js";
import { stopBundler } from "../loadfile/bundle.js";
import { formatSweep } from "../outputs/sweep.js";
import type { SweepResult } from "../result/sweep.js";
import { threadsEnded } from "../runner/thread.js";
import { loadConfigFile } from "../testrun/config-file.js";
import { fromEnv, readConfigObject, SETTINGS, type SettingValues } from "../testrun/settings.js";
import {
  checkSweepOutputs,
  runSweep,
  SWEEP_SETTINGS,
  sweepPlan,
  writeSweepOutputs,
} from "../testrun/sweep.js";
import { loadTest } from "../testrun/testrun.js";
import { ioFor, type LogOption } from "./run.js";

export interface SweepOptions {
  /** The loadfile, bundled once for every level. */
  loadfile: string;
  host?: string;
  /** Closed model: one level per user count. */
  concurrency?: number[];
  /** Open model: one level per rate, or "auto" (synchronous, throughput, then rates between). */
  rates?: number[] | "auto";
  /** Measured time of each level: "30s" (default), or seconds. */
  stepTime?: string | number;
  /** Unmeasured time at the start of each level (default 5 s). */
  warmup?: string | number;
  /** With rates "auto": levels in all (default 10). */
  sweepSize?: number;
  /** With rates: most users the pool may grow to; with "auto": users of the throughput run (default 100). */
  maxUsers?: number;
  maxDelay?: string | number;
  /** Stop after the first level whose error rate is above this (0–1). */
  maxErrorRate?: number;
  /** Stop when a level shows over-saturation. */
  stopOnSaturation?: boolean;
  /** SLO checked at p95 per level, e.g. "ttft<500ms,e2el<10s". */
  slo?: string;
  /** SLO: the level's p95 within this many ms. */
  maxP95?: number;
  userClasses?: string[];
  tags?: string[];
  excludeTags?: string[];
  stopTimeout?: number;
  acceptStatus?: number[];
  verifyTls?: boolean;
  /** Every HttpUser's client: "auto", "fast" or "undici"; wins over each class's static engine. */
  httpEngine?: "auto" | "fast" | "undici";
  preflight?: boolean;
  /** Worker threads; default 1. */
  processes?: number;
  /** Output files, as `cicada sweep` writes them. */
  json?: string;
  csv?: string;
  html?: string;
  config?: string;
  env?: NodeJS.ProcessEnv;
  /** Ends the running level and skips the rest; resolves with what was measured (exit code 130). */
  signal?: AbortSignal;
  /** The table and progress: not printed (default), printed (true), or handed to a function. */
  log?: LogOption;
}

const PASSED = [
  "loadfile",
  "host",
  "maxUsers",
  "maxDelay",
  "userClasses",
  "tags",
  "excludeTags",
  "stopTimeout",
  "acceptStatus",
  "verifyTls",
  "httpEngine",
  "preflight",
  "processes",
  "json",
  "csv",
  "html",
] as const;
const KNOWN: readonly string[] = [
  ...PASSED,
  ...SWEEP_SETTINGS,
  "warmup",
  "slo",
  "config",
  "env",
  "signal",
  "log",
];

/**
 * Runs the sweep and resolves to its result (`result.sweep.levels`, `.knee`, `.capacity`). It
 * rejects only when the sweep cannot start: a UsageError for bad options, TargetUnreachable
 * for a target that does not answer.
 */
export async function sweep(options: SweepOptions): Promise<SweepResult> {
  if (options === null || typeof options !== "object") {
    throw new UsageError(
      "sweep(): expected an object of options, e.g. sweep({ loadfile, concurrency: [10, 50] })",
    );
  }
  const o = options as SweepOptions & Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!KNOWN.includes(k))
      throw new UsageError(`sweep(): unknown option "${k}"; known: ${KNOWN.join(", ")}`);
  }
  if (typeof o.loadfile !== "string")
    throw new UsageError("sweep(): loadfile: expected the path of a loadfile");
  if (o.json === "-")
    throw new UsageError("sweep(): json: give a file name (sweep() returns the result itself)");
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new UsageError("sweep(): signal: expected an AbortSignal");
  }
  const passed: Record<string, unknown> = {};
  for (const k of PASSED) if (o[k] !== undefined) passed[k] = o[k];
  const front: SettingValues = readConfigObject(passed, "sweep()");
  for (const k of SWEEP_SETTINGS) {
    if (o[k] !== undefined) (front as Record<string, unknown>)[k] = SETTINGS[k].parse(o[k], `sweep(): ${k}`);
  }
  const env = o.env ?? {};
  const io = ioFor(o.log, env);
  const name = (k: string) => `sweep(): ${k}`;
  let dispose: (() => void) | undefined;
  let dropListener: (() => void) | undefined;
  try {
    const file = o.config !== undefined ? (await loadConfigFile(o.config)).config : {};
    const { loaded, settings } = await loadTest(
      { loadfile: o.loadfile },
      { base: { processes: 1 }, file, env: o.env ? fromEnv(env) : {}, front: { ...front, headless: true } },
    );
    dispose = () => loaded.bundle.dispose();
    const s = settings as SettingValues;
    const plan = sweepPlan(
      s,
      {
        ...(o.warmup !== undefined ? { warmup: o.warmup } : {}),
        ...(o.slo !== undefined ? { slo: o.slo } : {}),
      },
      name,
    );
    checkSweepOutputs(s);
    const result = await runSweep(loaded, s, plan, io, {
      onControl: (c) => {
        const onAbort = () => c.stop();
        if (o.signal?.aborted) c.stop();
        else o.signal?.addEventListener("abort", onAbort, { once: true });
        dropListener = () => o.signal?.removeEventListener("abort", onAbort);
      },
      ...(o.log ? { onProgress: (line: string) => io.stderr.write(`${line}\n`) } : {}),
    });
    if (o.log) io.stdout.write(formatSweep(result));
    writeSweepOutputs(result, s, io);
    return result;
  } finally {
    dropListener?.();
    dispose?.();
    await threadsEnded();
    await stopBundler();
  }
}
