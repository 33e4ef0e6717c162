import { performance } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import { setWorkerRecorder } from "../api/checks.js";
import { setDatasetSeed } from "../api/dataset.js";
import { CicadaError } from "../core/errors.js";
import { importBundle } from "../loadfile/bundle.js";
import { type CompiledClass, compileUserClasses } from "../loadfile/inspect.js";
import { type RequestTracer, startTracing } from "../protocols/http/tracing.js";
import { Recorder } from "../stats/recorder.js";
import type { StatsSnapshot } from "../stats/snapshot.js";
import { gapSource } from "./arrivals.js";
import { ConcurrencyGate } from "./concurrency.js";
import { LoopMonitor } from "./load.js";
import { ArrivalScheduler, OpenPool } from "./open-model.js";
import type { CoordinatorMessage, Transport, WorkerMessage, WorkerPlan } from "./protocol.js";
import { PROTOCOL_VERSION } from "./protocol.js";
import type { ScheduleRow } from "./schedule.js";
import { UserRuntime, type UserRuntimeShared } from "./user-runtime.js";

/** How long a finishing worker waits for its last spans to be sent (an unreachable collector). */
const TRACE_FLUSH_MS = 5000;

/**
 * Runs users for the coordinator. It only talks through the transport, so it can live in the
 * coordinator's thread, a worker thread, or another machine.
 */
export class Worker {
  private recorder!: Recorder;
  private classes = new Map<string, CompiledClass>();
  private live = new Map<string, Set<UserRuntime>>();
  private readonly hardStop = new AbortController();
  private plan: WorkerPlan | undefined;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private iterationsLeft = Number.POSITIVE_INFINITY;
  private exhaustedSent = false;
  private stopping = false;
  private nextUserId = 0;
  private userIdStep = 1;
  private workerId = "w0";
  /** `--otel-traces`: this worker's own tracer provider and exporter. */
  private tracer: RequestTracer | null = null;
  private loadfile = "";

  /**
   * `loadfile` is only a fallback for messages; the plan names it. The worker does nothing
   * until the coordinator's `plan` arrives.
   */
  constructor(
    private readonly transport: Transport<WorkerMessage, CoordinatorMessage>,
    loadfile?: string,
  ) {
    this.loadfile = loadfile ?? "";
    transport.onMessage((m) => {
      this.handle(m).catch((err) => this.fail(err));
    });
  }

  private fail(err: unknown): void {
    const message =
      err instanceof CicadaError ? err.message : `worker error: ${(err as Error)?.stack ?? err}`;
    this.transport.send({ type: "error", message, fatal: true });
  }

  private async handle(m: CoordinatorMessage): Promise<void> {
    switch (m.type) {
      case "plan":
        return this.start(m.workerId, m.plan);
      case "spawn":
        return this.adjust(m.targets);
      case "rate":
        return this.setRate(m.rate, m.maxUsers, m.maxDelayMs);
      case "burst":
        return this.burst(m.count, m.maxUsers, m.maxDelayMs);
      case "stop":
        return this.stop(m.timeoutMs);
      case "abort":
        return this.stop(0);
      case "heartbeat":
      case "close":
        return;
    }
  }

