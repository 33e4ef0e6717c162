import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import hdr from "hdr-histogram-js";
import { AGGREGATED, endpointLabel } from "../../compare/compare.js";
import type { ComparisonRow } from "../../result/comparison.js";
import { type EndpointResult, type RunResult, type ShownBurst, shownBursts } from "../../result/result.js";
import {
  type SoakLine,
  type SoakResult,
  scenarioSoakFlags,
  soakLines,
  soakWorthShowing,
} from "../../result/soak.js";
import {
  createHistogram,
  type Histogram,
  type LatencySummary,
  PERCENTILES,
  percentileMs,
  toSparse,
} from "../../stats/histogram.js";
import type { ResourceSeries } from "../../stats/resources.js";
import { formatSlo } from "../../stats/slo.js";

/** Values in ms; null where a second had no requests, so the charts show a gap, not a zero. */
export interface ChartSeries {
  requests: number[];
  failures: number[];
  p50: Array<number | null>;
  p95: Array<number | null>;
  p99: Array<number | null>;
}

/** Latency distribution: counts in log-spaced bins, each bin given by its lower and upper edge in ms. */
export interface Distribution {
  lo: number[];
  hi: number[];
  counts: number[];
}

export interface ReportEndpoint {
  key: string;
  requests: number;
  /** Aligned with ReportData.t: the endpoint's rows, with seconds it had no requests filled in. */
  series: ChartSeries;
  distribution: Distribution;
  /** p50, p95, p99 in ms, for the distribution chart's caption. */
  marks: { p50: number; p95: number; p99: number };
}

/** What the page's script reads from the embedded JSON; built here so the browser only draws. */
export interface ReportData {
  /** Seconds since the start of the run, one per row of the top-level series. */
  t: number[];
  all: ChartSeries & { users: number[]; iterations: number[]; dropped: number[] };
  /** "closed", "open" or "mixed": decides what the load chart shows. */
  model: string;
  aggregated: ReportEndpoint;
  endpoints: ReportEndpoint[];
  /** One chart per family of resource series (CPU, memory, then each other metric). */
  resources: ResourceChart[];
  /** --warmup and --cooldown: spans of the time axis, in seconds, that the charts shade. */
  windows?: Array<{ from: number; to: number; label: string }>;
}

/** A chart of resource series, aligned on the union of their times (null where one has no point). */
export interface ResourceChart {
  id: string;
  title: string;
  /** The y axis: "%", "MB", or the metric's own. */
  axis: string;
  t: number[];
  series: Array<{ label: string; values: Array<number | null> }>;
}

const BINS = 60;

function decode(encoded: string): Histogram | null {
  if (!encoded) return null;
  try {
    return hdr.decodeFromCompressedBase64(encoded, 32, false);
  } catch {
    // A damaged histogram only costs the extra percentiles and the distribution, not the report.
    return null;
  }
}

function merged(endpoints: readonly EndpointResult[]): Histogram | null {
  const parts = endpoints.map((e) => decode(e.histogram)).filter((h): h is Histogram => h !== null);
  if (parts.length === 0) return null;
  const h = createHistogram();
  for (const p of parts) h.add(p);
  return h;
}

/**
 * The Locust percentile set. The result's own summary wins where it has the figure, so the
 * table agrees with the JSON and the console; the histogram fills in the rest.
 */
export function percentileSet(
  s: LatencySummary,
  h: Histogram | null,
  requests: number,
): Array<number | null> {
  const known: Record<string, number> = {
    50: s.p50,
    90: s.p90,
    95: s.p95,
    99: s.p99,
    99.9: s.p999,
    100: s.max,
  };
  return PERCENTILES.map((p) => {
    if (requests === 0) return null;
    const k = known[String(p)];
    if (k !== undefined) return k;
    return h ? percentileMs(h, p, Math.round(s.min * 1000), Math.round(s.max * 1000)) : null;
  });
}

export function distribution(h: Histogram | null, s: LatencySummary): Distribution {
  const out: Distribution = { lo: [], hi: [], counts: [] };
  if (!h || h.totalCount === 0) return out;
  const minUs = Math.max(1, Math.round(s.min * 1000));
  const maxUs = Math.max(minUs, Math.round(s.max * 1000));
  const n = maxUs / minUs < 1.01 ? 1 : BINS;
  const ratio = (maxUs / minUs) ** (1 / n);
  for (let i = 0; i < n; i++) {
    out.lo.push((minUs * ratio ** i) / 1000);
    out.hi.push((minUs * ratio ** (i + 1)) / 1000);
    out.counts.push(0);
  }
  const sparse = toSparse(h);
  for (let i = 0; i + 1 < sparse.length; i += 2) {
    // Bucket floors can sit just under the exact minimum; they belong to the first bin.
    const v = Math.min(maxUs, Math.max(minUs, sparse[i]!));
    const bin = Math.min(n - 1, Math.floor(Math.log(v / minUs) / Math.log(ratio || 1) || 0));
    out.counts[bin]! += sparse[i + 1]!;
  }
  return out;
}

function alignedSeries(t: readonly number[], rows: EndpointResult["series"]): ChartSeries {
  const byT = new Map((rows ?? []).map((r) => [r.t, r]));
  const s: ChartSeries = { requests: [], failures: [], p50: [], p95: [], p99: [] };
  for (const x of t) {
    const r = byT.get(x);
    s.requests.push(r?.requests ?? 0);
    s.failures.push(r?.failures ?? 0);
    s.p50.push(r && r.requests > 0 ? r.p50 : null);
    s.p95.push(r && r.requests > 0 ? r.p95 : null);
    s.p99.push(r && r.requests > 0 ? r.p99 : null);
  }
  return s;
}

interface Prepared {
  e: EndpointResult;
  key: string;
  percentiles: Array<number | null>;
  chart: ReportEndpoint;
}

