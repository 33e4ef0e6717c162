import { createHistogram, type Histogram } from "./histogram.js";

/**
 * Counters and histograms of one (type, method, name). Workers fill them per interval;
 * the coordinator keeps cumulative ones. Sum, min and max are exact, beside the histogram.
 */
export class EndpointStats {
  count = 0;
  failures = 0;
  cancelled = 0;
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

  constructor(
    readonly type: string,
    readonly method: string,
    readonly name: string,
  ) {}

  reset(): void {
    this.count = this.failures = this.cancelled = this.bytes = this.sumUs = this.maxUs = 0;
    this.minUs = Number.POSITIVE_INFINITY;
    this.latency.reset();
    this.ttfb.reset();
    if (this.corrected.totalCount > 0) this.corrected.reset();
    this.statuses?.clear();
  }
}