  private async start(workerId: string, plan: WorkerPlan): Promise<void> {
    this.workerId = workerId;
    this.plan = plan;
    if (plan.loadfile) this.loadfile = plan.loadfile;
    // Unique across the run: worker i of n hands out i, i + n, i + 2n, ...
    this.nextUserId = plan.userIdIndex ?? plan.workerIndex ?? 0;
    this.userIdStep = Math.max(1, plan.userIdStride ?? plan.workerCount ?? 1);
    this.recorder = new Recorder(workerId);
    this.recorder.slo = plan.slo;
    setWorkerRecorder(this.recorder);
    if (plan.traces) {
      this.tracer = startTracing(plan.traces, (message) =>
        this.transport.send({ type: "error", message, fatal: false }),
      );
    }
    this.shared = {
      recorder: this.recorder,
      host: plan.host,
      verifyTls: plan.verifyTls,
      httpEngine: plan.httpEngine ?? null,
      acceptStatus: plan.acceptStatus && plan.acceptStatus.length > 0 ? new Set(plan.acceptStatus) : null,
      tracer: this.tracer,
      hardStop: this.hardStop.signal,
      takeIteration: this.takeIteration,
      iterationsPerUser: plan.iterationsPerUser ?? null,
      gate: plan.maxConcurrency ? (this.gate = new ConcurrencyGate(plan.maxConcurrency)) : null,
    };
    // Until the warm-up is over, what is recorded is warm-up traffic.
    this.window = plan.windows && plan.windows.warmupMs > 0 ? "warmup" : undefined;
    this.iterationsLeft = plan.iterations ?? Number.POSITIVE_INFINITY;
    this.transport.send({ type: "hello", workerId, version: PROTOCOL_VERSION, pid: process.pid });
    // Datasets made at the loadfile's top level take the run's seed as their default.
    setDatasetSeed(plan.seed ?? null);
    const mod = await importBundle(plan.bundlePath, this.loadfile);
    // Abandoned while loading (its master gone): nothing to start.
    if (this.finished) return;
    const compiled = compileUserClasses(mod, {
      loadfile: this.loadfile,
      userClasses: plan.userClasses,
      include: plan.tags,
      exclude: plan.excludeTags,
    });
    for (const c of compiled) {
      this.classes.set(c.name, c);
      this.live.set(c.name, new Set());
    }
    // User code may start promises it never awaits; their errors are the user's to see, in the
    // exceptions table, not a reason to kill the run and lose what was measured.
    process.on("unhandledRejection", this.onStray);
    process.on("uncaughtException", this.onStray);
    this.snapshotTimer = setInterval(() => this.sendSnapshot(), plan.snapshotIntervalMs);
    this.heartbeatTimer = setInterval(() => {
      const { elu, windowMs } = this.loop.sample();
      // This thread's own heap (each worker thread has its own isolate), for the web UI.
      const heapUsedMB = Math.round(getHeapStatistics().used_heap_size / 104857.6) / 10;
      this.transport.send({ type: "heartbeat", at: Date.now(), elu, windowMs, heapUsedMB });
    }, 1000);
    this.snapshotTimer.unref();
    this.heartbeatTimer.unref();
    this.transport.send({
      type: "ready",
      classes: compiled.map((c) => ({
        name: c.name,
        weight: c.weight,
        fixedCount: c.fixedCount,
        host: c.host,
        tasks: c.tasks.length,
      })),
    });
  }

  private intervalPeak = 0;
  /** Event-loop utilization for the heartbeats; restarted when the first users start. */
  private loop = new LoopMonitor();
  private spawned = false;

  /** The interval's peak, which a run shorter than one interval would otherwise never show. */
  private takePeak(now: number): number {
    const p = this.intervalPeak;
    this.intervalPeak = now;
    return p;
  }

  private liveUsers(): number {
    let n = 0;
    for (const s of this.live.values()) n += s.size;
    return n;
  }

  private sendSnapshot(cut = false): void {
    const users = this.liveUsers();
    this.transport.send({
      type: "stats",
      snapshot: this.marked(this.recorder.snapshot(users, false, this.takePeak(users), cut)),
    });
  }

  /** `--max-concurrency`: this worker's slots; closed at the stop so no one waits on. */
  private gate: ConcurrencyGate | undefined;
  /** The window the samples being recorded now fall in (--warmup, --cooldown); none when measured. */
  private window: "warmup" | "cooldown" | undefined;
  private windowTimers: NodeJS.Timeout[] = [];

  private marked(s: StatsSnapshot): StatsSnapshot {
    return this.window ? { ...s, window: this.window } : s;
  }

  /**
   * The windows run on this worker's clock from its first load message. At each edge the books
   * are cut (a snapshot taken there and then), so every request falls on one side by the moment
   * it completed: the figures leave out exactly those that completed in a window.
   */
  private startWindows(): void {
    const w = this.plan?.windows;
    if (!w) return;
    const edge = (atMs: number, after: "cooldown" | undefined) => {
      const go = () => {
        this.sendSnapshot(true);
        this.window = after;
      };
      if (atMs <= 0) go();
      else this.windowTimers.push(setTimeout(go, atMs));
    };
    if (w.warmupMs > 0 || this.window === "warmup") edge(w.warmupMs, undefined);
    if (w.cooldownAtMs !== null) edge(w.cooldownAtMs, "cooldown");
  }

  private takeIteration = (): boolean => {
    if (this.iterationsLeft <= 0) return false;
    this.iterationsLeft--;
    return true;
  };

  private pool: OpenPool | undefined;
  /** Users that ran their per-user iterations, by class. */
  private readonly doneUsers = new Map<string, number>();
  private pickClass: (() => string) | undefined;
  private scheduler: ArrivalScheduler | undefined;

  /** What every user of this worker shares; fixed once the plan is known. */
  private shared!: UserRuntimeShared;

