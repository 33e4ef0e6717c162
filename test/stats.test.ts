import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { StatsAggregate } from "../src/stats/aggregate.js";
import {
  addSparse,
  createHistogram,
  type Histogram,
  PERCENTILES,
  percentileMs,
  recordValue,
  summarize,
  toSparse,
} from "../src/stats/histogram.js";
import { Recorder } from "../src/stats/recorder.js";
import type { StatsSnapshot } from "../src/stats/snapshot.js";
import { rng } from "./helpers.js";

/** Snapshots cross threads and sockets as JSON: every test goes through that. */
function ship(s: StatsSnapshot): StatsSnapshot {
  return JSON.parse(JSON.stringify(s)) as StatsSnapshot;
}

/** The value at rank ceil(p% of n), as HdrHistogram defines percentiles, from exact data. */
function truePercentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length - 1e-9));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

interface Sample {
  method: string;
  name: string;
  us: number;
  bytes: number;
  error: string | null;
}

/** What the Recorder stores for a latency: whole microseconds, at least 1. */
const stored = (us: number) => Math.max(1, Math.round(us));

/** Records samples into a recorder; returns its one JSON-shipped snapshot. */
function recordAll(workerId: string, samples: readonly Sample[], users = 1): StatsSnapshot {
  const r = new Recorder(workerId);
  for (const s of samples) r.request("HTTP", s.method, s.name, s.us, s.us / 2, s.bytes, s.error);
  return ship(r.snapshot(users));
}

/** Checks the aggregated row against figures computed directly on the union of samples. */
function assertMatchesUnion(agg: StatsAggregate, union: readonly Sample[]): void {
  const values = union.map((s) => stored(s.us));
  const sorted = [...values].sort((a, b) => a - b);
  const sum = values.reduce((a, b) => a + b, 0);
  const t = agg.total;
  assert.equal(t.count, union.length, "count");
  assert.equal(t.failures, union.filter((s) => s.error !== null).length, "failures");
  assert.equal(
    t.bytes,
    union.reduce((a, s) => a + s.bytes, 0),
    "bytes",
  );
  assert.equal(t.sumUs, sum, "sum");
  assert.equal(t.minUs, sorted[0], "min");
  assert.equal(t.maxUs, sorted.at(-1), "max");
  assert.equal(t.latency.totalCount, union.length, "histogram count");

  // One histogram that saw every sample directly.
  const direct = createHistogram();
  for (const v of values) direct.recordValue(v);
  const s = t.latencySummary();
  assert.deepEqual(s, summarize(direct, sorted[0]!, sorted.at(-1)!, sum, values.length));
  assert.equal(s.min, sorted[0]! / 1000);
  assert.equal(s.max, sorted.at(-1)! / 1000);
  assert.equal(s.mean, Math.round((sum / values.length) * 1000) / 1e6);

  const ps = [...PERCENTILES, 1, 10, 33.3, 99.5, 99.95];
  for (const p of ps) {
    const merged = t.percentile(p);
    assert.equal(merged, percentileMs(direct, p, sorted[0]!, sorted.at(-1)!), `p${p} vs one histogram`);
    assert.equal(t.latency.getValueAtPercentile(p), direct.getValueAtPercentile(p), `raw p${p}`);
    const exact = truePercentile(sorted, p) / 1000;
    assert.ok(
      Math.abs(merged - exact) <= exact * 0.001,
      `p${p}: ${merged} ms is not within 0.1% of the exact ${exact} ms`,
    );
    assert.ok(merged <= s.max, `p${p} = ${merged} exceeds max ${s.max}`);
    assert.ok(merged >= s.min, `p${p} = ${merged} is below min ${s.min}`);
  }
  for (const [k, v] of Object.entries(s)) {
    if (k !== "min") assert.ok(v <= s.max, `${k} = ${v} exceeds max ${s.max}`);
  }
}

