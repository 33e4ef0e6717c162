import type { HttpEngine } from "../protocols/http/session.js";
import type { RequestTracer } from "../protocols/http/tracing.js";
import type { StatsRecorder } from "../stats/recorder.js";

/** One iteration of a replayed trace (`--schedule`), as the loadfile sees it in `this.schedule`. */
export interface ScheduleRow {
  /** Milliseconds from the start of the run at which the iteration was due. */
  offsetMs: number;
  /** Line of the schedule file it came from (1-based). */
  line: number;
  /** The row's other fields: JSON values from JSONL, strings from CSV. */
  payload: Record<string, unknown>;
}

/** What the runtime hands each user when it starts. Not part of the public API. */
export interface UserContext {
  readonly userId: number;
  readonly className: string;
  /** `-H` if given, else the class's static host. */
  readonly host: string | undefined;
  readonly recorder: StatsRecorder;
  /** Aborted when the stop timeout is over; in-flight calls then count as cancelled. */
  readonly signal: AbortSignal;
  readonly verifyTls: boolean;
  /** `--http-engine`: wins over the class's static engine; null or absent when not given. */
  readonly httpEngine?: HttpEngine | null;
  /** Status codes ≥ 400 that count as successes (e.g. 429 in a rate-limit test); null for none. */
  readonly acceptStatus: ReadonlySet<number> | null;
  /** `--otel-traces`: spans for the HTTP requests; null when tracing is off. */
  readonly tracer?: RequestTracer | null;
  /** Trace replay: the row of the iteration running now; undefined without --schedule. */
  readonly schedule?: ScheduleRow | undefined;
  isStopping(): boolean;
  /** Resolves after `seconds`, or at once when the user is told to stop. */
  sleep(seconds: number): Promise<void>;
}

export const kAttach: unique symbol = Symbol("cicada.attach");
export const kClose: unique symbol = Symbol("cicada.close");
