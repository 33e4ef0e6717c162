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

/**
 * An error meant for the user: printed as one line, no stack, with its exit code. Every error
 * Cicada throws on purpose is one of the subclasses below, so callers of the programmatic API
 * can tell them apart with `instanceof` or by `code`.
 */
export class CicadaError extends Error {
  /** A stable name for the kind of error, e.g. "ERR_CICADA_USAGE". */
  readonly code: string;
  constructor(
    message: string,
    readonly exitCode: number,
    code: string,
  ) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }

  /** The same error, of the same class, with `prefix: ` before its message (where it came from). */
  within(prefix: string): CicadaError {
    const e = Object.create(Object.getPrototypeOf(this)) as CicadaError;
    Object.assign(e, this);
    Object.defineProperty(e, "message", {
      value: `${prefix}: ${this.message}`,
      writable: true,
      configurable: true,
    });
    Object.defineProperty(e, "stack", {
      value: `${e.name}: ${e.message}`,
      writable: true,
      configurable: true,
    });
    return e;
  }
}

/** Bad settings, a bad loadfile or config file, an output that cannot be written (exit 2). */
export class UsageError extends CicadaError {
  constructor(message: string) {
    super(message, ExitCode.Usage, "ERR_CICADA_USAGE");
  }
}

/** A target host did not accept connections before the run started (exit 4). */
export class TargetUnreachable extends CicadaError {
  constructor(message: string) {
    super(message, ExitCode.Unreachable, "ERR_CICADA_UNREACHABLE");
  }
}

/** A master and its workers did not find each other in time (exit 4). */
export class WorkersUnreachable extends CicadaError {
  constructor(message: string) {
    super(message, ExitCode.Unreachable, "ERR_CICADA_WORKERS");
  }
}

/** Stopped by a signal before the run began (exit 130). */
export class Interrupted extends CicadaError {
  constructor(message: string) {
    super(message, ExitCode.Interrupted, "ERR_CICADA_INTERRUPTED");
  }
}

/** Thrown into user code when the run stops and the stop timeout has passed. */
export class RunStopped extends Error {
  constructor() {
    super("run stopped");
    this.name = "RunStopped";
  }
}
