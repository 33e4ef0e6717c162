// Spans of HTTP requests (--otel-traces): one client span per request, sent over OTLP/HTTP by the
// OpenTelemetry SDK, its context carried to the target in a W3C traceparent header.
import { createRequire } from "node:module";

/** What a worker needs to trace its requests; it travels in the worker's plan. */
export interface TracePlan {
  /** The OTLP/HTTP traces URL; absent: the SDK's OTEL_EXPORTER_OTLP_* variables, or its default. */
  url?: string;
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
  start(method: string, name: string, url: URL): RequestSpan;
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
  const { W3CTraceContextPropagator, ExportResultCode } = require("@opentelemetry/core") as Core;
  const { BasicTracerProvider, BatchSpanProcessor } = require("@opentelemetry/sdk-trace-base") as TraceSdk;
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
  const provider = new BasicTracerProvider({
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
  const propagator = new W3CTraceContextPropagator();
  const { ROOT_CONTEXT, SpanKind, SpanStatusCode, defaultTextMapSetter, trace } = api;

  return {
    start(method, name, url) {
      const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
      const span = tracer.startSpan(
        `${method} ${name}`,
        {
          kind: SpanKind.CLIENT,
          attributes: {
            [sc.ATTR_HTTP_REQUEST_METHOD]: method,
            [ATTR_URL_TEMPLATE]: name,
            [sc.ATTR_URL_FULL]: url.href,
            [sc.ATTR_SERVER_ADDRESS]: url.hostname,
            [sc.ATTR_SERVER_PORT]: port,
          },
        },
        ROOT_CONTEXT,
      );
      const carrier: Record<string, string> = {};
      propagator.inject(trace.setSpan(ROOT_CONTEXT, span), carrier, defaultTextMapSetter);
      return {
        traceparent: carrier.traceparent ?? "",
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
