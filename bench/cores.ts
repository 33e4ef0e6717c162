/**
 * `npm run bench:cores`: what a second worker thread costs per request. `cicada run` at a fixed
 * request rate that the target serves easily, so the thread count does not change the work, in
 * two models: closed (BENCH_USERS users of bench/loadfiles/rate.ts, each paced by
 * constantThroughput to BENCH_RATE ÷ BENCH_USERS) and open (bench/loadfiles/get.ts with `--rate`
 * on at most BENCH_USERS users). Each runs with `--processes 1` and `--processes 2`, interleaved
 * over rounds. It prints the CPU per request of each (user + system, all threads) and the ratio
 * 2 ÷ 1; the goal is at most 1.1. It reports; it never fails on speed.
 *
 *   npm run bench:cores
 *   BENCH_RATE=20000 BENCH_USERS=100 BENCH_SECONDS=10 BENCH_ROUNDS=3 npm run bench:cores
 *
 * The steady figure reads the running cicada process's own CPU (utime + stime of /proc/PID/stat)
 * 3 s after it was spawned and again at BENCH_SECONDS − 1 s, and divides by rate × the time
 * between the two readings: that window leaves out the start (modules, bundling the loadfile,
 * worker threads, ramp-up) and the end (stopping, the summary), whose cost grows with the run and
 * differs between one thread and two, so it spoiled a figure taken as the difference of a long
 * and a short run. The whole-run figure (cutime + cstime of this process around the run ÷
 * totals.requests) is printed beside it.
 *
 * The generator is not pinned (two threads need two cores); the target (nginx with one worker
 * when installed, else bench/target.ts) is pinned to the last core when taskset is available.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  canMeasureCpu,
  canPin,
  childCpuSeconds,
  cicadaBin,
  envNumber,
  median,
  processCpuSeconds,
  range,
  root,
  startTarget,
  targetCore,
} from "./shared.js";

const RATE = envNumber("BENCH_RATE", 20000);
/** Users of the closed model, and the most the open model may grow to (so the most connections). */
const USERS = envNumber("BENCH_USERS", envNumber("BENCH_MAX_USERS", 100));
const SECONDS = envNumber("BENCH_SECONDS", 10);
const ROUNDS = envNumber("BENCH_ROUNDS", 3);
/** The steady window, in seconds after the spawn: past the start (~0.5 s) and ramp, before the end. */
const WINDOW_START = 3;
const WINDOW_END = SECONDS - 1;

if (!canMeasureCpu) {
  console.log("bench:cores measures CPU from /proc/PID/stat, which this system does not have");
  process.exit(1);
}
if (WINDOW_END - WINDOW_START < 1) {
  console.error(
    `BENCH_SECONDS=${SECONDS}: expected at least 5, so that the steady window ` +
      `(from ${WINDOW_START} s to BENCH_SECONDS − 1 s) lasts a second or more`,
  );
  process.exit(2);
}

type Model = "closed" | "open";

interface Config {
  model: Model;
  processes: number;
  samples: Array<Sample | undefined>;
}

interface Sample {
  rps: number;
  requests: number;
  dropped: number;
  /** CPU µs per request in the steady window; undefined when a reading failed. */
  steady?: number;
  /** CPU µs per request over the whole process's life. */
  whole: number;
}

function args(c: Config, url: string, out: string): string[] {
  const load =
    c.model === "closed"
      ? [join(root, "bench/loadfiles/rate.ts"), "-u", String(USERS), "-r", "1000"]
      : [join(root, "bench/loadfiles/get.ts"), "--rate", String(RATE), "--max-users", String(USERS)];
  return [
    cicadaBin,
    "run",
    "--headless",
    ...load,
    "-H",
    new URL(url).origin,
    "-t",
    `${SECONDS}s`,
    "--processes",
    String(c.processes),
    "--only-summary",
    "--json",
    out,
  ];
}

/** One `cicada run` at the fixed rate, with its CPU read inside the run and around it. */
async function cicada(c: Config, url: string, work: string): Promise<Sample> {
  const out = join(work, `${c.model}-p${c.processes}.json`);
  const before = childCpuSeconds();
  // The generator is spawned without taskset, so the PID is node's own.
  const child = spawn(process.execPath, args(c, url, out), {
    stdio: ["ignore", "ignore", "pipe"],
    // The closed model's loadfile paces each user to its share of the rate.
    env: { ...process.env, BENCH_USER_RATE: String(RATE / USERS) },
  });
  const spawned = performance.now();
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    stderr += d;
  });
  // Never rejects: a failed spawn would otherwise be an unhandled rejection during the readings.
  const exited = new Promise<number | string | Error>((resolve) => {
    child.on("error", resolve);
    // "close" comes after the child was waited for, so cutime + cstime include it by then.
    child.on("close", (code, signal) => resolve(code ?? signal ?? "?"));
  });
  const limit = setTimeout(() => child.kill("SIGKILL"), (SECONDS * 3 + 60) * 1000);

  const reading = async (at: number) => {
    await sleep(Math.max(0, spawned + at * 1000 - performance.now()));
    return { cpu: processCpuSeconds(child.pid!), at: performance.now() };
  };
  const first = await reading(WINDOW_START);
  const last = await reading(WINDOW_END);
  const status = await exited.finally(() => clearTimeout(limit));
  const whole = childCpuSeconds() - before;

  if (status instanceof Error) throw status;
  if (status !== 0 && status !== 1) {
    throw new Error(`cicada run exited with ${status}: ${stderr.trim()}`);
  }
  const t = (
    JSON.parse(readFileSync(out, "utf8")) as {
      totals: { rps: number; requests: number; failures: number; droppedIterations?: number };
    }
  ).totals;
  if (t.failures > 0) console.log(`  (${label(c)}: ${t.failures} failed requests)`);
  const windowRequests = (RATE * (last.at - first.at)) / 1000;
  const steady =
    first.cpu !== undefined && last.cpu !== undefined && windowRequests > 0
      ? ((last.cpu - first.cpu) * 1e6) / windowRequests
      : undefined;
  return {
    rps: t.rps,
    requests: t.requests,
    dropped: t.droppedIterations ?? 0,
    steady,
    whole: t.requests > 0 ? (whole * 1e6) / t.requests : Number.NaN,
  };
}

