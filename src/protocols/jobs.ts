import { RunStopped } from "../core/errors.js";
import type { StatsRecorder } from "../stats/recorder.js";
import type { HttpResponse } from "./http/response.js";
import type { SseOptions, SseResult } from "./sse/types.js";

/**
 * What a job needs of its HTTP session (HttpSession has it). Declared here, not imported, so
 * that the session, which offers `job()`, and this file do not import each other.
 */
export interface JobSession {
  resolve(url: string, query?: undefined): URL;
  request(
    method: string,
    url: string,
    opts: {
      json?: unknown;
      body?: string | Uint8Array;
      headers?: Record<string, string>;
      name?: string;
      timeout: number;
    },
  ): Promise<HttpResponse>;
  get(url: string, opts: { name: string; timeout: number }): Promise<HttpResponse>;
  sse(url: string, opts: SseOptions): Promise<SseResult>;
}

/** What `done` says about a status: still going, or one of the two ends. */
export type JobState = "pending" | "completed" | "failed";

/** A URL, or how to find it in the submit response (its JSON body, and the response). */
export type JobUrl = string | ((submitJson: any, res: HttpResponse) => string);

export interface JobOptions {
  /** Stat name of the JOB; defaults to the submit URL's path. */
  name?: string;
  submit: {
    url: string;
    /** Default POST. */
    method?: string;
    json?: unknown;
    body?: string | Uint8Array;
    headers?: Record<string, string>;
    /** HTTP stat name of the submit request; defaults to its URL. */
    name?: string;
  };
  /** Where to poll the job's status. Default: the submit response's Location header. */
  status?: JobUrl;
  /** Instead of polling: an SSE stream of status events, each passed (as JSON if it parses) to `done`. */
  stream?: JobUrl;
  poll?: {
    /** Seconds between the end of one poll and the next. Default 0.5. */
    interval?: number;
    /** Seconds from submission until the job counts as timed out, also with `stream`. Default 60. */
    timeout?: number;
  };
  /**
   * HTTP (or SSE) stat name of the status requests; defaults to the status URL's path with the
   * job's id (a value of the submit response, or anything id-like) replaced by "[id]".
   */
  statusName?: string;
  /** Reads a status. Default: `.status` (or `.state`, or `.status.state`) against common values. */
  done?: (statusJson: any) => JobState;
}

export interface JobResult {
  /** True when the job completed. */
  ok: boolean;
  state: "completed" | "failed" | "timeout";
  /** Status requests made (0 with `stream`). */
  polls: number;
  /** The submit request's latency; null when it got no response. */
  submitMs: number | null;
  /** From submission to the end state (or to the timeout). */
  completionMs: number;
  /** The last status seen: the final status document, or the final stream event's data. */
  result: any;
  /** The failure as recorded; null when the job completed. */
  error: string | null;
}

const COMPLETED = new Set([
  "completed",
  "complete",
  "succeeded",
  "success",
  "successful",
  "done",
  "finished",
]);
const FAILED = new Set([
  "failed",
  "failure",
  "error",
  "errored",
  "cancelled",
  "canceled",
  "expired",
  "rejected",
  "aborted",
]);

function statusText(json: unknown): string | undefined {
  if (typeof json !== "object" || json === null) return undefined;
  const j = json as { status?: unknown; state?: unknown };
  let s = j.status ?? j.state;
  if (typeof s === "object" && s !== null) {
    const inner = s as { state?: unknown; status?: unknown };
    s = inner.state ?? inner.status;
  }
  return typeof s === "string" ? s : undefined;
}

/** The default `done`: common status words, anything else is still pending. */
export function jobState(json: unknown): JobState {
  const s = statusText(json)?.toLowerCase();
  if (s === undefined) return "pending";
  if (COMPLETED.has(s)) return "completed";
  if (FAILED.has(s)) return "failed";
  return "pending";
}

interface JobContext {
  recorder: StatsRecorder;
  signal: AbortSignal;
}

const ID_LIKE = /^(?:\d+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-z_-]{16,})$/i;

