import { readFileSync } from "node:fs";
import type { LoadShape } from "../api/shape.js";
import { UsageError } from "../core/errors.js";
import type { Bundle } from "../loadfile/bundle.js";
import { type ClosedInterval, StatsAggregate } from "../stats/aggregate.js";
import type { StatsSnapshot } from "../stats/snapshot.js";
import { type DispatchClass, dispatchUsers, splitEvenly } from "./dispatch.js";
import { SaturationWatch } from "./load.js";
import { LOAD_TICK_MS, type LoadModel, loadModelFor } from "./models/index.js";
import type { RunPlan } from "./plan.js";
import {
  type ClassInfo,
  type CoordinatorMessage,
  inProcessPair,
  type Transport,
  type WorkerMessage,
} from "./protocol.js";
import type { Burst, Phase, Run, RunStatus, RunWarning, StopReason, WorkerInfo } from "./run.js";
import { stageNumber, stagesDuration } from "./stages.js";
import { startThreadWorker } from "./thread.js";
import { Worker } from "./worker.js";

/** Where remote workers come from: connected and greeted, one transport per worker. */
export interface RemoteWorkerSource {
  take(): Transport<CoordinatorMessage, WorkerMessage>;
}

export interface CoordinatorHooks {
  /** Once a second, after the snapshots of that second were merged. */
  onTick?(c: Coordinator): void;
  /** Something worth a line in the log (a worker error, a stop). */
  onNotice?(message: string): void;
  /** Each second of the run as it closes in `stats` (CSV history). */
  onInterval?(iv: ClosedInterval): void;
  /** Each worker snapshot, once it has been merged into `stats` (scenario runs merge them again). */
  onSnapshot?(s: StatsSnapshot, c: Coordinator): void;
}

interface WorkerHandle {
  id: string;
  transport: Transport<CoordinatorMessage, WorkerMessage>;
  ready: Promise<ClassInfo[]>;
  done: Promise<void>;
  finished: boolean;
  /** Ended without a `done`: crashed, or exited. */
  lost: boolean;
  /** Users per class this worker was last told to have alive. */
  targets: Record<string, number>;
  /** Sequence number and time of its latest snapshot. */
  lastSeq: number;
  lastAt: number;
  /** When the coordinator last heard from it (its clock). */
  lastHeard: number;
}

/** How many workers a plan gets: never more than there are users or iterations to share. */
export function workerCountFor(
  plan: Pick<RunPlan, "processes" | "users" | "iterations" | "rate" | "maxUsers">,
): number {
  const users = plan.rate !== null ? plan.maxUsers : plan.users;
  return Math.max(1, Math.min(plan.processes, users, plan.iterations ?? Number.POSITIVE_INFINITY));
}

/**
 * Owns the run: hands each worker its share of users, merges their snapshots exactly,
 * decides when to stop. Outputs read `stats`; they never talk to workers.
 */
export class Coordinator implements Run {
  stats!: StatsAggregate;
  startedAt = 0;
  endedAt = 0;
  phase: Phase = "starting";
  stopReason: StopReason | undefined;
  peakUsers = 0;
  /** Open model: the arrival rate now in force. */
  currentRate = 0;
  private classesKey = "";
  /** Bursts a shape fired: when (s since start) and how many arrivals. */
  readonly bursts: Burst[] = [];
  /** Users handed out to the workers now. */
  targetUsers = 0;
  classes: ClassInfo[] = [];
  /** A coordinator runs one plan; scenarios are a ScenarioGroup of coordinators. */
  readonly scenarios = undefined;
  readonly warnings: RunWarning[] = [];
  /** Workers this run uses: 1 runs them in this thread, more start worker threads. */
  readonly workerCount: number;
  private workers: WorkerHandle[] = [];
  private stopRequested: (() => void) | undefined;
  private readonly stopPromise: Promise<void>;
  private aborted = false;
  private fatal: string | undefined;
  private readonly exhausted = new Set<string>();
  /** Users of each class handed out so far, and the worker that gets the next one. */
  private readonly assigned = new Map<string, number>();
  private nextWorker = 0;
  /** Snapshots that arrive before the clock starts (a worker ready before the others). */
  private early: StatsSnapshot[] = [];
  private readonly saturation = new SaturationWatch();
  private bundleCode: string | undefined;
  /** Latest heartbeat figures per worker, for the web UI. */
  private readonly workerLoad = new Map<string, { elu: number; heapUsedMB: number }>();
  /** When the current books started: the run's start, or the last stats reset. */
  statsStartedAt = 0;
  /** Decides the load every LOAD_TICK_MS (src/runner/models/). */
  private readonly model: LoadModel;

