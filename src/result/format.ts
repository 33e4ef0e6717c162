// How a metric's value reads, shared by the console summary, the HTML report and the findings.

/** Bytes in KB, MB or GB (1024s), as memory tools show them. */
export function formatBytes(v: number): string {
  const a = Math.abs(v);
  if (a >= 1024 ** 3) return `${(v / 1024 ** 3).toFixed(2)} GB`;
  if (a >= 1024 ** 2) return `${(v / 1024 ** 2).toFixed(1)} MB`;
  if (a >= 1024) return `${(v / 1024).toFixed(1)} KB`;
  return `${Math.round(v)} B`;
}

/** A signed percentage: "+3.8%", "-12.0%". */
export function formatChange(pct: number): string {
  return `${pct > 0 ? "+" : ""}${pct.toFixed(1)}%`;
}

/** A threshold's measured value in its metric's unit. */
export function formatMetric(metric: string, v: number): string {
  if (metric === "error_rate" || metric === "checks" || metric === "slo_attainment")
    return `${(v * 100).toFixed(2)}%`;
  if (metric === "goodput" || metric === "output_token_goodput") return `${v.toFixed(2)}/s`;
  if (metric === "degradation" || metric === "rps_degradation") return `${(v * 100).toFixed(1)}%`;
  if (metric === "recovery") return `${v.toFixed(1)} s`;
  if (metric === "rps_cv") return v.toFixed(3);
  if (metric.endsWith("_slope")) return `${formatBytes(v)}/min`;
  if (/^(target|generator)_cpu_/.test(metric)) return `${v.toFixed(1)}%`;
  if (/^(target|generator)_rss_/.test(metric)) return formatBytes(v);
  if (metric === "rps") return `${v.toFixed(1)}/s`;
  if (metric === "requests" || metric === "failures") return String(v);
  // Further metrics that are not times: rates and counts per item.
  if (/(^|_)(tokens_per_sec|polls|output_tokens|input_tokens)(_|$)/.test(metric)) return v.toFixed(2);
  return `${v.toFixed(2)} ms`;
}
