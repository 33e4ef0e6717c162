// Watching the target's processes (/proc) and metrics endpoints (Prometheus text), and this
// process's own CPU and memory: one batch of resource samples a second.
import { request } from "undici";
import { TargetUnreachable, UsageError } from "../../core/errors.js";
import type { ResourceSample, ResourceUnit } from "../../stats/resources.js";
import { cpuPercent, type ProcInfo, type ProcReading, readProcess, resolveProcesses } from "./proc.js";
import {
  evaluateQuery,
  isCounter,
  type MonitorQuery,
  type PromExposition,
  parseExposition,
  parseMonitorQuery,
} from "./prometheus-text.js";

export interface MonitorOptions {
  /** `--monitor-pid`: pids or process names. */
  pids?: readonly string[];
  /** `--monitor-url`: Prometheus endpoints. */
  urls?: readonly string[];
  /** `--monitor-query NAME=SERIES`; none reads the process_* defaults. */
  queries?: readonly string[];
  /** Names the machine in every sample ("master"; the master renames a worker's). */
  host: string;
  /** Also record this process's CPU % and RSS as a generator series with this source. */
  self?: string;
  /** One line for each process that exits and each endpoint that stops answering. */
  onNotice?: (message: string) => void;
  /** Milliseconds a scrape may take (default 800: the next one is due a second later). */
  scrapeTimeoutMs?: number;
}

/** Most bytes read from one scrape: an exposition of a process is far smaller. */
const MAX_SCRAPE_BYTES = 8 * 1024 * 1024;

/** Without --monitor-query: the standard process metrics, where the endpoint has them. */
const DEFAULT_QUERIES = ["rss_bytes=process_resident_memory_bytes", "cpu_percent=process_cpu_seconds_total"];

interface Watched {
  info: ProcInfo;
  source: string;
  prev?: ProcReading;
  gone: boolean;
}

interface Endpoint {
  /** Without its login, if it had one. */
  url: string;
  /** The Authorization header made of that login. */
  auth: string | undefined;
  /** Each query's last counter reading, for its rate. */
  last: Map<string, { at: number; value: number }>;
  warned: boolean;
  /** Queries already reported as matching nothing. */
  missing: Set<string>;
}

function unitOf(q: MonitorQuery, counter: boolean): ResourceUnit {
  if (isCpuSeconds(q, counter)) return "percent";
  if (counter) return "";
  return /_bytes$/.test(q.metric) ? "bytes" : "";
}

/** CPU seconds of a process, a counter: its rate × 100 is CPU % (100 = one core). */
function isCpuSeconds(q: MonitorQuery, counter: boolean): boolean {
  return counter && /cpu_seconds_total$/.test(q.metric);
}