  constructor(
    readonly plan: RunPlan,
    private readonly bundle: Bundle,
    private readonly hooks: CoordinatorHooks = {},
    /** A LoadShape from the loadfile: it drives users or rates instead of -u/-r/stages. */
    shape?: LoadShape,
    /** Workers on other machines, already connected (`--master`), instead of threads. */
    private readonly remote?: RemoteWorkerSource,
  ) {
    this.stopPromise = new Promise((r) => (this.stopRequested = r));
    this.workerCount = workerCountFor(plan);
    this.model = loadModelFor(plan, shape);
  }

  get elapsedSec(): number {
    if (this.startedAt === 0) return 0;
    return ((this.endedAt || Date.now()) - this.startedAt) / 1000;
  }

  /** Workers that ended without reporting back (crashed threads). */
  get lostWorkers(): number {
    return this.workers.filter((w) => w.lost).length;
  }

  private openTransport(id: string): Transport<CoordinatorMessage, WorkerMessage> {
    if (this.remote) return this.remote.take();
    if (this.workerCount === 1) {
      const pair = inProcessPair();
      new Worker(pair.worker, this.plan.loadfile);
      return pair.coordinator;
    }
    return startThreadWorker(id);
  }

  private startWorker(index: number): WorkerHandle {
    const id = `w${index}`;
    const transport = this.openTransport(id);
    let resolveReady!: (c: ClassInfo[]) => void;
    let rejectReady!: (e: Error) => void;
    let resolveDone!: () => void;
    const handle: WorkerHandle = {
      id,
      transport,
      ready: new Promise((res, rej) => {
        resolveReady = res;
        rejectReady = rej;
      }),
      done: new Promise((res) => (resolveDone = res)),
      finished: false,
      lost: false,
      targets: {},
      lastSeq: 0,
      lastAt: 0,
      lastHeard: Date.now(),
    };
    let isReady = false;
    transport.onMessage((m) => {
      if (handle.finished) return;
      handle.lastHeard = Date.now();
      switch (m.type) {
        case "ready":
          isReady = true;
          resolveReady(m.classes);
          break;
        case "stats":
          this.merge(handle, m.snapshot);
          break;
        case "done":
          this.merge(handle, m.snapshot);
          handle.finished = true;
          resolveDone();
          break;
        case "exhausted":
          this.exhausted.add(id);
          this.checkExhausted();
          break;
        case "error":
          if (!isReady) rejectReady(new UsageError(m.message));
          else {
            this.hooks.onNotice?.(`worker ${id}: ${m.message}`);
            if (m.fatal) {
              this.fatal = m.message;
              this.stop("error");
            }
          }
          break;
        case "heartbeat":
          this.workerLoad.set(id, { elu: m.elu ?? 0, heapUsedMB: m.heapUsedMB ?? 0 });
          if (m.elu !== undefined && this.startedAt > 0 && this.phase !== "done") {
            // The receiving clock, not the worker's: a remote machine's clock may differ.
            const warning = this.saturation.observe(
              id,
              m.elu,
              m.windowMs ?? 1000,
              Date.now(),
              this.startedAt,
            );
            if (warning) this.warn("cpu", warning);
          }
          break;
        case "hello":
          break;
      }
    });
    transport.onLost?.((reason) => {
      if (handle.finished) return;
      handle.finished = true;
      handle.lost = true;
      resolveDone();
      if (!isReady) {
        rejectReady(new UsageError(`worker ${id} ${reason} before it was ready`));
        return;
      }
      const users = Object.values(handle.targets).reduce((a, b) => a + b, 0);
      this.warn(
        "worker",
        `warning: worker ${id} ${reason}; its ${users} user(s) are gone and what it measured since its last snapshot is lost`,
      );
      // Take its users out of the live count with an empty last snapshot.
      this.merge(handle, {
        workerId: id,
        seq: handle.lastSeq,
        at: handle.lastAt || Date.now(),
        final: true,
        users: 0,
        peakUsers: 0,
        iterations: 0,
        endpoints: [],
        errors: [],
        exceptions: [],
      });
      if (this.workers.every((w) => w.lost)) this.stop("error");
      else this.checkExhausted();
    });
    transport.send({
      type: "plan",
      workerId: id,
      plan: {
        bundlePath: this.bundle.path,
        ...(this.remote ? { bundleCode: (this.bundleCode ??= readFileSync(this.bundle.path, "utf8")) } : {}),
        loadfile: this.plan.loadfile,
        workerIndex: index,
        workerCount: this.workerCount,
        userIdIndex: (this.plan.userIds?.first ?? 0) + index,
        userIdStride: this.plan.userIds?.stride ?? this.workerCount,
        host: this.plan.host,
        userClasses: this.plan.userClasses,
        tags: this.plan.tags,
        excludeTags: this.plan.excludeTags,
        iterations: this.iterationShare(index),
        iterationsPerUser: this.plan.iterationsPerUser,
        snapshotIntervalMs: 1000,
        verifyTls: this.plan.verifyTls,
        acceptStatus: this.plan.acceptStatus,
      },
    });
    return handle;
  }

