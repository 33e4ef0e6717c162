/**
 * What a fresh clone shows: `cicada sweep examples/llm-service.ts` against `cicada demo --serve`
 * finds the knee at the demo's capacity, as the docs promise.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { SweepResult } from "../src/result/sweep.js";
import { describeRun, ROOT, type RunningCli, runCli, startCli, tempProject } from "./helpers.js";

const CAPACITY = 4;

describe("a sweep of the example LLM loadfile against the demo", () => {
  let demo: RunningCli;
  let url = "";

  before(async () => {
    // Short generations (64 tokens at 2 ms) keep each level's request count useful in 3 s.
    demo = startCli(["demo", "--serve", "--port", "0", "--capacity", String(CAPACITY), "--token-ms", "2"]);
    await demo.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
    url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(demo.output().stderr)![1]!;
  });

  after(async () => {
    demo.child.kill("SIGINT");
    await demo.result;
  });

  it("finds the knee within one level of the demo's capacity", { timeout: 120_000 }, async () => {
    const project = tempProject({});
    try {
      const r = await runCli(
        [
          "sweep",
          join(ROOT, "examples", "llm-service.ts"),
          "-H",
          url,
          "--concurrency",
          "1,2,4,8,16",
          "--step-time",
          "3s",
          "--warmup",
          "1s",
          "--json",
          "sweep.json",
        ],
        { cwd: project.dir, timeoutMs: 110_000 },
      );
      assert.equal(r.code, 0, describeRun(r));
      const result = JSON.parse(readFileSync(join(project.dir, "sweep.json"), "utf8")) as SweepResult;
      const { levels, knee } = result.sweep;
      assert.equal(levels.filter((l) => l.status === "ran").length, 5, JSON.stringify(levels));
      // Streams were measured as streams: time to first token per level.
      assert.ok(
        levels.every((l) => l.ttftMs !== undefined && l.successRate === 1),
        JSON.stringify(levels),
      );
      assert.ok(
        knee,
        `no knee found: ${JSON.stringify(levels.map((l) => [l.load, l.okRps, l.latencyMs.p95]))}`,
      );
      assert.ok(
        knee.load >= CAPACITY / 2 && knee.load <= CAPACITY * 2,
        `knee at ${knee.load} users, capacity ${CAPACITY}: ${JSON.stringify(levels.map((l) => [l.load, l.okRps, l.latencyMs.p95]))}`,
      );
      // Beyond the capacity, more users buy no throughput, only waiting.
      const at = (n: number) => levels.find((l) => l.load === n)!;
      assert.ok(at(16).okRps < at(4).okRps * 1.3, JSON.stringify([at(4).okRps, at(16).okRps]));
      assert.ok(at(16).latencyMs.p95 > 2 * at(4).latencyMs.p95);
      assert.match(r.stdout, /Knee: level \d+ \(\d+ users\)/);
    } finally {
      project.cleanup();
    }
  });
});
