import type { IncomingHttpHeaders } from "node:http";
import { createParser } from "eventsource-parser";
import type { Dispatcher } from "undici";
import { RunStopped } from "../../core/errors.js";
import type { StatsRecorder } from "../../stats/recorder.js";
import { meetsSlo, SLO_GOOD, SLO_GOOD_OUTPUT_TOKENS, SLO_JUDGED } from "../../stats/slo.js";
import { type TokenReader, tokenReader } from "./tokens.js";
import type { SseEnd, SseEvent, SseOptions, SseResult, TokenSource } from "./types.js";

/** What the HTTP session lends a stream: its books, stop signal, connection and headers. */
export interface SseContext {
  recorder: StatsRecorder;
  /** The run's hard stop: the stream is cancelled, not failed. */
  signal: AbortSignal;
  dispatcher: Dispatcher;
  url: URL;
  /** The session's headers for this URL (user agent, session headers, cookies). */
  headers: Record<string, string>;
  /** The session's verdict on a status code (honours accepted statuses). */
  statusError: (status: number) => string | null;
  storeCookies: (headers: IncomingHttpHeaders) => void;
  /** One line per kind of network error, as the HTTP client reports them. */
  describeError: (err: unknown) => string;
}

const DEFAULT_TIMEOUT_S = 300;
/** After `[DONE]` the server ends the response at once; one that does not is not waited for long. */
const DONE_GRACE_MS = 1000;

/** A response that is not an event stream is read this far, then dropped. */
const MAX_DISCARD_BYTES = 64 * 1024;

class StreamTimeout extends Error {}

/**
 * Consumes one server-sent event stream and records it as one SSE request, with per-event and
 * per-token timing. Failures are recorded and returned, never thrown; only the run's hard stop
 * throws (RunStopped), after counting the stream as cancelled.
 */
export async function streamSse(ctx: SseContext, opts: SseOptions): Promise<SseResult> {
  const hasBody = opts.json !== undefined || opts.body !== undefined;
  const method = (opts.method ?? (hasBody ? "POST" : "GET")).toUpperCase();
  const name = opts.name ?? ctx.url.pathname;
  const timeoutMs = (opts.timeout ?? DEFAULT_TIMEOUT_S) * 1000;
  const reader = tokenReader(opts.tokens);
  const headers: Record<string, string> = { ...ctx.headers };
  if (opts.headers) for (const [k, v] of Object.entries(opts.headers)) headers[k.toLowerCase()] = v;
  headers.accept ??= "text/event-stream";
  let body: string | Uint8Array | null = opts.body ?? null;
  if (opts.json !== undefined) {
    body = JSON.stringify(opts.json);
    headers["content-type"] ??= "application/json";
  }

  const s = new StreamState(reader, opts.onEvent, ctx.describeError, opts.tokenizer, opts.json);
  const ac = new AbortController();
  const stop = (): void => ac.abort(new RunStopped());
  if (ctx.signal.aborted) return cancel(ctx, method, name);
  ctx.signal.addEventListener("abort", stop, { once: true });
  const timer = setTimeout(() => {
    s.timedOut = true;
    ac.abort(new StreamTimeout());
  }, timeoutMs);

  try {
    const r = await ctx.dispatcher.request({
      origin: ctx.url.origin,
      path: ctx.url.pathname + ctx.url.search,
      method,
      headers,
      body,
      signal: ac.signal,
      // Our own timer bounds the whole stream; undici's must not fire first.
      headersTimeout: timeoutMs + 1000,
      bodyTimeout: timeoutMs + 1000,
    });
    s.ttfb = performance.now() - s.t0;
    s.status = r.statusCode;
    ctx.storeCookies(r.headers);
    const problem = ctx.statusError(r.statusCode) ?? contentTypeError(r.headers["content-type"]);
    await s.consume(r.body, problem);
  } catch (err) {
    s.fail(err);
  } finally {
    clearTimeout(timer);
    ctx.signal.removeEventListener("abort", stop);
  }
  if (ctx.signal.aborted) return cancel(ctx, method, name);
  s.record(ctx.recorder, method, name);
  if (s.userError !== undefined) throw s.userError;
  return s.result();
}

