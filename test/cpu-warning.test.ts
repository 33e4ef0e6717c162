import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { SaturationWatch } from "../src/runner/load.js";
import { describeRun, runLoad, startServer } from "./helpers.js";

/**
 * Locust's cpu_warning: a generator whose own event loop is saturated measures its own
 * queueing, not the target. Each worker reports its event-loop utilization; one that stays above
 * 90 % for about 3 s gets a warning on the terminal and in the JSON result.
 */

const WARNING =
  /warning: generator CPU above 90% \(worker w\d+: \d+%\); numbers taken now are not trustworthy/;

describe("saturated generator warning", () => {
  it("warns when a task burns the CPU without pause", async () => {
    // ~50 ms of synchronous work per task and no wait time: each worker's loop is busy all the time.
    // Each burn is recorded as a sample: a run that records nothing exits 1.
    const loadfile = `import { User, task } from "cicada-load";
export class Burner extends User {
  @task async burn() {
    const start = performance.now();
    const end = start + 50;
    let x = 0;
    while (performance.now() < end) x += Math.sqrt(x + 1);
    if (x < 0) console.log(x);
    this.record({ type: "CPU", name: "burn", latencyMs: performance.now() - start });
    await new Promise((r) => setImmediate(r));
  }
}
`;
    const r = await runLoad(loadfile, ["-u", "2", "-r", "100", "-t", "5s", "--processes", "2"]);
    assert.equal(r.code, 0, describeRun(r));
    const cpu = r.result.warnings.filter((w) => w.kind === "cpu");
    assert.equal(cpu.length, 1, `expected exactly one cpu warning: ${JSON.stringify(r.result.warnings)}`);
    assert.match(cpu[0]!.message, WARNING);
    const pct = Number(/: (\d+)%\)/.exec(cpu[0]!.message)![1]);
    assert.ok(pct > 90 && pct <= 100, `reported ${pct}%`);
    // Raised during the run, after about 3 s of saturation.
    const at = Date.parse(cpu[0]!.at);
    const started = Date.parse(r.result.startedAt);
    assert.ok(
      at - started >= 2500 && at <= Date.parse(r.result.endedAt),
      `warned ${at - started} ms into the run`,
    );
    assert.match(r.stderr, WARNING);
    assert.equal(r.stderr.match(/generator CPU above/g)?.length, 1, "the warning is given once");
    assert.match(r.stdout, /\nWarnings\n {2}generator CPU above 90%/, "the summary ends with the warning");
    assert.ok(r.result.totals.iterations > 20);
  });

  it("does not warn for a light run", async () => {
    const srv = await startServer((_req, res) => res.end("ok"));
    try {
      const loadfile = `import { HttpUser, constant, task } from "cicada-load";
export class Light extends HttpUser {
  static waitTime = constant(0.05);
  @task async get() { await this.client.get("/"); }
}
`;
      const r = await runLoad(loadfile, [
        "-H",
        srv.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "4s",
        "--processes",
        "2",
      ]);
      assert.equal(r.code, 0, describeRun(r));
      assert.ok(r.result.totals.requests > 100, `only ${r.result.totals.requests} requests`);
      assert.deepEqual(r.result.warnings, []);
      assert.doesNotMatch(r.stderr + r.stdout, /generator CPU/);
      assert.doesNotMatch(r.stdout, /Warnings/);
    } finally {
      await srv.close();
    }
  });
});

describe("SaturationWatch", () => {
  const T0 = 1_000_000;

  it("warns once, after 3 s in a row above 90 %, naming the worker", () => {
    const w = new SaturationWatch();
    assert.equal(w.observe("w0", 0.97, 1000, T0 + 1000, T0), undefined);
    assert.equal(w.observe("w0", 0.99, 1000, T0 + 2000, T0), undefined);
    const msg = w.observe("w0", 0.95, 998, T0 + 2998, T0);
    assert.ok(msg, "three saturated seconds should warn");
    assert.match(msg, /worker w0: 95%/);
    assert.equal(w.observe("w0", 0.99, 1000, T0 + 4000, T0), undefined, "only once");
    assert.equal(w.observe("w1", 0.99, 5000, T0 + 9000, T0), undefined, "only once per run");
  });

  it("needs the seconds to be consecutive and per worker", () => {
    const w = new SaturationWatch();
    assert.equal(w.observe("w0", 0.95, 1000, T0 + 1000, T0), undefined);
    assert.equal(w.observe("w1", 0.95, 1000, T0 + 1000, T0), undefined);
    assert.equal(w.observe("w0", 0.95, 1000, T0 + 2000, T0), undefined);
    assert.equal(w.observe("w0", 0.5, 1000, T0 + 3000, T0), undefined, "a calm second resets");
    assert.equal(w.observe("w1", 0.95, 1000, T0 + 2000, T0), undefined);
    assert.equal(w.observe("w0", 0.95, 1000, T0 + 4000, T0), undefined);
    assert.equal(w.observe("w0", 0.95, 1000, T0 + 5000, T0), undefined);
    assert.match(w.observe("w1", 0.95, 1000, T0 + 3000, T0) ?? "", /worker w1/);
  });

  it("counts a long window (a loop starved by user code) and ignores time before the start", () => {
    const w = new SaturationWatch();
    assert.equal(w.observe("w0", 1, 3000, T0 - 1, T0), undefined, "before the start");
    assert.equal(w.observe("w0", 1, 3000, T0 + 1000, T0), undefined, "only 1 s of it after the start");
    const w2 = new SaturationWatch();
    assert.match(w2.observe("w0", 1, 3200, T0 + 3200, T0) ?? "", /worker w0: 100%/);
  });
});
