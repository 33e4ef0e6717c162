import { setMaxListeners } from "node:events";
import WebSocket from "ws";
import type { StatsRecorder } from "../../stats/recorder.js";

/** What `send()` and `request()` take: text, bytes, or a value sent as JSON text. */
export type WsData = string | Uint8Array | ArrayBuffer | object;

export interface WsConnectOptions {
  /** Stat name; defaults to the URL path. */
  name?: string;
  /** Extra headers for the upgrade request (auth tokens, cookies). */
  headers?: Record<string, string>;
  /** Subprotocols offered in `Sec-WebSocket-Protocol`. */
  protocols?: string | string[];
  /** Seconds to wait for the handshake. Default 10. */
  timeout?: number;
  /**
   * Offer permessage-deflate (default false): its zlib contexts cost ~300 KB per connection,
   * which at 10,000 connections is most of a machine's memory.
   */
  perMessageDeflate?: boolean;
  /** Local address to bind the connection to, e.g. "127.0.0.2". */
  localAddress?: string;
  /** Verify TLS certificates of wss:// servers. Default true. */
  verifyTls?: boolean;
}

export interface WsRequestOptions {
  /**
   * Correlation id: the reply is the first message whose JSON `id` equals it. Defaults to the
   * `id` field of the message sent, when it has one; without an id the reply is the next message.
   */
  id?: unknown;
  /** Picks the reply yourself; takes precedence over `id`. */
  match?: (msg: WsMessage) => boolean;
  /** Seconds to wait for the reply. Default 30. */
  timeout?: number;
}

export interface WsNextOptions {
  /** Seconds to wait for a message. Default 30. */
  timeout?: number;
}

/** One received message. `text` and `json()` decode on first use and are cached. */
export class WsMessage {
  #text: string | undefined;
  #json: unknown = UNPARSED;

  constructor(
    /** The payload as received. */
    readonly data: Buffer,
    /** True for a binary frame, false for a text frame. */
    readonly binary: boolean,
  ) {}

  get text(): string {
    this.#text ??= this.data.toString("utf8");
    return this.#text;
  }

