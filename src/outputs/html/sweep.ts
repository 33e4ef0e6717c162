/**
 * A sweep's HTML report: one self-contained page with the throughput–latency curve (uPlot, as the
 * run report draws), the per-level table and the knee. Every script and datum is inline.
 */
import type { SweepResult } from "../../result/sweep.js";
import { verdictLines } from "../sweep.js";
import { embedJson, esc, inlineScript, pageStart, uplotScript } from "./report.js";

/** What the page's script plots: levels that ran, by successful throughput. */
export interface SweepChartData {
  /** Successful req/s of each level that measured something, ascending. */
  rps: number[];
  p50: number[];
  p95: number[];
  p99: number[];
  /** Level numbers (1-based) of the points, for the tooltip-free legend. */
  level: number[];
  /** The knee's point, if any. */
  knee: { rps: number; p95: number } | null;
}

export function sweepChartData(r: SweepResult): SweepChartData {
  const pts = r.sweep.levels
    .filter((l) => l.status !== "not-run" && l.requests > 0)
    .sort((a, b) => a.okRps - b.okRps || a.index - b.index);
  const k = r.sweep.knee;
  return {
    rps: pts.map((l) => l.okRps),
    p50: pts.map((l) => l.latencyMs.p50),
    p95: pts.map((l) => l.latencyMs.p95),
    p99: pts.map((l) => l.latencyMs.p99),
    level: pts.map((l) => l.index + 1),
    knee: k ? { rps: k.rps, p95: k.p95Ms } : null,
  };
}

/** Draws the curve; exposed as window.cicadaSweep = { chart, data } for tests and the console. */
const CLIENT = `
const data = JSON.parse(document.getElementById("sweep-data").textContent);
const el = document.getElementById("chart-curve");
const knee = data.knee;
const opts = {
  width: Math.max(320, el.clientWidth || 900), height: 340,
  scales: { x: { time: false } },
  axes: [{ label: "successful req/s" }, { label: "ms" }],
  series: [
    { label: "req/s" },
    { label: "p50", stroke: "#2b8a3e", points: { show: true } },
    { label: "p95", stroke: "#e8590c", points: { show: true } },
    { label: "p99", stroke: "#c92a2a", points: { show: true } },
  ],
  hooks: { draw: [(u) => {
    if (!knee) return;
    const x = u.valToPos(knee.rps, "x", true);
    const ctx = u.ctx;
    ctx.save(); ctx.strokeStyle = "#555"; ctx.setLineDash([5, 4]);
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
    ctx.restore();
  }] },
};
const chart = new uPlot(opts, [data.rps, data.p50, data.p95, data.p99], el);
window.cicadaSweep = { chart, data };
`;

const STYLE = `body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#222}main{max-width:1100px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}.sub{color:#666;margin:0 0 18px}table{border-collapse:collapse;width:100%}
th,td{padding:4px 8px;border-bottom:1px solid #ddd;text-align:right;white-space:nowrap}th:nth-child(2),td:nth-child(2),td:last-child{text-align:left}
tr.knee td{font-weight:600;background:#fff4e6}tr.not-run td{color:#999}.verdict li{margin:4px 0}footer{color:#888;font-size:12px;margin-top:30px}`;

function levelRows(r: SweepResult): string {
  const f = (x: number | undefined) => (x === undefined ? "-" : x >= 100 ? x.toFixed(0) : x.toFixed(1));
  return r.sweep.levels
    .map((l) => {
      const cls = l.status === "not-run" ? "not-run" : r.sweep.knee?.level === l.index ? "knee" : "";
      const load =
        l.kind === "synchronous"
          ? "sync (1 user)"
          : l.kind === "throughput"
            ? `max (${l.load} users)`
            : l.model === "closed"
              ? `${l.load} user${l.load === 1 ? "" : "s"}`
              : `${l.load}/s`;
      if (l.status === "not-run") {
        return `<tr class="${cls}"><td>${l.index + 1}</td><td>${esc(load)}</td><td colspan="10"></td><td>not run</td></tr>`;
      }
      const note = [
        r.sweep.knee?.level === l.index ? "knee" : "",
        l.status === "stopped" ? "stopped" : "",
        l.saturated ? "saturated" : "",
        l.sloMet === true ? "SLO ok" : l.sloMet === false ? "SLO missed" : "",
      ]
        .filter(Boolean)
        .join(", ");
      return `<tr class="${cls}"><td>${l.index + 1}</td><td>${esc(load)}</td><td>${l.requests}</td><td>${(l.successRate * 100).toFixed(1)}%</td><td>${f(l.latencyMs.p50)}</td><td>${f(l.latencyMs.p95)}</td><td>${f(l.latencyMs.p99)}</td><td>${l.rps.toFixed(1)}</td><td>${l.goodput?.perSec !== undefined ? l.goodput.perSec.toFixed(1) : "-"}</td><td>${f(l.ttftMs?.p50)}</td><td>${f(l.ttftMs?.p95)}</td><td>${f(l.tpotMs?.p95)}</td><td>${esc(note)}</td></tr>`;
    })
    .join("\n");
}

/** The sweep's page. */
export function renderSweepHtml(r: SweepResult): string {
  const file = typeof r.config.loadfile === "string" ? r.config.loadfile.split(/[\\/]/).pop() : "sweep";
  const title = `Cicada sweep: ${file}`;
  const started = r.startedAt.replace("T", " ").replace(/\.\d+Z$/, " UTC");
  return `${pageStart(title, r.version, STYLE)}
<h1>${esc(title)}</h1>
<p class="sub">${esc(started)} · ${esc(r.sweep.mode)} sweep · ${r.durationSec.toFixed(1)} s</p>
<ul class="verdict">${verdictLines(r)
    .map((x) => `<li>${esc(x)}</li>`)
    .join("")}</ul>
<section id="curve"><h2>Throughput and latency</h2><div id="chart-curve"></div>
<p class="sub">Response time percentiles of each level against the successful requests per second it reached; the dashed line marks the knee.</p></section>
<section id="levels"><h2>Levels</h2><table>
<thead><tr><th>#</th><th>Load</th><th>Reqs</th><th>Success</th><th>p50</th><th>p95</th><th>p99</th><th>RPS</th><th>Goodput/s</th><th>TTFT p50</th><th>TTFT p95</th><th>TPOT p95</th><th></th></tr></thead>
<tbody>
${levelRows(r)}
</tbody></table><p class="sub">Times in ms.</p></section>
<footer>Written by Cicada ${esc(r.version)}. The data behind the chart is embedded in this file.</footer>
</main>
<script type="application/json" id="sweep-data">${embedJson(sweepChartData(r))}</script>
${uplotScript()}
<script>${inlineScript(CLIENT)}</script>
</body>
</html>
`;
}
