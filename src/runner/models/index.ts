// Which load model drives a plan: a LoadShape if the loadfile has one, else the plan's settings.
import type { LoadShape } from "../../api/shape.js";
import type { RunPlan } from "../plan.js";
import { ClosedRamp } from "./closed-ramp.js";
import type { LoadModel } from "./model.js";
import { OpenRate } from "./open-rate.js";
import { RateStages } from "./rate-stages.js";
import { ShapeModel } from "./shape.js";
import { UserStages } from "./user-stages.js";

export { LOAD_TICK_MS, type LoadModel, type LoadStep } from "./model.js";

export function loadModelFor(
  plan: Pick<RunPlan, "users" | "spawnRate" | "rate" | "stages">,
  shape?: LoadShape,
): LoadModel {
  if (shape) return new ShapeModel(shape);
  if (plan.rate !== null) return plan.stages ? new RateStages(plan.stages) : new OpenRate(plan.rate);
  if (plan.stages) return new UserStages(plan.stages);
  return new ClosedRamp(plan.users, plan.spawnRate);
}
