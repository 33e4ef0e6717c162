/**
 * The HTML report's script, run in the browser. report.ts inlines its compiled form after uPlot's
 * own script, which defines the `uPlot` global; it reads the data report.ts embedded as JSON in
 * `#report-data` and draws the charts.
 *
 * For tests and anyone poking at a report in the console, the charts are exposed as
 * `window.cicadaReport = { charts: { throughput, latency, load, distribution, res-cpu, … }, data }`, each
 * chart a uPlot instance whose `data` holds what it plots (`data[0]` the x values).
 *
 * Type-only imports are erased, so the compiled file refers to nothing but the page. The project
 * compiles for Node without the DOM library (a `/// <reference lib="dom" />` here would add the
 * DOM's globals to every file of the program), so the little of the DOM used here is declared
 * below instead.
 */
import type UPlot from "uplot";
import type { ChartSeries, ReportData, ReportEndpoint } from "./report.js";

interface PageElement {
  textContent: string | null;
  readonly clientWidth: number;
  addEventListener(type: "change", listener: () => void): void;
}
interface SelectElement extends PageElement {
  value: string;
}
interface CicadaReport {
  charts: Record<string, UPlot>;
  data: ReportData;
}

declare const uPlot: typeof UPlot;
declare const document: { getElementById(id: string): PageElement | null };
declare const window: {
  cicadaReport?: CicadaReport;
  addEventListener(type: "resize" | "beforeprint" | "afterprint", listener: () => void): void;
};

type Column = Array<number | null>;

const COLORS = {
  rps: "#2f6fde",
  failures: "#c9302c",
  p50: "#2f9e44",
  p95: "#e8890c",
  p99: "#c9302c",
  users: "#6f42c1",
  rate: "#2f6fde",
  dropped: "#c9302c",
  dist: "#2f6fde",
};
const HEIGHT = 240;
/** A4 portrait's printable width at 96 dpi, so printed charts are not cut at the margin. */
const PRINT_WIDTH = 680;

const data = JSON.parse(document.getElementById("report-data")?.textContent ?? "null") as ReportData;

function fmt(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined) return "—";
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

function line(label: string, stroke: string, digits = 2, scale = "y", dash?: number[]): UPlot.Series {
  return {
    label,
    stroke,
    width: 1.5,
    scale,
    points: { show: false },
    ...(dash ? { dash } : {}),
    value: (_u, v) => fmt(v, digits),
  };
}

