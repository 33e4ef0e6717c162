/** The statistics behind `cicada compare`, on synthetic data with known answers. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compareResults } from "../src/compare/compare.js";
import { formatComparison } from "../src/compare/format.js";
import {
  classify,
  inconclusiveReason,
  minSamplesForQuantile,
  poissonRateZ,
  quantileCI,
  quantileRanks,
  relativeChange,
  separation,
  twoProportionZ,
} from "../src/compare/stats.js";
import { parseTolerances } from "../src/compare/tolerance.js";
import type { RunResult } from "../src/result/result.js";
import {
  createHistogram,
  encodeHistogram,
  type Histogram,
  summarizeHistogram,
} from "../src/stats/histogram.js";
import { rng } from "./helpers.js";

/** Exponential latencies in µs with the given mean, offset by a floor. */
function expHistogram(n: number, meanUs: number, floorUs: number, rand: () => number): Histogram {
  const h = createHistogram();
  for (let i = 0; i < n; i++) h.recordValue(Math.round(floorUs - meanUs * Math.log(1 - rand())));
  return h;
}

const expQuantile = (q: number, meanUs: number, floorUs: number) => floorUs - meanUs * Math.log(1 - q);

describe("quantile confidence intervals", () => {
  it("ranks bracket n·q symmetrically and stay within 1..n", () => {
    assert.deepEqual(quantileRanks(10000, 0.5), { lo: 4902, hi: 5098 });
    const r = quantileRanks(1000, 0.99);
    assert.ok(r.lo >= 983 && r.lo <= 984 && r.hi >= 996 && r.hi <= 997, JSON.stringify(r));
    const tiny = quantileRanks(3, 0.99);
    assert.ok(tiny.lo >= 1 && tiny.hi <= 3);
  });

  for (const q of [0.5, 0.95, 0.99]) {
    it(`the p${q * 100} interval covers the true quantile about 95 % of the time`, () => {
      const rand = rng(42 + q * 100);
      const trials = 200;
      let covered = 0;
      for (let t = 0; t < trials; t++) {
        const h = expHistogram(2000, 5000, 1000, rand);
        const ci = quantileCI(h, q);
        const truth = expQuantile(q, 5000, 1000);
        assert.ok(ci.lo <= ci.value && ci.value <= ci.hi, JSON.stringify(ci));
        if (ci.lo <= truth && truth <= ci.hi) covered++;
      }
      // Binomial(200, 0.95) falls below 180 with probability under 0.1 %.
      assert.ok(covered >= 180, `covered ${covered} of ${trials}`);
      assert.ok(covered <= trials);
    });
  }

  it("narrows as samples grow, and agrees with HdrHistogram's own percentile", () => {
    const rand = rng(7);
    const small = quantileCI(expHistogram(500, 5000, 1000, rand), 0.95);
    const large = quantileCI(expHistogram(50000, 5000, 1000, rand), 0.95);
    assert.ok(
      large.hi - large.lo < (small.hi - small.lo) / 5,
      `${JSON.stringify(small)} ${JSON.stringify(large)}`,
    );
    const h = expHistogram(10000, 5000, 1000, rand);
    const ci = quantileCI(h, 0.95);
    assert.ok(Math.abs(ci.value - h.getValueAtPercentile(95)) <= ci.value * 0.002);
  });

  it("a constant latency has a point interval (up to the histogram's 0.1 % buckets)", () => {
    const h = createHistogram();
    h.recordValueWithCount(10_000, 5000);
    const ci = quantileCI(h, 0.99);
    assert.ok(ci.lo <= 10_000 && ci.hi >= 10_000 && ci.hi - ci.lo <= 20, JSON.stringify(ci));
  });

  it("intervals that overlap are not separated; disjoint ones say which way", () => {
    assert.equal(separation({ lo: 10, hi: 11 }, { lo: 10.5, hi: 12 }), null);
    assert.equal(separation({ lo: 10, hi: 11 }, { lo: 11.5, hi: 12 }), "higher");
    assert.equal(separation({ lo: 10, hi: 11 }, { lo: 8, hi: 9 }), "lower");
  });
});