function prepare(result: RunResult): { rows: Prepared[]; total: Prepared; data: ReportData } {
  const t = result.series.map((r) => r.t);
  const rows = result.endpoints.map((e): Prepared => {
    const h = decode(e.histogram);
    const key = endpointLabel(e);
    return {
      e,
      key,
      percentiles: percentileSet(e.latencyMs, h, e.requests),
      chart: {
        key,
        requests: e.requests,
        series: alignedSeries(t, e.series),
        distribution: distribution(h, e.latencyMs),
        marks: { p50: e.latencyMs.p50, p95: e.latencyMs.p95, p99: e.latencyMs.p99 },
      },
    };
  });
  const tot = result.totals;
  const hAll = merged(result.endpoints);
  const totalEndpoint: EndpointResult = {
    type: "",
    method: "",
    name: AGGREGATED,
    requests: tot.requests,
    failures: tot.failures,
    cancelled: tot.cancelled,
    notSent: tot.notSent ?? 0,
    rps: tot.rps,
    bytesReceived: tot.bytesReceived,
    latencyMs: tot.latencyMs,
    ttfbMs: tot.ttfbMs,
    ...(tot.correctedLatencyMs ? { correctedLatencyMs: tot.correctedLatencyMs } : {}),
    statusCodes: tot.statusCodes,
    histogram: "",
  };
  const all = result.series;
  const gap = (v: number, requests: number) => (requests > 0 ? v : null);
  const totalChart: ReportEndpoint = {
    key: AGGREGATED,
    requests: tot.requests,
    series: {
      requests: all.map((r) => r.rps),
      failures: all.map((r) => r.failuresPerSec),
      p50: all.map((r) => gap(r.p50, r.requests)),
      p95: all.map((r) => gap(r.p95, r.requests)),
      p99: all.map((r) => gap(r.p99, r.requests)),
    },
    distribution: distribution(hAll, tot.latencyMs),
    marks: { p50: tot.latencyMs.p50, p95: tot.latencyMs.p95, p99: tot.latencyMs.p99 },
  };
  const total: Prepared = {
    e: totalEndpoint,
    key: AGGREGATED,
    percentiles: percentileSet(tot.latencyMs, hAll, tot.requests),
    chart: totalChart,
  };
  const data: ReportData = {
    t,
    all: {
      ...totalChart.series,
      users: all.map((r) => r.users),
      iterations: all.map((r) => r.iterations),
      dropped: all.map((r) => r.dropped),
    },
    model: String(result.config.model ?? "closed"),
    aggregated: totalChart,
    endpoints: rows.map((r) => r.chart),
    resources: resourceCharts(result.resources ?? []),
    ...(result.windows ? { windows: windowSpans(result) } : {}),
  };
  return { rows, total, data };
}

/** The warm-up and cool-down as spans of the time axis; the cool-down runs to the end of the run. */
function windowSpans(result: RunResult): Array<{ from: number; to: number; label: string }> {
  const w = result.windows!;
  const end = Math.max(result.series[result.series.length - 1]?.t ?? 0, w.cooldownAtSec ?? 0);
  const out: Array<{ from: number; to: number; label: string }> = [];
  if (w.warmupSec > 0) out.push({ from: 0, to: w.warmupSec, label: "warm-up" });
  if (w.cooldownAtSec !== null && w.cooldownSec > 0)
    out.push({ from: w.cooldownAtSec, to: end, label: "cool-down" });
  return out;
}

/** Which chart a series goes to, its axis, and how its values read there. */
function familyOf(x: ResourceSeries): { id: string; title: string; axis: string; scale: number } {
  if (x.metric === "cpu_percent") return { id: "cpu", title: "CPU (% of one core)", axis: "%", scale: 1 };
  if (x.metric === "elu") return { id: "cpu", title: "CPU (% of one core)", axis: "%", scale: 100 };
  if (x.metric === "rss_bytes" || x.metric === "heap_used_bytes") {
    return { id: "memory", title: "Memory (MB)", axis: "MB", scale: 1 / 1048576 };
  }
  if (x.metric === "io_read_bytes" || x.metric === "io_write_bytes") {
    return { id: "io", title: "Disk I/O, cumulative (MB)", axis: "MB", scale: 1 / 1048576 };
  }
  const bytes = x.unit === "bytes";
  return {
    id: `m-${x.metric.replace(/[^\w-]/g, "_")}`,
    title: bytes ? `${x.metric} (MB)` : x.metric,
    axis: bytes ? "MB" : x.unit === "percent" ? "%" : "",
    scale: bytes ? 1 / 1048576 : 1,
  };
}

/** What a series is called in its chart's legend. */
function seriesLabel(x: ResourceSeries): string {
  const what =
    x.metric === "elu"
      ? " event loop"
      : x.metric === "heap_used_bytes"
        ? " heap"
        : x.metric === "io_read_bytes"
          ? " read"
          : x.metric === "io_write_bytes"
            ? " written"
            : x.metric === "rss_bytes" || x.metric === "cpu_percent"
              ? ""
              : ` ${x.metric}`;
  const where = x.host === "master" || x.host === x.source ? "" : ` @ ${x.host}`;
  return `${x.kind === "generator" ? "cicada " : ""}${x.source}${what}${where}`;
}

/** The resource series grouped into charts: CPU and memory first, the others after, in order met. */
export function resourceCharts(all: readonly ResourceSeries[]): ResourceChart[] {
  const groups = new Map<string, { head: ReturnType<typeof familyOf>; list: ResourceSeries[] }>();
  for (const x of all) {
    const head = familyOf(x);
    const g = groups.get(head.id) ?? { head, list: [] };
    g.list.push(x);
    groups.set(head.id, g);
  }
  const order = (id: string) => (id === "cpu" ? 0 : id === "memory" ? 1 : 2);
  return [...groups.values()]
    .sort((a, b) => order(a.head.id) - order(b.head.id))
    .map(({ head, list }) => {
      const t = [...new Set(list.flatMap((x) => x.points.map((p) => p[0])))].sort((a, b) => a - b);
      const at = new Map(t.map((v, i) => [v, i]));
      return {
        id: head.id,
        title: head.title,
        axis: head.axis,
        t,
        series: list.map((x) => {
          const values: Array<number | null> = t.map(() => null);
          for (const [pt, v] of x.points) values[at.get(pt)!] = Math.round(v * head.scale * 100) / 100;
          return { label: seriesLabel(x), values };
        }),
      };
    });
}

