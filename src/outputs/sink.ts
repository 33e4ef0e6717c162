// The one interface every output of a run implements, and the outputs that write the finished result to a file.
import { accessSync, constants, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { UsageError } from "../core/errors.js";
import type { RunResult } from "../result/result.js";
import type { ClosedInterval, StatsAggregate } from "../stats/aggregate.js";

/**
 * An output of a run. It reads the merged books while the run goes, or the finished result at
 * its end, and never talks to workers or protocol clients. Every hook is optional: a file of the
 * result needs only `result`, the CSV files follow the books, a metrics endpoint only `close`.
 */
export interface Sink {
  /** What the user asked for, for messages: "--json out.json". */
  readonly label: string;
  /** Once a second, after the books were merged. `n` counts the ticks from 1. */
  tick?(books: StatsAggregate, elapsedSec: number, n: number): void;
  /** A one-second interval that just closed. */
  interval?(iv: ClosedInterval, books: StatsAggregate): void;
  /** The books at the end of the run, before the result is built. */
  end?(books: StatsAggregate, elapsedSec: number): void;
  /** The finished result. */
  result?(r: RunResult): void;
  /** Releases what it holds (a server, a file handle). */
  close?(): Promise<void>;
}

/** Throws a UsageError now when `path` cannot be written, so a test is not run for nothing. */
export function checkWritable(path: string, flag: string): void {
  const dir = dirname(resolve(path));
  try {
    if (!statSync(dir).isDirectory()) throw new Error(`${dir} is not a directory`);
    accessSync(dir, constants.W_OK);
  } catch (err) {
    const why =
      (err as NodeJS.ErrnoException).code === "ENOENT" ? `no directory ${dir}` : (err as Error).message;
    throw new UsageError(`cannot write ${flag} ${path}: ${why}`);
  }
}

/**
 * A file made from the finished result (JSON, HTML report, JUnit XML). `-` as the path writes to
 * `stdout` instead. The path is checked when the sink is made, before the run.
 */
export function resultFile(
  flag: string,
  path: string,
  render: (r: RunResult) => string,
  stdout?: { write(s: string): unknown },
): Sink {
  const toStdout = path === "-" && stdout !== undefined;
  if (!toStdout) checkWritable(path, flag);
  return {
    label: `${flag} ${path}`,
    result(r) {
      const text = render(r);
      if (toStdout) {
        stdout.write(text);
        return;
      }
      try {
        writeFileSync(path, text);
      } catch (err) {
        throw new UsageError(`cannot write ${flag} ${path}: ${(err as Error).message}`);
      }
    },
  };
}

/** The JSON result, as `--json` writes it. */
export const jsonText = (r: RunResult): string => `${JSON.stringify(r, null, 2)}\n`;
