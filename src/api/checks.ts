import { HttpResponse, kRecorded, kRecorder, kStatName } from "../protocols/http/response.js";
import type { StatsRecorder } from "../stats/recorder.js";

/** Named predicates over a value: `{ "status is 200": (r) => r.status === 200 }`. */
export type Checks<T> = Record<string, (value: T) => unknown>;

export interface CheckOptions {
  /**
   * When a check fails and the value is an HTTP response, count that request as failed too,
   * with "check failed: NAME" as its error. By default a failed check only lowers the check's
   * pass rate.
   */
  failRequest?: boolean;
}

const kWorkerRecorder = Symbol.for("cicada.workerRecorder");

/** The worker sets its recorder here, for checks on values that are not responses. */
export function setWorkerRecorder(r: StatsRecorder | undefined): void {
  (globalThis as Record<symbol, unknown>)[kWorkerRecorder] = r;
}

/**
 * Evaluates each named check and records its pass or failure; returns true if all passed.
 * A check that throws counts as failed. Checks on a response count into the books of the
 * user that made the request; on other values, into the worker's (`this.check()` on a user is
 * exact in every case).
 */
export function check<T>(value: T, checks: Checks<T>, options: CheckOptions = {}): boolean {
  const fromResponse = value instanceof HttpResponse ? value[kRecorder] : undefined;
  const recorder =
    fromResponse ?? ((globalThis as Record<symbol, unknown>)[kWorkerRecorder] as StatsRecorder | undefined);
  return runChecks(recorder, value, checks, options);
}

/** Shared by `check()` and `User.check()`. */
export function runChecks<T>(
  recorder: StatsRecorder | undefined,
  value: T,
  checks: Checks<T>,
  options: CheckOptions,
): boolean {
  let all = true;
  let firstFailed: string | undefined;
  for (const [name, fn] of Object.entries(checks)) {
    let ok: boolean;
    try {
      ok = Boolean(fn(value));
    } catch {
      ok = false;
    }
    recorder?.check(name, ok);
    if (!ok) {
      all = false;
      firstFailed ??= name;
    }
  }
  if (!all && options.failRequest && value instanceof HttpResponse) {
    const reason = `check failed: ${firstFailed}`;
    if (!value[kRecorded]) {
      // Inside catchResponse: the verdict is recorded when the callback returns.
      value.failure(reason);
    } else if (value.ok || value.verdict?.ok) {
      value[kRecorder]?.failRecorded("HTTP", value.method, value[kStatName], reason);
    }
  }
  return all;
}