describe("rate tests", () => {
  it("two proportions: 1 % vs 3 % of 2000 is significant, 1 % vs 1.2 % is not", () => {
    assert.ok(twoProportionZ(20, 2000, 60, 2000) > 1.96);
    assert.ok(twoProportionZ(60, 2000, 20, 2000) < -1.96);
    assert.ok(Math.abs(twoProportionZ(20, 2000, 24, 2000)) < 1.96);
  });

  it("two proportions: no failures on either side, or all failures, is no difference", () => {
    assert.equal(twoProportionZ(0, 1000, 0, 5000), 0);
    assert.equal(twoProportionZ(1000, 1000, 50, 50), 0);
  });

  it("two proportions: one failure against none is not significant (continuity correction)", () => {
    assert.ok(Math.abs(twoProportionZ(0, 1000, 1, 1000)) < 1.96);
  });

  it("Poisson rates: 1000/s vs 900/s over 10 s is significant, 1000 vs 995 is not", () => {
    assert.ok(poissonRateZ(10000, 10, 9000, 10) < -1.96);
    assert.ok(Math.abs(poissonRateZ(10000, 10, 9950, 10)) < 1.96);
    // Equal rates over different durations are no difference.
    assert.ok(Math.abs(poissonRateZ(10000, 10, 20000, 20)) < 0.1);
  });
});

describe("minimum samples and verdicts", () => {
  it("a quantile q needs max(100, 10/(1−q)) samples", () => {
    assert.equal(minSamplesForQuantile(0.5), 100);
    assert.equal(minSamplesForQuantile(0.95), 200);
    assert.equal(minSamplesForQuantile(0.99), 1000);
    assert.equal(minSamplesForQuantile(0.999), 10000);
  });

  it("too few samples or too short a run is inconclusive, and says why", () => {
    const ok = { label: "base", samples: 5000, durationSec: 30 };
    assert.equal(inconclusiveReason("p99", [ok, { ...ok, label: "cur" }]), null);
    assert.match(
      inconclusiveReason("p99", [ok, { label: "cur", samples: 40, durationSec: 30 }])!,
      /only 40 samples in cur/,
    );
    assert.equal(inconclusiveReason("p50", [ok, { label: "cur", samples: 400, durationSec: 30 }]), null);
    assert.match(
      inconclusiveReason("p99", [ok, { label: "cur", samples: 400, durationSec: 30 }])!,
      /needs 1000/,
    );
    assert.match(
      inconclusiveReason("p50", [ok, { label: "cur", samples: 5000, durationSec: 3 }])!,
      /lasted 3.0 s/,
    );
    assert.match(
      inconclusiveReason("rps", [ok, { label: "cur", samples: 5000, durationSec: 6 }])!,
      /needs 10 s/,
    );
  });

  it("the tolerance and the test must agree before a regression is called", () => {
    assert.equal(classify(0.3, "higher", 0.1, "higher"), "regression");
    assert.equal(classify(0.3, "higher", 0.1, null), "noise");
    assert.equal(classify(0.05, "higher", 0.1, "higher"), "ok");
    assert.equal(classify(-0.3, "higher", 0.1, "lower"), "improvement");
    // Throughput: lower is worse.
    assert.equal(classify(-0.3, "lower", 0.1, "lower"), "regression");
    assert.equal(classify(0.3, "lower", 0.1, "higher"), "improvement");
    assert.equal(classify(relativeChange(0, 0.01), "higher", 0.1, "higher"), "regression");
    assert.equal(relativeChange(0, 0), 0);
  });
});

/** A minimal result with one endpoint whose latencies come from `h`. */
function fakeResult(
  h: Histogram,
  opts: { failures?: number; durationSec?: number; name?: string } = {},
): RunResult {
  const n = h.totalCount;
  const durationSec = opts.durationSec ?? 20;
  const failures = opts.failures ?? 0;
  const latencyMs = summarizeHistogram(h);
  const figures = { requests: n, failures, cancelled: 0, rps: n / durationSec, bytesReceived: 0, latencyMs };
  return {
    tool: "cicada",
    version: "0.0.0",
    startedAt: "2024-01-01T00:00:00.000Z",
    endedAt: "2024-01-01T00:00:20.000Z",
    durationSec,
    config: {},
    totals: { ...figures, iterations: n, ttfbMs: latencyMs, statusCodes: {} },
    endpoints: [
      {
        type: "HTTP",
        method: "GET",
        name: opts.name ?? "/hit",
        ...figures,
        ttfbMs: latencyMs,
        statusCodes: {},
        histogram: encodeHistogram(h),
      },
    ],
    failures: [],
    exceptions: [],
    users: { peak: 1 },
    series: [],
    stopReason: "run-time",
    warnings: [],
    machine: { hostname: "x", cpus: 1, node: "v20" },
    exitCode: 0,
  };
}

