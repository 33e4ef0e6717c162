// Several scenarios side by side in one run, each with its own coordinator, merged into one set of books.
import type { LoadShape } from "../api/shape.js";
import type { Bundle } from "../loadfile/bundle.js";
import { type ClosedInterval, StatsAggregate } from "../stats/aggregate.js";
import type { StatsSnapshot } from "../stats/snapshot.js";
import { Coordinator, type RemoteWorkerSource, workerCountFor } from "./coordinator.js";
import type { RunPlan } from "./plan.js";
import type { ClassInfo } from "./protocol.js";
import type {
  Burst,
  Phase,
  Run,
  RunStatus,
  RunWarning,
  ScenarioStatus,
  ScenarioView,
  StopReason,
  WorkerInfo,
} from "./run.js";
import { SharedWorkers } from "./shared-workers.js";

/** How long before its offset a later scenario's worker threads start and load the test. */
const SPAWN_AHEAD_SEC = 10;

/** One scenario as the CLI resolved it: a plan of its own, started `startSec` into the run. */
export interface ScenarioSpec {
  name: string;
  plan: RunPlan;
  shape?: LoadShape;
  startSec: number;
}

interface ScenarioState {
  spec: ScenarioSpec;
  /** Set when the scenario starts; absent if the run ended first. */
  coordinator?: Coordinator;
  /**
   * A scenario with a start offset on this machine's threads: its workers load the test up to
   * SPAWN_AHEAD_SEC before its offset, then wait for it.
   */
  gated?: boolean;
  /** Its coordinator was made (and, when gated, its workers are loading or waiting). */
  spawned?: boolean;
  /** While such a scenario waits: starts it (true) or lets it go (false, the run ended first). */
  open?: (go: boolean) => void;
  /** Seconds from the start of the run to the scenario's own start (its clock zero). */
  offsetSec: number | null;
}

export interface ScenarioGroupHooks {
  onTick?(g: ScenarioGroup): void;
  onNotice?(message: string): void;
  onInterval?(iv: ClosedInterval): void;
}

/**
 * Runs several scenarios side by side, each its own coordinator with its own workers and books,
 * started after its offset. Every snapshot is also merged into one run-wide aggregate, with its
 * interval shifted by the scenario's offset, so the run's totals and series are exact too.
 */
export class ScenarioGroup implements Run {
  /** Created when the clock starts (see `startClock`). */
  stats!: StatsAggregate;
  private readonly states: ScenarioState[];
  startedAt = 0;
  endedAt = 0;
  stopReason: StopReason | undefined;
  /** Most users alive at once over the whole run (scenarios that do not overlap do not add up). */
  peakUsers = 0;
  private readonly pending = new Set<NodeJS.Timeout>();
  private aborted = false;
  private settleOne: () => void = () => {};
  private readonly shared: SharedWorkers | undefined;
  /** Workers of all the scenarios together. */
  readonly workerCount: number;
  /** Each scenario has its own plan. */
  readonly plan = undefined;
  /**
   * The scenarios' bursts in run time (each scenario keeps its own in its own time): the run's
   * soak verdicts time the recovery from each of them over the merged books.
   */
  get bursts(): Burst[] {
    return this.states
      .flatMap((s) =>
        s.coordinator && s.offsetSec !== null
          ? s.coordinator.bursts.map((b) => ({
              t: Math.round((b.t + s.offsetSec!) * 10) / 10,
              count: b.count,
            }))
          : [],
      )
      .sort((a, b) => a.t - b.t);
  }

  constructor(
    specs: ScenarioSpec[],
    private readonly bundle: Bundle,
    private readonly hooks: ScenarioGroupHooks = {},
    /** Caps the whole run, whatever the scenarios' own durations. */
    private readonly runTimeSec: number | null = null,
    /** `--master`: every scenario runs on every connected remote worker. */
    remote?: RemoteWorkerSource,
  ) {
    this.shared = remote ? new SharedWorkers(remote) : undefined;
    this.states = specs.map((spec) => ({ spec, offsetSec: null }));
    // User ids stay unique across scenarios: the scenarios' workers interleave one id space.
    const counts = specs.map((s) => workerCountFor(s.plan));
    const stride = counts.reduce((a, b) => a + b, 0);
    this.workerCount = stride;
    let first = 0;
    for (const [i, s] of specs.entries()) {
      s.plan.userIds = { first, stride };
      first += counts[i]!;
    }
  }

  get elapsedSec(): number {
    if (this.startedAt === 0) return 0;
    return ((this.endedAt || Date.now()) - this.startedAt) / 1000;
  }

