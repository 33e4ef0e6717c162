/**
 * The open model against real loopback servers: arrivals on schedule, latency corrected for
 * coordinated omission, dropped iterations.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runLoad, startServer } from "./helpers.js";

const LOADFILE = `
import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/hit"); }
}
`;

function openRun(url: string, args: string[]) {
  return runLoad(LOADFILE, ["-H", url, ...args]);
}

describe("open model", () => {
  it("starts R·T iterations at R/s for T s, within 1 %, whatever the response times", async () => {
    const server = await startServer((_req, res) => setTimeout(() => res.end("ok"), 5));
    try {
      const {
        code,
        stderr,
        result: res,
      } = await openRun(server.url, ["--rate", "200", "-t", "3s", "-s", "2"]);
      assert.equal(code, 0, stderr);
      assert.equal(res.config.model, "open");
      const expected = 200 * 3;
      assert.ok(
        Math.abs(res.totals.iterations - expected) <= expected * 0.01 + 1,
        `iterations ${res.totals.iterations}`,
      );
      assert.equal(res.totals.requests + res.totals.cancelled, server.total());
      assert.equal(res.totals.droppedIterations, 0);
      assert.ok(res.totals.correctedLatencyMs, "corrected latency reported");
    } finally {
      await server.close();
    }
  });

  it("a server that stalls 1 s in every 5 s: the corrected p99 shows it, the uncorrected p99 does not", async () => {
    const t0 = Date.now();
    const server = await startServer((_req, res) => {
      const phase = (Date.now() - t0) % 5000;
      const wait = phase >= 2000 && phase < 3000 ? 3000 - phase : 0;
      setTimeout(() => res.end("ok"), wait + 2);
    });
    try {
      // Two users at 100/s: late arrivals wait for a user, so they are sent late but answered fast.
      const {
        code,
        stderr,
        result: res,
      } = await openRun(server.url, ["--rate", "100", "--max-users", "2", "-t", "6s", "-s", "2"]);
      assert.equal(code, 0, stderr);
      const uncorrected = res.totals.latencyMs.p99;
      const corrected = res.totals.correctedLatencyMs!.p99;
      assert.ok(corrected > 500, `corrected p99 ${corrected} ms should show the 1 s stall`);
      assert.ok(uncorrected < 100, `uncorrected p99 ${uncorrected} ms should stay low`);
      assert.ok(res.totals.correctedLatencyMs!.p50 >= res.totals.latencyMs.p50);
    } finally {
      await server.close();
    }
  });

  it("drops arrivals that cannot start within --max-delay, and counts them", async () => {
    // Every request takes 300 ms and there is one user: at 20/s almost every arrival waits
    // too long and is dropped.
    const server = await startServer((_req, res) => setTimeout(() => res.end("ok"), 300));
    try {
      const {
        code,
        stderr,
        result: res,
      } = await openRun(server.url, [
        "--rate",
        "20",
        "--max-users",
        "1",
        "--max-delay",
        "0.1",
        "-t",
        "2s",
        "-s",
        "1",
      ]);
      assert.equal(code, 0, stderr);
      const started = res.totals.iterations;
      const dropped = res.totals.droppedIterations ?? 0;
      assert.ok(started <= 10, `started ${started}`);
      assert.ok(dropped >= 25, `dropped ${dropped}`);
      assert.ok(
        started + dropped >= 38 && started + dropped <= 42,
        `started ${started} + dropped ${dropped}`,
      );
      const droppedInSeries = res.series.reduce(
        (n: number, row: { dropped?: number }) => n + (row.dropped ?? 0),
        0,
      );
      assert.equal(droppedInSeries, dropped);
      assert.equal(res.users.peak, 1);
    } finally {
      await server.close();
    }
  });

  it("rate stages ramp the arrival rate", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    try {
      // 0 → 100/s over 2 s (about 100 arrivals), then 100/s for 1 s (about 100).
      const {
        code,
        stderr,
        result: res,
      } = await openRun(server.url, ["--rate", "100", "--stages", "2s:100,1s:100", "-s", "1"]);
      assert.equal(code, 0, stderr);
      assert.equal(res.stopReason, "stages");
      assert.ok(
        res.totals.iterations >= 180 && res.totals.iterations <= 215,
        `iterations ${res.totals.iterations}`,
      );
    } finally {
      await server.close();
    }
  });
});
