import { setMaxListeners } from "node:events";
import type { IncomingHttpHeaders } from "node:http";
import { createRequire } from "node:module";
import { performance } from "node:perf_hooks";
import type { CookieJar } from "tough-cookie";
import type { Dispatcher, fetch as undiciFetch } from "undici";
import { RunStopped } from "../../core/errors.js";
import { VERSION } from "../../core/version.js";
import type { StatsRecorder } from "../../stats/recorder.js";
import { type JobOptions, type JobResult, runJob } from "../jobs.js";
import { streamSse } from "../sse/client.js";
import type { SseOptions, SseResult } from "../sse/types.js";
import {
  bodyTimeoutText,
  FastHttpError,
  FastPool,
  headTimeoutText,
  NotSentError,
  type OriginInfo,
  originInfo,
  type ResponseSink,
} from "./fast/connection.js";
import { parseHeaders, type ResponseHead } from "./fast/parser.js";
import { HttpResponse, kRecorded, kRecorder, kStatName } from "./response.js";
import type { RequestTracer } from "./tracing.js";

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
  /**
   * Seconds from sending the request to the complete response head (redirects: per hop).
   * A deadline: bytes trickling in do not extend it. Default 60. With `sharedConnections` it
   * counts from the call: the wait for a free connection is part of it.
   */
  timeout?: number;
  /**
   * Seconds from the response head to the last byte of the body, as a deadline too.
   * Default 60.
   */
  bodyTimeout?: number;
  /** Follow 3xx redirects (default true), at most `maxRedirects` (default 10) hops. */
  allowRedirects?: boolean;
  maxRedirects?: number;
  /**
   * Decide success yourself, like Locust's `catch_response`: call `res.success()` to accept a
   * 404, or `res.failure("why")` to reject a 200. Runs before the request is recorded.
   */
  catchResponse?: (res: HttpResponse) => void | Promise<void>;
  /**
   * Record under another type (and method) than HTTP: for protocol clients built on the session,
   * such as JSON-RPC and MCP, whose rows are named by the RPC method.
   */
  stat?: { type: string; method?: string };
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
  /** Status codes ≥ 400 that count as successes. */
  acceptStatus?: ReadonlySet<number> | null;
  /**
   * "auto" (default): Cicada's own HTTP/1.1 keep-alive client, or undici when a proxy is set
   * in the environment or a TLS server speaks only HTTP/2. "fast" / "undici": always that one.
   * `fetch()` always uses undici.
   */
  engine?: HttpEngine;
  /** Pools shared by many users; without it each user has its own connection per origin. */
  sharedPools?: SharedPools;
  /** Source addresses for new connections, used in turn (past one address's ephemeral ports). */
  sourceAddresses?: readonly string[];
  /** `--otel-traces`: a span per request and a traceparent header on it; null or absent for none. */
  tracer?: RequestTracer | null;
}

export type HttpEngine = "auto" | "fast" | "undici";

/**
 * The proxy variable in effect in this process's environment, if any: the fast path does not
 * speak to proxies, undici does, so "auto" means undici here. Exported so the run's plan can say
 * so. Read as undici's EnvHttpProxyAgent reads it: the lowercase name first, so `http_proxy=""`
 * turns off an HTTP_PROXY beside it and the run goes direct, on the fast engine.
 */
export const PROXY_VARIABLE: string | undefined = (
  [
    ["http_proxy", "HTTP_PROXY"],
    ["https_proxy", "HTTPS_PROXY"],
  ] as const
)
  .map(([lower, upper]) => (process.env[lower] !== undefined ? lower : upper))
  .find((k) => Boolean(process.env[k]));
const PROXY_ENV = PROXY_VARIABLE !== undefined;

/** Origins the fast path could not talk to (HTTP/2-only TLS servers): undici serves them. */
const undiciOrigins = new Set<string>();

function isH2Only(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e?.code === "ERR_SSL_TLSV1_ALERT_NO_APPLICATION_PROTOCOL" ||
    /no application protocol/i.test(e?.message ?? "")
  );
}

/**
 * Connection pools shared by the users of one worker: `maxConnections` per origin, requests
 * queue when all are busy. Lets 100,000 users run on a few thousand sockets. The fast engine's
 * pools and, for classes on undici, one undici dispatcher with the same limit; both live until
 * the worker's hard stop, whichever user leaves first.
 */
export class SharedPools {
  private readonly pools = new Map<string, FastPool>();
  #dispatcher: Dispatcher | undefined;
  constructor(
    readonly maxConnections: number,
    private readonly verifyTls: boolean,
    private readonly signal: AbortSignal,
    private readonly sourceAddresses?: readonly string[],
  ) {
    signal.addEventListener("abort", () => {
      for (const p of this.pools.values()) p.destroy(new RunStopped());
      void this.#dispatcher?.destroy(new RunStopped()).catch(() => {});
    });
  }
  /**
   * The shared pools of one user class (`owner`) in one worker (one hard-stop signal): each class
   * has its own N connections, bound to its own source addresses, as `sharedConnections` says.
   */
  static forWorker(
    owner: object,
    maxConnections: number,
    verifyTls: boolean,
    signal: AbortSignal,
    sourceAddresses?: readonly string[],
  ): SharedPools {
    let byOwner = sharedBySignal.get(signal);
    if (!byOwner) {
      byOwner = new Map();
      sharedBySignal.set(signal, byOwner);
    }
    let pools = byOwner.get(owner);
    if (!pools) {
      pools = new SharedPools(maxConnections, verifyTls, signal, sourceAddresses);
      byOwner.set(owner, pools);
    }
    return pools;
  }