// ---------------------------------------------------------------------------------------------
// HTML

export const esc = (s: unknown): string =>
  String(s).replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

/**
 * JSON inside a <script> element: "<" escaped so that no "</script>" or "<!--" in the data can
 * end or change the element, and U+2028/U+2029 escaped for older parsers that treat them as
 * line ends.
 */
export function embedJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** Inline script text: a "</script" inside it (in a string, say) would end the element early. */
export const inlineScript = (js: string): string => js.replace(/<\/(script)/gi, "<\\/$1");

/** Milliseconds as the console shows them: integers as is, else two decimals. */
export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return "—";
  return Number.isInteger(ms) ? String(ms) : ms.toFixed(2);
}

const fmtNum = (n: number): string => n.toLocaleString("en-US");
const pct = (part: number, whole: number): string =>
  whole > 0 ? `${((100 * part) / whole).toFixed(part > 0 && part < whole / 1000 ? 3 : 1)}%` : "0.0%";

function fmtDuration(sec: number): string {
  if (sec < 60) return `${Number(sec.toFixed(1))} s`;
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const parts = [h > 0 ? `${h} h` : "", m > 0 ? `${m} min` : "", s % 60 > 0 ? `${s % 60} s` : ""];
  return parts.filter(Boolean).join(" ");
}

function cell(text: string, col: string, value?: number | null, cls = "num"): string {
  const v = value === undefined || value === null ? "" : ` data-value="${value}"`;
  return `<td class="${cls}" data-col="${col}"${v}>${esc(text)}</td>`;
}

