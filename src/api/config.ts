/**
 * Run settings, as written in `cicada.config.ts` (default export) or exported as `options`
 * from a loadfile. Every key mirrors a CLI flag; the CLI wins over env, env over the file.
 */
export interface CicadaConfig {
  loadfile?: string;
  userClasses?: string[];
  host?: string;
  users?: number;
  spawnRate?: number;
  /** e.g. "30s", "5m", "1h30m", or seconds as a number. */
  runTime?: string | number;
  tags?: string[];
  excludeTags?: string[];
  iterations?: number;
  /** Task iterations each user runs before it stops (closed model). */
  iterationsPerUser?: number;
  /** Seconds users get to finish their task when the run stops. */
  stopTimeout?: number;
  json?: string;
  onlySummary?: boolean;
  exitCodeOnError?: number;
  headless?: boolean;
  /** Verify TLS certificates of the target (default true). */
  verifyTls?: boolean;
  /**
   * The HTTP client of every HttpUser: "auto" (Cicada's own HTTP/1.1 client, undici when a
   * proxy is set or a TLS server speaks only HTTP/2), "fast" or "undici". When set it wins
   * over each class's `static engine`; when not set, the classes choose.
   */
  httpEngine?: "auto" | "fast" | "undici";
  /** Check that each host accepts TCP connections before starting (default true). */
  preflight?: boolean;
  /**
   * Worker threads that run the users, each with its own event loop and connections: N ≥ 1,
   * or -1 for one per core (the default). 1 runs users in the main thread.
   */
  processes?: number;
  /** Open model: iterations started per second, whatever the response times. */
  rate?: number;
  /** Open model: most users the pool may grow to (default: one second of arrivals, at least users). */
  maxUsers?: number;
  /** Open model: an arrival that cannot start within this long is dropped (default 10s). */
  maxDelay?: string | number;
  // Arrivals, concurrency, windows and trace replay (docs/arrivals.md).
  /** Open model: how arrivals are spaced: "constant" (default), "poisson" or "gamma". */
  arrivals?: "constant" | "poisson" | "gamma";
  /** Gamma arrivals: the shape; below 1 burstier than Poisson, 1 is Poisson, above 1 more even (default 1). */
  burstiness?: number;
  /** Seed of the arrival gaps, and the default seed of datasets: the same seed repeats the schedule. */
  seed?: number;
  /** Most iterations in flight at once across the run; further arrivals wait for a free slot. */
  maxConcurrency?: number;
  /** Traffic runs from the start, but the figures begin this long after it (e.g. "30s"). */
  warmup?: string | number;
  /** Traffic runs to the end, but the figures stop this long before it (needs runTime). */
  cooldown?: string | number;
  /** Trace replay: a JSONL or CSV file of start offsets (and payloads), one iteration each. */
  schedule?: string;
  /**
   * Load shape for the closed model: ramp linearly between user targets, e.g.
   * [{duration: "30s", target: 100}, {duration: "2m", target: 100}, {duration: "10s", target: 0}]
   * or "30s:100,2m:100,10s:0". The run ends with the last stage unless runTime is shorter.
   */
  stages?: string | Array<{ duration: string | number; target: number }>;
  /**
   * Several workloads in one run, each with its own user classes, model, shape, start offset and
   * duration, keyed by scenario name. When set, users, spawnRate, rate, stages and the iteration
   * limits are set per scenario; runTime still caps the whole run.
   */
  scenarios?: Record<string, ScenarioConfig>;
  /** Run only these scenarios (by name); default all. */
  scenario?: string[];
  /** Status codes ≥ 400 that count as successes, not failures, e.g. [429] in a rate-limit test. */
  acceptStatus?: number[];
  /**
   * Pass/fail criteria, checked live every second and at the end; a failed one makes the run
   * exit with code 3. E.g. ["p95<500", "error_rate<1%", "POST /api/invoke: p99<1000",
   * "tag:checkout p95<300", "checks>99%", { threshold: "error_rate<5%", abortOnFail: true }].
   */
  thresholds?: Array<string | ThresholdConfig>;
  /**
   * Service-level objectives of streamed responses, for goodput: "ttft<500ms,tpot<50ms,e2el<10s",
   * or { ttft: "500ms", tpot: "50ms", e2el: "10s" }. A stream that meets every one is good.
   */
  slo?: string | { ttft?: string | number; tpot?: string | number; e2el?: string | number };
  /** Write thresholds, checks and comparison verdicts as JUnit XML to this file. */
  junit?: string;
  /** Compare the run with this baseline (a stored name or a result file) at the end. */
  compareTo?: string;
  /** Tolerances for compareTo: "15%" for all metrics, or "p99=20%,error_rate=50%". */
  tolerance?: string;
  /** Directory of stored baselines (default .cicada/baselines). */
  baselineDir?: string;
  /** Write Locust-compatible CSV files PREFIX_stats.csv, _stats_history.csv, _failures.csv, _exceptions.csv. */
  csv?: string;
  /** Per-endpoint rows in PREFIX_stats_history.csv, not only the Aggregated row. */
  csvFullHistory?: boolean;
  /** Write the self-contained HTML report to this file. */
  html?: string;
  /** Name of the exported LoadShape that drives the run, when the loadfile exports several (web UI). */
  shape?: string | null;
  /** Web UI address (without --headless). */
  webHost?: string;
  webPort?: number;
  /** Start the test at once in the web UI; quit this many seconds after it ends. */
  autostart?: boolean;
  autoquit?: number;
  /** "user:pass" for HTTP Basic login to the web UI and its API. */
  webLogin?: string;
  /** Serve Prometheus metrics of the running test on this port (0 = any free port), at /metrics. */
  prometheusPort?: number;
  /** Address the metrics endpoint binds to (default 127.0.0.1). */
  prometheusHost?: string;
  /**
   * Send the run's metrics over OTLP/HTTP: a base URL (/v1/metrics is added), or true for the
   * endpoint the OTEL_EXPORTER_OTLP_* variables name (default http://localhost:4318).
   */
  otel?: string | boolean;
  /** One span per HTTP request, sent like the metrics, with a W3C traceparent header on the request. */
  otelTraces?: boolean;
  /**
   * With otelTraces: the share of requests (0 < r ≤ 1) whose spans are recorded and sent, chosen
   * by trace id; the others still send a traceparent flagged not sampled. Default: all, unless
   * the OTEL_TRACES_SAMPLER variables say otherwise.
   */
  otelTracesSample?: number;
  /**
   * Processes of the target to watch from /proc once a second: pids, or names matched against
   * each process's name or program (`node`, `postgres`). CPU %, RSS, fds, threads, I/O bytes.
   */
  monitorPid?: string[];
  /** Prometheus endpoints of the target to scrape once a second (e.g. http://127.0.0.1:9100/metrics). */
  monitorUrl?: string[];
  /** What to read from them, as NAME=SERIES (`queue=queue_length{queue="jobs"}`). */
  monitorQuery?: string[];
  /** Run as the master of workers on other machines (`cicada worker`), which get the users. */
  master?: boolean;
  masterBindHost?: string;
  masterBindPort?: number;
  /** Workers the master waits for before it starts (default 1). */
  expectWorkers?: number;
  /** Seconds the master waits for them; default: until they come or Ctrl-C. */
  expectWorkersMaxWait?: number;
  /** Seconds of silence after which a worker (or, on a worker, its master) counts as gone (default 3). */
  heartbeatTimeout?: number;
  /** Exit with code 4 when a worker was lost during the run. */
  failOnWorkerLoss?: boolean;
  /**
   * The secret master and workers share: each worker proves it knows it, and the master proves it
   * back, by HMAC over fresh nonces (it never crosses the wire). Required beyond loopback.
   */
  token?: string;
  /** A file holding `token` alone (surrounding whitespace is dropped). */
  tokenFile?: string;
  /** The master serves workers over TLS with this certificate and key (PEM files). */
  tlsCert?: string;
  tlsKey?: string;
  /** Seconds a connecting peer has to complete the greeting before it is dropped (default 5). */
  handshakeTimeout?: number;
}