  /**
   * Worker `index`'s share of the global iteration budget. Workers never outnumber iterations or
   * users, and users go to workers in turn, so every share is used and they add up to the budget.
   */
  private iterationShare(index: number): number | null {
    const { iterations } = this.plan;
    if (iterations === null) return null;
    return splitEvenly(iterations, this.workerCount)[index]!;
  }

  /**
   * A worker whose event loop is blocked cannot even send its heartbeat. Silence is saturation
   * too: it counts as 100 % busy for as long as it lasts.
   */
  private checkSilent(): void {
    const now = Date.now();
    for (const w of this.workers) {
      const silentMs = now - w.lastHeard;
      if (w.finished || silentMs < 2500) continue;
      const warning = this.saturation.observe(w.id, 1, silentMs, now, this.startedAt);
      if (warning) this.warn("cpu", warning);
    }
  }

  private warn(kind: RunWarning["kind"], message: string): void {
    this.warnings.push({ at: Date.now(), kind, message });
    this.hooks.onNotice?.(message);
  }

  /** `exhausted` ends the run only once every worker that is still there has used up its share. */
  private checkExhausted(): void {
    if (this.exhausted.size === 0) return;
    // With a per-user limit, users that finished early during the ramp-up do not end the run.
    if (this.plan.iterationsPerUser !== null && this.phase !== "running") return;
    if (this.workers.every((w) => w.lost || this.exhausted.has(w.id))) this.stop("iterations");
  }

  private merge(w: WorkerHandle, s: StatsSnapshot): void {
    if (s.seq >= w.lastSeq) {
      w.lastSeq = s.seq;
      w.lastAt = s.at;
    }
    if (!this.stats) {
      this.early.push(s);
      return;
    }
    this.stats.add(s);
    this.peakUsers = this.stats.peakUsers;
    this.hooks.onSnapshot?.(s, this);
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
    // Workers still loading the test would take the abort before their `ready`; `run` tells
    // them once they are ready.
    if (this.phase === "starting") return;
    for (const w of this.workers) if (!w.finished) w.transport.send({ type: "abort" });
  }

  /**
   * Brings the users alive to `total`: split over classes by `dispatchUsers`, then each new user
   * goes to the next worker in turn, so the workers' loads differ by one user at most, whatever
   * the mix of classes, and no worker's share ever shrinks while the total grows. Only workers
   * whose share changed get a (absolute, idempotent) `spawn`.
   */
  private dispatch(total: number, only?: readonly string[]): void {
    const key = only ? only.join("\u0000") : "";
    if (total === this.targetUsers && key === this.classesKey) return;
    this.classesKey = key;
    const live = this.workers.filter((w) => !w.lost);
    if (live.length === 0) return;
    const changed = new Set<WorkerHandle>();
    const picked = only ? this.classes.filter((c) => only.includes(c.name)) : this.classes;
    const counts = dispatchUsers(picked as DispatchClass[], total);
    for (const c of this.classes) {
      const name = c.name;
      const n = counts.get(name) ?? 0;
      let have = this.assigned.get(name) ?? 0;
      for (; have < n; have++) {
        let w = this.workers[this.nextWorker % this.workers.length]!;
        while (w.lost) w = this.workers[++this.nextWorker % this.workers.length]!;
        this.nextWorker = (this.nextWorker + 1) % this.workers.length;
        w.targets[name] = (w.targets[name] ?? 0) + 1;
        changed.add(w);
      }
      for (; have > n; have--) {
        // Ramping down: take from the worker with the most users of the class.
        const w = live.reduce((a, b) => ((b.targets[name] ?? 0) > (a.targets[name] ?? 0) ? b : a));
        w.targets[name] = (w.targets[name] ?? 0) - 1;
        changed.add(w);
      }
      this.assigned.set(name, have);
    }
    this.targetUsers = total;
    for (const w of changed) {
      this.exhausted.delete(w.id);
      w.transport.send({ type: "spawn", targets: { ...w.targets } });
    }
  }