function clock(sec: number): string {
  if (sec < 60) return `${sec}s`;
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s % 60).padStart(2, "0")}`;
}

// Whole seconds only: the rows are one a second, so "1.2s" would mark nothing.
const SECOND_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];
const timeAxis: UPlot.Axis = {
  incrs: SECOND_STEPS,
  values: (_u, splits) => splits.map((s) => (s === null ? "" : clock(s))),
};
const timeX: UPlot.Series = { label: "time", value: (_u, v) => (v === null ? "—" : clock(v)) };

function width(el: PageElement): number {
  return Math.max(320, el.clientWidth || 900);
}

const charts: Record<string, UPlot> = {};

/**
 * Shades the warm-up and cool-down (left out of the figures) on charts over the run's time, under
 * the lines, so the reader sees which seconds the totals do not count.
 */
const shadeWindows: UPlot.Plugin = {
  hooks: {
    drawClear: [
      (u) => {
        const ctx = u.ctx;
        ctx.save();
        ctx.fillStyle = "rgba(128, 128, 128, 0.15)";
        for (const w of data.windows ?? []) {
          const x0 = u.valToPos(w.from, "x", true);
          const x1 = u.valToPos(w.to, "x", true);
          const left = Math.max(u.bbox.left, Math.min(x0, x1));
          const right = Math.min(u.bbox.left + u.bbox.width, Math.max(x0, x1));
          if (right > left) ctx.fillRect(left, u.bbox.top, right - left, u.bbox.height);
        }
        ctx.restore();
      },
    ],
  },
};

function chart(id: string, opts: Omit<UPlot.Options, "width" | "height">, columns: Column[]): UPlot | null {
  const el = document.getElementById(`chart-${id}`);
  if (!el) return null;
  // Only charts over the run's time (not the latency distribution) have windows to shade.
  const timed = opts.scales?.x?.distr !== 3 && (data.windows?.length ?? 0) > 0;
  const u = new uPlot(
    {
      ...opts,
      ...(timed ? { plugins: [...(opts.plugins ?? []), shadeWindows] } : {}),
      width: width(el),
      height: HEIGHT,
    },
    columns as UPlot.AlignedData,
    el,
  );
  charts[id] = u;
  return u;
}

function throughputColumns(s: ChartSeries): Column[] {
  return [data.t, s.requests, s.failures];
}

function latencyColumns(s: ChartSeries): Column[] {
  return [data.t, s.p50, s.p95, s.p99];
}

const throughput = chart(
  "throughput",
  {
    scales: { x: { time: false } },
    series: [timeX, line("Requests/s", COLORS.rps, 1), line("Failures/s", COLORS.failures, 1)],
    axes: [timeAxis, { label: "per second" }],
  },
  throughputColumns(data.all),
);

const latency = chart(
  "latency",
  {
    scales: { x: { time: false } },
    series: [timeX, line("p50", COLORS.p50), line("p95", COLORS.p95), line("p99", COLORS.p99)],
    axes: [timeAxis, { label: "ms" }],
  },
  latencyColumns(data.all),
);

function loadChart(): void {
  const open = data.model === "open";
  const mixed = data.model === "mixed";
  const series: UPlot.Series[] = [timeX];
  const columns: Column[] = [data.t];
  if (!open) {
    series.push(line("Users", COLORS.users, 0, "users"));
    columns.push(data.all.users);
  }
  if (open || mixed) {
    series.push(line("Iterations/s", COLORS.rate, 1), line("Dropped/s", COLORS.dropped, 1, "y", [4, 3]));
    columns.push(data.all.iterations, data.all.dropped);
  }
  const axes: UPlot.Axis[] = [timeAxis];
  if (!open) axes.push({ scale: "users", label: "users" });
  if (open || mixed)
    axes.push({ scale: "y", label: "per second", side: mixed ? 1 : 3, grid: { show: !mixed } });
  chart(
    "load",
    {
      scales: { x: { time: false }, users: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      series,
      axes,
    },
    columns,
  );
}
loadChart();

/** Many series share a chart; each gets the next of these. */
const PALETTE = ["#2f6fde", "#e8890c", "#2f9e44", "#c9302c", "#6f42c1", "#17a2b8", "#8c6d1f", "#d63384"];

// The target's and the generator's resources, a chart per family, on the run's time axis.
for (const c of data.resources ?? []) {
  chart(
    `res-${c.id}`,
    {
      scales: { x: { time: false } },
      series: [
        timeX,
        ...c.series.map((s, i) => ({ ...line(s.label, PALETTE[i % PALETTE.length]!, 1), spanGaps: true })),
      ],
      axes: [timeAxis, { label: c.axis }],
    },
    [c.t, ...c.series.map((s) => s.values)],
  );
}

function selected(id: string): ReportEndpoint {
  const v = (document.getElementById(id) as SelectElement | null)?.value ?? "all";
  return v === "all" ? data.aggregated : (data.endpoints[Number(v)] ?? data.aggregated);
}

document.getElementById("series-endpoint")?.addEventListener("change", () => {
  const e = selected("series-endpoint");
  // The aggregated rows carry the run's own rps; an endpoint's rows count requests per second.
  const s = e === data.aggregated ? data.all : e.series;
  throughput?.setData(throughputColumns(s) as UPlot.AlignedData);
  latency?.setData(latencyColumns(s) as UPlot.AlignedData);
});

function distColumns(e: ReportEndpoint): Column[] {
  const d = e.distribution;
  // Each bar stands at the geometric middle of its bin, which is the middle on a log axis.
  // An empty bin gets no bar rather than a hairline at zero.
  return [d.lo.map((lo, i) => Math.sqrt(lo * d.hi[i]!)), d.counts.map((c) => (c > 0 ? c : null))];
}

function distCaption(e: ReportEndpoint): void {
  const el = document.getElementById("dist-caption");
  if (!el) return;
  el.textContent =
    e.requests === 0
      ? "No requests."
      : `${e.key}: ${e.requests} requests · p50 ${fmt(e.marks.p50)} ms · p95 ${fmt(e.marks.p95)} ms · p99 ${fmt(e.marks.p99)} ms`;
}

const bars = uPlot.paths.bars?.({ size: [0.92, Number.POSITIVE_INFINITY], align: 0 });
const distribution = chart(
  "distribution",
  {
    scales: { x: { time: false, distr: 3 }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
    series: [
      { label: "ms", value: (_u, v) => fmt(v) },
      {
        label: "Requests",
        stroke: COLORS.dist,
        fill: `${COLORS.dist}99`,
        width: 1,
        points: { show: false },
        ...(bars ? { paths: bars } : {}),
        value: (_u, v) => fmt(v, 0),
      },
    ],
    axes: [
      // uPlot hands a log axis null for the splits it leaves unlabelled.
      { label: "ms (log scale)", values: (_u, splits) => splits.map((s) => (s === null ? "" : fmt(s))) },
      { label: "requests" },
    ],
  },
  distColumns(data.aggregated),
);
distCaption(data.aggregated);

document.getElementById("dist-endpoint")?.addEventListener("change", () => {
  const e = selected("dist-endpoint");
  distribution?.setData(distColumns(e) as UPlot.AlignedData);
  distCaption(e);
});

function resize(print: boolean): void {
  for (const [id, u] of Object.entries(charts)) {
    const el = document.getElementById(`chart-${id}`);
    if (el) u.setSize({ width: print ? PRINT_WIDTH : width(el), height: HEIGHT });
  }
}

let pending = 0;
window.addEventListener("resize", () => {
  clearTimeout(pending);
  pending = setTimeout(() => resize(false), 100) as unknown as number;
});
window.addEventListener("beforeprint", () => resize(true));
window.addEventListener("afterprint", () => resize(false));

window.cicadaReport = { charts, data };
