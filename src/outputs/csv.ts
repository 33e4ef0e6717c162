// Locust-compatible CSV files: stats, history, failures and exceptions, written from the merged books.
import { appendFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import type { RunResult } from "../result/result.js";
import type { ClosedInterval, EndpointTotals, StatsAggregate } from "../stats/aggregate.js";
import type { Histogram } from "../stats/histogram.js";
import { percentileMs } from "../stats/histogram.js";
import type { Sink } from "./sink.js";

/** Locust's percentile columns, in its order. */
export const CSV_PERCENTILES = [50, 66, 75, 80, 90, 95, 98, 99, 99.9, 99.99, 100] as const;
const PCT_HEADERS = CSV_PERCENTILES.map((p) => `${p}%`);

/** Header lines exactly as Locust 2.x writes them. */
export const STATS_HEADER = [
  "Type",
  "Name",
  "Request Count",
  "Failure Count",
  "Median Response Time",
  "Average Response Time",
  "Min Response Time",
  "Max Response Time",
  "Average Content Size",
  "Requests/s",
  "Failures/s",
  ...PCT_HEADERS,
];
export const HISTORY_HEADER = [
  "Timestamp",
  "User Count",
  "Type",
  "Name",
  "Requests/s",
  "Failures/s",
  ...PCT_HEADERS,
  "Total Request Count",
  "Total Failure Count",
  "Total Median Response Time",
  "Total Average Response Time",
  "Total Min Response Time",
  "Total Max Response Time",
  "Total Average Content Size",
];
export const FAILURES_HEADER = ["Method", "Name", "Error", "Occurrences"];
export const EXCEPTIONS_HEADER = ["Count", "Message", "Traceback", "Nodes"];
/** Not Locust's: the resource series (--monitor-pid, --monitor-url, the generator's own), one row per point. */
export const RESOURCES_HEADER = ["t", "host", "source", "metric", "value"];

/** RFC 4180 quoting, as Python's csv module does by default: only when needed. */
function cell(v: string | number): string {
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function csvLine(cells: ReadonlyArray<string | number>): string {
  return `${cells.map(cell).join(",")}\r\n`;
}

/** Locust's Type column: the method for HTTP (GET, POST), the protocol otherwise. */
export function locustType(type: string, method: string): string {
  if (type === "HTTP") return method;
  return `${type} ${method}`.trim();
}

/** Whole milliseconds, as Locust writes them. */
const whole = (ms: number) => Math.round(ms);
const float = (x: number) => (Number.isFinite(x) ? Math.round(x * 1000) / 1000 : 0);

function percentiles(h: Histogram, count: number, minUs: number, maxUs: number): Array<string | number> {
  if (count === 0) return CSV_PERCENTILES.map(() => "N/A");
  return CSV_PERCENTILES.map((p) => whole(percentileMs(h, p, minUs, maxUs)));
}

function statsRow(
  e: EndpointTotals,
  type: string,
  name: string,
  durationSec: number,
): Array<string | number> {
  const n = e.count;
  const median = n > 0 ? whole(percentileMs(e.latency, 50, e.minUs, e.maxUs)) : 0;
  return [
    type,
    name,
    n,
    e.failures,
    median,
    n > 0 ? float(e.sumUs / n / 1000) : 0,
    n > 0 ? whole(e.minUs / 1000) : 0,
    whole(e.maxUs / 1000),
    n > 0 ? float(e.bytes / n) : 0,
    durationSec > 0 ? float(n / durationSec) : 0,
    durationSec > 0 ? float(e.failures / durationSec) : 0,
    ...percentiles(e.latency, n, e.minUs, e.maxUs),
  ];
}

function totalsColumns(e: EndpointTotals | undefined): Array<string | number> {
  if (!e || e.count === 0) return [e?.count ?? 0, e?.failures ?? 0, 0, 0, 0, 0, 0];
  return [
    e.count,
    e.failures,
    whole(percentileMs(e.latency, 50, e.minUs, e.maxUs)),
    float(e.sumUs / e.count / 1000),
    whole(e.minUs / 1000),
    whole(e.maxUs / 1000),
    float(e.bytes / e.count),
  ];
}

/**
 * Locust-compatible CSV files: PREFIX_stats.csv, PREFIX_failures.csv and PREFIX_exceptions.csv
 * are rewritten every few seconds and at the end; PREFIX_stats_history.csv gets a row per
 * second (and per endpoint with full history). History percentiles cover that second.
 */
export class CsvOutput implements Sink {
  readonly label: string;
  readonly files:
    | { stats: string; history: string; failures: string; exceptions: string; resources: string }
    | undefined;
  /** The history so far, header included, when kept in memory (web UI downloads). */
  private historyText: string[] | undefined;

  constructor(
    /** Files are written as PREFIX_*.csv; null keeps only the in-memory history. */
    prefix: string | null,
    private readonly fullHistory = false,
    keepHistory = false,
  ) {
    this.label = `--csv ${prefix ?? ""}`;
    if (keepHistory) this.historyText = [csvLine(HISTORY_HEADER)];
    if (prefix === null) return;
    this.files = {
      stats: `${prefix}_stats.csv`,
      history: `${prefix}_stats_history.csv`,
      failures: `${prefix}_failures.csv`,
      exceptions: `${prefix}_exceptions.csv`,
      resources: `${prefix}_resources.csv`,
    };
    // Written at once: a prefix in a missing directory fails before the run, not after it.
    writeFileSync(this.files.stats, csvLine(STATS_HEADER));
    writeFileSync(this.files.history, csvLine(HISTORY_HEADER));
    writeFileSync(this.files.failures, csvLine(FAILURES_HEADER));
    writeFileSync(this.files.exceptions, csvLine(EXCEPTIONS_HEADER));
    writeFileSync(this.files.resources, csvLine(RESOURCES_HEADER));
  }

  history(): string {
    return (this.historyText ?? [csvLine(HISTORY_HEADER)]).join("");
  }

  /** Appends the history rows of a second that just closed. */
  interval(iv: ClosedInterval, stats: StatsAggregate): void {
    const ts = Math.round(iv.at / 1000);
    let text = "";
    if (this.fullHistory) {
      for (const [key, b] of iv.byEndpoint) {
        const e = stats.endpoints.get(key);
        if (!e) continue;
        text += csvLine([
          ts,
          iv.users,
          locustType(e.type, e.method),
          e.name,
          b.requests,
          b.failures,
          ...percentiles(b.latency, b.requests, b.minUs, b.maxUs),
          ...totalsColumns(e),
        ]);
      }
    }
    text += csvLine([
      ts,
      iv.users,
      "",
      "Aggregated",
      iv.requests,
      iv.failures,
      ...percentiles(iv.latency, iv.requests, iv.minUs, iv.maxUs),
      ...totalsColumns(stats.total),
    ]);
    this.historyText?.push(text);
    if (this.files) appendFileSync(this.files.history, text);
  }

  /** Locust refreshes its CSV files every few seconds; a crash mid-run keeps what was written. */
  tick(stats: StatsAggregate, elapsedSec: number, n: number): void {
    if (n % 2 === 0) this.write(stats, elapsedSec);
  }

  end(stats: StatsAggregate, elapsedSec: number): void {
    this.write(stats, elapsedSec);
  }

  /** The resource series are written once, from the result: t is seconds since the start. */
  result(r: RunResult): void {
    if (this.files) writeFileSync(this.files.resources, resourcesCsv(r));
  }

  /** Rewrites the stats, failures and exceptions files from the merged books. */
  write(stats: StatsAggregate, durationSec: number): void {
    if (!this.files) return;
    writeFileSync(this.files.stats, statsCsv(stats, durationSec));
    writeFileSync(this.files.failures, failuresCsv(stats));
    writeFileSync(this.files.exceptions, exceptionsCsv(stats));
  }
}

export function statsCsv(stats: StatsAggregate, durationSec: number): string {
  let text = csvLine(STATS_HEADER);
  for (const e of stats.sortedEndpoints()) {
    text += csvLine(statsRow(e, locustType(e.type, e.method), e.name, durationSec));
  }
  return text + csvLine(statsRow(stats.total, "", "Aggregated", durationSec));
}

export function failuresCsv(stats: StatsAggregate): string {
  let text = csvLine(FAILURES_HEADER);
  for (const f of [...stats.errors.values()].sort((a, b) => b.occurrences - a.occurrences)) {
    const e = [...stats.endpoints.values()].find((x) => x.method === f.method && x.name === f.name);
    text += csvLine([e ? locustType(e.type, f.method) : f.method, f.name, f.error, f.occurrences]);
  }
  return text;
}

export function exceptionsCsv(stats: StatsAggregate): string {
  let text = csvLine(EXCEPTIONS_HEADER);
  for (const x of [...stats.exceptions.values()].sort((a, b) => b.count - a.count)) {
    text += csvLine([x.count, x.message, x.traceback, hostname()]);
  }
  return text;
}

export function resourcesCsv(r: Pick<RunResult, "resources">): string {
  let text = csvLine(RESOURCES_HEADER);
  for (const x of r.resources ?? []) {
    for (const [t, v] of x.points) text += csvLine([t, x.host, x.source, x.metric, v]);
  }
  return text;
}