describe("stats: merging snapshots of two workers", () => {
  const a: Sample[] = [
    { method: "GET", name: "/a", us: 1000, bytes: 100, error: null },
    { method: "GET", name: "/a", us: 2000, bytes: 100, error: null },
    { method: "GET", name: "/a", us: 3000, bytes: 100, error: "HTTP 500" },
    { method: "GET", name: "/b", us: 150_000, bytes: 5000, error: null },
    { method: "POST", name: "/a", us: 7, bytes: 0, error: "ECONNRESET" },
  ];
  const b: Sample[] = [
    { method: "GET", name: "/a", us: 4000, bytes: 100, error: "HTTP 500" },
    { method: "GET", name: "/a", us: 5000, bytes: 100, error: null },
    { method: "GET", name: "/b", us: 1_234_567, bytes: 7000, error: "HTTP 404" },
    { method: "GET", name: "/b", us: 123_457, bytes: 1, error: null },
    { method: "POST", name: "/a", us: 0.2, bytes: 3, error: null },
  ];

  it("counts, failures, bytes, min, max, mean and percentiles equal those of the union", () => {
    const agg = new StatsAggregate(0);
    agg.add(recordAll("w1", a, 3));
    agg.add(recordAll("w2", b, 4));
    assertMatchesUnion(agg, [...a, ...b]);
    assert.equal(agg.users, 7);
  });

  it("keeps one row per (type, method, name), each exact", () => {
    const agg = new StatsAggregate(0);
    agg.add(recordAll("w1", a));
    agg.add(recordAll("w2", b));
    const rows = agg.sortedEndpoints().map((e) => `${e.method} ${e.name}`);
    assert.deepEqual(rows, ["GET /a", "POST /a", "GET /b"]);
    for (const e of agg.sortedEndpoints()) {
      const union = [...a, ...b].filter((s) => s.method === e.method && s.name === e.name);
      const vals = union.map((s) => stored(s.us));
      assert.equal(e.type, "HTTP");
      assert.equal(e.count, union.length, `${e.method} ${e.name} count`);
      assert.equal(e.failures, union.filter((s) => s.error).length);
      assert.equal(
        e.bytes,
        union.reduce((x, s) => x + s.bytes, 0),
      );
      assert.equal(e.minUs, Math.min(...vals));
      assert.equal(e.maxUs, Math.max(...vals));
      assert.equal(
        e.sumUs,
        vals.reduce((x, v) => x + v, 0),
      );
    }
    // Sub-microsecond latencies are stored as 1 µs, never 0.
    assert.equal(agg.endpoints.get(["HTTP", "POST", "/a"].join("\u0000"))!.minUs, 1);
  });

  it("merging is order-independent", () => {
    const s1 = recordAll("w1", a);
    const s2 = recordAll("w2", b);
    const x = new StatsAggregate(0);
    x.add(s1);
    x.add(s2);
    const y = new StatsAggregate(0);
    y.add(s2);
    y.add(s1);
    assert.deepEqual(x.total.latencySummary(), y.total.latencySummary());
    assert.deepEqual(x.total.ttfbSummary(), y.total.ttfbSummary());
    assert.equal(x.total.count, y.total.count);
  });

  it("groups errors by (method, name, error) and sums their occurrences", () => {
    const r1 = new Recorder("w1");
    const r2 = new Recorder("w2");
    for (let i = 0; i < 3; i++) r1.request("HTTP", "GET", "/x", 10, 5, 0, "HTTP 500");
    r1.request("HTTP", "GET", "/x", 10, 5, 0, "HTTP 503");
    r1.request("HTTP", "POST", "/x", 10, 5, 0, "HTTP 500");
    for (let i = 0; i < 2; i++) r2.request("HTTP", "GET", "/x", 10, 5, 0, "HTTP 500");
    r2.request("HTTP", "GET", "/y", 10, 5, 0, "HTTP 500");
    r2.request("HTTP", "GET", "/x", 10, 5, 0, null);
    const agg = new StatsAggregate(0);
    agg.add(ship(r1.snapshot(1)));
    agg.add(ship(r2.snapshot(1)));
    const errors = [...agg.errors.values()]
      .map((e) => `${e.method} ${e.name} ${e.error} ${e.occurrences}`)
      .sort();
    assert.deepEqual(errors, [
      "GET /x HTTP 500 5",
      "GET /x HTTP 503 1",
      "GET /y HTTP 500 1",
      "POST /x HTTP 500 1",
    ]);
    assert.equal(agg.total.failures, 8);
    assert.equal(agg.total.count, 9);
  });

  it("groups exceptions by where and message, summing counts", () => {
    const r1 = new Recorder("w1");
    const r2 = new Recorder("w2");
    r1.exception(new TypeError("boom"), "task checkout");
    r1.exception(new TypeError("boom"), "task checkout");
    r1.exception("plain string", "onStart");
    r2.exception(new TypeError("boom"), "task checkout");
    r2.exception(new TypeError("boom"), "task browse");
    r2.exception(new RangeError("boom"), "task checkout");
    const agg = new StatsAggregate(0);
    agg.add(ship(r1.snapshot(1)));
    agg.add(ship(r2.snapshot(1)));
    const ex = [...agg.exceptions.values()].map((e) => `${e.where} | ${e.message} | ${e.count}`).sort();
    assert.deepEqual(ex, [
      "onStart | Error: plain string | 1",
      "task browse | TypeError: boom | 1",
      "task checkout | RangeError: boom | 1",
      "task checkout | TypeError: boom | 3",
    ]);
    for (const e of agg.exceptions.values()) assert.ok(e.traceback.includes(e.message.split(": ")[1]!));
    // Exceptions are not requests.
    assert.equal(agg.total.count, 0);
  });

  it("counts cancelled requests separately, outside the histogram and the timings", () => {
    const r1 = new Recorder("w1");
    const r2 = new Recorder("w2");
    r1.request("HTTP", "GET", "/slow", 5000, 100, 10, null);
    r1.cancelled("HTTP", "GET", "/slow");
    r1.cancelled("HTTP", "GET", "/slow");
    // A worker whose only activity was cancelled: minUs 0 in its snapshot must not become the min.
    r2.cancelled("HTTP", "GET", "/slow");
    const s2 = ship(r2.snapshot(1));
    assert.equal(s2.endpoints.length, 1);
    assert.equal(s2.endpoints[0]!.count, 0);
    assert.deepEqual(s2.endpoints[0]!.latency, []);
    const agg = new StatsAggregate(0);
    agg.add(ship(r1.snapshot(1)));
    agg.add(s2);
    const e = agg.sortedEndpoints()[0]!;
    assert.equal(e.count, 1);
    assert.equal(e.cancelled, 3);
    assert.equal(agg.total.cancelled, 3);
    assert.equal(e.failures, 0);
    assert.equal(e.latency.totalCount, 1);
    assert.equal(e.minUs, 5000);
    assert.equal(e.maxUs, 5000);
    assert.equal(e.latencySummary().mean, 5);
    assert.equal(e.latencySummary().p50, 5);
  });

  it("records TTFB only when there was a first byte", () => {
    const r = new Recorder("w1");
    r.request("HTTP", "GET", "/", 4000, 1000, 0, null);
    r.request("HTTP", "GET", "/", 4000, -1, 0, "ECONNREFUSED");
    const agg = new StatsAggregate(0);
    agg.add(ship(r.snapshot(1)));
    assert.equal(agg.total.ttfb.totalCount, 1);
    assert.equal(agg.total.latency.totalCount, 2);
    assert.equal(agg.total.ttfbSummary().p50, 1);
  });

  it("a snapshot hands over the interval and starts the next one empty", () => {
    const r = new Recorder("w1");
    r.request("HTTP", "GET", "/", 1000, 500, 10, "x");
    r.exception(new Error("e"), "task t");
    r.iteration();
    r.iteration();
    const s0 = ship(r.snapshot(2));
    assert.equal(s0.seq, 0);
    assert.equal(s0.workerId, "w1");
    assert.equal(s0.iterations, 2);
    assert.equal(s0.users, 2);
    assert.equal(s0.final, false);
    assert.equal(s0.endpoints.length, 1);
    const s1 = ship(r.snapshot(2, true));
    assert.equal(s1.seq, 1);
    assert.equal(s1.final, true);
    assert.deepEqual([s1.endpoints, s1.errors, s1.exceptions, s1.iterations], [[], [], [], 0]);
    r.request("HTTP", "GET", "/", 3000, 500, 10, null);
    const s2 = ship(r.snapshot(2));
    assert.equal(s2.endpoints[0]!.count, 1);
    assert.equal(s2.endpoints[0]!.minUs, 3000, "min is reset between intervals");
    assert.equal(s2.endpoints[0]!.failures, 0);
  });

  it("fuzz: random latencies over 1 µs..60 s split over two workers merge exactly", () => {
    for (const seed of [1, 42, 2024, 99991]) {
      const rand = rng(seed);
      const names = ["/a", "/b", "/c"];
      const w1: Sample[] = [];
      const w2: Sample[] = [];
      const n = 2000 + Math.floor(rand() * 3000);
      for (let i = 0; i < n; i++) {
        // Log-uniform over 1 µs .. 60 s, with fractional microseconds.
        const us = Math.min(60_000_000, 10 ** (rand() * Math.log10(60_000_000)));
        const s: Sample = {
          method: rand() < 0.8 ? "GET" : "POST",
          name: names[Math.floor(rand() * names.length)]!,
          us,
          bytes: Math.floor(rand() * 10_000),
          error: rand() < 0.1 ? `HTTP ${500 + Math.floor(rand() * 4)}` : null,
        };
        (rand() < 0.5 ? w1 : w2).push(s);
      }
      // The extremes themselves.
      w1.push({ method: "GET", name: "/a", us: 1, bytes: 0, error: null });
      w2.push({ method: "GET", name: "/a", us: 60_000_000, bytes: 0, error: null });
      const agg = new StatsAggregate(0);
      agg.add(recordAll("w1", w1));
      agg.add(recordAll("w2", w2));
      try {
        assertMatchesUnion(agg, [...w1, ...w2]);
      } catch (err) {
        (err as Error).message = `seed ${seed}: ${(err as Error).message}`;
        throw err;
      }
      assert.equal(agg.total.minUs, 1);
      assert.equal(agg.total.maxUs, 60_000_000);
      const errors = [...agg.errors.values()].reduce((x, e) => x + e.occurrences, 0);
      assert.equal(errors, agg.total.failures);
    }
  });

  it("fuzz: many small snapshots merge to the same figures as one big one", () => {
    const rand = rng(7);
    const all: Sample[] = [];
    const agg = new StatsAggregate(0);
    const recs = [new Recorder("w1"), new Recorder("w2")];
    for (let interval = 0; interval < 20; interval++) {
      for (const [i, r] of recs.entries()) {
        const k = Math.floor(rand() * 50);
        for (let j = 0; j < k; j++) {
          const s: Sample = {
            method: "GET",
            name: "/x",
            us: 1 + Math.floor(rand() * 60_000_000),
            bytes: i,
            error: null,
          };
          all.push(s);
          r.request("HTTP", s.method, s.name, s.us, -1, s.bytes, s.error);
        }
        agg.add(ship(r.snapshot(1)));
      }
    }
    assertMatchesUnion(agg, all);
  });
});

