// Open model, constant rate (`--rate R`): the settings decide how many iterations start, whatever
// the target's speed. The unit is arrivals per second (iterations started, each by a free user of
// the pool, which grows up to --max-users). The web UI may change the rate at any time. It never
// ends the run by itself: --run-time, --iterations or a stop does.
import type { LoadModel, LoadStep } from "./model.js";

export class OpenRate implements LoadModel {
  constructor(private rate: number) {}

  /** The same rate whatever the time. */
  tick(_elapsedMs: number): LoadStep {
    return { kind: "rate", rate: this.rate };
  }

  setRate(rate: number): void {
    this.rate = rate;
  }
}