  /** The books cannot be reset: they always cover the whole run. */
  get statsStartedAt(): number {
    return this.startedAt;
  }

  get statsElapsedSec(): number {
    return this.elapsedSec;
  }

  get phase(): Phase {
    return this.endedAt > 0 ? "done" : this.stopReason ? "stopping" : "running";
  }

  get scenarios(): ScenarioView[] {
    return this.states.map((s) => ({
      name: s.spec.name,
      plan: s.spec.plan,
      startSec: s.spec.startSec,
      offsetSec: s.offsetSec,
      run: s.coordinator,
    }));
  }

  get stopTimeoutSec(): number {
    return Math.max(...this.states.map((x) => x.spec.plan.stopTimeoutSec));
  }

  /** The classes of the scenarios started so far, each once. */
  get classes(): ClassInfo[] {
    const byName = new Map<string, ClassInfo>();
    for (const s of this.states) for (const c of s.coordinator?.classes ?? []) byName.set(c.name, c);
    return [...byName.values()];
  }

  /** The run's planned length, if every scenario's end is known. */
  get plannedSec(): number | null {
    if (this.runTimeSec !== null) return this.runTimeSec;
    let end = 0;
    for (const s of this.states) {
      const d = s.spec.plan.runTimeSec;
      if (d === null) return null;
      end = Math.max(end, s.spec.startSec + d);
    }
    return end;
  }

  get running(): number {
    return this.states.filter((s) => s.coordinator && s.coordinator.phase !== "done").length;
  }

  get lostWorkers(): number {
    return this.states.reduce((n, s) => n + (s.coordinator?.lostWorkers ?? 0), 0);
  }

  get fatalError(): string | undefined {
    for (const s of this.states) if (s.coordinator?.fatalError) return s.coordinator.fatalError;
    return undefined;
  }

  get warnings(): RunWarning[] {
    return this.states.flatMap((s) => s.coordinator?.warnings ?? []).sort((a, b) => a.at - b.at);
  }

  status(): RunStatus {
    const elapsedSec = this.elapsedSec;
    const scenarios = this.states.map((s): ScenarioStatus => {
      const name = s.spec.name;
      const c = s.coordinator;
      if (!c) return { name, state: "pending", startsInSec: s.spec.startSec - elapsedSec };
      if (c.phase === "done") return { name, state: "done" };
      return { name, state: "running", users: c.stats?.users ?? 0, rate: c.status().rate };
    });
    return {
      elapsedSec,
      plannedSec: this.plannedSec,
      load: { kind: "scenarios", scenarios },
      rate: null,
      targetUsers: null,
    };
  }

  /** Every worker of every scenario started so far, named after its scenario. */
  workerInfo(): WorkerInfo[] {
    return this.states.flatMap((s) =>
      (s.coordinator?.workerInfo() ?? []).map((w) => ({ ...w, id: `${s.spec.name}/${w.id}` })),
    );
  }

  setUsers(): void {
    throw new Error("a run with scenarios follows its scenarios");
  }

  setRate(): void {
    throw new Error("a run with scenarios follows its scenarios");
  }

  resetStats(): void {
    throw new Error("a run with scenarios cannot reset its stats");
  }

