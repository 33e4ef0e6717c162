// OpenTelemetry metrics of a run (--otel): the coordinator's merged books, sent over OTLP/HTTP by the SDK.
import { createRequire } from "node:module";
import type { Attributes, Meter, Histogram as OtelHistogram } from "@opentelemetry/api";
import type { MeterProvider } from "@opentelemetry/sdk-metrics";
import { cicadaResource } from "../protocols/http/tracing.js";
import type { RunResult } from "../result/result.js";
import type { ThresholdResult } from "../result/thresholds.js";
import type { EndpointTotals, StatsAggregate } from "../stats/aggregate.js";
import type { Histogram } from "../stats/histogram.js";
import { SLO_GOOD, SLO_GOOD_OUTPUT_TOKENS, SLO_JUDGED } from "../stats/slo.js";
import type { MetricsSource } from "./prometheus.js";
import type { Sink } from "./sink.js";

type SdkMetrics = typeof import("@opentelemetry/sdk-metrics");
type MetricExporter = typeof import("@opentelemetry/exporter-metrics-otlp-http");
type Core = typeof import("@opentelemetry/core");
type Semconv = typeof import("@opentelemetry/semantic-conventions");

/** What the observable instruments read at each collection. */
export interface OtelSource extends MetricsSource {
  /** Open model with one plan: the arrival rate in force; null otherwise. */
  arrivalRate: number | null;
}

export interface OtelOptions {
  /** `--otel URL`: the OTLP/HTTP base URL; undefined leaves it to the SDK's OTEL_EXPORTER_OTLP_* variables. */
  url: string | undefined;
  env: NodeJS.ProcessEnv;
  /** One line for the user (an unreachable collector). */
  warn(line: string): void;
}

/** Incubating in the semantic conventions, so named here rather than imported from there. */
const ATTR_URL_TEMPLATE = "url.template";
const ATTR_REQUEST_TYPE = "cicada.request.type";
/** How long the last export may take at the end of the run before it is given up. */
const FINAL_FLUSH_MS = 5000;

/** The fields of hdr-histogram-js's JS histograms read to walk the buckets. */
interface HdrBuckets {
  readonly countsArrayLength: number;
  getCountAtIndex(i: number): number;
  valueFromIndex(i: number): number;
}

/** The bucket counts of a book's histogram already handed to the SDK. */
interface Seen {
  total: number;
  counts: Map<number, number>;
}

/**
 * The metrics of the run, sent to an OTLP/HTTP receiver. Counters and gauges are observed from
 * the merged books at each collection, so their last export equals the JSON result; response
 * times and the further metrics of each endpoint are recorded into exponential histograms from
 * what the books gained since the last second. Nothing here runs on the workers.
 */
export class OtelOutput implements Sink {
  readonly label: string;
  private readonly provider: MeterProvider;
  private readonly meter: Meter;
  private readonly duration: OtelHistogram;
  private readonly further = new Map<string, OtelHistogram>();
  private readonly seen = new Map<Histogram, Seen>();
  private readonly seenStatuses = new Map<EndpointTotals, Map<number, number>>();
  private readonly attrCache = new Map<string, Attributes>();
  private finalThresholds: readonly ThresholdResult[] | undefined;
  private warned = false;
  private delivered = false;
  private closed = false;

