// `--tolerance`: how much worse a metric may get before a comparison calls it a regression.
import { UsageError } from "../core/errors.js";
import type { MetricName } from "../result/comparison.js";
import { METRICS } from "./compare.js";

function percentage(text: string, spec: string): number {
  const m = /^(\d+(?:\.\d+)?)%$/.exec(text.trim());
  if (!m) {
    throw new UsageError(`--tolerance "${spec}": expected a percentage such as 15%, got "${text.trim()}"`);
  }
  return Number(m[1]) / 100;
}

/**
 * `15%` sets every metric; `p99=20%,error_rate=50%` sets some; `15%,p99=30%` both, the named
 * metrics winning whatever the order. Returns fractions (0.15 for 15%).
 */
export function parseTolerances(spec: string): Partial<Record<MetricName, number>> {
  const parts = spec
    .split(",")
    .map((p) => p.trim())
    .filter((p) => p !== "");
  if (parts.length === 0) {
    throw new UsageError(`--tolerance: empty; expected e.g. 15% or p99=20%,error_rate=50%`);
  }
  const all: Partial<Record<MetricName, number>> = {};
  const named: Partial<Record<MetricName, number>> = {};
  for (const part of parts) {
    const eq = part.indexOf("=");
    if (eq < 0) {
      const t = percentage(part, spec);
      for (const m of METRICS) all[m] = t;
      continue;
    }
    const metric = part.slice(0, eq).trim();
    if (!(METRICS as readonly string[]).includes(metric)) {
      throw new UsageError(`--tolerance "${spec}": unknown metric "${metric}"; use ${METRICS.join(", ")}`);
    }
    named[metric as MetricName] = percentage(part.slice(eq + 1), spec);
  }
  return { ...all, ...named };
}
