/**
 * SSE streams against real loopback servers: event and token timing checked against the
 * server's own send times, exact counts, every kind of broken stream recorded as a failure.
 */
import assert from "node:assert/strict";
import type { ServerResponse } from "node:http";
import { after, before, describe, it } from "node:test";
import { RunStopped } from "../src/api/errors.js";
import { type DemoServer, startDemoServer } from "../src/demo/server.js";
import { HttpSession } from "../src/protocols/http/session.js";
import { Recorder } from "../src/stats/recorder.js";
import type { EndpointDelta } from "../src/stats/snapshot.js";
import { describeRun, runLoad, startServer, type TestServer } from "./helpers.js";

const chunk = (content: string): string =>
  `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content } }] })}\n\n`;

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
}

/** A client as a user has it, recording into its own books. */
function client(baseUrl: string) {
  const rec = new Recorder("test");
  const stop = new AbortController();
  const session = new HttpSession({ recorder: rec, baseUrl, signal: stop.signal });
  return {
    session,
    stop,
    snapshot: () => rec.snapshot(1),
    close: () => session.close(true),
  };
}

function sseEndpoint(endpoints: EndpointDelta[]): EndpointDelta {
  const e = endpoints.find((x) => x.type === "SSE");
  assert.ok(e, "an SSE endpoint was recorded");
  return e;
}

const CHAT = { stream: true, messages: [{ role: "user", content: "hello" }] };

/** Misbehaving endpoints, one per way a stream can break. */
function brokenServer(): Promise<TestServer> {
  return startServer((req, res) => {
    req.resume();
    const path = (req.url ?? "").split("?")[0];
    if (path === "/malformed") {
      sseHead(res);
      res.write(chunk("one "));
      res.end("data: {not json\n\n");
    } else if (path === "/abrupt") {
      sseHead(res);
      res.write(chunk("one "));
      setTimeout(() => res.socket?.destroy(), 30);
    } else if (path === "/early") {
      sseHead(res);
      res.write(chunk("one "));
      res.end(chunk("two "));
    } else if (path === "/json") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ choices: [] }));
    } else if (path === "/stall") {
      sseHead(res);
      res.write(chunk("one "));
      // Never ends: only the client's timeout finishes it.
    } else if (path === "/done-open") {
      sseHead(res);
      res.write(chunk("one "));
      res.write("data: [DONE]\n\n");
      // Never ends: [DONE] alone completes the stream.
    } else if (path === "/error500") {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("boom");
    } else if (path === "/plain") {
      sseHead(res);
      res.write("event: greeting\nid: 1\ndata: hello\n\n: a comment is no event\n\n");
      res.write("data: two words\ndata: and more\n\n");
      res.end("data: last\n\n");
    } else {
      res.writeHead(404).end();
    }
  });
}

