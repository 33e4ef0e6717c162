import { UsageError } from "../core/errors.js";
import { parseDuration } from "../core/parse.js";
import type { StageInput } from "../core/types.js";

export type { StageInput };

/** One step of a load shape: move linearly to `target` over `durationSec`. */
export interface Stage {
  durationSec: number;
  target: number;
}

function checkTarget(target: number, where: string): number {
  if (!Number.isFinite(target) || target < 0 || !Number.isInteger(target)) {
    throw new UsageError(`${where}: target must be a non-negative integer, got ${target}`);
  }
  return target;
}

/**
 * `--stages 30s:100,2m:100,10s:0`, or the same as a list of {duration, target}: ramp to 100
 * users over 30 s, hold 2 minutes, ramp down to 0 over 10 s.
 */
export function parseStages(input: string | readonly StageInput[], flag = "--stages"): Stage[] {
  const items: StageInput[] =
    typeof input === "string"
      ? input
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s.length > 0)
          .map((s) => {
            const m = /^([^:]+):(\d+)$/.exec(s);
            if (!m) {
              throw new UsageError(`${flag}: expected DURATION:TARGET items such as 30s:100, got "${s}"`);
            }
            return { duration: m[1]!, target: Number(m[2]) };
          })
      : [...input];
  if (items.length === 0) throw new UsageError(`${flag}: no stages given`);
  return items.map((it, i) => {
    if (typeof it !== "object" || it === null) {
      throw new UsageError(`${flag}: stage ${i + 1} must be {duration, target}`);
    }
    const durationSec = parseDuration(it.duration, flag);
    return { durationSec, target: checkTarget(it.target, `${flag} stage ${i + 1}`) };
  });
}

export function stagesDuration(stages: readonly Stage[]): number {
  return stages.reduce((s, x) => s + x.durationSec, 0);
}

export function stagesPeak(stages: readonly Stage[]): number {
  return stages.reduce((m, x) => Math.max(m, x.target), 0);
}

/** 1-based number of the stage running at `elapsedSec` (the last once all are over). */
export function stageNumber(stages: readonly Stage[], elapsedSec: number): number {
  let end = 0;
  for (const [i, s] of stages.entries()) {
    end += s.durationSec;
    if (elapsedSec < end) return i + 1;
  }
  return stages.length;
}

/**
 * The level at `elapsedSec`, ramping linearly from the previous stage's target (0 before the
 * first); null once every stage is over. A zero-length stage jumps.
 */
export function stageLevel(stages: readonly Stage[], elapsedSec: number): number | null {
  let start = 0;
  let from = 0;
  for (const s of stages) {
    const end = start + s.durationSec;
    if (elapsedSec < end) {
      const frac = s.durationSec > 0 ? (elapsedSec - start) / s.durationSec : 1;
      return from + (s.target - from) * frac;
    }
    start = end;
    from = s.target;
  }
  return null;
}
