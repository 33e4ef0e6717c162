// Resource series of a run: the target's processes and metrics endpoints, and the generator's own use.

/** One reading of one resource metric, as a monitor takes it. */
export interface ResourceSample {
  /** What was watched: "pid 1234 (node)", "http://127.0.0.1:9100/metrics", "w0", "master". */
  source: string;
  /** The system under test, or Cicada itself. */
  kind: "target" | "generator";
  /**
   * cpu_percent (100 = one core), rss_bytes, fds, threads, io_read_bytes, io_write_bytes
   * (cumulative), heap_used_bytes, elu (0–1), or the NAME of a `--monitor-query NAME=SERIES`.
   */
  metric: string;
  unit: ResourceUnit;
  /** The machine that took it: "master" or a worker's address. */
  host: string;
  /** Wall-clock ms when it was taken. */
  at: number;
  value: number;
}

export type ResourceUnit = "percent" | "bytes" | "count" | "ratio" | "";

/** One resource metric over the run, as the JSON result carries it. */
export interface ResourceSeries {
  source: string;
  kind: "target" | "generator";
  metric: string;
  unit: ResourceUnit;
  host: string;
  /** [seconds since the run started, value], in time order. */
  points: Array<[number, number]>;
}

const keyOf = (s: Pick<ResourceSample, "host" | "source" | "metric">) =>
  `${s.host}\u0000${s.source}\u0000${s.metric}`;

/**
 * Every resource sample of the run, by series. Samples from the same series at the same moment
 * (a connection's message seen by several scenarios) are kept once.
 */
export class ResourceBook {
  private readonly bySeries = new Map<
    string,
    { head: Omit<ResourceSample, "at" | "value">; points: Array<[number, number]> }
  >();

  add(samples: readonly ResourceSample[]): void {
    for (const s of samples) {
      const k = keyOf(s);
      let e = this.bySeries.get(k);
      if (!e) {
        const { at: _at, value: _value, ...head } = s;
        e = { head, points: [] };
        this.bySeries.set(k, e);
      }
      const last = e.points[e.points.length - 1];
      if (last && last[0] === s.at) continue;
      if (last && last[0] > s.at) {
        // Rare: a late message. Kept in time order.
        if (e.points.some((p) => p[0] === s.at)) continue;
        e.points.push([s.at, s.value]);
        e.points.sort((a, b) => a[0] - b[0]);
      } else e.points.push([s.at, s.value]);
    }
  }

  get size(): number {
    return this.bySeries.size;
  }

  /** Every series, with its times in seconds since `startedAt` (wall-clock ms). */
  series(startedAt: number): ResourceSeries[] {
    return [...this.bySeries.values()].map(({ head, points }) => ({
      ...head,
      points: points.map(([at, v]) => [Math.round(at - startedAt) / 1000, v] as [number, number]),
    }));
  }

  /**
   * The points added since a reader's last call, by series, with times in seconds since
   * `startedAt`; `sent` holds how many points of each series the reader has, and is updated.
   */
  since(startedAt: number, sent: Map<string, number>): Array<ResourceSeries & { key: string }> {
    const out: Array<ResourceSeries & { key: string }> = [];
    for (const [key, { head, points }] of this.bySeries) {
      const from = sent.get(key) ?? 0;
      if (points.length <= from) continue;
      sent.set(key, points.length);
      out.push({
        key,
        ...head,
        points: points
          .slice(from)
          .map(([at, v]) => [Math.round(at - startedAt) / 1000, v] as [number, number]),
      });
    }
    return out;
  }

  /** The latest value of each series, for live views (Prometheus, the web UI, live thresholds). */
  latest(): Array<Omit<ResourceSample, "at"> & { at: number }> {
    const out: Array<ResourceSample> = [];
    for (const { head, points } of this.bySeries.values()) {
      const p = points[points.length - 1];
      if (p) out.push({ ...head, at: p[0], value: p[1] });
    }
    return out;
  }

  /** The values of every series of one kind and metric, each in time order (live thresholds). */
  valuesOf(kind: ResourceSample["kind"], metric: string): number[][] {
    const out: number[][] = [];
    for (const { head, points } of this.bySeries.values()) {
      if (head.kind === kind && head.metric === metric) out.push(points.map((p) => p[1]));
    }
    return out;
  }
}
