// Service-level objectives of streamed responses (--slo) and the judgement of one request against them.
import { UsageError } from "../core/errors.js";

/** Upper bounds in ms; a request is good when it meets every one given (inclusive, as vLLM). */
export interface Slo {
  ttft?: number;
  tpot?: number;
  e2el?: number;
}

/** What the loadfile or a config file may write: a string as on the command line, or bounds. */
export type SloConfig = string | { ttft?: string | number; tpot?: string | number; e2el?: string | number };

/** One finished stream's figures, in ms; ttft null without tokens, tpot null with fewer than 2. */
export interface StreamFigures {
  ok: boolean;
  ttft: number | null;
  tpot: number | null;
  e2el: number;
}

/** The other tools' names for the same figures. */
const NAMES: Record<string, keyof Slo> = {
  ttft: "ttft",
  time_to_first_token: "ttft",
  tpot: "tpot",
  time_per_output_token: "tpot",
  e2el: "e2el",
  e2e_latency: "e2el",
  request_latency: "e2el",
};

const EXAMPLE = `e.g. "ttft<500ms,tpot<50ms,e2el<10s"`;

/** A time: "500ms", "10s", or a plain number of ms. */
function time(name: string, part: string, v: string | number): number {
  const m =
    typeof v === "number" ? [String(v), String(v), "ms"] : /^(\d+(?:\.\d+)?)\s*(ms|s)?$/i.exec(v.trim());
  const n = m ? Number(m[1]) * ((m[2] ?? "ms").toLowerCase() === "s" ? 1000 : 1) : Number.NaN;
  if (!Number.isFinite(n) || n <= 0) {
    throw new UsageError(`${name}: "${part}" needs a time > 0 such as 500ms or 10s, ${EXAMPLE}`);
  }
  return n;
}

function key(name: string, part: string, word: string): keyof Slo {
  const k = NAMES[word.trim().toLowerCase()];
  if (!k) {
    throw new UsageError(
      `${name}: "${part}" names no known SLO "${word.trim()}"; known: ttft, tpot, e2el (also e2e_latency), ${EXAMPLE}`,
    );
  }
  return k;
}

/**
 * Parses `ttft<500ms,tpot<50ms,e2el<10s` (also `<=`, or vLLM's `ttft:500`), or an object of
 * bounds. `name` is how the user wrote the setting; every error starts with it.
 */
export function parseSlo(v: unknown, name: string): Slo {
  const slo: Slo = {};
  if (typeof v === "object" && v !== null && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (typeof x !== "string" && typeof x !== "number") {
        throw new UsageError(`${name}: ${k} needs a time such as "500ms", got ${JSON.stringify(x)}`);
      }
      slo[key(name, k, k)] = time(name, `${k}: ${x}`, x);
    }
  } else if (typeof v === "string") {
    for (const raw of v.split(/[,;]/)) {
      const part = raw.trim();
      if (part === "") continue;
      const m = /^([a-z_0-9]+)\s*(<=|<|:)\s*(.+)$/i.exec(part);
      if (!m) throw new UsageError(`${name}: "${part}" is not an SLO; expected NAME<TIME, ${EXAMPLE}`);
      const k = key(name, part, m[1]!);
      if (slo[k] !== undefined) throw new UsageError(`${name}: ${k} is given twice ("${part}")`);
      slo[k] = time(name, part, m[3]!);
    }
  } else {
    throw new UsageError(`${name}: expected SLOs ${EXAMPLE}, got ${JSON.stringify(v)}`);
  }
  if (Object.keys(slo).length === 0) throw new UsageError(`${name}: no SLO given; ${EXAMPLE}`);
  return slo;
}

/** As the SLOs would be written: "ttft<=500ms, tpot<=50ms". */
export function formatSlo(slo: Slo): string {
  return (["ttft", "tpot", "e2el"] as const)
    .filter((k) => slo[k] !== undefined)
    .map((k) => `${k}<=${slo[k]}ms`)
    .join(", ");
}

/**
 * Whether one stream meets every SLO. A failed stream, or one without a token, never does. A
 * stream of one token has no TPOT, so it cannot miss a TPOT bound (vLLM counts it as 0).
 */
export function meetsSlo(slo: Slo, f: StreamFigures): boolean {
  if (!f.ok || f.ttft === null) return false;
  if (slo.ttft !== undefined && f.ttft > slo.ttft) return false;
  if (slo.tpot !== undefined && f.tpot !== null && f.tpot > slo.tpot) return false;
  if (slo.e2el !== undefined && f.e2el > slo.e2el) return false;
  return true;
}

/** Counter names of the judgement, per endpoint; they add up exactly across workers. */
export const SLO_JUDGED = "slo:judged";
export const SLO_GOOD = "slo:good";
export const SLO_GOOD_OUTPUT_TOKENS = "slo:good_output_tokens";
