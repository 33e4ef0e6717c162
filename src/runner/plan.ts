import type { HttpEngine } from "../protocols/http/session.js";
import type { TracePlan } from "../protocols/http/tracing.js";
import type { Slo } from "../stats/slo.js";
import type { ArrivalSpec } from "./arrivals.js";
import type { ScheduleRow } from "./schedule.js";
import type { Stage } from "./stages.js";

/** The resolved run plan: everything the coordinator needs, after CLI/env/config merging. */
export interface RunPlan {
  loadfile: string;
  /** Class names picked on the command line; empty means all. */
  userClasses: string[];
  host: string | undefined;
  users: number;
  spawnRate: number;
  /** Seconds; null runs until stopped (or until iterations are used up). */
  runTimeSec: number | null;
  iterations: number | null;
  /** Task iterations each user runs before it stops (closed model); null for no limit. */
  iterationsPerUser: number | null;
  stopTimeoutSec: number;
  tags: string[];
  excludeTags: string[];
  verifyTls: boolean;
  /** `--http-engine`: every HttpUser's client, over its class's static engine; absent: the classes choose. */
  httpEngine?: HttpEngine;
  /** Status codes ≥ 400 that count as successes, not failures (e.g. 429). */
  acceptStatus: number[];
  /** --slo: bounds in ms each stream is judged against, for goodput. */
  slo?: Slo;
  /**
   * Worker threads to run users in (≥ 1; `-1` on the command line is already resolved to the
   * number of cores). 1 runs them in the coordinator's own thread. The coordinator never starts
   * more workers than there are users or iterations to share.
   */
  processes: number;
  /** Open model: iterations started per second; null for the closed model (users). */
  rate: number | null;
  /** Open model: most users the pool may grow to. */
  maxUsers: number;
  /** Open model: an arrival that would start later than this is dropped. */
  maxDelaySec: number;
  /** Open model: how arrivals are spaced (constant when absent). */
  arrivals?: ArrivalSpec;
  /** `--max-concurrency`: most iterations in flight at once across the run; null for no cap. */
  maxConcurrency?: number | null;
  /**
   * `--warmup`, `--cooldown`: the figures cover [warmupSec, cooldownAtSec) of the run's clock
   * (cooldownAtSec null: to the end), by each request's completion time.
   */
  windows?: { warmupSec: number; cooldownSec: number; cooldownAtSec: number | null } | null;
  /** `--schedule`: trace replay, one iteration per row at its offset (the run is then open-model). */
  schedule?: ScheduleRow[] | null;
  /** Name of the LoadShape class driving the run, if the loadfile exports one. */
  shape: string | null;
  /** Load shape: user targets (closed model) or rates (open model) over time. */
  stages: Stage[] | null;
  /** `--otel-traces`: each worker traces its HTTP requests. */
  traces?: TracePlan;
  /** Scenario runs: this coordinator's workers hand out user ids `first + i`, stepping by `stride`. */
  userIds?: { first: number; stride: number };
}
