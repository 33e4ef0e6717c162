/**
 * `npm run bench:cores`: what a second worker thread costs per request. `cicada run` with a
 * scripted HttpUser at a fixed arrival rate (the open model, `--rate`) that the target serves
 * easily, with `--processes 1` and then `--processes 2`, interleaved over rounds. Prints the CPU
 * per request of each (user + system, whole process, all threads) and the ratio 2 ÷ 1; the goal
 * is at most 1.1. It reports; it never fails on speed.
 *
 *   npm run bench:cores
 *   BENCH_RATE=5000 BENCH_SECONDS=8 BENCH_ROUNDS=3 npm run bench:cores
 *
 * The generator is not pinned (two threads need two cores); the target (nginx with one worker
 * when installed, else bench/target.ts) is pinned to the last core when taskset is available.
 * Each configuration also runs for BENCH_SHORT_SECONDS (2; 0 turns it off): the difference
 * between the long and the short run gives the CPU of a request in steady state, without the
 * start and stop of the process and its threads, which weigh on short runs.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  canMeasureCpu,
  canPin,
  childCpuSeconds,
  cicadaBin,
  envNumber,
  median,
  range,
  root,
  startTarget,
  targetCore,
} from "./shared.js";

const RATE = envNumber("BENCH_RATE", 5000);
const SECONDS = envNumber("BENCH_SECONDS", 8);
const SHORT_SECONDS = Number(process.env.BENCH_SHORT_SECONDS ?? 2);
const ROUNDS = envNumber("BENCH_ROUNDS", 3);
/** The pool of users the open model may grow to, and so the most connections. */
const MAX_USERS = envNumber("BENCH_MAX_USERS", 50);
const marginal = SHORT_SECONDS > 0 && SHORT_SECONDS < SECONDS;

if (!canMeasureCpu) {
  console.log("bench:cores measures CPU from /proc/self/stat, which this system does not have");
  process.exit(1);
}

interface Sample {
  rps: number;
  requests: number;
  dropped: number;
  cpu: number;
}

/** One `cicada run` at the fixed rate; CPU is that of its whole process, all threads. */
function cicada(url: string, work: string, processes: number, seconds: number): Sample {
  const out = join(work, `p${processes}-${seconds}.json`);
  const args = [
    cicadaBin,
    "run",
    "--headless",
    join(root, "bench/loadfiles/get.ts"),
    "-H",
    new URL(url).origin,
    "--rate",
    String(RATE),
    "--max-users",
    String(MAX_USERS),
    "-t",
    `${seconds}s`,
    "--processes",
    String(processes),
    "--only-summary",
    "--json",
    out,
  ];
  const before = childCpuSeconds();
  const r = spawnSync(process.execPath, args, {
    encoding: "utf8",
    stdio: ["ignore", "ignore", "pipe"],
    timeout: (seconds * 3 + 60) * 1000,
  });
  const cpu = childCpuSeconds() - before;
  if (r.error) throw r.error;
  if (r.status !== 0 && r.status !== 1) {
    throw new Error(
      `cicada run --processes ${processes} exited with ${r.status ?? r.signal}: ${r.stderr.trim()}`,
    );
  }
  const t = (
    JSON.parse(readFileSync(out, "utf8")) as {
      totals: { rps: number; requests: number; failures: number; droppedIterations?: number };
    }
  ).totals;
  if (t.failures > 0) console.log(`  (--processes ${processes}: ${t.failures} failed requests)`);
  return { rps: t.rps, requests: t.requests, dropped: t.droppedIterations ?? 0, cpu };
}

interface Config {
  processes: number;
  long: Array<Sample | undefined>;
  short: Array<Sample | undefined>;
}

