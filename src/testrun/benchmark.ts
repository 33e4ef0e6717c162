/**
 * Benchmarks: a function run round after round, each round timed. The rounds give
 * pytest-benchmark's statistics, and are also recorded as one endpoint of a Cicada result, with
 * its full histogram, so that two saved benchmark runs compare like any two results.
 */
import { ExitCode, UsageError } from "../core/errors.js";
import { parseDuration } from "../core/parse.js";
import { bundleLoadfile, importBundle } from "../loadfile/bundle.js";
import { type BenchmarkResult, buildBooksResult, type RunResult } from "../result/result.js";
import { StatsAggregate } from "../stats/aggregate.js";
import { Recorder } from "../stats/recorder.js";
import { sampleStats } from "../stats/samples.js";
import { int, positiveSeconds } from "./settings.js";

/** The endpoint type of a benchmark's rounds in the result. */
export const BENCH_TYPE = "BENCH";

/** Measure for this long when neither a duration nor a round count is given. */
export const DEFAULT_BENCH_SEC = 1;

/** A round still running this long after an abort is given up on (counted as cancelled). */
const ABORT_GRACE_MS = 1000;

export interface BenchmarkOptions {
  /** Measured rounds. With `duration` too, whichever ends first. */
  iterations?: number;
  /** Measure for this long ("5s", or seconds). Default 1 s when `iterations` is not given either. */
  duration?: string | number;
  /** Rounds run first and not measured (connections, JIT, caches). Default 0. */
  warmup?: number;
  /** Rounds in flight at once. Default 1. */
  concurrency?: number;
}

/** What each round's function gets. */
export interface BenchmarkContext {
  /** 0-based index of the round: the warm-up rounds first, then the measured ones. */
  readonly round: number;
  /** Aborted when the benchmark is stopped: pass it to fetch() and the like. */
  readonly signal: AbortSignal;
  /** The host given to `cicada bench -H` or `benchmark({ host })`, if any. */
  readonly host: string | undefined;
}

export type BenchmarkFunction = (ctx: BenchmarkContext) => unknown;

/** A bench file's default export: benchmarks by name, each a function or one with its own settings. */
export type Benchmarks = Record<string, BenchmarkFunction | (BenchmarkOptions & { fn: BenchmarkFunction })>;

export interface BenchmarkSpec extends BenchmarkOptions {
  name: string;
  fn: BenchmarkFunction;
}

const OPTION_KEYS = ["iterations", "duration", "warmup", "concurrency"] as const;

/** Checks benchmark options wherever they come from; `where` prefixes each error. */
export function readBenchmarkOptions(o: Record<string, unknown>, where: string): BenchmarkOptions {
  const out: BenchmarkOptions = {};
  if (o.iterations !== undefined) out.iterations = int(1)(o.iterations, `${where}iterations`);
  if (o.duration !== undefined) {
    positiveSeconds(o.duration, `${where}duration`);
    out.duration = o.duration as string | number;
  }
  if (o.warmup !== undefined) out.warmup = int(0)(o.warmup, `${where}warmup`);
  if (o.concurrency !== undefined) out.concurrency = int(1)(o.concurrency, `${where}concurrency`);
  return out;
}

const EXAMPLE = `export default { "GET /health": async ({ host }) => { await fetch(\`\${host}/health\`); } }`;

/**
 * The benchmarks of a bench file: its default export, an object of named functions, or of
 * `{ fn, iterations?, duration?, warmup?, concurrency? }`. The file is bundled like a loadfile.
 */
export async function loadBenchFile(file: string): Promise<BenchmarkSpec[]> {
  const bundle = await bundleLoadfile(file, "bench file");
  let mod: Record<string, unknown>;
  try {
    mod = await importBundle(bundle.path, file);
  } finally {
    bundle.dispose();
  }
  const def = mod.default;
  if (def === null || typeof def !== "object" || Array.isArray(def)) {
    throw new UsageError(`${file}: export default an object of named benchmarks, e.g. ${EXAMPLE}`);
  }
  const specs: BenchmarkSpec[] = [];
  for (const [name, v] of Object.entries(def as Record<string, unknown>)) {
    const where = `${file}: "${name}"`;
    if (typeof v === "function") {
      specs.push({ name, fn: v as BenchmarkFunction });
      continue;
    }
    if (v === null || typeof v !== "object" || typeof (v as { fn?: unknown }).fn !== "function") {
      throw new UsageError(
        `${where}: expected a function, or { fn, iterations, duration, warmup, concurrency }`,
      );
    }
    const { fn, ...rest } = v as Record<string, unknown>;
    const unknown = Object.keys(rest).filter((k) => !(OPTION_KEYS as readonly string[]).includes(k));
    if (unknown.length > 0) {
      throw new UsageError(
        `${where}: unknown option ${unknown.join(", ")}; known: fn, ${OPTION_KEYS.join(", ")}`,
      );
    }
    specs.push({ name, fn: fn as BenchmarkFunction, ...readBenchmarkOptions(rest, `${where}.`) });
  }
  if (specs.length === 0)
    throw new UsageError(`${file}: no benchmarks in its default export, e.g. ${EXAMPLE}`);
  return specs;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message || err.name : String(err);
}

/**
 * Benchmarks run one after the other into one set of books. `run` measures one; `result` is
 * the JSON result of all of them.
 */
