import { readFileSync } from "node:fs";
import type { LoadShape } from "../api/shape.js";
import { UsageError, WorkersUnreachable } from "../core/errors.js";
import type { Bundle } from "../loadfile/bundle.js";
import { type ClosedInterval, StatsAggregate } from "../stats/aggregate.js";
import type { ResourceSample } from "../stats/resources.js";
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
  type WorkerPlan,
} from "./protocol.js";
import type { Burst, Phase, Run, RunStatus, RunWarning, StopReason, WorkerInfo } from "./run.js";
import { stageNumber, stagesDuration } from "./stages.js";
import { startThreadWorker } from "./thread.js";
import { Worker } from "./worker.js";

/** A connected, greeted worker on another machine. */
export interface RemoteWorkerLink {
  transport: Transport<CoordinatorMessage, WorkerMessage>;
  /** Its address and port, for messages. */
  peer: string;
  /** Its machine (the address it connects from) and that machine's CPUs. */
  host: string;
  cores: number;
}

/** Where remote workers come from: connected and greeted, one link per worker. */
export interface RemoteWorkerSource {
  /** The next connected worker nobody runs yet, if any. */
  take(): RemoteWorkerLink | undefined;
  /** Silence (ms) after which a worker counts as missing. */
  readonly heartbeatTimeoutMs: number;
  /** Told when a worker connects while the run is on, so it can get a share. */
  onJoin(listener: (() => void) | undefined): void;
}

/** The units a resource sample may have; anything else from a remote machine reads as none. */
const UNITS = new Set<ResourceSample["unit"]>(["percent", "bytes", "count", "ratio", ""]);

/** How many users a handle was last told to have alive. */
/** Joiners number their users from multiples of this, clear of the first workers' ids. */
const JOINER_ID_BLOCK = 1_000_000_000;

function usersOf(w: { targets: Record<string, number> }): number {
  let n = 0;
  for (const v of Object.values(w.targets)) n += v;
  return n;
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
  /**
   * Resource samples from the workers, once added to `stats.resources`: `perWorker` ones are a
   * worker's own (its event loop and heap, source = its id), the others a remote machine's.
   */
  onResources?(samples: ResourceSample[], perWorker: boolean): void;
}

interface WorkerHandle {
  id: string;
  transport: Transport<CoordinatorMessage, WorkerMessage>;
  ready: Promise<ClassInfo[] | null>;
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
  /** Remote workers: where it runs, and its machine's CPUs (threads: one each, same machine). */
  peer: string;
  host: string;
  cores: number;
  /** Remote: silent past the heartbeat timeout. Its users went to the others; it may come back. */
  missing: boolean;
  /** Ready and running its share (it said `ready` and is neither lost nor missing). */
  isReady: boolean;
  /** When its `done` arrived: the run's end is the last of these, not when a dead one was given up on. */
  doneAt: number;
  /**
   * Added to its snapshots' sequence numbers, which count its own seconds: a worker that joined
   * late, or was frozen, lands its figures in the run's intervals of the same time.
   */
  seqOffset: number;
  /** Its own sequence number and clock of its latest snapshot. */
  rawSeq: number;
  rawAt: number;
  /** Settles `ready` with null: a remote worker gone before it was ready is left out, not fatal. */
  dropBeforeReady: () => void;
}

