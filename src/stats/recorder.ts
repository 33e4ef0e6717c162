import { EndpointStats } from "./endpoint.js";
import { createHistogram, recordValue, toSparse } from "./histogram.js";
import type { Slo } from "./slo.js";
import type { EndpointDelta, ErrorDelta, ExceptionDelta, StatsSnapshot } from "./snapshot.js";

/**
 * What protocol clients record into. One recorder per worker; it knows nothing of
 * outputs, it only turns samples into mergeable per-interval snapshots.
 */
export interface StatsRecorder {
  /**
   * Records one finished request. Latencies are in microseconds; `ttfbUs < 0` means
   * "no first byte" (e.g. connection refused). `error` null means success.
   */
  request(
    type: string,
    method: string,
    name: string,
    latencyUs: number,
    ttfbUs: number,
    bytes: number,
    error: string | null,
    /** Response status code, counted per endpoint; 0 when there is none. */
    status?: number,
    /** Open model: how late the iteration started (µs); -1 in the closed model. */
    lagUs?: number,
    /** Tags of the task that made the request, for per-tag figures (thresholds on `tag:X`). */
    tags?: readonly string[] | null,
  ): void;
  /** A request that was cut off by the run's hard stop after it was sent: counted, but not timed. */
  cancelled(type: string, method: string, name: string): void;
  /**
   * A request the run's hard stop caught before any of it was written (still connecting, or
   * queued for a connection): the target never saw it. Counted apart from cancelled.
   */
  notSent(type: string, method: string, name: string): void;
  /** An exception thrown by user code (task, onStart, onStop). */
  exception(err: unknown, where: string): void;
  /** One more task iteration started. */
  iteration(): void;
  /** One evaluation of a named check. */
  check(name: string, passed: boolean): void;
  /**
   * One value of a further metric of an endpoint (time to first token, inter-token latency,
   * round-trip time, ...), in the metric's display unit: milliseconds for times.
   */
  metric(type: string, method: string, name: string, metric: string, value: number): void;
  /** Adds to a named count of an endpoint (events, tokens, messages, closes by code, ...). */
  count(type: string, method: string, name: string, counter: string, n?: number): void;
  /** A request already recorded as a success turned out to be a failure (a failed check said so). */
  failRecorded(type: string, method: string, name: string, error: string): void;
  /**
   * The run's SLOs (--slo): streams judge themselves against them and count the good ones here,
   * so goodput adds up exactly across workers.
   */
  readonly slo?: Slo | undefined;
  /** Open model: how late an iteration actually started after its scheduled start, in ms. */
  dispatchDelay?(ms: number): void;
}

const SEP = "\u0000";

/** One timed sample into an endpoint's (or a tag's) counters and histograms. */
function timed(a: EndpointStats, us: number, ttfbUs: number, bytes: number): void {
  a.count++;
  a.bytes += bytes;
  a.sumUs += us;
  if (us < a.minUs) a.minUs = us;
  if (us > a.maxUs) a.maxUs = us;
  recordValue(a.latency, us);
  if (ttfbUs >= 0) recordValue(a.ttfb, Math.max(1, Math.round(ttfbUs)));
}

/** Collects samples for one interval; `snapshot()` hands them over and starts the next. */
export class Recorder implements StatsRecorder {
  private endpoints = new Map<string, EndpointStats>();
  private errors = new Map<string, ErrorDelta>();
  private exceptions = new Map<string, ExceptionDelta>();
  private iterations = 0;
  private droppedIterations = 0;
  private readonly tagStats = new Map<string, EndpointStats>();
  private checks = new Map<string, { passes: number; fails: number }>();
  private seq = 0;
  /** Open model: actual minus scheduled start of each iteration, µs. */
  private readonly delays = createHistogram();
  slo: Slo | undefined;

  constructor(readonly workerId: string) {}

  /** type → method → name; nested maps, because building a key string per request costs an allocation. */
  private readonly index = new Map<string, Map<string, Map<string, EndpointStats>>>();

  /**
   * The last endpoint recorded into: a run's requests mostly repeat the one before (same strings,
   * so the comparisons are pointer checks), and the three map lookups are skipped.
   */
  private lastType = "";
  private lastMethod = "";
  private lastName = "";
  private last: EndpointStats | undefined;

  private acc(type: string, method: string, name: string): EndpointStats {
    if (name === this.lastName && method === this.lastMethod && type === this.lastType && this.last)
      return this.last;
    const a = this.lookup(type, method, name);
    this.lastType = type;
    this.lastMethod = method;
    this.lastName = name;
    this.last = a;
    return a;
  }

  private lookup(type: string, method: string, name: string): EndpointStats {
    let byMethod = this.index.get(type);
    if (!byMethod) {
      byMethod = new Map();
      this.index.set(type, byMethod);
    }
    let byName = byMethod.get(method);
    if (!byName) {
      byName = new Map();
      byMethod.set(method, byName);
    }
    let a = byName.get(name);
    if (!a) {
      a = new EndpointStats(type, method, name);
      byName.set(name, a);
      this.endpoints.set(type + SEP + method + SEP + name, a);
    }
    return a;
  }

  request(
    type: string,
    method: string,
    name: string,
    latencyUs: number,
    ttfbUs: number,
    bytes: number,
    error: string | null,
    status = 0,
    lagUs = -1,
    tags: readonly string[] | null = null,
  ): void {
    const a = this.acc(type, method, name);
    const us = Math.max(1, Math.round(latencyUs));
    if (tags !== null) for (const t of tags) this.tagged(t, us, ttfbUs, bytes, error !== null);
    timed(a, us, ttfbUs, bytes);
    if (lagUs >= 0) recordValue(a.corrected, us + Math.round(lagUs));
    if (status > 0) {
      const st = (a.statuses ??= new Map());
      st.set(status, (st.get(status) ?? 0) + 1);
    }
    if (error !== null) {
      a.failures++;
      this.error(method, name, error);
    }
  }

