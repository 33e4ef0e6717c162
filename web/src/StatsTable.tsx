import { useState } from "preact/hooks";
import type { EndpointStats, StatsEvent } from "./api";
import { fmt } from "./charts";

interface Row {
  key: string;
  type: string;
  name: string;
  requests: number;
  failures: number;
  failPct: number;
  currentRps: number | null;
  rps: number;
  mean: number | null;
  min: number | null;
  p50: number | null;
  p90: number | null;
  p95: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
  avgSize: number | null;
}

interface Col {
  id: keyof Row;
  label: string;
  title?: string;
  text: (r: Row) => string;
  /** Shown before the user picks columns. */
  initial: boolean;
}

const int = (v: number) => v.toLocaleString("en-US");
const COLUMNS: Col[] = [
  { id: "type", label: "Type", text: (r) => r.type, initial: true },
  { id: "name", label: "Name", text: (r) => r.name, initial: true },
  { id: "requests", label: "Requests", text: (r) => int(r.requests), initial: true },
  { id: "failures", label: "Fails", text: (r) => int(r.failures), initial: true },
  { id: "failPct", label: "Fail %", text: (r) => `${fmt(r.failPct, 1)}%`, initial: false },
  { id: "currentRps", label: "Current RPS", text: (r) => fmt(r.currentRps, 1), initial: true },
  {
    id: "rps",
    label: "RPS",
    title: "Requests per second over the whole run",
    text: (r) => fmt(r.rps, 1),
    initial: false,
  },
  { id: "mean", label: "Avg ms", text: (r) => fmt(r.mean), initial: true },
  { id: "min", label: "Min ms", text: (r) => fmt(r.min), initial: true },
  { id: "p50", label: "p50 ms", text: (r) => fmt(r.p50), initial: true },
  { id: "p90", label: "p90 ms", text: (r) => fmt(r.p90), initial: false },
  { id: "p95", label: "p95 ms", text: (r) => fmt(r.p95), initial: true },
  { id: "p99", label: "p99 ms", text: (r) => fmt(r.p99), initial: true },
  { id: "p999", label: "p99.9 ms", text: (r) => fmt(r.p999), initial: false },
  { id: "max", label: "Max ms", text: (r) => fmt(r.max), initial: true },
  { id: "avgSize", label: "Avg size (B)", text: (r) => fmt(r.avgSize, 0), initial: false },
];

const STORAGE_KEY = "cicada.statsColumns";

function loadColumns(): Set<string> {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) ?? "null") as unknown;
    if (Array.isArray(saved)) return new Set(saved.filter((c): c is string => typeof c === "string"));
  } catch {
    // Storage off or garbled: the defaults will do.
  }
  return new Set(COLUMNS.filter((c) => c.initial).map((c) => c.id));
}

function endpointRow(e: EndpointStats): Row {
  const l = e.latencyMs;
  const none = e.requests === 0;
  return {
    key: e.key,
    type: e.method || e.type || "",
    name: e.name,
    requests: e.requests,
    failures: e.failures,
    failPct: e.requests > 0 ? (100 * e.failures) / e.requests : 0,
    currentRps: e.currentRps ?? null,
    rps: e.rps,
    mean: none ? null : (l?.mean ?? null),
    min: none ? null : (l?.min ?? null),
    p50: none ? null : (l?.p50 ?? null),
    p90: none ? null : (l?.p90 ?? null),
    p95: none ? null : (l?.p95 ?? null),
    p99: none ? null : (l?.p99 ?? null),
    p999: none ? null : (l?.p999 ?? null),
    max: none ? null : (l?.max ?? null),
    avgSize: e.bytesReceived !== undefined && e.requests > 0 ? e.bytesReceived / e.requests : null,
  };
}

