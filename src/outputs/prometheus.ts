import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { isLoopback, RequestGuard } from "../core/http-guard.js";
import type { SoakResult } from "../result/soak.js";
import type { ThresholdResult } from "../result/thresholds.js";
import type { EndpointTotals, StatsAggregate } from "../stats/aggregate.js";
import { percentileMs } from "../stats/histogram.js";
import { SLO_GOOD, SLO_GOOD_OUTPUT_TOKENS, SLO_JUDGED } from "../stats/slo.js";

type PromClient = typeof import("prom-client");

/** What the exporter reads on each scrape: the merged books of the test running now, if any. */
export interface MetricsSource {
  stats: StatsAggregate;
  elapsedSec: number;
  thresholds: readonly ThresholdResult[];
  workers: ReadonlyArray<{ id: string; users: number; cpu: number; heapUsedMB: number }>;
  /** The soak verdicts so far (computed at scrape time, at most once a second). */
  soak?: () => SoakResult | undefined;
}

const QUANTILES = [0.5, 0.9, 0.95, 0.99] as const;

/**
 * Prometheus metrics of the running test, read from the merged books at scrape time: nothing is
 * computed between scrapes. Counters are cumulative since the test (or its stats) started;
 * "current" gauges cover the last 10 seconds, like the live view.
 */
export class PrometheusOutput {
  readonly registry;
  private readonly prom: PromClient;