/** How many workers a plan gets: never more than there are users or iterations to share. */
export function workerCountFor(
  plan: Pick<RunPlan, "processes" | "users" | "iterations" | "rate" | "maxUsers"> &
    Partial<Pick<RunPlan, "maxConcurrency" | "schedule">>,
): number {
  const users = plan.rate !== null ? plan.maxUsers : plan.users;
  return Math.max(
    1,
    Math.min(
      plan.processes,
      users,
      plan.iterations ?? Number.POSITIVE_INFINITY,
      // Every worker needs a slot of --max-concurrency, and a row of a --schedule.
      plan.maxConcurrency ?? Number.POSITIVE_INFINITY,
      plan.schedule?.length ?? Number.POSITIVE_INFINITY,
    ),
  );
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

  /** Workers that ended without reporting back (crashed threads), or were missing at the end. */
  get lostWorkers(): number {
    return this.workers.filter((w) => w.lost || w.missing).length;
  }

  private openTransport(id: string): Transport<CoordinatorMessage, WorkerMessage> {
    if (this.workerCount === 1) {
      const pair = inProcessPair();
      new Worker(pair.worker, this.plan.loadfile);
      return pair.coordinator;
    }
    return startThreadWorker(id);
  }

  private startWorker(index: number, link?: RemoteWorkerLink): WorkerHandle {
    const id = `w${index}`;
    const transport = link ? link.transport : this.openTransport(id);
    let resolveReady!: (c: ClassInfo[] | null) => void;
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
      peer: link?.peer ?? id,
      host: link?.host ?? "",
      cores: Math.max(1, link?.cores ?? 1),
      missing: false,
      isReady: false,
      doneAt: 0,
      seqOffset: 0,
      rawSeq: -1,
      rawAt: 0,
      dropBeforeReady: () => resolveReady(null),
    };
    let isReady = false;
    transport.onMessage((m) => {
      if (handle.finished || handle.lost) return;
      handle.lastHeard = Date.now();
      if (handle.missing) this.returned(handle);
      switch (m.type) {
        case "ready":
          isReady = true;
          handle.isReady = true;
          // Its first snapshot, a second from now, covers the run's current interval.
          if (this.startedAt > 0) handle.seqOffset = Math.floor((Date.now() - this.startedAt) / 1000);
          resolveReady(m.classes);
          break;
        case "stats":
          this.merge(handle, this.inRunTime(handle, m.snapshot));
          break;
        case "done":
          this.merge(handle, this.inRunTime(handle, m.snapshot));
          handle.finished = true;
          handle.doneAt = Date.now();
          resolveDone();
          this.settleCheck();
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
          // A remote worker's connection also beats on its own, without load figures.
          if (m.elu === undefined) break;
          this.workerLoad.set(id, { elu: m.elu, heapUsedMB: m.heapUsedMB ?? 0 });
          this.heartbeatSamples(handle, m.elu, m.heapUsedMB);
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
        case "resources":
          this.remoteSamples(handle, m);
          break;
        case "hello":
          break;
      }
    });
    transport.onLost?.((reason) => {
      if (handle.finished || handle.lost) return;
      const wasMissing = handle.missing;
      handle.finished = true;
      handle.lost = true;
      handle.missing = false;
      resolveDone();
      this.settleCheck();
      if (!isReady) {
        if (this.remote) {
          this.warn(
            "worker",
            `warning: worker ${id} (${handle.peer}) ${reason} before it was ready; the test runs without it`,
            {
              worker: id,
              peer: handle.peer,
              event: "lost",
              usersMoved: 0,
            },
          );
          resolveReady(null);
        } else rejectReady(new UsageError(`worker ${id} ${reason} before it was ready`));
        return;
      }
      // A missing worker's users were moved already.
      if (wasMissing) return;
      this.dropWorker(handle, `${reason}`, "lost");
    });
    transport.send({
      type: "plan",
      workerId: id,
      plan: {
        bundlePath: this.bundle.path,
        ...(this.remote ? { bundleCode: (this.bundleCode ??= readFileSync(this.bundle.path, "utf8")) } : {}),
        loadfile: this.plan.loadfile,
        workerIndex: Math.min(index, this.workerCount - 1),
        workerCount: this.workerCount,
        // A worker that joins mid-run numbers its users from a block of its own, clear of the
        // others' `index + k × count` ids.
        userIdIndex:
          index < this.workerCount
            ? (this.plan.userIds?.first ?? 0) + index
            : JOINER_ID_BLOCK * (index - this.workerCount + 1),
        userIdStride: index < this.workerCount ? (this.plan.userIds?.stride ?? this.workerCount) : 1,
        host: this.plan.host,
        userClasses: this.plan.userClasses,
        tags: this.plan.tags,
        excludeTags: this.plan.excludeTags,
        iterations: this.iterationShare(index),
        iterationsPerUser: this.plan.iterationsPerUser,
        ...this.arrivalShare(index),
        snapshotIntervalMs: 1000,
        verifyTls: this.plan.verifyTls,
        ...(this.plan.httpEngine ? { httpEngine: this.plan.httpEngine } : {}),
        acceptStatus: this.plan.acceptStatus,
        ...(this.plan.slo ? { slo: this.plan.slo } : {}),
        ...(this.plan.traces ? { traces: this.plan.traces } : {}),
      },
    });
    return handle;
  }

  /**
   * Worker `index`'s part of the arrivals settings: the process (its gaps drawn from its own
   * stream of the seed), its slots of --max-concurrency, the windows on its own clock (a worker
   * that joins mid-run gets them shifted by the time already gone) and its rows of a --schedule
   * (row i goes to worker i mod n; a joiner gets none).
   */
  private arrivalShare(index: number): Partial<WorkerPlan> {
    const p = this.plan;
    const out: Partial<WorkerPlan> = {};
    const n = this.workerCount;
    if (p.arrivals && p.arrivals.process !== "constant") out.arrivals = p.arrivals;
    if (p.arrivals?.seed != null) out.seed = p.arrivals.seed;
    if (p.maxConcurrency != null) {
      out.maxConcurrency = index < n ? Math.max(1, splitEvenly(p.maxConcurrency, n)[index]!) : 1;
    }
    if (p.windows) {
      const goneMs = this.startedAt > 0 ? Date.now() - this.startedAt : 0;
      out.windows = {
        warmupMs: p.windows.warmupSec * 1000 - goneMs,
        cooldownAtMs: p.windows.cooldownAtSec === null ? null : p.windows.cooldownAtSec * 1000 - goneMs,
      };
    }
    if (p.schedule && index < n) out.schedule = p.schedule.filter((_, i) => i % n === index);
    return out;
  }

  /**
   * Worker `index`'s share of the global iteration budget. Workers never outnumber iterations or
   * users, and users go to workers in turn, so every share is used and they add up to the budget.
   */
  private iterationShare(index: number): number | null {
    const { iterations } = this.plan;
    if (iterations === null) return null;
    return splitEvenly(iterations, this.workerCount)[index] ?? 0;
  }

  /**
   * A worker thread whose event loop is blocked cannot even send its heartbeat: silence is
   * saturation too, 100 % busy for as long as it lasts. A remote worker's silence is no such
   * proof (a stopped process or a cut link is as quiet): past the heartbeat timeout it is
   * missing, and its users go to the others.
   */
  private lastSilenceCheck = 0;
  private checkSilent(): void {
    const now = Date.now();
    const stalled = this.lastSilenceCheck > 0 && now - this.lastSilenceCheck > 1500;
    this.lastSilenceCheck = now;
    for (const w of this.workers) {
      // This process stalled (or was stopped) itself: the silence is ours, not the workers'.
      if (stalled && this.remote) w.lastHeard = Math.max(w.lastHeard, now - 1000);
      if (w.finished || w.lost || w.missing) continue;
      const silentMs = now - w.lastHeard;
      if (this.remote) {
        if (silentMs >= this.remote.heartbeatTimeoutMs) this.markMissing(w, silentMs);
        continue;
      }
      if (silentMs < 2500 || this.startedAt === 0 || this.phase === "done") continue;
      const warning = this.saturation.observe(w.id, 1, silentMs, now, this.startedAt);
      if (warning) this.warn("cpu", warning);
    }
  }

  private warn(kind: RunWarning["kind"], message: string, detail?: RunWarning["worker"]): void {
    this.warnings.push({ at: Date.now(), kind, message, ...(detail ? { worker: detail } : {}) });
    this.hooks.onNotice?.(message);
  }

  /** Seconds since the clock started, for messages. */
  private get atSec(): string {
    return this.startedAt === 0
      ? "before the start"
      : `at ${((Date.now() - this.startedAt) / 1000).toFixed(1)}s`;
  }

  /** Workers that can take users now. */
  private liveWorkers(): WorkerHandle[] {
    return this.workers.filter((w) => w.isReady && !w.lost && !w.missing && !w.finished);
  }

  /**
   * A worker's share weight: its machine's CPUs, split among the live workers on that machine,
   * so a bigger machine takes more and several workers on one machine share it.
   */
  private weightOf(w: WorkerHandle, live: readonly WorkerHandle[]): number {
    if (!this.remote) return 1;
    const sameHost = live.filter((x) => x.host === w.host).length || 1;
    return w.cores / sameHost;
  }

  /** The live worker that would be least loaded with one more user. */
  private lightest(live: readonly WorkerHandle[], except?: WorkerHandle): WorkerHandle | undefined {
    let best: WorkerHandle | undefined;
    let bestLoad = Number.POSITIVE_INFINITY;
    for (const w of live) {
      if (w === except) continue;
      const load = (usersOf(w) + 1) / this.weightOf(w, live);
      if (load < bestLoad) {
        best = w;
        bestLoad = load;
      }
    }
    return best;
  }

  /** The most loaded live worker, among those with users of `name` if given. */
  private heaviest(
    live: readonly WorkerHandle[],
    name?: string,
    except?: WorkerHandle,
  ): WorkerHandle | undefined {
    let best: WorkerHandle | undefined;
    let bestLoad = -1;
    for (const w of live) {
      if (w === except || (name !== undefined && (w.targets[name] ?? 0) <= 0) || usersOf(w) === 0) continue;
      const load = usersOf(w) / this.weightOf(w, live);
      if (load > bestLoad) {
        best = w;
        bestLoad = load;
      }
    }
    return best;
  }

  private sendTargets(ws: Iterable<WorkerHandle>): void {
    for (const w of ws) {
      this.exhausted.delete(w.id);
      w.transport.send({ type: "spawn", targets: { ...w.targets } });
    }
  }

  /**
   * Hands a gone worker's users to the live ones at once, and says so. `event` is `lost` for a
   * closed connection, `missing` for silence (it may come back).
   */
  private dropWorker(w: WorkerHandle, reason: string, event: "lost" | "missing"): void {
    const from = { ...w.targets };
    const users = usersOf(w);
    for (const name of Object.keys(w.targets)) w.targets[name] = 0;
    // Should it wake up, it stops its users before anything else it reads.
    if (event === "missing") {
      w.transport.send({ type: "spawn", targets: { ...w.targets } });
      if (this.lastRate > 0) w.transport.send({ type: "rate", rate: 0, maxUsers: 1, maxDelayMs: 0 });
    }
    const live = this.liveWorkers();
    const changed = new Set<WorkerHandle>();
    let moved = 0;
    // A crashed thread may crash the next one the same way (user code calling process.exit()):
    // only remote workers, lost to their machine or network, hand their users on.
    if (this.remote && (this.phase === "spawning" || this.phase === "running")) {
      for (const [name, n] of Object.entries(from)) {
        for (let i = 0; i < n; i++) {
          const to = this.lightest(live);
          if (!to) {
            this.assigned.set(name, (this.assigned.get(name) ?? 0) - 1);
            continue;
          }
          to.targets[name] = (to.targets[name] ?? 0) + 1;
          changed.add(to);
          moved++;
        }
      }
      this.sendTargets(changed);
      this.resendRate();
    }
    const to = [...changed].map((x) => x.id);
    if (!this.remote) {
      this.warn(
        "worker",
        `warning: worker ${w.id} ${reason}; its ${users} user(s) are gone and what it measured since its last snapshot is lost`,
      );
    } else
      this.warn(
        "worker",
        `warning: worker ${w.id} (${w.peer}) ${reason} ${this.atSec}; ${
          moved > 0 ? `its ${moved} user(s) moved to ${to.join(", ")}` : `its ${users} user(s) are gone`
        }; what it measured since its last snapshot is lost`,
        { worker: w.id, peer: w.peer, event, usersMoved: moved, movedTo: to },
      );
    // Take its users out of the live count with an empty last snapshot.
    this.merge(w, {
      workerId: w.id,
      seq: w.lastSeq,
      at: w.lastAt || Date.now(),
      final: true,
      users: 0,
      peakUsers: 0,
      iterations: 0,
      endpoints: [],
      errors: [],
      exceptions: [],
    });
    if (this.liveWorkers().length === 0 && this.phase !== "stopping" && this.phase !== "done")
      this.stop("error");
    else this.checkExhausted();
    this.settleCheck();
  }

  private markMissing(w: WorkerHandle, silentMs: number): void {
    w.missing = true;
    if (!w.isReady) {
      // Silent while loading the test: left out for good.
      w.lost = true;
      w.missing = false;
      w.finished = true;
      w.transport.close();
      this.warn(
        "worker",
        `warning: worker ${w.id} (${w.peer}) went silent before it was ready; the test runs without it`,
        {
          worker: w.id,
          peer: w.peer,
          event: "lost",
          usersMoved: 0,
        },
      );
      w.dropBeforeReady();
      this.settleCheck();
      return;
    }
    this.dropWorker(w, `silent for ${(silentMs / 1000).toFixed(1)}s, missing`, "missing");
  }

  /**
   * A snapshot numbered in the run's intervals rather than the worker's own. A worker that was
   * frozen resumes its count where it stopped: a gap in its own clock realigns it. Snapshots
   * that arrive long after they were taken (held up behind a cut link) still count, in the
   * latest interval, but their users are long gone elsewhere: they add none.
   */
  private inRunTime(w: WorkerHandle, s: StatsSnapshot): StatsSnapshot {
    const prevAt = w.rawAt;
    w.rawSeq = Math.max(w.rawSeq, s.seq);
    w.rawAt = Math.max(w.rawAt, s.at);
    if (this.startedAt === 0) return s;
    const nowSeq = Math.floor((Date.now() - this.startedAt) / 1000);
    if (prevAt > 0 && s.at - prevAt > 2500) w.seqOffset = Math.max(w.seqOffset, nowSeq - 1 - s.seq);
    const seq = s.seq + w.seqOffset;
    if (seq >= nowSeq - 3) return seq === s.seq ? s : { ...s, seq };
    return { ...s, seq: Math.max(0, nowSeq - 1), users: 0, peakUsers: 0 };
  }

  /** A missing worker spoke again: it gets a share again while the run is on. */
  private returned(w: WorkerHandle): void {
    w.missing = false;
    this.hooks.onNotice?.(`worker ${w.id} (${w.peer}) is back ${this.atSec}`);
    this.warnings.push({
      at: Date.now(),
      kind: "worker",
      message: `worker ${w.id} (${w.peer}) came back ${this.atSec}`,
      worker: { worker: w.id, peer: w.peer, event: "returned", usersMoved: 0 },
    });
    if (this.stopReason) {
      w.transport.send(
        this.aborted
          ? { type: "abort" }
          : { type: "stop", timeoutMs: Math.round(this.plan.stopTimeoutSec * 1000) },
      );
      return;
    }
    this.rebalance(w);
  }

  /** Gives a worker with no users (a joiner, a returner) its share, taken from the busiest. */
  private rebalance(w: WorkerHandle): void {
    const live = this.liveWorkers();
    const changed = new Set<WorkerHandle>([w]);
    for (let guard = this.targetUsers; guard > 0; guard--) {
      const h = this.heaviest(live, undefined, w);
      if (!h) break;
      if (usersOf(h) / this.weightOf(h, live) <= (usersOf(w) + 1) / this.weightOf(w, live)) break;
      let name = "";
      for (const [k, v] of Object.entries(h.targets)) if (v > (h.targets[name] ?? 0)) name = k;
      h.targets[name]! -= 1;
      w.targets[name] = (w.targets[name] ?? 0) + 1;
      changed.add(h);
    }
    this.sendTargets(changed);
    this.resendRate();
  }

  /** Remote workers that connect during the run join it. */
  private adoptJoiners(): void {
    if (!this.remote || this.startedAt === 0 || this.stopReason) return;
    // An iteration budget is split when the run starts; a newcomer would have none of it.
    if (this.plan.iterations !== null) return;
    for (let link = this.remote.take(); link; link = this.remote.take()) {
      const h = this.startWorker(this.workers.length, link);
      this.workers.push(h);
      this.hooks.onNotice?.(`worker ${h.id} (${h.peer}) joined ${this.atSec}`);
      void h.ready.then(
        (classes) => this.joined(h, classes),
        // It could not load the test (its machine lacks something): the run goes on without it.
        (err: Error) => {
          if (h.finished || h.lost) return;
          h.finished = true;
          h.lost = true;
          h.transport.close();
          this.warn("worker", `warning: worker ${h.id} (${h.peer}) could not join: ${err.message}`, {
            worker: h.id,
            peer: h.peer,
            event: "lost",
            usersMoved: 0,
          });
          this.settleCheck();
        },
      );
    }
  }

  /** A worker that joined mid-run is ready: it gets its share. */
  private joined(h: WorkerHandle, classes: ClassInfo[] | null): void {
    if (!classes || h.lost || h.missing) return;
    if (this.stopReason) {
      h.transport.send({ type: "abort" });
      return;
    }
    for (const c of this.classes) h.targets[c.name] ??= 0;
    this.warnings.push({
      at: Date.now(),
      kind: "worker",
      message: `worker ${h.id} (${h.peer}) joined ${this.atSec}`,
      worker: { worker: h.id, peer: h.peer, event: "joined", usersMoved: 0 },
    });
    this.rebalance(h);
  }

  private readonly settleWaiters: Array<() => void> = [];
  /** Every worker has finished, or is gone: nothing more to wait for. */
  private settled(): boolean {
    return this.workers.every((w) => w.finished || w.lost || w.missing);
  }
  private settleCheck(): void {
    if (this.settleWaiters.length > 0 && this.settled()) for (const r of this.settleWaiters.splice(0)) r();
  }

  /** `exhausted` ends the run only once every worker that is still there has used up its share. */
  private checkExhausted(): void {
    if (this.exhausted.size === 0) return;
    // With a per-user limit, users that finished early during the ramp-up do not end the run.
    if (this.plan.iterationsPerUser !== null && this.phase !== "running") return;
    if (this.workers.every((w) => w.lost || w.missing || this.exhausted.has(w.id))) this.stop("iterations");
  }

  /** Where a worker runs, as its resource series name the machine. */
  private hostOf(w: WorkerHandle): string {
    return this.remote ? w.peer : "master";
  }

  /** A worker's heartbeat as generator series: its event-loop use and heap, by the receiving clock. */
  private heartbeatSamples(w: WorkerHandle, elu: number, heapUsedMB: number | undefined): void {
    if (!this.stats) return;
    const base = { source: w.id, kind: "generator" as const, host: this.hostOf(w), at: Date.now() };
    const samples: ResourceSample[] = [{ ...base, metric: "elu", unit: "ratio", value: elu }];
    if (heapUsedMB !== undefined) {
      samples.push({
        ...base,
        metric: "heap_used_bytes",
        unit: "bytes",
        value: Math.round(heapUsedMB * 1024 * 1024),
      });
    }
    this.stats.resources.add(samples);
    this.hooks.onResources?.(samples, true);
  }

  /**
   * A remote machine's samples: named after the worker's address as seen from here (whatever
   * the worker calls itself), and moved onto this clock.
   */
  private remoteSamples(w: WorkerHandle, m: Extract<WorkerMessage, { type: "resources" }>): void {
    if (!this.stats || !Array.isArray(m.samples)) return;
    const shift = (m.receivedAt ?? Date.now()) - m.at;
    const host = this.hostOf(w);
    const samples: ResourceSample[] = [];
    for (const s of m.samples) {
      if (typeof s?.value !== "number" || typeof s.at !== "number" || typeof s.metric !== "string") continue;
      samples.push({
        source: String(s.source),
        kind: s.kind === "target" ? "target" : "generator",
        metric: s.metric,
        unit: UNITS.has(s.unit) ? s.unit : "",
        host,
        at: s.at + shift,
        value: s.value,
      });
    }
    this.stats.resources.add(samples);
    this.hooks.onResources?.(samples, false);
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
    const live = this.liveWorkers();
    if (live.length === 0) return;
    const changed = new Set<WorkerHandle>();
    const picked = only ? this.classes.filter((c) => only.includes(c.name)) : this.classes;
    const counts = dispatchUsers(picked as DispatchClass[], total);
    for (const c of this.classes) {
      const name = c.name;
      const n = counts.get(name) ?? 0;
      let have = this.assigned.get(name) ?? 0;
      for (; have < n; have++) {
        const w = this.lightest(live)!;
        w.targets[name] = (w.targets[name] ?? 0) + 1;
        changed.add(w);
      }
      for (; have > n; have--) {
        // Ramping down: take from the most loaded worker with users of the class.
        const w = this.heaviest(live, name);
        if (!w) {
          have = n;
          break;
        }
        w.targets[name] = (w.targets[name] ?? 0) - 1;
        changed.add(w);
      }
      this.assigned.set(name, have);
    }
    this.targetUsers = total;
    this.sendTargets(changed);
  }

  /** Open model: the arrival rate now in force, last sent to the workers (-1: none yet). */
  private lastRate = -1;

  /** Splits the arrival rate over the live workers by weight; `force` resends an unchanged one. */
  private sendRate(level: number, force = false): void {
    if (level === this.lastRate && !force) return;
    this.lastRate = level;
    this.currentRate = level;
    const live = this.liveWorkers();
    const n = live.length;
    if (n === 0) return;
    const weights = live.map((w) => this.weightOf(w, live));
    const sum = weights.reduce((a, b) => a + b, 0);
    const maxUsers = splitEvenly(Math.max(n, this.plan.maxUsers), n);
    for (const [i, w] of live.entries()) {
      w.transport.send({
        type: "rate",
        rate: (level * weights[i]!) / sum,
        maxUsers: maxUsers[i]!,
        maxDelayMs: this.plan.maxDelaySec * 1000,
      });
    }
  }

  /** The workers changed: the open model's rate is split again. */
  private resendRate(): void {
    if (this.lastRate > 0 && !this.stopReason) this.sendRate(this.lastRate, true);
  }

  private resolveStarted!: () => void;
  /** Resolves once the workers are ready and the clock starts, or the run failed before that. */
  readonly started = new Promise<void>((r) => (this.resolveStarted = r));

  #gate: Promise<boolean> | undefined;
  /**
   * Call before run(): once the workers are ready, the test waits for `gate` before it starts,
   * so a scenario with a start offset loads its workers ahead and starts on time. `false`: the
   * test never starts (the run ended first); run() then closes the workers and returns.
   */
  holdStart(gate: Promise<boolean>): void {
    this.#gate = gate;
  }

  async run(): Promise<void> {
    for (let i = 0; i < this.workerCount; i++) {
      if (this.remote) {
        // Workers may have left since they were counted: the test runs with those still here.
        const link = this.remote.take();
        if (!link) break;
        this.workers.push(this.startWorker(i, link));
      } else this.workers.push(this.startWorker(i));
    }
    // Remote workers' silence is watched from the start: one that freezes while loading is left out.
    const silenceTimer = this.remote ? setInterval(() => this.checkSilent(), 250) : undefined;
    try {
      if (this.workers.length === 0)
        throw new WorkersUnreachable("every worker left before the test started");
      const ready = await Promise.all(this.workers.map((w) => w.ready));
      const classes = ready.find((c) => c !== null);
      if (!classes) throw new WorkersUnreachable("every worker was lost before the test started");
      this.classes = classes;
    } catch (err) {
      clearInterval(silenceTimer);
      for (const w of this.workers) w.transport.close();
      this.resolveStarted();
      throw err;
    }
    if (this.#gate) {
      if (!(await this.#gate)) {
        clearInterval(silenceTimer);
        for (const w of this.workers) w.transport.close();
        this.phase = "done";
        this.resolveStarted();
        return;
      }
      // The workers counted intervals while they waited, with nothing to run: those are not the
      // test's, and each one's next snapshot is the test's first interval (as for a joiner).
      this.early = [];
      for (const w of this.workers) w.seqOffset = -(w.rawSeq + 1);
    }
    this.startedAt = Date.now();
    this.resolveStarted();
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
    // Workers that came after the first ones (or come later) join now.
    this.remote?.onJoin(() => this.adoptJoiners());
    const sendRate = (level: number) => this.sendRate(level);
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
          if (this.lastRate > 0) sendRate(0);
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
          const live = this.liveWorkers();
          const n = Math.max(1, live.length);
          const counts = splitEvenly(step.count, n);
          const maxUsers = splitEvenly(Math.max(n, this.plan.maxUsers), n);
          for (const [i, w] of live.entries()) {
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
      if (!this.remote) this.checkSilent();
      this.hooks.onTick?.(this);
    }, 1000);
    const runTimer =
      this.plan.runTimeSec !== null
        ? setTimeout(() => this.stop("run-time"), this.plan.runTimeSec * 1000)
        : undefined;

    await this.stopPromise;
    const stoppedAt = Date.now();
    this.remote?.onJoin(undefined);
    clearInterval(driveTimer);
    clearTimeout(runTimer);
    this.phase = "stopping";
    const timeoutMs = Math.round(this.plan.stopTimeoutSec * 1000);
    for (const wk of this.workers) {
      if (!wk.finished) wk.transport.send(this.aborted ? { type: "abort" } : { type: "stop", timeoutMs });
    }

    // A worker that does not report back in time is told to abort, then given up on: the run
    // must end, with whatever was merged so far. Missing workers are not waited for at all.
    const wait = (ms: number) =>
      Promise.race([
        new Promise<boolean>((r) => {
          if (this.settled()) r(true);
          else this.settleWaiters.push(() => r(true));
        }),
        new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
      ]);
    if (!(await wait(timeoutMs + 5000))) {
      for (const wk of this.workers) if (!wk.finished) wk.transport.send({ type: "abort" });
      if (!(await wait(3000))) {
        for (const wk of this.workers) {
          if (wk.finished || wk.lost || wk.missing) continue;
          wk.finished = true;
          wk.lost = true;
          this.warn(
            "worker",
            `warning: worker ${wk.id} (${wk.peer}) did not finish; what it measured since its last snapshot is lost`,
            { worker: wk.id, peer: wk.peer, event: "lost", usersMoved: 0 },
          );
        }
      }
    }
    clearInterval(tickTimer);
    clearInterval(silenceTimer);
    for (const wk of this.workers) wk.transport.close();
    // The run lasted until its last worker reported back, not until a dead one was given up
    // on: that wait measured nothing, and counting it would halve the rates.
    const lastDone = Math.max(0, ...this.workers.map((w) => w.doneAt));
    this.endedAt = lastDone > 0 ? Math.max(lastDone, stoppedAt) : stoppedAt;
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

  /**
   * Starts the books afresh (the web UI's "reset stats"); the load goes on as it was. `at` dates
   * the new books' start earlier than now: a sweep resets mid-second and starts the books at the
   * interval boundary, since the snapshot still to come covers the whole of that interval.
   */
  resetStats(at?: number): void {
    if (!this.stats) return;
    const onInterval = this.stats.onInterval;
    const users = this.stats.users;
    this.statsStartedAt = at ?? Date.now();
    this.stats = new StatsAggregate(this.statsStartedAt);
    this.stats.onInterval = onInterval;
    this.peakUsers = users;
  }

  /**
   * Seconds the current books cover: with --warmup and --cooldown, only the measured part of
   * the run (what the rates divide by).
   */
  get statsElapsedSec(): number {
    if (this.statsStartedAt === 0) return 0;
    let from = this.statsStartedAt;
    let to = this.endedAt || Date.now();
    const w = this.plan.windows;
    if (w) {
      from = Math.max(from, this.startedAt + w.warmupSec * 1000);
      if (w.cooldownAtSec !== null) to = Math.min(to, this.startedAt + w.cooldownAtSec * 1000);
    }
    return Math.max(0, to - from) / 1000;
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
      lost: w.lost || w.missing,
    }));
  }

  get fatalError(): string | undefined {
    return this.fatal;
  }
}