  async run(): Promise<void> {
    for (let i = 0; i < this.workerCount; i++) this.workers.push(this.startWorker(i));
    try {
      const ready = await Promise.all(this.workers.map((w) => w.ready));
      this.classes = ready[0]!;
    } catch (err) {
      for (const w of this.workers) w.transport.close();
      throw err;
    }
    this.startedAt = Date.now();
    this.statsStartedAt = this.startedAt;
    this.stats = new StatsAggregate(this.startedAt);
    this.stats.onInterval = this.hooks.onInterval;
    for (const s of this.early) {
      this.stats.add(s);
      this.hooks.onSnapshot?.(s, this);
    }
    this.early = [];
    this.peakUsers = this.stats.peakUsers;
    for (const c of this.classes) for (const w of this.workers) w.targets[c.name] = 0;
    this.phase = "spawning";

    let lastRate = -1;
    const sendRate = (level: number) => {
      if (level === lastRate) return;
      lastRate = level;
      this.currentRate = level;
      const n = this.workers.length;
      const maxUsers = splitEvenly(Math.max(n, this.plan.maxUsers), n);
      for (const [i, w] of this.workers.entries()) {
        w.transport.send({
          type: "rate",
          rate: level / n,
          maxUsers: maxUsers[i]!,
          maxDelayMs: this.plan.maxDelaySec * 1000,
        });
      }
    };
    // Arrivals replace users: a shape that switches to them takes its users away first.
    const toOpenModel = () => {
      if (this.plan.rate === null) this.plan.rate = 0;
      if (this.targetUsers > 0) this.dispatch(0);
    };
    const drive = () => {
      if (this.stopReason) return;
      const elapsedMs = Date.now() - this.startedAt;
      const step = this.model.tick(elapsedMs);
      switch (step.kind) {
        case "end":
          this.stop(step.reason);
          return;
        case "fail":
          this.hooks.onNotice?.(step.notice);
          this.fatal = step.fatal;
          this.stop("error");
          return;
        case "users":
          if (lastRate > 0) sendRate(0);
          this.dispatch(step.users, step.userClasses);
          // Spawning is over once the model stops ramping; with --iterations-per-user, users that
          // finished during the ramp may end the run only now.
          if (!step.ramping && this.phase !== "running") {
            this.phase = "running";
            this.checkExhausted();
          }
          return;
        case "rate":
          this.phase = "running";
          toOpenModel();
          sendRate(step.rate);
          return;
        case "burst": {
          this.phase = "running";
          toOpenModel();
          this.bursts.push({ t: Math.round(elapsedMs / 100) / 10, count: step.count });
          const n = this.workers.length;
          const counts = splitEvenly(step.count, n);
          const maxUsers = splitEvenly(Math.max(n, this.plan.maxUsers), n);
          for (const [i, w] of this.workers.entries()) {
            if (counts[i]! > 0) {
              w.transport.send({
                type: "burst",
                count: counts[i]!,
                maxUsers: maxUsers[i]!,
                maxDelayMs: this.plan.maxDelaySec * 1000,
              });
            }
          }
          return;
        }
        case "hold":
          this.phase = "running";
          return;
      }
    };
    const driveTimer = setInterval(drive, LOAD_TICK_MS);
    drive();
    const tickTimer = setInterval(() => {
      this.checkSilent();
      this.hooks.onTick?.(this);
    }, 1000);
    const runTimer =
      this.plan.runTimeSec !== null
        ? setTimeout(() => this.stop("run-time"), this.plan.runTimeSec * 1000)
        : undefined;

    await this.stopPromise;
    clearInterval(driveTimer);
    clearTimeout(runTimer);
    this.phase = "stopping";
    const timeoutMs = Math.round(this.plan.stopTimeoutSec * 1000);
    for (const wk of this.workers) {
      if (!wk.finished) wk.transport.send(this.aborted ? { type: "abort" } : { type: "stop", timeoutMs });
    }

    // A worker that does not report back in time is told to abort, then given up on:
    // the run must end, with whatever was merged so far.
    const allDone = Promise.all(this.workers.map((wk) => wk.done));
    const wait = (ms: number) =>
      Promise.race([
        allDone.then(() => true),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
      ]);
    if (!(await wait(timeoutMs + 5000))) {
      for (const wk of this.workers) if (!wk.finished) wk.transport.send({ type: "abort" });
      if (!(await wait(3000))) {
        for (const wk of this.workers) {
          if (wk.finished) continue;
          wk.finished = true;
          wk.lost = true;
          this.warn(
            "worker",
            `warning: worker ${wk.id} did not finish; what it measured since its last snapshot is lost`,
          );
        }
      }
    }
    clearInterval(tickTimer);
    for (const wk of this.workers) wk.transport.close();
    this.endedAt = Date.now();
    this.stats.finish();
    this.phase = "done";
  }

