import type { IncomingHttpHeaders } from "node:http";
import { CookieJar } from "tough-cookie";
import { Agent, type Dispatcher, fetch as undiciFetch } from "undici";
import { RunStopped } from "../../api/errors.js";
import type { StatsRecorder } from "../../stats/recorder.js";
import { VERSION } from "../../version.js";
import { HttpResponse } from "./response.js";

export type QueryValue =
  | string
  | number
  | boolean
  | null
  | undefined
  | ReadonlyArray<string | number | boolean>;

export interface RequestOptions {
  /** Stat name; groups URLs that carry ids, e.g. `/jobs/[id]`. Defaults to the URL as given. */
  name?: string;
  headers?: Record<string, string>;
  /** Appended to the URL's query string. */
  query?: Record<string, QueryValue>;
  /** Sent as JSON with `content-type: application/json`. */
  json?: unknown;
  /** URL-encoded form body. */
  form?: Record<string, string | number | boolean>;
  /** Raw body. */
  body?: string | Uint8Array;
  /** Seconds to wait for the response head, and between body chunks. Default 60. */
  timeout?: number;
  /** Follow 3xx redirects (default true), at most `maxRedirects` (default 10) hops. */
  allowRedirects?: boolean;
  maxRedirects?: number;
  /**
   * Decide success yourself, like Locust's `catch_response`: call `res.success()` to accept a
   * 404, or `res.failure("why")` to reject a 200. Runs before the request is recorded.
   */
  catchResponse?: (res: HttpResponse) => void | Promise<void>;
}

export interface FetchInit extends NonNullable<Parameters<typeof undiciFetch>[1]> {
  /** Stat name, as for the other methods. */
  name?: string;
}

export interface HttpSessionOptions {
  recorder: StatsRecorder;
  /** Base URL that relative URLs resolve against. */
  baseUrl: string | undefined;
  /** Aborted when the run's stop timeout is over: in-flight requests become "cancelled". */
  signal: AbortSignal;
  /** Verify TLS certificates (default true). */
  verifyTls?: boolean;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const USER_AGENT = `cicada/${VERSION}`;

/**
 * One user's HTTP client. It behaves like one browser-ish client: a cookie jar, a keep-alive
 * connection per origin, redirects, TLS. Every call is recorded under (HTTP, method, name).
 */
export class HttpSession {
  #agent: Agent | undefined;
  #jar: CookieJar | undefined;
  readonly #o: HttpSessionOptions;
  /** Extra headers sent with every request of this user (e.g. an auth token set in onStart). */
  readonly headers: Record<string, string> = {};

  constructor(options: HttpSessionOptions) {
    this.#o = options;
  }

  /** The per-user dispatcher: one keep-alive connection per origin. */
  get dispatcher(): Dispatcher {
    this.#agent ??= new Agent({
      connections: 1,
      keepAliveTimeout: 60_000,
      connect: { timeout: 10_000, rejectUnauthorized: this.#o.verifyTls ?? true },
    });
    return this.#agent;
  }

  /** Cookies this user holds, e.g. to read a session id. */
  get cookies(): CookieJar {
    this.#jar ??= new CookieJar();
    return this.#jar;
  }

  get(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.request("GET", url, opts);
  }
  post(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.request("POST", url, opts);
  }
  put(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.request("PUT", url, opts);
  }
  patch(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.request("PATCH", url, opts);
  }
  delete(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.request("DELETE", url, opts);
  }
  head(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.request("HEAD", url, opts);
  }

  resolve(url: string, query?: Record<string, QueryValue>): URL {
    let u: URL;
    try {
      u = this.#o.baseUrl ? new URL(url, this.#o.baseUrl) : new URL(url);
    } catch {
      throw new TypeError(
        this.#o.baseUrl
          ? `invalid URL ${JSON.stringify(url)}`
          : `cannot resolve ${JSON.stringify(url)}: no host set (use -H/--host or a static host on the user class)`,
      );
    }
    if (query) {
      for (const [k, v] of Object.entries(query)) {
        if (v === undefined || v === null) continue;
        if (Array.isArray(v)) for (const item of v) u.searchParams.append(k, String(item));
        else u.searchParams.append(k, String(v));
      }
    }
    return u;
  }

