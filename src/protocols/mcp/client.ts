import { VERSION } from "../../core/version.js";
import type { HttpResponse } from "../http/response.js";
import type { HttpSession } from "../http/session.js";
import { JsonRpcClient, type RpcCallOptions } from "../jsonrpc/client.js";
import { judgeCall, judgeNotification, type RpcResult, type Verdict } from "../jsonrpc/exchange.js";

/** The MCP revision this client speaks unless told otherwise. */
export const MCP_PROTOCOL_VERSION = "2025-06-18";

export interface McpClientOptions {
  /** Prefix of the stat names: "search" records "search tools/call". Default: none. */
  name?: string;
  /** Sent in `initialize`; default `{ name: "cicada", version: <cicada's version> }`. */
  clientInfo?: { name: string; version: string; [key: string]: unknown };
  /** Requested in `initialize`; default "2025-06-18". The server's answer is used afterwards. */
  protocolVersion?: string;
  /** Client capabilities sent in `initialize`; default `{}`. */
  capabilities?: Record<string, unknown>;
  /** Headers sent with every request (e.g. authorization). */
  headers?: Record<string, string>;
  /** Seconds to wait for the response head, and between body chunks. Default 60. */
  timeout?: number;
  /** Record each tool under its own name, "tools/call <tool>", instead of one "tools/call". */
  perTool?: boolean;
  /** Count a tool result with `isError: true` as a failure ("tool error: <text>"). Default true. */
  toolErrorsFail?: boolean;
}

export interface McpTool {
  name: string;
  description?: string;
  inputSchema?: unknown;
  [key: string]: unknown;
}

export interface McpInitializeResult {
  protocolVersion: string;
  capabilities: Record<string, unknown>;
  serverInfo: { name: string; version: string; [key: string]: unknown };
  instructions?: string;
  [key: string]: unknown;
}

export interface McpListToolsResult {
  tools: McpTool[];
  nextCursor?: string;
  [key: string]: unknown;
}

export interface McpCallToolResult {
  content: Array<{ type: string; text?: string; [key: string]: unknown }>;
  structuredContent?: unknown;
  isError?: boolean;
  [key: string]: unknown;
}

/**
 * An MCP client over the streamable HTTP transport (revision 2025-06-18), on a user's HTTP
 * session. Every request is recorded once under type "MCP", name = the JSON-RPC method
 * ("initialize", "notifications/initialized", "tools/list", "tools/call"); `close()` as
 * "close". Replies may be plain JSON or an event stream whose events carry the reply,
 * possibly after notifications (returned in `messages`, counted as "messages").
 */
export class McpClient extends JsonRpcClient {
  protected override readonly type: string = "MCP";
  readonly #mo: McpClientOptions;
  /** The `Mcp-Session-Id` the server assigned in `initialize`, sent on every later request. */
  sessionId: string | undefined;
  /** The protocol version the server chose; sent as `MCP-Protocol-Version` after `initialize`. */
  protocolVersion: string | undefined;
  /** The server's `initialize` result. */
  server: McpInitializeResult | undefined;

  constructor(session: HttpSession, url: string, options: McpClientOptions = {}) {
    super(session, url, {
      ...(options.name !== undefined ? { name: options.name } : {}),
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    });
    this.#mo = options;
    this.accept = "application/json, text/event-stream";
  }

