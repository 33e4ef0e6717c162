import { EndpointStats } from "./endpoint.js";
import {
  addSparse,
  createHistogram,
  type Histogram,
  type LatencySummary,
  percentileMs,
  summarize,
  summarizeHistogram,
} from "./histogram.js";
import { LatencyHistory } from "./history.js";
import { ResourceBook } from "./resources.js";
import type { EndpointDelta, ErrorDelta, ExceptionDelta, StatsSnapshot } from "./snapshot.js";

/** One endpoint's figures in one second of the run. */
export interface EndpointSeriesRow {
  t: number;
  requests: number;
  failures: number;
  p50: number;
  p95: number;
  p99: number;
}

/** Cumulative figures of one (type, method, name) — or of all of them, for the aggregated row. */
export class EndpointTotals extends EndpointStats {
  /** Per-second rows, only for the seconds with requests (a missing second had none). */
  readonly series: EndpointSeriesRow[] = [];

  add(d: EndpointDelta): void {
    this.count += d.count;
    this.failures += d.failures;
    this.cancelled += d.cancelled;
    // Absent from the snapshots of workers older than the field.
    this.notSent += d.notSent ?? 0;
    this.bytes += d.bytes;
    this.sumUs += d.sumUs;
    if (d.count > 0) {
      if (d.minUs < this.minUs) this.minUs = d.minUs;
      if (d.maxUs > this.maxUs) this.maxUs = d.maxUs;
    }
    addSparse(this.latency, d.latency);
    addSparse(this.ttfb, d.ttfb);
    if (d.corrected && d.corrected.length > 0) addSparse(this.corrected, d.corrected);
    if (d.statuses) {
      const st = (this.statuses ??= new Map());
      // Object.keys: Object.entries on the integer-like keys of parsed JSON is twice as slow.
      for (const code of Object.keys(d.statuses)) {
        const c = Number(code);
        st.set(c, (st.get(c) ?? 0) + d.statuses[code]!);
      }
    }
    if (d.metrics) {
      const ms = (this.metrics ??= new Map());
      for (const [k, sparse] of Object.entries(d.metrics)) {
        let h = ms.get(k);
        if (!h) {
          h = createHistogram();
          ms.set(k, h);
        }
        addSparse(h, sparse);
      }
    }
    if (d.counters) for (const [k, n] of Object.entries(d.counters)) this.addCount(k, n);
  }

  latencySummary(): LatencySummary {
    return summarize(this.latency, this.minUs, this.maxUs, this.sumUs, this.count);
  }

  /** Open model: latency from scheduled start; null when nothing was recorded that way. */
  correctedSummary(): LatencySummary | null {
    const h = this.corrected;
    if (h.totalCount === 0) return null;
    return summarizeHistogram(h, Math.max(h.minNonZeroValue, this.minUs));
  }

  ttfbSummary(): LatencySummary {
    const h = this.ttfb;
    return summarizeHistogram(h, h.minNonZeroValue, Math.min(h.maxValue, this.maxUs));
  }

  /** Percentile in ms, for arbitrary percentiles (CSV columns and the like). */
  percentile(p: number): number {
    return percentileMs(this.latency, p, this.minUs, this.maxUs);
  }
}

export interface EndpointBucket {
  requests: number;
  failures: number;
  minUs: number;
  maxUs: number;
  latency: Histogram;
}

/** One interval (by snapshot sequence number) across all workers. */
interface Bucket {
  byEndpoint: Map<string, EndpointBucket>;
  seq: number;
  at: number;
  requests: number;
  failures: number;
  iterations: number;
  dropped: number;
  /** Users alive at the end of the interval, over all workers. */
  users: number;
  minUs: number;
  maxUs: number;
  latency: Histogram;
  /** Already written to the series. */
  closed: boolean;
  /**
   * Warm-up or cool-down traffic of the interval (--warmup, --cooldown): shown in the series row,
   * left out of everything else. Created only when such traffic arrives.
   */
  window?: {
    name: RunWindow;
    requests: number;
    failures: number;
    minUs: number;
    maxUs: number;
    latency: Histogram;
  };
}

