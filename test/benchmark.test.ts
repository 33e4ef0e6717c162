// Benchmarks: pytest-benchmark's statistics on constructed samples, benchmark() against a server
// with a known delay pattern, and `cicada bench --json` results compared by `cicada compare`.
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { benchmark } from "../src/index.js";
import { quartiles, sampleStats } from "../src/stats/samples.js";
import {
  assertValidResult,
  count,
  describeRun,
  readJson,
  runCli,
  startServer,
  type TestServer,
  tempProject,
} from "./helpers.js";

const close = (a: number, b: number, eps = 1e-9) => Math.abs(a - b) <= eps;

describe("sample statistics, as pytest-benchmark computes them", () => {
  it("pytest-benchmark's own example: mean, stddev, quartiles, ops, outliers", () => {
    const s = sampleStats([4, 36, 45, 50, 75]);
    assert.equal(s.rounds, 5);
    assert.equal(s.total, 210);
    assert.equal(s.min, 4);
    assert.equal(s.max, 75);
    assert.equal(s.mean, 42);
    assert.ok(close(s.stddev, 25.700194551792794), String(s.stddev));
    assert.equal(s.median, 45);
    // n = 4k + 1: Q1 = ¼·x[k−1] + ¾·x[k], Q3 = ¾·x[3k] + ¼·x[3k+1] (0-based).
    assert.equal(s.q1, 28);
    assert.equal(s.q3, 56.25);
    assert.equal(s.iqr, 28.25);
    // Rounds per second when the samples are milliseconds.
    assert.ok(close(s.ops, 5000 / 210), String(s.ops));
    // 4 and 75 lie beyond mean ± stddev; nothing beyond Q1 − 1.5 IQR … Q3 + 1.5 IQR.
    assert.equal(s.stddevOutliers, 2);
    assert.equal(s.iqrOutliers, 0);
    assert.equal(s.outliers, "2;0");
  });

  it("counts a far value as an outlier by both rules, whatever the order of the samples", () => {
    const s = sampleStats([100, 3, 1, 8, 5, 2, 7, 6, 4]);
    assert.ok(close(s.mean, 136 / 9));
    assert.ok(close(s.stddev, 31.91568753937648), String(s.stddev));
    assert.equal(s.median, 5);
    assert.equal(s.q1, 2.75);
    assert.equal(s.q3, 7.25);
    assert.equal(s.outliers, "1;1");
    // Two far values, one low and one high: both fences count them.
    const t = sampleStats([-50, 10, 10, 10, 11, 11, 11, 12, 12, 12, 80]);
    assert.equal(t.iqrOutliers, 2);
    assert.equal(t.stddevOutliers, 2);
  });

  it("quartiles: medians of the halves for an even count, method 3 for n = 4k + 3", () => {
    assert.deepEqual(quartiles([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]), { q1: 3.5, q3: 9.5 });
    assert.deepEqual(quartiles([1, 2, 3, 4, 5, 6, 7]), { q1: 2.25, q3: 5.75 });
    assert.deepEqual(quartiles([7]), { q1: 7, q3: 7 });
    const one = sampleStats([7]);
    assert.equal(one.stddev, 0);
    assert.equal(one.outliers, "0;0");
    assert.equal(sampleStats([]).rounds, 0);
  });
});

describe("benchmark() against a server with a known delay pattern", () => {
  let server: TestServer;
  let n = 0;
  // 30, 60, 90 ms in turn: a third of the rounds each. Steps of 30 ms keep the levels apart
  // even when a busy machine (CI runs two test files at once) fires timers late.
  const DELAYS = [30, 60, 90];

  before(async () => {
    server = await startServer((req, res) => {
      if (req.url === "/pattern") setTimeout(() => res.end("ok"), DELAYS[n++ % 3]);
      else res.end("ok");
    });
  });

  after(() => server.close());

  it("min, median and IQR match the delays; the JSON result is a valid result with the rounds as an endpoint", async () => {
    n = 0;
    const project = tempProject({});
    try {
      const logged: string[] = [];
      const json = join(project.dir, "bench.json");
      const r = await benchmark(
        "GET /pattern",
        async ({ host, signal }) => {
          const res = await fetch(`${host}/pattern`, { signal });
          await res.text();
        },
        // Three warm-up rounds keep the pattern in step with the measured rounds.
        { iterations: 60, warmup: 3, host: server.url, json, log: (t) => logged.push(t) },
      );
      assert.equal(r.rounds, 60);
      assert.equal(r.failures, 0);
      assert.equal(count(server, "GET /pattern"), 63);
      // A timer may fire up to a millisecond early; a loaded machine makes rounds late.
      const LATE = 14;
      assert.ok(r.min >= 29 && r.min <= 30 + LATE, `min ${r.min}`);
      assert.ok(r.median >= 59 && r.median <= 60 + LATE, `median ${r.median}`);
      assert.ok(r.q1 >= 29 && r.q1 <= 30 + LATE, `q1 ${r.q1}`);
      assert.ok(r.q3 >= 89 && r.q3 <= 90 + LATE, `q3 ${r.q3}`);
      assert.ok(r.iqr >= 60 - LATE && r.iqr <= 60 + LATE, `iqr ${r.iqr}`);
      assert.ok(close(r.ops, 1000 / r.mean, 1e-6));
      assert.match(
        logged.join("\n"),
        /Name \(time in ms\)\s+Min\s+Max\s+Mean\s+StdDev\s+Median\s+IQR\s+Outliers\s+OPS\s+Rounds/,
      );
      assert.match(
        logged.join("\n"),
        new RegExp(`GET /pattern\\s+${r.min.toFixed(4)}\\s+${r.max.toFixed(4)}`),
      );
      const result: any = readJson(json);
      assertValidResult(result);
      assert.equal(result.endpoints.length, 1);
      const e = result.endpoints[0]!;
      assert.deepEqual(
        [e.type, e.method, e.name, e.requests, e.failures],
        ["BENCH", "", "GET /pattern", 60, 0],
      );
      assert.ok(e.histogram.length > 0);
      assert.equal(result.benchmarks![0]!.median, r.median);
      assert.equal(result.exitCode, 0);
    } finally {
      project.cleanup();
    }
  });

  it("a round that throws is a failure, left out of the statistics; concurrency runs rounds side by side", async () => {
    let calls = 0;
    const r = await benchmark(
      "flaky",
      async () => {
        const k = ++calls;
        await new Promise((res) => setTimeout(res, 5));
        if (k % 5 === 0) throw new Error("every fifth");
      },
      { iterations: 50, concurrency: 5, log: false },
    );
    assert.equal(calls, 50);
    assert.equal(r.failures, 10);
    assert.equal(r.rounds, 40);
    assert.equal(r.concurrency, 5);
    // Five at a time: the wall clock sees about five times the rounds per second of one round.
    assert.ok(r.throughput > 2 * r.ops, `throughput ${r.throughput}, ops ${r.ops}`);
  });

  it("an AbortSignal ends a long benchmark with the rounds measured so far", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const t0 = Date.now();
    const r = await benchmark(
      "GET /",
      async ({ host, signal }) => {
        await (await fetch(`${host}/`, { signal })).text();
      },
      { duration: "60s", host: server.url, signal: ac.signal, log: false },
    );
    assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
    assert.ok(r.rounds > 0);
  });
});