  get(key: string, origin: OriginInfo): FastPool {
    let p = this.pools.get(key);
    if (!p) {
      p = new FastPool(origin, {
        verifyTls: this.verifyTls,
        connectTimeoutMs: 10_000,
        maxConnections: this.maxConnections,
        sourceAddresses: this.sourceAddresses,
      });
      this.pools.set(key, p);
    }
    return p;
  }

  /**
   * The undici dispatcher of these users: `maxConnections` per origin, made on first use (most
   * shared classes run on the fast engine and never need it). Requests queue inside undici when
   * all connections are busy. Cookie-less, like every dispatcher here: each session keeps its
   * own jar and sends its own cookie header.
   */
  get dispatcher(): Dispatcher {
    if (!this.#dispatcher) {
      this.#dispatcher = newAgent(this.maxConnections, this.verifyTls);
      // Asked for after the hard stop (a user's fetch() past it): nothing may stay open.
      if (this.signal.aborted) void this.#dispatcher.destroy(new RunStopped()).catch(() => {});
    }
    return this.#dispatcher;
  }

  destroy(): void {
    for (const p of this.pools.values()) p.destroy();
    this.pools.clear();
    void this.#dispatcher?.destroy().catch(() => {});
    this.#dispatcher = undefined;
  }
}

/**
 * An undici dispatcher with `connections` per origin. With a proxy in the environment,
 * EnvHttpProxyAgent honours HTTP(S)_PROXY and NO_PROXY, as undici reads them. `pipelining: 1`
 * (undici's default, said here because the shared pools rely on it): one request at a time per
 * connection, as on the fast engine, so a slow response holds up no other user's request.
 */
function newAgent(connections: number, verifyTls: boolean): Dispatcher {
  return new (PROXY_ENV ? undici().EnvHttpProxyAgent : undici().Agent)({
    allowH2: true,
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    connect: { timeout: 10_000, rejectUnauthorized: verifyTls },
  });
}

const sharedBySignal = new WeakMap<AbortSignal, Map<object, SharedPools>>();

/** Where a URL goes, resolved once and reused: most loadfiles request a handful of URLs. */
interface Route {
  readonly key: string;
  readonly origin: OriginInfo;
  readonly path: string;
  readonly href: string;
  /** The URL's hostname and port (the scheme's default if none), for the request's span. */
  readonly hostname: string;
  readonly port: number;
  /** Serialized heads of header-less, body-less requests to this URL, per method. */
  readonly heads: Map<string, Buffer>;
}

const ROUTE_CACHE_MAX = 10_000;
/** Per base URL: URL as written in the loadfile → route. Shared by all users of a worker. */
const routeCaches = new Map<string, Map<string, Route>>();
const originCache = new Map<string, OriginInfo>();

function routeFor(u: URL): Route {
  const key = u.origin;
  let origin = originCache.get(key);
  if (!origin) {
    origin = originInfo(u);
    originCache.set(key, origin);
  }
  const port = u.port ? Number(u.port) : u.protocol === "https:" ? 443 : 80;
  return {
    key,
    origin,
    path: u.pathname + u.search,
    href: u.href,
    hostname: u.hostname,
    port,
    heads: new Map(),
  };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const validMethods = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]);
const BODY_METHODS = new Set(["POST", "PUT", "PATCH"]);
const FORBIDDEN_IN_HEADER = /[\r\n\0]/;

function checkHeader(name: string, value: string): void {
  if (FORBIDDEN_IN_HEADER.test(name) || FORBIDDEN_IN_HEADER.test(value) || name.includes(":")) {
    throw new TypeError(
      `invalid header ${JSON.stringify(name)}: names and values must not contain CR, LF or NUL`,
    );
  }
}

// undici and tough-cookie are loaded on first use: most runs need neither, and every worker
// thread would otherwise pay their load time (~100 ms) at start.
const require = createRequire(import.meta.url);
let undiciModule: typeof import("undici") | undefined;
const undici = (): typeof import("undici") => (undiciModule ??= require("undici") as typeof import("undici"));
let cookieModule: typeof import("tough-cookie") | undefined;
const toughCookie = (): typeof import("tough-cookie") =>
  (cookieModule ??= require("tough-cookie") as typeof import("tough-cookie"));

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Shared by calls without options, so the hot path allocates none. */
const NO_OPTIONS: RequestOptions = Object.freeze({});
const EMPTY_BODY = Buffer.alloc(0);
const DEFAULT_TIMEOUT_MS = 60_000;
const USER_AGENT = `cicada/${VERSION}`;

