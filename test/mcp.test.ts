/**
 * The MCP client (streamable HTTP, 2025-06-18) against real loopback servers: the demo target
 * (plain JSON replies) and a server of our own that frames every reply as an event stream and
 * insists on the session and protocol-version headers.
 */
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";
import { startDemoServer } from "../src/demo/server.js";
import { HttpSession } from "../src/protocols/http/session.js";
import { mcpClient } from "../src/protocols/mcp/client.js";
import { Recorder } from "../src/stats/recorder.js";
import type { StatsSnapshot } from "../src/stats/snapshot.js";
import { describeRun, readBody, runLoad, startServer, type TestServer } from "./helpers.js";

const VERSION = "2025-06-18";

interface SseMcpServer extends TestServer {
  /** JSON-RPC methods received (requests and notifications), and "DELETE" for closes. */
  received: Map<string, number>;
  /** Requests that broke the transport's rules, with the reason. */
  violations: string[];
}

/** An MCP server that answers every request with an event stream: notifications, then the reply. */
async function sseMcpServer(): Promise<SseMcpServer> {
  const received = new Map<string, number>();
  const violations: string[] = [];
  const sessions = new Map<string, { initialized: boolean }>();
  let nextSession = 1;
  const bump = (k: string) => received.set(k, (received.get(k) ?? 0) + 1);
  const server = await startServer(async (req: IncomingMessage, res: ServerResponse) => {
    const sid = req.headers["mcp-session-id"];
    const version = req.headers["mcp-protocol-version"];
    if (req.method === "DELETE") {
      bump("DELETE");
      if (typeof sid !== "string" || !sessions.delete(sid))
        violations.push(`DELETE of unknown session ${sid}`);
      res.writeHead(200).end();
      return;
    }
    const msg = JSON.parse(await readBody(req));
    bump(msg.method);
    const accept = String(req.headers.accept ?? "");
    if (!accept.includes("application/json") || !accept.includes("text/event-stream")) {
      violations.push(`accept: ${accept}`);
    }
    if (msg.method === "initialize") {
      if (sid !== undefined || version !== undefined) violations.push("initialize carried session headers");
      const id = `s-${nextSession++}`;
      sessions.set(id, { initialized: false });
      res.writeHead(200, { "content-type": "text/event-stream", "mcp-session-id": id });
      res.write(
        `data: ${JSON.stringify({ jsonrpc: "2.0", method: "notifications/message", params: { level: "info", data: "hello" } })}\n\n`,
      );
      res.end(
        `id: 1\nevent: message\ndata: ${JSON.stringify({
          jsonrpc: "2.0",
          id: msg.id,
          result: {
            protocolVersion: VERSION,
            capabilities: { tools: {} },
            serverInfo: { name: "sse-test", version: "1" },
          },
        })}\n\n`,
      );
      return;
    }
    const session = typeof sid === "string" ? sessions.get(sid) : undefined;
    if (!session) {
      violations.push(`${msg.method} with session ${sid}`);
      res.writeHead(404).end();
      return;
    }
    if (version !== VERSION) {
      violations.push(`${msg.method} with protocol version ${version}`);
      res.writeHead(400).end();
      return;
    }
    if (msg.method === "notifications/initialized") {
      session.initialized = true;
      res.writeHead(202).end();
      return;
    }
    if (!session.initialized) violations.push(`${msg.method} before notifications/initialized`);
    const reply = (result: unknown, before: unknown[] = []) => {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      for (const n of before) res.write(`event: message\ndata: ${JSON.stringify(n)}\n\n`);
      res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", id: msg.id, result })}\n\n`);
    };
    if (msg.method === "tools/list") {
      return reply({ tools: [{ name: "echo", inputSchema: { type: "object" } }, { name: "fail" }] });
    }
    if (msg.method === "tools/call") {
      const { name, arguments: args } = msg.params;
      if (name === "fail")
        return reply({ content: [{ type: "text", text: "no such file\nmore" }], isError: true });
      const progress = {
        jsonrpc: "2.0",
        method: "notifications/progress",
        params: { progress: 1, total: 2 },
      };
      // A few milliseconds of work, so latency thresholds have something to measure.
      setTimeout(
        () => reply({ content: [{ type: "text", text: String(args.text) }] }, [progress, progress]),
        5,
      );
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.end(
      `data: ${JSON.stringify({ jsonrpc: "2.0", id: msg.id, error: { code: -32601, message: "Method not found" } })}\n\n`,
    );
  });
  return Object.assign(server, { received, violations });
}

function session(baseUrl: string, recorder: Recorder): HttpSession {
  return new HttpSession({ recorder, baseUrl, signal: new AbortController().signal });
}

function ep(snap: StatsSnapshot, name: string) {
  return snap.endpoints.find((e) => e.type === "MCP" && e.method === "" && e.name === name);
}

describe("MCP client", () => {
  let server: SseMcpServer;
  before(async () => {
    server = await sseMcpServer();
  });
  after(async () => {
    await server.close();
  });

  it("over event-stream replies: session id and protocol version on every later request, one sample per method", async () => {
    server.received.clear();
    server.violations.length = 0;
    const recorder = new Recorder("t");
    const client = session(server.url, recorder);
    const mcp = mcpClient(client, "/mcp");
    const init = await mcp.initialize();
    assert.equal(init.ok, true, init.failure);
    assert.equal(init.result?.serverInfo.name, "sse-test");
    assert.equal(init.messages.length, 1, "the log notification before the reply");
    assert.equal(mcp.sessionId, "s-1");
    assert.equal(mcp.protocolVersion, VERSION);

    const tools = await mcp.listTools();
    assert.deepEqual(
      tools.result?.tools.map((t) => t.name),
      ["echo", "fail"],
    );
    for (let i = 0; i < 3; i++) {
      const r = await mcp.callTool("echo", { text: `hi ${i}` });
      assert.equal(r.ok, true, r.failure);
      assert.equal(r.result?.content[0]?.text, `hi ${i}`);
      assert.equal(r.messages.length, 2);
    }
    const failed = await mcp.callTool("fail");
    assert.equal(failed.ok, false);
    assert.equal(failed.failure, "tool error: no such file");
    const unknown = await mcp.request("resources/list");
    assert.equal(unknown.failure, "RPC error -32601: Method not found");
    const closed = await mcp.close();
    assert.equal(closed.ok, true, closed.failure);
    assert.equal(mcp.sessionId, undefined);

    assert.deepEqual(server.violations, []);
    assert.deepEqual(Object.fromEntries(server.received), {
      initialize: 1,
      "notifications/initialized": 1,
      "tools/list": 1,
      "tools/call": 4,
      "resources/list": 1,
      DELETE: 1,
    });
    const snap = recorder.snapshot(1);
    assert.equal(snap.endpoints.filter((e) => e.type !== "MCP").length, 0, JSON.stringify(snap.endpoints));
    assert.equal(ep(snap, "initialize")?.count, 1);
    assert.deepEqual(ep(snap, "initialize")?.counters, { messages: 1 });
    assert.equal(ep(snap, "notifications/initialized")?.count, 1);
    assert.deepEqual(ep(snap, "notifications/initialized")?.statuses, { 202: 1 });
    assert.equal(ep(snap, "tools/list")?.count, 1);
    assert.equal(ep(snap, "tools/call")?.count, 4);
    assert.equal(ep(snap, "tools/call")?.failures, 1);
    assert.deepEqual(ep(snap, "tools/call")?.counters, { messages: 6 });
    assert.equal(ep(snap, "close")?.count, 1);
    await client.close();
  });

  it("perTool names each tool; a second initialize opens a new session", async () => {
    server.violations.length = 0;
    const recorder = new Recorder("t");
    const client = session(server.url, recorder);
    const mcp = mcpClient(client, "/mcp", {
      perTool: true,
      name: "srv",
      clientInfo: { name: "t", version: "0" },
    });
    assert.equal((await mcp.initialize()).ok, true);
    const first = mcp.sessionId;
    await mcp.callTool("echo", { text: "a" });
    await mcp.callTool("fail");
    assert.equal((await mcp.initialize()).ok, true);
    assert.notEqual(mcp.sessionId, first);
    await mcp.callTool("echo", { text: "b" });
    assert.deepEqual(server.violations, []);
    const snap = recorder.snapshot(1);
    assert.equal(ep(snap, "srv tools/call echo")?.count, 2);
    assert.equal(ep(snap, "srv tools/call fail")?.failures, 1);
    assert.equal(ep(snap, "srv initialize")?.count, 2);
    await client.close();
  });

  it("calls without a session are refused by the server and counted as failures", async () => {
    server.violations.length = 0;
    const recorder = new Recorder("t");
    const client = session(server.url, recorder);
    const mcp = mcpClient(client, "/mcp");
    const r = await mcp.callTool("echo", { text: "x" });
    assert.equal(r.ok, false);
    assert.equal(r.failure, "HTTP 404");
    assert.equal((await mcp.close()).status, 0, "nothing to close, no request");
    assert.equal(server.violations.length, 1);
    await client.close();
  });

  it("the demo target: JSON replies, session header, DELETE answered 405 is tolerated", async () => {
    const demo = await startDemoServer();
    const recorder = new Recorder("t");
    const client = session(demo.url, recorder);
    try {
      const mcp = mcpClient(client, "/api/v1/mcp");
      const init = await mcp.initialize();
      assert.equal(init.ok, true, init.failure);
      assert.ok(mcp.sessionId, "session id kept");
      assert.equal(mcp.protocolVersion, VERSION);
      const tools = await mcp.listTools();
      assert.deepEqual(tools.result?.tools.map((t) => t.name).sort(), ["add", "echo"]);
      const sum = await mcp.callTool("add", { a: 2, b: 3 });
      assert.deepEqual(sum.result?.structuredContent, { sum: 5 });
      const bad = await mcp.callTool("add", { a: "x" });
      assert.equal(bad.failure, "RPC error -32602: add requires numeric 'a' and 'b' arguments");
      const closed = await mcp.close();
      assert.equal(closed.ok, true);
      assert.equal(closed.status, 405);
      const snap = recorder.snapshot(1);
      const total = snap.endpoints.reduce((n, e) => n + e.count, 0);
      assert.equal(total, demo.requests());
      assert.equal(ep(snap, "tools/call")?.count, 2);
      assert.equal(ep(snap, "tools/call")?.failures, 1);
    } finally {
      await client.close();
      await demo.close();
    }
  });

  it("end to end in a run: exact counts per method and thresholds on MCP tools/call", async () => {
    server.received.clear();
    server.violations.length = 0;
    const before = server.total();
    const loadfile = `
import { HttpUser, task, constant, mcpClient } from "cicada-load";
export class Agent extends HttpUser {
  static waitTime = constant(0.01);
  mcp!: ReturnType<typeof mcpClient>;
  async onStart() {
    this.mcp = mcpClient(this.client, "/mcp");
    const r = await this.mcp.initialize();
    if (!r.ok) throw new Error(r.failure);
  }
  @task(3) async echo() { await this.mcp.callTool("echo", { text: "hello" }); }
  @task(1) async list() { await this.mcp.listTools(); }
  async onStop() { await this.mcp.close(); }
}
`;
    const run = await runLoad(loadfile, [
      "-H",
      server.url,
      "-u",
      "3",
      "-r",
      "30",
      "-t",
      "2s",
      "-s",
      "5",
      "--threshold",
      "MCP tools/call: p95<5000",
      "--threshold",
      "MCP tools/call: p50<1",
      "--threshold",
      "MCP tools/call: error_rate<1%",
    ]);
    assert.equal(run.code, 3, describeRun(run));
    assert.deepEqual(server.violations, []);
    const [slack, tight, errors] = run.result.thresholds!;
    assert.equal(slack?.passed, true, JSON.stringify(slack));
    assert.equal(tight?.passed, false, JSON.stringify(tight));
    assert.ok((tight?.value ?? 0) >= 1, "tools/call takes at least the server's 5 ms");
    assert.equal(errors?.passed, true, JSON.stringify(errors));

    const byName = new Map(run.result.endpoints.map((e) => [`${e.type} ${e.name}`, e]));
    const expect: Record<string, string> = {
      initialize: "MCP initialize",
      "notifications/initialized": "MCP notifications/initialized",
      "tools/list": "MCP tools/list",
      "tools/call": "MCP tools/call",
      DELETE: "MCP close",
    };
    for (const [method, key] of Object.entries(expect)) {
      const e = byName.get(key);
      assert.ok(e, `${key} in ${[...byName.keys()]}`);
      assert.equal(e.requests + e.cancelled, server.received.get(method), key);
      assert.equal(e.failures, 0, key);
    }
    assert.equal(server.received.get("initialize"), 3);
    assert.ok((server.received.get("tools/call") ?? 0) > 20);
    assert.equal(run.result.endpoints.length, 5, [...byName.keys()].join(", "));
    assert.equal(run.result.totals.requests + run.result.totals.cancelled, server.total() - before);
    assert.ok((byName.get("MCP tools/call")?.counters?.messages ?? 0) > 40);
  });
});