const label = (c: Config) => `${c.model}, --processes ${c.processes}`;
const fmt = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? "–" : x.toFixed(1));

const work = mkdtempSync(join(tmpdir(), "cicada-bench-cores-"));
const target = await startTarget(work, canPin);
let failed = false;
try {
  console.log(
    `target: ${target.kind} at ${target.url}${canPin ? `, pinned to core ${targetCore}` : ""}; ` +
      `generator not pinned\n${RATE} req/s for ${SECONDS} s; closed: ${USERS} users at ` +
      `${RATE / USERS} req/s each (bench/loadfiles/rate.ts);\nopen: --rate ${RATE} --max-users ` +
      `${USERS} (bench/loadfiles/get.ts); steady window ${WINDOW_START}–${WINDOW_END} s after ` +
      `the spawn; ${ROUNDS} round${ROUNDS === 1 ? "" : "s"}\n`,
  );
  const configs: Config[] = (["closed", "open"] as const).flatMap((model) =>
    [1, 2].map((processes) => ({ model, processes, samples: Array(ROUNDS).fill(undefined) })),
  );

  // Odd rounds run the list backwards, so neither model and neither thread count always goes
  // first, and the two runs of a model stay next to each other, under nearly the same conditions.
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of round % 2 ? [...configs].reverse() : configs) {
      try {
        const s = await cicada(c, target.url, work);
        c.samples[round] = s;
        const flag =
          s.rps < RATE * 0.95 || s.dropped > 0
            ? ` (below the rate${s.dropped > 0 ? `, ${s.dropped} arrivals dropped` : ""}: not a fixed-rate figure)`
            : "";
        console.log(
          `round ${round + 1}, ${label(c)}: ${Math.round(s.rps)} req/s, CPU µs/req steady ` +
            `${fmt(s.steady)}, whole run ${fmt(s.whole)}${flag}`,
        );
      } catch (err) {
        console.log(`round ${round + 1}, ${label(c)} could not run: ${(err as Error).message}`);
        failed = true;
      }
    }
  }

  type Pick = (s: Sample) => number | undefined;
  const steady: Pick = (s) => s.steady;
  const whole: Pick = (s) => s.whole;
  const values = (c: Config, f: Pick) =>
    c.samples.flatMap((s) => {
      const v = s && f(s);
      return v === undefined || Number.isNaN(v) ? [] : [v];
    });

  for (const model of ["closed", "open"] as const) {
    const [one, two] = configs.filter((c) => c.model === model) as [Config, Config];
    console.log(`\n${model} model`);
    const head = ["", "median req/s", "CPU µs/req, steady", "CPU µs/req, whole run"];
    const rows = [head];
    for (const c of [one, two]) {
      const rate = median(values(c, (s) => s.rps));
      rows.push([
        `--processes ${c.processes}`,
        rate === undefined ? "failed" : Math.round(rate).toLocaleString("en-US"),
        fmt(median(values(c, steady))),
        fmt(median(values(c, whole))),
      ]);
    }
    const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    for (const r of rows) {
      console.log(
        r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   "),
      );
    }
    const report = (name: string, f: Pick) => {
      const a = median(values(two, f));
      const b = median(values(one, f));
      if (a === undefined || !b) return console.log(`2 ÷ 1 processes, ${name}: (a run failed)`);
      const within = two.samples.flatMap((s, i) => {
        const x = s && f(s);
        const o = one.samples[i];
        const y = o && f(o);
        return x !== undefined && y ? [x / y] : [];
      });
      console.log(
        `2 ÷ 1 processes, ${name}: ${(a / b).toFixed(2)}   within rounds ${range(within)}   goal ≤ 1.10`,
      );
    };
    report("steady   ", steady);
    report("whole run", whole);
  }

  console.log(
    "\nCPU µs/req, steady: user + system CPU of the running cicada process (all its threads;\n" +
      `utime + stime of /proc/PID/stat) between ${WINDOW_START} s and ${WINDOW_END} s after the spawn, ÷ ` +
      "(rate × the time between\nthe two readings). 'whole run': cutime + cstime of this process " +
      "before and after the run\n÷ totals.requests of its JSON; it includes starting and stopping " +
      "the process and each worker\nthread (loading modules, bundling the loadfile) and writing the summary.",
  );
} finally {
  target.stop();
  setTimeout(() => rmSync(work, { recursive: true, force: true }), 300);
}
if (failed) process.exitCode = 1;