/** Makes a recorder's snapshot with `count` requests of `us` µs, closing at a chosen time. */
function interval(r: Recorder, start: number, count: number, us: number, iterations = 0, users = 1) {
  for (let i = 0; i < count; i++) r.request("HTTP", "GET", "/", us, -1, 0, i % 4 === 0 ? "e" : null);
  for (let i = 0; i < iterations; i++) r.iteration();
  const s = ship(r.snapshot(users));
  s.at = start + (s.seq + 1) * 1000; // deterministic: interval k ends k+1 s after the start
  return s;
}

describe("stats: time series and current window", () => {
  const START = 1_700_000_000_000;

  it("after finish(), the series has exactly one row per interval, in order, summed over workers", () => {
    const agg = new StatsAggregate(START);
    const r1 = new Recorder("w1");
    const r2 = new Recorder("w2");
    const perInterval = [
      [4, 8],
      [10, 2],
      [0, 6],
      [12, 12],
      [1, 0],
      [5, 3],
    ];
    for (const [c1, c2] of perInterval) {
      agg.add(interval(r1, START, c1!, 2000, 1, 2));
      agg.add(interval(r2, START, c2!, 2000, 2, 3));
    }
    agg.finish();
    assert.deepEqual(
      agg.series.map((row) => row.t),
      [1, 2, 3, 4, 5, 6],
      `rows: ${JSON.stringify(agg.series.map((r) => [r.t, r.requests]))}`,
    );
    assert.deepEqual(
      agg.series.map((row) => row.requests),
      perInterval.map(([x, y]) => x! + y!),
    );
    assert.deepEqual(
      agg.series.map((row) => row.rps),
      perInterval.map(([x, y]) => x! + y!),
    );
    assert.deepEqual(
      agg.series.map((row) => row.iterations),
      perInterval.map(() => 3),
    );
    const fails = (n: number) => Math.ceil(n / 4);
    assert.deepEqual(
      agg.series.map((row) => row.failures),
      perInterval.map(([x, y]) => fails(x!) + fails(y!)),
    );
    for (const row of agg.series) {
      assert.equal(row.users, 5);
      if (row.requests > 0) assert.equal(row.p50, agg.total.percentile(50));
      else assert.deepEqual([row.p50, row.p95, row.p99], [0, 0, 0]);
    }
    // Totals agree with the series.
    assert.equal(
      agg.series.reduce((x, row) => x + row.requests, 0),
      agg.total.count,
    );
    assert.equal(agg.iterations, 18);
    // finish() twice adds nothing.
    agg.finish();
    assert.equal(agg.series.length, 6);
  });

  it("series and window percentiles never exceed the largest latency", () => {
    // 123457 µs is not a histogram bucket boundary: a raw HdrHistogram percentile reports the
    // bucket's highest equivalent value (123519 µs), above anything recorded.
    const agg = new StatsAggregate(START);
    const r = new Recorder("w1");
    for (let i = 0; i < 4; i++) agg.add(interval(r, START, 10, 123_457));
    agg.finish();
    const max = agg.total.latencySummary().max;
    assert.equal(max, 123.457);
    assert.equal(agg.total.percentile(99), 123.457);
    assert.ok(agg.series.length > 0);
    for (const row of agg.series) {
      for (const k of ["p50", "p95", "p99"] as const) {
        assert.ok(row[k] <= max, `series t=${row.t} ${k} = ${row[k]} exceeds max ${max}`);
      }
    }
    const cur = agg.current();
    assert.ok(cur.p50 <= max && cur.p95 <= max, `current() ${JSON.stringify(cur)} exceeds max ${max}`);
  });

  it("current() covers the last windowSec intervals", () => {
    const agg = new StatsAggregate(START, 3);
    assert.deepEqual(agg.current(), { rps: 0, failuresPerSec: 0, p50: 0, p95: 0, windowSec: 1 });
    const r1 = new Recorder("w1");
    const r2 = new Recorder("w2");
    // Two intervals: the window holds both.
    agg.add(interval(r1, START, 4, 1000));
    agg.add(interval(r2, START, 4, 1000));
    agg.add(interval(r1, START, 8, 1000));
    agg.add(interval(r2, START, 0, 1000));
    let cur = agg.current();
    assert.equal(cur.windowSec, 2);
    assert.equal(cur.rps, 8);
    assert.equal(cur.failuresPerSec, 2); // i % 4 === 0: 1 + 1 + 2
    assert.equal(cur.p50, 1);
    // Three more intervals of slower requests: only the last 3 intervals count.
    for (const n of [30, 60, 90]) {
      agg.add(interval(r1, START, n / 2, 2000));
      agg.add(interval(r2, START, n / 2, 2000));
    }
    cur = agg.current();
    assert.equal(cur.windowSec, 3);
    assert.equal(cur.rps, 60);
    assert.equal(cur.p50, 2);
    assert.equal(cur.p95, 2);
    assert.equal(cur.failuresPerSec, (2 * 4 + 2 * 8 + 2 * 12) / 3); // ceil(n / 4) per recorder
    // Totals still include everything.
    assert.equal(agg.total.count, 16 + 180);
  });
});

