import type { EndpointRow, ResourceRows, SeriesRow, StatsEvent } from "./api";

/**
 * The per-second rows of the current run, grown from each event's tail. Held outside Preact's
 * state: an hour-long run has thousands of rows, and copying them every second would be waste.
 */
export class SeriesStore {
  runId: number | null = null;
  all: SeriesRow[] = [];
  endpoints = new Map<string, EndpointRow[]>();
  /** Resource series by key, grown from each event's new points. */
  resources = new Map<string, ResourceRows>();

  add(ev: StatsEvent): void {
    const from = ev.seriesFrom ?? 0;
    if (ev.runId !== this.runId || ev.resourcesReset) this.resources.clear();
    for (const r of ev.resources ?? []) {
      const held = this.resources.get(r.key);
      if (!held) this.resources.set(r.key, { ...r, points: [...r.points] });
      else {
        const last =
          held.points.length > 0 ? held.points[held.points.length - 1]![0] : Number.NEGATIVE_INFINITY;
        for (const p of r.points) if (p[0] > last) held.points.push(p);
      }
    }
    if (ev.runId !== this.runId || from === 0) {
      this.runId = ev.runId;
      this.all = [];
      this.endpoints.clear();
    }
    // Cutting at seriesFrom makes a repeated tail (say, after a reconnect) replace rows, not double them.
    if (from < this.all.length) this.all.length = from;
    for (const row of ev.series ?? []) this.all.push(row);
    for (const [key, rows] of Object.entries(ev.endpointSeries ?? {})) {
      const list = this.endpoints.get(key) ?? [];
      // Endpoint rows come as "added since the previous event"; drop any second already held.
      const last = list.length > 0 ? list[list.length - 1]!.t : Number.NEGATIVE_INFINITY;
      for (const row of rows) if (row.t > last) list.push(row);
      this.endpoints.set(key, list);
    }
  }
}

export type Column = Array<number | null>;

export interface ChartColumns {
  throughput: Column[];
  latency: Column[];
  load: Column[];
}

/**
 * uPlot's columns for the aggregate or one endpoint. An endpoint's rows are lined up on the
 * run's seconds: a second with no request counts zero and has no percentile.
 */
export function columns(store: SeriesStore, endpoint: string, open: boolean): ChartColumns {
  const t = store.all.map((r) => r.t);
  const num = (v: number | null | undefined) => v ?? null;
  const load: Column[] = open
    ? [t, store.all.map((r) => r.users ?? null), store.all.map((r) => r.iterations ?? null)]
    : [t, store.all.map((r) => r.users ?? null)];
  const rows = endpoint ? store.endpoints.get(endpoint) : undefined;
  if (!endpoint || !rows) {
    return {
      throughput: [t, store.all.map((r) => num(r.rps)), store.all.map((r) => num(r.failuresPerSec))],
      latency: [
        t,
        store.all.map((r) => num(r.p50)),
        store.all.map((r) => num(r.p95)),
        store.all.map((r) => num(r.p99)),
      ],
      load,
    };
  }
  const byT = new Map(rows.map((r) => [r.t, r]));
  const at = (sec: number) => byT.get(sec);
  return {
    throughput: [t, t.map((s) => at(s)?.requests ?? 0), t.map((s) => at(s)?.failures ?? 0)],
    latency: [t, t.map((s) => num(at(s)?.p50)), t.map((s) => num(at(s)?.p95)), t.map((s) => num(at(s)?.p99))],
    load,
  };
}

/** One live chart of resource series: CPU, memory, or one other metric. */
export interface ResourceChartData {
  id: string;
  title: string;
  axis: string;
  labels: string[];
  data: Column[];
}

function family(r: ResourceRows): { id: string; title: string; axis: string; scale: number } {
  if (r.metric === "cpu_percent") return { id: "cpu", title: "CPU (% of one core)", axis: "%", scale: 1 };
  if (r.metric === "elu") return { id: "cpu", title: "CPU (% of one core)", axis: "%", scale: 100 };
  if (r.metric === "rss_bytes" || r.metric === "heap_used_bytes") {
    return { id: "memory", title: "Memory (MB)", axis: "MB", scale: 1 / 1048576 };
  }
  if (r.unit === "bytes") return { id: r.metric, title: `${r.metric} (MB)`, axis: "MB", scale: 1 / 1048576 };
  return { id: r.metric, title: r.metric, axis: r.unit === "percent" ? "%" : "", scale: 1 };
}

function label(r: ResourceRows): string {
  const what = r.metric === "elu" ? " event loop" : r.metric === "heap_used_bytes" ? " heap" : "";
  const where = r.host === "master" ? "" : ` @ ${r.host}`;
  return `${r.kind === "generator" ? "cicada " : ""}${r.source}${what}${where}`;
}

/** The resource series grouped into charts, each aligned on the union of its series' times. */
export function resourceCharts(store: SeriesStore): ResourceChartData[] {
  const groups = new Map<string, { head: ReturnType<typeof family>; list: ResourceRows[] }>();
  for (const r of store.resources.values()) {
    const head = family(r);
    const g = groups.get(head.id) ?? { head, list: [] };
    g.list.push(r);
    groups.set(head.id, g);
  }
  const order = (id: string) => (id === "cpu" ? 0 : id === "memory" ? 1 : 2);
  return [...groups.values()]
    .sort((a, b) => order(a.head.id) - order(b.head.id))
    .map(({ head, list }) => {
      const t = [...new Set(list.flatMap((r) => r.points.map((p) => p[0])))].sort((a, b) => a - b);
      const at = new Map(t.map((v, i) => [v, i]));
      const data: Column[] = [t];
      for (const r of list) {
        const col: Column = t.map(() => null);
        for (const [pt, v] of r.points) col[at.get(pt)!] = Math.round(v * head.scale * 100) / 100;
        data.push(col);
      }
      return { id: head.id, title: head.title, axis: head.axis, labels: list.map(label), data };
    });
}