/** The parts of a run its figures leave out: `--warmup` at the start, `--cooldown` at the end. */
export type RunWindow = "warmup" | "cooldown";

/** A second of the run as it closes, with its histograms, for outputs that need more than SeriesRow. */
export interface ClosedInterval {
  /** Wall-clock ms at the end of the interval. */
  at: number;
  t: number;
  users: number;
  requests: number;
  failures: number;
  minUs: number;
  maxUs: number;
  latency: Histogram;
  /** By endpoint key (type, method, name joined by NUL), as in `endpoints`. */
  byEndpoint: ReadonlyMap<string, EndpointBucket>;
}

/** A closed per-second row of the run's time series. */
export interface SeriesRow {
  /** Seconds since the run started, at the end of the interval. */
  t: number;
  users: number;
  requests: number;
  failures: number;
  rps: number;
  failuresPerSec: number;
  iterations: number;
  /** Open model: arrivals dropped in this second. */
  dropped: number;
  p50: number;
  p95: number;
  p99: number;
  /**
   * The second held warm-up or cool-down traffic: its row counts that traffic (the charts show
   * it, shaded), but the run's totals, thresholds and verdicts leave it out.
   */
  window?: RunWindow;
}

export interface CurrentView {
  rps: number;
  failuresPerSec: number;
  p50: number;
  p95: number;
  windowSec: number;
}

const SEP = "\u0000";

/**
 * The coordinator's books. Snapshots from any number of workers are added exactly; nothing
 * here reads a clock except through snapshot timestamps, so merging is deterministic.
 */
export class StatsAggregate {
  readonly total = new EndpointTotals("", "", "Aggregated");
  readonly endpoints = new Map<string, EndpointTotals>();
  readonly errors = new Map<string, ErrorDelta>();
  readonly exceptions = new Map<string, ExceptionDelta>();
  /** Requests made by tasks with each tag. */
  readonly tags = new Map<string, EndpointTotals>();
  readonly checks = new Map<string, { passes: number; fails: number }>();
  iterations = 0;
  /** Open model: arrivals dropped because no user was free in time. */
  dropped = 0;
  /** Open model: actual minus scheduled start of each iteration, µs. */
  readonly dispatchDelay: Histogram = createHistogram();
  readonly series: SeriesRow[] = [];
  /** The target's and the generator's resource use over the run (--monitor-pid, --monitor-url, workers). */
  readonly resources = new ResourceBook();
  /** Each closed second's latency over all endpoints, bounded (history.ts): soak windows read it. */
  readonly history = new LatencyHistory();
  private readonly usersByWorker = new Map<string, number>();
  private readonly peakByWorker = new Map<string, number>();
  /** Most users alive at once, over all workers. */
  peakUsers = 0;
  private readonly buckets = new Map<number, Bucket>();
  private maxSeq = -1;

  /** Called as each second closes, before its per-endpoint histograms are let go (CSV history). */
  onInterval: ((iv: ClosedInterval) => void) | undefined;

  constructor(
    private readonly startedAt: number,
    private readonly windowSec = 10,
  ) {}

  get users(): number {
    let n = 0;
    for (const u of this.usersByWorker.values()) n += u;
    return n;
  }