/** A status path as a stat name: one endpoint for all jobs, not one per job id. */
function statName(url: URL, submitJson: unknown): string {
  const ids = new Set<string>();
  if (typeof submitJson === "object" && submitJson !== null) {
    for (const v of Object.values(submitJson)) {
      if (typeof v === "string" || typeof v === "number") ids.add(String(v));
    }
  }
  return url.pathname
    .split("/")
    .map((seg) => (seg !== "" && (ids.has(decodeURIComponent(seg)) || ID_LIKE.test(seg)) ? "[id]" : seg))
    .join("/");
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Sleeps, but not past the run's hard stop. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new RunStopped());
    const onAbort = (): void => {
      clearTimeout(t);
      reject(new RunStopped());
    };
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export async function runJob(session: JobSession, ctx: JobContext, opts: JobOptions): Promise<JobResult> {
  const method = (opts.submit.method ?? "POST").toUpperCase();
  const name = opts.name ?? session.resolve(opts.submit.url).pathname;
  const done = opts.done ?? jobState;
  const intervalMs = (opts.poll?.interval ?? 0.5) * 1000;
  const timeoutMs = (opts.poll?.timeout ?? 60) * 1000;
  const t0 = performance.now();
  const deadline = t0 + timeoutMs;
  let polls = 0;
  let submitMs: number | null = null;
  let bytes = 0;
  let status = 0;
  let result: unknown;

  const finish = (state: JobResult["state"], error: string | null): JobResult => {
    const completionMs = performance.now() - t0;
    const rec = ctx.recorder;
    rec.request("JOB", method, name, completionMs * 1000, -1, bytes, error, status);
    rec.count("JOB", method, name, state);
    if (submitMs !== null) rec.metric("JOB", method, name, "submit", submitMs);
    if (opts.stream === undefined && submitMs !== null) rec.metric("JOB", method, name, "polls", polls);
    return { ok: state === "completed", state, polls, submitMs, completionMs, result, error };
  };
  const judge = (json: unknown): JobResult | undefined => {
    const state = done(json);
    if (state === "pending") return undefined;
    result = json;
    if (state === "completed") return finish("completed", null);
    return finish("failed", `job failed: ${statusText(json) ?? "failed"}`);
  };

  try {
    const sub = await session.request(method, opts.submit.url, {
      ...(opts.submit.json !== undefined ? { json: opts.submit.json } : {}),
      ...(opts.submit.body !== undefined ? { body: opts.submit.body } : {}),
      ...(opts.submit.headers ? { headers: opts.submit.headers } : {}),
      ...(opts.submit.name !== undefined ? { name: opts.submit.name } : {}),
      // A short job timeout must not cut off a submission that is merely slow to be accepted.
      timeout: Math.max(timeoutMs / 1000, 10),
    });
    bytes += sub.body.length;
    status = sub.status;
    if (sub.error !== null || sub.status >= 400) {
      return finish("failed", `job failed: submit ${sub.error ?? `HTTP ${sub.status}`}`);
    }
    submitMs = sub.elapsedMs;
    const submitJson = parseJson(sub.text());
    result = submitJson;
    // Some services finish small jobs inline: the submit response is already the end state.
    const inline = judge(submitJson);
    if (inline) return inline;

    const where = opts.stream ?? opts.status;
    let target: string | undefined;
    try {
      target = typeof where === "function" ? where(submitJson, sub) : (where ?? sub.header("location"));
    } catch (err) {
      return finish(
        "failed",
        `job failed: no status URL (${err instanceof Error ? err.message : String(err)})`,
      );
    }
    if (typeof target !== "string" || target === "") {
      return finish("failed", "job failed: no status URL (give `status`, or answer with a Location header)");
    }
    const targetUrl = session.resolve(target, undefined);
    const pollName = opts.statusName ?? statName(targetUrl, submitJson);

    if (opts.stream !== undefined) {
      let end: JobResult | undefined;
      const s = await session.sse(targetUrl.href, {
        name: pollName,
        timeout: Math.max(0.001, (deadline - performance.now()) / 1000),
        onEvent: (ev) => {
          const json = parseJson(ev.data) ?? ev.data;
          result = json;
          end = judge(json);
          return end ? "stop" : undefined;
        },
      });
      if (end) return end;
      if (s.end === "timeout") return finish("timeout", "job timeout");
      return finish("failed", `job failed: stream ${s.error ?? "ended"}`);
    }

    for (;;) {
      const left = deadline - performance.now();
      if (left <= 0) return finish("timeout", "job timeout");
      await sleep(Math.min(intervalMs, left), ctx.signal);
      const r = await session.get(targetUrl.href, {
        name: pollName,
        timeout: Math.max(1, (deadline - performance.now()) / 1000),
      });
      polls++;
      bytes += r.body.length;
      status = r.status;
      if (r.error === null && r.status < 400) {
        const json = parseJson(r.text());
        result = json;
        const end = judge(json);
        if (end) return end;
      } else if (r.status >= 400 && r.status < 500 && r.status !== 408 && r.status !== 429) {
        // The job is gone or was never ours; waiting longer cannot help. 5xx and network errors might pass.
        return finish("failed", `job failed: poll HTTP ${r.status}`);
      }
    }
  } catch (err) {
    if (err instanceof RunStopped || ctx.signal.aborted) {
      ctx.recorder.cancelled("JOB", method, name);
      throw err instanceof RunStopped ? err : new RunStopped();
    }
    throw err;
  }
}
