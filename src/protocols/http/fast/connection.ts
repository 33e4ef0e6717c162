import { connect as netConnect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import { connect as tlsConnect } from "node:tls";
import { ParseError, type ParserHandler, type ResponseHead, ResponseParser } from "./parser.js";

/**
 * Who hears how one request ends: its response (bytes and times, nothing parsed beyond framing) or
 * an error. Callbacks, not a promise: the caller settles the one promise its own caller awaits,
 * so no promise or microtask hop is spent per internal step. The connection is free again (or
 * dead) before either is called.
 */
export interface ResponseSink {
  /**
   * `headAt` and `endAt` are performance.now() when the head and the last body byte arrived; the
   * same value when both came in one read.
   */
  onResponse(head: ResponseHead, body: Buffer, headAt: number, endAt: number): void;
  onError(err: Error): void;
}

export interface OriginInfo {
  readonly secure: boolean;
  readonly host: string;
  readonly port: number;
  /** Value of the Host header. */
  readonly hostHeader: string;
}

export interface ConnectOptions {
  readonly verifyTls: boolean;
  readonly connectTimeoutMs: number;
  /** Source address to bind, to go past one address's ephemeral ports. */
  readonly localAddress?: string | undefined;
}

/** Errors carry a code, like Node's, so that failures group by kind. */
export class FastHttpError extends Error {
  constructor(
    message: string,
    readonly code: string,
    /** Nothing reached the server: safe to retry on a fresh connection. */
    readonly retryable = false,
  ) {
    super(message);
    this.name = "FastHttpError";
  }
}

/**
 * The run's hard stop caught a request before any byte of it was written (still connecting, or
 * queued for a connection): the target never saw it. Counted apart from cancelled requests.
 */
export class NotSentError extends Error {
  constructor(readonly reason: Error) {
    super(`not sent: ${reason.message}`);
    this.name = "NotSentError";
  }
}

/** Error texts shared by both engines, so failures group the same whichever one ran. */
export const headTimeoutText = (ms: number): string => `timeout: no response within ${ms / 1000}s`;
export const bodyTimeoutText = (ms: number): string =>
  `timeout: response body not complete within ${ms / 1000}s`;
const headTimeout = (ms: number): FastHttpError =>
  new FastHttpError(headTimeoutText(ms), "UND_ERR_HEADERS_TIMEOUT");

const EMPTY = Buffer.alloc(0);

/**
 * Plain TCP sockets read into this one buffer (Node's `onread`) instead of a fresh Buffer per
 * read through the stream machinery: fewer allocations and calls per response. Safe to share: a
 * read is handled to its end before the next one starts, and body bytes are copied out.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/**
 * Request timeouts without a timer per request: Node's socket timeouts re-arm a timer on every
 * read and write, which shows in profiles at high rates. Instead, one sweep checks deadlines
 * against a coarse clock, so timeouts fire within SWEEP_MS of their due time.
 */
const SWEEP_MS = 100;
const live = new Set<FastConnection>();
/** Shared pools with requests queued for a connection: their waits are bounded by the timeout too. */
const queued = new Set<FastPool>();
let coarseNow = performance.now();
let sweeper: NodeJS.Timeout | undefined;

function sweep(): void {
  coarseNow = performance.now();
  for (const c of live) c.checkDeadline(coarseNow);
  for (const p of queued) p.expireWaiting(coarseNow);
  if (live.size === 0 && queued.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function startSweeping(): void {
  if (!sweeper) {
    coarseNow = performance.now();
    sweeper = setInterval(sweep, SWEEP_MS);
    sweeper.unref();
  }
}

function track(c: FastConnection): void {
  live.add(c);
  startSweeping();
}

/**
 * One HTTP/1.1 keep-alive connection, one request at a time. It writes pre-serialized bytes and
 * frames responses with a purpose-built parser: this is the hot path undici's generality costs
 * too much on.
 */
export class FastConnection implements ParserHandler {
  private socket: Socket | undefined;
  private readonly parser: ResponseParser;
  private connected = false;
  private connecting: Promise<void> | undefined;
  /** Requests served on the current socket: a failure on the first is not a stale keep-alive. */
  private served = 0;
  private head: ResponseHead | undefined;
  private headAt = 0;
  /** Reads so far, and the read the head came in: a body done in the same read ends at headAt. */
  private reads = 0;
  private headRead = 0;
  /** The body so far: most bodies come in one piece, kept without an array. */
  private chunk: Buffer | undefined;
  private chunks: Buffer[] | undefined;
  private sink: ResponseSink | undefined;
  private timeoutMs = 0;
  private bodyTimeoutMs = 0;
  /** Coarse-clock time a queued request was made: its head deadline counts from then. 0: from sending. */
  private since = 0;
  /**
   * Coarse-clock time by which the response head (then, once it is in, the whole body) must have
   * arrived; 0 when idle. A deadline, not an idle timer: a server trickling one byte a second
   * must not hold a request open for ever.
   */
  private deadline = 0;
  /** The current request's bytes went to the socket: the target may have seen it. */
  private written = false;
  private closeAfter = false;
  private method = "GET";
  private reqHead: Buffer | string | undefined;
  private reqBody: Buffer | string | undefined;
  private retried = false;
  /** Called when the connection is free again (or dead), before the caller sees the result. */
  onIdle: ((c: FastConnection) => void) | undefined;
  dead = false;
  constructor(
    readonly origin: OriginInfo,
    private readonly options: ConnectOptions,
  ) {
    this.parser = new ResponseParser(this);
  }

  get busy(): boolean {
    return this.sink !== undefined;
  }

  private open(): Promise<void> {
    this.connecting ??= new Promise<void>((resolve, reject) => {
      const { host, port, secure } = this.origin;
      const local = this.options.localAddress ? { localAddress: this.options.localAddress } : {};
      const sock: Socket = secure
        ? tlsConnect({
            host,
            port,
            // SNI takes host names only.
            ...(/^[\d.:]+$/.test(host) ? {} : { servername: host }),
            rejectUnauthorized: this.options.verifyTls,
            ALPNProtocols: ["http/1.1"],
            ...local,
          })
        : netConnect({
            host,
            port,
            ...local,
            onread: {
              buffer: READ_BUFFER,
              callback: (n: number, buf: Uint8Array): boolean => {
                // Reads of a socket we already replaced (after a retry) must not touch the new one.
                if (sock === this.socket) this.onData(buf as Buffer, n);
                return true;
              },
            },
          });
      this.socket = sock;
      this.served = 0;
      track(this);
      sock.setNoDelay(true);
      const timer = setTimeout(() => {
        sock.destroy(new FastHttpError("connect timeout", "UND_ERR_CONNECT_TIMEOUT", true));
      }, this.options.connectTimeoutMs);
      const onConnect = () => {
        clearTimeout(timer);
        sock.off("error", onError);
        this.connected = true;
        resolve();
      };
      const onError = (err: Error) => {
        clearTimeout(timer);
        this.teardown();
        reject(err);
      };
      // A socket destroyed while connecting (hard stop) must not leave the timer running.
      sock.once("close", () => clearTimeout(timer));
      sock.once(secure ? "secureConnect" : "connect", onConnect);
      sock.once("error", onError);
      // Events of a socket we already replaced (after a retry) must not touch the new one.
      if (secure)
        sock.on("data", (d: Buffer) => {
          if (sock === this.socket) this.onData(d);
        });
      sock.on("end", () => {
        if (sock === this.socket) this.onEnd();
      });
      sock.on("close", () => {
        if (sock === this.socket) this.onClose();
      });
      sock.on("error", (err: NodeJS.ErrnoException) => {
        if (sock !== this.socket) return;
        // A reset on a reused connection before any answer: the server dropped an idle
        // keep-alive socket as we wrote to it. Nothing was processed; a retry is safe.
        const stale =
          this.served > 0 && this.head === undefined && (err.code === "ECONNRESET" || err.code === "EPIPE");
        this.fail(stale ? new FastHttpError(err.message, err.code ?? "ECONNRESET", true) : err);
      });
    });
    return this.connecting;
  }

  /**
   * Sends one request (head and body already serialized); `sink` hears how it ends. `method`
   * tells the parser whether a body follows (HEAD). `since`: the coarse-clock time a request
   * that waited in a shared pool's queue was made, so that `timeoutMs` bounds its wait too.
   */
  request(
    method: string,
    head: Buffer | string,
    body: Buffer | string | undefined,
    timeoutMs: number,
    bodyTimeoutMs: number,
    sink: ResponseSink,
    since = 0,
  ): void {
    if (this.busy) {
      sink.onError(new Error("FastConnection is busy"));
      return;
    }
    this.sink = sink;
    this.method = method;
    this.reqHead = head;
    this.reqBody = body;
    this.retried = false;
    this.written = false;
    this.since = since;
    if (timeoutMs !== this.timeoutMs) this.timeoutMs = timeoutMs;
    if (bodyTimeoutMs !== this.bodyTimeoutMs) this.bodyTimeoutMs = bodyTimeoutMs;
    this.send();
  }

  private send(): void {
    if (!this.connected) {
      this.open().then(
        () => this.send(),
        (err: Error) => this.fail(err),
      );
      return;
    }
    const sock = this.socket!;
    // coarseNow may be up to one sweep old: never time out early, at most two sweeps late.
    this.deadline = (this.since || coarseNow) + this.timeoutMs + SWEEP_MS;
    this.parser.expect(this.method);
    this.written = true;
    const body = this.reqBody;
    if (body !== undefined && body.length > 0) {
      sock.cork();
      sock.write(this.reqHead!);
      sock.write(body);
      sock.uncork();
    } else sock.write(this.reqHead!);
  }

  onHead(head: ResponseHead): void {
    this.head = head;
    this.headAt = performance.now();
    this.headRead = this.reads;
    this.closeAfter = head.close;
    // The head is in: from now on the body has its own deadline.
    this.deadline = coarseNow + this.bodyTimeoutMs + SWEEP_MS;
  }

  onBody(chunk: Buffer): void {
    // Plain TCP bodies sit in the shared read buffer: keep copies, not views.
    const c = this.origin.secure ? chunk : Buffer.from(chunk);
    if (this.chunk === undefined) this.chunk = c;
    else if (this.chunks === undefined) this.chunks = [this.chunk, c];
    else this.chunks.push(c);
  }

  onComplete(): void {
    const sink = this.sink!;
    const body = this.chunks ? Buffer.concat(this.chunks) : (this.chunk ?? EMPTY);
    const head = this.head!;
    const headAt = this.headAt;
    const endAt = this.headRead === this.reads ? headAt : performance.now();
    this.chunk = this.chunks = undefined;
    this.head = undefined;
    this.sink = undefined;
    this.served++;
    this.deadline = 0;
    this.reqHead = this.reqBody = undefined;
    if (this.closeAfter) this.teardown();
    this.onIdle?.(this);
    sink.onResponse(head, body, headAt, endAt);
  }

  /** Called by the sweep: fails a request whose head, or body, is past its deadline. */
  checkDeadline(now: number): void {
    if (this.deadline !== 0 && now > this.deadline && this.busy) {
      this.fail(
        this.head === undefined
          ? headTimeout(this.timeoutMs)
          : new FastHttpError(bodyTimeoutText(this.bodyTimeoutMs), "UND_ERR_BODY_TIMEOUT"),
      );
    }
  }

  private onData(d: Buffer, n: number = d.length): void {
    this.reads++;
    try {
      this.parser.execute(d, n);
    } catch (err) {
      const msg = err instanceof ParseError ? err.message : `invalid response: ${(err as Error).message}`;
      this.fail(new FastHttpError(msg, "HPE_INVALID"));
    }
  }

  private onEnd(): void {
    // A body read until close ends with the close, not with the read its head came in.
    this.reads++;
    try {
      this.parser.finish();
    } catch (err) {
      const stale = err instanceof ParseError && err.code === "HPE_CLOSED_BEFORE_RESPONSE" && this.served > 0;
      this.fail(new FastHttpError("connection closed by server", "UND_ERR_SOCKET", stale));
    }
  }

  private onClose(): void {
    if (this.busy) {
      // A keep-alive connection the server closed just as we reused it: nothing was answered,
      // so the caller may retry on a fresh connection.
      const stale = this.served > 0 && this.head === undefined;
      this.fail(new FastHttpError("connection closed by server", "UND_ERR_SOCKET", stale));
    }
    this.teardown();
  }

  private fail(err: Error): void {
    // Retry once when a reused keep-alive connection turned out to be closed, as browsers do.
    if (this.busy && err instanceof FastHttpError && err.retryable && !this.retried && !this.dead) {
      this.retried = true;
      // The server dropped the first attempt unread: this one is what it may see.
      this.written = false;
      this.chunk = this.chunks = undefined;
      this.head = undefined;
      this.teardown();
      this.send();
      return;
    }
    const sink = this.sink;
    this.sink = undefined;
    this.chunk = this.chunks = undefined;
    this.head = undefined;
    this.reqHead = this.reqBody = undefined;
    this.teardown();
    if (sink) {
      this.onIdle?.(this);
      sink.onError(err);
    }
  }

  private teardown(): void {
    this.deadline = 0;
    live.delete(this);
    this.connected = false;
    this.connecting = undefined;
    this.parser.reset();
    const s = this.socket;
    this.socket = undefined;
    if (s && !s.destroyed) s.destroy();
  }

  /** Closes the connection; a pending request fails with `reason`. */
  destroy(reason?: Error): void {
    this.dead = true;
    if (this.busy) {
      const err = reason ?? new FastHttpError("connection destroyed", "UND_ERR_DESTROYED");
      this.fail(this.written ? err : new NotSentError(err));
    } else this.teardown();
  }
}

/** A request waiting in a shared pool for a free connection. */
interface Waiter {
  method: string;
  head: Buffer | string;
  body: Buffer | string | undefined;
  timeoutMs: number;
  bodyTimeoutMs: number;
  sink: ResponseSink;
  /** Coarse-clock time it was queued. */
  since: number;
}

/** Never early (`since` is a coarse time, up to a sweep old), at most two sweeps late. */
const expired = (w: Waiter, now: number): boolean => now > w.since + w.timeoutMs + SWEEP_MS;

const timeOut = (w: Waiter): void => w.sink.onError(headTimeout(w.timeoutMs));

/**
 * Connections to one origin. A user's own pool has one connection, like a browser tab with
 * keep-alive; a shared pool lets many users share a few connections, queueing when all are busy.
 */
export class FastPool {
  private readonly idle: FastConnection[] = [];
  private readonly all = new Set<FastConnection>();
  private readonly waiting: Waiter[] = [];
  private nextSource = 0;
  private readonly onIdle = (c: FastConnection): void => this.release(c);

  constructor(
    readonly origin: OriginInfo,
    private readonly options: ConnectOptions & {
      readonly maxConnections: number;
      readonly sourceAddresses?: readonly string[];
    },
  ) {}

  private create(): FastConnection {
    const src = this.options.sourceAddresses;
    const localAddress =
      src && src.length > 0 ? src[this.nextSource++ % src.length] : this.options.localAddress;
    const conn = new FastConnection(this.origin, { ...this.options, localAddress });
    conn.onIdle = this.onIdle;
    this.all.add(conn);
    return conn;
  }

  private release(c: FastConnection): void {
    let conn: FastConnection | undefined = c;
    if (c.dead) {
      this.all.delete(c);
      conn = this.waiting.length > 0 ? this.create() : undefined;
    }
    if (!conn) return;
    // A request whose time ran out in the queue is not sent late: the sweep that freed this
    // connection may come before the one that would have expired it.
    let w = this.waiting.shift();
    // A user's own pool never queues: nothing more per request on that path.
    if (w !== undefined) {
      while (w && expired(w, coarseNow)) {
        timeOut(w);
        w = this.waiting.shift();
      }
      if (this.waiting.length === 0) queued.delete(this);
    }
    if (w) conn.request(w.method, w.head, w.body, w.timeoutMs, w.bodyTimeoutMs, w.sink, w.since);
    else this.idle.push(conn);
  }

  /**
   * Fails the queued requests whose timeout ran out before a connection came free: the timeout
   * bounds the whole wait for the head, queue included. Never early, at most two sweeps late.
   */
  expireWaiting(now: number): void {
    const late: Waiter[] = [];
    let kept = 0;
    for (const w of this.waiting) {
      if (expired(w, now)) late.push(w);
      else this.waiting[kept++] = w;
    }
    this.waiting.length = kept;
    if (kept === 0) queued.delete(this);
    for (const w of late) timeOut(w);
  }

  request(
    method: string,
    head: Buffer | string,
    body: Buffer | string | undefined,
    timeoutMs: number,
    bodyTimeoutMs: number,
    sink: ResponseSink,
  ): void {
    const conn = this.idle.pop() ?? (this.all.size < this.options.maxConnections ? this.create() : undefined);
    if (conn) conn.request(method, head, body, timeoutMs, bodyTimeoutMs, sink);
    else {
      this.waiting.push({ method, head, body, timeoutMs, bodyTimeoutMs, sink, since: coarseNow });
      queued.add(this);
      startSweeping();
    }
  }

  get size(): number {
    return this.all.size;
  }

  /** Closes every connection; pending and queued requests fail with `reason`. */
  destroy(reason?: Error): void {
    const err = reason ?? new FastHttpError("connection pool closed", "UND_ERR_DESTROYED");
    // Queued requests never reached a connection.
    queued.delete(this);
    for (const w of this.waiting.splice(0)) w.sink.onError(new NotSentError(err));
    for (const c of this.all) {
      c.onIdle = undefined;
      c.destroy(err);
    }
    this.all.clear();
    this.idle.length = 0;
  }
}

export function originInfo(u: URL): OriginInfo {
  const secure = u.protocol === "https:";
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port ? Number(u.port) : secure ? 443 : 80;
  return { secure, host, port, hostHeader: u.host };
}