function cancel(ctx: SseContext, method: string, name: string): never {
  ctx.recorder.cancelled("SSE", method, name);
  throw new RunStopped();
}

function contentTypeError(value: string | string[] | undefined): string | null {
  const v = Array.isArray(value) ? value[0] : value;
  const media = (v ?? "").split(";")[0]!.trim().toLowerCase();
  if (media === "text/event-stream") return null;
  return `SSE bad content type: ${media === "" ? "none" : media}`;
}

type Body = Dispatcher.ResponseData["body"];

/** The prompt of an OpenAI-style body: the messages' text, or `prompt`; null for anything else. */
function promptOf(json: unknown): string | null {
  if (typeof json !== "object" || json === null) return null;
  const j = json as { messages?: unknown; prompt?: unknown };
  if (typeof j.prompt === "string") return j.prompt;
  if (Array.isArray(j.prompt)) return j.prompt.filter((x) => typeof x === "string").join("\n");
  if (!Array.isArray(j.messages)) return null;
  const parts: string[] = [];
  for (const m of j.messages as Array<{ content?: unknown }>) {
    const c = m?.content;
    if (typeof c === "string") parts.push(c);
    else if (Array.isArray(c)) {
      for (const p of c as Array<{ text?: unknown }>) if (typeof p?.text === "string") parts.push(p.text);
    }
  }
  return parts.join("\n");
}

/** The timeline of one stream. Every time is from `t0`, the start of the request, in ms. */
class StreamState {
  readonly t0 = performance.now();
  status = 0;
  ttfb = -1;
  bytes = 0;
  readonly events: SseEvent[] = [];
  text = "";
  tokens = 0;
  firstEvent = -1;
  lastEvent = -1;
  firstToken = -1;
  lastToken = -1;
  readonly gaps: number[] = [];
  readonly itl: number[] = [];
  /** When the stream ended, as far as its consumer is concerned. */
  endAt = -1;
  end: SseEnd = "completed";
  error: string | null = null;
  timedOut = false;
  sawDone = false;
  /** An exception thrown by onEvent: rethrown after the stream is recorded. */
  userError: unknown;

  /** The server's counts from `usage`, when it sent them. */
  usageOut: number | undefined;
  usageIn: number | undefined;
  /** What the record said, for the caller's result. */
  outputCount: number | null = null;
  inputCount: number | null = null;
  tpot: number | null = null;

  constructor(
    private readonly reader: TokenReader | null,
    private readonly onEvent: SseOptions["onEvent"],
    private readonly describe: (err: unknown) => string,
    private readonly tokenizer: ((text: string) => number) | undefined,
    /** The request's JSON body, whose prompt the tokenizer counts when the server sends no usage. */
    private readonly json: unknown,
  ) {}

  /** Reads the body to its end (or until the stream is decided), timestamping every chunk. */
  consume(body: Body, problem: string | null): Promise<void> {
    return new Promise<void>((resolve) => {
      let settled = false;
      let graceTimer: NodeJS.Timeout | undefined;
      let at = 0;
      const decoder = new TextDecoder();
      const settle = (destroy: boolean): void => {
        if (settled) return;
        settled = true;
        if (this.endAt < 0) this.endAt = performance.now() - this.t0;
        clearTimeout(graceTimer);
        body.off("data", onData);
        if (destroy && !body.readableEnded) {
          // The rest of the body is of no interest; the connection cannot be reused mid-body.
          body.on("error", () => {});
          body.destroy();
        }
        resolve();
      };
      const parser = createParser({
        onEvent: (m) => {
          if (settled) return;
          const ev: SseEvent = { data: m.data };
          if (m.event !== undefined) ev.event = m.event;
          if (m.id !== undefined) ev.id = m.id;
          const verdict = this.onEventAt(ev, at);
          if (verdict === "done") {
            this.endAt = at;
            graceTimer = setTimeout(() => settle(true), DONE_GRACE_MS);
          } else if (verdict === "stop") settle(true);
        },
        onError: (err) => {
          if (settled || err.type !== "max-buffer-size-exceeded") return;
          this.failWith(`SSE malformed: ${err.message}`);
          settle(true);
        },
      });
      const onData = (chunk: Buffer): void => {
        at = performance.now() - this.t0;
        this.bytes += chunk.length;
        if (problem === null) {
          if (!this.sawDone) parser.feed(decoder.decode(chunk, { stream: true }));
        } else if (this.bytes > MAX_DISCARD_BYTES) settle(true);
      };
      // Decided already; the body is read (up to a point) only to keep the connection reusable.
      if (problem !== null) this.failWith(problem);
      body.on("data", onData);
      body.on("end", () => {
        if (settled) return;
        if (problem === null) {
          parser.feed(decoder.decode());
          // A last event without its blank line is incomplete: the spec drops it, and so do we.
          if (!settled && this.reader?.needsDone && !this.sawDone) this.failWith("SSE closed early");
        }
        settle(false);
      });
      body.on("error", (err) => {
        if (settled) return;
        // Cut off after [DONE] (or by the grace timer): the stream itself was whole.
        if (!this.sawDone) this.fail(err);
        settle(false);
      });
    });
  }

