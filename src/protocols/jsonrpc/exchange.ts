import { createParser } from "eventsource-parser";
import type { StatsRecorder } from "../../stats/recorder.js";
import { type HttpResponse, kRecorder } from "../http/response.js";
import type { HttpSession } from "../http/session.js";

/** A JSON-RPC error object as the server sent it. */
export interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

/** What one call, notification or batch gave. Failures are returned, never thrown. */
export interface RpcResult<T = unknown> {
  /** True when the HTTP exchange worked and the reply carried a `result` (for a notification: a 2xx/3xx status). */
  ok: boolean;
  /** The reply's `result` when `ok`. */
  result?: T;
  /** The reply's JSON-RPC error object, when there was one. */
  error?: RpcError;
  /** HTTP status; 0 when no response arrived (or no request was needed). */
  status: number;
  /** Why the call failed, exactly as recorded in the statistics; undefined when `ok`. */
  failure?: string;
  /**
   * Server messages (notifications, requests) that came in an event stream before the reply,
   * in order. Empty for plain JSON replies.
   */
  messages: unknown[];
  /** The HTTP response: headers, raw body, timings. Undefined when no request was sent. */
  response?: HttpResponse;
}

/** How a judged response is recorded and what the caller gets back. */
export interface Verdict<V> {
  /** null: success; otherwise the failure text the statistics group by. */
  error: string | null;
  value: V;
}

export interface SendSpec<V> {
  httpMethod: "POST" | "DELETE";
  url: string;
  type: string;
  name: string;
  body?: unknown;
  headers: Record<string, string>;
  timeout?: number;
  judge: (res: HttpResponse, recorder: StatsRecorder) => Verdict<V>;
}

/**
 * Sends one HTTP request through the user's session (keep-alive pool, cookies, session headers,
 * redirects, timeouts, TLS settings, hard stop) and has the session record it exactly once, as
 * (type, "", name), with the verdict of `judge`.
 */
