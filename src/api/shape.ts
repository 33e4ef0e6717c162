import type { StageInput } from "../core/types.js";

/** What a shape asks for at one moment. */
export type ShapeTick =
  /** Closed model: this many users, approached at `spawnRate` per second (default: at once). */
  | { users: number; spawnRate?: number; userClasses?: string[] }
  /** Open model: this many iterations per second. */
  | { rate: number }
  /** Open model: this many arrivals at once, now; later ticks go on as before. */
  | { burst: number };

/**
 * A load shape in code, like Locust's LoadTestShape: export a subclass from the loadfile and
 * Cicada calls `tick()` ten times a second. Return null to end the run.
 */
export abstract class LoadShape {
  abstract tick(elapsedSec: number): ShapeTick | null;
}

/** Stage helpers: each returns stages, to be concatenated into `options.stages`. */

/** Linear ramp to `target` over `duration`. */
export function ramp(target: number, duration: string | number): StageInput[] {
  return [{ duration, target }];
}

/** Hold `target` for `duration` (after jumping to it). */
export function soak(target: number, duration: string | number): StageInput[] {
  return [
    { duration: 0, target },
    { duration, target },
  ];
}

/** A staircase from `from` to `to` in `steps` equal steps, each held for `stepDuration`. */
export function step(from: number, to: number, steps: number, stepDuration: string | number): StageInput[] {
  const out: StageInput[] = [];
  for (let i = 0; i <= steps; i++) {
    const target = Math.round(from + ((to - from) * i) / Math.max(1, steps));
    out.push({ duration: 0, target }, { duration: stepDuration, target });
  }
  return out;
}

/** From `base`, jump to `peak`, hold it, and fall back to `base` to watch the recovery. */
export function spike(
  base: number,
  peak: number,
  hold: string | number,
  recovery: string | number,
): StageInput[] {
  return [
    { duration: 0, target: peak },
    { duration: hold, target: peak },
    { duration: 0, target: base },
    { duration: recovery, target: base },
  ];
}
