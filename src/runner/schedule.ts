// Trace replay (--schedule FILE): reads a JSONL or CSV file of start offsets, each with an
// optional payload the loadfile receives as `this.schedule`, and checks it line by line.
import { readFileSync } from "node:fs";
import type { ScheduleRow } from "../api/context.js";
import { parseCsvLine, parseJsonObjectLine } from "../core/delimited.js";
import { UsageError } from "../core/errors.js";

export type { ScheduleRow };

/** The columns or keys that hold the offset: seconds (`t`) or milliseconds (`offset_ms`). */
const OFFSET_KEYS = ["t", "offset_ms"] as const;

function offsetOf(raw: unknown, key: "t" | "offset_ms", where: string): number {
  const n =
    typeof raw === "number" ? raw : typeof raw === "string" && raw.trim() !== "" ? Number(raw) : Number.NaN;
  if (!Number.isFinite(n) || n < 0) {
    throw new UsageError(`${where}: "${key}" must be a number ≥ 0, got ${JSON.stringify(raw)}`);
  }
  return key === "t" ? n * 1000 : n;
}

/**
 * The rows of a schedule file, sorted by offset. JSONL when the name ends in .jsonl/.ndjson/.json
 * or the first non-blank line starts with "{", else CSV with a header. Any problem is one
 * UsageError naming the file and line.
 */
export function readSchedule(file: string): ScheduleRow[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new UsageError(
      `--schedule ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
  const lines = text.split(/\r?\n/);
  const first = lines.find((l) => l.trim() !== "") ?? "";
  const jsonl = /\.(jsonl|ndjson|json)$/i.test(file) || first.trimStart().startsWith("{");
  const rows = jsonl ? jsonlRows(file, lines) : csvRows(file, lines);
  if (rows.length === 0) throw new UsageError(`--schedule ${file}: no rows`);
  // A stable sort: rows at the same offset keep the file's order.
  return rows.sort((a, b) => a.offsetMs - b.offsetMs);
}

function jsonlRows(file: string, lines: string[]): ScheduleRow[] {
  const rows: ScheduleRow[] = [];
  for (const [i, l] of lines.entries()) {
    if (l.trim() === "") continue;
    const where = `--schedule ${file}:${i + 1}`;
    const obj = parseJsonObjectLine(l, where, '{"t": 1.5}', UsageError);
    const key = OFFSET_KEYS.find((k) => k in obj);
    if (!key) throw new UsageError(`${where}: no "t" (seconds) or "offset_ms" field`);
    const offsetMs = offsetOf(obj[key], key, where);
    const { [key]: _offset, ...payload } = obj;
    rows.push({ offsetMs, line: i + 1, payload });
  }
  return rows;
}

function csvRows(file: string, lines: string[]): ScheduleRow[] {
  const headerAt = lines.findIndex((l) => l.trim() !== "");
  if (headerAt < 0) return [];
  const header = parseCsvLine(lines[headerAt]!.replace(/^\uFEFF/, ""))?.map((h) => h.trim());
  const where0 = `--schedule ${file}:${headerAt + 1}`;
  if (!header) throw new UsageError(`${where0}: the header has an unclosed quote`);
  const col = header.findIndex((h) => (OFFSET_KEYS as readonly string[]).includes(h));
  if (col < 0) {
    throw new UsageError(
      `${where0}: the header needs a "t" (seconds) or "offset_ms" column, got ${header.join(",")}`,
    );
  }
  const key = header[col] as "t" | "offset_ms";
  const rows: ScheduleRow[] = [];
  for (let i = headerAt + 1; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.trim() === "") continue;
    const where = `--schedule ${file}:${i + 1}`;
    const fields = parseCsvLine(l);
    if (!fields) throw new UsageError(`${where}: unclosed quote`);
    if (fields.length !== header.length) {
      throw new UsageError(`${where}: ${fields.length} fields, but the header has ${header.length}`);
    }
    const payload: Record<string, unknown> = {};
    for (const [j, h] of header.entries()) if (j !== col) payload[h] = fields[j];
    rows.push({ offsetMs: offsetOf(fields[col], key, where), line: i + 1, payload });
  }
  return rows;
}

/** Most rows starting within any one second: the pool a replay needs to start them all on time. */
export function peakPerSecond(rows: readonly ScheduleRow[]): number {
  let peak = 0;
  let lo = 0;
  for (let hi = 0; hi < rows.length; hi++) {
    while (rows[hi]!.offsetMs - rows[lo]!.offsetMs >= 1000) lo++;
    peak = Math.max(peak, hi - lo + 1);
  }
  return peak;
}
