/**
 * The JSON-RPC 2.0 helper against real loopback servers: one sample per call under
 * ("JSONRPC", "", method), none under HTTP, and every kind of bad reply a failure, never a throw.
 */
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";
import { startDemoServer } from "../src/demo/server.js";
import { HttpSession } from "../src/protocols/http/session.js";
import { jsonRpc } from "../src/protocols/jsonrpc/client.js";
import { Recorder } from "../src/stats/recorder.js";
import type { StatsSnapshot } from "../src/stats/snapshot.js";
import { describeRun, readBody, runLoad, startServer, type TestServer } from "./helpers.js";

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

/** A JSON-RPC server whose methods each misbehave in one way. */
async function scriptedServer(): Promise<TestServer & { ids: unknown[]; methods: string[] }> {
  const ids: unknown[] = [];
  const methods: string[] = [];
  const server = await startServer(async (req, res) => {
    const raw = await readBody(req);
    const msg = JSON.parse(raw);
    if (Array.isArray(msg)) {
      for (const m of msg) methods.push(m.method);
      const replies = msg
        .filter((m) => m.id !== undefined)
        .map((m) =>
          m.method === "boom"
            ? { jsonrpc: "2.0", id: m.id, error: { code: -32000, message: "kaput" } }
            : { jsonrpc: "2.0", id: m.id, result: m.params },
        );
      return json(res, 200, replies);
    }
    methods.push(msg.method);
    ids.push(msg.id);
    const reply = (result: unknown) => json(res, 200, { jsonrpc: "2.0", id: msg.id, result });
    switch (msg.method) {
      case "echo":
        return reply(msg.params);
      case "boom":
        return json(res, 200, {
          jsonrpc: "2.0",
          id: msg.id,
          error: { code: -32000, message: "kaput", data: 7 },
        });
      case "html":
        res.writeHead(200, { "content-type": "text/html" });
        return res.end("<html>oops</html>");
      case "wrong-id":
        return json(res, 200, { jsonrpc: "2.0", id: msg.id + 1000, result: 1 });
      case "http500":
        res.writeHead(500);
        return res.end("internal");
      case "stream":
        res.writeHead(200, { "content-type": "text/event-stream" });
        res.write(
          `event: message\ndata: ${JSON.stringify({ jsonrpc: "2.0", method: "progress", params: { p: 1 } })}\n\n`,
        );
        return res.end(`data: ${JSON.stringify({ jsonrpc: "2.0", id: msg.id, result: "streamed" })}\n\n`);
      case "slow":
        return setTimeout(() => reply("late"), 1500);
      default:
        if (msg.id === undefined) {
          res.writeHead(202);
          return res.end();
        }
        return json(res, 200, {
          jsonrpc: "2.0",
          id: msg.id,
          error: { code: -32601, message: "Method not found" },
        });
    }
  });
  return Object.assign(server, { ids, methods });
}

function session(baseUrl: string, recorder: Recorder, engine: "fast" | "undici" = "fast"): HttpSession {
  return new HttpSession({ recorder, baseUrl, signal: new AbortController().signal, engine });
}

function endpoint(snap: StatsSnapshot, type: string, name: string) {
  return snap.endpoints.find((e) => e.type === type && e.method === "" && e.name === name);
}

