import { type EventLoopUtilization, performance } from "node:perf_hooks";

/**
 * How busy this thread's event loop is: the share of wall time it spent running callbacks
 * rather than waiting for I/O. `performance.eventLoopUtilization()` is thread-local, so in a
 * worker thread it measures that worker alone. Near 1 the generator is CPU-bound: requests wait
 * for the loop before they are sent and their responses wait before they are timed, so the
 * latencies it records include its own queueing.
 */
export class LoopMonitor {
  private last: EventLoopUtilization = performance.eventLoopUtilization();
  private lastAt = Date.now();

  /** Utilization (0–1) since the previous call, and the length of that window in ms. */
  sample(): { elu: number; windowMs: number } {
    const now = performance.eventLoopUtilization();
    const delta = performance.eventLoopUtilization(now, this.last);
    const at = Date.now();
    const windowMs = at - this.lastAt;
    this.last = now;
    this.lastAt = at;
    return { elu: Math.round(delta.utilization * 1000) / 1000, windowMs };
  }
}

export const SATURATION_THRESHOLD = 0.9;
export const SATURATION_MS = 3000;

/**
 * Locust's cpu_warning, per worker: a worker whose loop stays above `threshold` for `forMs` in a
 * row (measured by the windows its heartbeats report) makes the run's numbers suspect. Says so
 * once per run.
 */
export class SaturationWatch {
  private readonly highSince = new Map<string, number>();
  private warned = false;

  constructor(
    private readonly threshold = SATURATION_THRESHOLD,
    private readonly forMs = SATURATION_MS,
  ) {}

  /**
   * Feeds one heartbeat: `elu` over the `windowMs` before `at`. Time before `notBefore` (the
   * clock start) does not count towards the streak. Returns the warning the first time any
   * worker qualifies, undefined otherwise.
   */
  observe(
    workerId: string,
    elu: number,
    windowMs: number,
    at: number,
    notBefore: number,
  ): string | undefined {
    if (at <= notBefore) return undefined;
    const from = Math.max(at - windowMs, notBefore);
    if (!(elu > this.threshold)) {
      this.highSince.delete(workerId);
      return undefined;
    }
    const since = this.highSince.get(workerId) ?? from;
    this.highSince.set(workerId, since);
    // Heartbeat timers drift by a few ms; three one-second windows must count as three seconds.
    if (this.warned || at - since < this.forMs * 0.95) return undefined;
    this.warned = true;
    const pct = Math.round(elu * 100);
    return (
      `warning: generator CPU above ${Math.round(this.threshold * 100)}% (worker ${workerId}: ${pct}%); ` +
      "numbers taken now are not trustworthy — add --processes or machines"
    );
  }
}
