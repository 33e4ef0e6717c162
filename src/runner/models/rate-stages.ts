// Open model, stages (`--rate R --stages 30s:50,1m:50`): the stages decide how many iterations
// start. The unit is arrivals per second; the rate moves linearly from each stage's start to its
// target (0 before the first), not rounded, so fractional rates ramp smoothly. The run ends with
// the last stage (reason `stages`), or earlier by --run-time, --iterations or a stop.
import { type Stage, stageLevel } from "../stages.js";
import type { LoadModel, LoadStep } from "./model.js";

export class RateStages implements LoadModel {
  constructor(private readonly stages: readonly Stage[]) {}

  tick(elapsedMs: number): LoadStep {
    const level = stageLevel(this.stages, elapsedMs / 1000);
    if (level === null) return { kind: "end", reason: "stages" };
    return { kind: "rate", rate: level };
  }
}
