// Spans of HTTP requests (--otel-traces): one client span per request, sent over OTLP/HTTP by the
// OpenTelemetry SDK, its context carried to the target in a W3C traceparent header.
import { randomFillSync } from "node:crypto";
import { createRequire } from "node:module";

/** What a worker needs to trace its requests; it travels in the worker's plan. */
export interface TracePlan {
  /** The OTLP/HTTP traces URL; absent: the SDK's OTEL_EXPORTER_OTLP_* variables, or its default. */
  url?: string;
  /**
   * `--otel-traces-sample`: the share of requests whose span is recorded and sent, 0 < r ≤ 1,
   * decided from the trace id (the SDK's TraceIdRatioBased sampler). Absent: the SDK's
   * OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG, by default every request.
   */
  sample?: number;
}

/** Where a request goes, as its span describes it; the HTTP client's cached routes are these. */
export interface SpanTarget {
  readonly href: string;
  /** As URL.hostname has it (an IPv6 address in brackets). */
  readonly hostname: string;
  /** The port, the scheme's default when the URL names none. */
  readonly port: number;
}

/** One request's span, from the moment the request is sent. */
export interface RequestSpan {
  /** The W3C `traceparent` header value naming this span. */
  readonly traceparent: string;
  /** Ends the span with what came back: a status code (0 for none) and the failure, if any. */
  end(status: number, error: string | null): void;
}

/** What the HTTP client calls around each request while tracing is on. */
export interface RequestTracer {
  /** A span for a request to `target`; `name` is the request's name (its URL template). */
  start(method: string, name: string, target: SpanTarget): RequestSpan;
  /**
   * Sends what is buffered and stops; gives up after `timeoutMs`, after 0.5 s when no batch was
   * sent yet, and at once when the collector did not answer the batches it was sent.
   */
  close(timeoutMs: number): Promise<void>;
}

type Api = typeof import("@opentelemetry/api");
type Core = typeof import("@opentelemetry/core");
type TraceSdk = typeof import("@opentelemetry/sdk-trace-base");
type TraceExporter = typeof import("@opentelemetry/exporter-trace-otlp-http");
type Resources = typeof import("@opentelemetry/resources");
type Semconv = typeof import("@opentelemetry/semantic-conventions");

/** Incubating in the semantic conventions, so named here rather than imported from there. */
const ATTR_URL_TEMPLATE = "url.template";

/**
 * Random ids from the system's CSPRNG, drawn in blocks: one fill serves 1024 ids instead of a
 * call per id. The W3C format forbids all-zero ids; one is drawn again (a 2^-64 event).
 */
class IdPool {
  #buf = Buffer.alloc(16 * 1024);
  #at = this.#buf.length;
  next(bytes: 8 | 16): string {
    for (;;) {
      if (this.#at + bytes > this.#buf.length) {
        randomFillSync(this.#buf);
        this.#at = 0;
      }
      const id = this.#buf.toString("hex", this.#at, (this.#at += bytes));
      if (id !== (bytes === 8 ? ZERO_SPAN_ID : ZERO_TRACE_ID)) return id;
    }
  }
}
const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);

/** What an unsampled request's span does at its end: nothing is recorded, nothing is sent. */
const endNothing = (): void => undefined;

/**
 * The resource every Cicada signal carries: service.name "cicada" unless OTEL_SERVICE_NAME or
 * OTEL_RESOURCE_ATTRIBUTES say otherwise (the SDK's environment detector reads them).
 */
export function cicadaResource(require: NodeJS.Require): import("@opentelemetry/resources").Resource {
  const { detectResources, envDetector, resourceFromAttributes } =
    require("@opentelemetry/resources") as Resources;
  const { ATTR_SERVICE_NAME } = require("@opentelemetry/semantic-conventions") as Semconv;
  return resourceFromAttributes({ [ATTR_SERVICE_NAME]: "cicada" }).merge(
    detectResources({ detectors: [envDetector] }),
  );
}

/**
 * Starts a tracer provider of its own (none is registered globally, so the loadfile's own
 * OpenTelemetry setup is left alone). `onExportError` is called once, at the first export that
 * fails; spans that cannot be sent are dropped, the requests go on.
 */