  async request(method: string, url: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    method = method.toUpperCase();
    const name = opts.name ?? url;
    let target = this.resolve(url, opts.query);
    const headers: Record<string, string> = { "user-agent": USER_AGENT, ...this.headers };
    if (opts.headers) for (const [k, v] of Object.entries(opts.headers)) headers[k.toLowerCase()] = v;
    let body: string | Uint8Array | undefined = opts.body;
    if (opts.json !== undefined) {
      body = JSON.stringify(opts.json);
      headers["content-type"] ??= "application/json";
    } else if (opts.form) {
      body = new URLSearchParams(
        Object.entries(opts.form).map(([k, v]): [string, string] => [k, String(v)]),
      ).toString();
      headers["content-type"] ??= "application/x-www-form-urlencoded";
    }
    const timeoutMs = (opts.timeout ?? 60) * 1000;
    const maxHops = opts.allowRedirects === false ? 0 : (opts.maxRedirects ?? 10);
    const signal = this.#o.signal;

    const t0 = performance.now();
    let ttfb = -1;
    let res: HttpResponse;
    let currentMethod = method;
    try {
      for (let hop = 0; ; hop++) {
        if (this.#jar) {
          const cookie = this.#jar.getCookieStringSync(target.href);
          if (cookie) headers.cookie = cookie;
          else delete headers.cookie;
        }
        const r = await this.dispatcher.request({
          origin: target.origin,
          path: target.pathname + target.search,
          method: currentMethod,
          headers,
          body: body ?? null,
          signal,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        ttfb = performance.now() - t0;
        this.#storeCookies(r.headers, target.href);
        const location = r.headers.location;
        if (hop < maxHops && REDIRECTS.has(r.statusCode) && typeof location === "string") {
          await r.body.dump();
          target = new URL(location, target);
          if (
            r.statusCode === 303 ||
            ((r.statusCode === 301 || r.statusCode === 302) && currentMethod === "POST")
          ) {
            if (currentMethod !== "HEAD") currentMethod = "GET";
            body = undefined;
            delete headers["content-type"];
          }
          continue;
        }
        const chunks: Buffer[] = [];
        for await (const chunk of r.body) chunks.push(chunk as Buffer);
        const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        res = new HttpResponse(
          method,
          target.href,
          r.statusCode,
          r.headers,
          buf,
          null,
          performance.now() - t0,
          ttfb,
        );
        break;
      }
    } catch (err) {
      if (signal.aborted) {
        this.#o.recorder.cancelled("HTTP", method, name);
        throw new RunStopped();
      }
      const elapsed = performance.now() - t0;
      res = new HttpResponse(
        method,
        target.href,
        0,
        {},
        Buffer.alloc(0),
        describeError(err, timeoutMs),
        elapsed,
        ttfb,
      );
    }
    await this.#finish(res, name, opts.catchResponse);
    return res;
  }

  async #finish(
    res: HttpResponse,
    name: string,
    catchResponse: RequestOptions["catchResponse"],
  ): Promise<void> {
    let error: string | null = res.error ?? (res.status >= 400 ? `HTTP ${res.status}` : null);
    if (catchResponse) {
      await catchResponse(res);
      if (res.verdict) error = res.verdict.ok ? null : res.verdict.reason;
    }
    this.#o.recorder.request(
      "HTTP",
      res.method,
      name,
      res.elapsedMs * 1000,
      res.ttfbMs >= 0 ? res.ttfbMs * 1000 : -1,
      res.body.length,
      error,
    );
  }

  #storeCookies(h: IncomingHttpHeaders, url: string): void {
    const set = h["set-cookie"];
    if (!set) return;
    const jar = this.cookies;
    for (const c of Array.isArray(set) ? set : [set]) jar.setCookieSync(c, url, { ignoreError: true });
  }

  /**
   * Plain `fetch` through this user's connection and cookie-less dispatcher, recorded under
   * `init.name` (or the URL). The body is read in full before returning, so the recorded
   * latency runs to the last byte as for the other methods.
   */
  async fetch(input: string | URL, init: FetchInit = {}): Promise<Response> {
    const { name: statName, ...rest } = init;
    const method = (rest.method ?? "GET").toUpperCase();
    const target = typeof input === "string" ? this.resolve(input) : input;
    const name = statName ?? (typeof input === "string" ? input : input.pathname);
    const t0 = performance.now();
    let ttfb = -1;
    try {
      const r = await undiciFetch(target, {
        ...rest,
        dispatcher: this.dispatcher,
        signal: rest.signal ?? this.#o.signal,
      });
      ttfb = performance.now() - t0;
      const buf = Buffer.from(await r.arrayBuffer());
      const elapsed = performance.now() - t0;
      this.#o.recorder.request(
        "HTTP",
        method,
        name,
        elapsed * 1000,
        ttfb * 1000,
        buf.length,
        r.status >= 400 ? `HTTP ${r.status}` : null,
      );
      const nullBody = r.status === 204 || r.status === 304 || r.status < 200 || buf.length === 0;
      return new Response(nullBody ? null : buf, {
        status: r.status,
        statusText: r.statusText,
        headers: r.headers as unknown as Headers,
      });
    } catch (err) {
      if (this.#o.signal.aborted) {
        this.#o.recorder.cancelled("HTTP", method, name);
        throw new RunStopped();
      }
      const elapsed = performance.now() - t0;
      this.#o.recorder.request(
        "HTTP",
        method,
        name,
        elapsed * 1000,
        ttfb >= 0 ? ttfb * 1000 : -1,
        0,
        describeError(err, 0),
      );
      throw err;
    }
  }

  /** Closes this user's connections: gracefully, or at once when the run is cut short. */
  async close(force = false): Promise<void> {
    const a = this.#agent;
    this.#agent = undefined;
    if (!a) return;
    if (force) await a.destroy().catch(() => {});
    else await a.close().catch(() => {});
  }
}

/** One stable line per kind of error, so failures group well. */
export function describeError(err: unknown, timeoutMs: number): string {
  const e = err as { code?: string; message?: string; errors?: Array<{ message?: string }>; cause?: unknown };
  const code = e?.code;
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return `timeout: no response within ${timeoutMs / 1000}s`;
  }
  if (code === "UND_ERR_CONNECT_TIMEOUT") return "connect timeout";
  if (code === "UND_ERR_SOCKET") return "connection closed by server";
  let message = e?.message || e?.errors?.[0]?.message || String(err);
  if (message === "fetch failed" && e.cause) return describeError(e.cause, timeoutMs);
  if (code && !message.includes(code)) message = `${code}: ${message}`;
  return message;
}