function section(id: string, title: string, body: string, note = ""): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>${note ? `<p class="note">${note}</p>` : ""}${body}</section>`;
}

function metaList(items: Array<[string, string | null | undefined]>): string {
  const rows = items
    .filter((x): x is [string, string] => x[1] !== null && x[1] !== undefined && x[1] !== "")
    .map(([k, v]) => `<dt>${esc(k)}</dt><dd data-meta="${esc(k)}">${esc(v)}</dd>`);
  return `<dl class="meta">${rows.join("")}</dl>`;
}

function loadDescription(c: Record<string, unknown>): string {
  const stages = c.stages as Array<{ durationSec: number; target: number }> | null | undefined;
  if (c.shape) return `LoadShape ${String(c.shape)}`;
  if (Array.isArray(stages) && stages.length > 0)
    return `stages: ${stages.map((s) => `${fmtDuration(s.durationSec)} → ${s.target}`).join(", ")}`;
  if (c.rate !== null && c.rate !== undefined) {
    const max = c.maxUsers !== null && c.maxUsers !== undefined ? `, at most ${c.maxUsers} users` : "";
    return `${c.rate} iterations/s${max}`;
  }
  if (c.users !== undefined && c.users !== null)
    return `${c.users} users${c.spawnRate ? `, spawning ${c.spawnRate}/s` : ""}`;
  return "";
}

/** --warmup/--cooldown: which part of the run the figures cover (the charts shade the rest). */
function measuredSpan(r: RunResult): string | null {
  const w = r.windows;
  if (!w) return null;
  const parts = [
    ...(w.warmupSec > 0 ? [`after a ${fmtDuration(w.warmupSec)} warm-up`] : []),
    ...(w.cooldownAtSec !== null && w.cooldownSec > 0
      ? [`until a ${fmtDuration(w.cooldownSec)} cool-down`]
      : []),
  ];
  return `${parts.join(", ")} (shaded in the charts)`;
}

function metadata(r: RunResult): string {
  const c = r.config;
  const started = new Date(r.startedAt);
  const planned =
    typeof c.runTimeSec === "number"
      ? fmtDuration(c.runTimeSec)
      : typeof c.iterations === "number"
        ? `${c.iterations} iterations`
        : null;
  const classes = Array.isArray(c.userClassesRun) ? (c.userClassesRun as string[]).join(", ") : null;
  const scenarios = Array.isArray(c.scenarios) ? (c.scenarios as string[]).join(", ") : null;
  const tags = Array.isArray(c.tags) && c.tags.length > 0 ? (c.tags as string[]).join(", ") : null;
  return metaList([
    ["Loadfile", typeof c.loadfile === "string" ? c.loadfile : null],
    ["Host", typeof c.host === "string" ? c.host : null],
    ["Model", String(c.model ?? "closed")],
    ["Load", loadDescription(c)],
    ["Peak users", String(r.users.peak)],
    ["Scenarios", scenarios],
    ["User classes", classes],
    ["Tags", tags],
    ["Planned", planned],
    ["Duration", fmtDuration(r.durationSec)],
    ["Measured", measuredSpan(r)],
    [
      "Started",
      Number.isFinite(started.getTime())
        ? started
            .toISOString()
            .replace("T", " ")
            .replace(/\.\d+Z$/, " UTC")
        : r.startedAt,
    ],
    ["Stop reason", r.stopReason],
    ["Exit code", String(r.exitCode)],
    ["Cicada", r.version],
    ["Generator", `${r.machine.hostname}: ${r.machine.cpus} CPUs, Node ${r.machine.node}`],
    ["Processes", typeof c.processes === "number" ? String(c.processes) : null],
  ]);
}

function headline(r: RunResult): string {
  const t = r.totals;
  const card = (id: string, label: string, value: string, bad = false) =>
    `<div class="card${bad ? " bad" : ""}" id="card-${id}"><div class="label">${esc(label)}</div><div class="value">${esc(value)}</div></div>`;
  const th = r.thresholds ?? [];
  const failedTh = th.filter((x) => !x.passed).length;
  return `<div class="cards">${[
    card("requests", "Requests", fmtNum(t.requests)),
    card("failures", "Failures", `${fmtNum(t.failures)} (${pct(t.failures, t.requests)})`, t.failures > 0),
    card("rps", "Requests/s", t.rps.toFixed(1)),
    card("p50", "Median", `${formatMs(t.latencyMs.p50)} ms`),
    card("p95", "p95", `${formatMs(t.latencyMs.p95)} ms`),
    card("p99", "p99", `${formatMs(t.latencyMs.p99)} ms`),
    r.goodput
      ? card(
          "goodput",
          "Goodput",
          `${r.goodput.perSec.toFixed(2)}/s (${(r.goodput.attainment * 100).toFixed(1)}%)`,
        )
      : "",
    th.length > 0
      ? card("thresholds", "Thresholds", `${th.length - failedTh}/${th.length} passed`, failedTh > 0)
      : "",
    r.comparison
      ? card("comparison", "vs baseline", r.comparison.verdict, r.comparison.verdict === "regression")
      : "",
  ].join("")}</div>`;
}

const pctCol = (p: number) => (p === 100 ? "p100" : `p${String(p).replace(".", "_")}`);

function endpointTables(rows: Prepared[], total: Prepared): string {
  const all = [...rows, total];
  const hasTtfb = all.some((x) => x.e.requests > 0 && x.e.ttfbMs.max > 0);
  const hasCorrected = all.some((x) => x.e.correctedLatencyMs);
  const ms = (x: Prepared, v: number | null | undefined, col: string) =>
    x.e.requests === 0 || v === undefined ? cell("—", col) : cell(formatMs(v), col, v);
  const lead = (x: Prepared, isTotal: boolean) =>
    `<td class="type" data-col="type">${esc(x.e.type)}</td><td class="name" data-col="name">${esc(
      isTotal ? AGGREGATED : `${x.e.method} ${x.e.name}`.trim(),
    )}</td>`;
  const tr = (x: Prepared, isTotal: boolean, cells: string[]) =>
    `<tr data-endpoint="${esc(x.key)}" class="${isTotal ? "total" : ""}${x.e.failures > 0 ? " failed" : ""}">${lead(
      x,
      isTotal,
    )}${cells.join("")}</tr>`;
  const table = (id: string, head: string[], line: (x: Prepared) => string[]) =>
    `<div class="scroll"><table id="${id}"><thead><tr><th>Type</th><th>Name</th>${head
      .map((h) => `<th class="num">${esc(h)}</th>`)
      .join("")}</tr></thead><tbody>${rows.map((x) => tr(x, false, line(x))).join("")}</tbody><tfoot>${tr(
      total,
      true,
      line(total),
    )}</tfoot></table></div>`;

  const stats = table(
    "endpoints",
    [
      "Requests",
      "Failures",
      "RPS",
      "Mean",
      "Min",
      "p50",
      "p95",
      "p99",
      "Max",
      ...(hasTtfb ? ["TTFB p50", "TTFB p95", "TTFB p99"] : []),
      ...(hasCorrected ? ["Corrected p50", "Corrected p95", "Corrected p99"] : []),
    ],
    (x) => {
      const e = x.e;
      const c = e.correctedLatencyMs;
      return [
        cell(fmtNum(e.requests), "requests", e.requests),
        cell(`${fmtNum(e.failures)} (${pct(e.failures, e.requests)})`, "failures", e.failures),
        cell(e.rps.toFixed(1), "rps", e.rps),
        ms(x, e.latencyMs.mean, "mean"),
        ms(x, e.latencyMs.min, "min"),
        ms(x, e.latencyMs.p50, "p50"),
        ms(x, e.latencyMs.p95, "p95"),
        ms(x, e.latencyMs.p99, "p99"),
        ms(x, e.latencyMs.max, "max"),
        ...(hasTtfb
          ? [
              ms(x, e.ttfbMs.p50, "ttfb_p50"),
              ms(x, e.ttfbMs.p95, "ttfb_p95"),
              ms(x, e.ttfbMs.p99, "ttfb_p99"),
            ]
          : []),
        ...(hasCorrected
          ? [ms(x, c?.p50, "corrected_p50"), ms(x, c?.p95, "corrected_p95"), ms(x, c?.p99, "corrected_p99")]
          : []),
      ];
    },
  );
  const percentiles = table(
    "percentiles",
    PERCENTILES.map((p) => (p === 100 ? "100% (max)" : `${p}%`)),
    (x) => PERCENTILES.map((p, i) => ms(x, x.percentiles[i] ?? null, pctCol(p))),
  );
  return `${stats}<h3>Response time percentiles (ms)</h3>${percentiles}`;
}

function statusTable(r: RunResult): string {
  const codes = Object.keys(r.totals.statusCodes).sort((a, b) => Number(a) - Number(b));
  if (codes.length === 0) return "";
  const cls = (code: string) => (code === "0" ? "bad" : Number(code) >= 400 ? "bad" : "");
  const line = (key: string, sc: Record<string, number>, total = false) =>
    `<tr data-endpoint="${esc(key)}"${total ? ' class="total"' : ""}><td class="name">${esc(key)}</td>${codes
      .map((c) => cell(sc[c] ? fmtNum(sc[c]) : "", c, sc[c] ?? 0))
      .join("")}</tr>`;
  return `<div class="scroll"><table id="status-codes"><thead><tr><th>Endpoint</th>${codes
    .map((c) => `<th class="num ${cls(c)}">${c === "0" ? "no response" : esc(c)}</th>`)
    .join("")}</tr></thead><tbody>${r.endpoints
    .map((e) => line(endpointLabel(e), e.statusCodes))
    .join("")}</tbody><tfoot>${line(AGGREGATED, r.totals.statusCodes, true)}</tfoot></table></div>`;
}

function failuresTable(r: RunResult): string {
  if (r.failures.length === 0) return `<p class="ok-note" id="no-failures">No failures.</p>`;
  return `<div class="scroll"><table id="failures"><thead><tr><th class="num">Count</th><th>Endpoint</th><th>Error</th></tr></thead><tbody>${r.failures
    .map(
      (f) =>
        `<tr data-endpoint="${esc(`${f.method} ${f.name}`)}">${cell(fmtNum(f.occurrences), "occurrences", f.occurrences)}<td>${esc(
          `${f.method} ${f.name}`,
        )}</td><td class="error">${esc(f.error)}</td></tr>`,
    )
    .join("")}</tbody></table></div>`;
}

function exceptionsList(r: RunResult): string {
  return `<div id="exceptions">${r.exceptions
    .map(
      (x) =>
        `<details class="exception"><summary><span class="count">${fmtNum(x.count)}×</span> <code>${esc(
          x.message,
        )}</code> <span class="where">in ${esc(x.where)}</span></summary><pre>${esc(x.traceback)}</pre></details>`,
    )
    .join("")}</div>`;
}

const mark = (ok: boolean) =>
  ok ? `<span class="pass" title="passed">✓ pass</span>` : `<span class="fail" title="failed">✗ fail</span>`;

function formatMetricValue(metric: string, v: number): string {
  if (
    metric === "error_rate" ||
    metric === "checks" ||
    metric.endsWith("rate") ||
    metric === "slo_attainment"
  )
    return `${(v * 100).toFixed(2)}%`;
  if (metric === "goodput" || metric === "output_token_goodput") return `${v.toFixed(2)}/s`;
  if (metric === "rps") return `${v.toFixed(1)}/s`;
  if (metric === "requests" || metric === "failures") return String(v);
  return `${v.toFixed(2)} ms`;
}

/** One row for goodput against --slo, one for the open model's dispatch delay. */
function servingTable(r: RunResult): string {
  const rows: string[] = [];
  const g = r.goodput;
  if (g) {
    rows.push(
      `<tr data-row="goodput"><td>Goodput (${esc(formatSlo(g.slos))})</td>${cell(
        `${g.requests} of ${g.judged} streams`,
        "good",
        g.requests,
      )}${cell(`${g.perSec.toFixed(2)}/s`, "per_sec", g.perSec)}${cell(
        `${(g.attainment * 100).toFixed(2)}%`,
        "attainment",
        g.attainment,
      )}${cell(`${g.outputTokensPerSec.toFixed(1)} tokens/s`, "output_tokens_per_sec", g.outputTokensPerSec)}</tr>`,
    );
  }
  const d = r.totals.dispatchDelayMs;
  if (d) {
    rows.push(
      `<tr data-row="dispatch_delay"><td>Dispatch delay</td>${cell(`${d.count} iterations`, "count", d.count)}${cell(
        `p50 ${formatMs(d.p50)} ms`,
        "p50",
        d.p50,
      )}${cell(`p95 ${formatMs(d.p95)} ms`, "p95", d.p95)}${cell(`p99 ${formatMs(d.p99)} ms`, "p99", d.p99)}</tr>`,
    );
  }
  return `<table id="serving"><tbody>${rows.join("")}</tbody></table>`;
}

function thresholdsTable(r: RunResult): string {
  const th = r.thresholds ?? [];
  return `<table id="thresholds"><thead><tr><th>Result</th><th>Threshold</th><th class="num">Measured</th><th class="num">Target</th></tr></thead><tbody>${th
    .map(
      (t) =>
        `<tr data-threshold="${esc(t.expr)}" data-passed="${t.passed}"><td>${mark(t.passed)}</td><td><code>${esc(
          t.expr,
        )}</code>${t.abortOnFail ? ' <span class="tag">abortOnFail</span>' : ""}</td>${cell(
          t.value === null ? (t.note ?? "no value") : formatMetricValue(t.metric, t.value),
          "value",
          t.value,
        )}${cell(`${t.op} ${formatMetricValue(t.metric, t.target)}`, "target", t.target)}</tr>`,
    )
    .join("")}</tbody></table>`;
}

function checksTable(r: RunResult): string {
  return `<table id="checks"><thead><tr><th>Check</th><th class="num">Passes</th><th class="num">Fails</th><th class="num">Rate</th></tr></thead><tbody>${(
    r.checks ?? []
  )
    .map(
      (c) =>
        `<tr data-check="${esc(c.name)}"${c.fails > 0 ? ' class="failed"' : ""}><td>${c.fails > 0 ? "✗" : "✓"} ${esc(
          c.name,
        )}</td>${cell(fmtNum(c.passes), "passes", c.passes)}${cell(fmtNum(c.fails), "fails", c.fails)}${cell(
          `${(c.rate * 100).toFixed(2)}%`,
          "rate",
          c.rate,
        )}</tr>`,
    )
    .join("")}</tbody></table>`;
}

function comparisonSection(r: RunResult): string {
  const c = r.comparison!;
  const v = (row: ComparisonRow, x: number | null) =>
    x === null
      ? "—"
      : row.metric === "error_rate"
        ? `${(x * 100).toFixed(2)}%`
        : row.metric === "rps"
          ? x.toFixed(1)
          : formatMs(x);
  const rows = c.rows
    .map(
      (row) =>
        `<tr data-endpoint="${esc(row.endpoint)}" data-metric="${row.metric}" data-verdict="${row.verdict}" class="verdict-${row.verdict}"><td>${esc(
          row.endpoint,
        )}</td><td>${row.metric}</td>${cell(v(row, row.baseline), "baseline", row.baseline)}${cell(
          v(row, row.current),
          "current",
          row.current,
        )}${cell(row.deltaPct === null ? "—" : `${row.deltaPct > 0 ? "+" : ""}${row.deltaPct.toFixed(1)}%`, "delta", row.deltaPct)}<td class="verdict">${esc(
          row.verdict,
        )}</td><td class="note">${esc(row.note ?? "")}</td></tr>`,
    )
    .join("");
  const tol = Object.entries(c.tolerances)
    .map(([k, x]) => `${k} ±${Math.round(x * 100)}%`)
    .join(", ");
  return `<p>Verdict: <strong class="verdict-${c.verdict}" id="comparison-verdict">${esc(c.verdict)}</strong> — baseline <code>${esc(
    c.baseline.label,
  )}</code> (${esc(c.baseline.startedAt)}, ${fmtDuration(c.baseline.durationSec)}) vs <code>${esc(
    c.current.label,
  )}</code>. Tolerances: ${esc(tol)}.</p><div class="scroll"><table id="comparison-rows"><thead><tr><th>Endpoint</th><th>Metric</th><th class="num">Baseline</th><th class="num">Current</th><th class="num">Δ</th><th>Verdict</th><th>Note</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

