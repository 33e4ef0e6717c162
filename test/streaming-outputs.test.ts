/** Streaming metrics reach every output: JSON, summary, CSV Type column, HTML report, thresholds. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startDemoServer } from "../src/demo/server.js";
import { renderHtmlReport } from "../src/outputs/html/report.js";
import type { RunResult } from "../src/result/result.js";
import { assertValidResult, describeRun, runCli, tempProject } from "./helpers.js";

describe("streaming metrics in the outputs", () => {
  it("an SSE run shows its Type and token metrics in the summary, CSV, JSON and HTML report", async () => {
    const demo = await startDemoServer({ firstTokenDelayMs: 20, tokenDelayMs: 5 });
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, task, constant } from "cicada-load";
export class Chat extends HttpUser {
  static waitTime = constant(0.05);
  @task async chat() {
    await this.client.sse("/v1/chat/completions", {
      json: { stream: true, max_tokens: 8, messages: [{ role: "user", content: "hi" }] },
      tokens: "openai",
    });
  }
}
`,
    });
    try {
      const r = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          demo.url,
          "-u",
          "2",
          "-t",
          "2s",
          "-s",
          "5",
          "--csv",
          "out",
          "--json",
          "r.json",
          "--threshold",
          "SSE /v1/chat/completions: ttft p50>=15",
          "--threshold",
          "SSE /v1/chat/completions: tokens_per_sec p50>1",
        ],
        { cwd: project.dir },
      );
      assert.equal(r.code, 0, describeRun(r));
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      assertValidResult(result);
      const sse = result.endpoints.find((e) => e.type === "SSE")!;
      assert.ok(sse.requests > 0);
      assert.ok(sse.metrics?.ttft && sse.metrics.ttft.count === sse.requests);
      assert.equal(
        sse.metrics?.itl?.count,
        sse.requests * 7,
        "n - 1 inter-token gaps per stream of 8 tokens",
      );
      assert.equal(sse.counters?.tokens, sse.requests * 8);
      assert.ok(
        result.thresholds?.every((t) => t.passed),
        JSON.stringify(result.thresholds),
      );
      assert.match(r.stdout, /Streaming and protocol metrics/);
      assert.match(r.stdout, /SSE\s+POST \/v1\/chat\/completions\s+ttft/);

      const csv = readFileSync(join(project.dir, "out_stats.csv"), "utf8");
      assert.match(csv, /\r\nSSE POST,\/v1\/chat\/completions,/);

      const html = renderHtmlReport(result);
      assert.match(html, /id="metrics-section"/);
      assert.match(html, /data-endpoint="SSE POST \/v1\/chat\/completions" data-metric="ttft"/);
    } finally {
      project.cleanup();
      await demo.close();
    }
  });
});
