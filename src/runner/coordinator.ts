import { readFileSync } from "node:fs";
import type { LoadShape, ShapeTick } from "../api/shape.js";
import { UsageError } from "../core/errors.js";
import type { Bundle } from "../loadfile/bundle.js";
import { type ClosedInterval, StatsAggregate } from "../stats/aggregate.js";
import type { StatsSnapshot } from "../stats/snapshot.js";
import { type DispatchClass, dispatchUsers, splitEvenly } from "./dispatch.js";
import { SaturationWatch } from "./load.js";
import type { RunPlan } from "./plan.js";
import {
  type ClassInfo,
  type CoordinatorMessage,
  inProcessPair,
  type Transport,
  type WorkerMessage,
} from "./protocol.js";
import { stageLevel } from "./stages.js";
import { startThreadWorker } from "./thread.js";
import { Worker } from "./worker.js";

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
}

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

const SPAWN_TICK_MS = 100;

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
export class Coordinator {
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
  readonly bursts: Array<{ t: number; count: number }> = [];
  /** Closed-model users a shape has ramped to so far (fractional while spawning). */
  private shapeUsers = 0;
  private lastShapeAt = 0;
  targetUsers = 0;
  classes: ClassInfo[] = [];
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
  /** Closed model: the ramp in progress, from `rampFrom` users at `rampAt` (ms) toward plan.users. */
  private rampFrom = 0;
  private rampAt = 0;

  constructor(
    readonly plan: RunPlan,
    private readonly bundle: Bundle,
    private readonly hooks: CoordinatorHooks = {},
    /** A LoadShape from the loadfile: it drives users or rates instead of -u/-r/stages. */
    private readonly shape?: LoadShape,
    /** Workers on other machines, already connected (`--master`), instead of threads. */
    private readonly remote?: RemoteWorkerSource,
  ) {
    this.stopPromise = new Promise((r) => (this.stopRequested = r));
    this.workerCount = workerCountFor(plan);
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
  private endShapeUsers(): void {
    if (this.shapeUsers > 0) {
      this.shapeUsers = 0;
      this.dispatch(0);
    }
  }

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
    this.rampAt = this.startedAt;
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

    const { stages } = this.plan;
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
    const spawn = () => {
      if (this.stopReason) return;
      const elapsed = (Date.now() - this.startedAt) / 1000;
      if (this.shape) {
        this.phase = "running";
        let r: ShapeTick | null;
        try {
          r = this.shape.tick(elapsed);
        } catch (err) {
          this.hooks.onNotice?.(`the load shape's tick() threw: ${(err as Error)?.message ?? err}`);
          this.fatal = `load shape failed: ${(err as Error)?.message ?? err}`;
          this.stop("error");
          return;
        }
        if (r === null) {
          this.stop("shape");
          return;
        }
        const dt = this.lastShapeAt === 0 ? 0 : elapsed - this.lastShapeAt;
        this.lastShapeAt = elapsed;
        // A tick describes the whole load: users and arrivals do not run side by side.
        if ("users" in r) {
          if (lastRate > 0) sendRate(0);
          const target = Math.max(0, Math.round(r.users));
          const step = r.spawnRate === undefined ? Number.POSITIVE_INFINITY : r.spawnRate * Math.max(dt, 0.1);
          const cur = this.shapeUsers;
          this.shapeUsers = cur < target ? Math.min(target, cur + step) : Math.max(target, cur - step);
          this.dispatch(Math.floor(this.shapeUsers), r.userClasses);
        } else if ("rate" in r) {
          if (this.plan.rate === null) this.plan.rate = 0;
          this.endShapeUsers();
          sendRate(Math.max(0, r.rate));
        } else if ("burst" in r && r.burst > 0) {
          if (this.plan.rate === null) this.plan.rate = 0;
          this.endShapeUsers();
          this.bursts.push({ t: Math.round(elapsed * 10) / 10, count: Math.floor(r.burst) });
          const n = this.workers.length;
          const counts = splitEvenly(Math.floor(r.burst), n);
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
        }
        return;
      }
      const { users, spawnRate, rate } = this.plan;
      if (rate !== null) {
        // Open model: the level is an arrival rate, shaped by stages or constant.
        const level = stages ? stageLevel(stages, elapsed) : rate;
        if (level === null) {
          this.stop("stages");
          return;
        }
        this.phase = "running";
        sendRate(level);
        return;
      }
      if (stages) {
        // A shape drives the user count up and down; the run ends with its last stage.
        const level = stageLevel(stages, elapsed);
        if (level === null) {
          this.stop("stages");
          return;
        }
        this.phase = "running";
        this.dispatch(Math.round(level));
        return;
      }
      // Ramps toward the user count at the spawn rate, up or down (a live edit may lower it). A
      // spawn rate at or above the change means "all at once", not "one now, the rest at the
      // next tick".
      const from = this.rampFrom;
      const gap = Math.abs(users - from);
      const step =
        spawnRate >= gap
          ? gap
          : Math.min(gap, Math.floor((spawnRate * (Date.now() - this.rampAt)) / 1000) + 1);
      const total = users >= from ? from + step : from - step;
      this.dispatch(total);
      if (total === users && this.phase !== "running") {
        this.phase = "running";
        this.checkExhausted();
      }
    };
    const spawnTimer = setInterval(spawn, SPAWN_TICK_MS);
    spawn();
    const tickTimer = setInterval(() => {
      this.checkSilent();
      this.hooks.onTick?.(this);
    }, 1000);
    const runTimer =
      this.plan.runTimeSec !== null
        ? setTimeout(() => this.stop("run-time"), this.plan.runTimeSec * 1000)
        : undefined;

    await this.stopPromise;
    clearInterval(spawnTimer);
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
    if (this.plan.rate !== null || this.plan.stages || this.shape) {
      throw new Error("this run's load follows its model, stages or shape; it cannot be set by hand");
    }
    this.rampFrom = this.targetUsers;
    this.rampAt = Date.now();
    this.plan.users = users;
    if (spawnRate !== undefined) this.plan.spawnRate = spawnRate;
    this.phase = "spawning";
  }

  /** Live edit, open model: the arrival rate from now on. */
  setRate(rate: number): void {
    if (this.plan.rate === null || this.plan.stages || this.shape) {
      throw new Error("only an open-model run without stages or a shape has a rate to set");
    }
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

  /** Per worker: users (from its last snapshot), event-loop utilization and heap, for the web UI. */
  workerInfo(): Array<{ id: string; users: number; cpu: number; heapUsedMB: number; lost: boolean }> {
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