  add(s: StatsSnapshot): void {
    if (s.window) {
      this.addWindowed(s, s.window);
      return;
    }
    this.usersByWorker.set(s.workerId, s.users);
    this.peakByWorker.set(s.workerId, s.peakUsers ?? s.users);
    let peak = 0;
    for (const p of this.peakByWorker.values()) peak += p;
    if (peak > this.peakUsers) this.peakUsers = peak;
    this.iterations += s.iterations;
    const bucket = this.bucket(s.seq, s.at);
    bucket.iterations += s.iterations;
    bucket.dropped += s.dropped ?? 0;
    this.dropped += s.dropped ?? 0;
    if (s.dispatchDelay && s.dispatchDelay.length > 0) addSparse(this.dispatchDelay, s.dispatchDelay);
    // Each worker sends one snapshot per interval: the interval's users are their sum. A cut
    // (at a window's edge) shares its interval with the worker's next snapshot.
    if (!s.cut) bucket.users += s.users;
    for (const d of s.endpoints) {
      const key = d.type + SEP + d.method + SEP + d.name;
      let e = this.endpoints.get(key);
      if (!e) {
        e = new EndpointTotals(d.type, d.method, d.name);
        this.endpoints.set(key, e);
      }
      e.add(d);
      this.total.add(d);
      bucket.requests += d.count;
      bucket.failures += d.failures;
      if (d.count > 0) {
        if (d.minUs < bucket.minUs) bucket.minUs = d.minUs;
        if (d.maxUs > bucket.maxUs) bucket.maxUs = d.maxUs;
      }
      addSparse(bucket.latency, d.latency);
      let eb = bucket.byEndpoint.get(key);
      if (!eb) {
        eb = {
          requests: 0,
          failures: 0,
          minUs: Number.POSITIVE_INFINITY,
          maxUs: 0,
          latency: createHistogram(),
        };
        bucket.byEndpoint.set(key, eb);
      }
      eb.requests += d.count;
      eb.failures += d.failures;
      if (d.count > 0) {
        if (d.minUs < eb.minUs) eb.minUs = d.minUs;
        if (d.maxUs > eb.maxUs) eb.maxUs = d.maxUs;
      }
      addSparse(eb.latency, d.latency);
    }
    for (const d of s.tags ?? []) {
      let e = this.tags.get(d.name);
      if (!e) {
        e = new EndpointTotals("tag", "", d.name);
        this.tags.set(d.name, e);
      }
      e.add(d);
    }
    for (const c of s.checks ?? []) {
      const e = this.checks.get(c.name);
      if (e) {
        e.passes += c.passes;
        e.fails += c.fails;
      } else this.checks.set(c.name, { passes: c.passes, fails: c.fails });
    }
    for (const x of s.errors) {
      const key = x.method + SEP + x.name + SEP + x.error;
      const e = this.errors.get(key);
      if (e) e.occurrences += x.occurrences;
      else this.errors.set(key, { ...x });
    }
    for (const x of s.exceptions) {
      const key = x.where + SEP + x.message;
      const e = this.exceptions.get(key);
      if (e) e.count += x.count;
      else this.exceptions.set(key, { ...x });
    }
    if (s.seq > this.maxSeq) this.maxSeq = s.seq;
    // Workers report roughly in step; an interval two behind the newest is complete.
    this.closeBuckets(this.maxSeq - 2);
  }

  /**
   * A snapshot of warm-up or cool-down traffic: only the interval's row sees it (users, and the
   * requests in its own counts and histogram); totals, endpoints, errors and checks do not.
   */
  private addWindowed(s: StatsSnapshot, name: RunWindow): void {
    this.usersByWorker.set(s.workerId, s.users);
    const bucket = this.bucket(s.seq, s.at);
    if (!s.cut) bucket.users += s.users;
    bucket.iterations += s.iterations;
    bucket.dropped += s.dropped ?? 0;
    const w = (bucket.window ??= {
      name,
      requests: 0,
      failures: 0,
      minUs: Number.POSITIVE_INFINITY,
      maxUs: 0,
      latency: createHistogram(),
    });
    for (const d of s.endpoints) {
      w.requests += d.count;
      w.failures += d.failures;
      if (d.count > 0) {
        if (d.minUs < w.minUs) w.minUs = d.minUs;
        if (d.maxUs > w.maxUs) w.maxUs = d.maxUs;
      }
      addSparse(w.latency, d.latency);
    }
    if (s.seq > this.maxSeq) this.maxSeq = s.seq;
    this.closeBuckets(this.maxSeq - 2);
  }

  private bucket(seq: number, at: number): Bucket {
    let b = this.buckets.get(seq);
    if (!b) {
      b = {
        seq,
        at,
        requests: 0,
        failures: 0,
        iterations: 0,
        dropped: 0,
        users: 0,
        minUs: Number.POSITIVE_INFINITY,
        maxUs: 0,
        latency: createHistogram(),
        closed: false,
        byEndpoint: new Map(),
      };
      this.buckets.set(seq, b);
    } else if (at > b.at) b.at = at;
    return b;
  }