describe("SSE client", () => {
  let demo: DemoServer;
  let broken: TestServer;
  before(async () => {
    demo = await startDemoServer({ firstTokenDelayMs: 30, tokenDelayMs: 5 });
    broken = await brokenServer();
  });
  after(async () => {
    await demo.close();
    await broken.close();
  });

  it("OpenAI preset against the demo: exact tokens and events, text, and every metric", async () => {
    const c = client(demo.url);
    try {
      const r = await c.session.sse("/v1/chat/completions", {
        json: { ...CHAT, max_tokens: 7, stream_options: { include_usage: true } },
        tokens: "openai",
      });
      assert.equal(r.error, null);
      assert.equal(r.end, "completed");
      assert.equal(r.status, 200);
      assert.equal(r.tokens, 7);
      // role chunk, 7 content chunks, finish chunk, usage chunk, [DONE]
      assert.equal(r.events.length, 11);
      assert.equal(r.events.at(-1)?.data, "[DONE]");
      assert.equal(r.text.split(" ").filter(Boolean).length, 7);
      assert.ok(r.ttftMs !== null && r.ttftMs >= 30, `ttft ${r.ttftMs}`);
      assert.ok(r.ttfeMs !== null && r.ttfeMs < r.ttftMs, "the role chunk comes before the first token");
      // The server sends the last token no sooner than 30 + 6·5 ms after the request; on a busy
      // machine tokens may arrive bunched, so the gap after the first one can look shorter.
      assert.ok(r.durationMs >= 30 + 6 * 5 && r.durationMs >= r.ttftMs, `duration ${r.durationMs}`);
      const e = sseEndpoint(c.snapshot().endpoints);
      assert.equal(e.method, "POST");
      assert.equal(e.name, "/v1/chat/completions");
      assert.equal(e.count, 1);
      assert.equal(e.failures, 0);
      // The demo's own counts, from the usage chunk it sent.
      const sent = JSON.parse(r.events.at(-2)!.data).usage as {
        completion_tokens: number;
        prompt_tokens: number;
      };
      assert.equal(r.outputTokens, sent.completion_tokens);
      assert.equal(r.inputTokens, sent.prompt_tokens);
      assert.deepEqual(e.counters, {
        events: 11,
        tokens: 7,
        "end:completed": 1,
        output_tokens: sent.completion_tokens,
        "output_tokens_from:usage": 1,
        input_tokens: sent.prompt_tokens,
        "input_tokens_from:usage": 1,
      });
      for (const m of ["ttfe", "gap", "ttft", "itl", "tokens_per_sec", "tpot", "e2el", "output_tokens"])
        assert.ok(e.metrics?.[m], m);
    } finally {
      await c.close();
    }
  });

  it("without a token counter only events are measured; event, id and multi-line data are kept", async () => {
    const c = client(broken.url);
    try {
      const r = await c.session.sse("/plain");
      assert.equal(r.error, null);
      assert.deepEqual(r.events, [
        { event: "greeting", id: "1", data: "hello" },
        { data: "two words\nand more" },
        { data: "last" },
      ]);
      assert.equal(r.ttftMs, null);
      const e = sseEndpoint(c.snapshot().endpoints);
      assert.equal(e.method, "GET");
      assert.deepEqual(e.counters, { events: 3, "end:completed": 1 });
      assert.deepEqual(Object.keys(e.metrics ?? {}).sort(), ["gap", "ttfe"]);
    } finally {
      await c.close();
    }
  });

  it("a custom counter: text counts its words, numbers count as given", async () => {
    const c = client(broken.url);
    try {
      const words = await c.session.sse("/plain", { tokens: (ev) => ev.data });
      assert.equal(words.tokens, 1 + 4 + 1);
      assert.equal(words.text, "hellotwo words\nand morelast");
      const counted = await c.session.sse("/plain", { name: "counted", tokens: (ev) => (ev.event ? 0 : 3) });
      assert.equal(counted.tokens, 6);
    } finally {
      await c.close();
    }
  });

  it("onEvent can stop a stream: a success, with what arrived so far", async () => {
    const c = client(demo.url);
    try {
      let seen = 0;
      const r = await c.session.sse("/v1/chat/completions", {
        json: { ...CHAT, max_tokens: 50 },
        tokens: "openai",
        onEvent: () => (++seen === 3 ? "stop" : undefined),
      });
      assert.equal(r.error, null);
      assert.equal(r.end, "completed");
      assert.equal(r.events.length, 3);
      assert.equal(r.tokens, 2);
    } finally {
      await c.close();
    }
  });

  it("every broken stream is a failure with its own error text, and nothing throws", async () => {
    const c = client(broken.url);
    try {
      const cases: Array<[string, string, "error" | "timeout"]> = [
        ["/malformed", "SSE malformed: data is not JSON", "error"],
        ["/abrupt", "connection closed by server", "error"],
        ["/early", "SSE closed early", "error"],
        ["/json", "SSE bad content type: application/json", "error"],
        ["/stall", "SSE timeout", "timeout"],
        ["/error500", "HTTP 500", "error"],
      ];
      for (const [path, error, end] of cases) {
        const t0 = performance.now();
        const r = await c.session.sse(path, { json: CHAT, tokens: "openai", timeout: 0.4 });
        assert.equal(r.error, error, path);
        assert.equal(r.end, end, path);
        assert.equal(r.ok, false);
        if (path === "/stall") {
          assert.ok(r.durationMs >= 390 && performance.now() - t0 < 3000, `timeout after ${r.durationMs} ms`);
          assert.equal(r.tokens, 1, "what arrived before the timeout is kept");
        }
      }
      const refused = await c.session.sse("http://127.0.0.1:1/nothing", { tokens: "openai" });
      assert.equal(refused.status, 0);
      assert.match(refused.error ?? "", /ECONNREFUSED/);

      const snap = c.snapshot();
      for (const [path, error, end] of cases) {
        const e = snap.endpoints.find((x) => x.type === "SSE" && x.name === path);
        assert.ok(e, path);
        assert.equal(e.failures, 1, path);
        assert.equal(e.counters?.[`end:${end}`], 1, path);
        assert.ok(
          snap.errors.some((x) => x.name === path && x.error === error && x.method === "POST"),
          path,
        );
      }
    } finally {
      await c.close();
    }
  });

  it("[DONE] completes a stream that the server keeps open", async () => {
    const c = client(broken.url);
    try {
      const t0 = performance.now();
      const r = await c.session.sse("/done-open", { tokens: "openai", timeout: 30 });
      assert.equal(r.error, null);
      assert.equal(r.tokens, 1);
      assert.ok(r.durationMs < 500, `duration to [DONE] ${r.durationMs}`);
      assert.ok(performance.now() - t0 < 5000, "not left waiting for the server to close");
    } finally {
      await c.close();
    }
  });

  it("the run's hard stop cancels a stream: counted as cancelled, RunStopped thrown", async () => {
    const c = client(broken.url);
    try {
      setTimeout(() => c.stop.abort(), 100);
      await assert.rejects(c.session.sse("/stall", { tokens: "openai" }), RunStopped);
      const e = sseEndpoint(c.snapshot().endpoints);
      assert.equal(e.cancelled, 1);
      assert.equal(e.count, 0);
      assert.equal(e.failures, 0);
    } finally {
      await c.close();
    }
  });
});