  stop(reason: StopReason): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    // Scenarios still waiting for their start never run: those whose workers wait let them go
    // (and settle when they are closed), the others settle here.
    for (const t of this.pending) clearTimeout(t);
    this.pending.clear();
    this.unscheduled.length = 0;
    for (const s of this.states) {
      if (s.coordinator) s.coordinator.stop(reason);
      else if (s.open) s.open(false);
      else if (!s.spawned && s.spec.startSec > 0) this.settleOne();
    }
  }

  abort(): void {
    this.aborted = true;
    this.stop("signal");
    for (const s of this.states) s.coordinator?.abort();
  }

  private merge(state: ScenarioState, snap: StatsSnapshot, c: Coordinator): void {
    // The first scenario to start flushes its first snapshots before anything else hears of it.
    this.startClock(c.startedAt);
    // Each scenario's intervals count from its own start; shifted by its offset they line up
    // with the run's seconds, one snapshot per worker per interval as the aggregate expects.
    const shift = Math.round((c.startedAt - this.startedAt) / 1000);
    this.stats.add({ ...snap, workerId: `${state.spec.name}/${snap.workerId}`, seq: snap.seq + shift });
    if (this.stats.users > this.peakUsers) this.peakUsers = this.stats.users;
  }

  private async runOne(state: ScenarioState): Promise<void> {
    const { spec } = state;
    const c = new Coordinator(
      spec.plan,
      this.bundle,
      {
        onNotice: (m) => this.hooks.onNotice?.(`[${spec.name}] ${m}`),
        onSnapshot: (snap, co) => this.merge(state, snap, co),
        // A worker's own series are named after its scenario, as in workerInfo().
        onResources: (samples, perWorker) =>
          this.stats?.resources.add(
            perWorker ? samples.map((x) => ({ ...x, source: `${spec.name}/${x.source}` })) : samples,
          ),
      },
      spec.shape,
      this.shared?.forScenario(this.states.indexOf(state)),
    );
    if (!state.gated) state.coordinator = c;
    else {
      c.holdStart(
        new Promise<boolean>((resolve) => {
          state.open = (go) => {
            state.open = undefined;
            if (go) state.coordinator = c;
            resolve(go);
          };
        }),
      );
    }
    const run = c.run();
    // The coordinator sets its clock once its workers are ready: the scenario's offset is known then.
    void c.started.then(() => {
      if (c.startedAt === 0) return;
      this.startClock(c.startedAt);
      state.offsetSec ??= Math.round((c.startedAt - this.startedAt) / 100) / 10;
    });
    await run;
  }

  /** Scenarios due after the start, waiting for the clock to start before they are scheduled. */
  private readonly unscheduled: ScenarioState[] = [];
  private startOne: (state: ScenarioState) => void = () => {};
  private tickTimer: NodeJS.Timeout | undefined;
  private runTimer: NodeJS.Timeout | undefined;

  /**
   * The run's clock starts when the first scenario's workers are ready, as a single run's does:
   * the time threads take to start and load the test is not load time, so `-t` and each
   * scenario's `startTime` count from the first moment load can run.
   */
  private startClock(at: number): void {
    if (this.startedAt > 0) return;
    this.startedAt = at;
    this.stats = new StatsAggregate(at);
    this.stats.onInterval = this.hooks.onInterval;
    if (this.stopReason) return;
    const after = (sec: number, then: () => void) => {
      const t = setTimeout(
        () => {
          this.pending.delete(t);
          then();
        },
        Math.max(0, at + sec * 1000 - Date.now()),
      );
      this.pending.add(t);
    };
    for (const state of this.unscheduled.splice(0)) {
      if (state.gated && !state.spawned)
        after(state.spec.startSec - SPAWN_AHEAD_SEC, () => this.startOne(state));
      after(state.spec.startSec, () => {
        if (state.open) state.open(true);
        else if (!state.spawned) {
          // Not gated (remote workers are taken now), or its threads were never started ahead.
          state.gated = false;
          this.startOne(state);
        }
      });
    }
    this.tickTimer = setInterval(() => this.hooks.onTick?.(this), 1000);
    if (this.runTimeSec !== null) {
      this.runTimer = setTimeout(
        () => this.stop("run-time"),
        Math.max(0, at + this.runTimeSec * 1000 - Date.now()),
      );
    }
  }

  async run(): Promise<void> {
    let failed: unknown;
    let outstanding = this.states.length;
    let allDone!: () => void;
    const done = new Promise<void>((r) => (allDone = r));
    this.settleOne = () => {
      if (--outstanding === 0) allDone();
    };
    if (outstanding === 0) allDone();
    this.shared?.start();
    this.startOne = (state: ScenarioState) => {
      state.spawned = true;
      this.runOne(state)
        .catch((err) => {
          failed ??= err;
          this.stop("error");
        })
        .finally(this.settleOne);
    };
    const first = this.states.filter((x) => x.spec.startSec <= 0);
    const later = this.states.filter((x) => x.spec.startSec > 0);
    this.unscheduled.push(...later);
    for (const state of first) this.startOne(state);
    // Threads take a moment to start and load the test: those of later scenarios do it ahead,
    // so each starts at its offset (not so far ahead that a long run of scenarios one after
    // another keeps them all alive). Remote workers are taken when their scenario starts.
    if (!this.shared) {
      for (const state of later) {
        state.gated = true;
        if (state.spec.startSec <= SPAWN_AHEAD_SEC) this.startOne(state);
      }
    }
    // Nothing starts at once: there is no startup to wait for.
    if (first.length === 0) this.startClock(Date.now());
    await done;
    this.shared?.close();
    clearInterval(this.tickTimer);
    clearTimeout(this.runTimer);
    this.stopReason ??= "scenarios";
    // Every scenario failed before its workers were ready: the books cover nothing.
    if (this.startedAt === 0) this.startClock(Date.now());
    this.endedAt = Date.now();
    this.stats.finish();
    for (const r of this.stats.series) if (r.users > this.peakUsers) this.peakUsers = r.users;
    if (failed !== undefined && !this.aborted) throw failed;
  }
}
