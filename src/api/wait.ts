/**
 * Wait-time helpers. A wait time is a function the runtime calls after each task;
 * it returns seconds to sleep. It receives timing of the task that just ran so that
 * pacing helpers can subtract the task's own duration, as Locust's do.
 */
export interface WaitContext {
  /** performance.now() when the last task started, in ms. */
  readonly taskStartedAt: number;
  /** performance.now() when the last task ended, in ms. */
  readonly taskEndedAt: number;
}

export type WaitTime = ((ctx: WaitContext) => number) & {
  /** False when the wait ignores task timing, which spares two clock reads per task. */
  readonly usesTiming?: boolean;
};

function untimed(fn: () => number): WaitTime {
  return Object.assign(fn, { usesTiming: false });
}

function checkSeconds(name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0)
    throw new RangeError(`${name}: expected a non-negative number of seconds, got ${v}`);
}

/** Sleep a uniformly random time between `min` and `max` seconds. */
export function between(min: number, max: number): WaitTime {
  checkSeconds("between", min);
  checkSeconds("between", max);
  if (max < min) throw new RangeError(`between(${min}, ${max}): max is below min`);
  return untimed(() => min + Math.random() * (max - min));
}

/** Sleep the same number of seconds after every task. */
export function constant(seconds: number): WaitTime {
  checkSeconds("constant", seconds);
  return untimed(() => seconds);
}

/** Start a task every `seconds`, whatever the task took (never less than 0 wait). */
export function constantPacing(seconds: number): WaitTime {
  checkSeconds("constantPacing", seconds);
  return (ctx) => Math.max(0, seconds - (ctx.taskEndedAt - ctx.taskStartedAt) / 1000);
}

/** Run at most `tasksPerSecond` tasks per second per user. */
export function constantThroughput(tasksPerSecond: number): WaitTime {
  if (!Number.isFinite(tasksPerSecond) || tasksPerSecond <= 0) {
    throw new RangeError(`constantThroughput: expected a positive rate, got ${tasksPerSecond}`);
  }
  return constantPacing(1 / tasksPerSecond);
}