  constructor(
    private readonly opts: OtelOptions,
    private readonly source: () => OtelSource | undefined,
  ) {
    // Loaded only when asked for: most runs do not export metrics.
    const require = createRequire(import.meta.url);
    const sdk = require("@opentelemetry/sdk-metrics") as SdkMetrics;
    const { OTLPMetricExporter } = require("@opentelemetry/exporter-metrics-otlp-http") as MetricExporter;
    const { ExportResultCode } = require("@opentelemetry/core") as Core;
    const sc = require("@opentelemetry/semantic-conventions") as Semconv;
    const env = opts.env;
    this.label = `--otel ${opts.url ?? env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "http://localhost:4318"}`;

    // Endpoint, headers, timeout and temporality: the SDK reads OTEL_EXPORTER_OTLP_* itself.
    const inner = new OTLPMetricExporter(opts.url ? { url: `${opts.url}/v1/metrics` } : {});
    const exporter: import("@opentelemetry/sdk-metrics").PushMetricExporter = {
      export: (metrics, done) =>
        inner.export(metrics, (r) => {
          if (r.code === ExportResultCode.SUCCESS) this.delivered = true;
          else this.warnOnce(`cannot send metrics: ${r.error?.message ?? "export failed"}`);
          done(r);
        }),
      forceFlush: () => inner.forceFlush(),
      shutdown: () => inner.shutdown(),
      selectAggregationTemporality: (t) => inner.selectAggregationTemporality(t),
    };
    const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
    this.provider = new sdk.MeterProvider({
      resource: cicadaResource(require),
      // Exponential histograms keep the precision of the books' own at any magnitude.
      views: [
        {
          instrumentType: sdk.InstrumentType.HISTOGRAM,
          aggregation: { type: sdk.AggregationType.EXPONENTIAL_HISTOGRAM },
        },
      ],
      readers: [
        new sdk.PeriodicExportingMetricReader({
          exporter,
          // OTEL_METRIC_EXPORT_INTERVAL as the specification names it; 10 s suits a load test.
          exportIntervalMillis: Number.isFinite(interval) && interval > 0 ? interval : 10_000,
        }),
      ],
    });
    const meter = (this.meter = this.provider.getMeter("cicada"));
    this.duration = meter.createHistogram(sc.METRIC_HTTP_CLIENT_REQUEST_DURATION, {
      description:
        "Duration of the requests, by endpoint (and status code where one status answered them all).",
      unit: "s",
    });
    this.observe(sc);
  }

