/**
 * `npm run bench:latency`: how much latency the generator adds. One target answers every request
 * after 10 ms and records each request's duration itself. Against it run, at about 1,000
 * requests/s (10 connections, one request every 10 ms each), in turn over BENCH_ROUNDS rounds
 * (the order alternating, after a short warm-up):
 *   - a bare raw-socket client (bench/bare-client.ts): the floor any Node client on this machine sees;
 *   - Cicada with a scripted HttpUser (bench/loadfiles/paced.ts), `--processes 1` unless
 *     BENCH_PROCESSES says otherwise.
 * Each contender is its own process, pinned like the target (generator on core 0, target on the
 * last core) when taskset and two cores are there. After each phase the target hands over the
 * durations it recorded in that phase, so each figure can be set against the target's own.
 *
 * Goal: Cicada adds at most 0.3 ms at p50 and 1 ms at p99 to the bare client's figures, judged on
 * the median over rounds of the within-round difference. It reports; it never fails on speed.
 *
 *   npm run bench:latency
 *   BENCH_SECONDS=8 BENCH_ROUNDS=5 npm run bench:latency
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { get } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canPin, cicadaBin, envNumber, median, range, root, targetCore } from "./shared.js";

// Long enough that the first seconds of a run (code still being optimized, each user's first
// request) and its stop weigh little: they are measured, but are not the steady overhead.
const SECONDS = envNumber("BENCH_SECONDS", 30);
const ROUNDS = envNumber("BENCH_ROUNDS", 3);
const WARMUP_SECONDS = 2;
const PROCESSES = process.env.BENCH_PROCESSES ?? "1";
const generatorPin = canPin ? ["taskset", "-c", "0"] : [];
const targetPin = canPin ? ["taskset", "-c", targetCore] : [];

const POINTS = [
  ["p50", 50, 0.3],
  ["p90", 90, undefined],
  ["p99", 99, 1],
] as const;
type Name = (typeof POINTS)[number][0];
type Percentiles = Record<Name, number>;

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

function percentiles(xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: pct(s, 50), p90: pct(s, 90), p99: pct(s, 99) };
}

/** Runs a command to its end; its stdout. */
function run(cmd: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd[0]!, cmd.slice(1), { stdio: ["ignore", "pipe", "inherit"] });
    let stdout = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout }));
  });
}

function fetchText(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      let body = "";
      res.on("data", (d) => {
        body += d;
      });
      res.on("end", () => resolve(body));
    }).on("error", reject);
  });
}

const target = spawn(
  targetPin[0] ?? process.execPath,
  [
    ...targetPin.slice(1),
    ...(targetPin.length ? [process.execPath] : []),
    join(root, "dist/bench/delay-target.js"),
    "10",
  ],
  { stdio: ["ignore", "pipe", "inherit"] },
);
let firstLine = "";
target.stdout.on("data", (d) => {
  firstLine += d;
});
while (!firstLine.includes("\n")) await new Promise((r) => setTimeout(r, 20));
const port = Number(firstLine.trim());
/** The target's own durations since the last call. */
const serverSide = async () =>
  JSON.parse(await fetchText(`http://127.0.0.1:${port}/__durations`)) as number[];

async function bare(seconds: number): Promise<{ client: number[]; requests: number }> {
  const r = await run([
    ...generatorPin,
    process.execPath,
    join(root, "dist/bench/bare-client.js"),
    String(port),
    String(seconds),
  ]);
  const lat = JSON.parse(r.stdout.trim()) as number[];
  return { client: lat, requests: lat.length };
}