function findingsList(r: RunResult): string {
  const recs = r.recommendations ?? [];
  if (recs.length === 0) return `<p class="ok-note" id="no-findings">Nothing stood out.</p>`;
  return `<ul id="findings-list">${recs
    .map(
      (x) =>
        `<li data-kind="${esc(x.kind)}"><span class="kind kind-${esc(x.kind)}">${esc(x.kind)}</span>${
          x.subject ? ` <code>${esc(x.subject)}</code>` : ""
        } ${esc(x.message)}</li>`,
    )
    .join("")}</ul>`;
}

function warningsList(r: RunResult): string {
  return `<ul id="warnings-list">${r.warnings
    .map(
      (w) =>
        `<li data-kind="${esc(w.kind)}"><span class="kind">${esc(w.kind)}</span> ${esc(w.at)}: ${esc(w.message)}</li>`,
    )
    .join("")}</ul>`;
}

function scenariosTable(r: RunResult): string {
  return `<table id="scenarios"><thead><tr><th>Scenario</th><th>Model</th><th class="num">Starts at</th><th class="num">Duration</th><th class="num">Requests</th><th class="num">Failures</th><th class="num">p95</th><th>Stop reason</th></tr></thead><tbody>${(
    r.scenarios ?? []
  )
    .map(
      (s) =>
        `<tr data-scenario="${esc(s.name)}"><td>${esc(s.name)}</td><td>${esc(s.model)}</td>${cell(
          s.startOffsetSec === null ? "—" : `${s.startOffsetSec.toFixed(1)} s`,
          "start",
          s.startOffsetSec,
        )}${cell(fmtDuration(s.durationSec), "duration", s.durationSec)}${cell(fmtNum(s.totals.requests), "requests", s.totals.requests)}${cell(
          `${fmtNum(s.totals.failures)} (${pct(s.totals.failures, s.totals.requests)})`,
          "failures",
          s.totals.failures,
        )}${cell(`${formatMs(s.totals.latencyMs.p95)} ms`, "p95", s.totals.latencyMs.p95)}<td>${esc(s.stopReason)}</td></tr>`,
    )
    .join("")}</tbody></table>`;
}