  /** Takes one event; says whether the stream is over. */
  private onEventAt(ev: SseEvent, at: number): "more" | "done" | "stop" {
    this.events.push(ev);
    if (this.firstEvent < 0) this.firstEvent = at;
    else this.gaps.push(at - this.lastEvent);
    this.lastEvent = at;
    if (this.reader) {
      const step = this.reader.step(ev);
      if (step.error !== null) {
        this.failWith(step.error);
        return "stop";
      }
      if (step.tokens > 0) this.addTokens(step.tokens, at);
      this.text += step.text;
      if (step.done) this.sawDone = true;
      if (step.usage?.output !== undefined) this.usageOut = step.usage.output;
      if (step.usage?.input !== undefined) this.usageIn = step.usage.input;
    } else if (this.tokenizer && ev.data !== "") {
      // No reader: the events' data is the text, the first one with any is the first token.
      if (this.firstToken < 0) this.firstToken = at;
      this.lastToken = at;
      this.text += ev.data;
    }
    if (this.onEvent) {
      try {
        if (this.onEvent(ev) === "stop") return "stop";
      } catch (err) {
        this.userError = err;
        this.failWith(`SSE onEvent: ${err instanceof Error ? err.message : String(err)}`);
        return "stop";
      }
    }
    return this.sawDone ? "done" : "more";
  }

  /**
   * Tokens that arrive together share the gap since the previous token: n tokens after a gap
   * of g ms give n values of g/n, so the values sum to the time from first to last token.
   * Extra tokens in the first token's event arrived with it: gaps of 0.
   */
  private addTokens(n: number, at: number): void {
    if (this.firstToken < 0) {
      this.firstToken = at;
      for (let i = 1; i < n; i++) this.itl.push(0);
    } else {
      const g = (at - this.lastToken) / n;
      for (let i = 0; i < n; i++) this.itl.push(g);
    }
    this.lastToken = at;
    this.tokens += n;
  }

  failWith(error: string): void {
    if (this.error !== null) return;
    this.error = error;
    this.end = "error";
  }

  fail(err: unknown): void {
    if (this.error !== null) return;
    if (this.timedOut) {
      this.error = "SSE timeout";
      this.end = "timeout";
      return;
    }
    this.failWith(this.describe(err));
  }

  record(rec: StatsRecorder, method: string, name: string): void {
    if (this.endAt < 0) this.endAt = performance.now() - this.t0;
    rec.request(
      "SSE",
      method,
      name,
      this.endAt * 1000,
      this.ttfb >= 0 ? this.ttfb * 1000 : -1,
      this.bytes,
      this.error,
      this.status,
    );
    if (this.events.length > 0) rec.count("SSE", method, name, "events", this.events.length);
    if (this.reader) rec.count("SSE", method, name, "tokens", this.tokens);
    rec.count("SSE", method, name, `end:${this.end}`);
    if (this.firstEvent >= 0) rec.metric("SSE", method, name, "ttfe", this.firstEvent);
    for (const g of this.gaps) rec.metric("SSE", method, name, "gap", g);
    if (this.firstToken >= 0) rec.metric("SSE", method, name, "ttft", this.firstToken);
    for (const g of this.itl) rec.metric("SSE", method, name, "itl", g);
    const span = this.lastToken - this.firstToken;
    if (this.tokens > 1 && span > 0) {
      rec.metric("SSE", method, name, "tokens_per_sec", (this.tokens - 1) / (span / 1000));
    }
    if (this.reader || this.tokenizer) this.recordServing(rec, method, name);
  }