  private observe(sc: Semconv): void {
    const m = this.meter;
    const src = () => this.source();
    const endpointAttrs = (e: EndpointTotals): Attributes =>
      this.attrs(e, 0, () => ({
        [sc.ATTR_HTTP_REQUEST_METHOD]: e.method,
        [ATTR_URL_TEMPLATE]: e.name,
        [ATTR_REQUEST_TYPE]: e.type,
      }));

    m.createObservableCounter("cicada.requests", {
      description: "Completed requests (successes and failures), by endpoint and status code.",
      unit: "{request}",
    }).addCallback((r) => {
      for (const e of src()?.stats.endpoints.values() ?? []) {
        let withStatus = 0;
        for (const [code, n] of e.statuses ?? []) {
          withStatus += n;
          r.observe(
            n,
            this.attrs(e, code, () => ({ ...endpointAttrs(e), [sc.ATTR_HTTP_RESPONSE_STATUS_CODE]: code })),
          );
        }
        // Requests that got no status (refused, timed out, other protocols) have none.
        if (e.count - withStatus > 0 || withStatus === 0) r.observe(e.count - withStatus, endpointAttrs(e));
      }
    });
    m.createObservableCounter("cicada.failures", {
      description: "Failed requests, by endpoint.",
      unit: "{request}",
    }).addCallback((r) => {
      for (const e of src()?.stats.endpoints.values() ?? []) r.observe(e.failures, endpointAttrs(e));
    });
    // --slo: only endpoints with judged streams are observed, so a run without --slo has none.
    const judged = (name: string, description: string, unit: string, counter: string) =>
      m.createObservableCounter(name, { description, unit }).addCallback((r) => {
        for (const e of src()?.stats.endpoints.values() ?? []) {
          if (e.counters?.get(SLO_JUDGED) === undefined) continue;
          r.observe(e.counters.get(counter) ?? 0, endpointAttrs(e));
        }
      });
    judged(
      "cicada.slo.judged",
      "Streams with counted tokens judged against the --slo objectives (ttft, tpot, e2el upper bounds), completed or failed, by endpoint.",
      "{request}",
      SLO_JUDGED,
    );
    judged(
      "cicada.slo.good",
      "Streams that met every --slo objective (completed, a first token, ttft, tpot and e2el within their bounds), by endpoint: goodput is its rate.",
      "{request}",
      SLO_GOOD,
    );
    judged(
      "cicada.slo.good_output_tokens",
      "Output tokens of the streams that met every --slo objective, by endpoint: output-token goodput is its rate.",
      "{token}",
      SLO_GOOD_OUTPUT_TOKENS,
    );
    m.createObservableCounter("cicada.iterations", {
      description: "Task iterations started.",
      unit: "{iteration}",
    }).addCallback((r) => {
      const s = src();
      if (s) r.observe(s.stats.iterations);
    });
    m.createObservableCounter("cicada.dropped_iterations", {
      description: "Open model: arrivals dropped because no user could start them in time.",
      unit: "{iteration}",
    }).addCallback((r) => {
      const s = src();
      if (s) r.observe(s.stats.dropped);
    });
    m.createObservableCounter("cicada.checks", {
      description: "check() evaluations, by check and result.",
      unit: "{check}",
    }).addCallback((r) => {
      for (const [check, c] of src()?.stats.checks ?? []) {
        r.observe(c.passes, { "cicada.check": check, "cicada.check.result": "pass" });
        r.observe(c.fails, { "cicada.check": check, "cicada.check.result": "fail" });
      }
    });
    m.createObservableGauge("cicada.users", {
      description: "Users alive, over all workers.",
      unit: "{user}",
    }).addCallback((r) => {
      const s = src();
      if (s) r.observe(s.stats.users);
    });
    m.createObservableGauge("cicada.rps", {
      description: "Requests per second over the last 10 seconds.",
      unit: "{request}/s",
    }).addCallback((r) => {
      const s = src();
      if (s) r.observe(s.stats.current().rps);
    });
    m.createObservableGauge("cicada.arrival_rate", {
      description: "Open model: iterations started per second, as the plan sets it now.",
      unit: "{iteration}/s",
    }).addCallback((r) => {
      const rate = src()?.arrivalRate;
      if (rate !== null && rate !== undefined) r.observe(rate);
    });
    m.createObservableGauge("cicada.threshold.passing", {
      description: "1 while a threshold passes, 0 while it fails (checked every second; final at the end).",
    }).addCallback((r) => {
      for (const t of this.finalThresholds ?? src()?.thresholds ?? []) {
        r.observe(t.passed ? 1 : 0, { "cicada.threshold": t.expr });
      }
    });
    m.createObservableGauge("cicada.worker.elu", {
      description: "Event-loop utilization of each worker over its last second (0-1): the generator's CPU.",
      unit: "1",
    }).addCallback((r) => {
      for (const w of src()?.workers ?? []) r.observe(w.cpu, { "cicada.worker": w.id });
    });
    m.createObservableGauge("cicada.worker.heap_used", {
      description: "V8 heap in use by each worker.",
      unit: "By",
    }).addCallback((r) => {
      for (const w of src()?.workers ?? [])
        r.observe(Math.round(w.heapUsedMB * 1048576), { "cicada.worker": w.id });
    });
    m.createObservableGauge("cicada.resource", {
      description: "Latest value of each resource series of the target and the generator (--monitor-*).",
    }).addCallback((r) => {
      for (const x of src()?.stats.resources.latest() ?? []) {
        r.observe(x.value, { kind: x.kind, host: x.host, source: x.source, metric: x.metric });
      }
    });
  }

  /** Attribute objects are made once per endpoint and status, not at every record. */
  private attrs(e: EndpointTotals, status: number, make: () => Attributes): Attributes {
    const key = `${e.type}\u0000${e.method}\u0000${e.name}\u0000${status}`;
    let a = this.attrCache.get(key);
    if (!a) {
      a = make();
      this.attrCache.set(key, a);
    }
    return a;
  }

  tick(books: StatsAggregate): void {
    this.feed(books);
  }

  end(books: StatsAggregate): void {
    this.feed(books);
  }

  result(r: RunResult): void {
    this.finalThresholds = r.thresholds ?? [];
  }

