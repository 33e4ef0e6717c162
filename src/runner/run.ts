// A running test as the layers above the runner see it: one coordinator, or a group of scenarios
// each with its own. Whoever holds a `Run` never needs to know which.
import type { StatsAggregate } from "../stats/aggregate.js";
import type { RunPlan } from "./plan.js";
import type { ClassInfo } from "./protocol.js";

export type StopReason =
  | "run-time"
  | "iterations"
  | "stages"
  | "shape"
  | "signal"
  | "error"
  | "api"
  | "scenarios"
  | "not-started"
  | "threshold";
export type Phase = "starting" | "spawning" | "running" | "stopping" | "done";

/** Something that makes the run's numbers suspect; kept for the summary and the JSON result. */
export interface RunWarning {
  /** Wall-clock ms. */
  at: number;
  /** `cpu`: a saturated generator; `worker`: a worker that was lost during the run. */
  kind: "cpu" | "worker";
  message: string;
  /** `worker` warnings: which worker, and what became of its users. */
  worker?: WorkerEvent;
}

/** A remote worker that was lost, went missing, came back or joined during the run. */
export interface WorkerEvent {
  /** Its id in the run (`w2`) and its address. */
  worker: string;
  peer: string;
  event: "lost" | "missing" | "returned" | "joined";
  /** Users handed to the other workers because of it. */
  usersMoved: number;
  /** The workers that got them. */
  movedTo?: string[];
}

/** One worker as the web UI and /metrics show it. */
export interface WorkerInfo {
  id: string;
  /** Users it was last told to have alive. */
  users: number;
  /** Event-loop utilization (0–1) from its latest heartbeat. */
  cpu: number;
  heapUsedMB: number;
  lost: boolean;
}

/** A burst of arrivals a load shape fired: when (s since the start) and how many. */
export interface Burst {
  t: number;
  count: number;
}

/** Where a scenario stands, for the status line. */
export type ScenarioStatus = { name: string } & (
  | { state: "pending"; startsInSec: number }
  | { state: "running"; users: number; rate: number | null }
  | { state: "done" }
);

/** What the live status line shows, as data (outputs/console.ts words it). */
export interface RunStatus {
  elapsedSec: number;
  /** How long the run is planned to last; null when only a stop ends it. */
  plannedSec: number | null;
  /** What decides the load now. */
  load:
    | { kind: "users"; target: number }
    | { kind: "stage"; stage: number; stages: number }
    | { kind: "shape"; name: string }
    | { kind: "scenarios"; scenarios: ScenarioStatus[] };
  /** Open model with one plan: the arrival rate in force; null otherwise. */
  rate: number | null;
  /** Closed model with one plan: the users it is planned for; null otherwise. */
  targetUsers: number | null;
}

/** One scenario of a run with scenarios. */
export interface ScenarioView {
  name: string;
  plan: RunPlan;
  /** When it is due to start, in seconds from the run's start. */
  startSec: number;
  /** When it did start (its clock zero), in seconds from the run's start; null until then. */
  offsetSec: number | null;
  /** Its own run, once started; absent if the run ended first. */
  run: Run | undefined;
}

export interface Run {
  /**
   * The merged books. They exist once the workers are ready and the clock starts; before that
   * this is undefined at run time, whatever the type says, so a caller early on checks first.
   */
  readonly stats: StatsAggregate;
  readonly phase: Phase;
  /** Wall-clock ms; 0 until the clock starts. */
  readonly startedAt: number;
  /** Wall-clock ms; 0 until the run is over. */
  readonly endedAt: number;
  readonly elapsedSec: number;
  /** When the current books started: the run's start, or the last stats reset. */
  readonly statsStartedAt: number;
  /** Seconds the current books cover. */
  readonly statsElapsedSec: number;
  readonly stopReason: StopReason | undefined;
  /** Most users alive at once. */
  readonly peakUsers: number;
  readonly warnings: readonly RunWarning[];
  /** Set when the run ended because something failed (a worker's fatal error, a load shape that threw). */
  readonly fatalError: string | undefined;
  /** Workers that ended without reporting back. */
  readonly lostWorkers: number;
  /** Longest stop timeout of the run: how long a graceful stop may take. */
  readonly stopTimeoutSec: number;
  /** The one plan the run follows; undefined for a run with scenarios, where each has its own. */
  readonly plan: RunPlan | undefined;
  /** Workers the run uses, over all its scenarios. */
  readonly workerCount: number;
  /** The user classes its workers run (known once they are ready). */
  readonly classes: readonly ClassInfo[];
  /** Bursts a load shape fired (a run with scenarios keeps them per scenario). */
  readonly bursts: readonly Burst[];
  /** Each scenario, for a run with scenarios; undefined otherwise. */
  readonly scenarios: readonly ScenarioView[] | undefined;

  status(): RunStatus;
  workerInfo(): WorkerInfo[];
  /** Resolves once the run is over and every worker has finished or been given up on. */
  run(): Promise<void>;
  /** Graceful stop: users finish their task within the stop timeout. */
  stop(reason: StopReason): void;
  /** Immediate stop: in-flight requests are cancelled. */
  abort(): void;
  /** Live edits (the web UI). Each throws an Error saying why when the run's load model has no such knob. */
  setUsers(users: number, spawnRate?: number): void;
  setRate(rate: number): void;
  /** Starts the books afresh, dated `at` (default now); the load goes on as it was. */
  resetStats(at?: number): void;
}
