/** OpenTelemetry: metrics and spans of real runs, received by an OTLP/HTTP receiver the test runs. */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import {
  CHAT_LOADFILE,
  chatStream,
  describeRun,
  readBody,
  readJson,
  runCli,
  startCli,
  startMaster,
  startServer,
  tempProject,
} from "./helpers.js";

// The OTLP/JSON encoding of the export requests (opentelemetry-proto), as far as these tests read
// it. The SDK's transformer exports only its response types, so the request shapes are here.
interface KeyValue {
  key: string;
  value: { stringValue?: string; intValue?: number | string; doubleValue?: number; boolValue?: boolean };
}
interface NumberPoint {
  attributes?: KeyValue[];
  asInt?: number | string;
  asDouble?: number;
}
interface ExpHistogramPoint {
  attributes?: KeyValue[];
  count: number | string;
  sum?: number;
  scale: number;
  zeroCount?: number | string;
  positive?: { offset?: number; bucketCounts?: Array<number | string> };
}
interface Metric {
  name: string;
  unit?: string;
  sum?: { dataPoints: NumberPoint[]; isMonotonic?: boolean };
  gauge?: { dataPoints: NumberPoint[] };
  exponentialHistogram?: { dataPoints: ExpHistogramPoint[] };
  histogram?: unknown;
}
interface MetricsRequest {
  resourceMetrics: Array<{
    resource?: { attributes?: KeyValue[] };
    scopeMetrics: Array<{ metrics: Metric[] }>;
  }>;
}
interface Span {
  traceId: string;
  spanId: string;
  name: string;
  kind: number;
  attributes?: KeyValue[];
}
interface TraceRequest {
  resourceSpans: Array<{ scopeSpans: Array<{ spans: Span[] }> }>;
}

interface Receiver {
  url: string;
  metrics: MetricsRequest[];
  traces: TraceRequest[];
  headers: IncomingHttpHeaders[];
  close(): Promise<void>;
}

