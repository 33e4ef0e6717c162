// How a metric's value reads, shared by the console summary and the findings.

/** A threshold's measured value in its metric's unit. */
export function formatMetric(metric: string, v: number): string {
  if (metric === "error_rate" || metric === "checks") return `${(v * 100).toFixed(2)}%`;
  if (metric === "rps") return `${v.toFixed(1)}/s`;
  if (metric === "requests" || metric === "failures") return String(v);
  // Further metrics that are not times: rates and counts per item.
  if (/(^|_)(tokens_per_sec|polls)(_|$)/.test(metric)) return v.toFixed(2);
  return `${v.toFixed(2)} ms`;
}
