/** AG-UI agent runs over SSE: the demo's endpoint and the "ag-ui" token preset. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startDemoServer } from "../src/demo/server.js";
import { HttpSession } from "../src/protocols/http/session.js";
import { Recorder } from "../src/stats/recorder.js";
import { startServer } from "./helpers.js";

function client(baseUrl: string) {
  const rec = new Recorder("test");
  const stop = new AbortController();
  const session = new HttpSession({ recorder: rec, baseUrl, signal: stop.signal });
  return { session, snapshot: () => rec.snapshot(1), close: () => session.close(true) };
}

describe("AG-UI streams", () => {
  it("counts TEXT_MESSAGE_CONTENT deltas as tokens and completes on RUN_FINISHED", async () => {
    const demo = await startDemoServer({ firstTokenDelayMs: 5, tokenDelayMs: 2 });
    const c = client(demo.url);
    try {
      const r = await c.session.sse("/api/v1/agui/run", {
        json: { threadId: "t1", messages: [{ role: "user", content: "hello" }] },
        tokens: "ag-ui",
        name: "agui run",
      });
      assert.equal(r.end, "completed", String(r.error));
      assert.equal(r.tokens, 12);
      assert.equal(r.events.length, 16, "RUN_STARTED, TEXT_MESSAGE_START, 12 contents, END, RUN_FINISHED");
      assert.ok(r.ttftMs !== null && r.ttftMs >= 4);
      const e = c.snapshot().endpoints.find((x) => x.type === "SSE");
      assert.equal(e?.name, "agui run");
      assert.equal(e?.failures, 0);
      assert.equal(e?.counters?.tokens, 12);
    } finally {
      await c.close();
      await demo.close();
    }
  });

  it("fails a run that sends RUN_ERROR, or ends without RUN_FINISHED", async () => {
    const server = await startServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify({ type: "RUN_STARTED" })}\n\n`);
      res.write(`data: ${JSON.stringify({ type: "TEXT_MESSAGE_CONTENT", delta: "hi" })}\n\n`);
      if (req.url === "/error")
        res.end(`data: ${JSON.stringify({ type: "RUN_ERROR", message: "model overloaded" })}\n\n`);
      else res.end();
    });
    const c = client(server.url);
    try {
      const bad = await c.session.sse("/error", { method: "POST", json: {}, tokens: "ag-ui" });
      assert.equal(bad.end, "error");
      assert.match(String(bad.error), /model overloaded/);
      const early = await c.session.sse("/early", { method: "POST", json: {}, tokens: "ag-ui" });
      assert.equal(early.end, "error");
      assert.match(String(early.error), /closed early/);
      const fails = c.snapshot().endpoints.reduce((n, e) => n + e.failures, 0);
      assert.equal(fails, 2);
    } finally {
      await c.close();
      await server.close();
    }
  });
});