/** One GET of a metrics endpoint, bounded in time and size. */
export async function scrape(url: string, timeoutMs: number, auth?: string): Promise<PromExposition> {
  // undici's own request, not fetch: fetch refuses some ports outright (6000, 10080, ...).
  const res = await request(url, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: { accept: "text/plain;version=0.0.4", ...(auth ? { authorization: auth } : {}) },
  });
  // A body let go of early errors with "Request aborted": nobody else listens for it, and an
  // unheard stream error would surface as an uncaught one.
  res.body.on("error", () => {});
  if (res.statusCode < 200 || res.statusCode >= 300) {
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
    throw new Error(`HTTP ${res.statusCode}`);
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += (chunk as Buffer).byteLength;
    if (size > MAX_SCRAPE_BYTES) {
      res.body.destroy();
      throw new Error(`more than ${MAX_SCRAPE_BYTES} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return parseExposition(Buffer.concat(chunks).toString("utf8"));
}

function why(err: unknown): string {
  const e = err as Error & { code?: string; cause?: { code?: string; message?: string } };
  if (e.name === "TimeoutError" || e.cause?.code === "UND_ERR_ABORTED") return "no answer in time";
  if (e.code === "ECONNREFUSED") return "connection refused (is the server running?)";
  return e.cause?.code ?? e.code ?? e.message;
}

/**
 * The monitors of one machine. `open` checks every process and endpoint first, so a typo fails
 * before the load starts; `start` then samples once a second until `stop`.
 */
export class ResourceMonitor {
  private timer: NodeJS.Timeout | undefined;
  private selfPrev: { at: number; cpu: NodeJS.CpuUsage } | undefined;
  private busy = false;
  /** A CPU figure of this process was recorded. */
  private selfCpuSeen = false;

  private constructor(
    private readonly opts: MonitorOptions,
    private readonly procs: Watched[],
    private readonly endpoints: Endpoint[],
    private readonly queries: MonitorQuery[],
    /** --monitor-query given: a query that matches nothing is worth a line. */
    private readonly explicit: boolean,
  ) {}

  /**
   * Resolves the processes (usage error, exit 2, naming a pid or name that matches nothing) and
   * scrapes each endpoint once (exit 4 when one cannot be reached, as for an unreachable target).
   */
  static async open(opts: MonitorOptions): Promise<ResourceMonitor> {
    const procs: Watched[] = resolveProcesses(opts.pids ?? []).map((info) => ({
      info,
      source: `pid ${info.pid} (${info.comm})`,
      gone: false,
    }));
    const explicit = (opts.queries ?? []).length > 0;
    if (explicit && (opts.urls ?? []).length === 0) {
      throw new UsageError("--monitor-query reads a --monitor-url: give the endpoint too");
    }
    const queries = (explicit ? opts.queries! : DEFAULT_QUERIES).map((q) => parseMonitorQuery(q));
    const endpoints: Endpoint[] = [];
    for (const given of opts.urls ?? []) {
      let u: URL;
      try {
        u = new URL(given);
      } catch {
        throw new UsageError(`--monitor-url ${given}: not a URL`);
      }
      // A login in the URL becomes a header: it is never shown, in a message or a series' name.
      const auth =
        u.username || u.password
          ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`
          : undefined;
      u.username = "";
      u.password = "";
      const url = u.href;
      try {
        await scrape(url, opts.scrapeTimeoutMs ?? 3000, auth);
      } catch (err) {
        throw new TargetUnreachable(`--monitor-url ${url}: cannot scrape it: ${why(err)}`);
      }
      endpoints.push({ url, auth, last: new Map(), warned: false, missing: new Set() });
    }
    const m = new ResourceMonitor(opts, procs, endpoints, queries, explicit);
    // The first CPU reading is a baseline: rates need two.
    for (const p of procs) p.prev = readProcess(p.info.pid);
    m.selfPrev = { at: Date.now(), cpu: process.cpuUsage() };
    return m;
  }

  /** Samples every second, handing each batch to `onSamples`. */
  start(onSamples: (samples: ResourceSample[]) => void, intervalMs = 1000): void {
    this.stop();
    this.timer = setInterval(() => {
      // A slow endpoint never stacks scrapes: a tick that finds the last one running skips.
      if (this.busy) return;
      this.busy = true;
      void this.sample()
        .then((s) => {
          if (s.length > 0 && this.timer) onSamples(s);
        })
        .finally(() => {
          this.busy = false;
        });
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One reading of everything watched. */
  async sample(): Promise<ResourceSample[]> {
    const out = this.sampleLocal();
    await this.scrapeAll(out);
    return out;
  }

  /**
   * This process and the watched ones, without the endpoints: synchronous, for the `final`
   * reading as the run ends (a run shorter than a second still gets the generator's figures).
   */
  sampleLocal(final = false): ResourceSample[] {
    const out: ResourceSample[] = [];
    const push = (
      source: string,
      kind: ResourceSample["kind"],
      metric: string,
      unit: ResourceUnit,
      at: number,
      value: number,
    ) => this.push(out, { source, kind, metric, unit, at, value });
    if (this.opts.self) {
      const at = Date.now();
      const cpu = process.cpuUsage();
      const prev = this.selfPrev;
      // As for the watched processes, a span under half a second would be mostly noise; but a
      // run that ends sooner still gets its one figure (this clock counts microseconds).
      const minSpan = final && !this.selfCpuSeen ? 1 : 500;
      const span = prev ? at - prev.at : 0;
      if (!prev || span >= minSpan) this.selfPrev = { at, cpu };
      if (prev && span >= minSpan) {
        this.selfCpuSeen = true;
        const used = (cpu.user - prev.cpu.user + cpu.system - prev.cpu.system) / 1000;
        push(
          this.opts.self,
          "generator",
          "cpu_percent",
          "percent",
          at,
          round1((used / (at - prev.at)) * 100),
        );
      }
      push(this.opts.self, "generator", "rss_bytes", "bytes", at, process.memoryUsage.rss());
    }
    for (const p of this.procs) {
      if (p.gone) continue;
      const r = readProcess(p.info.pid);
      if (!r) {
        p.gone = true;
        this.opts.onNotice?.(`monitor: ${p.source} exited; its series ends here`);
        continue;
      }
      const prev = p.prev;
      const cpu = prev ? cpuPercent(prev, r) : undefined;
      // A reading too close to the last one keeps the last as the base of the next rate.
      if (!prev || cpu !== undefined) p.prev = r;
      if (cpu !== undefined) push(p.source, "target", "cpu_percent", "percent", r.at, cpu);
      push(p.source, "target", "rss_bytes", "bytes", r.at, r.rssBytes);
      push(p.source, "target", "threads", "count", r.at, r.threads);
      if (r.fds !== undefined) push(p.source, "target", "fds", "count", r.at, r.fds);
      if (r.ioReadBytes !== undefined)
        push(p.source, "target", "io_read_bytes", "bytes", r.at, r.ioReadBytes);
      if (r.ioWriteBytes !== undefined) {
        push(p.source, "target", "io_write_bytes", "bytes", r.at, r.ioWriteBytes);
      }
    }
    return out;
  }

  /** A reading that is a number; NaN or ±Inf (a broken endpoint, a race with an exit) is left out. */
  private push(out: ResourceSample[], s: Omit<ResourceSample, "host">): void {
    if (Number.isFinite(s.value)) out.push({ ...s, host: this.opts.host });
  }

  private async scrapeAll(out: ResourceSample[]): Promise<void> {
    const push = (source: string, metric: string, unit: ResourceUnit, at: number, value: number) =>
      this.push(out, { source, kind: "target", metric, unit, at, value });
    await Promise.all(
      this.endpoints.map(async (e) => {
        let exp: PromExposition;
        try {
          exp = await scrape(e.url, this.opts.scrapeTimeoutMs ?? 800, e.auth);
        } catch (err) {
          // Once per endpoint: the series show the gap; a line a second would drown the log.
          if (!e.warned)
            this.opts.onNotice?.(
              `warning: monitor: cannot scrape ${e.url}: ${why(err)}; its series have a gap`,
            );
          e.warned = true;
          return;
        }
        const at = Date.now();
        for (const q of this.queries) {
          const v = evaluateQuery(q, exp);
          if (v === undefined) {
            if (this.explicit && !e.missing.has(q.name)) {
              e.missing.add(q.name);
              this.opts.onNotice?.(
                `warning: monitor: ${e.url} has no series matching --monitor-query ${q.text}`,
              );
            }
            continue;
          }
          const counter = isCounter(q, exp);
          if (!counter) {
            push(e.url, q.name, unitOf(q, false), at, v);
            continue;
          }
          const last = e.last.get(q.name);
          e.last.set(q.name, { at, value: v });
          // A counter that went down was reset (the target restarted): no rate across it.
          if (!last || at <= last.at || v < last.value) continue;
          const rate = (v - last.value) / ((at - last.at) / 1000);
          push(
            e.url,
            q.name,
            unitOf(q, true),
            at,
            isCpuSeconds(q, true) ? round1(rate * 100) : Math.round(rate * 1000) / 1000,
          );
        }
      }),
    );
  }
}

const round1 = (x: number) => Math.round(x * 10) / 10;
