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

/** Thrown into user code when the run stops and the stop timeout has passed. */
export class RunStopped extends Error {
  constructor() {
    super("run stopped");
    this.name = "RunStopped";
  }
}
