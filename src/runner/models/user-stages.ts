// Closed model, stages (`--stages 30s:100,1m:100,10s:0` without --rate): the stages decide how
// many users. The unit is users alive; the count moves linearly from each stage's start to its
// target (0 before the first), rounded to whole users, up and down. The run ends with the last
// stage (reason `stages`), or earlier by --run-time, --iterations or a stop.
import { type Stage, stageLevel } from "../stages.js";
import type { LoadModel, LoadStep } from "./model.js";

export class UserStages implements LoadModel {
  constructor(private readonly stages: readonly Stage[]) {}

  tick(elapsedMs: number): LoadStep {
    const level = stageLevel(this.stages, elapsedMs / 1000);
    if (level === null) return { kind: "end", reason: "stages" };
    return { kind: "users", users: Math.round(level), ramping: false };
  }
}