  /** The first users start: measure the load from here on, not the wait for other workers. */
  private markSpawned(): void {
    if (this.spawned) return;
    this.spawned = true;
    this.loop = new LoopMonitor();
    this.loadStartedAt = performance.now();
    this.startWindows();
  }

  /** performance.now() of the first load message: the run's start on this worker's clock. */
  private loadStartedAt = 0;
  private replayTimer: NodeJS.Timeout | undefined;

  /** The iteration budget or the schedule is used up: the run may end once the pool is idle. */
  private arrivalsDone(): void {
    const pool = this.pool!;
    const done = () => {
      if (!this.exhaustedSent) {
        this.exhaustedSent = true;
        this.transport.send({ type: "exhausted" });
      }
    };
    pool.onAllIdle = done;
    if (pool.busy === 0) done();
  }

  /**
   * --schedule: starts each of this worker's rows at its offset from the load start, with that
   * as its scheduled time (so lateness shows as dispatch delay and in the corrected latency).
   * A timer per due time, not a polling loop: each fires as close to its row as timers allow.
   */
  private startReplay(rows: readonly ScheduleRow[]): void {
    let next = 0;
    const base = this.loadStartedAt;
    const tick = () => {
      this.replayTimer = undefined;
      if (this.stopping) return;
      const now = performance.now();
      while (next < rows.length && base + rows[next]!.offsetMs <= now + 0.5) {
        const row = rows[next++]!;
        if (!this.takeIteration()) {
          next = rows.length;
          break;
        }
        this.pool!.arrive(this.pickClass!(), base + row.offsetMs, row);
      }
      if (next >= rows.length) {
        this.arrivalsDone();
        return;
      }
      this.replayTimer = setTimeout(tick, Math.max(0, base + rows[next]!.offsetMs - performance.now()));
    };
    tick();
  }

  /** Open model: arrivals at `rate` per second, served by a pool that grows on demand. */
  private setRate(rate: number, maxUsers: number, maxDelayMs: number): void {
    if (this.stopping) return;
    this.markSpawned();
    if (!this.pool) {
      const shared = this.shared;
      const weighted = [...this.classes.values()].filter((c) => c.weight > 0);
      const all = weighted.length > 0 ? weighted : [...this.classes.values()];
      const total = all.reduce((n, c) => n + Math.max(1, c.weight), 0);
      const pickClass = (this.pickClass = (): string => {
        let r = Math.random() * total;
        for (const c of all) {
          r -= Math.max(1, c.weight);
          if (r < 0) return c.name;
        }
        return all[all.length - 1]!.name;
      });
      this.pool = new OpenPool(
        (name) => {
          const cls = this.classes.get(name)!;
          const id = this.nextUserId;
          this.nextUserId += this.userIdStep;
          this.live.get(name)!.add(new UserRuntime(id, cls, shared, this.userExited, this.pool));
          const live = this.liveUsers();
          if (live > this.intervalPeak) this.intervalPeak = live;
        },
        this.recorder,
        maxUsers,
        maxDelayMs,
      );
      this.scheduler = new ArrivalScheduler(
        (scheduledAt) => {
          // The iteration budget is spent by arrivals here, not by the users. Once it is, the
          // run may end when the iterations already started have finished.
          if (!this.takeIteration()) {
            this.arrivalsDone();
            return false;
          }
          this.pool!.arrive(pickClass(), scheduledAt);
          return true;
        },
        (this.plan?.workerIndex ?? 0) / Math.max(1, this.plan?.workerCount ?? 1),
        // Each worker draws its own stream of the seed: n streams at R/n each make up the run's R.
        this.plan?.arrivals ? gapSource(this.plan.arrivals, this.plan.workerIndex ?? 0) : undefined,
      );
      if (this.plan?.schedule) this.startReplay(this.plan.schedule);
    }
    this.pool.maxUsers = maxUsers;
    this.pool.maxDelayMs = maxDelayMs;
    this.scheduler!.setRate(rate);
  }

  /** A burst: `count` arrivals scheduled for this instant, served like any other. */
  private burst(count: number, maxUsers: number, maxDelayMs: number): void {
    if (this.stopping) return;
    if (!this.pool) this.setRate(0, maxUsers, maxDelayMs);
    const now = performance.now();
    for (let i = 0; i < count; i++) {
      if (!this.takeIteration()) break;
      this.pool!.arrive(this.pickClass!(), now);
    }
  }