describe("compareResults on synthetic runs", () => {
  it("the same distribution passes; 30 % slower regresses on every quantile", () => {
    const rand = rng(1);
    const base = fakeResult(expHistogram(5000, 2000, 10_000, rand));
    const same = fakeResult(expHistogram(5000, 2000, 10_000, rand));
    const slow = fakeResult(expHistogram(5000, 2600, 13_000, rand));
    const pass = compareResults(base, same);
    assert.equal(pass.verdict, "pass", formatComparison(pass));
    assert.ok(!pass.rows.some((r) => r.verdict === "regression"));
    const bad = compareResults(base, slow);
    assert.equal(bad.verdict, "regression");
    for (const m of ["p50", "p95", "p99"]) {
      for (const endpoint of ["GET /hit", "Aggregated"]) {
        const row = bad.rows.find((r) => r.endpoint === endpoint && r.metric === m)!;
        assert.equal(row.verdict, "regression", `${endpoint} ${m}: ${JSON.stringify(row)}`);
        assert.match(row.note!, new RegExp(`${m} CI [\\d.]+–[\\d.]+ ms vs [\\d.]+–[\\d.]+ ms`));
      }
    }
    const text = formatComparison(bad);
    assert.match(text, /Endpoint\s+Metric\s+Baseline\s+Current\s+Delta\s+Verdict/);
    assert.match(text, /Verdict: REGRESSION/);
  });

  it("few samples: inconclusive, not a regression, even when much slower", () => {
    const rand = rng(2);
    const c = compareResults(
      fakeResult(expHistogram(5000, 2000, 10_000, rand)),
      fakeResult(expHistogram(40, 4000, 20_000, rand)),
    );
    assert.equal(c.verdict, "inconclusive");
    const p50 = c.rows.find((r) => r.endpoint === "Aggregated" && r.metric === "p50")!;
    assert.equal(p50.verdict, "inconclusive");
    assert.match(p50.note!, /only 40 samples/);
  });

  it("more failures: error_rate regresses; an endpoint on one side only is missing, not a regression", () => {
    const rand = rng(3);
    const base = fakeResult(expHistogram(5000, 2000, 10_000, rand), { failures: 10 });
    const worse = fakeResult(expHistogram(5000, 2000, 10_000, rand), { failures: 100 });
    const c = compareResults(base, worse, { tolerances: { error_rate: 0.5 } });
    assert.equal(c.tolerances.error_rate, 0.5);
    assert.equal(c.tolerances.p50, 0.1);
    assert.equal(
      c.rows.find((r) => r.endpoint === "GET /hit" && r.metric === "error_rate")!.verdict,
      "regression",
    );
    const renamed = fakeResult(expHistogram(5000, 2000, 10_000, rand), { name: "/other" });
    const m = compareResults(fakeResult(expHistogram(5000, 2000, 10_000, rand)), renamed);
    assert.ok(m.rows.filter((r) => r.endpoint === "GET /hit").every((r) => r.verdict === "missing"));
    assert.ok(m.rows.filter((r) => r.endpoint === "GET /other").every((r) => r.verdict === "missing"));
    assert.notEqual(m.verdict, "inconclusive");
    assert.match(formatComparison(m), /GET \/other\s+all.*missing\s+only in the current run/);
  });

  it("lower throughput beyond tolerance is a regression", () => {
    const rand = rng(4);
    const base = fakeResult(expHistogram(20000, 2000, 10_000, rand), { durationSec: 20 });
    const slower = fakeResult(expHistogram(20000, 2000, 10_000, rand), { durationSec: 30 });
    const c = compareResults(base, slower);
    assert.equal(
      c.rows.find((r) => r.endpoint === "Aggregated" && r.metric === "rps")!.verdict,
      "regression",
    );
  });
});

describe("parseTolerances", () => {
  it("one percentage for all, named ones winning", () => {
    assert.deepEqual(parseTolerances("15%"), {
      p50: 0.15,
      p95: 0.15,
      p99: 0.15,
      rps: 0.15,
      error_rate: 0.15,
    });
    assert.deepEqual(parseTolerances("p99=20%,error_rate=50%"), { p99: 0.2, error_rate: 0.5 });
    assert.deepEqual(parseTolerances("p99=30%, 15%"), {
      p50: 0.15,
      p95: 0.15,
      p99: 0.3,
      rps: 0.15,
      error_rate: 0.15,
    });
  });

  it("rejects bad specs clearly", () => {
    assert.throws(() => parseTolerances("15"), /expected a percentage such as 15%/);
    assert.throws(() => parseTolerances("p98=10%"), /unknown metric "p98"/);
    assert.throws(() => parseTolerances("p99=-5%"), /expected a percentage/);
    assert.throws(() => parseTolerances(""), /empty/);
  });
});
