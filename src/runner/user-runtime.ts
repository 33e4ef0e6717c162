import { performance } from "node:perf_hooks";
import { kAttach, kClose, type UserContext } from "../api/context.js";
import { InterruptTaskSet, RunStopped, StopUser } from "../api/errors.js";
import type { TaskDef } from "../api/tasks.js";
import { TaskSet, type User } from "../api/user.js";
import type { WaitContext, WaitTime } from "../api/wait.js";
import type { CompiledClass } from "../loadfile/inspect.js";
import type { HttpEngine } from "../protocols/http/session.js";
import type { RequestTracer } from "../protocols/http/tracing.js";
import type { StatsRecorder } from "../stats/recorder.js";
import type { ConcurrencyGate } from "./concurrency.js";
import type { OpenPool } from "./open-model.js";
import type { ScheduleRow } from "./schedule.js";

/** What all users of a worker share. */
export interface UserRuntimeShared {
  readonly recorder: StatsRecorder;
  /** `-H`, which wins over a class's static host. */
  readonly host: string | undefined;
  readonly verifyTls: boolean;
  /** `--http-engine`, which wins over a class's static engine; null when not given. */
  readonly httpEngine: HttpEngine | null;
  readonly acceptStatus: ReadonlySet<number> | null;
  /** `--otel-traces`: spans for the HTTP requests; null when tracing is off. */
  readonly tracer: RequestTracer | null;
  /** Aborted at the hard stop. */
  readonly hardStop: AbortSignal;
  /** Takes one iteration from the budget; false once it is used up. */
  takeIteration(): boolean;
  /** Task iterations each user runs before it stops; null for no limit. */
  readonly iterationsPerUser: number | null;
  /** `--max-concurrency`: this worker's slots for iterations in flight; null for no cap. */
  readonly gate: ConcurrencyGate | null;
}

const NO_WAIT: WaitTime = Object.assign(() => 0, { usesTiming: false });

/** Picks tasks by weight with one random number and a binary search. */
class Picker {
  private readonly cumulative: number[];
  private readonly total: number;
  private next = 0;
  constructor(
    private readonly tasks: readonly TaskDef[],
    private readonly sequential: boolean,
  ) {
    let sum = 0;
    this.cumulative = tasks.map((t) => (sum += t.weight));
    this.total = sum;
  }
  pick(): TaskDef {
    if (this.sequential) {
      const t = this.tasks[this.next]!;
      this.next = (this.next + 1) % this.tasks.length;
      return t;
    }
    const r = Math.random() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.cumulative[mid]! > r) hi = mid;
      else lo = mid + 1;
    }
    return this.tasks[lo]!;
  }
}

/** A task's tags as an array, built once per task. */
const tagLists = new WeakMap<TaskDef, readonly string[] | null>();

function tagsOf(t: TaskDef, parent: readonly string[] | null): readonly string[] | null {
  let own = tagLists.get(t);
  if (own === undefined) {
    own = t.tags.size > 0 ? [...t.tags] : null;
    tagLists.set(t, own);
  }
  if (parent === null) return own;
  if (own === null) return parent;
  return [...new Set([...parent, ...own])];
}

function anyTags(tasks: readonly TaskDef[]): boolean {
  return tasks.some((t) => t.tags.size > 0 || (t.children !== undefined && anyTags(t.children)));
}

/** Weighted pickers are stateless: one per task list serves every user. */
const pickers = new WeakMap<readonly TaskDef[], Picker>();

function sharedPicker(tasks: readonly TaskDef[]): Picker {
  let p = pickers.get(tasks);
  if (!p) {
    p = new Picker(tasks, false);
    pickers.set(tasks, p);
  }
  return p;
}

/** A module-level timer callback with the user as argument: no closure per sleep. */
function wakeUp(u: UserRuntime): void {
  u.timerFired();
}

/** Runs one user: onStart, the task loop with waits, onStop. */
export class UserRuntime implements UserContext {
  readonly className: string;
  readonly host: string | undefined;
  readonly recorder: StatsRecorder;
  readonly signal: AbortSignal;
  readonly verifyTls: boolean;
  readonly httpEngine: HttpEngine | null;
  readonly acceptStatus: ReadonlySet<number> | null;
  readonly tracer: RequestTracer | null;
  /** Settles when the user has fully stopped. */
  readonly done: Promise<void>;
  private stopping = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private zeroWaits = 0;

  private ownIterations = 0;
  /** Open model: how late the current iteration started, in µs. */
  private lagUs = -1;
  /** Tags of the task running now (with those of enclosing task sets); null outside tasks. */
  private tags: readonly string[] | null = null;
  /** Trace replay: the row of the iteration running now (`this.schedule` in the loadfile). */
  schedule: ScheduleRow | undefined = undefined;

