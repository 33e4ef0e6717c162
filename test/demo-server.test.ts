import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { type DemoServer, startDemoServer } from "../src/demo/server.js";

const JOB_MS = 300;

async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

describe("demo server", () => {
  let server: DemoServer;

  before(async () => {
    server = await startDemoServer({ latencyMs: [1, 5], jobDurationMs: JOB_MS });
  });

  after(async () => {
    await server.close();
  });

  it("binds to a free loopback port and reports its url", () => {
    assert.ok(server.port > 0);
    assert.equal(server.url, `http://127.0.0.1:${server.port}`);
  });

  it("GET /health", async () => {
    const res = await fetch(`${server.url}/health`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    assert.deepEqual(await res.json(), { status: "ok" });
  });

  it("unknown route is a 404 with a JSON error", async () => {
    const res = await fetch(`${server.url}/nope`);
    assert.equal(res.status, 404);
    const body = (await res.json()) as { error: string };
    assert.equal(typeof body.error, "string");
  });

  it("wrong method on a known route is a 405 with Allow", async () => {
    const res = await fetch(`${server.url}/health`, { method: "DELETE" });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET");
    await res.body?.cancel();
  });

  describe("agents/invoke", () => {
    it("returns response, agent_id and tokens", async () => {
      const res = await postJson(`${server.url}/api/v1/agents/invoke`, {
        agent_id: "a-1",
        message: "What is the weather?",
        context: { user: "u1" },
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { response: string; agent_id: string; tokens: number };
      assert.equal(body.agent_id, "a-1");
      assert.match(body.response, /What is the weather\?/);
      assert.ok(Number.isInteger(body.tokens) && body.tokens > 0);
    });

    it("defaults agent_id", async () => {
      const res = await postJson(`${server.url}/api/v1/agents/invoke`, { message: "hi" });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { agent_id: string };
      assert.equal(typeof body.agent_id, "string");
      assert.ok(body.agent_id.length > 0);
    });

    it("missing message is a 422", async () => {
      const res = await postJson(`${server.url}/api/v1/agents/invoke`, { agent_id: "a-1" });
      assert.equal(res.status, 422);
      assert.equal(typeof ((await res.json()) as { error: string }).error, "string");
    });

    it("malformed JSON is a 400", async () => {
      const res = await postJson(`${server.url}/api/v1/agents/invoke`, "{not json");
      assert.equal(res.status, 400);
      await res.body?.cancel();
    });

    it("latency stays within the configured range", async () => {
      const slowServer = await startDemoServer({ latencyMs: [60, 80] });
      try {
        const started = performance.now();
        const res = await postJson(`${slowServer.url}/api/v1/agents/invoke`, { message: "x" });
        const elapsed = performance.now() - started;
        assert.equal(res.status, 200);
        await res.json();
        assert.ok(elapsed >= 55, `elapsed ${elapsed}`);
      } finally {
        await slowServer.close();
      }
    });
  });

  describe("agents/stream", () => {
    function parseEvents(text: string): string[] {
      return text
        .split("\n\n")
        .filter((block) => block.startsWith("data: "))
        .map((block) => block.slice("data: ".length));
    }

    function checkStream(events: string[]): void {
      assert.equal(events.at(-1), "[DONE]");
      const chunks = events.slice(0, -1);
      assert.ok(chunks.length >= 8 && chunks.length <= 20, `chunk count ${chunks.length}`);
      for (const data of chunks) {
        const chunk = JSON.parse(data) as { choices: { delta: { content: string } }[] };
        assert.equal(typeof chunk.choices[0]?.delta.content, "string");
        assert.ok(chunk.choices[0]!.delta.content.length > 0);
      }
    }

    it("POST streams chat-completion chunks ending with [DONE]", async () => {
      const res = await postJson(`${server.url}/api/v1/agents/stream`, { message: "tell me a story" });
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      checkStream(parseEvents(await res.text()));
    });

    it("GET with ?message= streams too", async () => {
      const res = await fetch(`${server.url}/api/v1/agents/stream?message=hello`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
      checkStream(parseEvents(await res.text()));
    });

    it("chunks arrive spread out over time", async () => {
      const started = performance.now();
      const res = await fetch(`${server.url}/api/v1/agents/stream`);
      await res.text();
      // 9 gaps (8 chunks + DONE) of at least 10 ms each.
      assert.ok(performance.now() - started >= 80);
    });

    it("survives a client disconnecting mid-stream", async () => {
      await new Promise<void>((resolve, reject) => {
        const req = request(`${server.url}/api/v1/agents/stream`, (res) => {
          res.once("data", () => {
            req.destroy();
            resolve();
          });
        });
        req.on("error", (err) =>
          (err as NodeJS.ErrnoException).code === "ECONNRESET" ? resolve() : reject(err),
        );
        req.end();
      });
      // Give the server a few chunk intervals in which it would write to the dead socket.
      await delay(60);
      const res = await fetch(`${server.url}/health`);
      assert.equal(res.status, 200);
      await res.json();
    });
  });

  describe("jobs", () => {
    it("goes pending -> running -> completed", async () => {
      const created = await postJson(`${server.url}/api/v1/jobs`, { task: "summarise" });
      assert.equal(created.status, 202);
      const { job_id, status } = (await created.json()) as { job_id: string; status: string };
      assert.equal(status, "pending");
      assert.equal(typeof job_id, "string");

      const poll = async (): Promise<{ job_id: string; status: string; result?: unknown }> => {
        const res = await fetch(`${server.url}/api/v1/jobs/${job_id}`);
        assert.equal(res.status, 200);
        return (await res.json()) as { job_id: string; status: string; result?: unknown };
      };

      const first = await poll();
      assert.equal(first.job_id, job_id);
      assert.equal(first.status, "pending");
      assert.equal(first.result, undefined);

      await delay(JOB_MS / 2);
      assert.equal((await poll()).status, "running");

      await delay(JOB_MS);
      const done = await poll();
      assert.equal(done.status, "completed");
      assert.ok(done.result !== undefined);
    });

    it("unknown job id is a 404", async () => {
      const res = await fetch(`${server.url}/api/v1/jobs/does-not-exist`);
      assert.equal(res.status, 404);
      await res.json();
    });

    it("missing task is a 422", async () => {
      const res = await postJson(`${server.url}/api/v1/jobs`, {});
      assert.equal(res.status, 422);
      await res.json();
    });
  });

  describe("mcp", () => {
    const rpc = (body: unknown, headers?: Record<string, string>) =>
      postJson(`${server.url}/api/v1/mcp`, body, headers);

    it("initialize returns server info and an Mcp-Session-Id header", async () => {
      const res = await rpc({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-03-26", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      });
      assert.equal(res.status, 200);
      const session = res.headers.get("mcp-session-id");
      assert.ok(session && session.length > 0);
      const body = (await res.json()) as {
        jsonrpc: string;
        id: number;
        result: { protocolVersion: string; serverInfo: { name: string }; capabilities: { tools?: unknown } };
      };
      assert.equal(body.jsonrpc, "2.0");
      assert.equal(body.id, 1);
      assert.equal(body.result.protocolVersion, "2025-03-26");
      assert.equal(typeof body.result.serverInfo.name, "string");
      assert.ok(body.result.capabilities.tools);
    });

    it("notifications get 202 and no body", async () => {
      const res = await rpc({ jsonrpc: "2.0", method: "notifications/initialized" });
      assert.equal(res.status, 202);
      assert.equal(await res.text(), "");
    });

    it("tools/list returns echo and add", async () => {
      const res = await rpc({ jsonrpc: "2.0", id: "l", method: "tools/list" });
      const body = (await res.json()) as {
        id: string;
        result: { tools: { name: string; inputSchema: unknown }[] };
      };
      assert.equal(body.id, "l");
      assert.deepEqual(body.result.tools.map((t) => t.name).sort(), ["add", "echo"]);
      for (const tool of body.result.tools) assert.ok(tool.inputSchema);
    });

    it("tools/call echo and add", async () => {
      const echo = (await (
        await rpc({
          jsonrpc: "2.0",
          id: 2,
          method: "tools/call",
          params: { name: "echo", arguments: { text: "ping" } },
        })
      ).json()) as { result: { content: { type: string; text: string }[] } };
      assert.deepEqual(echo.result.content, [{ type: "text", text: "ping" }]);

      const add = (await (
        await rpc({
          jsonrpc: "2.0",
          id: 3,
          method: "tools/call",
          params: { name: "add", arguments: { a: 2, b: 3.5 } },
        })
      ).json()) as { result: { content: { text: string }[] } };
      assert.equal(add.result.content[0]?.text, "5.5");
    });

    it("unknown tool is an invalid-params error", async () => {
      const res = await rpc({ jsonrpc: "2.0", id: 4, method: "tools/call", params: { name: "nope" } });
      const body = (await res.json()) as { error: { code: number } };
      assert.equal(body.error.code, -32602);
    });

    it("unknown method is -32601", async () => {
      const res = await rpc({ jsonrpc: "2.0", id: 5, method: "resources/list" });
      assert.equal(res.status, 200);
      const body = (await res.json()) as { id: number; error: { code: number; message: string } };
      assert.equal(body.id, 5);
      assert.equal(body.error.code, -32601);
    });

    it("invalid JSON is -32700", async () => {
      const res = await rpc("{oops");
      assert.equal(res.status, 400);
      const body = (await res.json()) as { id: null; error: { code: number } };
      assert.equal(body.id, null);
      assert.equal(body.error.code, -32700);
    });

    it("non-JSON-RPC payload is -32600", async () => {
      const res = await rpc({ id: 1, method: "tools/list" });
      assert.equal(res.status, 400);
      assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32600);
    });
  });

  describe("a2a", () => {
    it("message/send returns a completed task", async () => {
      const res = await postJson(`${server.url}/api/v1/a2a`, {
        jsonrpc: "2.0",
        id: "r1",
        method: "message/send",
        params: {
          message: { role: "user", messageId: "m1", parts: [{ kind: "text", text: "hello agent" }] },
        },
      });
      assert.equal(res.status, 200);
      const body = (await res.json()) as {
        id: string;
        result: {
          kind: string;
          id: string;
          status: { state: string };
          artifacts: { parts: { kind: string; text: string }[] }[];
        };
      };
      assert.equal(body.id, "r1");
      assert.equal(body.result.kind, "task");
      assert.equal(typeof body.result.id, "string");
      assert.equal(body.result.status.state, "completed");
      assert.match(body.result.artifacts[0]?.parts[0]?.text ?? "", /hello agent/);
    });

    it("unknown method is -32601", async () => {
      const res = await postJson(`${server.url}/api/v1/a2a`, { jsonrpc: "2.0", id: 1, method: "tasks/nope" });
      assert.equal(((await res.json()) as { error: { code: number } }).error.code, -32601);
    });
  });

  describe("slow", () => {
    it("responds after the requested delay", async () => {
      const started = performance.now();
      const res = await fetch(`${server.url}/api/v1/slow?ms=50`);
      const elapsed = performance.now() - started;
      assert.deepEqual(await res.json(), { slept: 50 });
      assert.ok(elapsed >= 45, `elapsed ${elapsed}`);
    });

    it("rejects a non-numeric delay", async () => {
      const res = await fetch(`${server.url}/api/v1/slow?ms=abc`);
      assert.equal(res.status, 400);
      await res.json();
    });
  });

  describe("cookies", () => {
    it("set then echo", async () => {
      const set = await fetch(`${server.url}/api/v1/cookie/set?name=session&value=abc%20123`);
      assert.equal(set.status, 200);
      await set.json();
      const cookies = set.headers.getSetCookie();
      assert.equal(cookies.length, 1);
      assert.match(cookies[0]!, /^session=abc%20123; Path=\/$/);

      const pair = cookies[0]!.split(";")[0]!;
      const echo = await fetch(`${server.url}/api/v1/cookie/echo`, {
        headers: { cookie: `${pair}; theme=dark` },
      });
      assert.deepEqual(await echo.json(), { cookies: { session: "abc 123", theme: "dark" } });
    });

    it("echo without cookies is empty", async () => {
      const res = await fetch(`${server.url}/api/v1/cookie/echo`);
      assert.deepEqual(await res.json(), { cookies: {} });
    });

    it("set without a name is a 400", async () => {
      const res = await fetch(`${server.url}/api/v1/cookie/set?value=x`);
      assert.equal(res.status, 400);
      await res.json();
    });
  });

  describe("redirect", () => {
    it("302 with Location", async () => {
      const res = await fetch(`${server.url}/api/v1/redirect?to=/health`, { redirect: "manual" });
      assert.equal(res.status, 302);
      assert.equal(res.headers.get("location"), "/health");
      await res.body?.cancel();
    });

    it("followed by fetch lands on the target", async () => {
      const res = await fetch(`${server.url}/api/v1/redirect?to=/health`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { status: "ok" });
    });

    it("refuses off-site targets", async () => {
      const res = await fetch(`${server.url}/api/v1/redirect?to=//evil.example`, { redirect: "manual" });
      assert.equal(res.status, 400);
      await res.json();
    });
  });
});

describe("demo server rate limiting", () => {
  it("returns 429 with Retry-After once the bucket is empty", async () => {
    const server = await startDemoServer({ rateLimitPerSec: 5 });
    try {
      const statuses: number[] = [];
      let retryAfter: string | null = null;
      for (let i = 0; i < 12; i++) {
        const res = await fetch(`${server.url}/api/v1/limited`);
        statuses.push(res.status);
        if (res.status === 429) retryAfter ??= res.headers.get("retry-after");
        const body = await res.json();
        if (res.status === 200) assert.deepEqual(body, { ok: true });
      }
      // The bucket starts full, so the first `rate` requests always pass.
      assert.deepEqual(statuses.slice(0, 5), [200, 200, 200, 200, 200]);
      assert.ok(statuses.includes(429), `statuses ${statuses.join(",")}`);
      assert.ok(retryAfter !== null && Number(retryAfter) >= 1, `retry-after ${retryAfter}`);

      // One token refills in 1/rate seconds.
      await delay(250);
      const again = await fetch(`${server.url}/api/v1/limited`);
      assert.equal(again.status, 200);
      await again.json();
    } finally {
      await server.close();
    }
  });
});

describe("demo server lifecycle", () => {
  it("requests() counts every request, errors included", async () => {
    const server = await startDemoServer();
    try {
      assert.equal(server.requests(), 0);
      await (await fetch(`${server.url}/health`)).json();
      await (await fetch(`${server.url}/missing`)).json();
      await (await postJson(`${server.url}/api/v1/agents/invoke`, "nope")).json();
      assert.equal(server.requests(), 3);
    } finally {
      await server.close();
    }
  });

  it("close() is prompt despite keep-alive sockets and pending timers", async () => {
    const server = await startDemoServer();
    // Leaves an idle keep-alive connection in fetch's pool.
    await (await fetch(`${server.url}/health`)).json();
    // And an in-flight request whose timer would otherwise hold the process for 30 s.
    const pending = fetch(`${server.url}/api/v1/slow?ms=30000`).then(
      () => "resolved",
      () => "rejected",
    );
    await delay(20);
    const started = performance.now();
    await server.close();
    assert.ok(performance.now() - started < 1000);
    assert.equal(await pending, "rejected");
    // Idempotent.
    await server.close();
  });

  it("generations() counts the chat completions running and queued", async () => {
    const server = await startDemoServer({ capacity: 1, queue: 1, firstTokenDelayMs: 5, tokenDelayMs: 5 });
    try {
      const body = { stream: true, max_tokens: 20, messages: [{ role: "user", content: "hi" }] };
      const first = await postJson(`${server.url}/v1/chat/completions`, body);
      const second = await postJson(`${server.url}/v1/chat/completions`, body);
      assert.deepEqual(server.generations(), { active: 1, queued: 1 });
      await Promise.all([first.text(), second.text()]);
      assert.deepEqual(server.generations(), { active: 0, queued: 0 });
    } finally {
      await server.close();
    }
  });

  it("rejects invalid options", async () => {
    await assert.rejects(startDemoServer({ capacity: 0 }), RangeError);
    await assert.rejects(startDemoServer({ queue: -1 }), RangeError);
    await assert.rejects(startDemoServer({ tokenDelayMs: Number.NaN }), RangeError);
    await assert.rejects(startDemoServer({ rateLimitPerSec: 0 }), RangeError);
    await assert.rejects(startDemoServer({ latencyMs: [-1, 5] }), RangeError);
  });

  it("reports listen errors", async () => {
    const first = await startDemoServer();
    try {
      await assert.rejects(startDemoServer({ port: first.port }), /EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});
