import { performance } from "node:perf_hooks";
import type { StatsRecorder } from "../stats/recorder.js";
import type { ScheduleRow } from "./schedule.js";

/** Where a user takes the trace-replay row of the arrival it serves. */
export interface ArrivalTaker {
  schedule: ScheduleRow | undefined;
}

/**
 * The open model's user pool: arrivals come on schedule whatever the response times; each is
 * served by a free user of its class, or a new one while the pool is below `maxUsers`. When no
 * user is free, the arrival waits in line and starts late — its requests are then timed from
 * the scheduled start, so a stalled server shows in the latency (no coordinated omission). An
 * arrival that would start more than `maxDelayMs` late is dropped and counted.
 */
export class OpenPool {
  /** Users of each class waiting for work: resolvers taking the arrival's scheduled time and row. */
  private readonly free = new Map<string, Array<(scheduledAt: number, row?: ScheduleRow) => void>>();
  /** Scheduled times of arrivals of each class still waiting for a user. */
  private readonly backlog = new Map<string, number[]>();
  private total = 0;
  private idle = 0;
  private stopped = false;
  /** Called once every user is idle with nothing waiting (to end a run whose budget is spent). */
  onAllIdle: (() => void) | undefined;

  constructor(
    private readonly createUser: (className: string) => void,
    private readonly recorder: StatsRecorder & { dropped(n?: number): void },
    public maxUsers: number,
    public maxDelayMs: number,
  ) {}

  get size(): number {
    return this.total;
  }

  /** Users working on an arrival right now, or starting up. */
  get busy(): number {
    return this.total - this.idle;
  }

  private queue(className: string): number[] {
    let q = this.backlog.get(className);
    if (!q) {
      q = [];
      this.backlog.set(className, q);
    }
    return q;
  }

  private rowsOf(q: number[]): Array<ScheduleRow | undefined> | undefined {
    return this.rowQueues.get(q);
  }

  /** Trace replay: the rows of a class's waiting arrivals, in step with its backlog queue. */
  private readonly rowQueues = new Map<number[], Array<ScheduleRow | undefined>>();

  /** Drops waiting arrivals that can no longer start in time. */
  private prune(q: number[], now: number): void {
    let n = 0;
    while (n < q.length && now - q[n]! > this.maxDelayMs) n++;
    if (n > 0) {
      q.splice(0, n);
      this.rowsOf(q)?.splice(0, n);
      this.recorder.dropped(n);
    }
  }

  arrive(className: string, scheduledAt: number, row?: ScheduleRow): void {
    if (this.stopped) return;
    const waiting = this.free.get(className);
    const user = waiting?.pop();
    if (user) {
      user(scheduledAt, row);
      return;
    }
    const q = this.queue(className);
    this.prune(q, performance.now());
    q.push(scheduledAt);
    if (row) {
      let rq = this.rowQueues.get(q);
      if (!rq) {
        // Rows line up with times from here on; earlier arrivals of the class had none.
        rq = new Array<ScheduleRow | undefined>(q.length - 1).fill(undefined);
        this.rowQueues.set(q, rq);
      }
      rq.push(row);
    } else this.rowQueues.get(q)?.push(undefined);
    if (this.total < this.maxUsers) {
      this.total++;
      // The new user takes the oldest waiting arrival of its class once it has started.
      this.createUser(className);
    }
  }

  /**
   * A user ready for work: the next arrival's scheduled time, or -1 when the run stops. Its
   * trace-replay row, if any, is put in `taker.schedule` before the promise resolves.
   */
  next(className: string, taker: ArrivalTaker): Promise<number> {
    if (this.stopped) return Promise.resolve(-1);
    const q = this.backlog.get(className);
    if (q && q.length > 0) {
      this.prune(q, performance.now());
      if (q.length > 0) {
        taker.schedule = this.rowQueues.get(q)?.shift();
        return Promise.resolve(q.shift()!);
      }
    }
    return new Promise((resolve) => {
      let list = this.free.get(className);
      if (!list) {
        list = [];
        this.free.set(className, list);
      }
      this.idle++;
      list.push((at, row) => {
        this.idle--;
        taker.schedule = row;
        resolve(at);
      });
      if (this.idle === this.total && this.onAllIdle) this.onAllIdle();
    });
  }

  userExited(): void {
    this.total--;
  }

  /** Arrivals still waiting when the run stops never ran: they count as dropped. */
  stop(): void {
    this.stopped = true;
    for (const list of this.free.values()) for (const r of list.splice(0)) r(-1);
    this.idle = 0;
    for (const q of this.backlog.values()) {
      if (q.length > 0) this.recorder.dropped(q.length);
      q.length = 0;
      this.rowQueues.get(q)?.splice(0);
    }
  }
}

/**
 * Starts arrivals on schedule: at `rate` per second, each with its exact scheduled time. The gaps
 * come from `gap` in units of the mean gap (1000/rate ms): all 1 for constant arrivals, random
 * for Poisson or gamma ones (arrivals.ts). Timers fire late under load; the scheduler then starts
 * every arrival that is due, with the times they were due, so lateness is measured, not hidden.
 */
export class ArrivalScheduler {
  private rate = 0;
  /** Arrivals accumulated towards the next one (0..need); a full credit starts the first at once. */
  private credit: number;
  /** The credit the next arrival needs: its gap, in mean gaps. */
  private need: number;
  private lastAt = performance.now();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly onArrival: (scheduledAt: number) => boolean,
    /**
     * Where this worker's arrivals fall within the shared period (0..1): worker i of n uses i/n,
     * so n workers at R/n each interleave into one even stream of R instead of n arrivals at once.
     */
    phase = 0,
    /** Gaps in mean gaps; constant (1) when absent. A random process starts after its first gap. */
    private readonly gap?: () => number,
  ) {
    if (gap) {
      this.credit = 0;
      this.need = gap();
    } else {
      this.credit = 1 - Math.min(Math.max(phase, 0), 0.999);
      this.need = 1;
    }
  }

  /** Changes the rate from now on; arrivals due under the old rate are started first. */
  setRate(rate: number): void {
    if (this.stopped) return;
    this.advance(performance.now());
    this.rate = rate;
    if (!this.timer) this.schedule();
  }

  /**
   * Starts every arrival due up to `now`, each with the exact time it was due: the rate is the
   * derivative of a running count, so a rate that changes (stages) is followed smoothly.
   */
  private advance(now: number): void {
    const rate = this.rate;
    let t = this.lastAt;
    let c = this.credit;
    if (rate > 0) {
      for (;;) {
        const need = ((this.need - c) * 1000) / rate;
        if (t + need > now) {
          c += ((now - t) * rate) / 1000;
          break;
        }
        t += need;
        c = 0;
        this.need = this.gap ? this.gap() : 1;
        if (!this.onArrival(t)) {
          this.stop();
          return;
        }
      }
    }
    this.credit = c;
    this.lastAt = now;
  }

  private schedule(): void {
    const wait =
      this.rate > 0 ? Math.min(50, Math.max(1, ((this.need - this.credit) * 1000) / this.rate)) : 50;
    this.timer = setTimeout(this.tick, wait);
  }

  private tick = (): void => {
    this.timer = undefined;
    if (this.stopped) return;
    this.advance(performance.now());
    if (!this.stopped) this.schedule();
  };

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
