import type { EndpointRow, SeriesRow, StatsEvent } from "./api";

/**
 * The per-second rows of the current run, grown from each event's tail. Held outside Preact's
 * state: an hour-long run has thousands of rows, and copying them every second would be waste.
 */
export class SeriesStore {
  runId: number | null = null;
  all: SeriesRow[] = [];
  endpoints = new Map<string, EndpointRow[]>();

  add(ev: StatsEvent): void {
    const from = ev.seriesFrom ?? 0;
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