describe("stats: sparse histograms", () => {
  /** Every bucket, the count, min and max: what two histograms must share to be the same. */
  function assertSameHistogram(a: Histogram, b: Histogram, what: string): void {
    assert.equal(a.totalCount, b.totalCount, `${what}: total count`);
    assert.equal(a.minNonZeroValue, b.minNonZeroValue, `${what}: min`);
    assert.equal(a.maxValue, b.maxValue, `${what}: max`);
    assert.deepEqual(toSparse(a), toSparse(b), `${what}: buckets`);
    for (const p of PERCENTILES)
      assert.equal(a.getValueAtPercentile(p), b.getValueAtPercentile(p), `${what}: p${p}`);
  }

  it("addSparse fills the same buckets as the library's own recordValueWithCount, at every magnitude", () => {
    const values: number[] = [];
    // Both sides of every power of two, where a bucket boundary lies, up to past 2^31 (the
    // histogram grows past its 60 s range on its own).
    for (let k = 0; k <= 33; k++) values.push(2 ** k - 1, 2 ** k, 2 ** k + 1);
    const rand = rng(314);
    for (let i = 0; i < 20_000; i++) values.push(Math.floor(10 ** (rand() * 10)) + (rand() < 0.01 ? 0.5 : 0));
    const sparse: number[] = [];
    for (const v of values) if (v > 0) sparse.push(v, 1 + Math.floor(rand() * 5));
    const viaLibrary = createHistogram();
    for (let i = 0; i < sparse.length; i += 2) viaLibrary.recordValueWithCount(sparse[i]!, sparse[i + 1]!);
    const viaSparse = createHistogram();
    addSparse(viaSparse, sparse);
    assertSameHistogram(viaSparse, viaLibrary, "one batch");
    // In pieces, into a histogram that already holds values.
    const pieces = createHistogram();
    for (let i = 0; i < sparse.length; i += 202) addSparse(pieces, sparse.slice(i, i + 202));
    assertSameHistogram(pieces, viaLibrary, "in pieces");
  });

  it("recordValue fills the same buckets, min, max and count as the library's own, at every magnitude", () => {
    const values: number[] = [0];
    for (let k = 0; k <= 33; k++) values.push(2 ** k - 1, 2 ** k, 2 ** k + 1);
    const rand = rng(1618);
    for (let i = 0; i < 20_000; i++) values.push(Math.floor(10 ** (rand() * 10)) + (rand() < 0.01 ? 0.5 : 0));
    const viaLibrary = createHistogram();
    const viaOurs = createHistogram();
    for (const v of values) {
      viaLibrary.recordValue(v);
      recordValue(viaOurs, v);
    }
    assertSameHistogram(viaOurs, viaLibrary, "one by one");
  });

  it("a histogram shipped as sparse JSON and added back is the same histogram", () => {
    const rand = rng(2718);
    const h = createHistogram();
    for (let i = 0; i < 50_000; i++)
      h.recordValue(Math.max(1, Math.round(10 ** (rand() * Math.log10(60_000_000)))));
    const back = createHistogram();
    addSparse(back, JSON.parse(JSON.stringify(toSparse(h))) as number[]);
    // The bucket's lowest value stands for all of it, so only the exact max and min (kept beside
    // the histogram in a snapshot) may differ.
    assert.equal(back.totalCount, h.totalCount);
    assert.deepEqual(toSparse(back), toSparse(h));
    for (const p of PERCENTILES)
      assert.equal(back.getValueAtPercentile(p), h.getValueAtPercentile(p), `p${p}`);
  });

  it("an empty sparse histogram adds nothing", () => {
    const h = createHistogram();
    addSparse(h, []);
    assert.equal(h.totalCount, 0);
    assert.equal(h.maxValue, 0);
  });
});