  private adjust(targets: Record<string, number>): void {
    if (this.stopping || this.iterationsLeft <= 0) return;
    this.markSpawned();
    const shared = this.shared;
    for (const [name, target] of Object.entries(targets)) {
      const cls = this.classes.get(name);
      const set = this.live.get(name);
      if (!cls || !set) continue;
      // With a per-user iteration limit, users that are done still count towards the target:
      // they are not replaced.
      // Users told to stop are on their way out: they do not count towards the target (a share
      // taken away and given back at once must end up whole).
      const running = [...set].filter((u) => !u.isStopping());
      for (let n = running.length + (this.doneUsers.get(name) ?? 0); n < target; n++) {
        const id = this.nextUserId;
        this.nextUserId += this.userIdStep;
        const u = new UserRuntime(id, cls, shared, this.userExited);
        set.add(u);
      }
      const live = this.liveUsers();
      if (live > this.intervalPeak) this.intervalPeak = live;
      if (running.length > target) {
        // Stop the newest first, so the longest-lived users keep their sessions.
        for (const u of running.slice(target)) u.stop();
      }
    }
  }

  /** One callback for every user, rather than a closure each. */
  private readonly userExited = (u: UserRuntime): void => this.onUserExit(u.className, u);

  private onUserExit(name: string, u: UserRuntime): void {
    this.live.get(name)?.delete(u);
    this.pool?.userExited();
    if (!this.stopping && this.plan?.iterationsPerUser != null) {
      this.doneUsers.set(name, (this.doneUsers.get(name) ?? 0) + 1);
    }
    // Every user ran its own iterations: tell the coordinator, which ends the run once all
    // users were spawned (it ignores this while still ramping up).
    if (!this.stopping && this.plan?.iterationsPerUser != null && this.liveUsers() === 0) {
      this.transport.send({ type: "exhausted" });
      return;
    }
    if (!this.stopping && this.iterationsLeft <= 0 && this.liveUsers() === 0 && !this.exhaustedSent) {
      this.exhaustedSent = true;
      this.transport.send({ type: "exhausted" });
    }
  }

  private async stop(timeoutMs: number): Promise<void> {
    // Told to stop before it had a test: nothing ran, nothing to report.
    if (!this.plan) {
      this.finished = true;
      this.resolveEnded();
      return;
    }
    this.stopping = true;
    this.scheduler?.stop();
    clearTimeout(this.replayTimer);
    this.pool?.stop();
    this.gate?.close();
    const users = [...this.live.values()].flatMap((set) => [...set]);
    for (const u of users) u.stop();
    const allDone = Promise.allSettled(users.map((u) => u.done));
    if (timeoutMs > 0 && !this.hardStop.signal.aborted) {
      let timer: NodeJS.Timeout | undefined;
      const aborted = new Promise<void>((r) => this.hardStop.signal.addEventListener("abort", () => r()));
      await Promise.race([allDone, aborted, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
      clearTimeout(timer);
    }
    // Past the stop timeout: in-flight requests are cut off and counted as cancelled.
    this.hardStop.abort();
    // Users blocked on something other than our clients are abandoned after a short grace.
    let grace: NodeJS.Timeout | undefined;
    await Promise.race([allDone, new Promise<void>((r) => (grace = setTimeout(r, 1000)))]);
    clearTimeout(grace);
    this.finish();
  }

  private finished = false;
  private resolveEnded!: () => void;
  /** Resolves once the worker has stopped its users and sent its last snapshot. */
  readonly ended = new Promise<void>((r) => (this.resolveEnded = r));

  /**
   * The coordinator is gone (a remote master lost): stop at once, so no load runs on without
   * anyone measuring it. A worker that never got a plan has nothing to stop.
   */
  abandon(): Promise<void> {
    if (!this.plan || this.finished) {
      this.finished = true;
      this.resolveEnded();
      return this.ended;
    }
    if (!this.stopping || !this.hardStop.signal.aborted) void this.stop(0);
    return this.ended;
  }

  private readonly onStray = (err: unknown): void => {
    this.recorder.exception(err, "unhandled error in user code");
  };

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    process.off("unhandledRejection", this.onStray);
    process.off("uncaughtException", this.onStray);
    clearInterval(this.snapshotTimer);
    clearInterval(this.heartbeatTimer);
    for (const t of this.windowTimers) clearTimeout(t);
    const users = this.liveUsers();
    const snapshot = this.marked(this.recorder.snapshot(users, true, this.takePeak(users)));
    const done = () => {
      this.transport.send({ type: "done", snapshot });
      this.resolveEnded();
    };
    // The spans go out before `done`: the coordinator ends the thread once it has that.
    if (this.tracer) void this.tracer.close(TRACE_FLUSH_MS).finally(done);
    else done();
  }
}