  private tagged(tag: string, us: number, ttfbUs: number, bytes: number, failed: boolean): void {
    let a = this.tagStats.get(tag);
    if (!a) {
      a = new EndpointStats("tag", "", tag);
      this.tagStats.set(tag, a);
    }
    timed(a, us, ttfbUs, bytes);
    if (failed) a.failures++;
  }

  check(name: string, passed: boolean): void {
    let c = this.checks.get(name);
    if (!c) {
      c = { passes: 0, fails: 0 };
      this.checks.set(name, c);
    }
    if (passed) c.passes++;
    else c.fails++;
  }

  metric(type: string, method: string, name: string, metric: string, value: number): void {
    this.acc(type, method, name).metric(metric, value);
  }

  count(type: string, method: string, name: string, counter: string, n = 1): void {
    this.acc(type, method, name).addCount(counter, n);
  }

  failRecorded(type: string, method: string, name: string, error: string): void {
    this.acc(type, method, name).failures++;
    this.error(method, name, error);
  }

  cancelled(type: string, method: string, name: string): void {
    this.acc(type, method, name).cancelled++;
  }

  notSent(type: string, method: string, name: string): void {
    this.acc(type, method, name).notSent++;
  }

  private error(method: string, name: string, error: string): void {
    const key = method + SEP + name + SEP + error;
    const e = this.errors.get(key);
    if (e) e.occurrences++;
    else this.errors.set(key, { method, name, error, occurrences: 1 });
  }

  exception(err: unknown, where: string): void {
    const e = err instanceof Error ? err : new Error(String(err));
    const message = `${e.name}: ${e.message}`;
    const key = where + SEP + message;
    const x = this.exceptions.get(key);
    if (x) x.count++;
    else this.exceptions.set(key, { message, traceback: e.stack ?? message, where, count: 1 });
  }

  iteration(): void {
    this.iterations++;
  }

  dispatchDelay(ms: number): void {
    recordValue(this.delays, Math.max(0, Math.round(ms * 1000)));
  }

  /** Open model: an arrival that found no user in time and never ran. */
  dropped(n = 1): void {
    this.droppedIterations += n;
  }

  /** Takes everything recorded since the last snapshot. Encoding makes it safe to ship anywhere. */
  snapshot(users: number, final = false, peakUsers = users, cut = false): StatsSnapshot {
    const endpoints: EndpointDelta[] = [];
    for (const a of this.endpoints.values()) {
      if (a.count === 0 && a.cancelled === 0 && a.notSent === 0 && a.failures === 0 && !hasExtras(a))
        continue;
      endpoints.push(delta(a));
      a.reset();
    }
    const tags: EndpointDelta[] = [];
    for (const a of this.tagStats.values()) {
      if (a.count === 0) continue;
      tags.push(delta(a));
      a.reset();
    }
    const snap: StatsSnapshot = {
      workerId: this.workerId,
      // A cut (at a warm-up or cool-down edge) stays in the interval it was taken in.
      seq: cut ? this.seq : this.seq++,
      at: Date.now(),
      final,
      users,
      peakUsers: Math.max(users, peakUsers),
      iterations: this.iterations,
      dropped: this.droppedIterations,
      endpoints,
      errors: [...this.errors.values()],
      exceptions: [...this.exceptions.values()],
      ...(tags.length > 0 ? { tags } : {}),
      ...(this.checks.size > 0 ? { checks: [...this.checks].map(([name, c]) => ({ name, ...c })) } : {}),
      ...(this.delays.totalCount > 0 ? { dispatchDelay: toSparse(this.delays) } : {}),
      ...(cut ? { cut: true } : {}),
    };
    if (this.delays.totalCount > 0) this.delays.reset();
    this.iterations = 0;
    this.droppedIterations = 0;
    this.errors = new Map();
    this.exceptions = new Map();
    this.checks = new Map();
    return snap;
  }
}

function delta(a: EndpointStats): EndpointDelta {
  return {
    type: a.type,
    method: a.method,
    name: a.name,
    count: a.count,
    failures: a.failures,
    cancelled: a.cancelled,
    notSent: a.notSent,
    bytes: a.bytes,
    sumUs: a.sumUs,
    minUs: a.count > 0 ? a.minUs : 0,
    maxUs: a.maxUs,
    latency: toSparse(a.latency),
    ttfb: toSparse(a.ttfb),
    corrected: toSparse(a.corrected),
    ...(a.statuses && a.statuses.size > 0 ? { statuses: Object.fromEntries(a.statuses) } : {}),
    ...(a.metrics && [...a.metrics.values()].some((h) => h.totalCount > 0)
      ? {
          metrics: Object.fromEntries(
            [...a.metrics].filter(([, h]) => h.totalCount > 0).map(([k, h]) => [k, toSparse(h)]),
          ),
        }
      : {}),
    ...(a.counters && a.counters.size > 0 ? { counters: Object.fromEntries(a.counters) } : {}),
  };
}

function hasExtras(a: EndpointStats): boolean {
  return (
    (a.counters?.size ?? 0) > 0 ||
    (a.metrics !== undefined && [...a.metrics.values()].some((h) => h.totalCount > 0))
  );
}
