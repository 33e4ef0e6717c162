import { type HttpEngine, HttpSession, SharedPools } from "../protocols/http/session.js";
import { type CheckOptions, type Checks, runChecks } from "./checks.js";
import { kAttach, kClose, type ScheduleRow, type UserContext } from "./context.js";
import { InterruptTaskSet, RunStopped, StopUser } from "./errors.js";
import { type TaskOwner, TaskSetBase, type TaskSpec } from "./tasks.js";
import type { WaitTime } from "./wait.js";

/** Custom metric sample for protocol-free users. */
export interface RequestRecord {
  /** Type column, e.g. "gRPC", "DB", "WS". */
  type: string;
  method?: string;
  name: string;
  latencyMs: number;
  ttfbMs?: number;
  bytes?: number;
  /** A failure reason, or omitted/null for success. */
  error?: string | null;
}

/**
 * A simulated user. Subclass it, decorate methods with `@task`, and export the class from the
 * loadfile. Use `User` for custom clients, `HttpUser` for HTTP.
 */
export class User implements TaskOwner {
  /** Relative share of users of this class; ignored when `fixedCount` is set. */
  static weight = 1;
  /** Exactly this many users of this class, spawned before the weighted ones. */
  static fixedCount = 0;
  /** Base URL; `-H/--host` overrides it. */
  static host: string | undefined = undefined;
  /** Seconds to wait after each task; default is no wait. */
  static waitTime: WaitTime | undefined = undefined;
  /** Tasks given as a list instead of (or besides) `@task` methods. */
  static tasks: TaskSpec[] | undefined = undefined;
  /** Tags applied to every task of this class. */
  static tags: string[] | undefined = undefined;
  /** Set on a base class that is exported but must not run by itself. */
  static abstract = false;

  #ctx: UserContext | undefined;

  [kAttach](ctx: UserContext): void {
    this.#ctx = ctx;
  }

  async [kClose](_force: boolean): Promise<void> {}

  protected get context(): UserContext {
    if (!this.#ctx) throw new Error("this user is not running yet (used in a constructor?)");
    return this.#ctx;
  }

  /** Unique within the run's worker, from 0. */
  get userId(): number {
    return this.context.userId;
  }

  get host(): string | undefined {
    return this.context.host;
  }

  /**
   * Trace replay (`--schedule FILE`): the row of the iteration running now, with its offset, its
   * line and its `payload` (the row's other fields); undefined in runs without a schedule.
   */
  get schedule(): ScheduleRow | undefined {
    return this.context.schedule;
  }

  /** True once the run is stopping: long loops inside a task should return. */
  get stopping(): boolean {
    return this.context.isStopping();
  }

  /** Aborted when the run is cut short; pass it to your own clients. */
  get signal(): AbortSignal {
    return this.context.signal;
  }

  /** Called once when the user starts, before its first task. */
  onStart(): void | Promise<void> {}

  /** Called once when the user stops. */
  onStop(): void | Promise<void> {}

  /** Sleep that ends early when the run stops. */
  sleep(seconds: number): Promise<void> {
    return this.context.sleep(seconds);
  }

  /** Stops this user for the rest of the run. */
  stopUser(): never {
    throw new StopUser();
  }

  /**
   * Evaluates named checks on a value (usually a response) and records each one's pass or
   * failure; returns true if all passed. See `check()`.
   */
  check<T>(value: T, checks: Checks<T>, options: CheckOptions = {}): boolean {
    return runChecks(this.context.recorder, value, checks, options);
  }

  /** Records a sample from a custom client, so it shows up like any request. */
  record(r: RequestRecord): void {
    const latencyUs = r.latencyMs * 1000;
    this.context.recorder.request(
      r.type,
      r.method ?? "",
      r.name,
      latencyUs,
      r.ttfbMs === undefined ? -1 : r.ttfbMs * 1000,
      r.bytes ?? 0,
      r.error ?? null,
    );
  }

  /**
   * Times `fn` and records it under (type, name): a thrown error is a failure and is rethrown.
   */
  async measure<T>(type: string, name: string, fn: () => Promise<T>, method = ""): Promise<T> {
    const t0 = performance.now();
    try {
      const v = await fn();
      this.record({ type, method, name, latencyMs: performance.now() - t0 });
      return v;
    } catch (err) {
      if (err instanceof RunStopped || this.signal.aborted) {
        this.context.recorder.cancelled(type, method, name);
        throw err;
      }
      const msg = err instanceof Error ? err.message : String(err);
      this.record({ type, method, name, latencyMs: performance.now() - t0, error: msg });
      throw err;
    }
  }
}

/** A user with an HTTP client: `this.client`, with cookies, keep-alive and redirects. */
export class HttpUser extends User {
  /** Verify TLS certificates. Turn off for self-signed test targets. */
  static verifyTls = true;
  /**
   * "auto" (default): Cicada's HTTP/1.1 keep-alive client, built for throughput, switching to
   * undici when HTTP(S)_PROXY is set or a TLS server speaks only HTTP/2. "fast" or "undici"
   * forces one. The run's `--http-engine` (CICADA_HTTP_ENGINE, `httpEngine`), when given, wins
   * over this for every class.
   */
  static engine: HttpEngine = "auto";
  /**
   * 0 (default): each user has its own keep-alive connection per origin, like a real client.
   * N > 0: the users of this class share N connections per origin and worker, queueing when
   * all are busy — for 100,000 mostly idle users on a few thousand sockets. On either engine;
   * cookies stay per user. A request's `timeout` covers its wait in the queue.
   */
  static sharedConnections = 0;
  /**
   * Local addresses new connections bind to, in turn, e.g. ["127.0.0.1", "127.0.0.2"]: each
   * source address has its own ~28,000 ephemeral ports towards one target address and port.
   * Fast engine only: undici connects from the default source address (the run warns).
   */
  static sourceAddresses: string[] = [];
  #client: HttpSession | undefined;