const CHAT_LOADFILE = `
import { HttpUser, task } from "cicada-load";
export class Chat extends HttpUser {
  @task async chat() {
    await this.client.sse("/v1/chat/completions", {
      json: { stream: true, messages: [{ role: "user", content: "hi" }] },
      tokens: "openai",
    });
  }
}
`;

/** The lower median, as the result's p50 reads it from its histogram. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.ceil(s.length / 2) - 1]!;
}

describe("SSE in a run", () => {
  it("ttft and itl match the server's own send times (medians: itl within 2 ms, ttft plus the loopback trip); counts are exact", async () => {
    const TOKENS = 10;
    const STREAMS = 15;
    const serverTtft: number[] = [];
    const serverGaps: number[] = [];
    const server = await startServer((req, res) => {
      const arrival = performance.now();
      req.resume();
      sseHead(res);
      const writes: number[] = [];
      const tick = (): void => {
        writes.push(performance.now());
        res.write(chunk(`w${writes.length} `));
        if (writes.length < TOKENS) {
          setTimeout(tick, 20);
          return;
        }
        res.end("data: [DONE]\n\n");
        serverTtft.push(writes[0]! - arrival);
        for (let i = 1; i < writes.length; i++) serverGaps.push(writes[i]! - writes[i - 1]!);
      };
      setTimeout(tick, 50);
    });
    try {
      const run = await runLoad(CHAT_LOADFILE, [
        "-H",
        server.url,
        "-u",
        "1",
        "--iterations-per-user",
        String(STREAMS),
      ]);
      assert.equal(run.code, 0, describeRun(run));
      const e = run.result.endpoints.find((x) => x.type === "SSE");
      assert.ok(e, "SSE endpoint in the result");
      assert.equal(e.requests, STREAMS);
      assert.equal(e.failures, 0);
      // No usage from this server: the chunks counted are the output tokens.
      assert.deepEqual(e.counters, {
        "end:completed": STREAMS,
        events: STREAMS * (TOKENS + 1),
        tokens: STREAMS * TOKENS,
        output_tokens: STREAMS * TOKENS,
        "output_tokens_from:preset": STREAMS,
      });
      const m = e.metrics!;
      assert.equal(m.ttft!.count, STREAMS);
      assert.equal(m.ttfe!.count, STREAMS);
      assert.equal(m.itl!.count, STREAMS * (TOKENS - 1));
      assert.equal(m.gap!.count, STREAMS * TOKENS);
      assert.equal(m.tokens_per_sec!.count, STREAMS);
      assert.equal(serverTtft.length, STREAMS);
      const ttft = median(serverTtft);
      const itl = median(serverGaps);
      // The client's clock starts before the request reaches the server, so its ttft is the
      // server's plus the trip over loopback (about 1 ms, a few on a busy machine), never less.
      assert.ok(
        m.ttft!.p50 >= ttft - 0.5 && m.ttft!.p50 <= ttft + 5,
        `client ttft p50 ${m.ttft!.p50} vs server ${ttft}`,
      );
      assert.ok(Math.abs(m.itl!.p50 - itl) <= 2, `client itl p50 ${m.itl!.p50} vs server ${itl}`);
      // tokens_per_sec is the inverse of a stream's mean itl.
      assert.ok(Math.abs(m.tokens_per_sec!.p50 - 1000 / itl) < 10, `tokens/s ${m.tokens_per_sec!.p50}`);
    } finally {
      await server.close();
    }
  });

  it("thresholds on ttft pass and fail as they should", async () => {
    const demo = await startDemoServer({ firstTokenDelayMs: 60, tokenDelayMs: 2 });
    try {
      const args = ["-H", demo.url, "-u", "1", "--iterations-per-user", "5", "--processes", "1"];
      const pass = await runLoad(CHAT_LOADFILE, [
        ...args,
        "--threshold",
        "SSE /v1/chat/completions: ttft p95<5000",
        "--threshold",
        "SSE POST /v1/chat/completions: ttft min>=60",
      ]);
      assert.equal(pass.code, 0, describeRun(pass));
      assert.ok(pass.result.thresholds?.every((t) => t.passed));
      const fail = await runLoad(CHAT_LOADFILE, [
        ...args,
        "--threshold",
        "SSE /v1/chat/completions: ttft p95<40",
      ]);
      assert.equal(fail.code, 3, describeRun(fail));
      const t = fail.result.thresholds![0]!;
      assert.equal(t.passed, false);
      assert.ok(t.value !== null && t.value >= 60, `ttft p95 ${t.value}`);
    } finally {
      await demo.close();
    }
  });

  it("broken streams fail the run (exit 1, not a crash) with their error texts", async () => {
    const server = await brokenServer();
    try {
      const loadfile = `
import { HttpUser, task } from "cicada-load";
export class Broken extends HttpUser {
  @task async all() {
    for (const path of ["/malformed", "/abrupt", "/early", "/json", "/stall"]) {
      const r = await this.client.sse(path, { json: { stream: true }, tokens: "openai", timeout: 0.4 });
      if (r.ok) throw new Error(path + " should have failed");
    }
  }
}
`;
      const run = await runLoad(loadfile, ["-H", server.url, "-u", "1", "--iterations-per-user", "1"]);
      assert.equal(run.code, 1, describeRun(run));
      assert.deepEqual(run.result.exceptions, []);
      const errors = new Map(run.result.failures.map((f) => [f.name, f.error]));
      assert.deepEqual(Object.fromEntries(errors), {
        "/malformed": "SSE malformed: data is not JSON",
        "/abrupt": "connection closed by server",
        "/early": "SSE closed early",
        "/json": "SSE bad content type: application/json",
        "/stall": "SSE timeout",
      });
      const stall = run.result.endpoints.find((e) => e.name === "/stall");
      assert.equal(stall?.counters?.["end:timeout"], 1);
      assert.equal(run.result.totals.failures, 5);
    } finally {
      await server.close();
    }
  });
});
