import type { HttpEngine } from "../protocols/http/session.js";
import type { TracePlan } from "../protocols/http/tracing.js";
import type { ResourceSample } from "../stats/resources.js";
import type { Slo } from "../stats/slo.js";
import type { StatsSnapshot } from "../stats/snapshot.js";
import type { ArrivalSpec } from "./arrivals.js";
import type { ScheduleRow } from "./schedule.js";

/**
 * The coordinator↔worker protocol. Plain JSON messages, so the same protocol runs over a
 * MessagePort to a worker thread or over a socket to a remote machine.
 */
/**
 * 2: the greeting of src/runner/handshake.ts (nonces, token proofs, the worker's cores) before
 * any plan, and heartbeats both ways on remote connections.
 * 3: channels on remote connections (`ch`, one per scenario, see src/runner/shared-workers.ts)
 * and `close`.
 */
export const PROTOCOL_VERSION = 3;

/** What a worker needs to run its share of the test. */
export interface WorkerPlan {
  /** Path of the bundled loadfile (ESM, self-contained apart from Node built-ins). */
  bundlePath: string;
  /** Remote workers: the bundle itself, since the master's path means nothing on their machine. */
  bundleCode?: string;
  /** The loadfile as the user named it, for messages. */
  loadfile: string;
  /** This worker's position among all workers of the run (0-based), and their number. User ids
   * are allocated as `workerIndex + k × workerCount`, so they are unique across the run. */
  workerIndex: number;
  workerCount: number;
  /** When several coordinators share a run (scenarios): user ids are `userIdIndex + k × userIdStride`. */
  userIdIndex?: number;
  /** Status codes ≥ 400 that count as successes. */
  acceptStatus?: number[];
  /** --slo: the bounds each stream is judged against, in ms. */
  slo?: Slo;
  userIdStride?: number;
  /** Overrides every class's static host. */
  host: string | undefined;
  /** Class names to run; all runnable classes when empty. */
  userClasses: string[];
  tags: string[];
  excludeTags: string[];
  /** This worker's share of the global iteration limit; null for none. */
  iterations: number | null;
  /** Task iterations each user runs before it stops; null for no limit. */
  iterationsPerUser?: number | null;
  /** Open model: Poisson or gamma gaps (constant when absent); the worker draws stream `workerIndex`. */
  arrivals?: ArrivalSpec;
  /** --seed: the default seed of the loadfile's datasets. */
  seed?: number;
  /** This worker's share of --max-concurrency: iterations in flight at once. */
  maxConcurrency?: number;
  /**
   * --warmup/--cooldown on this worker's clock, in ms from its first load message: requests that
   * complete before `warmupMs` or from `cooldownAtMs` on are kept out of the figures.
   */
  windows?: { warmupMs: number; cooldownAtMs: number | null };
  /** --schedule: this worker's rows of the trace (offsets from its first load message). */
  schedule?: ScheduleRow[];
  /** Milliseconds between stats snapshots. */
  snapshotIntervalMs: number;
  verifyTls: boolean;
  /** `--http-engine`: every HttpUser's client, over its class's static engine; absent: the classes choose. */
  httpEngine?: HttpEngine;
  /**
   * `--otel-traces`: where the worker sends its spans. A remote worker sends them itself, with
   * the OTEL_EXPORTER_OTLP_* headers of its own environment.
   */
  traces?: TracePlan;
}

export interface ClassInfo {
  name: string;
  weight: number;
  fixedCount: number;
  host: string | undefined;
  tasks: number;
}

