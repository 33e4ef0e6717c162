// The one small interface every load model shows the coordinator: what load to have now.
import type { StopReason } from "../run.js";

/** How often the coordinator asks its load model for the load of now. */
export const LOAD_TICK_MS = 100;

/**
 * What a load model asks for at one tick. Every step is absolute (the load of now, not a change
 * to it), so asking for the same thing twice changes nothing. A step describes the whole load:
 * users and arrivals never run side by side, so a users step ends the arrivals and a rate or
 * burst step ends the users.
 */
export type LoadStep =
  /** Closed model: this many users alive, of these classes (all when absent). */
  | { kind: "users"; users: number; userClasses?: readonly string[]; ramping: boolean }
  /** Open model: this many arrivals per second from now on. */
  | { kind: "rate"; rate: number }
  /** Open model: this many arrivals at once, now; the rate goes on as it was. */
  | { kind: "burst"; count: number }
  /** Nothing new. */
  | { kind: "hold" }
  /** The model is over: the run stops gracefully, for this reason. */
  | { kind: "end"; reason: StopReason }
  /** The model broke: the run stops as failed (`fatal`), with `notice` on the log. */
  | { kind: "fail"; fatal: string; notice: string };

export interface LoadModel {
  /**
   * The load at `elapsedMs`, milliseconds since the run's clock started; called every
   * LOAD_TICK_MS with a time that never goes back. `ramping` on a users step means the model has
   * not reached the count it aims for yet (the run is still spawning).
   */
  tick(elapsedMs: number): LoadStep;
  /** Live edit (web UI): ramp from the users of now to `users`. Absent when the model has no such knob. */
  setUsers?(users: number, spawnRate: number | undefined, atMs: number): void;
  /** Live edit (web UI): the arrival rate from now on. Absent when the model has no such knob. */
  setRate?(rate: number): void;
}
