/** Value formats shared by settings and their users: durations, name lists, worker counts. */
import { availableParallelism } from "node:os";
import { UsageError } from "./errors.js";

/** Parses Locust-style durations: "90", "30s", "5m", "1h30m", "1.5h". Returns seconds. */
export function parseDuration(text: string | number, flag = "--run-time"): number {
  // Config files and the web API may hand over any JSON value.
  if (typeof text !== "string") {
    if (typeof text === "number" && Number.isFinite(text) && text >= 0) return text;
    throw new UsageError(
      `${flag}: expected a duration such as 30s, 5m or 1h30m, got ${JSON.stringify(text) ?? String(text)}`,
    );
  }
  const s = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    if (m.index !== consumed) break;
    consumed += m[0].length;
    const v = Number(m[1]);
    total += m[2] === "h" ? v * 3600 : m[2] === "m" ? v * 60 : m[2] === "s" ? v : v / 1000;
  }
  if (consumed !== s.length || s.length === 0) {
    throw new UsageError(`${flag}: expected a duration such as 30s, 5m or 1h30m, got "${text}"`);
  }
  return total;
}

export function parseList(v: string | string[] | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = (Array.isArray(v) ? v : [v]).flatMap((x) => x.split(/[,\s]+/)).filter((x) => x.length > 0);
  return items;
}

/** The worker count a `processes` setting means: default and -1 are one per core. */
export function resolveProcesses(v: number | undefined): number {
  return v === undefined || v === -1 ? availableParallelism() : v;
}
