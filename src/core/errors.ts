/** Documented process exit codes. Scripts depend on these: never renumber. */
export const ExitCode = {
  Ok: 0,
  /** Some requests failed or user code threw; `--exit-code-on-error` changes it. */
  Failures: 1,
  /** Bad flags, bad config, or a loadfile that does not compile or load. */
  Usage: 2,
  /** A threshold failed, or a comparison with a baseline found a regression. */
  Thresholds: 3,
  /** The target host could not be reached before the run started (or a master and its workers could not find each other). */
  Unreachable: 4,
  /** An internal error: a bug in Cicada. */
  Internal: 70,
  /** Stopped at once by a second Ctrl-C / SIGTERM. */
  Interrupted: 130,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** An error meant for the user: printed as one line, no stack, with its exit code. */
export class CicadaError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.Usage,
  ) {
    super(message);
    this.name = "CicadaError";
  }
}

/** Thrown into user code when the run stops and the stop timeout has passed. */
export class RunStopped extends Error {
  constructor() {
    super("run stopped");
    this.name = "RunStopped";
  }
}