  constructor(
    readonly userId: number,
    private readonly compiled: CompiledClass,
    private readonly shared: UserRuntimeShared,
    private readonly onExit: (u: UserRuntime) => void,
    /** Set in the open model: the user serves arrivals from this pool instead of looping. */
    private readonly pool?: OpenPool,
  ) {
    this.className = compiled.name;
    this.host = shared.host ?? compiled.host;
    // In the open model every sample carries this user's current lag, so the recorder can time
    // requests from the iteration's scheduled start as well as from the actual send.
    // Tagged tasks: samples also carry the tags, for per-tag figures. Otherwise the shared
    // recorder is used as is, with no extra call per request.
    this.recorder = pool || anyTags(compiled.tasks) ? this.userRecorder(shared.recorder) : shared.recorder;
    this.signal = shared.hardStop;
    this.verifyTls = shared.verifyTls;
    this.httpEngine = shared.httpEngine;
    this.acceptStatus = shared.acceptStatus;
    this.tracer = shared.tracer;
    this.done = this.run();
  }

  private userRecorder(r: StatsRecorder): StatsRecorder {
    return {
      request: (type, method, name, latencyUs, ttfbUs, bytes, error, status) =>
        r.request(type, method, name, latencyUs, ttfbUs, bytes, error, status, this.lagUs, this.tags),
      cancelled: (type, method, name) => r.cancelled(type, method, name),
      notSent: (type, method, name) => r.notSent(type, method, name),
      exception: (err, where) => r.exception(err, where),
      iteration: () => r.iteration(),
      check: (name, passed) => r.check(name, passed),
      metric: (type, method, name, metric, value) => r.metric(type, method, name, metric, value),
      count: (type, method, name, counter, n) => r.count(type, method, name, counter, n),
      failRecorded: (type, method, name, error) => r.failRecorded(type, method, name, error),
      slo: r.slo,
    };
  }

  timerFired(): void {
    this.timer = undefined;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  isStopping(): boolean {
    return this.stopping || this.signal.aborted;
  }

  /** Asks the user to stop after its current task; a sleeping user stops at once. */
  stop(): void {
    this.stopping = true;
    this.cancelSleep();
  }

  private cancelSleep(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  sleep(seconds: number): Promise<void> {
    if (this.isStopping()) return Promise.resolve();
    if (!(seconds > 0)) {
      // A task that never yields to the event loop, with no wait, would starve timers and I/O.
      return new Promise((r) => setImmediate(r));
    }
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(wakeUp, seconds * 1000, this);
    });
  }

  /** Runs the user, then reports its exit; no `.finally()` closure kept per user. */
  private async run(): Promise<void> {
    try {
      await this.live();
    } finally {
      this.onExit(this);
    }
  }

  private async live(): Promise<void> {
    // Let the spawner finish its batch before the first request.
    await Promise.resolve();
    const Cls = this.compiled.cls as unknown as new () => User;
    let user: User;
    try {
      user = new Cls();
      user[kAttach](this);
    } catch (err) {
      this.recorder.exception(err, `${this.className}.constructor`);
      return;
    }
    try {
      try {
        await user.onStart();
      } catch (err) {
        if (err instanceof StopUser || err instanceof RunStopped) return;
        this.recorder.exception(err, `${this.className}.onStart`);
      }
      if (this.pool) await this.serveArrivals(user, this.pool);
      else
        await this.runTasks(
          user,
          this.compiled.tasks,
          this.compiled.waitTime ?? NO_WAIT,
          false,
          this.className,
        );
    } catch (err) {
      if (!(err instanceof StopUser || err instanceof RunStopped || err instanceof InterruptTaskSet)) {
        this.recorder.exception(err, this.className);
      }
    } finally {
      if (!this.signal.aborted) {
        try {
          await user.onStop();
        } catch (err) {
          if (!(err instanceof RunStopped)) this.recorder.exception(err, `${this.className}.onStop`);
        }
      }
      await user[kClose](this.signal.aborted);
    }
  }