export class BenchmarkSession {
  private readonly recorder = new Recorder("bench");
  private readonly books: StatsAggregate;
  private readonly startedAt = Date.now();
  private measuredSec = 0;
  private peak = 0;
  private stopped = false;
  private readonly done: BenchmarkResult[] = [];
  private readonly settings: Array<Record<string, unknown>> = [];
  private readonly rates = new Map<string, number>();
  /** Stops every benchmark of the session, the one running and those to come. */
  private readonly abort = new AbortController();

  constructor(private readonly meta: { host?: string; file?: string; signal?: AbortSignal } = {}) {
    this.books = new StatsAggregate(this.startedAt);
    const outer = meta.signal;
    if (outer?.aborted) this.stop();
    outer?.addEventListener("abort", this.onAbort, { once: true });
  }

  private readonly onAbort = (): void => this.stop();

  /** Lets go of the caller's signal; call when done with the session. */
  dispose(): void {
    this.meta.signal?.removeEventListener("abort", this.onAbort);
  }

  /** Ends the running benchmark after its rounds in flight, and skips the others. */
  stop(): void {
    this.stopped = true;
    this.abort.abort();
  }

  get aborted(): boolean {
    return this.stopped;
  }

  get results(): readonly BenchmarkResult[] {
    return this.done;
  }

  async run(spec: BenchmarkSpec): Promise<BenchmarkResult> {
    const { name, fn } = spec;
    const concurrency = spec.concurrency ?? 1;
    const warmup = spec.warmup ?? 0;
    const iterations = spec.iterations ?? null;
    const limitSec =
      spec.duration !== undefined
        ? parseDuration(spec.duration, "duration")
        : iterations === null
          ? DEFAULT_BENCH_SEC
          : null;
    const signal = this.abort.signal;
    const host = this.meta.host;
    const samples: number[] = [];
    let failures = 0;
    let completed = 0;

    // Each lane takes the next round until `take` says there is none; a round's throw is its
    // failure, never the benchmark's end.
    const lanes = async (n: number, take: () => number | null, measure: boolean): Promise<void> => {
      const lane = async () => {
        for (let round = take(); round !== null; round = take()) {
          const t0 = performance.now();
          let error: string | null = null;
          try {
            await fn({ round, signal, host });
          } catch (err) {
            error = message(err);
          }
          const ms = performance.now() - t0;
          if (!measure) continue;
          if (error !== null && signal.aborted) {
            this.recorder.cancelled(BENCH_TYPE, "", name);
            continue;
          }
          completed++;
          this.recorder.iteration();
          this.recorder.request(BENCH_TYPE, "", name, ms * 1000, -1, 0, error);
          if (error === null) samples.push(ms);
          else failures++;
        }
      };
      const all = Promise.all(Array.from({ length: n }, lane));
      // After an abort, a round that ignores the signal is left behind rather than waited for.
      let grace: NodeJS.Timeout | undefined;
      const given = new Promise<void>((r) =>
        signal.addEventListener("abort", () => (grace = setTimeout(r, ABORT_GRACE_MS)), { once: true }),
      );
      await Promise.race([all, given]);
      clearTimeout(grace);
    };

    let warm = 0;
    await lanes(
      Math.min(concurrency, warmup),
      () => (warm < warmup && !signal.aborted ? warm++ : null),
      false,
    );

    let started = 0;
    const t0 = performance.now();
    const deadline = limitSec === null ? Number.POSITIVE_INFINITY : t0 + limitSec * 1000;
    const take = () => {
      if (signal.aborted) return null;
      if (iterations !== null && started >= iterations) return null;
      if (performance.now() >= deadline) return null;
      return warmup + started++;
    };
    // One snapshot a second, as a worker sends them, so the result has its per-second series.
    const ticker = setInterval(
      () => this.books.add(this.recorder.snapshot(concurrency, false, concurrency)),
      1000,
    );
    try {
      await lanes(concurrency, take, true);
    } finally {
      clearInterval(ticker);
    }
    const wallSec = (performance.now() - t0) / 1000;
    this.books.add(this.recorder.snapshot(0, false, concurrency));
    this.measuredSec += wallSec;
    this.peak = Math.max(this.peak, concurrency);
    this.rates.set(name, wallSec > 0 ? completed / wallSec : 0);
    this.settings.push({
      name,
      iterations,
      durationSec: limitSec,
      warmup,
      concurrency,
    });
    const r: BenchmarkResult = {
      name,
      ...sampleStats(samples),
      failures,
      warmup,
      concurrency,
      durationSec: Math.round(wallSec * 1000) / 1000,
      throughput: wallSec > 0 ? completed / wallSec : 0,
    };
    this.done.push(r);
    return r;
  }

  /**
   * The result of every benchmark run so far. Its exit code: 130 when stopped, 1 when a round
   * failed or a benchmark measured nothing, else 0.
   */
  result(): RunResult {
    this.books.finish();
    const exitCode = this.stopped
      ? ExitCode.Interrupted
      : this.done.some((b) => b.failures > 0 || b.rounds === 0) || this.done.length === 0
        ? ExitCode.Failures
        : ExitCode.Ok;
    const result = buildBooksResult(this.books, {
      startedAt: this.startedAt,
      endedAt: Date.now(),
      durationSec: this.measuredSec,
      config: {
        benchmark: true,
        ...(this.meta.file ? { loadfile: this.meta.file } : {}),
        ...(this.meta.host ? { host: this.meta.host } : {}),
        benchmarks: this.settings,
      },
      peakUsers: this.peak,
      stopReason: this.stopped ? "signal" : "benchmarks",
      exitCode,
      rates: this.rates,
    });
    result.benchmarks = [...this.done];
    return result;
  }
}
