/**
 * Soak verdicts: the Theil–Sen fit and its interval against known data, the latency history,
 * the thresholds' grammar, and end to end through the CLI against targets that slow down, hold
 * steady, or rate-limit a burst and record when they recovered.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { analyseSoak, reducePoints, theilSen } from "../src/result/soak.js";
import type { SeriesRow } from "../src/stats/aggregate.js";
import { createHistogram, percentileMs } from "../src/stats/histogram.js";
import { LatencyHistory } from "../src/stats/history.js";
import { parseThreshold } from "../src/thresholds/parse.js";
import { rng, runLoad, startCli, startServer, tempProject } from "./helpers.js";

describe("Theil–Sen slope and Sen's interval", () => {
  it("matches a hand-worked example", () => {
    // Pair slopes: 2, 0.5, 4/3, -1, 1, 3 → sorted -1, 0.5, 1, 4/3, 2, 3; median (1 + 4/3) / 2.
    // Var(S) = 4·3·13/18 = 26/3, C = 1.96·√(26/3) = 5.77: M1 = 0.115 and M2 + 1 = 6.885,
    // clamped to the first and the last slope.
    const fit = theilSen([1, 2, 3, 4], [1, 3, 2, 5])!;
    assert.ok(Math.abs(fit.slope - 7 / 6) < 1e-12, String(fit.slope));
    assert.equal(fit.low, -1);
    assert.equal(fit.high, 3);
  });

  it("is exact on a line, and its interval closes on the slope", () => {
    const xs = Array.from({ length: 30 }, (_, i) => i);
    const fit = theilSen(
      xs,
      xs.map((x) => 5 - 2.5 * x),
    )!;
    assert.equal(fit.slope, -2.5);
    assert.equal(fit.low, -2.5);
    assert.equal(fit.high, -2.5);
  });

  it("ignores a quarter of wild outliers", () => {
    const r = rng(7);
    const xs = Array.from({ length: 80 }, (_, i) => i);
    const ys = xs.map((x, i) => 100 + 3 * x + (r() - 0.5) * 2 + (i % 4 === 0 ? 5000 * r() : 0));
    const fit = theilSen(xs, ys)!;
    assert.ok(Math.abs(fit.slope - 3) < 0.3, `slope ${fit.slope}`);
  });

  it("its 95% interval covers the true slope about 95% of the time", () => {
    const r = rng(42);
    let covered = 0;
    const trials = 300;
    for (let k = 0; k < trials; k++) {
      const xs = Array.from({ length: 25 }, (_, i) => i);
      // Laplace noise: heavy tails, where least squares would do worse.
      const ys = xs.map((x) => {
        const u = r() - 0.5;
        return 1.5 * x - Math.sign(u) * 4 * Math.log(1 - 2 * Math.abs(u));
      });
      const fit = theilSen(xs, ys)!;
      if (fit.low <= 1.5 && 1.5 <= fit.high) covered++;
    }
    const rate = covered / trials;
    assert.ok(rate >= 0.9 && rate <= 0.99, `coverage ${rate}`);
  });

  it("excludes zero for a clear trend and includes it for noise", () => {
    const r = rng(3);
    const xs = Array.from({ length: 60 }, (_, i) => i);
    const trend = theilSen(
      xs,
      xs.map((x) => 50e6 + 1e5 * x + (r() - 0.5) * 2e5),
    )!;
    assert.ok(trend.low > 0, JSON.stringify(trend));
    const flat = theilSen(
      xs,
      xs.map(() => 50e6 + (r() - 0.5) * 2e5),
    )!;
    assert.ok(flat.low < 0 && flat.high > 0, JSON.stringify(flat));
  });

  it("reduces long series to bin medians before the quadratic fit", () => {
    const pts = Array.from({ length: 5000 }, (_, i) => [i / 10, 7 * (i / 10)] as [number, number]);
    const red = reducePoints(pts, 400);
    assert.equal(red.length, 400);
    const fit = theilSen(
      red.map((p) => p[0]),
      red.map((p) => p[1]),
    )!;
    assert.ok(Math.abs(fit.slope - 7) < 1e-9);
  });
});

describe("latency history", () => {
  it("gives the exact percentiles of a span, also after its blocks were merged to stay in budget", () => {
    const r = rng(11);
    const all = createHistogram();
    const span = createHistogram();
    const small = new LatencyHistory(2000, 20);
    const big = new LatencyHistory();
    for (let t = 1; t <= 200; t++) {
      const h = createHistogram();
      for (let i = 0; i < 300; i++) h.recordValue(Math.floor(1000 + 50 * t + 20000 * r() ** 3));
      all.add(h);
      if (t >= 101 && t <= 160) span.add(h);
      small.add(t, h, h.minNonZeroValue, h.maxValue);
      big.add(t, h, h.minNonZeroValue, h.maxValue);
    }
    const exact = big.span(101, 160)!;
    assert.equal(exact.fromT, 101);
    assert.equal(exact.toT, 160);
    assert.equal(exact.histogram.totalCount, span.totalCount);
    for (const p of [50, 95, 99])
      assert.equal(exact.histogram.getValueAtPercentile(p), span.getValueAtPercentile(p));
    assert.ok(small.resolution > 1, "the small budget merged blocks");
    const whole = small.span(1, 200)!;
    assert.equal(whole.histogram.totalCount, all.totalCount);
    assert.equal(
      percentileMs(whole.histogram, 95, whole.minUs, whole.maxUs),
      percentileMs(all, 95, all.minNonZeroValue, all.maxValue),
    );
    // A span inside merged blocks covers whole blocks: its edges snap outwards.
    const snapped = small.span(101, 160)!;
    assert.ok(snapped.fromT <= 101 && snapped.toT >= 160);
    // The newest seconds are never merged.
    const recent = small.span(190, 200)!;
    assert.equal(recent.fromT, 190);
    assert.equal(recent.toT, 200);
  });
});

describe("the steady part", () => {
  const row = (t: number, users: number, rps: number): SeriesRow => ({
    t,
    users,
    requests: rps,
    failures: 0,
    rps,
    failuresPerSec: 0,
    iterations: rps,
    dropped: 0,
    p50: 10,
    p95: 20,
    p99: 30,
  });

  it("starts after the ramp-up and ends before the ramp-down", () => {
    const series = [
      ...[1, 2, 3, 4, 5].map((u, i) => row(i + 1, u * 10, u * 100)),
      ...Array.from({ length: 20 }, (_, i) => row(6 + i, 50, 500 + (i % 2))),
      ...[40, 20, 0].map((u, i) => row(26 + i, u, u * 10)),
    ];
    const s = analyseSoak({ series, basis: "users", rate: null, stages: null, bursts: [], resources: [] });
    assert.deepEqual(s.steady, { fromSec: 5, toSec: 25, seconds: 20, basis: "users", level: 50 });
    assert.equal(s.degradation?.windowSec, 5);
    assert.equal(s.degradation?.first.rps, 500.4);
    assert.ok(s.stability !== null && s.stability.rpsCv! < 0.01);
  });

  it("a heap that only grows (no garbage collection yet) is fitted but not flagged; one that grows across collections is", () => {
    const series = Array.from({ length: 30 }, (_, i) => row(i + 1, 50, 500));
    const MB = 1024 * 1024;
    const heap = (points: Array<[number, number]>) => ({
      source: "w0",
      kind: "generator" as const,
      metric: "heap_used_bytes",
      unit: "bytes" as const,
      host: "master",
      points,
    });
    // 10 MB growing 0.1 MB a second, never collected: garbage piling up, not a leak yet.
    const between = heap(Array.from({ length: 30 }, (_, i) => [i + 1, 10 * MB + i * 0.1 * MB]));
    // The same growth, with a collection every 5 s that takes back less than was added.
    const across = heap(
      Array.from({ length: 30 }, (_, i) => [i + 1, 10 * MB + i * 0.1 * MB + (i % 5) * 0.2 * MB]),
    );
    const s = analyseSoak({
      series,
      basis: "users",
      rate: null,
      stages: null,
      bursts: [],
      resources: [between, across],
    });
    assert.equal(s.leaks.length, 2);
    assert.ok(s.leaks[0]!.lowPerMin > 0, JSON.stringify(s.leaks[0]));
    assert.equal(s.leaks[0]!.growing, false);
    assert.equal(s.leaks[1]!.growing, true, JSON.stringify(s.leaks[1]));
  });

  it("finds a spike in the stages and times the recovery from its end", () => {
    const stages = [
      { durationSec: 0, target: 5 },
      { durationSec: 10, target: 5 },
      { durationSec: 0, target: 50 },
      { durationSec: 5, target: 50 },
      { durationSec: 0, target: 5 },
      { durationSec: 15, target: 5 },
    ];
    const series = Array.from({ length: 30 }, (_, i) => {
      const t = i + 1;
      const r = row(t, t <= 10 || t > 15 ? 5 : 50, 100);
      // Slow until 3 s after the spike ended.
      if (t > 10 && t <= 18) r.p95 = 200;
      return r;
    });
    const s = analyseSoak({ series, basis: "users", rate: null, stages, bursts: [], resources: [] });
    assert.equal(s.recovery.length, 1);
    const rec = s.recovery[0]!;
    assert.equal(rec.cause, "spike");
    assert.equal(rec.t, 10);
    assert.equal(rec.measuredFrom, 15);
    assert.equal(rec.recoverySec, 3);
  });
});

describe("soak thresholds", () => {
  it("reads units and statistics", () => {
    const t = (s: string) => parseThreshold(s);
    assert.equal(t("degradation<10%").target, 0.1);
    assert.equal(t("rps_degradation<0.1").target, 0.1);
    assert.equal(t("recovery<5s").target, 5);
    assert.equal(t("recovery<500ms").target, 0.5);
    assert.equal(t("rps_cv<0.1").target, 0.1);
    assert.equal(t("target_rss_slope<1MB/min").target, 1024 * 1024);
    assert.equal(t("generator_rss_slope<10KB/s").target, 10 * 1024 * 60);
    assert.equal(t("target_rss_slope<2GB/h").target, (2 * 1024 ** 3) / 60);
    const cpu = t("target_cpu max<80%");
    assert.equal(cpu.target, 80);
    assert.equal(cpu.metricText, "target_cpu_max");
    assert.equal(t("target_cpu avg<50").metricText, "target_cpu_mean");
    assert.equal(t("target_cpu p95<70%").metricText, "target_cpu_p95");
    assert.equal(t("target_rss max<4GB").target, 4 * 1024 ** 3);
    assert.equal(t("target_rss<512MB").metricText, "target_rss_max");
    assert.equal(t("target_cpu max<80% abortOnFail").abortOnFail, true);
  });

  it("rejects what it cannot mean, naming what was written", () => {
    const cases: Array<[string, RegExp]> = [
      ["target_rss_slope<1MB", /"target_rss_slope<1MB".*bytes per time.*got mb/],
      ["target_rss_slope<5", /"target_rss_slope<5".*a plain number/],
      ["degradation<10ms", /"degradation<10ms".*percentage/],
      ["recovery<5%", /"recovery<5%".*in s or ms/],
      ["target_cpu max<2GB", /"target_cpu max<2GB".*percentage of one core/],
      ["target_rss max<80%", /"target_rss max<80%".*B, KB, MB or GB/],
      ["target_cpu p200<5", /"target_cpu p200<5".*unknown statistic "p200"/],
      ["degradation<10% abortOnFail", /"degradation<10% abortOnFail".*judged at the end/],
      ["GET /x: degradation<10%", /"GET \/x: degradation<10%".*no scope, got "GET \/x"/],
      ["p95<5MB", /"p95<5MB".*latency takes ms or s, not mb/],
    ];
    for (const [expr, re] of cases) assert.throws(() => parseThreshold(expr), re, expr);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end: the real CLI against loopback targets.

const LOADFILE = `
import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/work"); }
}
`;

describe("degradation and stability, end to end", () => {
  it("a target that slows down as the run goes on trips degradation<10% (exit 3)", async () => {
    let t0 = 0;
    const server = await startServer((_req, res) => {
      t0 ||= Date.now();
      // Its own delay grows by 3 ms each second.
      const delay = 10 + (3 * (Date.now() - t0)) / 1000;
      setTimeout(() => res.end("ok"), delay);
    });
    const dir = mkdtempSync(join(tmpdir(), "cicada-soak-"));
    try {
      const html = join(dir, "report.html");
      const { code, stdout, stderr, result } = await runLoad(LOADFILE, [
        "-H",
        server.url,
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        "16s",
        "--threshold",
        "degradation<10%",
        "--html",
        html,
      ]);
      assert.equal(code, 3, stderr);
      const d = result.soak?.degradation;
      assert.ok(d, JSON.stringify(result.soak));
      assert.ok(d.p95ChangePct! > 50, JSON.stringify(d));
      // The windows' p95 are the target's own delays then (10 ms + 3 ms/s), within generous margins.
      assert.ok(d.first.p95Ms! < d.last.p95Ms!, JSON.stringify(d));
      assert.ok(d.last.p95Ms! >= 10 + 3 * (d.last.fromSec - 1), JSON.stringify(d));
      const th = result.thresholds?.find((x) => x.expr === "degradation<10%");
      assert.equal(th?.passed, false);
      assert.ok(Math.abs(th!.value! - d.p95ChangePct! / 100) < 1e-9, JSON.stringify(th));
      assert.ok(
        result.recommendations?.some(
          (f) => f.kind === "soak" && /degraded under sustained load/.test(f.message),
        ),
        JSON.stringify(result.recommendations),
      );
      assert.match(stdout, /Soak verdicts/);
      assert.match(stdout, /! degradation +p95 [\d.]+ ms → [\d.]+ ms \(\+/);
      assert.ok(existsSync(html));
      assert.match(
        readFileSync(html, "utf8"),
        /id="soak-section"[\s\S]*data-soak="degradation" class="failed"/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await server.close();
    }
  });

  it("a steady target passes degradation<10%, and its rate varies little (rps_cv)", async () => {
    const server = await startServer((_req, res) => setTimeout(() => res.end("ok"), 100));
    try {
      const { code, stderr, result } = await runLoad(LOADFILE, [
        "-H",
        server.url,
        "-u",
        "5",
        "-r",
        "5",
        "-t",
        "16s",
        "--threshold",
        "degradation<10%",
        "--threshold",
        "rps_degradation<10%",
        "--threshold",
        "rps_cv<0.25",
      ]);
      assert.equal(
        code,
        0,
        `${stderr}\n${JSON.stringify(result.thresholds)}\n${JSON.stringify(result.soak)}`,
      );
      const s = result.soak!;
      assert.equal(s.steady?.basis, "users");
      assert.equal(s.steady?.level, 5);
      assert.ok(s.steady!.seconds >= 10, JSON.stringify(s.steady));
      // Faster at the end is no degradation; warm-up can make the first window the slower one.
      assert.ok(s.degradation!.p95ChangePct! < 10, JSON.stringify(s.degradation));
      // 5 users each waiting 100 ms: about 50 requests a second, the same every second. The
      // target's delay is long enough that a busy test machine's jitter stays well inside 10 %,
      // and the rate's spread inside the 0.25 allowed (a target that stalls for seconds exceeds it).
      assert.ok(s.stability!.rpsMean > 25 && s.stability!.rpsMean <= 52, JSON.stringify(s.stability));
      assert.ok(s.stability!.rpsCv! < 0.25, JSON.stringify(s.stability));
      assert.ok(result.thresholds?.every((x) => x.passed));
      assert.ok(
        !result.recommendations?.some((f) => f.kind === "soak"),
        JSON.stringify(result.recommendations),
      );
    } finally {
      await server.close();
    }
  });
});

describe("recovery after a burst, end to end", () => {
  it("is measured within 1 s of when the rate-limited target itself recovered", async (ctx) => {
    // A token bucket of 60, refilled at 22 per second. Once empty it stays closed (429) until
    // it is full again, and records when that happened.
    const CAP = 60;
    const REFILL = 22;
    let tokens = CAP;
    let last = Date.now();
    let exhaustedAt = 0;
    let recoveredAt = 0;
    let closed = false;
    const server = await startServer((_req, res) => {
      const now = Date.now();
      tokens = Math.min(CAP, tokens + ((now - last) / 1000) * REFILL);
      last = now;
      if (closed && tokens >= CAP) {
        closed = false;
        recoveredAt = now;
      }
      if (!closed && tokens >= 1) {
        tokens -= 1;
        setTimeout(() => res.end("ok"), 20);
        return;
      }
      if (!closed) {
        closed = true;
        exhaustedAt ||= now;
      }
      res.statusCode = 429;
      res.end("slow down");
    });
    try {
      const { code, stderr, result } = await runLoad(
        `
import { HttpUser, LoadShape, type ShapeTick, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/limited"); }
}
export class BurstThenCalm extends LoadShape {
  private fired = false;
  tick(t: number): ShapeTick | null {
    if (t < 4) return { rate: 15 };
    if (!this.fired) { this.fired = true; return { burst: 150 }; }
    if (t < 13) return { rate: 15 };
    return null;
  }
}
`,
        ["-H", server.url, "-s", "2", "--max-users", "200", "--threshold", "recovery<8s"],
      );
      assert.equal(code, 1, `429s are failures by default\n${stderr}`);
      assert.ok(exhaustedAt > 0 && recoveredAt > exhaustedAt, "the target was exhausted and recovered");
      const truth = (recoveredAt - exhaustedAt) / 1000;
      const rec = result.soak?.recovery.find((x) => x.cause === "burst");
      assert.ok(rec, JSON.stringify(result.soak));
      assert.equal(rec.count, 150);
      assert.ok(rec.recoverySec !== null, JSON.stringify(rec));
      ctx.diagnostic(`measured ${rec.recoverySec} s, the target's own record ${truth} s`);
      assert.ok(
        Math.abs(rec.recoverySec - truth) <= 1,
        `measured ${rec.recoverySec} s, the target recovered after ${truth} s: ${JSON.stringify(rec)}`,
      );
      assert.equal(rec.baseline.errorRate, 0);
      const th = result.thresholds?.find((x) => x.expr === "recovery<8s");
      assert.equal(th?.passed, true, JSON.stringify(th));
      assert.equal(th?.value, rec.recoverySec);
    } finally {
      await server.close();
    }
  });
});

describe("resource thresholds, live", () => {
  it("read every series of the kind, the worst one counting, and abortOnFail stops on the latest values", async () => {
    const { StatsAggregate } = await import("../src/stats/aggregate.js");
    const { ThresholdWatch, evaluate } = await import("../src/thresholds/evaluate.js");
    const books = new StatsAggregate(0);
    const sample = (source: string, metric: string, at: number, value: number) => ({
      source,
      kind: "target" as const,
      metric,
      unit: metric === "cpu_percent" ? ("percent" as const) : ("bytes" as const),
      host: "master",
      at,
      value,
    });
    const watch = new ThresholdWatch([
      parseThreshold("target_cpu max<80% abortOnFail"),
      parseThreshold("target_rss max<1GB"),
      parseThreshold("target_cpu avg<50%"),
    ]);
    assert.equal(watch.tick(books, 1), false, "no series yet is no reason to stop");
    assert.match(watch.latest[0]!.note ?? "", /no target cpu_percent series.*--monitor-pid/);
    books.resources.add([
      sample("pid 1 (a)", "cpu_percent", 1000, 30),
      sample("pid 2 (b)", "cpu_percent", 1000, 60),
    ]);
    books.resources.add([sample("pid 1 (a)", "rss_bytes", 1000, 200 * 1024 ** 2)]);
    assert.equal(watch.tick(books, 2), false);
    assert.deepEqual(
      watch.latest.map((r) => [r.value, r.passed]),
      [
        [60, true],
        [200 * 1024 ** 2, true],
        [60, false],
      ],
    );
    books.resources.add([sample("pid 2 (b)", "cpu_percent", 2000, 95)]);
    assert.equal(watch.tick(books, 3), true, "a process over 80% of a core stops the run");
    assert.equal(watch.abortedBy?.expr, "target_cpu max<80% abortOnFail");
    const end = evaluate(watch.thresholds, books, 3);
    assert.equal(end[0]!.value, 95);
    assert.equal(end[2]!.value, 77.5, "the worst process's mean");
  });
});

describe("soak gauges in Prometheus", () => {
  it("carry the verdicts so far while the run goes on", async () => {
    const server = await startServer((_req, res) => setTimeout(() => res.end("ok"), 20));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    const run = startCli(
      [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        server.url,
        "-u",
        "3",
        "-r",
        "3",
        "-t",
        "18s",
        "--prometheus-port",
        "0",
        "--only-summary",
        "--json",
        "out.json",
      ],
      { cwd: project.dir },
    );
    try {
      await run.waitFor(/Prometheus metrics on http:\/\/\S+\/metrics/);
      const url = /Prometheus metrics on (http:\/\/\S+\/metrics)/.exec(run.output().stderr)![1]!;
      let text = "";
      const value = (name: string) => {
        const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
        return m ? Number(m[1]) : undefined;
      };
      // Scraped until 8 steady seconds are in (about 10 s into the 18 s run), not after a fixed
      // sleep: on a busy machine the users may reach their level a few seconds after the endpoint
      // is up. The deadline is still before the run ends.
      const deadline = Date.now() + 15_000;
      do {
        await new Promise((r) => setTimeout(r, 500));
        text = await (await fetch(url)).text();
      } while (!((value("cicada_soak_steady_seconds") ?? 0) >= 8) && Date.now() < deadline);
      const steady = value("cicada_soak_steady_seconds");
      assert.ok(steady !== undefined && steady >= 8, text);
      // Two steady windows of 2 s or more exist by now: the change ratios have values.
      assert.ok(Number.isFinite(value("cicada_soak_p95_change_ratio")), text);
      assert.ok(Number.isFinite(value("cicada_soak_rps_change_ratio")), text);
      const cv = value("cicada_soak_rps_cv");
      assert.ok(cv !== undefined && cv >= 0 && cv < 0.5, text);
      // Nothing to recover from: no value rather than a made-up zero.
      assert.ok(Number.isNaN(value("cicada_soak_worst_recovery_seconds")), text);
      const done = await run.result;
      assert.equal(done.code, 0, done.stderr);
      const result = JSON.parse(readFileSync(join(project.dir, "out.json"), "utf8"));
      assert.ok(result.soak.steady.seconds >= steady, JSON.stringify(result.soak.steady));
    } finally {
      run.child.kill("SIGKILL");
      project.cleanup();
      await server.close();
    }
  });
});

describe("the Grafana dashboard", () => {
  const dashboard = JSON.parse(
    readFileSync(new URL("../../docs/grafana/cicada-dashboard.json", import.meta.url), "utf8"),
  );
  const exprs: string[] = dashboard.panels.flatMap((p: { targets?: Array<{ expr: string }> }) =>
    (p.targets ?? []).map((t) => t.expr),
  );

  it("queries only metrics the exporter serves, soak verdicts and target series among them", async () => {
    const { PrometheusOutput } = await import("../src/outputs/prometheus.js");
    const served = new Set(
      new PrometheusOutput(() => undefined).registry.getMetricsAsArray().map((m: { name: string }) => m.name),
    );
    // The shared resource gauge of issue 15, served by the exporter once resource monitoring is in.
    served.add("cicada_resource");
    const used = new Set(exprs.flatMap((e) => e.match(/cicada_[a-z0-9_]+/g) ?? []));
    for (const name of used)
      assert.ok(served.has(name), `the dashboard queries ${name}, which nothing serves`);
    for (const name of [
      "cicada_soak_p95_change_ratio",
      "cicada_soak_slope_per_minute",
      "cicada_resource",
      "cicada_slo_good_total",
      "cicada_slo_judged_total",
    ]) {
      assert.ok(used.has(name), `no panel for ${name}`);
    }
    const titles = dashboard.panels
      .filter((p: { type: string }) => p.type === "row")
      .map((p: { title: string }) => p.title);
    assert.deepEqual(
      titles.map((t: string) => t.split(" (")[0]),
      ["Run", "Over time", "Target resources", "Soak verdicts", "Streaming and generator"],
    );
  });

  it("has expressions Prometheus parses (promtool check rules)", async (ctx) => {
    const promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].find((p) => existsSync(p));
    if (!promtool) {
      ctx.skip("promtool is not installed");
      return;
    }
    const dir = mkdtempSync(join(tmpdir(), "cicada-dash-"));
    try {
      const rules = `groups:\n  - name: dashboard\n    rules:\n${exprs
        .map((e, i) => `      - record: dashboard_expr_${i}\n        expr: ${JSON.stringify(e)}\n`)
        .join("")}`;
      const file = join(dir, "rules.yml");
      writeFileSync(file, rules);
      const { spawnSync } = await import("node:child_process");
      const r = spawnSync(promtool, ["check", "rules", file], { encoding: "utf8" });
      assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