  constructor(private readonly source: () => MetricsSource | undefined) {
    // Loaded only when asked for: most runs do not export metrics.
    this.prom = createRequire(import.meta.url)("prom-client") as PromClient;
    const { Counter, Gauge, Registry } = this.prom;
    this.registry = new Registry();
    const registers = [this.registry];
    const src = () => this.source();
    const endpointLabels = ["type", "method", "name"] as const;

    new Gauge({
      name: "cicada_users",
      help: "Users alive now, over all workers.",
      registers,
      collect() {
        this.set(src()?.stats.users ?? 0);
      },
    });
    new Gauge({
      name: "cicada_current_rps",
      help: "Requests per second over the last 10 seconds.",
      registers,
      collect() {
        this.set(src()?.stats.current().rps ?? 0);
      },
    });
    new Gauge({
      name: "cicada_current_failures_per_second",
      help: "Failures per second over the last 10 seconds.",
      registers,
      collect() {
        this.set(src()?.stats.current().failuresPerSec ?? 0);
      },
    });
    new Gauge({
      name: "cicada_current_response_time_seconds",
      help: "Response time percentiles over the last 10 seconds, all endpoints together.",
      labelNames: ["quantile"],
      registers,
      collect() {
        this.reset();
        const s = src();
        if (!s) return;
        const cur = s.stats.current();
        this.set({ quantile: "0.5" }, cur.p50 / 1000);
        this.set({ quantile: "0.95" }, cur.p95 / 1000);
      },
    });
    // One counter per endpoint figure, read from the merged books at each scrape; endpoints for
    // which a figure does not apply (`value` gives undefined) have no series.
    const perEndpoint = (name: string, help: string, value: (e: EndpointTotals) => number | undefined) =>
      new Counter({
        name,
        help,
        labelNames: endpointLabels,
        registers,
        collect() {
          this.reset();
          for (const e of src()?.stats.endpoints.values() ?? []) {
            const v = value(e);
            if (v !== undefined) this.inc({ type: e.type, method: e.method, name: e.name }, v);
          }
        },
      });
    perEndpoint(
      "cicada_requests_total",
      "Completed requests (successes and failures) per endpoint.",
      (e) => e.count,
    );
    perEndpoint("cicada_failures_total", "Failed requests per endpoint.", (e) => e.failures);
    // --slo: the workers' judgement of each stream, exact over all of them. Only endpoints with
    // judged streams have these series, so a run without --slo has none; attainment and goodput
    // per second are left to PromQL (good / judged, rate()).
    const perJudged = (name: string, help: string, counter: string) =>
      perEndpoint(name, help, (e) =>
        e.counters?.get(SLO_JUDGED) === undefined ? undefined : (e.counters.get(counter) ?? 0),
      );
    perJudged(
      "cicada_slo_judged_total",
      "Streams with counted tokens judged against the --slo objectives (ttft, tpot, e2el upper bounds), completed or failed, per endpoint.",
      SLO_JUDGED,
    );
    perJudged(
      "cicada_slo_good_total",
      "Streams that met every --slo objective (completed, a first token, ttft, tpot and e2el within their bounds) per endpoint: goodput is its rate.",
      SLO_GOOD,
    );
    perJudged(
      "cicada_slo_good_output_tokens_total",
      "Output tokens of the streams that met every --slo objective, per endpoint: output-token goodput is its rate.",
      SLO_GOOD_OUTPUT_TOKENS,
    );
    new Gauge({
      name: "cicada_response_time_seconds",
      help: "Response time percentiles per endpoint since the test started (exact, from HDR histograms).",
      labelNames: [...endpointLabels, "quantile"],
      registers,
      collect() {
        this.reset();
        for (const e of src()?.stats.endpoints.values() ?? []) {
          if (e.count === 0) continue;
          for (const q of QUANTILES) {
            const v = percentileMs(e.latency, q * 100, e.minUs, e.maxUs) / 1000;
            this.set({ type: e.type, method: e.method, name: e.name, quantile: String(q) }, v);
          }
        }
      },
    });
    new Gauge({
      name: "cicada_endpoint_metric",
      help: "Further metrics per endpoint (ttft, itl, rtt, ... in ms; rates per second), as percentiles.",
      labelNames: [...endpointLabels, "metric", "quantile"],
      registers,
      collect() {
        this.reset();
        for (const e of src()?.stats.endpoints.values() ?? []) {
          for (const [metric, h] of e.metrics ?? []) {
            if (h.totalCount === 0) continue;
            for (const q of QUANTILES) {
              const v = percentileMs(h, q * 100, h.minNonZeroValue, h.maxValue);
              this.set({ type: e.type, method: e.method, name: e.name, metric, quantile: String(q) }, v);
            }
          }
        }
      },
    });
    new Counter({
      name: "cicada_iterations_total",
      help: "Task iterations started.",
      registers,
      collect() {
        this.reset();
        this.inc(src()?.stats.iterations ?? 0);
      },
    });
    new Counter({
      name: "cicada_dropped_iterations_total",
      help: "Open model: arrivals dropped because no user could start them in time.",
      registers,
      collect() {
        this.reset();
        this.inc(src()?.stats.dropped ?? 0);
      },
    });
    new Counter({
      name: "cicada_checks_total",
      help: "check() evaluations by check name and result.",
      labelNames: ["check", "result"],
      registers,
      collect() {
        this.reset();
        for (const [check, c] of src()?.stats.checks ?? []) {
          this.inc({ check, result: "pass" }, c.passes);
          this.inc({ check, result: "fail" }, c.fails);
        }
      },
    });
    new Gauge({
      name: "cicada_threshold_passed",
      help: "1 while a threshold passes, 0 while it fails (checked every second).",
      labelNames: ["threshold"],
      registers,
      collect() {
        this.reset();
        for (const t of src()?.thresholds ?? []) this.set({ threshold: t.expr }, t.passed ? 1 : 0);
      },
    });
    new Gauge({
      name: "cicada_worker_cpu_ratio",
      help: "Event-loop utilization of each worker over the last second (0-1).",
      labelNames: ["worker"],
      registers,
      collect() {
        this.reset();
        for (const w of src()?.workers ?? []) this.set({ worker: w.id }, w.cpu);
      },
    });
    new Gauge({
      name: "cicada_worker_users",
      help: "Users per worker.",
      labelNames: ["worker"],
      registers,
      collect() {
        this.reset();
        for (const w of src()?.workers ?? []) this.set({ worker: w.id }, w.users);
      },
    });
    // --- Soak verdicts so far (docs/soak.md): one analysis per scrape, shared by these gauges.
    let soakMemo: { at: number; value: SoakResult | undefined } | undefined;
    const soakNow = () => {
      const now = Date.now();
      if (!soakMemo || now - soakMemo.at >= 1000) soakMemo = { at: now, value: src()?.soak?.() };
      return soakMemo.value;
    };
    const soakGauge = (name: string, help: string, read: (s: SoakResult) => number | null | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const s = soakNow();
          const v = s ? read(s) : undefined;
          // NaN, not 0, until there is a value: a 0 % change or a 0 s recovery would be a verdict.
          this.set(v === null || v === undefined ? Number.NaN : v);
        },
      });
    soakGauge(
      "cicada_soak_steady_seconds",
      "Seconds of the steady part so far (after the ramp-up).",
      (s) => s.steady?.seconds,
    );
    soakGauge(
      "cicada_soak_p95_change_ratio",
      "p95 of the last steady window against the first: (last - first) / first.",
      (s) => ((s.degradation?.p95ChangePct ?? null) === null ? null : s.degradation!.p95ChangePct! / 100),
    );
    soakGauge(
      "cicada_soak_rps_change_ratio",
      "RPS of the last steady window against the first: (last - first) / first.",
      (s) => ((s.degradation?.rpsChangePct ?? null) === null ? null : s.degradation!.rpsChangePct! / 100),
    );
    soakGauge(
      "cicada_soak_rps_cv",
      "Coefficient of variation of the per-second RPS over the steady part.",
      (s) => s.stability?.rpsCv,
    );
    soakGauge(
      "cicada_soak_worst_recovery_seconds",
      "Longest time to recover after a burst, step up or spike, among those that recovered.",
      (s) => s.worstRecoverySec,
    );
    soakGauge("cicada_soak_unrecovered", "Bursts, steps up or spikes not recovered from (yet).", (s) =>
      s.recovery.length > 0 ? s.unrecovered : null,
    );
    const leakLabels = ["kind", "host", "source", "metric"] as const;
    new Gauge({
      name: "cicada_soak_slope_per_minute",
      help: "Theil-Sen slope of a memory series over the steady part, in its unit per minute, with its 95% interval (bound).",
      labelNames: [...leakLabels, "bound"],
      registers,
      collect() {
        this.reset();
        for (const l of soakNow()?.leaks ?? []) {
          const at = { kind: l.kind, host: l.host, source: l.source, metric: l.metric };
          this.set({ ...at, bound: "estimate" }, l.slopePerMin);
          this.set({ ...at, bound: "low" }, l.lowPerMin);
          this.set({ ...at, bound: "high" }, l.highPerMin);
        }
      },
    });
    new Gauge({
      name: "cicada_soak_leak",
      help: "1 when a memory series grows steadily over the steady part (a leak), else 0.",
      labelNames: leakLabels,
      registers,
      collect() {
        this.reset();
        for (const l of soakNow()?.leaks ?? []) {
          this.set({ kind: l.kind, host: l.host, source: l.source, metric: l.metric }, l.growing ? 1 : 0);
        }
      },
    });
    // --- End of the soak verdicts.
    new Gauge({
      name: "cicada_resource",
      help: "Latest reading of each resource series: the target's processes and metrics endpoints (--monitor-pid, --monitor-url) and the generator's own (cpu_percent, rss_bytes, elu, heap_used_bytes, ...).",
      labelNames: ["kind", "host", "source", "metric"],
      registers,
      collect() {
        this.reset();
        for (const x of src()?.stats.resources.latest() ?? []) {
          this.set({ kind: x.kind, host: x.host, source: x.source, metric: x.metric }, x.value);
        }
      },
    });
    new Gauge({
      name: "cicada_test_elapsed_seconds",
      help: "Seconds since the current books started.",
      registers,
      collect() {
        this.set(src()?.elapsedSec ?? 0);
      },
    });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

/** A bare /metrics endpoint for headless runs (`--prometheus-port`). */
export async function servePrometheus(output: PrometheusOutput, host: string, port: number): Promise<Server> {
  // Bound to loopback, only this machine's own names may ask: a DNS-rebinding page would come
  // under its own name. Bound beyond loopback, scrapers use whatever name their config has.
  let guard: RequestGuard | undefined;
  const server = createServer((req, res) => {
    if (guard && !guard.hostAllowed(req.headers.host)) {
      res.writeHead(403, { "content-type": "text/plain" });
      res.end("refused: the Host header does not name this server\n");
      return;
    }
    if ((req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("only /metrics here\n");
      return;
    }
    output.metrics().then(
      (text) => {
        res.writeHead(200, { "content-type": output.contentType });
        res.end(text);
      },
      (err: unknown) => {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`${(err as Error)?.message ?? err}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      const a = server.address() as AddressInfo;
      if (isLoopback(host)) guard = new RequestGuard(host, a.address, a.port);
      resolve();
    });
  });
  return server;
}

export function serverUrl(server: Server): string {
  const a = server.address() as AddressInfo;
  const host = a.family === "IPv6" ? `[${a.address}]` : a.address;
  return `http://${host}:${a.port}`;
}