export async function sendRecorded<V>(
  session: HttpSession,
  spec: SendSpec<V>,
): Promise<{ value: V; res: HttpResponse }> {
  let value: V | undefined;
  let judged = false;
  const res = await session.request(spec.httpMethod, spec.url, {
    name: spec.name,
    headers: spec.headers,
    stat: { type: spec.type, method: "" },
    ...(spec.body !== undefined ? { json: spec.body } : {}),
    ...(spec.timeout !== undefined ? { timeout: spec.timeout } : {}),
    catchResponse: (r) => {
      const recorder = r[kRecorder];
      if (!recorder) throw new Error("cicada: the HTTP session handed over a response without its recorder");
      let verdict: Verdict<V>;
      try {
        verdict = spec.judge(r, recorder);
      } catch (err) {
        // A judging bug must still leave exactly one sample behind.
        verdict = { error: err instanceof Error ? err.message : String(err), value: undefined as V };
      }
      if (verdict.error === null) r.success();
      else r.failure(verdict.error);
      value = verdict.value;
      judged = true;
    },
  });
  if (!judged) throw new Error("cicada: the HTTP session did not hand the response over");
  return { value: value as V, res };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** A reply object: has an `id` and a `result` or an `error`, and no `method`. */
function isReply(v: unknown): v is Record<string, unknown> {
  return isObject(v) && !("method" in v) && "id" in v && ("result" in v || "error" in v);
}

function rpcError(v: unknown): RpcError {
  if (!isObject(v)) return { code: 0, message: String(v) };
  const e: RpcError = {
    code: typeof v.code === "number" ? v.code : 0,
    message: typeof v.message === "string" ? v.message : JSON.stringify(v.message ?? ""),
  };
  if ("data" in v) e.data = v.data;
  return e;
}

export const errorText = (e: RpcError): string => `RPC error ${e.code}: ${e.message}`;

function isEventStream(res: HttpResponse): boolean {
  return (res.header("content-type") ?? "").toLowerCase().includes("text/event-stream");
}

/** The JSON messages of a body: one JSON value, or the `data` of each event of an event stream. */
export function bodyMessages(res: HttpResponse): { messages: unknown[]; malformed: boolean } {
  const text = res.text();
  if (isEventStream(res)) {
    const messages: unknown[] = [];
    let malformed = false;
    const parser = createParser({
      onEvent(ev) {
        if (ev.data === "") return;
        try {
          messages.push(JSON.parse(ev.data));
        } catch {
          malformed = true;
        }
      },
    });
    parser.feed(text);
    // A stream cut right after its last data line still carries that event.
    if (!/\n\n$|\r\n\r\n$|\r\r$/.test(text)) parser.feed("\n\n");
    return { messages, malformed };
  }
  if (text.trim() === "") return { messages: [], malformed: false };
  try {
    return { messages: [JSON.parse(text)], malformed: false };
  } catch {
    return { messages: [], malformed: true };
  }
}

/** Judges the reply to one request with id `id`. */
export function judgeCall<T>(res: HttpResponse, id: number): Verdict<RpcResult<T>> {
  const base = { status: res.status, response: res };
  const fail = (failure: string, extra: Partial<RpcResult<T>> = {}): Verdict<RpcResult<T>> => ({
    error: failure,
    value: { ok: false, failure, messages: [], ...base, ...extra },
  });
  if (res.error !== null) return fail(res.error);
  const { messages, malformed } = bodyMessages(res);
  const reply = messages.find((m) => isReply(m) && m.id === id) as Record<string, unknown> | undefined;
  const others = messages.filter((m) => !isReply(m));
  if (!reply) {
    const stray = messages.find(isReply);
    // A server error reply for an unparseable request carries id null.
    if (stray && stray.id === null && "error" in stray) {
      const error = rpcError(stray.error);
      return fail(errorText(error), { error, messages: others });
    }
    if (res.status >= 400) return fail(`HTTP ${res.status}`, { messages: others });
    if (stray) return fail("RPC reply id mismatch", { messages: others });
    if (malformed) return fail("RPC reply not JSON", { messages: others });
    if (messages.length > 0) return fail("RPC reply invalid", { messages: others });
    return fail("RPC no reply", { messages: others });
  }
  if ("error" in reply && reply.error !== undefined && reply.error !== null) {
    const error = rpcError(reply.error);
    return fail(errorText(error), { error, messages: others });
  }
  if (res.status >= 400) return fail(`HTTP ${res.status}`, { messages: others });
  return { error: null, value: { ok: true, result: reply.result as T, messages: others, ...base } };
}

/** Judges the answer to a notification: any 2xx/3xx status will do, the body is not read. */
export function judgeNotification(res: HttpResponse): Verdict<RpcResult<undefined>> {
  const base = { status: res.status, response: res, messages: [] };
  let failure: string | null = null;
  if (res.error !== null) failure = res.error;
  else if (res.status >= 400) {
    const err = bodyMessages(res).messages.find((m) => isObject(m) && isObject(m.error)) as
      | Record<string, unknown>
      | undefined;
    failure = err ? errorText(rpcError(err.error)) : `HTTP ${res.status}`;
  }
  return failure === null
    ? { error: null, value: { ok: true, ...base } }
    : { error: failure, value: { ok: false, failure, ...base } };
}

/** Judges a batch reply: one result per request id, in the order sent. */
export function judgeBatch(res: HttpResponse, ids: readonly number[]): Verdict<RpcResult[]> {
  const base = { status: res.status, response: res };
  const all = (failure: string): Verdict<RpcResult[]> => ({
    error: failure,
    value: ids.map(() => ({ ok: false, failure, messages: [], ...base })),
  });
  if (res.error !== null) return all(res.error);
  const { messages, malformed } = bodyMessages(res);
  const replies = messages.flatMap((m) => (Array.isArray(m) ? m : [m])).filter(isReply);
  if (replies.length === 0) {
    if (res.status >= 400) return all(`HTTP ${res.status}`);
    return all(malformed ? "RPC reply not JSON" : messages.length > 0 ? "RPC reply invalid" : "RPC no reply");
  }
  let first: string | null = res.status >= 400 ? `HTTP ${res.status}` : null;
  const value = ids.map((id): RpcResult => {
    const reply = replies.find((r) => r.id === id);
    let failure: string | undefined;
    let error: RpcError | undefined;
    if (!reply) failure = "RPC reply missing from batch";
    else if (reply.error !== undefined && reply.error !== null) {
      error = rpcError(reply.error);
      failure = errorText(error);
    } else if (res.status >= 400) failure = `HTTP ${res.status}`;
    first ??= failure ?? null;
    if (failure !== undefined)
      return { ok: false, failure, ...(error ? { error } : {}), messages: [], ...base };
    return { ok: true, result: reply!.result, messages: [], ...base };
  });
  return { error: first, value };
}
