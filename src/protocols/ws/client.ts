import type { StatsRecorder } from "../../stats/recorder.js";
import { WsConnection, type WsConnectOptions } from "./connection.js";

export interface WsClientOptions {
  recorder: StatsRecorder;
  /** Aborted at the run's hard stop: connections close, waits in flight are cancelled. */
  signal: AbortSignal;
  /** Base URL relative URLs resolve against; http(s):// maps to ws(s)://. */
  baseUrl: string | undefined;
  verifyTls?: boolean;
  /** Local addresses new connections bind to, in turn. */
  sourceAddresses?: readonly string[];
  /** Offer permessage-deflate unless a connect says otherwise. Default false. */
  perMessageDeflate?: boolean;
}

/** Shared by all users of a worker, so consecutive connections spread over the addresses. */
let nextSource = 0;

/** One user's WebSocket connections: opens them, and closes them all when the user stops. */
export class WsClient {
  readonly #o: WsClientOptions;
  readonly #conns = new Set<WsConnection>();
  /** Headers sent with every upgrade request of this user (e.g. a token set in onStart). */
  readonly headers: Record<string, string> = {};

  constructor(options: WsClientOptions) {
    this.#o = options;
  }

  /**
   * Opens a connection, recorded as ("WS", "CONNECT", name) with the time to the completed
   * handshake. Resolves to undefined when it failed (recorded as a failure) or the run stopped.
   */
  async connect(url: string, options: WsConnectOptions = {}): Promise<WsConnection | undefined> {
    const target = resolveWsUrl(url, this.#o.baseUrl);
    const name = options.name ?? target.pathname;
    if (this.#o.signal.aborted) return undefined;
    const src = this.#o.sourceAddresses;
    const localAddress =
      options.localAddress ?? (src && src.length > 0 ? src[nextSource++ % src.length] : undefined);
    const hasHeaders = Object.keys(this.headers).length > 0;
    const conn = new WsConnection(
      target.href,
      name,
      {
        ...options,
        headers: hasHeaders ? { ...this.headers, ...options.headers } : options.headers,
        localAddress,
        verifyTls: options.verifyTls ?? this.#o.verifyTls ?? true,
        perMessageDeflate: options.perMessageDeflate ?? this.#o.perMessageDeflate ?? false,
      },
      this.#o.recorder,
      this.#o.signal,
      this.#conns,
    );
    return (await conn.waitOpen()) ? conn : undefined;
  }

  /** Connections of this user that are not closed yet. */
  get connections(): number {
    return this.#conns.size;
  }

  /** Closes every connection of this user and waits for them, or for the run's hard stop. */
  async closeAll(code = 1000): Promise<void> {
    if (this.#conns.size === 0) return;
    const closing = Promise.all([...this.#conns].map((c) => c.close(code)));
    const signal = this.#o.signal;
    if (signal.aborted) return;
    let onAbort: (() => void) | undefined;
    await Promise.race([
      closing,
      new Promise<void>((r) => {
        onAbort = () => r();
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

/** Resolves `url` against the base URL; http:// and https:// become ws:// and wss://. */
export function resolveWsUrl(url: string, baseUrl: string | undefined): URL {
  let u: URL;
  if (/^[a-z][a-z0-9+.-]*:/i.test(url)) u = new URL(url);
  else {
    if (!baseUrl) throw new Error(`WebSocket URL "${url}" is relative: set a host (static host or -H)`);
    u = new URL(url, baseUrl);
  }
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new Error(`not a WebSocket URL: ${url} (expected ws://, wss://, http:// or https://)`);
  }
  return u;
}
