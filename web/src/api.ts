/**
 * The server's HTTP API as the UI sees it (docs/web-api.md). Fields the UI can live without are
 * optional, so an older or newer server does not break the page.
 */

export type Status = "ready" | "spawning" | "running" | "stopping" | "stopped";

export interface UserClass {
  name: string;
  weight: number;
  fixedCount?: number;
  tags?: string[];
}

export interface StartRequest {
  users?: number | null;
  spawnRate?: number | null;
  rate?: number | null;
  maxUsers?: number | null;
  host?: string | null;
  runTime?: string | null;
  stages?: string | null;
  shape?: string | null;
  userClasses?: string[];
  tags?: string[];
  excludeTags?: string[];
}

export interface RunInfo {
  id: number;
  startedAt?: string;
  config?: StartRequest & Record<string, unknown>;
  stopReason?: string | null;
}

export interface UiState {
  status: Status;
  loadfile?: string;
  classes?: UserClass[];
  tags?: string[];
  shapes?: string[];
  /** The master's workers waiting for the next test; null on one machine. */
  workers?: { connected: number } | null;
  defaults?: StartRequest;
  run?: RunInfo | null;
  webLogin?: boolean;
}

export interface Latency {
  min: number;
  mean: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

export interface EndpointStats {
  key: string;
  type?: string;
  method?: string;
  name: string;
  requests: number;
  failures: number;
  rps: number;
  currentRps?: number;
  latencyMs: Latency;
  bytesReceived?: number;
  /** Streaming and protocol metrics (ttft, itl, rtt, ...), in ms or per second. */
  metrics?: Record<string, Latency & { count: number }>;
  counters?: Record<string, number>;
}

export interface SeriesRow {
  t: number;
  users?: number;
  requests?: number;
  failures?: number;
  rps?: number;
  failuresPerSec?: number;
  iterations?: number;
  dropped?: number;
  p50?: number | null;
  p95?: number | null;
  p99?: number | null;
}

export interface EndpointRow {
  t: number;
  requests?: number;
  failures?: number;
  p50?: number | null;
  p95?: number | null;
  p99?: number | null;
}

export interface FailureRow {
  method?: string;
  name: string;
  error: string;
  occurrences: number;
}

export interface ExceptionRow {
  message: string;
  where?: string;
  traceback?: string;
  count: number;
}

export interface ThresholdRow {
  expr: string;
  scope?: string;
  metric?: string;
  op?: string;
  target?: number;
  value?: number | null;
  passed: boolean;
}

export interface CheckRow {
  name: string;
  passes: number;
  fails: number;
  rate?: number;
}

export interface WorkerRow {
  id: string;
  users?: number;
  cpu?: number | null;
  heapUsedMB?: number | null;
  lost?: boolean;
}

/** New points of one resource series (the target's or the generator's), t in seconds. */
export interface ResourceRows {
  key: string;
  kind: "target" | "generator";
  host: string;
  source: string;
  metric: string;
  unit: string;
  points: Array<[number, number]>;
}

export interface StatsEvent {
  runId: number;
  status?: Status;
  elapsedSec?: number;
  users?: number;
  targetUsers?: number | null;
  rate?: number | null;
  dropped?: number;
  current?: { rps?: number; failuresPerSec?: number; p50?: number | null; p95?: number | null };
  totals?: { requests: number; failures: number; rps: number; latencyMs?: Latency };
  endpoints?: EndpointStats[];
  seriesFrom?: number;
  series?: SeriesRow[];
  endpointSeries?: Record<string, EndpointRow[]>;
  failures?: FailureRow[];
  exceptions?: ExceptionRow[];
  thresholds?: ThresholdRow[];
  checks?: CheckRow[];
  workers?: WorkerRow[];
  /** True when `resources` starts afresh (a new test, a reset, a new connection). */
  resourcesReset?: boolean;
  resources?: ResourceRows[];
}

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** POSTs JSON to the API; a non-2xx answer becomes an ApiError carrying the server's message. */
export async function post(path: string, body: unknown = {}): Promise<unknown> {
  const res = await fetch(`api/${path}`, {
    method: "POST",
    // The server refuses a write without it: that is what keeps other sites' forms out.
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // A proxy's HTML error page, say: its text is still worth showing.
  }
  if (!res.ok) {
    const msg = (json as { error?: unknown } | null)?.error;
    throw new ApiError(typeof msg === "string" ? msg : text || `${res.status} ${res.statusText}`, res.status);
  }
  return json;
}

export const REPORTS: Array<{ path: string; label: string; file: string }> = [
  { path: "api/report.html", label: "HTML report", file: "cicada-report.html" },
  { path: "api/report.json", label: "JSON result", file: "cicada-result.json" },
  { path: "api/report/stats.csv", label: "stats.csv", file: "cicada_stats.csv" },
  { path: "api/report/stats_history.csv", label: "stats_history.csv", file: "cicada_stats_history.csv" },
  { path: "api/report/failures.csv", label: "failures.csv", file: "cicada_failures.csv" },
  { path: "api/report/exceptions.csv", label: "exceptions.csv", file: "cicada_exceptions.csv" },
];