  protected override headers(): Record<string, string> {
    const h = super.headers();
    Object.assign(h, this.#mo.headers);
    if (this.sessionId !== undefined) h["mcp-session-id"] = this.sessionId;
    if (this.protocolVersion !== undefined) h["mcp-protocol-version"] = this.protocolVersion;
    return h;
  }

  /**
   * Opens the session: `initialize`, then the `notifications/initialized` notification.
   * Starts afresh (a new session) when called again. Returns the `initialize` result.
   */
  async initialize(options: RpcCallOptions = {}): Promise<RpcResult<McpInitializeResult>> {
    this.sessionId = undefined;
    this.protocolVersion = undefined;
    this.server = undefined;
    const r = await this.call<McpInitializeResult>(
      "initialize",
      {
        protocolVersion: this.#mo.protocolVersion ?? MCP_PROTOCOL_VERSION,
        capabilities: this.#mo.capabilities ?? {},
        clientInfo: this.#mo.clientInfo ?? { name: "cicada", version: VERSION },
      },
      options,
    );
    if (!r.ok) return r;
    const sid = r.response?.header("mcp-session-id");
    if (sid) this.sessionId = sid;
    this.server = r.result;
    this.protocolVersion =
      typeof r.result?.protocolVersion === "string"
        ? r.result.protocolVersion
        : (this.#mo.protocolVersion ?? MCP_PROTOCOL_VERSION);
    const n = await this.notify("notifications/initialized", undefined, {
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
    });
    if (!n.ok) return { ...r, ok: false, failure: `notifications/initialized: ${n.failure}` };
    return r;
  }

  /** `tools/list`; pass `cursor` for the next page. */
  listTools(cursor?: string, options: RpcCallOptions = {}): Promise<RpcResult<McpListToolsResult>> {
    return this.call<McpListToolsResult>(
      "tools/list",
      cursor !== undefined ? { cursor } : undefined,
      options,
    );
  }

  /** `tools/call` of tool `name` with `args`. */
  async callTool(
    name: string,
    args: Record<string, unknown> = {},
    options: RpcCallOptions = {},
  ): Promise<RpcResult<McpCallToolResult>> {
    const stat = options.name ?? this.statName(this.#mo.perTool ? `tools/call ${name}` : "tools/call", {});
    const failOnToolError = this.#mo.toolErrorsFail ?? true;
    return this.request<McpCallToolResult>(
      "tools/call",
      { name, arguments: args },
      { ...options, name: stat },
      failOnToolError ? toolError : undefined,
    );
  }

  /** `ping`. */
  ping(options: RpcCallOptions = {}): Promise<RpcResult<Record<string, never>>> {
    return this.call("ping", undefined, options);
  }

  /**
   * Any other request (`resources/list`, `prompts/get`, ...), with the session headers.
   * `check` may turn a reply into a failure by returning its text.
   */
  async request<T = unknown>(
    method: string,
    params?: unknown,
    options: RpcCallOptions = {},
    check?: (result: T) => string | null,
  ): Promise<RpcResult<T>> {
    if (!check) return this.call<T>(method, params, options);
    const id = this.takeId();
    const message: Record<string, unknown> = { jsonrpc: "2.0", id, method };
    if (params !== undefined) message.params = params;
    return this.send(message, this.statName(method, options), options, (res) => {
      const v = judgeCall<T>(res, id);
      if (v.error === null) {
        const why = check(v.value.result as T);
        if (why !== null) return { error: why, value: { ...v.value, ok: false, failure: why } };
      }
      return v;
    });
  }

  /**
   * Ends the session: DELETE with the session header, recorded as "close". A server that does
   * not let clients end sessions answers 405, which counts as a success. Without a session
   * there is nothing to end and no request is sent.
   */
  async close(options: RpcCallOptions = {}): Promise<RpcResult<undefined>> {
    if (this.sessionId === undefined) return { ok: true, status: 0, messages: [] };
    const r = await this.send<RpcResult<undefined>>(
      undefined,
      this.statName("close", options),
      options,
      judgeClose,
      "DELETE",
    );
    this.sessionId = undefined;
    this.protocolVersion = undefined;
    return r;
  }
}

/** A 405 to DELETE means "this server does not let clients end sessions": not a failure. */
function judgeClose(res: HttpResponse): Verdict<RpcResult<undefined>> {
  if (res.error === null && res.status === 405) {
    return { error: null, value: { ok: true, status: 405, messages: [], response: res } };
  }
  return judgeNotification(res);
}

function toolError(result: McpCallToolResult): string | null {
  if (result?.isError !== true) return null;
  const text = Array.isArray(result.content)
    ? result.content.find((c) => typeof c?.text === "string")?.text
    : undefined;
  const line = (text ?? "").split("\n")[0]!.slice(0, 100);
  return line ? `tool error: ${line}` : "tool error";
}

/**
 * An MCP client for `url` over the user's HTTP session, e.g. in an `HttpUser`:
 * `const mcp = mcpClient(this.client, "/api/v1/mcp")`; `await mcp.initialize()`;
 * `await mcp.callTool("echo", { text: "hi" })`; `await mcp.close()`.
 */
export function mcpClient(session: HttpSession, url: string, options: McpClientOptions = {}): McpClient {
  return new McpClient(session, url, options);
}