  /**
   * Live edit, closed model: ramp from the users alive now to `users` at `spawnRate` (default the
   * plan's). Not for runs driven by stages or a LoadShape.
   */
  setUsers(users: number, spawnRate?: number): void {
    if (!this.model.setUsers) {
      throw new Error("this run's load follows its model, stages or shape; it cannot be set by hand");
    }
    // Before the clock starts, the ramp starts with it.
    this.model.setUsers(users, spawnRate, this.startedAt === 0 ? 0 : Date.now() - this.startedAt);
    this.plan.users = users;
    if (spawnRate !== undefined) this.plan.spawnRate = spawnRate;
    this.phase = "spawning";
  }

  /** Live edit, open model: the arrival rate from now on. */
  setRate(rate: number): void {
    if (!this.model.setRate) {
      throw new Error("only an open-model run without stages or a shape has a rate to set");
    }
    this.model.setRate(rate);
    this.plan.rate = rate;
    if (rate > this.plan.maxUsers) this.plan.maxUsers = Math.ceil(rate);
  }

  /** Starts the books afresh (the web UI's "reset stats"); the load goes on as it was. */
  resetStats(): void {
    if (!this.stats) return;
    const onInterval = this.stats.onInterval;
    const users = this.stats.users;
    this.statsStartedAt = Date.now();
    this.stats = new StatsAggregate(this.statsStartedAt);
    this.stats.onInterval = onInterval;
    this.peakUsers = users;
  }

  /** Seconds the current books cover. */
  get statsElapsedSec(): number {
    if (this.statsStartedAt === 0) return 0;
    return ((this.endedAt || Date.now()) - this.statsStartedAt) / 1000;
  }

  get stopTimeoutSec(): number {
    return this.plan.stopTimeoutSec;
  }

  status(): RunStatus {
    const elapsedSec = this.elapsedSec;
    const { stages, shape, rate, users } = this.plan;
    return {
      elapsedSec,
      plannedSec: this.plan.runTimeSec ?? (stages ? stagesDuration(stages) : null),
      load: stages
        ? { kind: "stage", stage: stageNumber(stages, elapsedSec), stages: stages.length }
        : shape
          ? { kind: "shape", name: shape }
          : { kind: "users", target: users },
      rate: rate !== null ? this.currentRate : null,
      targetUsers: rate !== null ? null : users,
    };
  }

  /** Per worker: users (from its last snapshot), event-loop utilization and heap, for the web UI. */
  workerInfo(): WorkerInfo[] {
    return this.workers.map((w) => ({
      id: w.id,
      users: Object.values(w.targets).reduce((a, b) => a + b, 0),
      cpu: this.workerLoad.get(w.id)?.elu ?? 0,
      heapUsedMB: this.workerLoad.get(w.id)?.heapUsedMB ?? 0,
      lost: w.lost,
    }));
  }

  get fatalError(): string | undefined {
    return this.fatal;
  }
}