export type CoordinatorMessage =
  | { type: "plan"; workerId: string; plan: WorkerPlan }
  /** Absolute user counts per class this worker should have alive. */
  | { type: "spawn"; targets: Record<string, number> }
  /**
   * Open model: start `rate` iterations per second (this worker's share), with at most
   * `maxUsers` users; an arrival more than `maxDelayMs` late is dropped.
   */
  | { type: "rate"; rate: number; maxUsers: number; maxDelayMs: number }
  /** Open model: `count` arrivals at once, now (a burst). */
  | { type: "burst"; count: number; maxUsers: number; maxDelayMs: number }
  /** Stop gracefully: running tasks get `timeoutMs` to finish, then are cut off. */
  | { type: "stop"; timeoutMs: number }
  /** Stop now: in-flight requests are cancelled and counted as such. */
  | { type: "abort" }
  | { type: "heartbeat"; at: number }
  /** The coordinator is done with this worker (a channel of a shared connection: its thread ends). */
  | { type: "close" };

export type WorkerMessage =
  | { type: "hello"; workerId: string; version: number; pid: number }
  | { type: "ready"; classes: ClassInfo[] }
  | { type: "stats"; snapshot: StatsSnapshot }
  /**
   * Liveness, once a second, with the worker's own event-loop utilization (0–1) over the
   * `windowMs` before `at`: how busy its thread was. Near 1 the generator itself is the
   * bottleneck and its latencies include its own queueing.
   */
  | { type: "heartbeat"; at: number; elu?: number; windowMs?: number; heapUsedMB?: number }
  | { type: "error"; message: string; fatal: boolean }
  /**
   * A remote worker's resource samples (`cicada worker --monitor-pid/--monitor-url`, and its own
   * CPU and memory), once a second, on the connection itself (no channel). `at` is when it was
   * sent, by the worker's clock: the master moves the samples onto its own clock by the difference.
   * `receivedAt` is set by the master when the message arrives, once for all the scenarios that
   * share the connection, so they all place the samples at the same moment.
   */
  | { type: "resources"; at: number; samples: ResourceSample[]; receivedAt?: number }
  /** The worker's iteration share is used up and its users have finished. */
  | { type: "exhausted" }
  | { type: "done"; snapshot: StatsSnapshot };

/**
 * A message on a remote connection shared by several scenarios names its channel: one per
 * scenario, each run by its own worker thread there. Messages without one belong to the
 * connection itself (its heartbeats).
 */
export type OnChannel<M> = M & { ch?: number };

/** One end of a message channel. */
export interface Transport<Out, In> {
  send(msg: Out): void;
  onMessage(handler: (msg: In) => void): void;
  /**
   * Called once if the other end goes away without a `close()` from this side: a worker thread
   * that crashed or exited, a dropped connection. Transports that cannot lose their peer (the
   * in-process pair) never call it.
   */
  onLost?(handler: (reason: string) => void): void;
  close(): void;
}

/**
 * The wire form of a message. Every transport that leaves the thread sends this text, so a
 * message that survives a MessagePort also survives a socket (no Maps, Dates, undefined-vs-absent
 * surprises, class instances or shared buffers).
 */
export function encodeMessage(m: CoordinatorMessage | WorkerMessage): string {
  return JSON.stringify(m);
}

export function decodeMessage<T extends CoordinatorMessage | WorkerMessage>(text: string): T {
  return JSON.parse(text) as T;
}

/** Both ends of an in-process channel. Delivery is async, as it would be across threads. */
export function inProcessPair(): {
  coordinator: Transport<CoordinatorMessage, WorkerMessage>;
  worker: Transport<WorkerMessage, CoordinatorMessage>;
} {
  let toWorker: ((m: CoordinatorMessage) => void) | undefined;
  let toCoordinator: ((m: WorkerMessage) => void) | undefined;
  let closed = false;
  return {
    coordinator: {
      send: (m) => {
        if (!closed) queueMicrotask(() => toWorker?.(m));
      },
      onMessage: (h) => {
        toCoordinator = h;
      },
      close: () => {
        closed = true;
      },
    },
    worker: {
      send: (m) => {
        if (!closed) queueMicrotask(() => toCoordinator?.(m));
      },
      onMessage: (h) => {
        toWorker = h;
      },
      close: () => {
        closed = true;
      },
    },
  };
}