  /** The payload parsed as JSON; throws a SyntaxError when it is not JSON. */
  json<T = any>(): T {
    if (this.#json === UNPARSED) this.#json = JSON.parse(this.text);
    return this.#json as T;
  }

  /** The JSON `id` field, or undefined when the message is not a JSON object with one. */
  idField(): unknown {
    if (this.binary || this.data.length < 2) return undefined;
    let i = 0;
    while (i < this.data.length && this.data[i]! <= 0x20) i++;
    if (this.data[i] !== 0x7b /* { */) return undefined;
    try {
      const v = this.json<Record<string, unknown>>();
      return v !== null && typeof v === "object" ? v.id : undefined;
    } catch {
      return undefined;
    }
  }
}

const UNPARSED = Symbol("unparsed");

enum WaitKind {
  Next = 0,
  Id = 1,
  Match = 2,
}

interface Waiter {
  readonly kind: WaitKind;
  readonly id: unknown;
  readonly match: ((msg: WsMessage) => boolean) | undefined;
  /** performance.now() at send, for the round-trip time; 0 for `next()`. */
  readonly sentAt: number;
  readonly startedAt: number;
  readonly timeoutMs: number;
  /** Coarse-clock deadline. */
  readonly deadline: number;
  readonly resolve: (m: WsMessage | undefined) => void;
}

// Per-connection timers (for handshakes and replies) would be one more object and timer-list
// entry each; at 10,000 connections one sweep over the connections that wait for something is
// cheaper, at the price of timeouts firing up to SWEEP_MS late.
const SWEEP_MS = 100;
const timed = new Set<WsConnection>();
let coarseNow = performance.now();
let sweeper: NodeJS.Timeout | undefined;

function sweep(): void {
  coarseNow = performance.now();
  for (const c of timed) c.checkDeadlines(coarseNow);
  if (timed.size === 0 && sweeper) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function arm(c: WsConnection): void {
  timed.add(c);
  if (!sweeper) {
    coarseNow = performance.now();
    sweeper = setInterval(sweep, SWEEP_MS);
    sweeper.unref();
  }
}

/** Open connections per hard-stop signal: one abort listener per run, not one per connection. */
const liveBySignal = new WeakMap<AbortSignal, Set<WsConnection>>();

function liveFor(signal: AbortSignal): Set<WsConnection> {
  let live = liveBySignal.get(signal);
  if (!live) {
    const set = new Set<WsConnection>();
    live = set;
    liveBySignal.set(signal, set);
    // Not 0 for "no limit": Node 20's getMaxListeners (undici's fetch()) throws on a 0.
    setMaxListeners(Number.POSITIVE_INFINITY, signal);
    signal.addEventListener(
      "abort",
      () => {
        for (const c of [...set]) c.hardStop();
        // A server that does not answer the close frame is not waited for.
        setTimeout(() => {
          for (const c of [...set]) c.terminate();
        }, 500).unref();
      },
      { once: true },
    );
  }
  return live;
}

const MAX_BUFFERED = 1000;
const TYPE = "WS";
const CONNECT = "CONNECT";
const REPLY = "REPLY";
const CLOSE = "CLOSE";

/** Shared listeners: `this` is the socket, which points back at its connection. */
const kConn = Symbol("cicada.wsConnection");
type Tagged = WebSocket & { [kConn]: WsConnection };

function onWsOpen(this: WebSocket): void {
  (this as Tagged)[kConn].opened();
}
function onWsMessage(this: WebSocket, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
  (this as Tagged)[kConn].received(data as Buffer, isBinary);
}
function onWsError(this: WebSocket, err: Error): void {
  (this as Tagged)[kConn].errored(err);
}
function onWsClose(this: WebSocket, code: number): void {
  (this as Tagged)[kConn].closed(code);
}

function secondsText(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

const State = { Connecting: 0, Open: 1, Closed: 2 } as const;

/**
 * One WebSocket connection of a user. Made by `WsClient.connect()`; everything it does is
 * recorded under ("WS", "CONNECT", name): the connect time, "rtt" per round trip, and the
 * counters "sent", "received", "close:<code>" and "errors".
 */
export class WsConnection {
  readonly #ws: Tagged;
  readonly #rec: StatsRecorder;
  readonly #live: Set<WsConnection>;
  #state: number = State.Connecting;
  readonly #startedAt = performance.now();
  #openedAt = 0;
  readonly #connectTimeoutMs: number;
  readonly #connectDeadline: number;
  #connectDone: ((ok: boolean) => void) | undefined;
  #timedOut = false;
  #lastError: string | undefined;
  #closedByUs = false;
  #closeWaiters: Array<() => void> | undefined;
  #waiters: Waiter[] | undefined;
  #buffered: WsMessage[] | undefined;
  #handler: ((msg: WsMessage) => void) | undefined;
  /** Stat name. */
  readonly name: string;
  /** The URL connected to. */
  readonly url: string;

  /** @internal Use `WsClient.connect()`. */
  constructor(
    url: string,
    name: string,
    options: WsConnectOptions,
    recorder: StatsRecorder,
    signal: AbortSignal,
    /** The user's connections, which this one leaves when it closes. */
    private readonly owner?: Set<WsConnection>,
  ) {
    this.url = url;
    this.name = name;
    this.#rec = recorder;
    this.#live = liveFor(signal);
    this.#connectTimeoutMs = (options.timeout ?? 10) * 1000;
    this.#connectDeadline = coarseNow + this.#connectTimeoutMs + SWEEP_MS;
    const ws = new WebSocket(url, options.protocols ?? [], {
      perMessageDeflate: options.perMessageDeflate ?? false,
      headers: options.headers,
      localAddress: options.localAddress,
      rejectUnauthorized: options.verifyTls ?? true,
      closeTimeout: 2000,
      followRedirects: false,
    } as WebSocket.ClientOptions) as Tagged;
    ws[kConn] = this;
    ws.on("open", onWsOpen);
    ws.on("message", onWsMessage);
    ws.on("error", onWsError);
    ws.on("close", onWsClose);
    this.#ws = ws;
    this.#live.add(this);
    owner?.add(this);
    arm(this);
  }

  /** @internal Resolves true once open, false when the connect failed (already recorded). */
  waitOpen(): Promise<boolean> {
    if (this.#state !== State.Connecting) return Promise.resolve(this.#state === State.Open);
    return new Promise((resolve) => {
      this.#connectDone = resolve;
    });
  }

  /** True while messages can be sent. */
  get open(): boolean {
    return this.#state === State.Open && this.#ws.readyState === WebSocket.OPEN;
  }

  /** The subprotocol the server chose, or "". */
  get protocol(): string {
    return this.#ws.protocol;
  }

  /**
   * Sends one message (objects as JSON text). Returns false, sending nothing, when the
   * connection is not open (its close was already recorded).
   */
  send(data: WsData): boolean {
    if (!this.open) return false;
    this.#ws.send(encode(data));
    this.#rec.count(TYPE, CONNECT, this.name, "sent");
    return true;
  }

  /**
   * Sends a message and resolves to its reply, recording the round trip as "rtt". The reply is
   * the message picked by `match`, else the first with the same JSON `id`, else the next one.
   * Resolves to undefined when no reply came: a timeout or a close (recorded as failures of
   * "WS REPLY name"), or the run's hard stop (cancelled).
   */
  request(data: WsData, options: WsRequestOptions = {}): Promise<WsMessage | undefined> {
    if (!this.open) return Promise.resolve(undefined);
    const id = options.match ? undefined : options.id !== undefined ? options.id : idOf(data);
    const kind = options.match ? WaitKind.Match : id !== undefined ? WaitKind.Id : WaitKind.Next;
    const payload = encode(data);
    return new Promise((resolve) => {
      const now = performance.now();
      this.#wait({
        kind,
        id,
        match: options.match,
        sentAt: now,
        startedAt: now,
        timeoutMs: (options.timeout ?? 30) * 1000,
        deadline: coarseNow + (options.timeout ?? 30) * 1000 + SWEEP_MS,
        resolve,
      });
      this.#ws.send(payload);
      this.#rec.count(TYPE, CONNECT, this.name, "sent");
    });
  }

  /**
   * The next message not claimed by a `request()`: one received earlier and not yet read, or
   * the next to arrive. Resolves to undefined on a timeout (a failure), a close or the hard stop.
   */
  next(options: WsNextOptions = {}): Promise<WsMessage | undefined> {
    const b = this.#buffered;
    if (b !== undefined && b.length > 0) return Promise.resolve(b.shift());
    if (!this.open) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const now = performance.now();
      this.#wait({
        kind: WaitKind.Next,
        id: undefined,
        match: undefined,
        sentAt: 0,
        startedAt: now,
        timeoutMs: (options.timeout ?? 30) * 1000,
        deadline: coarseNow + (options.timeout ?? 30) * 1000 + SWEEP_MS,
        resolve,
      });
    });
  }

  /**
   * Calls `fn` for every message no `request()` or `next()` is waiting for, instead of keeping
   * them for `next()` (which keeps at most 1,000). `null` removes it.
   */
  onMessage(fn: ((msg: WsMessage) => void) | null): void {
    this.#handler = fn ?? undefined;
    if (fn) {
      const b = this.#buffered;
      this.#buffered = undefined;
      if (b) for (const m of b) this.#deliver(fn, m);
    }
  }

  /** Closes the connection (counted as "close:<code>") and resolves once it is closed. */
  close(code = 1000, reason?: string): Promise<void> {
    if (this.#state === State.Closed) return Promise.resolve();
    const p = new Promise<void>((resolve) => {
      (this.#closeWaiters ??= []).push(resolve);
    });
    this.#closeByUs(code, reason);
    return p;
  }

  #closeByUs(code: number, reason?: string): void {
    if (this.#closedByUs || this.#state === State.Closed) return;
    this.#closedByUs = true;
    if (this.#state === State.Open) this.#rec.count(TYPE, CONNECT, this.name, `close:${code}`);
    this.#settleWaiters();
    try {
      this.#ws.close(code, reason);
    } catch {
      // An invalid code from user code: close with the generic one rather than leak the socket.
      this.#ws.close(1000);
    }
  }

  #wait(w: Waiter): void {
    (this.#waiters ??= []).push(w);
    arm(this);
  }

  /** @internal The run's hard stop: cancels what waits, closes with 1001 (going away). */
  hardStop(): void {
    if (this.#state === State.Connecting) {
      this.#rec.cancelled(TYPE, CONNECT, this.name);
      this.#finishConnect(false);
      this.#closedByUs = true;
      this.#ws.terminate();
      return;
    }
    const ws = this.#waiters;
    if (ws && ws.length > 0) {
      this.#waiters = undefined;
      for (const w of ws) {
        this.#rec.cancelled(TYPE, CONNECT, this.name);
        w.resolve(undefined);
      }
    }
    this.#closeByUs(1001);
  }

  /** @internal */
  terminate(): void {
    this.#closedByUs = true;
    this.#ws.terminate();
  }

  /** @internal Called by the sweep. */
  checkDeadlines(now: number): void {
    if (this.#state === State.Closed) {
      timed.delete(this);
      return;
    }
    if (this.#state === State.Connecting) {
      if (now > this.#connectDeadline) {
        this.#timedOut = true;
        this.#ws.terminate();
      }
      return;
    }
    const ws = this.#waiters;
    if (ws === undefined || ws.length === 0) {
      timed.delete(this);
      return;
    }
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      if (now > w.deadline) {
        ws.splice(i--, 1);
        const what = w.sentAt > 0 ? "reply" : "message";
        this.#fail(
          REPLY,
          performance.now() - w.startedAt,
          `WS timeout: no ${what} within ${secondsText(w.timeoutMs)}`,
        );
        w.resolve(undefined);
      }
    }
  }

  #fail(method: string, elapsedMs: number, error: string): void {
    this.#rec.request(TYPE, method, this.name, elapsedMs * 1000, -1, 0, error);
    this.#rec.count(TYPE, CONNECT, this.name, "errors");
  }

  #finishConnect(ok: boolean): void {
    const done = this.#connectDone;
    this.#connectDone = undefined;
    done?.(ok);
  }

  /** @internal */
  opened(): void {
    this.#state = State.Open;
    this.#openedAt = performance.now();
    const ms = this.#openedAt - this.#startedAt;
    this.#rec.request(TYPE, CONNECT, this.name, ms * 1000, -1, 0, null, 101);
    if (!this.#waiters?.length) timed.delete(this);
    this.#finishConnect(true);
  }

  /** @internal */
  received(data: Buffer, binary: boolean): void {
    const now = performance.now();
    this.#rec.count(TYPE, CONNECT, this.name, "received");
    const msg = new WsMessage(data, binary);
    const ws = this.#waiters;
    if (ws !== undefined && ws.length > 0) {
      let taken = -1;
      let id: unknown = UNPARSED;
      for (let i = 0; i < ws.length; i++) {
        const w = ws[i]!;
        if (w.kind === WaitKind.Id) {
          if (id === UNPARSED) id = msg.idField();
          if (id === w.id) {
            taken = i;
            break;
          }
        } else if (w.kind === WaitKind.Match) {
          let hit = false;
          try {
            hit = w.match!(msg);
          } catch {
            // A matcher that throws on an unexpected message has not matched it.
          }
          if (hit) {
            taken = i;
            break;
          }
        }
      }
      if (taken < 0) {
        for (let i = 0; i < ws.length; i++) {
          if (ws[i]!.kind === WaitKind.Next) {
            taken = i;
            break;
          }
        }
      }
      if (taken >= 0) {
        const w = ws[taken]!;
        ws.splice(taken, 1);
        if (w.sentAt > 0) this.#rec.metric(TYPE, CONNECT, this.name, "rtt", now - w.sentAt);
        w.resolve(msg);
        return;
      }
    }
    const h = this.#handler;
    if (h !== undefined) {
      this.#deliver(h, msg);
      return;
    }
    const b = (this.#buffered ??= []);
    if (b.length >= MAX_BUFFERED) b.shift();
    b.push(msg);
  }

  #deliver(fn: (msg: WsMessage) => void, msg: WsMessage): void {
    try {
      fn(msg);
    } catch (err) {
      this.#rec.exception(err, `WS onMessage ${this.name}`);
    }
  }

  /** @internal */
  errored(err: Error): void {
    this.#lastError = err.message;
  }

  /** @internal */
  closed(code: number): void {
    const wasOpen = this.#state === State.Open;
    this.#state = State.Closed;
    this.#live.delete(this);
    this.owner?.delete(this);
    timed.delete(this);
    if (!wasOpen) {
      // The handshake did not complete.
      if (!this.#closedByUs) {
        const ms = performance.now() - this.#startedAt;
        const { error, status } = this.#timedOut
          ? { error: `WS timeout: no handshake within ${secondsText(this.#connectTimeoutMs)}`, status: 0 }
          : connectError(this.#lastError);
        this.#rec.request(TYPE, CONNECT, this.name, ms * 1000, -1, 0, error, status);
        this.#rec.count(TYPE, CONNECT, this.name, "errors");
      }
      this.#finishConnect(false);
    } else if (!this.#closedByUs) {
      this.#rec.count(TYPE, CONNECT, this.name, `close:${code}`);
      const reason = this.#lastError
        ? `WS error: ${this.#lastError}`
        : code === 1006
          ? "WS connection lost (1006)"
          : `WS closed by server (${code})`;
      if (this.#lastError || !(code === 1000 || code === 1001 || code === 1005)) {
        this.#fail(CLOSE, performance.now() - this.#openedAt, reason);
      }
      const ws = this.#waiters;
      this.#waiters = undefined;
      if (ws) {
        for (const w of ws) {
          this.#fail(
            REPLY,
            performance.now() - w.startedAt,
            `WS closed before the ${w.sentAt > 0 ? "reply" : "message"} (${code})`,
          );
          w.resolve(undefined);
        }
      }
    }
    this.#settleWaiters();
    const cw = this.#closeWaiters;
    this.#closeWaiters = undefined;
    if (cw) for (const r of cw) r();
  }

  /** Resolves whatever waits for a message with undefined, recording nothing. */
  #settleWaiters(): void {
    const ws = this.#waiters;
    this.#waiters = undefined;
    if (ws) for (const w of ws) w.resolve(undefined);
  }
}

function encode(data: WsData): string | Buffer | Uint8Array | ArrayBuffer {
  if (typeof data === "string" || data instanceof Uint8Array || data instanceof ArrayBuffer) return data;
  return JSON.stringify(data);
}

/** The `id` of a message about to be sent, when it is a JSON object (or its text) with one. */
function idOf(data: WsData): unknown {
  if (typeof data === "string") {
    if (data.charCodeAt(0) !== 0x7b || !data.includes('"id"')) return undefined;
    try {
      const v = JSON.parse(data) as unknown;
      return v !== null && typeof v === "object" ? (v as { id?: unknown }).id : undefined;
    } catch {
      return undefined;
    }
  }
  if (data instanceof Uint8Array || data instanceof ArrayBuffer || Array.isArray(data)) return undefined;
  return (data as { id?: unknown }).id;
}

function connectError(message: string | undefined): { error: string; status: number } {
  const m = message === undefined ? null : /^Unexpected server response: (\d+)/.exec(message);
  if (m) return { error: `HTTP ${m[1]}`, status: Number(m[1]) };
  return { error: message ? `WS connect failed: ${message}` : "WS connect failed", status: 0 };
}