const kResponse: unique symbol = Symbol("response");
const kFailed: unique symbol = Symbol("failed");

/**
 * One call through the fast engine, from its first hop to its settled promise. It is the
 * connection's ResponseSink and hands the callbacks to its session, whose state they need.
 */
class FastExchange implements ResponseSink {
  readonly promise: Promise<HttpResponse>;
  resolve!: (res: HttpResponse) => void;
  reject!: (err: unknown) => void;
  readonly firstMethod: string;
  readonly name: string;
  t0 = 0;
  ttfb = -1;
  hop = 0;
  /** The request became a body-less GET after a redirect: body headers must go too. */
  rewritten = false;

  constructor(
    readonly session: HttpSession,
    public method: string,
    readonly url: string,
    readonly opts: RequestOptions,
    public route: Route,
    public body: string | Uint8Array | undefined,
    public contentType: string | undefined,
    readonly timeoutMs: number,
    readonly bodyTimeoutMs: number,
    readonly maxHops: number,
  ) {
    this.firstMethod = method;
    this.name = opts.name ?? url;
    this.promise = new Promise<HttpResponse>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  onResponse(head: ResponseHead, body: Buffer, headAt: number, endAt: number): void {
    this.session[kResponse](this, head, body, headAt, endAt);
  }

  onError(err: Error): void {
    this.session[kFailed](this, err);
  }
}

/**
 * One user's HTTP client. It behaves like one browser-ish client: a cookie jar, a keep-alive
 * connection per origin, redirects, TLS. Every call is recorded under (HTTP, method, name).
 */
export class HttpSession {
  #agent: Dispatcher | undefined;
  #jar: CookieJar | undefined;
  #jarSize = 0;
  #pools: Map<string, FastPool> | undefined;
  #routes: Map<string, Route> | undefined;
  #ownPoolKey: string | undefined;
  #ownPool: FastPool | undefined;
  readonly #engine: HttpEngine;
  readonly #auto: boolean;
  readonly #o: HttpSessionOptions;
  /** Extra headers sent with every request of this user (e.g. an auth token set in onStart). */
  readonly headers: Record<string, string> = {};

  constructor(options: HttpSessionOptions) {
    this.#o = options;
    const engine = options.engine ?? "auto";
    this.#auto = engine === "auto";
    this.#engine = engine === "auto" ? (PROXY_ENV ? "undici" : "fast") : engine;
    // One listener per user, or per request in flight on undici (shared connections or not); a
    // run may have 100,000 of them on the same signal. Not 0 for "no limit": Node 20's
    // getMaxListeners, which undici's fetch() calls, throws on a 0.
    setMaxListeners(Number.POSITIVE_INFINITY, options.signal);
    if (!options.sharedPools) {
      options.signal.addEventListener("abort", () => this.#destroyPools(new RunStopped()), { once: true });
    }
  }

  #destroyPools(reason?: Error): void {
    if (this.#pools) for (const p of this.#pools.values()) p.destroy(reason);
    this.#pools = undefined;
    this.#ownPool = undefined;
    this.#ownPoolKey = undefined;
  }

  /**
   * The undici dispatcher of this user's requests and `fetch()`: its own, one keep-alive
   * connection per origin; or, when its class shares connections, the dispatcher the class's
   * users share in this worker, which a user's close() leaves open.
   */
  get dispatcher(): Dispatcher {
    return this.#o.sharedPools?.dispatcher ?? this.#ownDispatcher;
  }

  /**
   * This user's own dispatcher. SSE streams always take it: a stream holds its connection for
   * its whole life, so on a shared one a few streams would keep every other user waiting.
   */
  get #ownDispatcher(): Dispatcher {
    this.#agent ??= newAgent(1, this.#o.verifyTls ?? true);
    return this.#agent;
  }

  /** Cookies this user holds, e.g. to read a session id. */
  get cookies(): CookieJar {
    if (!this.#jar) {
      this.#jar = new (toughCookie().CookieJar)();
      // Handed out: the user may add cookies we cannot count, so always consult it.
      this.#jarSize = 1;
    }
    return this.#jar;
  }

