// The Prometheus text exposition format, read: samples with their labels, and the series a
// `--monitor-query NAME=SERIES` picks from them.
import { UsageError } from "../../core/errors.js";

/** One sample line: `name{label="value",...} value [timestamp]`. */
export interface PromSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface PromExposition {
  samples: PromSample[];
  /** `# TYPE` of each metric family that declared one. */
  types: Map<string, string>;
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
const LABEL = /[a-zA-Z_][a-zA-Z0-9_]*/y;

/** Lines longer than this are skipped: no exposition of a process needs them, and they cost memory. */
const MAX_LINE = 64 * 1024;

function parseValue(s: string): number {
  if (s === "+Inf" || s === "Inf") return Number.POSITIVE_INFINITY;
  if (s === "-Inf") return Number.NEGATIVE_INFINITY;
  if (s === "NaN") return Number.NaN;
  // Number("") is 0 and Number("0x10") is 16: neither is a Prometheus value.
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(s)) return Number.NaN;
  return Number(s);
}

/**
 * Reads `{a="x",b="y"}` from `line` at `at` (just past the `{`). Returns the labels and the index
 * after the `}`, or undefined when the line is malformed.
 */
function readLabels(line: string, at: number): { labels: Record<string, string>; end: number } | undefined {
  const labels: Record<string, string> = Object.create(null);
  let i = at;
  for (;;) {
    while (line[i] === " " || line[i] === "\t") i++;
    if (line[i] === "}") return { labels, end: i + 1 };
    LABEL.lastIndex = i;
    const m = LABEL.exec(line);
    if (!m) return undefined;
    i += m[0].length;
    while (line[i] === " ") i++;
    if (line[i] !== "=") return undefined;
    i++;
    while (line[i] === " ") i++;
    if (line[i] !== '"') return undefined;
    i++;
    let v = "";
    for (;;) {
      const c = line[i];
      if (c === undefined) return undefined;
      if (c === '"') break;
      if (c === "\\") {
        const n = line[i + 1];
        v += n === "n" ? "\n" : n === "\\" ? "\\" : n === '"' ? '"' : `\\${n ?? ""}`;
        i += 2;
      } else {
        v += c;
        i++;
      }
    }
    i++;
    labels[m[0]] = v;
    while (line[i] === " ") i++;
    if (line[i] === ",") i++;
    else if (line[i] !== "}") return undefined;
  }
}

/** One sample line, or undefined for a line that is not one (it is skipped, not fatal). */
export function parseSampleLine(line: string): PromSample | undefined {
  NAME.lastIndex = 0;
  const m = NAME.exec(line);
  if (!m) return undefined;
  let i = m[0].length;
  let labels: Record<string, string> = Object.create(null);
  if (line[i] === "{") {
    const l = readLabels(line, i + 1);
    if (!l) return undefined;
    labels = l.labels;
    i = l.end;
  }
  if (line[i] !== " " && line[i] !== "\t") return undefined;
  const rest = line
    .slice(i)
    .trim()
    .split(/[ \t]+/);
  if (rest.length < 1 || rest.length > 2 || rest[0] === "") return undefined;
  const value = parseValue(rest[0]!);
  if (Number.isNaN(value) && rest[0] !== "NaN") return undefined;
  return { name: m[0], labels, value };
}

/** Every sample of an exposition; lines it cannot read are skipped. */
export function parseExposition(text: string): PromExposition {
  const samples: PromSample[] = [];
  const types = new Map<string, string>();
  for (const raw of text.split("\n")) {
    if (raw.length > MAX_LINE) continue;
    const line = raw.trim();
    if (line === "") continue;
    if (line.startsWith("#")) {
      const t = /^#\s*TYPE\s+([a-zA-Z_:][a-zA-Z0-9_:]*)\s+(\w+)/.exec(line);
      if (t) types.set(t[1]!, t[2]!);
      continue;
    }
    const s = parseSampleLine(line);
    if (s) samples.push(s);
  }
  return { samples, types };
}

/** A label matcher of a query: `=`, `!=`, `=~` or `!~` (regexes anchored, as in PromQL). */
interface Matcher {
  label: string;
  op: "=" | "!=" | "=~" | "!~";
  value: string;
  re?: RegExp;
}

/** `NAME=SERIES`, parsed. */
export interface MonitorQuery {
  /** What the series is called in the result. */
  name: string;
  /** The metric it reads, and its label matchers. */
  metric: string;
  matchers: Matcher[];
  /** The query as written, for messages. */
  text: string;
}

/** Parses `NAME=SERIES`; a usage error names what is wrong. */
export function parseMonitorQuery(text: string): MonitorQuery {
  const eq = text.indexOf("=");
  const name = eq > 0 ? text.slice(0, eq).trim() : "";
  const series = eq > 0 ? text.slice(eq + 1).trim() : "";
  if (!/^[a-zA-Z_][\w.-]*$/.test(name) || series === "") {
    throw new UsageError(`expected NAME=SERIES such as queue=queue_length{queue="jobs"}, got "${text}"`);
  }
  NAME.lastIndex = 0;
  const m = NAME.exec(series);
  if (!m) throw new UsageError(`"${text}": "${series}" does not start with a metric name`);
  const matchers: Matcher[] = [];
  let i = m[0].length;
  if (series[i] === "{") {
    i++;
    for (;;) {
      while (series[i] === " ") i++;
      if (series[i] === "}") {
        i++;
        break;
      }
      const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?/.exec(series.slice(i));
      if (!lm) throw new UsageError(`"${text}": cannot read the label matchers at "${series.slice(i)}"`);
      const op = lm[2] as Matcher["op"];
      const value = lm[3]!.replace(/\\(.)/g, (_, c: string) => (c === "n" ? "\n" : c));
      let re: RegExp | undefined;
      if (op === "=~" || op === "!~") {
        try {
          re = new RegExp(`^(?:${value})$`);
        } catch (err) {
          throw new UsageError(`"${text}": bad regular expression "${value}": ${(err as Error).message}`);
        }
      }
      matchers.push({ label: lm[1]!, op, value, ...(re ? { re } : {}) });
      i += lm[0].length;
    }
  }
  if (series.slice(i).trim() !== "") {
    throw new UsageError(`"${text}": unexpected "${series.slice(i).trim()}" after the series`);
  }
  return { name, metric: m[0], matchers, text };
}

function matches(q: MonitorQuery, s: PromSample): boolean {
  if (s.name !== q.metric) return false;
  for (const m of q.matchers) {
    const v = s.labels[m.label] ?? "";
    const ok = m.re ? m.re.test(v) : v === m.value;
    if ((m.op === "=" || m.op === "=~") !== ok) return false;
  }
  return true;
}

/** The query's value in an exposition: the sum of every sample it matches; undefined if none. */
export function evaluateQuery(q: MonitorQuery, exp: PromExposition): number | undefined {
  let sum: number | undefined;
  for (const s of exp.samples) if (matches(q, s)) sum = (sum ?? 0) + s.value;
  return sum;
}

/** A counter is reported as a rate per second: its own value only ever grows. */
export function isCounter(q: MonitorQuery, exp: PromExposition): boolean {
  return q.metric.endsWith("_total") || exp.types.get(q.metric) === "counter";
}
