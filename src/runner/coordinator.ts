import { CicadaError, ExitCode } from "../cli/errors.js";
import type { Bundle } from "../loadfile/bundle.js";
import { StatsAggregate } from "../stats/aggregate.js";
import type { StatsSnapshot } from "../stats/snapshot.js";
import { type DispatchClass, dispatchUsers, splitEvenly } from "./dispatch.js";
import type { RunPlan } from "./plan.js";
import {
  type ClassInfo,
  type CoordinatorMessage,
  inProcessPair,
  type Transport,
  type WorkerMessage,
} from "./protocol.js";
import { Worker } from "./worker.js";

export type StopReason = "run-time" | "iterations" | "signal" | "error" | "api";
export type Phase = "starting" | "spawning" | "running" | "stopping" | "done";

export interface CoordinatorHooks {
  /** Once a second, after the snapshots of that second were merged. */
  onTick?(c: Coordinator): void;
  /** Something worth a line in the log (a worker error, a stop). */
  onNotice?(message: string): void;
}

interface WorkerHandle {
  id: string;
  transport: Transport<CoordinatorMessage, WorkerMessage>;
  ready: Promise<ClassInfo[]>;
  done: Promise<void>;
  finished: boolean;
}

const SPAWN_TICK_MS = 100;

/**
 * Owns the run: hands each worker its share of users, merges their snapshots exactly,
 * decides when to stop. Outputs read `stats`; they never talk to workers.
 */
export class Coordinator {
  stats!: StatsAggregate;
  startedAt = 0;
  endedAt = 0;
  phase: Phase = "starting";
  stopReason: StopReason | undefined;
  peakUsers = 0;
  targetUsers = 0;
  classes: ClassInfo[] = [];
  private workers: WorkerHandle[] = [];
  private stopRequested: (() => void) | undefined;
  private readonly stopPromise: Promise<void>;
  private lastTargets = "";
  private aborted = false;
  private fatal: string | undefined;
  private readonly exhausted = new Set<string>();

  constructor(
    readonly plan: RunPlan,
    private readonly bundle: Bundle,
    private readonly hooks: CoordinatorHooks = {},
  ) {
    this.stopPromise = new Promise((r) => (this.stopRequested = r));
  }

  get elapsedSec(): number {
    if (this.startedAt === 0) return 0;
    return ((this.endedAt || Date.now()) - this.startedAt) / 1000;
  }

  private startWorker(id: string): WorkerHandle {
    const pair = inProcessPair();
    new Worker(pair.worker, this.plan.loadfile);
    let resolveReady!: (c: ClassInfo[]) => void;
    let rejectReady!: (e: Error) => void;
    let resolveDone!: () => void;
    const handle: WorkerHandle = {
      id,
      transport: pair.coordinator,
      ready: new Promise((res, rej) => {
        resolveReady = res;
        rejectReady = rej;
      }),
      done: new Promise((res) => (resolveDone = res)),
      finished: false,
    };
    let isReady = false;
    pair.coordinator.onMessage((m) => {
      switch (m.type) {
        case "ready":
          isReady = true;
          resolveReady(m.classes);
          break;
        case "stats":
          this.merge(m.snapshot);
          break;
        case "done":
          this.merge(m.snapshot);
          handle.finished = true;
          resolveDone();
          break;
        case "exhausted":
          this.exhausted.add(id);
          if (this.workers.every((wk) => this.exhausted.has(wk.id))) this.stop("iterations");
          break;
        case "error":
          if (!isReady) rejectReady(new CicadaError(m.message, ExitCode.Usage));
          else {
            this.hooks.onNotice?.(`worker ${id}: ${m.message}`);
            if (m.fatal) {
              this.fatal = m.message;
              this.stop("error");
            }
          }
          break;
        case "hello":
        case "heartbeat":
          break;
      }
    });
    pair.coordinator.send({
      type: "plan",
      workerId: id,
      plan: {
        bundlePath: this.bundle.path,
        host: this.plan.host,
        userClasses: this.plan.userClasses,
        tags: this.plan.tags,
        excludeTags: this.plan.excludeTags,
        iterations: this.plan.iterations,
        snapshotIntervalMs: 1000,
        verifyTls: this.plan.verifyTls,
      },
    });
    return handle;
  }

  private merge(s: StatsSnapshot): void {
    this.stats.add(s);
    this.peakUsers = this.stats.peakUsers;
  }

  /** Graceful stop: users finish their task within the stop timeout. */
  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.stopRequested?.();
  }

  /** Immediate stop, e.g. on a second Ctrl-C: in-flight requests are cancelled. */
  abort(): void {
    this.aborted = true;
    this.stop("signal");
    for (const w of this.workers) w.transport.send({ type: "abort" });
  }

  private dispatch(total: number): void {
    const perClass = dispatchUsers(this.classes as DispatchClass[], total);
    const shares = this.workers.map(() => ({}) as Record<string, number>);
    for (const [name, n] of perClass) {
      for (const [i, k] of splitEvenly(n, this.workers.length).entries()) shares[i]![name] = k;
    }
    const key = JSON.stringify(shares);
    if (key === this.lastTargets) return;
    this.lastTargets = key;
    this.targetUsers = total;
    for (const [i, w] of this.workers.entries()) w.transport.send({ type: "spawn", targets: shares[i]! });
  }

  async run(): Promise<void> {
    const w = this.startWorker("w0");
    this.workers.push(w);
    this.classes = await w.ready;
    this.startedAt = Date.now();
    this.stats = new StatsAggregate(this.startedAt);
    this.phase = "spawning";

    const { users, spawnRate } = this.plan;
    const spawn = () => {
      if (this.stopReason) return;
      const elapsed = (Date.now() - this.startedAt) / 1000;
      const total = Math.min(users, Math.floor(spawnRate * elapsed) + 1);
      this.dispatch(total);
      if (total >= users) {
        this.phase = "running";
        clearInterval(spawnTimer);
      }
    };
    const spawnTimer = setInterval(spawn, SPAWN_TICK_MS);
    spawn();
    const tickTimer = setInterval(() => this.hooks.onTick?.(this), 1000);
    const runTimer =
      this.plan.runTimeSec !== null
        ? setTimeout(() => this.stop("run-time"), this.plan.runTimeSec * 1000)
        : undefined;

    await this.stopPromise;
    clearInterval(spawnTimer);
    clearTimeout(runTimer);
    this.phase = "stopping";
    const timeoutMs = Math.round(this.plan.stopTimeoutSec * 1000);
    if (!this.aborted) for (const wk of this.workers) wk.transport.send({ type: "stop", timeoutMs });

    // A worker that does not report back in time is told to abort, then given up on:
    // the run must end, with whatever was merged so far.
    const allDone = Promise.all(this.workers.map((wk) => wk.done));
    const wait = (ms: number) =>
      Promise.race([
        allDone.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
      ]);
    if (!(await wait(timeoutMs + 5000))) {
      for (const wk of this.workers) wk.transport.send({ type: "abort" });
      if (!(await wait(3000))) this.hooks.onNotice?.("a worker did not finish; its last interval is lost");
    }
    clearInterval(tickTimer);
    for (const wk of this.workers) wk.transport.close();
    this.endedAt = Date.now();
    this.stats.finish();
    this.phase = "done";
  }

  get fatalError(): string | undefined {
    return this.fatal;
  }
}