  /** Records into the SDK's histograms what the books gained since the last call. */
  private feed(books: StatsAggregate): void {
    for (const e of books.endpoints.values()) {
      const status = this.soleStatus(e);
      const base = this.attrs(e, 0, () => ({
        "http.request.method": e.method,
        [ATTR_URL_TEMPLATE]: e.name,
        [ATTR_REQUEST_TYPE]: e.type,
      }));
      const attrs =
        status > 0 ? this.attrs(e, status, () => ({ ...base, "http.response.status_code": status })) : base;
      // The books keep microseconds; the semantic conventions, seconds.
      this.recordNew(e.latency, this.duration, attrs, 1e-6);
      for (const [metric, h] of e.metrics ?? []) {
        let inst = this.further.get(metric);
        if (!inst) {
          inst = this.meter.createHistogram(`cicada.endpoint.${metric.replace(/[^A-Za-z0-9_.-]/g, "_")}`, {
            description: `Further metric "${metric}" of each endpoint, in its own unit (ms for times, per second for rates).`,
          });
          this.further.set(metric, inst);
        }
        // Further metrics are kept in thousandths of their unit.
        this.recordNew(h, inst, base, 1e-3);
      }
    }
  }

  /**
   * The status code that answered every request of `e` since the last second, or 0. The books
   * count statuses beside the latencies, not with them: a histogram point can carry a status
   * only when one status covers all of its requests.
   */
  private soleStatus(e: EndpointTotals): number {
    let prev = this.seenStatuses.get(e);
    if (!prev) {
      prev = new Map();
      this.seenStatuses.set(e, prev);
    }
    const seen = this.seen.get(e.latency);
    const newRequests = e.latency.totalCount - (seen?.total ?? 0);
    let sole = 0;
    let kinds = 0;
    let covered = 0;
    for (const [code, n] of e.statuses ?? []) {
      const d = n - (prev.get(code) ?? 0);
      if (d < 0) {
        // The stats were reset (web UI): start over.
        prev.clear();
        return 0;
      }
      if (d > 0) {
        kinds++;
        sole = code;
        covered += d;
      }
      prev.set(code, n);
    }
    return kinds === 1 && covered === newRequests ? sole : 0;
  }

  private recordNew(h: Histogram, into: OtelHistogram, attrs: Attributes, scale: number): void {
    let seen = this.seen.get(h);
    if (!seen) {
      seen = { total: 0, counts: new Map() };
      this.seen.set(h, seen);
    }
    const total = h.totalCount;
    if (total === seen.total) return;
    if (total < seen.total) seen.counts.clear(); // reset stats: what is there now is all new
    seen.total = total;
    const j = h as unknown as HdrBuckets;
    const n = j.countsArrayLength;
    for (let i = 0; i < n; i++) {
      const c = j.getCountAtIndex(i);
      if (c === 0) continue;
      const before = seen.counts.get(i) ?? 0;
      if (c === before) continue;
      seen.counts.set(i, c);
      // Each bucket's lowest value, as the books' own snapshots carry it (±0.1 %).
      const v = j.valueFromIndex(i) * scale;
      for (let k = before; k < c; k++) into.record(v, attrs);
    }
  }

  private warnOnce(why: string): void {
    if (this.warned) return;
    this.warned = true;
    this.opts.warn(`warning: ${this.label}: ${why}; the other outputs are not affected`);
  }

  /**
   * The last export, with every figure of the finished run. Bounded: a collector that is down
   * costs at most a few seconds, never a hang.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const limit = this.delivered && !this.warned ? FINAL_FLUSH_MS : Math.min(FINAL_FLUSH_MS, 2000);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<"timeout">((r) => {
      timer = setTimeout(() => r("timeout"), limit);
      timer.unref();
    });
    // Shutting down collects and exports once more, then stops the reader.
    const done = this.provider.shutdown().then(
      () => "ok" as const,
      (err: unknown) => (err as Error)?.message ?? String(err),
    );
    const how = await Promise.race([done, timeout]);
    clearTimeout(timer);
    if (how === "timeout") this.warnOnce(`the collector did not take the metrics within ${limit / 1000}s`);
    else if (how !== "ok") this.warnOnce(`cannot send metrics: ${how}`);
  }
}
