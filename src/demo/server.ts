// A self-contained target for `cicada demo` and for our own tests: a small "AI agent service"
// (sync invoke, SSE streaming, async jobs, MCP/A2A JSON-RPC, an OpenAI-style LLM endpoint with a
// bounded capacity) plus the awkward HTTP behaviours a load tester has to get right (rate
// limiting, slow responses, cookies, redirects).
// Only node:http is used so the demo works with zero extra dependencies.

import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { performance } from "node:perf_hooks";
import { attachWebSocketDemo } from "./ws.js";

export interface DemoServerOptions {
  /** Interface to bind; default 127.0.0.1. */
  host?: string;
  /** Port to bind; default 0 picks a free port. */
  port?: number;
  /** Inclusive [min, max] latency in ms for /api/v1/agents/invoke; default [5, 40]. */
  latencyMs?: [number, number];
  /** Token-bucket rate (and burst size) for /api/v1/limited, shared by all clients; default 20. */
  rateLimitPerSec?: number;
  /** Time for an async job to go pending → running → completed; default 1500. */
  jobDurationMs?: number;
  /** /v1/chat/completions: time from the request to the first content token; default 80. */
  firstTokenDelayMs?: number;
  /** /v1/chat/completions: time between content tokens with one generation running; default 15. */
  tokenDelayMs?: number;
  /** /v1/chat/completions: generations that run at once; default 8. */
  capacity?: number;
  /** /v1/chat/completions: requests that wait for a free generation; beyond them, 429; default 64. */
  queue?: number;
  /** /v1/chat/completions: prefill time per prompt token, added to the time to first token; default 0.2. */
  prefillMsPerToken?: number;
  /**
   * /v1/chat/completions: how much the per-token time rises with load (α): with `active`
   * generations it is tokenDelayMs × (1 + α·(active − 1)/capacity); default 1.
   */
  loadFactor?: number;
}

