/**
 * `benchmark()`: one function timed round after round, with pytest-benchmark's statistics,
 * printed as its table (unless told not to) and returned.
 */
import { UsageError } from "../core/errors.js";
import { formatBenchmarks } from "../outputs/benchmark.js";
import { checkWritable, jsonText, resultFile } from "../outputs/sink.js";
import type { BenchmarkResult } from "../result/result.js";
import {
  type BenchmarkFunction,
  type BenchmarkOptions,
  BenchmarkSession,
  readBenchmarkOptions,
} from "../testrun/benchmark.js";
import { closest } from "../testrun/settings.js";
import type { LogOption } from "./run.js";

export interface BenchmarkCallOptions extends BenchmarkOptions {
  /** Handed to the function as `ctx.host`. */
  host?: string;
  /** Stops the benchmark; it then resolves with the rounds measured so far. */
  signal?: AbortSignal;
  /** The table: printed to stdout (default), handed to a function, or not printed (false). */
  log?: LogOption;
  /** Write the JSON result (one endpoint for this benchmark), for `cicada compare`. */
  json?: string;
}

const KNOWN = ["iterations", "duration", "warmup", "concurrency", "host", "signal", "log", "json"];

/**
 * Times `fn` for `iterations` rounds or for `duration` (default 1 s), after `warmup` unmeasured
 * rounds, `concurrency` rounds at a time. A round that throws is a failure, left out of the
 * statistics. Resolves to min, max, mean, stddev, median, IQR, outliers, ops and rounds (times in ms).
 */
export async function benchmark(
  name: string,
  fn: BenchmarkFunction,
  options: BenchmarkCallOptions = {},
): Promise<BenchmarkResult> {
  if (typeof name !== "string" || name.length === 0) {
    throw new UsageError('benchmark(): expected a name first, e.g. benchmark("GET /health", fn)');
  }
  if (typeof fn !== "function") throw new UsageError(`benchmark("${name}"): expected a function to time`);
  if (options === null || typeof options !== "object") {
    throw new UsageError(`benchmark("${name}"): expected an object of options`);
  }
  const where = `benchmark("${name}")`;
  for (const k of Object.keys(options)) {
    if (KNOWN.includes(k)) continue;
    const near = closest(k, KNOWN);
    throw new UsageError(
      `${where}: unknown option "${k}"${near ? ` (did you mean "${near}"?)` : `; known: ${KNOWN.join(", ")}`}`,
    );
  }
  const { host, signal, log = true, json } = options;
  if (typeof log !== "boolean" && typeof log !== "function") {
    throw new UsageError(`${where}: log: expected true, false or a function of the table's text`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new UsageError(`${where}: signal: expected an AbortSignal`);
  }
  const opts = readBenchmarkOptions(options as Record<string, unknown>, `${where}: `);
  if (json !== undefined) checkWritable(json, `${where}: json`);
  const session = new BenchmarkSession({
    ...(host !== undefined ? { host } : {}),
    ...(signal ? { signal } : {}),
  });
  let r: BenchmarkResult;
  try {
    r = await session.run({ name, fn, ...opts });
    if (json !== undefined) resultFile(`${where}: json`, json, jsonText).result?.(session.result());
  } finally {
    session.dispose();
  }
  if (log === true) process.stdout.write(formatBenchmarks([r]));
  else if (typeof log === "function") log(formatBenchmarks([r]).replace(/\n$/, ""));
  return r;
}
