import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import type { Column } from "./series";

const HEIGHT = 220;

export const COLORS = {
  rps: "#2f6fde",
  failures: "#c9302c",
  p50: "#2f9e44",
  p95: "#e8890c",
  p99: "#c9302c",
  users: "#6f42c1",
  iterations: "#2f6fde",
};

/** The live charts by id, for tests and the console: `window.cicadaUi.charts`. */
export const charts: Record<string, uPlot> = {};

declare global {
  interface Window {
    cicadaUi?: { charts: Record<string, uPlot> };
  }
}
window.cicadaUi = { charts };

export function fmt(v: number | null | undefined, digits = 2): string {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return Number.isInteger(v) ? String(v) : v.toFixed(digits);
}

export function clock(sec: number): string {
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(s % 60).padStart(2, "0")}`;
}

export function line(label: string, stroke: string, digits = 2, scale = "y"): uPlot.Series {
  return { label, stroke, width: 1.5, scale, points: { show: false }, value: (_u, v) => fmt(v, digits) };
}

// Whole seconds only: the rows are one a second, so "1.2s" would mark nothing.
const SECOND_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400];
export const timeAxis: uPlot.Axis = {
  incrs: SECOND_STEPS,
  values: (_u, splits) => splits.map((s) => (s === null ? "" : clock(s))),
};
export const timeX: uPlot.Series = { label: "time", value: (_u, v) => (v === null ? "—" : clock(v)) };

interface ChartProps {
  id: string;
  title: string;
  /** Changing it rebuilds the chart (the series differ); data alone only updates it. */
  layout: string;
  options: () => Omit<uPlot.Options, "width" | "height">;
  data: Column[];
}

export function Chart({ id, title, layout, options, data }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const latest = useRef(data);
  latest.current = data;

  useEffect(() => {
    const el = box.current!;
    const u = new uPlot(
      { ...options(), width: Math.max(240, el.clientWidth), height: HEIGHT },
      latest.current as uPlot.AlignedData,
      el,
    );
    plot.current = u;
    charts[id] = u;
    const ro = new ResizeObserver(() => {
      if (el.clientWidth > 0) u.setSize({ width: el.clientWidth, height: HEIGHT });
    });
    ro.observe(el);
    return () => {
      ro.disconnect();
      u.destroy();
      plot.current = null;
      if (charts[id] === u) delete charts[id];
    };
  }, [id, layout]);

  useEffect(() => {
    const u = plot.current;
    if (!u) return;
    u.setData(data as uPlot.AlignedData);
    // Away from the cursor the legend shows the latest second, which is what a live view wants.
    const n = data[0]?.length ?? 0;
    if (n > 0 && (u.cursor.left ?? -1) < 0) u.setLegend({ idx: n - 1 });
  }, [data]);

  return (
    <figure class="chart" data-chart={id}>
      <figcaption>{title}</figcaption>
      <div ref={box} class="plot" />
    </figure>
  );
}