  private closeBuckets(upTo: number): void {
    const closable = [...this.buckets.values()]
      .filter((b) => b.seq <= upTo && !b.closed)
      .sort((a, b) => a.seq - b.seq);
    for (const b of closable) {
      const pct = (p: number) => percentileMs(b.latency, p, b.minUs, b.maxUs);
      const t = Math.max(0, Math.round((b.at - this.startedAt) / 100) / 10);
      for (const [key, eb] of b.byEndpoint) {
        if (eb.requests === 0 && eb.failures === 0) continue;
        const p = (q: number) => percentileMs(eb.latency, q, eb.minUs, eb.maxUs);
        this.endpoints.get(key)?.series.push({
          t,
          requests: eb.requests,
          failures: eb.failures,
          p50: p(50),
          p95: p(95),
          p99: p(99),
        });
      }
      this.history.add(t, b.latency, b.minUs, b.maxUs);
      this.onInterval?.({
        at: b.at,
        t,
        users: b.users,
        requests: b.requests,
        failures: b.failures,
        minUs: b.minUs,
        maxUs: b.maxUs,
        latency: b.latency,
        byEndpoint: b.byEndpoint,
      });
      // The per-endpoint histograms are only needed to close the interval.
      b.byEndpoint.clear();
      const w = b.window;
      if (w) {
        // The row shows all the second's traffic; the books above saw only the measured part.
        w.latency.add(b.latency);
        const minUs = Math.min(w.minUs, b.minUs);
        const maxUs = Math.max(w.maxUs, b.maxUs);
        const wp = (p: number) => percentileMs(w.latency, p, minUs, maxUs);
        this.series.push({
          t,
          users: b.users,
          requests: b.requests + w.requests,
          failures: b.failures + w.failures,
          rps: b.requests + w.requests,
          failuresPerSec: b.failures + w.failures,
          iterations: b.iterations,
          dropped: b.dropped,
          p50: wp(50),
          p95: wp(95),
          p99: wp(99),
          window: w.name,
        });
        b.window = undefined;
      } else
        this.series.push({
          t,
          users: b.users,
          requests: b.requests,
          failures: b.failures,
          rps: b.requests,
          failuresPerSec: b.failures,
          iterations: b.iterations,
          dropped: b.dropped,
          p50: pct(50),
          p95: pct(95),
          p99: pct(99),
        });
      b.closed = true;
    }
    // Keep only what the sliding window still needs.
    for (const b of [...this.buckets.values()]) {
      if (b.closed && b.seq <= this.maxSeq - this.windowSec) this.buckets.delete(b.seq);
    }
  }

  /** Flushes every interval into the series; call once the last snapshots are in. */
  finish(): void {
    this.closeBuckets(Number.POSITIVE_INFINITY);
  }

  /** Rates and percentiles over the last `windowSec` intervals: Locust's "current" figures. */
  current(): CurrentView {
    const recent = [...this.buckets.values()].filter((b) => b.seq > this.maxSeq - this.windowSec);
    const n = Math.max(1, recent.length);
    const h = createHistogram();
    let req = 0;
    let fail = 0;
    let minUs = Number.POSITIVE_INFINITY;
    let maxUs = 0;
    for (const b of recent) {
      req += b.requests;
      fail += b.failures;
      if (b.minUs < minUs) minUs = b.minUs;
      if (b.maxUs > maxUs) maxUs = b.maxUs;
      h.add(b.latency);
    }
    return {
      rps: req / n,
      failuresPerSec: fail / n,
      p50: percentileMs(h, 50, minUs, maxUs),
      p95: percentileMs(h, 95, minUs, maxUs),
      windowSec: n,
    };
  }

  sortedEndpoints(): EndpointTotals[] {
    return [...this.endpoints.values()].sort(
      (a, b) =>
        a.name.localeCompare(b.name) || a.method.localeCompare(b.method) || a.type.localeCompare(b.type),
    );
  }
}