function burstsTable(bursts: ShownBurst[]): string {
  const scenarios = bursts.some((b) => b.scenario !== undefined);
  return `<table id="bursts"><thead><tr><th class="num">At</th>${scenarios ? "<th>Scenario</th>" : ""}<th class="num">Users</th><th class="num">Recovered after</th></tr></thead><tbody>${bursts
    .map(
      (b) =>
        `<tr>${cell(`${b.runT.toFixed(1)} s`, "t", b.runT)}${scenarios ? `<td>${esc(b.scenario ?? "")}</td>` : ""}${cell(String(b.count), "count", b.count)}${cell(
          b.recoverySec === null ? "never" : `${b.recoverySec} s`,
          "recovery",
          b.recoverySec,
        )}</tr>`,
    )
    .join("")}</tbody></table>`;
}

/** The soak verdicts as the summary words them, a flagged line marked; the method is in docs/soak.md. */
function soakTable(soak: SoakResult): string {
  const notes =
    soak.notes.length > 0 ? `<p class="note" id="soak-notes">${soak.notes.map(esc).join("; ")}.</p>` : "";
  return `<table id="soak">${soakRows(soakLines(soak))}</table>${notes}`;
}

/** A scenario's soak verdicts worth a look, as the summary lists them; empty when there are none. */
function scenarioSoakTables(r: RunResult): string {
  return scenarioSoakFlags(r.scenarios)
    .map(
      (x) =>
        `<h3>Scenario ${esc(x.name)} (times from its start)</h3><table class="soak-scenario" data-scenario="${esc(x.name)}">${soakRows(x.lines)}</table>`,
    )
    .join("");
}

function soakRows(lines: readonly SoakLine[]): string {
  return `<thead><tr><th>Verdict</th><th>Measured</th></tr></thead><tbody>${lines
    .map(
      (x) =>
        `<tr data-soak="${x.label}"${x.flagged ? ' class="failed"' : ""}><td${x.flagged ? ' class="fail"' : ""}>${x.flagged ? "! " : ""}${esc(x.label)}</td><td>${esc(x.text)}</td></tr>`,
    )
    .join("")}</tbody>`;
}

function tagsTable(r: RunResult): string {
  return `<table id="tags"><thead><tr><th>Tag</th><th class="num">Requests</th><th class="num">Failures</th><th class="num">RPS</th><th class="num">p50</th><th class="num">p95</th><th class="num">p99</th></tr></thead><tbody>${(
    r.tags ?? []
  )
    .map(
      (t) =>
        `<tr data-tag="${esc(t.tag)}"><td>${esc(t.tag)}</td>${cell(fmtNum(t.requests), "requests", t.requests)}${cell(
          `${fmtNum(t.failures)} (${pct(t.failures, t.requests)})`,
          "failures",
          t.failures,
        )}${cell(t.rps.toFixed(1), "rps", t.rps)}${cell(formatMs(t.latencyMs.p50), "p50", t.latencyMs.p50)}${cell(
          formatMs(t.latencyMs.p95),
          "p95",
          t.latencyMs.p95,
        )}${cell(formatMs(t.latencyMs.p99), "p99", t.latencyMs.p99)}</tr>`,
    )
    .join("")}</tbody></table>`;
}

