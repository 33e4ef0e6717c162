export { RunStopped } from "../core/errors.js";

/** Throw from a task (or call `this.stopUser()`) to stop this user for the rest of the run. */
export class StopUser extends Error {
  constructor(message = "user stopped") {
    super(message);
    this.name = "StopUser";
  }
}

/** Thrown by `TaskSet.interrupt()`: hands control back to the parent user or task set. */
export class InterruptTaskSet extends Error {
  readonly reschedule: boolean;
  constructor(reschedule = true) {
    super("task set interrupted");
    this.name = "InterruptTaskSet";
    this.reschedule = reschedule;
  }
}