export function startTracing(plan: TracePlan, onExportError: (message: string) => void): RequestTracer {
  // Loaded only when asked for: most runs do not trace.
  const require = createRequire(import.meta.url);
  const api = require("@opentelemetry/api") as Api;
  const { ExportResultCode } = require("@opentelemetry/core") as Core;
  const { BasicTracerProvider, BatchSpanProcessor, SamplingDecision, TraceIdRatioBasedSampler } =
    require("@opentelemetry/sdk-trace-base") as TraceSdk;
  const { OTLPTraceExporter } = require("@opentelemetry/exporter-trace-otlp-http") as TraceExporter;
  const sc = require("@opentelemetry/semantic-conventions") as Semconv;

  const inner = new OTLPTraceExporter(plan.url ? { url: plan.url } : {});
  let warned = false;
  let delivered = false;
  /** When the first batch went out: a collector silent since then is taken to be down. */
  let firstExportAt = 0;
  const exporter: import("@opentelemetry/sdk-trace-base").SpanExporter = {
    export(spans, done) {
      if (firstExportAt === 0) firstExportAt = Date.now();
      inner.export(spans, (r) => {
        if (r.code === ExportResultCode.SUCCESS) delivered = true;
        else if (!warned) {
          warned = true;
          onExportError(
            `warning: --otel-traces: cannot send spans to ${plan.url ?? "the OTLP endpoint"}: ${r.error?.message ?? "export failed"}; the run goes on without them`,
          );
        }
        done(r);
      });
    },
    shutdown: () => inner.shutdown(),
    forceFlush: () => inner.forceFlush(),
  };
  // With a ratio, the sampler is asked before any span is made, on a trace id drawn here: an
  // unsampled request then costs two random ids and a string. A sampled one gets the same trace
  // id from the provider (`nextTraceId`), whose sampler, the same one, decides the same again.
  // Without one, the provider's own sampler (the OTEL_TRACES_SAMPLER variables) decides alone.
  const sampler = plan.sample !== undefined ? new TraceIdRatioBasedSampler(plan.sample) : null;
  const ids = new IdPool();
  let nextTraceId: string | null = null;
  const idGenerator: import("@opentelemetry/sdk-trace-base").IdGenerator = {
    generateTraceId() {
      const id = nextTraceId ?? ids.next(16);
      nextTraceId = null;
      return id;
    },
    generateSpanId: () => ids.next(8),
  };
  const provider = new BasicTracerProvider({
    ...(sampler ? { sampler } : {}),
    idGenerator,
    resource: cicadaResource(require),
    spanProcessors: [
      // A span per request is a lot of spans: a large queue, sent often, in large batches.
      new BatchSpanProcessor(exporter, {
        maxQueueSize: 100_000,
        maxExportBatchSize: 4096,
        scheduledDelayMillis: 1000,
      }),
    ],
  });
  const tracer = provider.getTracer("cicada");
  const { ROOT_CONTEXT, SpanKind, SpanStatusCode, TraceFlags } = api;
  /**
   * The attributes a request's span starts with, per target and span name: the same for every
   * request to a cached route, so made once (the SDK copies them into each span).
   */
  const startAttributes = new WeakMap<SpanTarget, Map<string, import("@opentelemetry/api").Attributes>>();
  const attributesOf = (
    target: SpanTarget,
    spanName: string,
    method: string,
    name: string,
  ): import("@opentelemetry/api").Attributes => {
    let byName = startAttributes.get(target);
    if (!byName) {
      byName = new Map();
      startAttributes.set(target, byName);
    }
    let a = byName.get(spanName);
    if (!a) {
      a = Object.freeze({
        [sc.ATTR_HTTP_REQUEST_METHOD]: method,
        [ATTR_URL_TEMPLATE]: name,
        [sc.ATTR_URL_FULL]: target.href,
        [sc.ATTR_SERVER_ADDRESS]: target.hostname,
        [sc.ATTR_SERVER_PORT]: target.port,
      });
      byName.set(spanName, a);
    }
    return a;
  };

  return {
    start(method, name, target) {
      if (sampler) {
        const traceId = ids.next(16);
        if (sampler.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.NOT_RECORD) {
          // Not sampled: the target still learns the trace context, flagged not sampled, so its
          // own spans may join the trace or follow the same decision (W3C Trace Context).
          return { traceparent: `00-${traceId}-${ids.next(8)}-00`, end: endNothing };
        }
        nextTraceId = traceId;
      }
      const spanName = `${method} ${name}`;
      const span = tracer.startSpan(
        spanName,
        { kind: SpanKind.CLIENT, attributes: attributesOf(target, spanName, method, name) },
        ROOT_CONTEXT,
      );
      nextTraceId = null;
      // The W3C header written from the span's context, as the SDK's propagator writes it.
      const ctx = span.spanContext();
      const traceparent = `00-${ctx.traceId}-${ctx.spanId}-${ctx.traceFlags & TraceFlags.SAMPLED ? "01" : "00"}`;
      if (!span.isRecording()) return { traceparent, end: endNothing };
      return {
        traceparent,
        end(status, error) {
          if (status > 0) span.setAttribute(sc.ATTR_HTTP_RESPONSE_STATUS_CODE, status);
          // The semantic conventions: a client span fails on 4xx and 5xx, and on no answer.
          if (error !== null || status >= 400) {
            span.setAttribute(sc.ATTR_ERROR_TYPE, status >= 400 ? String(status) : sc.ERROR_TYPE_VALUE_OTHER);
            span.setStatus({ code: SpanStatusCode.ERROR, ...(error !== null ? { message: error } : {}) });
          }
          span.end();
        },
      };
    },
    async close(timeoutMs) {
      // The worker's last report waits for this, and the run's duration with it: a collector
      // that has not taken a batch it was sent a while ago gets no wait at all, one that was
      // never tried a short one.
      const silent = !delivered && firstExportAt > 0 && Date.now() - firstExportAt > 500;
      if (warned || silent) {
        void provider.shutdown().catch(() => undefined);
        if (!warned) {
          warned = true;
          onExportError(
            `warning: --otel-traces: the collector at ${plan.url ?? "the OTLP endpoint"} did not answer; spans not delivered`,
          );
        }
        return;
      }
      if (!delivered) timeoutMs = Math.min(timeoutMs, 500);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">((r) => {
        timer = setTimeout(() => r("timeout"), timeoutMs);
        timer.unref();
      });
      // Shutting down sends what the batch processor holds, then stops it.
      const flushed = provider.shutdown().then(
        () => "ok" as const,
        () => "ok" as const,
      );
      const how = await Promise.race([flushed, timeout]);
      clearTimeout(timer);
      if (how === "timeout" && !warned) {
        warned = true;
        onExportError(
          `warning: --otel-traces: spans not delivered within ${timeoutMs / 1000}s at the end of the run; left behind`,
        );
      }
    },
  };
}