describe("JSON-RPC over HTTP", () => {
  let server: Awaited<ReturnType<typeof scriptedServer>>;
  before(async () => {
    server = await scriptedServer();
  });
  after(async () => {
    await server.close();
  });

  it("a call returns its result, ids increase per client, one JSONRPC sample and no HTTP sample per call", async () => {
    const recorder = new Recorder("t");
    const client = session(server.url, recorder);
    const rpc = jsonRpc(client, "/rpc");
    server.ids.length = 0;
    for (let i = 0; i < 5; i++) {
      const r = await rpc.call("echo", { i });
      assert.equal(r.ok, true, r.failure);
      assert.deepEqual(r.result, { i });
      assert.equal(r.status, 200);
    }
    const other = jsonRpc(client, "/rpc", { name: "b" });
    await other.call("echo", {});
    assert.deepEqual(server.ids, [1, 2, 3, 4, 5, 1]);
    const snap = recorder.snapshot(1);
    assert.equal(endpoint(snap, "JSONRPC", "echo")?.count, 5);
    assert.equal(endpoint(snap, "JSONRPC", "b echo")?.count, 1);
    assert.equal(endpoint(snap, "JSONRPC", "echo")?.failures, 0);
    assert.deepEqual(endpoint(snap, "JSONRPC", "echo")?.statuses, { 200: 5 });
    assert.equal(snap.endpoints.filter((e) => e.type === "HTTP").length, 0, JSON.stringify(snap.endpoints));
    assert.equal(snap.errors.length, 0);
    await client.close();
  });

  it("an RPC error, a non-JSON body, a mismatched id, an HTTP 500 and a refused connection are failures, not throws", async () => {
    const recorder = new Recorder("t");
    const client = session(server.url, recorder);
    const rpc = jsonRpc(client, "/rpc");
    const boom = await rpc.call("boom");
    assert.equal(boom.ok, false);
    assert.deepEqual(boom.error, { code: -32000, message: "kaput", data: 7 });
    assert.equal(boom.failure, "RPC error -32000: kaput");
    const html = await rpc.call("html");
    assert.equal(html.ok, false);
    assert.equal(html.failure, "RPC reply not JSON");
    const wrong = await rpc.call("wrong-id");
    assert.equal(wrong.ok, false);
    assert.equal(wrong.failure, "RPC reply id mismatch");
    const e500 = await rpc.call("http500");
    assert.equal(e500.ok, false);
    assert.equal(e500.status, 500);
    assert.equal(e500.failure, "HTTP 500");
    const missing = await rpc.call("nope");
    assert.equal(missing.failure, "RPC error -32601: Method not found");

    const closed = await startServer((_req, res) => res.end());
    const deadUrl = closed.url;
    await closed.close();
    const dead = jsonRpc(session(deadUrl, recorder), "/rpc");
    const refused = await dead.call("echo", {}, { name: "dead" });
    assert.equal(refused.ok, false);
    assert.equal(refused.status, 0);
    assert.match(refused.failure ?? "", /ECONNREFUSED|refused/i);

    const snap = recorder.snapshot(1);
    const errs = new Map(snap.errors.map((e) => [`${e.name}|${e.error}`, e.occurrences]));
    assert.equal(errs.get("boom|RPC error -32000: kaput"), 1);
    assert.equal(errs.get("html|RPC reply not JSON"), 1);
    assert.equal(errs.get("wrong-id|RPC reply id mismatch"), 1);
    assert.equal(errs.get("http500|HTTP 500"), 1);
    assert.equal(errs.get("nope|RPC error -32601: Method not found"), 1);
    for (const name of ["boom", "html", "wrong-id", "http500", "nope", "dead"]) {
      const e = endpoint(snap, "JSONRPC", name);
      assert.equal(e?.count, 1, name);
      assert.equal(e?.failures, 1, name);
    }
    assert.equal(snap.endpoints.filter((e) => e.type === "HTTP").length, 0);
    await client.close();
  });

  it("records the same way on the undici engine", async () => {
    const recorder = new Recorder("t");
    const client = session(server.url, recorder, "undici");
    const rpc = jsonRpc(client, "/rpc");
    assert.equal((await rpc.call("echo", 1)).result, 1);
    assert.equal((await rpc.call("boom")).failure, "RPC error -32000: kaput");
    const snap = recorder.snapshot(1);
    assert.equal(endpoint(snap, "JSONRPC", "echo")?.count, 1);
    assert.equal(endpoint(snap, "JSONRPC", "boom")?.failures, 1);
    assert.equal(snap.endpoints.filter((e) => e.type === "HTTP").length, 0);
    await client.close();
  });

  it("reads a reply framed as an event stream, after the server's notifications", async () => {
    const recorder = new Recorder("t");
    const client = session(server.url, recorder);
    const r = await jsonRpc(client, "/rpc").call("stream");
    assert.equal(r.ok, true, r.failure);
    assert.equal(r.result, "streamed");
    assert.deepEqual(r.messages, [{ jsonrpc: "2.0", method: "progress", params: { p: 1 } }]);
    const snap = recorder.snapshot(1);
    assert.deepEqual(endpoint(snap, "JSONRPC", "stream")?.counters, { messages: 1 });
    await client.close();
  });

  it("notifications, batches and timeouts", async () => {
    const recorder = new Recorder("t");
    const client = session(server.url, recorder);
    const rpc = jsonRpc(client, "/rpc");
    const n = await rpc.notify("tick", { a: 1 });
    assert.equal(n.ok, true, n.failure);
    assert.equal(n.status, 202);
    const results = await rpc.batch([
      { method: "echo", params: 1 },
      { method: "tick", notification: true },
      { method: "boom" },
      { method: "echo", params: 3 },
    ]);
    assert.deepEqual(
      results.map((r) => [r.ok, r.result, r.failure]),
      [
        [true, 1, undefined],
        [false, undefined, "RPC error -32000: kaput"],
        [true, 3, undefined],
      ],
    );
    const slow = await rpc.call("slow", undefined, { timeout: 0.3 });
    assert.equal(slow.ok, false);
    assert.match(slow.failure ?? "", /timeout/i);
    const snap = recorder.snapshot(1);
    assert.equal(endpoint(snap, "JSONRPC", "tick")?.count, 1);
    assert.equal(endpoint(snap, "JSONRPC", "batch")?.count, 1);
    assert.equal(endpoint(snap, "JSONRPC", "batch")?.failures, 1);
    assert.equal(endpoint(snap, "JSONRPC", "slow")?.failures, 1);
    await client.close();
  });

  it("A2A message/send on the demo target, end to end in a run: counts match what the server received", async () => {
    const demo = await startDemoServer();
    try {
      const loadfile = `
import { HttpUser, task, jsonRpc } from "cicada-load";
export class Agent extends HttpUser {
  rpc!: ReturnType<typeof jsonRpc>;
  onStart() { this.rpc = jsonRpc(this.client, "/api/v1/a2a"); }
  @task(5) async send() {
    const r = await this.rpc.call("message/send", {
      message: { role: "user", messageId: String(Math.random()), parts: [{ kind: "text", text: "hi" }] },
    });
    if (r.ok && r.result.kind !== "task") throw new Error("not a task");
  }
  @task(1) async bad() { await this.rpc.call("tasks/unknown", {}); }
}
`;
      const run = await runLoad(loadfile, ["-H", demo.url, "-u", "3", "-r", "30", "-t", "2s", "-s", "5"]);
      assert.equal(run.code, 1, describeRun(run));
      const eps = run.result.endpoints;
      assert.deepEqual(eps.map((e) => `${e.type}|${e.method}|${e.name}`).sort(), [
        "JSONRPC||message/send",
        "JSONRPC||tasks/unknown",
      ]);
      const send = eps.find((e) => e.name === "message/send")!;
      const bad = eps.find((e) => e.name === "tasks/unknown")!;
      assert.ok(send.requests > 10, `requests ${send.requests}`);
      assert.equal(send.failures, 0);
      assert.equal(bad.failures, bad.requests);
      assert.equal(send.requests + bad.requests + send.cancelled + bad.cancelled, demo.requests());
      assert.deepEqual(
        run.result.failures.map((f) => f.error),
        ["RPC error -32601: Method not found: tasks/unknown"],
      );
      assert.equal(run.result.exceptions.length, 0, JSON.stringify(run.result.exceptions));
    } finally {
      await demo.close();
    }
  });
});

describe("JSON-RPC at the hard stop", () => {
  it("a call cut off by the hard stop is cancelled under its own type, with no HTTP row", async () => {
    const server = await startServer((req) => req.resume()); // never answers
    const rec = new Recorder("t");
    const stop = new AbortController();
    const session = new HttpSession({ recorder: rec, baseUrl: server.url, signal: stop.signal });
    try {
      const rpc = jsonRpc(session, "/rpc");
      setTimeout(() => stop.abort(), 150);
      await assert.rejects(rpc.call("slow/method", {}), (err: Error) => err.name === "RunStopped");
      const rows = rec.snapshot(1).endpoints;
      assert.deepEqual(
        rows.map((e) => [e.type, e.method, e.name, e.cancelled, e.count]),
        [["JSONRPC", "", "slow/method", 1, 0]],
      );
    } finally {
      await session.close(true);
      await server.close();
    }
  });
});