function aggregatedRow(stats: StatsEvent): Row {
  const eps = stats.endpoints ?? [];
  const t = stats.totals ?? { requests: 0, failures: 0, rps: 0 };
  const l = t.latencyMs;
  const none = t.requests === 0;
  const bytes = eps.every((e) => e.bytesReceived !== undefined)
    ? eps.reduce((a, e) => a + (e.bytesReceived ?? 0), 0)
    : null;
  return {
    key: "Aggregated",
    type: "",
    name: "Aggregated",
    requests: t.requests,
    failures: t.failures,
    failPct: t.requests > 0 ? (100 * t.failures) / t.requests : 0,
    currentRps: stats.current?.rps ?? null,
    rps: t.rps,
    mean: none ? null : (l?.mean ?? null),
    min: none ? null : (l?.min ?? null),
    p50: none ? null : (l?.p50 ?? null),
    p90: none ? null : (l?.p90 ?? null),
    p95: none ? null : (l?.p95 ?? null),
    p99: none ? null : (l?.p99 ?? null),
    p999: none ? null : (l?.p999 ?? null),
    max: none ? null : (l?.max ?? null),
    avgSize: bytes !== null && t.requests > 0 ? bytes / t.requests : null,
  };
}

function compare(a: Row, b: Row, col: keyof Row): number {
  const x = a[col];
  const y = b[col];
  if (x === y) return 0;
  // Empty cells sort last whichever the direction, so "—" never tops a ranking.
  if (x === null) return 1;
  if (y === null) return -1;
  return typeof x === "string" ? x.localeCompare(String(y)) : (x as number) - (y as number);
}

export function StatsTable({ stats }: { stats: StatsEvent }) {
  const [shown, setShown] = useState(loadColumns);
  const [sort, setSort] = useState<{ col: keyof Row; desc: boolean } | null>(null);

  const toggle = (id: string) => {
    const next = new Set(shown);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setShown(next);
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify([...next]));
    } catch {
      // Not remembered across reloads then; nothing else depends on it.
    }
  };
  const clickHeader = (col: keyof Row) =>
    setSort((s) =>
      s?.col === col ? { col, desc: !s.desc } : { col, desc: col !== "name" && col !== "type" },
    );

  const cols = COLUMNS.filter((c) => shown.has(c.id));
  const rows = (stats.endpoints ?? []).map(endpointRow);
  if (sort) {
    rows.sort((a, b) => {
      const c = compare(a, b, sort.col);
      return sort.desc && a[sort.col] !== null && b[sort.col] !== null ? -c : c;
    });
  }
  const total = aggregatedRow(stats);
  const cells = (r: Row) =>
    cols.map((c) => (
      <td key={c.id} data-col={c.id} class={typeof r[c.id] === "number" ? "num" : undefined}>
        {c.text(r)}
      </td>
    ));

  return (
    <div id="stats" class="panel-body">
      <div class="table-tools">
        <details class="column-chooser">
          <summary>Columns</summary>
          <div class="menu">
            {COLUMNS.map((c) => (
              <label key={c.id}>
                <input
                  type="checkbox"
                  data-column={c.id}
                  checked={shown.has(c.id)}
                  onChange={() => toggle(c.id)}
                />{" "}
                {c.label}
              </label>
            ))}
          </div>
        </details>
      </div>
      <div class="scroll">
        <table class="stats">
          <thead>
            <tr>
              {cols.map((c) => (
                <th
                  key={c.id}
                  data-col={c.id}
                  title={c.title ?? "Sort"}
                  class={sort?.col === c.id ? (sort.desc ? "sorted desc" : "sorted asc") : undefined}
                  aria-sort={sort?.col === c.id ? (sort.desc ? "descending" : "ascending") : "none"}
                  onClick={() => clickHeader(c.id)}
                >
                  {c.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {rows.length === 0 ? (
              <tr>
                <td colSpan={cols.length} class="empty">
                  No requests yet.
                </td>
              </tr>
            ) : (
              rows.map((r) => (
                <tr key={r.key} data-endpoint={r.key} class={r.failures > 0 ? "failed" : undefined}>
                  {cells(r)}
                </tr>
              ))
            )}
          </tbody>
          <tfoot>
            <tr data-endpoint="Aggregated" class={total.failures > 0 ? "failed" : undefined}>
              {cells(total)}
            </tr>
          </tfoot>
        </table>
      </div>
    </div>
  );
}