/** Streaming and protocol metrics (ttft, itl, rtt, ...) and counters, per endpoint. */
function metricsTable(r: RunResult): string {
  const rows: string[] = [];
  for (const e of r.endpoints) {
    const label = `${e.type} ${`${e.method} ${e.name}`.trim()}`;
    for (const [k, m] of Object.entries(e.metrics ?? {})) {
      const unit =
        k.endsWith("_per_sec") || k.endsWith("_tokens") || k === "polls"
          ? (x: number) => x.toFixed(2)
          : formatMs;
      rows.push(
        `<tr data-endpoint="${esc(label)}" data-metric="${esc(k)}"><td>${esc(e.type)}</td><td>${esc(
          `${e.method} ${e.name}`.trim(),
        )}</td><td>${esc(k)}</td>${cell(fmtNum(m.count), "count", m.count)}${(
          ["p50", "p90", "p95", "p99", "max", "mean"] as const
        )
          .map((s) => cell(unit(m[s]), s, m[s]))
          .join("")}</tr>`,
      );
    }
  }
  const counters = r.endpoints
    .filter((e) => e.counters && Object.keys(e.counters).length > 0)
    .map(
      (e) =>
        `<li data-endpoint="${esc(`${e.type} ${`${e.method} ${e.name}`.trim()}`)}"><b>${esc(e.type)} ${esc(
          `${e.method} ${e.name}`.trim(),
        )}</b>: ${Object.entries(e.counters ?? {})
          .map(([k, n]) => `${esc(k)} ${fmtNum(n)}`)
          .join(", ")}</li>`,
    );
  const table =
    rows.length > 0
      ? `<table id="metrics"><thead><tr><th>Type</th><th>Name</th><th>Metric</th><th class="num">Count</th><th class="num">p50</th><th class="num">p90</th><th class="num">p95</th><th class="num">p99</th><th class="num">Max</th><th class="num">Mean</th></tr></thead><tbody>${rows.join("")}</tbody></table>`
      : "";
  return `${table}${counters.length > 0 ? `<ul class="counters">${counters.join("")}</ul>` : ""}`;
}

function loadChartTitle(model: string): string {
  if (model === "open") return "Arrival rate and dropped iterations";
  if (model === "mixed") return "Users, arrival rate and dropped iterations";
  return "Users";
}

const STYLE = `
:root{--fg:#1d2330;--muted:#5f6b7a;--line:#dde2e8;--bg:#fff;--panel:#f6f8fa;--ok:#1a7f37;--bad:#c9302c;--warn:#9a6700;--accent:#2f6fde}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:1280px;margin:0 auto;padding:24px 28px 48px}
header h1{margin:0 0 4px;font-size:22px}
header .sub{color:var(--muted);margin:0 0 16px}
h2{font-size:17px;margin:0 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
section{margin:28px 0;break-inside:avoid-page}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
dl.meta{display:grid;grid-template-columns:max-content minmax(0,1fr) max-content minmax(0,1fr);gap:3px 16px;margin:0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;overflow-wrap:anywhere}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:8px 0 4px}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:120px;background:var(--panel)}
.card .label{color:var(--muted);font-size:12px}.card .value{font-size:19px;font-weight:600}
.card.bad .value{color:var(--bad)}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:4px 7px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
th{background:var(--panel);font-weight:600;font-size:12.5px}
td.num,th.num{text-align:right}
td.name{white-space:normal;min-width:14em;word-break:break-word}
td.error,td.note{white-space:normal;word-break:break-word}
section h3{font-size:14px;margin:18px 0 6px}
tfoot td,tr.total td{font-weight:600;border-top:2px solid var(--line)}
tr.failed td[data-col="failures"],th.bad{color:var(--bad)}
.pass{color:var(--ok);font-weight:600}.fail{color:var(--bad);font-weight:600}
strong.verdict-regression,.verdict-regression .verdict{color:var(--bad);font-weight:600}
.verdict-improvement .verdict,strong.verdict-pass{color:var(--ok);font-weight:600}
strong.verdict-inconclusive,.verdict-inconclusive .verdict,.verdict-noise .verdict{color:var(--warn)}
.note,.ok-note{color:var(--muted)}
.charts{display:grid;grid-template-columns:1fr;gap:18px}
.chart h3{margin:0 0 4px}
.controls{margin:0 0 10px}
select{font:inherit;padding:3px 6px}
details.exception{border:1px solid var(--line);border-radius:6px;padding:6px 10px;margin:6px 0}
details.exception summary{cursor:pointer}
details.exception pre{overflow-x:auto;background:var(--panel);padding:8px;margin:8px 0 0}
.count{font-weight:600}.where{color:var(--muted)}
ul{padding-left:20px}li{margin:4px 0}
.kind{display:inline-block;font-size:11.5px;text-transform:uppercase;letter-spacing:.03em;background:var(--panel);border:1px solid var(--line);border-radius:4px;padding:0 5px;margin-right:4px;color:var(--muted)}
.kind-threshold,.kind-regression,.kind-errors{color:var(--bad)}
.tag{font-size:11.5px;color:var(--muted)}
.dist-caption{color:var(--muted);margin:2px 0 0}
footer{color:var(--muted);font-size:12px;margin-top:36px}
@media print{main{padding:0;max-width:none}.uplot,.uplot .u-wrap,.uplot canvas{width:100%!important;height:auto!important}.u-over,.u-under{display:none}.controls select{border:none;appearance:none}section{margin:18px 0}.scroll{overflow:visible}}
`;

function readAsset(specifier: string): string {
  return readFileSync(createRequire(import.meta.url).resolve(specifier), "utf8");
}