export interface DemoServer {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:41234 */
  url: string;
  port: number;
  /** Total HTTP requests received since start, including 4xx/5xx ones. */
  requests(): number;
  /** /v1/chat/completions right now: generations running and requests waiting for one. */
  generations(): { active: number; queued: number };
  /** Stops listening, drops keep-alive and in-flight connections, and cancels pending timers. */
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1024 * 1024;
const MAX_SLOW_MS = 30_000;
// Load tests create jobs far faster than anyone polls them; bound memory by forgetting the oldest.
const MAX_JOBS = 10_000;
// Jobs sit in "pending" for this fraction of jobDurationMs so pollers can observe every state.
const JOB_PENDING_FRACTION = 0.25;
const MCP_PROTOCOL_VERSION = "2025-06-18";
const SERVER_INFO = { name: "cicada-demo", version: "0.1.0" };
const DEMO_MODEL = "cicada-demo";
const STARTED_SEC = Math.floor(Date.now() / 1000);
const COOKIE_NAME_RE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const LOREM =
  "The agent considered the request carefully and produced a concise helpful answer " +
  "based on the available context while keeping latency low for the load test";

type JsonObject = Record<string, unknown>;
type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

interface Job {
  id: string;
  task: unknown;
  createdAt: number; // performance.now(), monotonic so clock jumps can't skip states
  createdIso: string;
}

interface RpcRequest {
  id: string | number | null;
  notification: boolean;
  method: string;
  params: unknown;
}

export async function startDemoServer(opts: DemoServerOptions = {}): Promise<DemoServer> {
  const host = opts.host ?? "127.0.0.1";
  const [latencyLo, latencyHi] = normalizeRange(opts.latencyMs ?? [5, 40]);
  const rate = opts.rateLimitPerSec ?? 20;
  const jobDurationMs = opts.jobDurationMs ?? 1500;
  const firstTokenDelayMs = opts.firstTokenDelayMs ?? 80;
  const tokenDelayMs = opts.tokenDelayMs ?? 15;
  const capacity = opts.capacity ?? 8;
  const queueLimit = opts.queue ?? 64;
  const prefillMsPerToken = opts.prefillMsPerToken ?? 0.2;
  const loadFactor = opts.loadFactor ?? 1;
  for (const [k, v] of [
    ["firstTokenDelayMs", firstTokenDelayMs],
    ["tokenDelayMs", tokenDelayMs],
    ["prefillMsPerToken", prefillMsPerToken],
    ["loadFactor", loadFactor],
  ] as const) {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${k} must be a non-negative number`);
  }
  if (!(Number.isSafeInteger(capacity) && capacity >= 1))
    throw new RangeError("capacity must be an integer ≥ 1");
  if (!(Number.isSafeInteger(queueLimit) && queueLimit >= 0))
    throw new RangeError("queue must be an integer ≥ 0");
  if (!(Number.isFinite(rate) && rate > 0)) throw new RangeError("rateLimitPerSec must be a positive number");
  if (!(Number.isFinite(jobDurationMs) && jobDurationMs >= 0)) {
    throw new RangeError("jobDurationMs must be a non-negative number");
  }

  let requestCount = 0;
  let closed = false;
  const timers = new Set<NodeJS.Timeout>();
  const jobs = new Map<string, Job>();
  const bucket = { tokens: rate, last: performance.now() };

  // Every delay goes through here so close() can cancel them; otherwise a pending /slow?ms=30000
  // would keep the process (and a test run) alive long after the server is gone.
  const later = (ms: number, fn: () => void): NodeJS.Timeout | undefined => {
    if (closed) return undefined;
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
    return timer;
  };
  const cancel = (timer: NodeJS.Timeout | undefined): void => {
    if (timer === undefined) return;
    clearTimeout(timer);
    timers.delete(timer);
  };
  const sleep = (ms: number): Promise<void> => new Promise((resolve) => later(ms, resolve));

  const takeToken = (): { ok: boolean; remaining: number; retryAfterSec: number } => {
    const now = performance.now();
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.last) / 1000) * rate);
    bucket.last = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return { ok: true, remaining: Math.floor(bucket.tokens), retryAfterSec: 0 };
    }
    // Retry-After only carries whole seconds; round up so obeying it always succeeds.
    return { ok: false, remaining: 0, retryAfterSec: Math.max(1, Math.ceil((1 - bucket.tokens) / rate)) };
  };

  const jobView = (job: Job): JsonObject => {
    const elapsed = performance.now() - job.createdAt;
    const base = { job_id: job.id, created_at: job.createdIso };
    if (elapsed >= jobDurationMs) {
      return {
        ...base,
        status: "completed",
        progress: 1,
        result: {
          output: `Completed task: ${describe(job.task)}`,
          tokens: estimateTokens(describe(job.task)),
        },
      };
    }
    if (elapsed >= jobDurationMs * JOB_PENDING_FRACTION) {
      return { ...base, status: "running", progress: Math.round((elapsed / jobDurationMs) * 100) / 100 };
    }
    return { ...base, status: "pending", progress: 0 };
  };

  const invoke: Handler = async (req, res) => {
    const body = await readJsonObject(req);
    if (typeof body.message !== "string")
      throw new HttpError(422, "message is required and must be a string");
    const agentId =
      typeof body.agent_id === "string" && body.agent_id !== "" ? body.agent_id : "default-agent";
    await sleep(latencyLo + Math.random() * (latencyHi - latencyLo));
    const response = composeReply(agentId, body.message, body.context);
    sendJson(res, 200, {
      response,
      agent_id: agentId,
      tokens: estimateTokens(body.message) + estimateTokens(response),
    });
  };

  const stream: Handler = async (req, res, url) => {
    let message = url.searchParams.get("message") ?? "";
    if (req.method === "POST") {
      const body = await readJsonObject(req);
      if (typeof body.message === "string") message = body.message;
    }
    const words = composeReply("stream-agent", message || "hello", undefined).split(/\s+/);
    const total = randomInt(8, 20);
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;

    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    // Send headers now so clients can measure time-to-first-byte separately from first token.
    res.flushHeaders();
    // Fires on normal completion too; only matters when the client left early, so we stop
    // scheduling chunks for a socket nobody reads.
    res.on("close", () => cancel(timer));

    const tick = (): void => {
      timer = undefined;
      if (res.destroyed || res.writableEnded) return;
      if (sent === total) {
        res.end("data: [DONE]\n\n");
        return;
      }
      sent++;
      const chunk = {
        id,
        object: "chat.completion.chunk",
        created,
        model: "cicada-demo",
        choices: [
          {
            index: 0,
            delta: { content: `${words[(sent - 1) % words.length]} ` },
            finish_reason: sent === total ? "stop" : null,
          },
        ],
      };
      res.write(`data: ${JSON.stringify(chunk)}\n\n`);
      timer = later(randomInt(10, 20), tick);
    };
    timer = later(randomInt(10, 20), tick);
  };

  // The LLM endpoint's capacity: at most `capacity` generations run at once, `queueLimit` more
  // wait in arrival order, and anything beyond gets a 429. A waiter's `start` hands it the slot of
  // the generation that just ended, so `active` never exceeds capacity.
  let active = 0;
  const waiting = new Set<{ start: () => void }>();
  // A running mean of generation times, so Retry-After says roughly when a slot frees up.
  let meanGenerationMs = firstTokenDelayMs + 15 * tokenDelayMs;

  /** Resolves true once a slot is ours, false if the client left while queued; undefined when full. */
  const acquire = (res: ServerResponse): Promise<boolean> | undefined => {
    if (active < capacity) {
      active++;
      return Promise.resolve(true);
    }
    if (waiting.size >= queueLimit) return undefined;
    return new Promise((resolve) => {
      const waiter = {
        start: () => {
          res.off("close", leave);
          resolve(true);
        },
      };
      const leave = (): void => {
        waiting.delete(waiter);
        resolve(false);
      };
      waiting.add(waiter);
      res.on("close", leave);
    });
  };
  const releaseSlot = (): void => {
    const next = waiting.values().next().value;
    if (next === undefined) {
      active--;
      return;
    }
    waiting.delete(next);
    next.start();
  };
  // Decoding shares the accelerator: every further running generation slows each token.
  const tokenTimeMs = (): number => tokenDelayMs * (1 + (loadFactor * (active - 1)) / capacity);

  // OpenAI-compatible chat completions: once a generation slot is free, a role chunk, then one
  // word per content chunk — the first after the first-token delay plus the prompt's prefill,
  // the rest at the current per-token time — a finish chunk, optionally a usage chunk, and
  // [DONE], as OpenAI sends them.
  const chatCompletions: Handler = async (req, res) => {
    const body = await readJsonObject(req);
    if (!Array.isArray(body.messages)) throw new HttpError(400, "messages is required and must be an array");
    const maxTokens = body.max_tokens ?? body.max_completion_tokens ?? 16;
    if (
      !(typeof maxTokens === "number" && Number.isInteger(maxTokens) && maxTokens >= 1 && maxTokens <= 4096)
    ) {
      throw new HttpError(400, "max_tokens must be an integer from 1 to 4096");
    }
    const last = body.messages[body.messages.length - 1];
    const prompt = isObject(last) && typeof last.content === "string" ? last.content : "hello";
    const words = composeReply("chat-agent", prompt, undefined).split(/\s+/);
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const model = typeof body.model === "string" ? body.model : DEMO_MODEL;
    const promptTokens = countPromptTokens(body.messages);
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: maxTokens,
      total_tokens: promptTokens + maxTokens,
    };
    const word = (i: number): string => `${words[i % words.length]} `;
    const stream = body.stream === true;

    const slot = acquire(res);
    if (slot === undefined) {
      const retryAfterSec = Math.max(1, Math.ceil((meanGenerationMs * (1 + waiting.size / capacity)) / 1000));
      sendJson(
        res,
        429,
        { error: `server busy: ${capacity} generations running and ${waiting.size} waiting` },
        { "Retry-After": String(retryAfterSec) },
      );
      return;
    }
    if (stream) {
      // Accepted: the headers go now, the chunks once a generation slot is free.
      res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
      res.flushHeaders();
    }
    if (!(await slot)) return;
    const startedAt = performance.now();
    let timer: NodeJS.Timeout | undefined;
    let released = false;
    const release = (): void => {
      cancel(timer);
      if (released) return;
      released = true;
      meanGenerationMs += 0.2 * (performance.now() - startedAt - meanGenerationMs);
      releaseSlot();
    };
    // Fires on completion too; when the client left early it frees the slot for the next in line.
    res.on("close", release);
    if (res.destroyed || closed) {
      release();
      return;
    }

    const chunk = (choices: unknown[], extra: JsonObject = {}): string =>
      `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra })}\n\n`;
    const includeUsage = isObject(body.stream_options) && body.stream_options.include_usage === true;
    if (stream)
      res.write(chunk([{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }]));
    let sent = 0;
    let content = "";
    const finish = (): void => {
      release();
      if (stream) {
        let tail = chunk([{ index: 0, delta: {}, finish_reason: "length" }]);
        if (includeUsage) tail += chunk([], { usage });
        res.end(`${tail}data: [DONE]\n\n`);
        return;
      }
      sendJson(res, 200, {
        id,
        object: "chat.completion",
        created,
        model,
        choices: [
          { index: 0, message: { role: "assistant", content: content.trimEnd() }, finish_reason: "length" },
        ],
        usage,
      });
    };
    const tick = (): void => {
      timer = undefined;
      if (res.destroyed || res.writableEnded) return;
      if (stream) res.write(chunk([{ index: 0, delta: { content: word(sent) }, finish_reason: null }]));
      else content += word(sent);
      sent++;
      if (sent < maxTokens) {
        timer = later(tokenTimeMs(), tick);
        return;
      }
      finish();
    };
    timer = later(firstTokenDelayMs + promptTokens * prefillMsPerToken, tick);
  };

  const models: Handler = (_req, res) => {
    sendJson(res, 200, {
      object: "list",
      data: [{ id: DEMO_MODEL, object: "model", created: STARTED_SEC, owned_by: "cicada" }],
    });
  };

  // AG-UI: an agent run is a POST answered by a stream of typed events.
  const aguiRun: Handler = async (req, res) => {
    const body = await readJsonObject(req);
    const threadId = typeof body.threadId === "string" ? body.threadId : randomUUID();
    const runId = typeof body.runId === "string" ? body.runId : randomUUID();
    const messages = Array.isArray(body.messages) ? body.messages : [];
    const last = messages[messages.length - 1];
    const prompt = isObject(last) && typeof last.content === "string" ? last.content : "hello";
    const words = composeReply("ag-ui-agent", prompt, undefined).split(/\s+/).slice(0, 12);
    const messageId = randomUUID();
    const event = (e: JsonObject): string => `data: ${JSON.stringify(e)}\n\n`;
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
    res.write(event({ type: "RUN_STARTED", threadId, runId }));
    res.write(event({ type: "TEXT_MESSAGE_START", messageId, role: "assistant" }));
    res.on("close", () => cancel(timer));
    const tick = (): void => {
      timer = undefined;
      if (res.destroyed || res.writableEnded) return;
      res.write(event({ type: "TEXT_MESSAGE_CONTENT", messageId, delta: `${words[sent]} ` }));
      sent++;
      if (sent < words.length) {
        timer = later(tokenDelayMs, tick);
        return;
      }
      res.end(
        event({ type: "TEXT_MESSAGE_END", messageId }) + event({ type: "RUN_FINISHED", threadId, runId }),
      );
    };
    timer = later(firstTokenDelayMs, tick);
  };

  const createJob: Handler = async (req, res) => {
    const body = await readJsonObject(req);
    if (body.task === undefined || body.task === null) throw new HttpError(422, "task is required");
    const job: Job = {
      id: randomUUID(),
      task: body.task,
      createdAt: performance.now(),
      createdIso: new Date().toISOString(),
    };
    jobs.set(job.id, job);
    if (jobs.size > MAX_JOBS) {
      const oldest = jobs.keys().next().value;
      if (oldest !== undefined) jobs.delete(oldest);
    }
    sendJson(res, 202, { job_id: job.id, status: "pending" }, { Location: `/api/v1/jobs/${job.id}` });
  };

  const getJob = (res: ServerResponse, id: string): void => {
    const job = jobs.get(id);
    if (!job) throw new HttpError(404, `job ${id} not found`);
    sendJson(res, 200, jobView(job));
  };

  const mcp: Handler = async (req, res) => {
    const rpc = await readRpc(req, res);
    if (!rpc) return;
    const reply = (result: unknown, headers?: Record<string, string>): void =>
      sendJson(res, 200, { jsonrpc: "2.0", id: rpc.id, result }, headers);
    const fail = (code: number, message: string): void => sendJson(res, 200, rpcError(rpc.id, code, message));

    // Notifications (e.g. notifications/initialized) get no JSON-RPC reply; 202 per MCP's HTTP transport.
    if (rpc.notification) {
      res.writeHead(202).end();
      return;
    }
    switch (rpc.method) {
      case "initialize": {
        const params = isObject(rpc.params) ? rpc.params : {};
        const requested = typeof params.protocolVersion === "string" ? params.protocolVersion : undefined;
        reply(
          {
            protocolVersion: requested ?? MCP_PROTOCOL_VERSION,
            capabilities: { tools: { listChanged: false } },
            serverInfo: SERVER_INFO,
          },
          { "Mcp-Session-Id": randomUUID() },
        );
        return;
      }
      case "ping":
        reply({});
        return;
      case "tools/list":
        reply({ tools: MCP_TOOLS });
        return;
      case "tools/call": {
        const params = isObject(rpc.params) ? rpc.params : {};
        const args = isObject(params.arguments) ? params.arguments : {};
        if (params.name === "echo") {
          if (typeof args.text !== "string") return fail(-32602, "echo requires a string 'text' argument");
          reply({ content: [{ type: "text", text: args.text }], isError: false });
          return;
        }
        if (params.name === "add") {
          if (typeof args.a !== "number" || typeof args.b !== "number") {
            return fail(-32602, "add requires numeric 'a' and 'b' arguments");
          }
          const sum = args.a + args.b;
          reply({
            content: [{ type: "text", text: String(sum) }],
            structuredContent: { sum },
            isError: false,
          });
          return;
        }
        return fail(-32602, `unknown tool: ${describe(params.name)}`);
      }
      default:
        return fail(-32601, `Method not found: ${rpc.method}`);
    }
  };

  const a2a: Handler = async (req, res) => {
    const rpc = await readRpc(req, res);
    if (!rpc) return;
    if (rpc.notification) {
      res.writeHead(202).end();
      return;
    }
    if (rpc.method !== "message/send") {
      sendJson(res, 200, rpcError(rpc.id, -32601, `Method not found: ${rpc.method}`));
      return;
    }
    const params = isObject(rpc.params) ? rpc.params : {};
    const message = params.message;
    if (!isObject(message) || !Array.isArray(message.parts)) {
      sendJson(res, 200, rpcError(rpc.id, -32602, "params.message with a parts array is required"));
      return;
    }
    const text = message.parts
      .filter((p): p is JsonObject => isObject(p) && typeof p.text === "string")
      .map((p) => p.text as string)
      .join(" ");
    const contextId = typeof message.contextId === "string" ? message.contextId : randomUUID();
    const taskId = randomUUID();
    sendJson(res, 200, {
      jsonrpc: "2.0",
      id: rpc.id,
      result: {
        kind: "task",
        id: taskId,
        contextId,
        status: { state: "completed", timestamp: new Date().toISOString() },
        history: [{ ...message, taskId, contextId }],
        artifacts: [
          {
            artifactId: randomUUID(),
            name: "response",
            parts: [{ kind: "text", text: composeReply("a2a-agent", text, undefined) }],
          },
        ],
      },
    });
  };

  const limited: Handler = (_req, res) => {
    const verdict = takeToken();
    const headers = { "X-RateLimit-Limit": String(rate), "X-RateLimit-Remaining": String(verdict.remaining) };
    if (!verdict.ok) {
      sendJson(
        res,
        429,
        { error: "rate limit exceeded" },
        { ...headers, "Retry-After": String(verdict.retryAfterSec) },
      );
      return;
    }
    sendJson(res, 200, { ok: true }, headers);
  };

  const slow: Handler = async (_req, res, url) => {
    const raw = url.searchParams.get("ms");
    const ms = raw === null || raw === "" ? 0 : Number(raw);
    if (!(Number.isFinite(ms) && ms >= 0)) throw new HttpError(400, "ms must be a non-negative number");
    const slept = Math.min(Math.round(ms), MAX_SLOW_MS);
    await sleep(slept);
    sendJson(res, 200, { slept });
  };

  const cookieSet: Handler = (_req, res, url) => {
    const name = url.searchParams.get("name") ?? "";
    const value = url.searchParams.get("value") ?? "";
    if (!COOKIE_NAME_RE.test(name)) throw new HttpError(400, "name must be a non-empty cookie token");
    sendJson(
      res,
      200,
      { set: { [name]: value } },
      { "Set-Cookie": `${name}=${encodeURIComponent(value)}; Path=/` },
    );
  };

  const cookieEcho: Handler = (req, res) => {
    sendJson(res, 200, { cookies: parseCookies(req.headers.cookie) });
  };

  const redirect: Handler = (_req, res, url) => {
    const to = url.searchParams.get("to") ?? "/health";
    // Same-origin paths only, so the demo can't be used as an open redirector if exposed.
    if (!to.startsWith("/") || to.startsWith("//") || to.startsWith("/\\")) {
      throw new HttpError(400, "to must be a path on this server");
    }
    sendJson(res, 302, { location: to }, { Location: to });
  };

  const routes = new Map<string, Partial<Record<string, Handler>>>([
    ["/health", { GET: (_req, res) => sendJson(res, 200, { status: "ok" }) }],
    ["/api/v1/agents/invoke", { POST: invoke }],
    ["/api/v1/agents/stream", { GET: stream, POST: stream }],
    ["/api/v1/jobs", { POST: createJob }],
    ["/api/v1/mcp", { POST: mcp }],
    ["/api/v1/a2a", { POST: a2a }],
    ["/api/v1/limited", { GET: limited }],
    ["/api/v1/slow", { GET: slow }],
    ["/api/v1/cookie/set", { GET: cookieSet }],
    ["/api/v1/cookie/echo", { GET: cookieEcho }],
    ["/api/v1/redirect", { GET: redirect }],
    ["/v1/chat/completions", { POST: chatCompletions }],
    ["/v1/models", { GET: models }],
    ["/api/v1/agui/run", { POST: aguiRun }],
  ]);

  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://demo.invalid");
    const method = req.method ?? "GET";
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/+$/, "") : url.pathname;

    const jobMatch = /^\/api\/v1\/jobs\/([^/]+)$/.exec(path);
    if (jobMatch) {
      if (method !== "GET") throw new HttpError(405, "method not allowed");
      getJob(res, jobMatch[1]!);
      return;
    }
    const methods = routes.get(path);
    if (!methods) throw new HttpError(404, `no route for ${method} ${path}`);
    const handler = methods[method];
    if (!handler) {
      res.setHeader("Allow", Object.keys(methods).join(", "));
      throw new HttpError(405, `method ${method} not allowed on ${path}`);
    }
    await handler(req, res, url);
  };

  const server = createServer((req, res) => {
    requestCount++;
    dispatch(req, res).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof HttpError) {
        // An oversized body was left unread; closing is cheaper than draining it.
        if (err.status === 413) res.setHeader("Connection", "close");
        sendJson(res, err.status, { error: err.message });
        return;
      }
      sendJson(res, 500, { error: err instanceof Error ? err.message : "internal error" });
    });
  });
  // Outlive the idle timeouts of typical client pools so a load test measures requests, not
  // reconnects; headersTimeout must exceed keepAliveTimeout or Node can cut a reused socket mid-request.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  // WebSocket echo (/ws/echo) and chat (/ws/chat) on the same port.
  attachWebSocketDemo(server);

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });

  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${urlHost(host)}:${port}`,
    port,
    requests: () => requestCount,
    generations: () => ({ active, queued: waiting.size }),
    close: () => {
      closing ??= new Promise<void>((resolve, reject) => {
        closed = true;
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close((err) => (err ? reject(err) : resolve()));
        // close() alone waits for idle keep-alive sockets to time out (65 s); drop them now.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

const MCP_TOOLS = [
  {
    name: "echo",
    description: "Returns the given text unchanged.",
    inputSchema: {
      type: "object",
      properties: { text: { type: "string" } },
      required: ["text"],
    },
  },
  {
    name: "add",
    description: "Adds two numbers.",
    inputSchema: {
      type: "object",
      properties: { a: { type: "number" }, b: { type: "number" } },
      required: ["a", "b"],
    },
  },
];

function normalizeRange(range: [number, number]): [number, number] {
  const [a, b] = range;
  if (!(Number.isFinite(a) && Number.isFinite(b) && a >= 0 && b >= 0)) {
    throw new RangeError("latencyMs must be two non-negative numbers");
  }
  return a <= b ? [a, b] : [b, a];
}

/** Uniform integer in [lo, hi]. */
function randomInt(lo: number, hi: number): number {
  return lo + Math.floor(Math.random() * (hi - lo + 1));
}

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

// Rough LLM-style estimate (~4 characters per token); only needs to scale with payload size.
function estimateTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/**
 * The prompt's size in tokens, estimated as an LLM tokenizer roughly counts English: one token
 * per 4 characters of the messages' text (string contents and text parts), at least 1.
 */
function countPromptTokens(messages: unknown[]): number {
  let chars = 0;
  for (const m of messages) {
    if (!isObject(m)) continue;
    if (typeof m.content === "string") chars += m.content.length;
    else if (Array.isArray(m.content)) {
      for (const part of m.content)
        if (isObject(part) && typeof part.text === "string") chars += part.text.length;
    }
  }
  return Math.max(1, Math.ceil(chars / 4));
}

function composeReply(agentId: string, message: string, context: unknown): string {
  const contextNote = isObject(context) ? ` Using ${Object.keys(context).length} context item(s).` : "";
  return `Agent ${agentId} received "${describe(message)}".${contextNote} ${LOREM}.`;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  // The client may have gone away while we were sleeping; writing then would only throw.
  if (res.destroyed || res.writableEnded) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    "Content-Type": "application/json; charset=utf-8",
    "Content-Length": Buffer.byteLength(payload),
  });
  res.end(payload);
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooBig = false;
    req.on("data", (chunk: Buffer) => {
      if (tooBig) return;
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        tooBig = true;
        chunks.length = 0;
        reject(new HttpError(413, `request body exceeds ${MAX_BODY_BYTES} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
    // A client that disconnects mid-body never emits "end"; settle so the handler doesn't leak.
    req.on("close", () => reject(new HttpError(400, "request body incomplete")));
  });
}

async function readJsonObject(req: IncomingMessage): Promise<JsonObject> {
  const raw = await readBody(req);
  // Treat an empty body as {} so the handler reports which field is missing (422) rather than a 400.
  if (raw.trim() === "") return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new HttpError(400, "invalid JSON body");
  }
  if (!isObject(parsed)) throw new HttpError(400, "JSON body must be an object");
  return parsed;
}

function rpcError(id: unknown, code: number, message: string): JsonObject {
  return { jsonrpc: "2.0", id: id ?? null, error: { code, message } };
}

/** Parses a JSON-RPC 2.0 request, answering protocol-level errors itself; undefined means "already answered". */
async function readRpc(req: IncomingMessage, res: ServerResponse): Promise<RpcRequest | undefined> {
  const raw = await readBody(req);
  let msg: unknown;
  try {
    msg = JSON.parse(raw);
  } catch {
    sendJson(res, 400, rpcError(null, -32700, "Parse error"));
    return undefined;
  }
  if (!isObject(msg)) {
    sendJson(res, 400, rpcError(null, -32600, "Invalid Request"));
    return undefined;
  }
  const id = msg.id;
  const validId = id === undefined || id === null || typeof id === "string" || typeof id === "number";
  if (msg.jsonrpc !== "2.0" || typeof msg.method !== "string" || !validId) {
    sendJson(res, 400, rpcError(validId ? id : null, -32600, "Invalid Request"));
    return undefined;
  }
  return { id: id ?? null, notification: id === undefined, method: msg.method, params: msg.params };
}

function parseCookies(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  if (!header) return cookies;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (name === "") continue;
    try {
      cookies[name] = decodeURIComponent(value);
    } catch {
      // Malformed percent-encoding: echo it verbatim rather than failing the request.
      cookies[name] = value;
    }
  }
  return cookies;
}

function urlHost(host: string): string {
  // Wildcard binds aren't connectable addresses; point clients at loopback instead.
  if (host === "0.0.0.0" || host === "") return "127.0.0.1";
  if (host === "::") return "[::1]";
  return host.includes(":") ? `[${host}]` : host;
}
