/**
 * `npm run bench:latency`: how much latency the generator adds. A target that answers after
 * 10 ms records each request's duration itself; Cicada runs ~1,000 requests/s against it; the
 * two distributions are compared. Goal: p50 within 0.3 ms and p99 within 2 ms of the truth.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const root = fileURLToPath(new URL("../../", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "cicada-lat-"));

const target = spawn(process.execPath, [join(root, "dist/bench/delay-target.js"), "10"], {
  stdio: ["ignore", "pipe", "inherit"],
});
let out = "";
target.stdout.on("data", (d) => {
  out += d;
});
while (!out.includes("\n")) await new Promise((r) => setTimeout(r, 20));
const port = out.trim();
out = "";
const json = join(work, "r.json");
const gen = spawnSync(
  process.execPath,
  [
    join(root, "dist/src/cli/main.js"),
    "run",
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
    ...(process.env.BENCH_PROCESSES ? ["--processes", process.env.BENCH_PROCESSES] : []),
  ],
  { stdio: ["ignore", "ignore", "inherit"] },
);
target.kill("SIGTERM");
await new Promise((r) => target.on("close", r));
const truth = (JSON.parse(out.trim()) as number[]).sort((a, b) => a - b);
const pct = (p: number) => truth[Math.min(truth.length - 1, Math.ceil((p / 100) * truth.length) - 1)]!;
const r = JSON.parse(readFileSync(json, "utf8"));
const lat = r.totals.latencyMs;
console.log(
  `target saw ${truth.length} requests; cicada reported ${r.totals.requests} (+${r.totals.cancelled} cancelled), ${r.totals.rps} req/s (exit ${gen.status})`,
);
console.log(`           target (truth)   cicada    difference   goal`);
for (const [name, p, goal] of [
  ["p50", 50, 0.3],
  ["p90", 90, undefined],
  ["p99", 99, 2],
] as const) {
  const t = pct(p);
  const c = lat[name] as number;
  const d = c - t;
  const verdict =
    goal === undefined ? "" : Math.abs(d) <= goal ? `≤ ${goal} ms: met` : `≤ ${goal} ms: NOT met`;
  console.log(
    `${name.padEnd(10)} ${t.toFixed(3).padStart(10)} ms ${c.toFixed(3).padStart(8)} ms ${d >= 0 ? "+" : ""}${d.toFixed(3).padStart(8)} ms   ${verdict}`,
  );
}
rmSync(work, { recursive: true, force: true });