/** The opening of a self-contained page up to `<main>`: meta, title, uPlot's style and `style`. */
export function pageStart(title: string, version: string, style: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Cicada ${esc(version)}">
<title>${esc(title)}</title>
<style>${readAsset("uplot/dist/uPlot.min.css")}</style>
<style>${style}</style>
</head>
<body>
<main>`;
}

/** uPlot itself, inline, for a page's charts. */
export function uplotScript(): string {
  return `<script>${inlineScript(readAsset("uplot/dist/uPlot.iife.min.js"))}</script>`;
}

function clientScript(): string {
  const path = fileURLToPath(new URL("./client.js", import.meta.url));
  try {
    // Compiled from client.ts beside this file; the map comment would point the browser's
    // devtools at a file that is not there.
    return readFileSync(path, "utf8").replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n");
  } catch (err) {
    throw new Error(`the HTML report's script is missing (${path}); build the project first`, { cause: err });
  }
}

/**
 * One self-contained HTML page for a run: every script, style and datum is inline, so it opens
 * offline and can be attached to a CI job as a single file.
 */
export function renderHtmlReport(result: RunResult): string {
  const { rows, total, data } = prepare(result);
  const r = result;
  const title = `Cicada report: ${typeof r.config.loadfile === "string" ? r.config.loadfile.split(/[\\/]/).pop() : "run"}`;
  const started = r.startedAt.replace("T", " ").replace(/\.\d+Z$/, " UTC");
  const options = [
    `<option value="all">All endpoints</option>`,
    ...rows.map((x, i) => `<option value="${i}">${esc(x.key)}</option>`),
  ].join("");
  const bursts = shownBursts(r);
  const scenarioSoak = scenarioSoakTables(r);
  const sections = [
    section("run", "Run", metadata(r)),
    r.scenarios && r.scenarios.length > 0 ? section("scenarios-section", "Scenarios", scenariosTable(r)) : "",
    section(
      "charts",
      "Over time",
      `<div class="controls"><label>Endpoint <select id="series-endpoint">${options}</select></label></div>
<div class="charts">
<div class="chart"><h3>Requests and failures per second</h3><div id="chart-throughput"></div></div>
<div class="chart"><h3>Response time (ms)</h3><div id="chart-latency"></div></div>
<div class="chart"><h3>${esc(loadChartTitle(data.model))}</h3><div id="chart-load"></div></div>
${data.resources
  .map((c) => `<div class="chart"><h3>${esc(c.title)}</h3><div id="chart-res-${esc(c.id)}"></div></div>`)
  .join("\n")}
</div>`,
    ),
    bursts.length > 0 ? section("bursts-section", "Bursts", burstsTable(bursts)) : "",
    (r.soak && soakWorthShowing(r.soak)) || scenarioSoak
      ? section(
          "soak-section",
          "Soak verdicts",
          (r.soak && soakWorthShowing(r.soak) ? soakTable(r.soak) : "") + scenarioSoak,
          "Steady part: after the ramp-up, before the ramp-down. Degradation compares its first and last windows (exact p95); memory slopes are Theil–Sen fits with 95% intervals; recovery is the time until the error rate and p95 are back to their level of the 10 s before.",
        )
      : "",
    section(
      "endpoints-section",
      "Endpoints",
      endpointTables(rows, total),
      "Response times in ms. Percentiles come from each endpoint's histogram (±0.1 %); min, mean and max are exact.",
    ),
    section(
      "distribution",
      "Response time distribution",
      `<div class="controls"><label>Endpoint <select id="dist-endpoint"><option value="all">All endpoints</option>${rows
        .map((x, i) => `<option value="${i}">${esc(x.key)}</option>`)
        .join(
          "",
        )}</select></label></div><div id="chart-distribution"></div><p class="dist-caption" id="dist-caption"></p>`,
      "Requests per latency bin; bins are log-spaced between the fastest and the slowest request.",
    ),
    section("status-section", "Status codes", statusTable(r) || `<p class="note">No responses.</p>`),
    section("failures-section", "Failures", failuresTable(r)),
    r.exceptions.length > 0 ? section("exceptions-section", "Exceptions", exceptionsList(r)) : "",
    r.thresholds && r.thresholds.length > 0
      ? section("thresholds-section", "Thresholds", thresholdsTable(r))
      : "",
    r.endpoints.some((e) => e.metrics || e.counters)
      ? section(
          "metrics-section",
          "Streaming and protocol metrics",
          metricsTable(r),
          "Times in ms (ttft: time to first token, itl: inter-token latency, tpot: time per output token after the first, e2el: end-to-end latency, ttfe: time to first event, gap: between events, rtt: message round trip); rates per second.",
        )
      : "",
    r.goodput || r.totals.dispatchDelayMs
      ? section(
          "serving-section",
          "Goodput and dispatch delay",
          servingTable(r),
          "Goodput: streams that completed and met every SLO (inclusive), per second of the run; attainment: their fraction of the streams judged. Dispatch delay: actual minus scheduled start of each open-model iteration.",
        )
      : "",
    r.checks && r.checks.length > 0 ? section("checks-section", "Checks", checksTable(r)) : "",
    r.tags && r.tags.length > 0 ? section("tags-section", "Tags", tagsTable(r)) : "",
    r.comparison ? section("comparison", "Baseline comparison", comparisonSection(r)) : "",
    section("findings", "Findings", findingsList(r)),
    r.warnings.length > 0 ? section("warnings", "Warnings", warningsList(r)) : "",
  ];
  return `${pageStart(title, r.version, STYLE)}
<header><h1>${esc(title)}</h1><p class="sub">${esc(started)} · ${esc(fmtDuration(r.durationSec))} · ${esc(
    String(r.config.model ?? "closed"),
  )} model · stopped by ${esc(r.stopReason)}</p>${headline(r)}</header>
${sections.filter(Boolean).join("\n")}
<footer>Written by Cicada ${esc(r.version)}. The data behind the charts is embedded in this file.</footer>
</main>
<script type="application/json" id="report-data">${embedJson(data)}</script>
${uplotScript()}
<script type="module">${inlineScript(clientScript())}</script>
</body>
</html>
`;
}