  /**
   * The task loop of a user or task set. Returns when the user stops; a task set's loop ends
   * by InterruptTaskSet, which propagates to `runTaskSet`.
   */
  private async runTasks(
    owner: object,
    tasks: readonly TaskDef[],
    waitTime: WaitTime,
    sequential: boolean,
    where: string,
    parentTags: readonly string[] | null = null,
  ): Promise<void> {
    const picker = sequential ? new Picker(tasks, true) : sharedPicker(tasks);
    const single = tasks.length === 1 ? tasks[0]! : undefined;
    const timing: { taskStartedAt: number; taskEndedAt: number } = { taskStartedAt: 0, taskEndedAt: 0 };
    const timed = waitTime.usesTiming !== false;
    // --max-concurrency caps the user's iterations, not the tasks of a task set inside one.
    const gate = owner instanceof TaskSet ? null : this.shared.gate;
    const perUser = this.shared.iterationsPerUser;
    // With no tags here or above, there is nothing to look up per iteration.
    const tagged = anyTags(tasks) || parentTags !== null;
    while (!this.isStopping()) {
      if ((perUser !== null && this.ownIterations >= perUser) || !this.shared.takeIteration()) {
        this.stopping = true;
        return;
      }
      this.ownIterations++;
      if (gate) {
        const entered = this.enter(gate);
        if (!(typeof entered === "boolean" ? entered : await entered)) return;
      }
      this.recorder.iteration();
      const t = single ?? picker.pick();
      if (timed) timing.taskStartedAt = performance.now();
      let skipWait = false;
      if (tagged) this.tags = tagsOf(t, parentTags);
      try {
        if (t.taskSet) skipWait = await this.runTaskSet(owner, t, waitTime, this.tags);
        else await t.fn!.call(owner, owner);
      } catch (err) {
        if (err instanceof InterruptTaskSet) {
          if (owner instanceof TaskSet) throw err;
        } else if (err instanceof StopUser) {
          throw err;
        } else if (err instanceof RunStopped || this.signal.aborted) {
          return;
        } else {
          this.recorder.exception(err, `${where}.${t.name}`);
        }
      } finally {
        gate?.release();
      }
      if (tagged) this.tags = parentTags;
      if (timed) timing.taskEndedAt = performance.now();
      if (this.isStopping()) return;
      if (!skipWait) {
        const seconds = waitTime(timing as WaitContext);
        // No wait: skip the await (one microtask hop per task) but still yield now and then.
        if (seconds > 0 || ++this.zeroWaits % 64 === 0) await this.sleep(Math.max(seconds, 0));
      }
    }
  }

  /**
   * Takes a --max-concurrency slot, waiting for one when all are taken: synchronous when one is
   * free, so a free slot costs no microtask hop. False when the user is stopping by then: the
   * slot is given back and the iteration must not run.
   */
  private enter(gate: ConcurrencyGate): boolean | Promise<boolean> {
    const slot = gate.acquire();
    return slot ? slot.then(() => this.keepSlot(gate)) : this.keepSlot(gate);
  }

  private keepSlot(gate: ConcurrencyGate): boolean {
    if (!this.isStopping()) return true;
    gate.release();
    return false;
  }

  /**
   * Open model: one task per arrival, no wait time (the arrival rate sets the pace), until the
   * pool says the run stops.
   */
  private async serveArrivals(user: User, pool: OpenPool): Promise<void> {
    const picker = sharedPicker(this.compiled.tasks);
    const gate = this.shared.gate;
    for (;;) {
      const scheduledAt = await pool.next(this.className, this);
      if (scheduledAt < 0 || this.isStopping()) return;
      // Waiting for a --max-concurrency slot is part of the lateness: it shows in the corrected
      // latency and the dispatch delay, as a wait for a free user does.
      if (gate) {
        const entered = this.enter(gate);
        if (!(typeof entered === "boolean" ? entered : await entered)) return;
      }
      this.lagUs = Math.max(0, (performance.now() - scheduledAt) * 1000);
      this.shared.recorder.dispatchDelay?.(this.lagUs / 1000);
      this.recorder.iteration();
      const t = picker.pick();
      this.tags = tagsOf(t, null);
      try {
        if (t.taskSet) await this.runTaskSet(user, t, NO_WAIT, this.tags);
        else await t.fn!.call(user, user);
      } catch (err) {
        if (err instanceof StopUser) throw err;
        if (err instanceof RunStopped || this.signal.aborted) return;
        if (!(err instanceof InterruptTaskSet)) this.recorder.exception(err, `${this.className}.${t.name}`);
      } finally {
        gate?.release();
      }
    }
  }

  /** Returns true when the set was left with `interrupt(reschedule=true)`: no wait before the next task. */
  private async runTaskSet(
    parent: object,
    def: TaskDef,
    parentWait: WaitTime,
    tags: readonly string[] | null,
  ): Promise<boolean> {
    const SetClass = def.taskSet!;
    const set = new SetClass(parent as TaskSet) as TaskSet;
    const where = `${this.className}.${def.name}`;
    let reschedule = false;
    try {
      await set.onStart();
      await this.runTasks(
        set,
        def.children ?? [],
        SetClass.waitTime ?? parentWait,
        SetClass.sequential === true,
        where,
        tags,
      );
    } catch (err) {
      if (err instanceof InterruptTaskSet) reschedule = err.reschedule;
      else throw err;
    } finally {
      if (!this.signal.aborted) await set.onStop();
    }
    return reschedule;
  }
}