/** An OTLP/HTTP receiver on 127.0.0.1: JSON export requests in, an empty success out. */
async function startReceiver(): Promise<Receiver> {
  const metrics: MetricsRequest[] = [];
  const traces: TraceRequest[] = [];
  const headers: IncomingHttpHeaders[] = [];
  const server: Server = createServer((req, res) => {
    void readBody(req).then((body) => {
      headers.push(req.headers);
      if (req.method !== "POST" || !/json/.test(req.headers["content-type"] ?? "")) {
        res.writeHead(415).end();
        return;
      }
      if (req.url === "/v1/metrics") metrics.push(JSON.parse(body) as MetricsRequest);
      else if (req.url === "/v1/traces") traces.push(JSON.parse(body) as TraceRequest);
      else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    metrics,
    traces,
    headers,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const attr = (kvs: KeyValue[] | undefined, key: string): string | number | boolean | undefined => {
  const v = kvs?.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  if (v.intValue !== undefined) return Number(v.intValue);
  return v.stringValue ?? v.doubleValue ?? v.boolValue;
};
const num = (p: NumberPoint) => Number(p.asInt ?? p.asDouble);

/** The metric `name` as the last export that carried it has it (cumulative: the run's totals). */
function lastMetric(r: Receiver, name: string): Metric | undefined {
  for (let i = r.metrics.length - 1; i >= 0; i--) {
    for (const rm of r.metrics[i]!.resourceMetrics) {
      for (const sm of rm.scopeMetrics) {
        const m = sm.metrics.find((x) => x.name === name);
        if (m) return m;
      }
    }
  }
  return undefined;
}

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.01);
  @task(3) async hit() { await this.client.get("/hit"); }
  @task(1) async missing() { await this.client.get("/missing?id=" + Math.random(), { name: "/missing" }); }
  @task(1) async viaFetch() { await this.client.fetch("/fetched", { name: "/fetched" }); }
}
`;

/** The status the books keep with each endpoint's requests. */
const RECORDED_STATUS: Record<string, number | undefined> = {
  "/hit": 200,
  "/missing": 404,
  "/fetched": undefined,
};

async function runWith(args: string[], env: NodeJS.ProcessEnv = {}) {
  const seen: Array<string | undefined> = [];
  const target = await startServer((req, res) => {
    seen.push(req.headers.traceparent as string | undefined);
    if ((req.url ?? "").startsWith("/missing")) res.writeHead(404).end("no");
    else res.end("ok");
  });
  const project = tempProject({ "loadtest.ts": LOADFILE });
  try {
    const out = join(project.dir, "out.json");
    const cli = await runCli(
      ["run", "loadtest.ts", "--headless", "-H", target.url, "--json", out, "--only-summary", ...args],
      { cwd: project.dir, env, timeoutMs: 60_000 },
    );
    const result = readJson<RunResult>(out);
    return { cli, result, seen, targetTotal: target.total() };
  } finally {
    await target.close();
    project.cleanup();
  }
}

/** A bounded chat run sending to `rx`; every other stream answers its first token late. */
async function chatRun(rx: Receiver, extra: string[]) {
  let n = 0;
  const target = await startServer((req, res) => {
    req.resume();
    const slow = n++ % 2 === 1;
    void chatStream(res, slow ? 1000 : 5, slow ? 2 : 4);
  });
  const project = tempProject({ "loadtest.ts": CHAT_LOADFILE });
  try {
    const out = join(project.dir, "out.json");
    const cli = await runCli(
      [
        "run",
        "loadtest.ts",
        "--headless",
        "-H",
        target.url,
        "-u",
        "2",
        "-r",
        "100",
        "--iterations",
        "8",
      ].concat(["--processes", "2", "--otel", rx.url, "--json", out, "--only-summary", ...extra]),
      { cwd: project.dir, timeoutMs: 60_000 },
    );
    assert.equal(cli.code, 0, describeRun(cli));
    return readJson<RunResult>(out);
  } finally {
    await target.close();
    project.cleanup();
  }
}

/** Every data point of the counter `name` over all exports. */
function allPoints(r: Receiver, name: string): NumberPoint[] {
  return r.metrics.flatMap((req) =>
    req.resourceMetrics.flatMap((rm) =>
      rm.scopeMetrics.flatMap((sm) =>
        sm.metrics.filter((m) => m.name === name).flatMap((m) => m.sum?.dataPoints ?? []),
      ),
    ),
  );
}

describe("OpenTelemetry", () => {
  it("--otel URL: the received totals equal the JSON result's, with the SDK's env conventions", async () => {
    const rx = await startReceiver();
    try {
      const { cli, result } = await runWith(
        [
          "-u",
          "3",
          "-r",
          "100",
          "-t",
          "4s",
          "--processes",
          "2",
          "--otel",
          rx.url,
          "--threshold",
          "p95<5000",
          "--exit-code-on-error",
          "0",
        ],
        {
          OTEL_SERVICE_NAME: "shop-load-test",
          OTEL_EXPORTER_OTLP_HEADERS: "x-team=load,authorization=Bearer%20t0ken",
          // Exports during the run too, so the last one (cumulative) is what counts.
          OTEL_METRIC_EXPORT_INTERVAL: "1000",
        },
      );
      assert.equal(cli.code, 0, describeRun(cli));
      assert.doesNotMatch(cli.stderr, /warning/, describeRun(cli));
      assert.ok(rx.metrics.length >= 2, `expected periodic exports and a last one, got ${rx.metrics.length}`);
      // OTEL_EXPORTER_OTLP_HEADERS reached the receiver, as the SDK reads it.
      assert.equal(rx.headers[0]!["x-team"], "load");
      assert.equal(rx.headers[0]!.authorization, "Bearer t0ken");
      const resource = rx.metrics[0]!.resourceMetrics[0]!.resource?.attributes;
      assert.equal(attr(resource, "service.name"), "shop-load-test");

      const hit = result.endpoints.find((e) => e.name === "/hit")!;
      const missing = result.endpoints.find((e) => e.name === "/missing")!;
      assert.ok(
        hit.requests > 20 && missing.requests > 5,
        `too few requests: ${hit.requests}, ${missing.requests}`,
      );
      assert.equal(missing.failures, missing.requests);

      // Requests by endpoint and status: exactly the JSON result's.
      const requests = lastMetric(rx, "cicada.requests")!.sum!;
      assert.equal(requests.isMonotonic, true);
      const reqBy = (name: string, status: number) =>
        requests.dataPoints
          .filter(
            (p) =>
              attr(p.attributes, "url.template") === name &&
              attr(p.attributes, "http.response.status_code") === status,
          )
          .reduce((n, p) => n + num(p), 0);
      assert.equal(reqBy("/hit", 200), hit.statusCodes["200"]);
      assert.equal(reqBy("/missing", 404), missing.statusCodes["404"]);
      assert.equal(
        requests.dataPoints.reduce((n, p) => n + num(p), 0),
        result.totals.requests,
      );
      const failures = lastMetric(rx, "cicada.failures")!.sum!;
      assert.equal(
        failures.dataPoints.reduce((n, p) => n + num(p), 0),
        result.totals.failures,
      );
      const failuresOf = (name: string) =>
        failures.dataPoints
          .filter((p) => attr(p.attributes, "url.template") === name)
          .reduce((n, p) => n + num(p), 0);
      assert.equal(failuresOf("/missing"), missing.failures);
      assert.equal(failuresOf("/hit"), 0);

      // The response-time histogram: exponential, in seconds, one count per request.
      const duration = lastMetric(rx, "http.client.request.duration")!;
      assert.equal(duration.unit, "s");
      const points = duration.exponentialHistogram!.dataPoints;
      const countOf = (name: string) =>
        points
          .filter((p) => attr(p.attributes, "url.template") === name)
          .reduce((n, p) => n + Number(p.count), 0);
      assert.equal(countOf("/hit"), hit.requests);
      assert.equal(countOf("/missing"), missing.requests);
      for (const p of points) {
        assert.equal(attr(p.attributes, "http.request.method"), "GET");
        assert.equal(attr(p.attributes, "cicada.request.type"), "HTTP");
        // One status answered each endpoint, so every point carries it (fetch() records none).
        const name = String(attr(p.attributes, "url.template"));
        assert.equal(attr(p.attributes, "http.response.status_code"), RECORDED_STATUS[name]);
        const buckets = (p.positive?.bucketCounts ?? []).reduce<number>((n, c) => n + Number(c), 0);
        assert.equal(buckets + Number(p.zeroCount ?? 0), Number(p.count));
        // The mean in seconds agrees with the JSON's milliseconds (±0.1 % buckets, plus rounding).
        const meanMs = ((p.sum ?? 0) / Number(p.count)) * 1000;
        const expected = result.endpoints.find((e) => e.name === name)!.latencyMs.mean;
        assert.ok(
          Math.abs(meanMs - expected) <= expected * 0.01 + 0.01,
          `mean ${meanMs} ms vs ${expected} ms`,
        );
      }

      const gauge = (name: string) => lastMetric(rx, name)?.gauge?.dataPoints ?? [];
      assert.ok(gauge("cicada.users").length === 1, "cicada.users");
      const threshold = gauge("cicada.threshold.passing");
      assert.equal(threshold.length, 1);
      assert.equal(attr(threshold[0]!.attributes, "cicada.threshold"), "p95<5000");
      assert.equal(num(threshold[0]!), 1);
      const workers = new Set(
        gauge("cicada.worker.heap_used").map((p) => attr(p.attributes, "cicada.worker")),
      );
      assert.equal(workers.size, 2, "one heap series per worker");
      assert.ok(gauge("cicada.worker.heap_used").every((p) => num(p) > 1_000_000));
      assert.ok(gauge("cicada.worker.elu").every((p) => num(p) >= 0 && num(p) <= 1));
      const iterations = lastMetric(rx, "cicada.iterations")!.sum!.dataPoints;
      assert.equal(num(iterations[0]!), result.totals.iterations);
    } finally {
      await rx.close();
    }
  });

  it("--slo: the SLO counters of the last export equal the JSON result's goodput, by endpoint", async () => {
    const rx = await startReceiver();
    try {
      const result = await chatRun(rx, ["--slo", "ttft<400ms,e2el<10s"]);
      const g = result.goodput;
      assert.ok(g, "goodput in the result");
      assert.equal(g.judged, 8);
      // Both kinds of stream happened, so the counters below are not trivially equal.
      assert.ok(g.requests > 0 && g.requests < g.judged, `${g.requests} good of ${g.judged}`);
      const chat = result.endpoints.find((e) => e.name === "/v1/chat/completions")!;
      const expected: Record<string, [number | undefined, string]> = {
        "cicada.slo.judged": [g.judged, "{request}"],
        "cicada.slo.good": [g.requests, "{request}"],
        "cicada.slo.good_output_tokens": [chat.counters?.["slo:good_output_tokens"], "{token}"],
      };
      for (const [name, [value, unit]] of Object.entries(expected)) {
        const m = lastMetric(rx, name);
        assert.ok(m?.sum, `${name} exported as a sum`);
        assert.equal(m.sum.isMonotonic, true, name);
        assert.equal(m.unit, unit, name);
        assert.equal(m.sum.dataPoints.length, 1, `${name}: one endpoint`);
        const p = m.sum.dataPoints[0]!;
        assert.equal(num(p), value, name);
        assert.equal(attr(p.attributes, "url.template"), "/v1/chat/completions");
        assert.equal(attr(p.attributes, "http.request.method"), "POST");
        assert.equal(attr(p.attributes, "cicada.request.type"), "SSE");
      }
      assert.ok((chat.counters?.["slo:good_output_tokens"] ?? 0) > 0);
    } finally {
      await rx.close();
    }
  });

  it("a run without --slo exports no SLO counter points", async () => {
    const rx = await startReceiver();
    try {
      const result = await chatRun(rx, []);
      assert.equal(result.goodput, undefined);
      // The same streams were exported: only the judgement is missing.
      const sse = allPoints(rx, "cicada.requests").filter(
        (p) => attr(p.attributes, "cicada.request.type") === "SSE",
      );
      assert.ok(sse.length > 0, "the streams' requests were exported");
      for (const name of ["cicada.slo.judged", "cicada.slo.good", "cicada.slo.good_output_tokens"]) {
        assert.deepEqual(allPoints(rx, name), [], name);
      }
    } finally {
      await rx.close();
    }
  });

  it("--otel-traces: every request the target got carried a traceparent, and one span each arrived", async () => {
    const rx = await startReceiver();
    try {
      const { cli, result, seen, targetTotal } = await runWith([
        "-u",
        "3",
        "-r",
        "100",
        "-i",
        "60",
        "--processes",
        "2",
        "--otel",
        rx.url,
        "--otel-traces",
        "--exit-code-on-error",
        "0",
      ]);
      assert.equal(cli.code, 0, describeRun(cli));
      assert.equal(result.totals.requests, 60);
      assert.equal(targetTotal, 60);
      const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;
      const sent = new Map<string, string>();
      for (const h of seen) {
        const m = TRACEPARENT.exec(h ?? "");
        assert.ok(m, `not a W3C traceparent: ${h}`);
        assert.notEqual(m[1], "0".repeat(32));
        sent.set(m[2]!, m[1]!);
      }
      assert.equal(sent.size, 60, "each request has a span of its own");
      const spans = rx.traces.flatMap((t) =>
        t.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
      );
      assert.equal(spans.length, 60);
      for (const s of spans) {
        // The span the target was told about, in the same trace.
        assert.equal(sent.get(s.spanId), s.traceId, `span ${s.spanId} was not announced to the target`);
        assert.equal(s.kind, 3, "SPAN_KIND_CLIENT");
        const name = String(attr(s.attributes, "url.template"));
        assert.equal(s.name, `GET ${name}`);
        assert.equal(attr(s.attributes, "http.request.method"), "GET");
        assert.equal(attr(s.attributes, "http.response.status_code"), name === "/missing" ? 404 : 200);
        assert.equal(attr(s.attributes, "server.address"), "127.0.0.1");
        assert.match(
          String(attr(s.attributes, "url.full")),
          /^http:\/\/127\.0\.0\.1:\d+\/(hit|fetched|missing\?id=)/,
        );
      }
    } finally {
      await rx.close();
    }
  });

  it("--otel-traces-sample 0.5: about half the spans are sent; every request carries a traceparent whose flag says which", async () => {
    const rx = await startReceiver();
    try {
      const N = 200;
      const { cli, result, seen, targetTotal } = await runWith([
        "-u",
        "4",
        "-r",
        "100",
        "-i",
        String(N),
        "--processes",
        "2",
        "--otel",
        rx.url,
        "--otel-traces",
        "--otel-traces-sample",
        "0.5",
        "--exit-code-on-error",
        "0",
      ]);
      assert.equal(cli.code, 0, describeRun(cli));
      assert.equal(result.totals.requests, N);
      assert.equal(targetTotal, N);
      const spans = rx.traces.flatMap((t) =>
        t.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
      );
      const exported = new Map(spans.map((s) => [s.spanId, s.traceId]));
      const exportedTraces = new Set(spans.map((s) => s.traceId));
      const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
      let sampled = 0;
      const spanIds = new Set<string>();
      for (const h of seen) {
        const m = TRACEPARENT.exec(h ?? "");
        assert.ok(m, `not a W3C traceparent: ${h}`);
        const [, traceId, spanId, flags] = m as unknown as [string, string, string, string];
        assert.notEqual(traceId, "0".repeat(32));
        assert.notEqual(spanId, "0".repeat(16));
        spanIds.add(spanId);
        if (flags === "01") {
          sampled++;
          assert.equal(exported.get(spanId), traceId, `sampled span ${spanId} was not exported`);
        } else {
          assert.ok(!exportedTraces.has(traceId), `unsampled trace ${traceId} was exported`);
        }
      }
      assert.equal(spanIds.size, N, "each request has a span id of its own");
      assert.equal(spans.length, sampled, "exactly the sampled requests' spans arrived");
      // Binomial(200, 0.5): 100 ± 7; these bounds are 7 standard deviations out.
      assert.ok(sampled >= 50 && sampled <= 150, `${sampled} of ${N} sampled`);
      for (const s of spans) {
        // A sampled span is the same as without sampling.
        assert.equal(s.kind, 3, "SPAN_KIND_CLIENT");
        const name = String(attr(s.attributes, "url.template"));
        assert.equal(s.name, `GET ${name}`);
        assert.equal(attr(s.attributes, "http.request.method"), "GET");
        assert.equal(attr(s.attributes, "http.response.status_code"), name === "/missing" ? 404 : 200);
        assert.equal(attr(s.attributes, "server.address"), "127.0.0.1");
        assert.equal(typeof attr(s.attributes, "server.port"), "number");
      }
    } finally {
      await rx.close();
    }
  });

  it("--otel-traces-sample reaches a remote worker with the plan: it samples as told", async () => {
    const rx = await startReceiver();
    const seen: Array<string | undefined> = [];
    const target = await startServer((req, res) => {
      seen.push(req.headers.traceparent as string | undefined);
      res.end("ok");
    });
    const workerDir = tempProject({});
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const N = 120;
      const { master, port } = await startMaster(project.dir, [
        "-H",
        target.url,
        "-u",
        "3",
        "-r",
        "100",
        "-i",
        String(N),
        "--otel",
        rx.url,
        "--otel-traces",
        "--otel-traces-sample",
        "25%",
        "--only-summary",
      ]);
      const worker = startCli(["worker", "--once", "--master-port", String(port)], { cwd: workerDir.dir });
      const killer = setTimeout(() => {
        master.child.kill("SIGKILL");
        worker.child.kill("SIGKILL");
      }, 40_000);
      const [m, w] = await Promise.all([master.result, worker.result]);
      clearTimeout(killer);
      assert.equal(m.code, 0, describeRun(m));
      assert.equal(w.code, 0, describeRun(w));
      assert.equal(seen.length, N);
      const spans = rx.traces.flatMap((t) =>
        t.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
      );
      const exported = new Set(spans.map((s) => s.spanId));
      let sampled = 0;
      for (const h of seen) {
        const m = /^00-[0-9a-f]{32}-([0-9a-f]{16})-(0[01])$/.exec(h ?? "");
        assert.ok(m, `not a W3C traceparent: ${h}`);
        assert.equal(exported.has(m[1]!), m[2] === "01", `span ${m[1]} flagged ${m[2]}`);
        if (m[2] === "01") sampled++;
      }
      assert.equal(spans.length, sampled);
      // Binomial(120, 0.25): 30 ± 4.7; all 120 would mean the worker never got the ratio.
      assert.ok(sampled >= 5 && sampled <= 70, `${sampled} of ${N} sampled`);
    } finally {
      await target.close();
      await rx.close();
      project.cleanup();
      workerDir.cleanup();
    }
  });

  it("--otel-traces-sample 1 sends every span, over an OTEL_TRACES_SAMPLER that says none", async () => {
    const rx = await startReceiver();
    try {
      const N = 40;
      const { cli, seen, targetTotal } = await runWith(
        [
          "-u",
          "2",
          "-r",
          "100",
          "-i",
          String(N),
          "--otel",
          rx.url,
          "--otel-traces",
          "--otel-traces-sample",
          "1",
          "--exit-code-on-error",
          "0",
        ],
        { OTEL_TRACES_SAMPLER: "always_off" },
      );
      assert.equal(cli.code, 0, describeRun(cli));
      assert.equal(targetTotal, N);
      for (const h of seen) assert.match(h ?? "", /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
      const spans = rx.traces.flatMap((t) =>
        t.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)),
      );
      assert.equal(spans.length, N);
    } finally {
      await rx.close();
    }
  });

  /** A run that must not start: its exit code, stderr and the requests the target got. */
  async function refused(args: string[]) {
    const target = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const cli = await runCli(["run", "loadtest.ts", "--headless", "-H", target.url, "-i", "5", ...args], {
        cwd: project.dir,
        timeoutMs: 30_000,
      });
      return { cli, targetTotal: target.total() };
    } finally {
      await target.close();
      project.cleanup();
    }
  }

  for (const bad of ["0", "1.5", "-0.1", "half"]) {
    it(`--otel-traces-sample ${bad}: one usage error naming it, exit 2, no request`, async () => {
      const { cli, targetTotal } = await refused(["--otel-traces", "--otel-traces-sample", bad]);
      assert.equal(cli.code, 2, describeRun(cli));
      assert.ok(
        cli.stderr.includes(
          `--otel-traces-sample: expected a ratio 0 < r ≤ 1 such as 0.01 or 1%, got "${bad}"`,
        ),
        describeRun(cli),
      );
      assert.equal(targetTotal, 0);
    });
  }

  it("--otel-traces-sample without --otel-traces is a usage error", async () => {
    const { cli, targetTotal } = await refused(["--otel-traces-sample", "0.1"]);
    assert.equal(cli.code, 2, describeRun(cli));
    assert.match(cli.stderr, /--otel-traces-sample 0\.1: .*--otel-traces, which is off/);
    assert.equal(targetTotal, 0);
  });

  it("a bare --otel sends both signals where OTEL_EXPORTER_OTLP_ENDPOINT says", async () => {
    const rx = await startReceiver();
    try {
      const { cli, result, targetTotal } = await runWith(
        ["-u", "2", "-r", "100", "-i", "12", "--otel", "--otel-traces", "--exit-code-on-error", "0"],
        { OTEL_EXPORTER_OTLP_ENDPOINT: rx.url },
      );
      assert.equal(cli.code, 0, describeRun(cli));
      assert.equal(targetTotal, 12);
      const requests = lastMetric(rx, "cicada.requests")!.sum!.dataPoints;
      assert.equal(
        requests.reduce((n, p) => n + num(p), 0),
        result.totals.requests,
      );
      const spans = rx.traces.flatMap((t) =>
        t.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((x) => x.spans)),
      );
      assert.equal(spans.length, 12);
    } finally {
      await rx.close();
    }
  });

  it("Ctrl-C: the last export still carries the totals of the JSON result", async () => {
    const rx = await startReceiver();
    const target = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const out = join(project.dir, "out.json");
      const run = startCli(
        ["run", "loadtest.ts", "--headless", "-H", target.url, "-u", "2", "-r", "100", "-t", "5m"].concat([
          "--otel",
          rx.url,
          "--json",
          out,
          "--only-summary",
        ]),
        { cwd: project.dir },
      );
      const killer = setTimeout(() => run.child.kill("SIGKILL"), 40_000);
      while (target.total() < 30) await new Promise((r) => setTimeout(r, 100));
      run.child.kill("SIGINT");
      const cli = await run.result;
      clearTimeout(killer);
      assert.equal(cli.code, 0, describeRun(cli));
      const result = readJson<RunResult>(out);
      assert.equal(result.stopReason, "signal");
      const requests = lastMetric(rx, "cicada.requests")!.sum!.dataPoints;
      assert.equal(
        requests.reduce((n, p) => n + num(p), 0),
        result.totals.requests,
      );
      const points = lastMetric(rx, "http.client.request.duration")!.exponentialHistogram!.dataPoints;
      assert.equal(
        points.reduce((n, p) => n + Number(p.count), 0),
        result.totals.requests,
      );
    } finally {
      await target.close();
      await rx.close();
      project.cleanup();
    }
  });

  it("an unreachable collector gives one warning; the run ends as usual with its outputs", async () => {
    // A port nothing listens on: the exporter's connections are refused.
    const closed = await startReceiver();
    const url = closed.url;
    await closed.close();
    const t0 = Date.now();
    const { cli, result } = await runWith([
      "-u",
      "2",
      "-r",
      "100",
      "-t",
      "2s",
      "--otel",
      url,
      "--otel-traces",
      "--exit-code-on-error",
      "0",
    ]);
    const took = Date.now() - t0;
    assert.equal(cli.code, 0, describeRun(cli));
    assert.ok(result.totals.requests > 0);
    const warnings = cli.stderr.split("\n").filter((l) => /^warning: --otel /.test(l));
    assert.equal(warnings.length, 1, describeRun(cli));
    assert.match(warnings[0]!, new RegExp(url.replace(/[.:/]/g, "\\$&")));
    // A 2 s run; the last export gives up within seconds instead of hanging.
    assert.ok(took < 20_000, `took ${took} ms`);
  });
});