  /**
   * vLLM's per-request figures: E2EL (send to complete response), TPOT = (E2EL − TTFT) /
   * (output tokens − 1), and the token counts, of completed streams; then the judgement
   * against the run's SLOs, of every counted stream.
   */
  private recordServing(rec: StatsRecorder, method: string, name: string): void {
    const ok = this.error === null;
    const ttft = this.firstToken >= 0 ? this.firstToken : null;
    let out: { n: number; from: TokenSource } | null = null;
    let tpot: number | null = null;
    if (ok) {
      out = this.outputTokens(rec);
      this.outputCount = out?.n ?? null;
      rec.metric("SSE", method, name, "e2el", this.endAt);
      if (out) {
        rec.metric("SSE", method, name, "output_tokens", out.n);
        rec.count("SSE", method, name, "output_tokens", out.n);
        rec.count("SSE", method, name, `output_tokens_from:${out.from}`);
        if (ttft !== null && out.n > 1) {
          tpot = (this.endAt - ttft) / (out.n - 1);
          this.tpot = tpot;
          rec.metric("SSE", method, name, "tpot", tpot);
        }
      }
      const input = this.inputTokens(rec);
      this.inputCount = input?.n ?? null;
      if (input) {
        rec.metric("SSE", method, name, "input_tokens", input.n);
        rec.count("SSE", method, name, "input_tokens", input.n);
        rec.count("SSE", method, name, `input_tokens_from:${input.from}`);
      }
    }
    if (!rec.slo) return;
    rec.count("SSE", method, name, SLO_JUDGED);
    if (meetsSlo(rec.slo, { ok, ttft, tpot, e2el: this.endAt })) {
      rec.count("SSE", method, name, SLO_GOOD);
      rec.count("SSE", method, name, SLO_GOOD_OUTPUT_TOKENS, out?.n ?? 0);
    }
  }

  /** The server's usage, else the `tokens` counter's count, else the tokenizer's. */
  private outputTokens(rec: StatsRecorder): { n: number; from: TokenSource } | null {
    if (this.usageOut !== undefined) return { n: this.usageOut, from: "usage" };
    if (this.reader) return { n: this.tokens, from: "preset" };
    const n = this.count(rec, this.text);
    return n === null ? null : { n, from: "tokenizer" };
  }

  /** The server's usage, else the tokenizer's count of the prompt; none without either. */
  private inputTokens(rec: StatsRecorder): { n: number; from: TokenSource } | null {
    if (this.usageIn !== undefined) return { n: this.usageIn, from: "usage" };
    const prompt = promptOf(this.json);
    const n = prompt === null ? null : this.count(rec, prompt);
    return n === null ? null : { n, from: "tokenizer" };
  }

  /** The tokenizer's count; null without one, or when it throws (an exception of the loadfile's). */
  private count(rec: StatsRecorder, text: string): number | null {
    if (!this.tokenizer) return null;
    let n: unknown;
    try {
      n = this.tokenizer(text);
    } catch (err) {
      rec.exception(err, "SSE tokenizer");
      return null;
    }
    return typeof n === "number" && Number.isFinite(n) && n >= 0 ? Math.round(n) : null;
  }

  result(): SseResult {
    return {
      status: this.status,
      ok: this.error === null,
      events: this.events,
      text: this.text,
      tokens: this.tokens,
      ttfbMs: this.ttfb >= 0 ? this.ttfb : null,
      ttfeMs: this.firstEvent >= 0 ? this.firstEvent : null,
      ttftMs: this.firstToken >= 0 ? this.firstToken : null,
      durationMs: this.endAt,
      tpotMs: this.tpot,
      outputTokens: this.outputCount,
      inputTokens: this.inputCount,
      end: this.end,
      error: this.error,
    };
  }
}