const work = mkdtempSync(join(tmpdir(), "cicada-bench-cores-"));
const target = await startTarget(work, canPin);
let failed = false;
try {
  console.log(
    `target: ${target.kind} at ${target.url}${canPin ? `, pinned to core ${targetCore}` : ""}; ` +
      `${RATE} req/s (open model, --max-users ${MAX_USERS}) for ${SECONDS} s` +
      `${marginal ? ` and ${SHORT_SECONDS} s` : ""}; ${ROUNDS} rounds; generator not pinned\n`,
  );
  const configs: Config[] = [1, 2].map((processes) => ({
    processes,
    long: Array(ROUNDS).fill(undefined),
    short: Array(ROUNDS).fill(undefined),
  }));
  const us = (cpu: number, requests: number) => (requests > 0 ? (cpu * 1e6) / requests : Number.NaN);
  const wholeRun = (c: Config, i: number) => {
    const s = c.long[i];
    return s ? us(s.cpu, s.requests) : undefined;
  };
  const steady = (c: Config, i: number) => {
    const l = c.long[i];
    const s = c.short[i];
    return l && s && l.requests > s.requests ? us(l.cpu - s.cpu, l.requests - s.requests) : undefined;
  };

  // The order alternates between rounds so neither configuration always runs first.
  for (let round = 0; round < ROUNDS; round++) {
    const line: string[] = [];
    for (let k = 0; k < configs.length; k++) {
      const c = configs[(round + k) % configs.length]!;
      try {
        c.long[round] = cicada(target.url, work, c.processes, SECONDS);
        if (marginal) c.short[round] = cicada(target.url, work, c.processes, SHORT_SECONDS);
        const l = c.long[round]!;
        const st = steady(c, round);
        // The short run's shortfall spoils the steady figure as much as the long run's own.
        const ran = [l, c.short[round]].flatMap((x) => (x ? [x] : []));
        const dropped = ran.reduce((n, x) => n + x.dropped, 0);
        const flag =
          ran.some((x) => x.rps < RATE * 0.95) || dropped > 0
            ? ` (below the rate${dropped > 0 ? `, ${dropped} arrivals dropped` : ""}: not a fixed-rate figure)`
            : "";
        line.push(
          `--processes ${c.processes} ${Math.round(l.rps)} req/s, ${wholeRun(c, round)!.toFixed(1)} µs/req` +
            `${st === undefined ? "" : ` (steady ${st.toFixed(1)})`}${flag}`,
        );
      } catch (err) {
        console.log(`--processes ${c.processes} could not run: ${(err as Error).message}`);
        failed = true;
      }
    }
    console.log(`round ${round + 1}: ${line.join("; ")}`);
  }

  const rounds = [...Array(ROUNDS).keys()];
  const all = (f: (c: Config, i: number) => number | undefined, c: Config) =>
    rounds.flatMap((i) => {
      const v = f(c, i);
      return v === undefined || Number.isNaN(v) ? [] : [v];
    });
  const [one, two] = configs as [Config, Config];
  const ratios = (f: (c: Config, i: number) => number | undefined) =>
    rounds.flatMap((i) => {
      const a = f(two, i);
      const b = f(one, i);
      return a !== undefined && b ? [a / b] : [];
    });

  console.log("");
  const head = ["", "median req/s", "CPU µs/req, whole run", ...(marginal ? ["CPU µs/req, steady"] : [])];
  const rows = [head];
  for (const c of configs) {
    const rate = median(c.long.flatMap((s) => (s ? [s.rps] : [])));
    const w = median(all(wholeRun, c));
    const s = median(all(steady, c));
    rows.push([
      `--processes ${c.processes}`,
      rate === undefined ? "failed" : Math.round(rate).toLocaleString("en-US"),
      w === undefined ? "" : w.toFixed(1),
      ...(marginal ? [s === undefined ? "" : s.toFixed(1)] : []),
    ]);
  }
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) {
    console.log(
      r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   "),
    );
  }

  console.log("");
  const report = (label: string, f: (c: Config, i: number) => number | undefined) => {
    const a = median(all(f, two));
    const b = median(all(f, one));
    if (a === undefined || !b) return console.log(`${label}: (a run failed)`);
    console.log(`${label}: ${(a / b).toFixed(2)}   within rounds ${range(ratios(f))}   goal ≤ 1.10`);
  };
  report("2 ÷ 1 processes, whole run", wholeRun);
  if (marginal) report("2 ÷ 1 processes, steady   ", steady);
  console.log(
    "\nCPU µs/req: user + system CPU of the whole cicada process (all its threads; this process's\n" +
      "cutime + cstime before and after the run) ÷ the requests it completed. 'whole run' includes\n" +
      "starting and stopping the process and each worker thread (loading modules, bundling the\n" +
      "loadfile).",
  );
  if (marginal) {
    console.log(
      `'steady' is (CPU of the ${SECONDS} s run − CPU of the ${SHORT_SECONDS} s run) ÷ (their difference in\n` +
        "requests): the start and the stop cancel out.",
    );
  }
} finally {
  target.stop();
  setTimeout(() => rmSync(work, { recursive: true, force: true }), 300);
}
if (failed) process.exitCode = 1;