  get(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.#send("GET", url, opts ?? NO_OPTIONS);
  }
  post(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.#send("POST", url, opts ?? NO_OPTIONS);
  }
  put(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.#send("PUT", url, opts ?? NO_OPTIONS);
  }
  patch(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.#send("PATCH", url, opts ?? NO_OPTIONS);
  }
  delete(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.#send("DELETE", url, opts ?? NO_OPTIONS);
  }
  head(url: string, opts?: RequestOptions): Promise<HttpResponse> {
    return this.#send("HEAD", url, opts ?? NO_OPTIONS);
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

  request(method: string, url: string, opts: RequestOptions = {}): Promise<HttpResponse> {
    method = method.toUpperCase();
    if (!validMethods.has(method)) {
      if (!TOKEN.test(method))
        return Promise.reject(new TypeError(`invalid HTTP method ${JSON.stringify(method)}`));
      validMethods.add(method);
    }
    return this.#send(method, url, opts);
  }

  /** The shared path; `method` is known to be a valid upper-case token. */
  #send(method: string, url: string, opts: RequestOptions): Promise<HttpResponse> {
    // Without tracing this one check is all it costs.
    if (this.#o.tracer) return this.#traced(this.#o.tracer, method, url, opts);
    if (this.#engine === "undici") return this.#undiciRequest(method, url, opts);
    return this.#fastRequest(method, url, opts);
  }

  /** A request inside a client span, whose context goes to the target as a traceparent header. */
  async #traced(
    tracer: RequestTracer,
    method: string,
    url: string,
    opts: RequestOptions,
  ): Promise<HttpResponse> {
    // The cached route: its span attributes are made once, not per request.
    const span = tracer.start(method, opts.name ?? url, this.#route(url, opts.query));
    const withHeader: RequestOptions = {
      ...opts,
      headers: { ...opts.headers, traceparent: span.traceparent },
    };
    let res: HttpResponse;
    try {
      res =
        this.#engine === "undici"
          ? await this.#undiciRequest(method, url, withHeader)
          : await this.#fastRequest(method, url, withHeader);
    } catch (err) {
      span.end(0, err instanceof Error ? err.message : String(err));
      throw err;
    }
    let error: string | null = res.error ?? this.#statusError(res.status);
    if (res.verdict) error = res.verdict.ok ? null : res.verdict.reason;
    span.end(res.status, error);
    return res;
  }

  #route(url: string, query: RequestOptions["query"]): Route {
    if (query) return routeFor(this.resolve(url, query));
    let cache = this.#routes;
    if (!cache) {
      const base = this.#o.baseUrl ?? "";
      cache = routeCaches.get(base);
      if (!cache) {
        cache = new Map();
        routeCaches.set(base, cache);
      }
      this.#routes = cache;
    }
    let r = cache.get(url);
    if (!r) {
      r = routeFor(this.resolve(url));
      if (cache.size >= ROUTE_CACHE_MAX) cache.clear();
      cache.set(url, r);
    }
    return r;
  }

  #pool(route: Route): FastPool {
    if (this.#o.sharedPools) return this.#o.sharedPools.get(route.key, route.origin);
    if (this.#ownPoolKey === route.key) return this.#ownPool!;
    this.#pools ??= new Map();
    let p = this.#pools.get(route.key);
    if (!p) {
      p = new FastPool(route.origin, {
        verifyTls: this.#o.verifyTls ?? true,
        connectTimeoutMs: 10_000,
        maxConnections: 1,
        sourceAddresses: this.#o.sourceAddresses,
      });
      this.#pools.set(route.key, p);
    }
    // Most users talk to one origin: keep it at hand without a map lookup.
    this.#ownPoolKey = route.key;
    this.#ownPool = p;
    return p;
  }

  /**
   * Serializes the request head. A request with no per-call headers, cookies or body is the
   * common case in a load test: its bytes are built once and reused by every user.
   */
  #head(
    method: string,
    route: Route,
    opts: RequestOptions,
    body: string | Uint8Array | undefined,
    contentType: string | undefined,
    /** The request became a body-less GET after a redirect: body headers must go too. */
    dropBodyHeaders = false,
  ): Buffer | string {
    const plain =
      opts.headers === undefined && body === undefined && this.#jarEmpty() && this.#noSessionHeaders();
    if (plain) {
      let cached = route.heads.get(method);
      if (!cached) {
        cached = Buffer.from(
          `${method} ${route.path} HTTP/1.1\r\nhost: ${route.origin.hostHeader}\r\nuser-agent: ${USER_AGENT}\r\n` +
            (BODY_METHODS.has(method) ? "content-length: 0\r\n\r\n" : "\r\n"),
          "latin1",
        );
        route.heads.set(method, cached);
      }
      return cached;
    }
    const headers: Record<string, string> = { "user-agent": USER_AGENT };
    for (const k in this.headers) headers[k.toLowerCase()] = this.headers[k]!;
    if (opts.headers) for (const k in opts.headers) headers[k.toLowerCase()] = opts.headers[k]!;
    if (contentType !== undefined && headers["content-type"] === undefined)
      headers["content-type"] = contentType;
    if (this.#jar) {
      const cookie = this.#jar.getCookieStringSync(route.href);
      if (cookie) headers.cookie = cookie;
    }
    let text = `${method} ${route.path} HTTP/1.1\r\nhost: ${route.origin.hostHeader}\r\n`;
    for (const k in headers) {
      if (k === "host" || k === "content-length" || k === "transfer-encoding") continue;
      if (dropBodyHeaders && k.startsWith("content-")) continue;
      const v = headers[k]!;
      checkHeader(k, v);
      text += `${k}: ${v}\r\n`;
    }
    if (body !== undefined)
      text += `content-length: ${typeof body === "string" ? Buffer.byteLength(body) : body.length}\r\n`;
    else if (BODY_METHODS.has(method)) text += "content-length: 0\r\n";
    return `${text}\r\n`;
  }

  #jarEmpty(): boolean {
    return this.#jar === undefined || this.#jarSize === 0;
  }

