import type { IncomingHttpHeaders } from "node:http";
import type { StatsRecorder } from "../../stats/recorder.js";
import { parseHeaders } from "./fast/parser.js";

/**
 * Where a response was (or is about to be) recorded, so `check()` counts into the same books.
 * Plain fields rather than an object: no allocation per request.
 */
export const kRecorder: unique symbol = Symbol("cicada.recorder");
export const kStatName: unique symbol = Symbol("cicada.statName");
/** False inside catchResponse, before the verdict is recorded. */
export const kRecorded: unique symbol = Symbol("cicada.recorded");

/**
 * A finished HTTP exchange. Network errors do not throw: they give `status` 0 and `error`,
 * as Locust's clients do, so one failed call does not abort the whole task.
 */
export class HttpResponse {
  /** Set by `success()`/`failure()` inside `catchResponse`. */
  verdict: { ok: true } | { ok: false; reason: string } | null = null;
  [kRecorder]: StatsRecorder | undefined = undefined;
  [kStatName] = "";
  [kRecorded] = false;
  #text: string | undefined;
  #headers: IncomingHttpHeaders | string;

  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    /** Parsed headers, or the raw header block from the fast path, parsed on first use. */
    headers: IncomingHttpHeaders | string,
    readonly body: Buffer,
    /** Network-level error, or null when a response arrived. */
    readonly error: string | null,
    /** From the start of the request (first hop) to the last byte of the body. */
    readonly elapsedMs: number,
    /** From the start of the request to the response head of the last hop; -1 without one. */
    readonly ttfbMs: number,
  ) {
    this.#headers = headers;
  }

  /** Response headers with lower-case names; `set-cookie` is always an array. */
  get headers(): IncomingHttpHeaders {
    if (typeof this.#headers === "string") this.#headers = parseHeaders(this.#headers) as IncomingHttpHeaders;
    return this.#headers;
  }

  /** True for 1xx–3xx responses that arrived; what counts as success unless told otherwise. */
  get ok(): boolean {
    return this.error === null && this.status > 0 && this.status < 400;
  }

  /** A header's value; repeated headers are joined with ", ". */
  header(name: string): string | undefined {
    const v = this.headers[name.toLowerCase()];
    return Array.isArray(v) ? v.join(", ") : v;
  }

  text(): string {
    this.#text ??= this.body.toString("utf8");
    return this.#text;
  }

  json<T = any>(): T {
    try {
      return JSON.parse(this.text()) as T;
    } catch {
      const head = this.text().slice(0, 80);
      throw new SyntaxError(
        `response of ${this.method} ${this.url} (status ${this.status}) is not JSON: ${JSON.stringify(head)}`,
      );
    }
  }

  /** In `catchResponse`: count this response as a success whatever its status. */
  success(): void {
    this.verdict = { ok: true };
  }

  /** In `catchResponse`: count this response as a failure, grouped under `reason`. */
  failure(reason: string | Error): void {
    this.verdict = { ok: false, reason: typeof reason === "string" ? reason : reason.message };
  }
}
