/**
 * The unit of exchange between workers and the coordinator: everything one worker
 * recorded during one interval. All fields add up exactly, so snapshots from any number of
 * workers and machines merge without loss. Plain JSON, so it can cross threads and sockets.
 */
export interface StatsSnapshot {
  workerId: string;
  /** Increments per snapshot of a worker; lets the coordinator notice gaps. */
  seq: number;
  /** Wall-clock ms when the interval closed. */
  at: number;
  /** The worker's last snapshot of the run. */
  final: boolean;
  /** Users alive in the worker when the interval closed (a level, not a delta). */
  users: number;
  /** Most users alive at once in the worker during the interval. */
  peakUsers: number;
  iterations: number;
  /** Open model: arrivals dropped in the interval (absent from older workers). */
  dropped?: number;
  endpoints: EndpointDelta[];
  errors: ErrorDelta[];
  exceptions: ExceptionDelta[];
  /** Requests made by tasks with each tag (type "tag", name = the tag). */
  tags?: EndpointDelta[];
  /** Check evaluations by check name. */
  checks?: CheckDelta[];
  /** Open model: actual minus scheduled start of each iteration (µs, sparse histogram). */
  dispatchDelay?: number[];
  /**
   * Recorded inside the run's warm-up or cool-down (by completion time): the series shows it,
   * the figures leave it out.
   */
  window?: "warmup" | "cooldown";
  /** Taken early, at a window's edge: it shares its interval (seq) with the worker's next one. */
  cut?: boolean;
}

export interface CheckDelta {
  name: string;
  passes: number;
  fails: number;
}

export interface EndpointDelta {
  type: string;
  method: string;
  name: string;
  count: number;
  failures: number;
  cancelled: number;
  /** Stopped before it was written (absent from older workers). */
  notSent?: number;
  bytes: number;
  sumUs: number;
  minUs: number;
  maxUs: number;
  /** Latency in µs as a sparse histogram (see histogram.ts toSparse); [] when empty. */
  latency: number[];
  /** Same for time to first byte. */
  ttfb: number[];
  /** Open model: latency from the iteration's scheduled start; [] in the closed model. */
  corrected?: number[];
  /** Responses per status code in the interval. */
  statuses?: Record<string, number>;
  /** Further metrics (sparse histograms in thousandths of their unit), by name. */
  metrics?: Record<string, number[]>;
  /** Further counts, by name. */
  counters?: Record<string, number>;
}

export interface ErrorDelta {
  method: string;
  name: string;
  error: string;
  occurrences: number;
}

export interface ExceptionDelta {
  message: string;
  traceback: string;
  where: string;
  count: number;
}