  #noSessionHeaders(): boolean {
    for (const _ in this.headers) return false;
    return true;
  }

  /**
   * The fast engine. One promise per call, settled from the connection's callbacks: no promise
   * or microtask hop per internal step (hop, response, recording).
   */
  #fastRequest(method: string, url: string, opts: RequestOptions): Promise<HttpResponse> {
    let x: FastExchange;
    try {
      const route = this.#route(url, opts.query);
      if (undiciOrigins.size > 0 && undiciOrigins.has(route.key))
        return this.#undiciRequest(method, url, opts);
      x = new FastExchange(
        this,
        method,
        url,
        opts,
        route,
        encodedBody(opts),
        impliedContentType(opts),
        timeoutOption(opts.timeout, "timeout"),
        timeoutOption(opts.bodyTimeout, "bodyTimeout"),
        opts.allowRedirects === false ? 0 : (opts.maxRedirects ?? 10),
      );
    } catch (err) {
      return Promise.reject(err);
    }
    x.t0 = performance.now();
    this.#fastHop(x);
    return x.promise;
  }

  /** Sends the exchange's current hop; the connection calls back kResponse or kFailed. */
  #fastHop(x: FastExchange): void {
    if (this.#o.signal.aborted) {
      this[kFailed](x, x.hop === 0 ? new NotSentError(new RunStopped()) : new RunStopped());
      return;
    }
    let head: Buffer | string;
    try {
      head = this.#head(x.method, x.route, x.opts, x.body, x.contentType, x.rewritten);
    } catch (err) {
      // An invalid header is the loadfile's bug: it throws in the task, as it always has.
      x.reject(err);
      return;
    }
    const body = x.body;
    const payload =
      typeof body === "string" || body === undefined
        ? body
        : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    try {
      this.#pool(x.route).request(x.method, head, payload, x.timeoutMs, x.bodyTimeoutMs, x);
    } catch (err) {
      // Nothing is known to throw here; if something does, it is this call's failure, not a
      // throw out of the parser's callback that delivered the previous hop.
      this[kFailed](x, err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** A hop's response arrived: follow a redirect, or make the response, record it, settle. */
  [kResponse](x: FastExchange, head: ResponseHead, body: Buffer, headAt: number, endAt: number): void {
    x.ttfb = headAt - x.t0;
    const rawHeaders = head.rawHeaders;
    const status = head.status;
    let parsed: IncomingHttpHeaders | undefined;
    try {
      if (head.setCookie) {
        parsed = parseRawHeaders(rawHeaders);
        this.#storeCookies(parsed, x.route.href);
      }
      if (x.hop < x.maxHops && status >= 301 && status <= 308 && REDIRECTS.has(status)) {
        parsed ??= parseRawHeaders(rawHeaders);
        const location = parsed.location;
        if (typeof location === "string") {
          x.route = routeFor(new URL(location, x.route.href));
          if (status === 303 || ((status === 301 || status === 302) && x.method === "POST")) {
            if (x.method !== "HEAD") x.method = "GET";
            x.body = undefined;
            x.contentType = undefined;
            x.rewritten = true;
          }
          x.hop++;
          this.#fastHop(x);
          return;
        }
      }
    } catch (err) {
      // An unparsable Location is thrown in the task, as a TypeError always was.
      x.reject(err);
      return;
    }
    this.#settle(
      x,
      new HttpResponse(
        x.firstMethod,
        x.route.href,
        status,
        parsed ?? rawHeaders,
        body,
        null,
        endAt - x.t0,
        x.ttfb,
      ),
    );
  }

  /** A hop failed: a cut-off by the hard stop unwinds the task; anything else is a failed response. */
  [kFailed](x: FastExchange, err: Error): void {
    if (this.#o.signal.aborted) {
      this.#countCancelled(x.firstMethod, x.name, x.opts.stat, !(err instanceof NotSentError));
      x.reject(new RunStopped());
      return;
    }
    if (err instanceof TypeError) {
      x.reject(err);
      return;
    }
    if (this.#auto && isH2Only(err) && !undiciOrigins.has(x.route.key)) {
      undiciOrigins.add(x.route.key);
      this.#undiciRequest(x.firstMethod, x.url, x.opts).then(x.resolve, x.reject);
      return;
    }
    this.#settle(x, failedResponse(x.firstMethod, x.route.href, err, x.t0, x.ttfb));
  }

  #settle(x: FastExchange, res: HttpResponse): void {
    const pending = this.#finish(res, x.name, x.opts.catchResponse, x.opts.stat);
    if (pending) pending.then(() => x.resolve(res), x.reject);
    else x.resolve(res);
  }

  async #undiciRequest(method: string, url: string, opts: RequestOptions): Promise<HttpResponse> {
    const name = opts.name ?? url;
    let target = this.resolve(url, opts.query);
    const headers: Record<string, string> = { "user-agent": USER_AGENT, ...this.headers };
    if (opts.headers) for (const [k, v] of Object.entries(opts.headers)) headers[k.toLowerCase()] = v;
    let body = encodedBody(opts);
    const contentType = impliedContentType(opts);
    if (contentType !== undefined) headers["content-type"] ??= contentType;
    const timeoutMs = timeoutOption(opts.timeout, "timeout");
    const bodyTimeoutMs = timeoutOption(opts.bodyTimeout, "bodyTimeout");
    const maxHops = opts.allowRedirects === false ? 0 : (opts.maxRedirects ?? 10);
    const signal = this.#o.signal;

    const t0 = performance.now();
    let ttfb = -1;
    let res: HttpResponse;
    let currentMethod = method;
    try {
      for (let hop = 0; ; hop++) {
        if (signal.aborted) throw hop === 0 ? new NotSentError(new RunStopped()) : new RunStopped();
        if (this.#jar) {
          const cookie = this.#jar.getCookieStringSync(target.href);
          if (cookie) headers.cookie = cookie;
          else delete headers.cookie;
        }
        const r = await undiciExchange(
          this.dispatcher,
          {
            origin: target.origin,
            path: target.pathname + target.search,
            method: currentMethod,
            headers,
            body: body ?? null,
          },
          timeoutMs,
          bodyTimeoutMs,
          signal,
          this.#o.sharedPools !== undefined,
        );
        ttfb = r.headAt - t0;
        this.#storeCookies(r.headers, target.href);
        const location = r.headers.location;
        if (hop < maxHops && REDIRECTS.has(r.status) && typeof location === "string") {
          target = new URL(location, target);
          if (r.status === 303 || ((r.status === 301 || r.status === 302) && currentMethod === "POST")) {
            if (currentMethod !== "HEAD") currentMethod = "GET";
            body = undefined;
            delete headers["content-type"];
          }
          continue;
        }
        res = new HttpResponse(
          method,
          target.href,
          r.status,
          r.headers,
          r.body,
          null,
          performance.now() - t0,
          ttfb,
        );
        break;
      }
    } catch (err) {
      if (signal.aborted) this.#cancel(method, name, opts.stat, !(err instanceof NotSentError));
      res = failedResponse(method, target.href, err, t0, ttfb);
    }
    const pending = this.#finish(res, name, opts.catchResponse, opts.stat);
    if (pending) await pending;
    return res;
  }

  /**
   * The run's hard stop cut this request off: counted as cancelled when it had been written
   * (the target may have seen it), as not sent otherwise; the task unwinds.
   */
  #cancel(method: string, name: string, stat?: RequestOptions["stat"], sent = true): never {
    this.#countCancelled(method, name, stat, sent);
    throw new RunStopped();
  }

  #countCancelled(method: string, name: string, stat: RequestOptions["stat"], sent: boolean): void {
    const type = stat?.type ?? "HTTP";
    const m = stat ? (stat.method ?? "") : method;
    if (sent) this.#o.recorder.cancelled(type, m, name);
    else this.#o.recorder.notSent(type, m, name);
  }

  async #finishCaught(
    res: HttpResponse,
    name: string,
    catchResponse: NonNullable<RequestOptions["catchResponse"]>,
    stat: RequestOptions["stat"],
  ): Promise<void> {
    res[kRecorder] = this.#o.recorder;
    res[kStatName] = name;
    await catchResponse(res);
    this.#record(res, name, stat);
  }

  /** Synchronous unless there is a catchResponse: one promise less per request on the hot path. */
  #finish(
    res: HttpResponse,
    name: string,
    catchResponse: RequestOptions["catchResponse"],
    stat?: RequestOptions["stat"],
  ): Promise<void> | undefined {
    if (catchResponse) return this.#finishCaught(res, name, catchResponse, stat);
    this.#record(res, name, stat);
    return undefined;
  }

  #record(res: HttpResponse, name: string, stat?: RequestOptions["stat"]): void {
    let error: string | null = res.error ?? this.#statusError(res.status);
    if (res.verdict) error = res.verdict.ok ? null : res.verdict.reason;
    res[kRecorder] = this.#o.recorder;
    res[kStatName] = name;
    res[kRecorded] = true;
    this.#o.recorder.request(
      stat?.type ?? "HTTP",
      stat ? (stat.method ?? "") : res.method,
      name,
      res.elapsedMs * 1000,
      res.ttfbMs >= 0 ? res.ttfbMs * 1000 : -1,
      res.body.length,
      error,
      res.status,
    );
  }

  #statusError(status: number): string | null {
    if (status < 400) return null;
    const ok = this.#o.acceptStatus;
    return ok?.has(status) ? null : `HTTP ${status}`;
  }

  #storeCookies(h: IncomingHttpHeaders, url: string): void {
    const set = h["set-cookie"];
    if (!set) return;
    const jar = this.cookies;
    for (const c of Array.isArray(set) ? set : [set]) jar.setCookieSync(c, url, { ignoreError: true });
    this.#jarSize++;
  }

  /**
   * Plain `fetch` through the user's cookie-less `dispatcher` (the class's shared one when it
   * shares connections, on either engine), recorded under `init.name` (or the URL). The body is
   * read in full before returning, so the recorded latency runs to the last byte as for the
   * other methods.
   */
  async fetch(input: string | URL, init: FetchInit = {}): Promise<Response> {
    const { name: statName, ...rest } = init;
    const method = (rest.method ?? "GET").toUpperCase();
    const target = typeof input === "string" ? this.resolve(input) : input;
    const name = statName ?? (typeof input === "string" ? input : input.pathname);
    const span = this.#o.tracer ? this.#o.tracer.start(method, name, routeFor(target)) : null;
    if (span) {
      const headers = new (undici().Headers)(rest.headers);
      headers.set("traceparent", span.traceparent);
      rest.headers = headers;
    }
    const t0 = performance.now();
    let ttfb = -1;
    try {
      const r = await undici().fetch(target, {
        ...rest,
        dispatcher: this.dispatcher,
        signal: rest.signal ?? this.#o.signal,
      });
      ttfb = performance.now() - t0;
      const buf = Buffer.from(await r.arrayBuffer());
      const elapsed = performance.now() - t0;
      const error = this.#statusError(r.status);
      span?.end(r.status, error);
      this.#o.recorder.request("HTTP", method, name, elapsed * 1000, ttfb * 1000, buf.length, error);
      const nullBody = r.status === 204 || r.status === 304 || r.status < 200 || buf.length === 0;
      return new Response(nullBody ? null : buf, {
        status: r.status,
        statusText: r.statusText,
        headers: r.headers as unknown as Headers,
      });
    } catch (err) {
      span?.end(0, describeError(err));
      if (this.#o.signal.aborted) this.#cancel(method, name);
      const elapsed = performance.now() - t0;
      this.#o.recorder.request(
        "HTTP",
        method,
        name,
        elapsed * 1000,
        ttfb >= 0 ? ttfb * 1000 : -1,
        0,
        describeError(err),
      );
      throw err;
    }
  }

  /**
   * Consumes a server-sent event stream (through this user's undici connection, so proxy and
   * TLS settings apply) and records it as one SSE request with per-event and per-token metrics.
   * Failures are recorded and returned, not thrown.
   */
  sse(url: string, opts: SseOptions = {}): Promise<SseResult> {
    const target = this.resolve(url);
    const headers: Record<string, string> = { "user-agent": USER_AGENT };
    for (const k in this.headers) headers[k.toLowerCase()] = this.headers[k]!;
    if (this.#jar) {
      const cookie = this.#jar.getCookieStringSync(target.href);
      if (cookie) headers.cookie = cookie;
    }
    return streamSse(
      {
        recorder: this.#o.recorder,
        signal: this.#o.signal,
        dispatcher: this.#ownDispatcher,
        url: target,
        headers,
        statusError: (status) => this.#statusError(status),
        storeCookies: (h) => this.#storeCookies(h, target.href),
        describeError: (err) => describeError(err, (opts.timeout ?? 300) * 1000),
      },
      opts,
    );
  }

  /**
   * Submits an asynchronous job and waits for its end, by polling its status URL or reading an
   * SSE stream of its states; recorded as one JOB request. Failures are returned, not thrown.
   */
  job(opts: JobOptions): Promise<JobResult> {
    return runJob(this, { recorder: this.#o.recorder, signal: this.#o.signal }, opts);
  }

  /**
   * Closes this user's connections: gracefully, or at once when the run is cut short. Shared
   * ones stay open for the class's other users; the worker's hard stop closes them.
   */
  async close(force = false): Promise<void> {
    this.#destroyPools();
    const a = this.#agent;
    this.#agent = undefined;
    if (!a) return;
    if (force) await a.destroy().catch(() => {});
    else await a.close().catch(() => {});
  }
}

/** The body a request sends: `json` and `form` encoded, else `body` as given. Both engines. */
function encodedBody(opts: RequestOptions): string | Uint8Array | undefined {
  if (opts.json !== undefined) return JSON.stringify(opts.json);
  if (opts.form) {
    return new URLSearchParams(
      Object.entries(opts.form).map(([k, v]): [string, string] => [k, String(v)]),
    ).toString();
  }
  return opts.body;
}

/** The content type `json` or `form` implies; a header the loadfile set wins over it. */
function impliedContentType(opts: RequestOptions): string | undefined {
  if (opts.json !== undefined) return "application/json";
  return opts.form ? "application/x-www-form-urlencoded" : undefined;
}

/** A request that got no response: status 0 and the error, as Locust's clients give. */
function failedResponse(method: string, href: string, err: unknown, t0: number, ttfb: number): HttpResponse {
  return new HttpResponse(method, href, 0, {}, EMPTY_BODY, describeError(err), performance.now() - t0, ttfb);
}

/** `timeout` / `bodyTimeout` in ms; a value that is not a number of seconds > 0 is the caller's bug. */
function timeoutOption(sec: number | undefined, option: string): number {
  if (sec === undefined) return DEFAULT_TIMEOUT_MS;
  if (typeof sec !== "number" || !(sec > 0) || sec === Number.POSITIVE_INFINITY) {
    throw new TypeError(`${option}: expected seconds > 0, got ${JSON.stringify(sec) ?? String(sec)}`);
  }
  return sec * 1000;
}

/** A timeout of the undici engine, with the same code and text as the fast engine's. */
class DeadlineError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = "DeadlineError";
  }
}

