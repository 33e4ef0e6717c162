/** Iteration limits: per user and in total; whichever comes first ends the run gracefully. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { runLoad, startServer } from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.05);
  @task async hit() { await this.client.get("/hit"); }
}
`;

it("--iterations-per-user: each user runs exactly N iterations, finished users are not replaced", async () => {
  const server = await startServer((_req, res) => res.end("ok"));
  try {
    // Spawning at 2/s, early users finish before the last ones start: still 4 × 5.
    const {
      code,
      stderr,
      result: res,
    } = await runLoad(LOADFILE, [
      "-H",
      server.url,
      "-u",
      "4",
      "-r",
      "2",
      "--iterations-per-user",
      "5",
      "-t",
      "30s",
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(server.counts.get("GET /hit"), 20);
    assert.equal(res.totals.iterations, 20);
    assert.equal(res.stopReason, "iterations");
    assert.ok(res.durationSec < 10, `ended when the users were done, not at -t: ${res.durationSec}`);
  } finally {
    await server.close();
  }
});

it("the global limit wins when it comes first", async () => {
  const server = await startServer((_req, res) => res.end("ok"));
  try {
    const {
      code,
      stderr,
      result: res,
    } = await runLoad(LOADFILE, [
      "-H",
      server.url,
      "-u",
      "3",
      "-r",
      "10",
      "--iterations-per-user",
      "100",
      "-i",
      "12",
    ]);
    assert.equal(code, 0, stderr);
    assert.equal(server.counts.get("GET /hit"), 12);
    assert.equal(res.stopReason, "iterations");
  } finally {
    await server.close();
  }
});