export interface ThresholdConfig {
  threshold: string;
  /** Stop the run as soon as this threshold fails (after `delayAbortEval`). */
  abortOnFail?: boolean;
  /** Grace period from the start of the run before abortOnFail may stop it, e.g. "10s". */
  delayAbortEval?: string | number;
}

/** One scenario of a run: a workload that starts at `startTime` and lasts `duration`. */
export interface ScenarioConfig {
  /** User classes this scenario runs (default: all the loadfile exports). */
  userClasses?: string[];
  /** Closed model: users, started at spawnRate per second (default 1 and 1). */
  users?: number;
  spawnRate?: number;
  /** Open model: iterations started per second. */
  rate?: number;
  maxUsers?: number;
  maxDelay?: string | number;
  /** Open model: how this scenario's arrivals are spaced (see the run-wide setting). */
  arrivals?: "constant" | "poisson" | "gamma";
  burstiness?: number;
  /** Seed of this scenario's arrival gaps (default: the run's). */
  seed?: number;
  /** Most iterations of this scenario in flight at once. */
  maxConcurrency?: number;
  /** Users (closed) or rates (open, with `rate` set) over time, as for the run's `stages`. */
  stages?: string | Array<{ duration: string | number; target: number }>;
  /** Name of an exported LoadShape class that drives this scenario. */
  shape?: string;
  /** Offset from the start of the run, e.g. "2m" (default 0). */
  startTime?: string | number;
  /** How long the scenario runs once started (default: until its shape, stages or limits end it, or the run ends). */
  duration?: string | number;
  iterations?: number;
  iterationsPerUser?: number;
  tags?: string[];
  excludeTags?: string[];
  host?: string;
  /** Worker threads for this scenario (default: the run's processes setting). */
  processes?: number;
}

/** Identity function that gives a config file editor types. */
export function defineConfig(config: CicadaConfig): CicadaConfig {
  return config;
}