interface UndiciReply {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** performance.now() when the head arrived. */
  headAt: number;
}

/**
 * One exchange through undici, with the fast engine's deadlines: undici's own headersTimeout and
 * bodyTimeout are idle timers that every byte re-arms, so a server trickling one byte a second
 * would never time out; they stay set only as a backstop. Also tells a request cut off by the
 * hard stop before undici wrote it (NotSentError) from one it had written. `queued`: a shared
 * dispatcher, where a request may wait for a free connection; the head deadline counts from the
 * call then, as on the fast engine's shared pools.
 */
function undiciExchange(
  dispatcher: Dispatcher,
  opts: Dispatcher.DispatchOptions,
  timeoutMs: number,
  bodyTimeoutMs: number,
  signal: AbortSignal,
  queued = false,
): Promise<UndiciReply> {
  return new Promise<UndiciReply>((resolve, reject) => {
    let controller: Dispatcher.DispatchController | undefined;
    let sent = false;
    let done = false;
    let timer: NodeJS.Timeout | undefined;
    let status = 0;
    let headers: IncomingHttpHeaders = {};
    let headAt = 0;
    const chunks: Buffer[] = [];
    const settle = (err: Error | undefined): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onStop);
      if (err === undefined) {
        const body =
          chunks.length === 0 ? EMPTY_BODY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        resolve({ status, headers, body, headAt });
        return;
      }
      // Closes the connection of a request that is still running; its late error goes nowhere.
      controller?.abort(err);
      reject(err);
    };
    const onStop = (): void => settle(sent ? new RunStopped() : new NotSentError(new RunStopped()));
    const armHead = (): void => {
      clearTimeout(timer);
      timer = setTimeout(
        () => settle(new DeadlineError(headTimeoutText(timeoutMs), "UND_ERR_HEADERS_TIMEOUT")),
        timeoutMs,
      );
    };
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        // Called just before undici writes the request; a request already given up is dropped.
        if (done) {
          c.abort(new RunStopped());
          return;
        }
        sent = true;
        if (!queued) armHead();
      },
      onResponseStart(_c, statusCode, h) {
        // 1xx interim heads are not the answer.
        if (statusCode < 200) return;
        status = statusCode;
        headers = h;
        headAt = performance.now();
        clearTimeout(timer);
        timer = setTimeout(
          () => settle(new DeadlineError(bodyTimeoutText(bodyTimeoutMs), "UND_ERR_BODY_TIMEOUT")),
          bodyTimeoutMs,
        );
      },
      onResponseData(_c, chunk) {
        chunks.push(chunk);
      },
      onResponseEnd() {
        settle(undefined);
      },
      onResponseError(_c, err) {
        settle(err);
      },
    };
    if (signal.aborted) {
      onStop();
      return;
    }
    signal.addEventListener("abort", onStop, { once: true });
    if (queued) armHead();
    try {
      dispatcher.dispatch({ ...opts, headersTimeout: timeoutMs, bodyTimeout: bodyTimeoutMs }, handler);
    } catch (err) {
      settle(err as Error);
    }
  });
}

function parseRawHeaders(raw: string): IncomingHttpHeaders {
  return parseHeaders(raw) as IncomingHttpHeaders;
}

/**
 * One stable line per kind of error, so failures group well. Timeouts carry their text; a
 * `timeoutMs` is only for undici's own timeout errors, which do not (fetch and SSE).
 */
export function describeError(err: unknown, timeoutMs?: number): string {
  const e = err as { code?: string; message?: string; errors?: Array<{ message?: string }>; cause?: unknown };
  const code = e?.code;
  if (err instanceof DeadlineError || err instanceof FastHttpError) {
    if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") return e.message!;
  }
  if (code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
    return timeoutMs === undefined ? "timeout" : headTimeoutText(timeoutMs);
  }
  if (code === "UND_ERR_CONNECT_TIMEOUT") return "connect timeout";
  if (code === "UND_ERR_SOCKET") return "connection closed by server";
  let message = e?.message || e?.errors?.[0]?.message || String(err);
  if (message === "fetch failed" && e.cause) return describeError(e.cause, timeoutMs);
  if (err instanceof NotSentError) return describeError(err.reason, timeoutMs);
  if (code && !code.startsWith("HPE_") && !message.includes(code)) message = `${code}: ${message}`;
  return message;
}