describe("cicada bench FILE --json, then cicada compare", () => {
  let fast: TestServer;
  let slow: TestServer;

  before(async () => {
    fast = await startServer((_req, res) => setTimeout(() => res.end("ok"), 2));
    slow = await startServer((_req, res) => setTimeout(() => res.end("ok"), 15));
  });

  after(async () => {
    await fast.close();
    await slow.close();
  });

  const BENCH = `export default {
  "GET /health": async ({ host, signal }) => {
    const res = await fetch(host + "/health", { signal });
    await res.text();
  },
  "noop": { fn: async () => {}, iterations: 10 },
};
`;

  it("saves results that compare finds a regression between, endpoint by endpoint", async () => {
    const project = tempProject({ "bench.ts": BENCH, "empty.ts": "export const x = 1;\n" });
    try {
      // Both at once: 5 s each is what a comparison needs before it judges latency.
      const [a, b] = await Promise.all([
        runCli(
          ["bench", "bench.ts", "GET /health", "-H", fast.url, "-d", "5s", "-w", "2", "--json", "a.json"],
          {
            cwd: project.dir,
          },
        ),
        runCli(
          ["bench", "bench.ts", "GET /health", "-H", slow.url, "-d", "5s", "-w", "2", "--json", "b.json"],
          {
            cwd: project.dir,
          },
        ),
      ]);
      assert.equal(a.code, 0, describeRun(a));
      assert.equal(b.code, 0, describeRun(b));
      assert.match(a.stdout, /Name \(time in ms\)/);
      const ra: any = readJson(join(project.dir, "a.json"));
      const rb: any = readJson(join(project.dir, "b.json"));
      assertValidResult(ra);
      assertValidResult(rb);
      assert.equal(ra.endpoints[0]!.requests, ra.benchmarks![0]!.rounds);
      assert.ok(ra.durationSec >= 5 && rb.durationSec >= 5);
      assert.ok(rb.benchmarks![0]!.median >= 14, `slow median ${rb.benchmarks![0]!.median}`);

      const cmp = await runCli(["compare", "a.json", "b.json"], { cwd: project.dir });
      assert.equal(cmp.code, 3, describeRun(cmp));
      assert.match(cmp.stdout, /BENCH GET \/health\s+p50\s+[\d.]+ ms\s+[\d.]+ ms\s+\+[\d.]+%\s+regression/);
      assert.match(cmp.stdout, /Verdict: REGRESSION/);
      const same = await runCli(["compare", "a.json", "a.json"], { cwd: project.dir });
      assert.equal(same.code, 0, describeRun(same));

      // All benchmarks of the file, per-benchmark settings kept.
      const all = await runCli(["bench", "bench.ts", "-H", fast.url, "-d", "0.3s"], { cwd: project.dir });
      assert.equal(all.code, 0, describeRun(all));
      assert.match(all.stdout, /GET \/health .*\n.*noop\s.*\s10\n/);
    } finally {
      project.cleanup();
    }
  });

  it("bad input: one clear error and exit code 2", async () => {
    const project = tempProject({ "empty.ts": "export const x = 1;\n", "bench.ts": BENCH });
    try {
      for (const [args, message] of [
        [["bench", "empty.ts"], /empty\.ts: export default an object of named benchmarks/],
        [["bench", "missing.ts"], /bench file not found: missing\.ts/],
        [["bench", "bench.ts", "nope"], /no benchmark "nope" in bench\.ts; it has: "GET \/health", "noop"/],
        [["bench", "bench.ts", "-n", "0"], /-n\/--iterations: expected an integer ≥ 1, got "0"/],
      ] as const) {
        const r = await runCli([...args], { cwd: project.dir });
        assert.equal(r.code, 2, describeRun(r));
        assert.match(r.stderr, message);
      }
    } finally {
      project.cleanup();
    }
  });
});
