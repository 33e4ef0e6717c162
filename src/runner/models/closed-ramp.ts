// Closed model, ramp (`-u N -r R`): the settings decide how many users. The unit is users alive,
// each looping over its tasks; the count climbs from 0 toward N by R users a second, then holds.
// The web UI may move the target at any time, and the count ramps to it the same way, up or down.
// It never ends the run by itself: --run-time, --iterations or a stop does.
import type { LoadModel, LoadStep } from "./model.js";

export class ClosedRamp implements LoadModel {
  /** The ramp in progress: from `from` users at `atMs` toward `users`. */
  private from = 0;
  private atMs = 0;
  /** The users asked for at the latest tick. */
  private current = 0;

  constructor(
    private users: number,
    private spawnRate: number,
  ) {}

  tick(elapsedMs: number): LoadStep {
    // A spawn rate at or above the change means "all at once", not "one now, the rest at the
    // next tick"; otherwise one user starts at once and the rest follow at the spawn rate.
    const gap = Math.abs(this.users - this.from);
    const step =
      this.spawnRate >= gap
        ? gap
        : Math.min(gap, Math.floor((this.spawnRate * (elapsedMs - this.atMs)) / 1000) + 1);
    this.current = this.users >= this.from ? this.from + step : this.from - step;
    return { kind: "users", users: this.current, ramping: this.current !== this.users };
  }

  setUsers(users: number, spawnRate: number | undefined, atMs: number): void {
    this.from = this.current;
    this.atMs = atMs;
    this.users = users;
    if (spawnRate !== undefined) this.spawnRate = spawnRate;
  }
}