const work = mkdtempSync(join(tmpdir(), "cicada-lat-"));
async function cicada(): Promise<{ client: Percentiles; requests: number; code: number | null }> {
  const json = join(work, "r.json");
  rmSync(json, { force: true });
  const r = await run([
    ...generatorPin,
    process.execPath,
    cicadaBin,
    "run",
    "--headless",
    join(root, "bench/loadfiles/paced.ts"),
    "-H",
    `http://127.0.0.1:${port}`,
    "-u",
    "10",
    "-r",
    "100",
    "-t",
    `${SECONDS}s`,
    "-s",
    "1",
    "--only-summary",
    "--json",
    json,
    "--processes",
    PROCESSES,
  ]);
  const totals = JSON.parse(readFileSync(json, "utf8")).totals;
  return { client: totals.latencyMs as Percentiles, requests: totals.requests as number, code: r.code };
}

interface Phase {
  client: Percentiles;
  server: Percentiles;
}
const results: Array<{ bare: Phase; cicada: Phase }> = [];

console.log(
  `target: Node, answering after 10 ms${canPin ? `, pinned to core ${targetCore}; generators pinned to core 0` : ""}; ` +
    `${SECONDS} s per phase; ${ROUNDS} rounds; cicada --processes ${PROCESSES}\n`,
);
try {
  await bare(WARMUP_SECONDS);
  await serverSide();
  for (let round = 1; round <= ROUNDS; round++) {
    const phases: Partial<Record<"bare" | "cicada", Phase>> = {};
    const order = round % 2 ? (["bare", "cicada"] as const) : (["cicada", "bare"] as const);
    const line: string[] = [];
    for (const who of order) {
      if (who === "bare") {
        const b = await bare(SECONDS);
        phases.bare = { client: percentiles(b.client), server: percentiles(await serverSide()) };
        line.push(
          `bare ${b.requests} req, p50 ${phases.bare.client.p50.toFixed(3)} p99 ${phases.bare.client.p99.toFixed(3)} ms`,
        );
      } else {
        const c = await cicada();
        phases.cicada = { client: c.client, server: percentiles(await serverSide()) };
        line.push(
          `cicada ${c.requests} req (exit ${c.code}), p50 ${c.client.p50.toFixed(3)} p99 ${c.client.p99.toFixed(3)} ms`,
        );
      }
    }
    results.push({ bare: phases.bare!, cicada: phases.cicada! });
    console.log(`round ${round}: ${line.join("; ")}`);
  }
} finally {
  target.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}

const med = (xs: number[]) => median(xs)!;
const ms = (v: number, sign = false) => `${sign && v >= 0 ? "+" : ""}${v.toFixed(3)} ms`;
console.log(
  "\n      target's own   bare client   cicada     cicada − bare (within rounds)        less the target's own\n" +
    "      (median)       (median)      (median)   median, min–max                      median   goal",
);
for (const [name, , goal] of POINTS) {
  const diff = results.map((r) => r.cicada.client[name] - r.bare.client[name]);
  // What each client adds over the target's own figure in its phase, Cicada's less the bare client's:
  // takes out the target's own drift between phases.
  const added = results.map(
    (r) => r.cicada.client[name] - r.cicada.server[name] - (r.bare.client[name] - r.bare.server[name]),
  );
  const d = med(diff);
  const verdict = goal === undefined ? "" : `≤ ${goal} ms: ${d <= goal ? "met" : "NOT met"}`;
  console.log(
    `${name}  ${ms(med(results.flatMap((r) => [r.bare.server[name], r.cicada.server[name]]))).padStart(10)}   ` +
      `${ms(med(results.map((r) => r.bare.client[name]))).padStart(10)}  ${ms(med(results.map((r) => r.cicada.client[name]))).padStart(10)}   ` +
      `${ms(d, true).padStart(10)}, ${range(diff, 3).padEnd(15)} ms   ${ms(med(added), true).padStart(10)}   ${verdict}`,
  );
}
console.log(
  "\n'cicada − bare' compares the two clients in the same round against the same target; the goal is\n" +
    "judged on its median. 'less the target's own' subtracts from each client's figure the target's\n" +
    "own figure for that phase before comparing, which takes out the target's drift between phases.",
);
