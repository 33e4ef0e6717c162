import { createHistogram, type Histogram, recordValue } from "./histogram.js";

/**
 * Counters and histograms of one (type, method, name). Workers fill them per interval;
 * the coordinator keeps cumulative ones. Sum, min and max are exact, beside the histogram.
 */
export class EndpointStats {
  count = 0;
  failures = 0;
  cancelled = 0;
  /** Caught by the hard stop before it was written: the target never saw it. */
  notSent = 0;
  bytes = 0;
  sumUs = 0;
  minUs = Number.POSITIVE_INFINITY;
  maxUs = 0;
  readonly latency: Histogram = createHistogram();
  readonly ttfb: Histogram = createHistogram();
  /**
   * Open model only: latency measured from the iteration's scheduled start instead of the
   * actual send, so time spent waiting for a free user counts (coordinated omission).
   */
  readonly corrected: Histogram = createHistogram();
  /** Responses per status code (HTTP and other protocols that have one). */
  statuses: Map<number, number> | undefined;
  /**
   * Further distributions of this endpoint, by metric name (e.g. "ttft", "itl", "rtt"), in
   * thousandths of the metric's unit: µs for millisecond metrics, milli-tokens/s for rates.
   */
  metrics: Map<string, Histogram> | undefined;
  /** Further counts, by name (e.g. "events", "tokens", "end:timeout", "close:1006"). */
  counters: Map<string, number> | undefined;

  constructor(
    readonly type: string,
    readonly method: string,
    readonly name: string,
  ) {}

  reset(): void {
    this.count = this.failures = this.cancelled = this.notSent = this.bytes = this.sumUs = this.maxUs = 0;
    this.minUs = Number.POSITIVE_INFINITY;
    this.latency.reset();
    this.ttfb.reset();
    if (this.corrected.totalCount > 0) this.corrected.reset();
    this.statuses?.clear();
    if (this.metrics) for (const h of this.metrics.values()) h.reset();
    this.counters?.clear();
  }

  /** Records one value of a further metric, given in its display unit (ms, tokens/s, ...). */
  metric(name: string, value: number): void {
    const m = (this.metrics ??= new Map());
    let h = m.get(name);
    if (!h) {
      h = createHistogram();
      m.set(name, h);
    }
    recordValue(h, Math.max(0, Math.round(value * 1000)));
  }

  addCount(name: string, n: number): void {
    const c = (this.counters ??= new Map());
    c.set(name, (c.get(name) ?? 0) + n);
  }
}