  override [kAttach](ctx: UserContext): void {
    super[kAttach](ctx);
    const cls = this.constructor as typeof HttpUser;
    const verifyTls = ctx.verifyTls && cls.verifyTls;
    const shared = cls.sharedConnections > 0;
    this.#client = new HttpSession({
      recorder: ctx.recorder,
      baseUrl: ctx.host,
      signal: ctx.signal,
      verifyTls,
      acceptStatus: ctx.acceptStatus,
      tracer: ctx.tracer ?? null,
      // --http-engine (the run's setting) wins over the class's choice.
      engine: ctx.httpEngine ?? cls.engine,
      sourceAddresses: cls.sourceAddresses,
      ...(shared
        ? {
            sharedPools: SharedPools.forWorker(
              cls,
              cls.sharedConnections,
              verifyTls,
              ctx.signal,
              cls.sourceAddresses,
            ),
          }
        : {}),
    });
  }

  override async [kClose](force: boolean): Promise<void> {
    await this.#client?.close(force);
  }

  get client(): HttpSession {
    if (!this.#client) throw new Error("this.client is available from onStart() on, not in the constructor");
    return this.#client;
  }
}

/**
 * A group of tasks a user enters as one of its tasks, and stays in until `interrupt()`.
 * `this.user` is the owning user; `this.client` is its HTTP client.
 */
export class TaskSet<U extends User = User> extends TaskSetBase implements TaskOwner {
  static tasks: TaskSpec[] | undefined = undefined;
  static tags: string[] | undefined = undefined;
  /** Overrides the user's wait time while inside this set. */
  static waitTime: WaitTime | undefined = undefined;
  static readonly sequential: boolean = false;

  readonly parent: TaskOwner;

  constructor(parent: TaskOwner) {
    super();
    this.parent = parent;
  }

  get user(): U {
    let p: TaskOwner = this.parent;
    while (p instanceof TaskSet) p = p.parent;
    return p as U;
  }

  get client(): HttpSession {
    const u = this.user as unknown as { client?: HttpSession };
    if (!(this.user instanceof HttpUser) || !u.client) throw new Error("this.client needs an HttpUser");
    return u.client;
  }

  onStart(): void | Promise<void> {}
  onStop(): void | Promise<void> {}

  /** Leaves this task set and returns to the parent. */
  interrupt(reschedule = true): never {
    throw new InterruptTaskSet(reschedule);
  }

  sleep(seconds: number): Promise<void> {
    return this.parent.sleep(seconds);
  }
}

/** A task set that runs its tasks in declaration order, over and over. */
export class SequentialTaskSet<U extends User = User> extends TaskSet<U> {
  static override readonly sequential: boolean = true;
}

export type UserClass = (abstract new () => User) & {
  readonly name: string;
  weight: number;
  fixedCount: number;
  host: string | undefined;
  waitTime: WaitTime | undefined;
  tasks: TaskSpec[] | undefined;
  tags: string[] | undefined;
  abstract: boolean;
  readonly prototype: User;
};

export function isUserClass(x: unknown): x is UserClass {
  return typeof x === "function" && x.prototype instanceof User;
}
