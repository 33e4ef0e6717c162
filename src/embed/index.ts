/**
 * The programmatic API: load tests and benchmarks run from a program or a test suite.
 */
export type { BenchmarkResult, RunResult } from "../result/result.js";
export type {
  SweepCapacity,
  SweepKnee,
  SweepLevel,
  SweepResult,
  SweepSummary,
} from "../result/sweep.js";
export type {
  BenchmarkContext,
  BenchmarkFunction,
  BenchmarkOptions,
  Benchmarks,
} from "../testrun/benchmark.js";
export type { BenchmarkCallOptions } from "./benchmark.js";
export { benchmark } from "./benchmark.js";
export type { LoadTestResult, ResultHelpers, Stats } from "./result.js";
export { LoadTestFailed } from "./result.js";
export type { LogOption, RunOptions, TaskEntry, TaskFn } from "./run.js";
export { run } from "./run.js";
export type { SweepOptions } from "./sweep.js";
export { sweep } from "./sweep.js";
