import type { HttpSession } from "../http/session.js";
import { judgeBatch, judgeCall, judgeNotification, type RpcResult, sendRecorded } from "./exchange.js";

export interface JsonRpcOptions {
  /** Headers sent with every call of this client (the session's own headers are sent too). */
  headers?: Record<string, string>;
  /**
   * Prefix of the stat names: "agent-a" records `message/send` as "agent-a message/send".
   * Without it the name is the RPC method.
   */
  name?: string;
  /** Seconds to wait for the response head, and between body chunks. Default: the session's (60). */
  timeout?: number;
}

export interface RpcCallOptions {
  /** Stat name of this call, instead of the (prefixed) RPC method. */
  name?: string;
  /** Seconds, as for the client. */
  timeout?: number;
  /** Headers for this call only. */
  headers?: Record<string, string>;
}

export interface RpcBatchEntry {
  method: string;
  params?: unknown;
  /** Sent without an id: no reply expected, no entry in the results. */
  notification?: boolean;
}

/**
 * Sends JSON-RPC 2.0 messages over HTTP POST through a user's session. Each call is recorded
 * once under type "JSONRPC", method "", name = the RPC method; failures (HTTP errors, network
 * errors, JSON-RPC errors, non-JSON bodies, replies to another id) are returned as `ok: false`
 * with the recorded text in `failure`, never thrown. Replies framed as an event stream
 * (`text/event-stream`) are read too.
 */
export class JsonRpcClient {
  #nextId = 1;
  readonly #session: HttpSession;
  readonly #url: string;
  readonly #o: JsonRpcOptions;
  /** Stat type; the MCP client reuses this class under "MCP". */
  protected readonly type: string = "JSONRPC";
  /** Accept header of every request. */
  protected accept = "application/json";

  constructor(session: HttpSession, url: string, options: JsonRpcOptions = {}) {
    this.#session = session;
    this.#url = url;
    this.#o = options;
  }

  /** The id the next call will use; ids start at 1 and increase per client. */
  get nextId(): number {
    return this.#nextId;
  }

  /** Calls `method` and waits for its reply. */
  call<T = unknown>(method: string, params?: unknown, options: RpcCallOptions = {}): Promise<RpcResult<T>> {
    const id = this.takeId();
    const message: Record<string, unknown> = { jsonrpc: "2.0", id, method };
    if (params !== undefined) message.params = params;
    return this.send(message, this.statName(method, options), options, (res) => judgeCall<T>(res, id));
  }

  /** Sends a notification (no id, no reply); ok when the server answers with a 2xx/3xx status. */
  notify(method: string, params?: unknown, options: RpcCallOptions = {}): Promise<RpcResult<undefined>> {
    const message: Record<string, unknown> = { jsonrpc: "2.0", method };
    if (params !== undefined) message.params = params;
    return this.send(message, this.statName(method, options), options, judgeNotification);
  }

  /**
   * Sends several calls in one HTTP request, recorded once under the name "batch" (or
   * `options.name`); the results come in the order of the calls, notifications left out.
   */
  async batch(entries: readonly RpcBatchEntry[], options: RpcCallOptions = {}): Promise<RpcResult[]> {
    const ids: number[] = [];
    const messages = entries.map((e) => {
      const m: Record<string, unknown> = { jsonrpc: "2.0", method: e.method };
      if (!e.notification) {
        const id = this.takeId();
        ids.push(id);
        m.id = id;
      }
      if (e.params !== undefined) m.params = e.params;
      return m;
    });
    const name = options.name ?? (this.#o.name ? `${this.#o.name} batch` : "batch");
    return this.send(messages, name, options, (res) => judgeBatch(res, ids));
  }

  protected takeId(): number {
    return this.#nextId++;
  }

  protected statName(method: string, options: RpcCallOptions): string {
    return options.name ?? (this.#o.name ? `${this.#o.name} ${method}` : method);
  }

  /** Headers of every request; the MCP client adds its session headers. */
  protected headers(): Record<string, string> {
    return { accept: this.accept, ...this.#o.headers };
  }

  protected async send<V>(
    body: unknown,
    name: string,
    options: RpcCallOptions,
    judge: Parameters<typeof sendRecorded<V>>[1]["judge"],
    httpMethod: "POST" | "DELETE" = "POST",
  ): Promise<V> {
    const timeout = options.timeout ?? this.#o.timeout;
    const type = this.type;
    const { value } = await sendRecorded(this.#session, {
      httpMethod,
      url: this.#url,
      type,
      name,
      body,
      headers: { ...this.headers(), ...options.headers },
      ...(timeout !== undefined ? { timeout } : {}),
      judge: (res, recorder) => {
        const v = judge(res, recorder);
        // Notifications and requests the server streamed before its reply.
        const before = (v.value as { messages?: unknown[] } | undefined)?.messages?.length ?? 0;
        if (before > 0) recorder.count(type, "", name, "messages", before);
        return v;
      },
    });
    return value;
  }
}

/**
 * A JSON-RPC 2.0 client for `url` over the user's HTTP session, e.g. in an `HttpUser`:
 * `const rpc = jsonRpc(this.client, "/api/v1/a2a")`, then
 * `const r = await rpc.call("message/send", { message })` and `if (r.ok) r.result`.
 */
export function jsonRpc(session: HttpSession, url: string, options: JsonRpcOptions = {}): JsonRpcClient {
  return new JsonRpcClient(session, url, options);
}
