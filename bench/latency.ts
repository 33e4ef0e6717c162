/**
 * `npm run bench:latency`: how much latency the generator adds. A target that answers after
 * 10 ms records each request's duration itself. Against it run, one after the other, at about
 * 1,000 requests/s (10 connections, one request every 10 ms each):
 *   - a bare raw-socket client: the floor any Node client on this machine sees;
 *   - Cicada with a scripted HttpUser.
 * Goal: Cicada adds at most 0.3 ms at p50 and 1 ms at p99 to the bare client's figures. The two
 * runs hit separate target processes whose own timers differ by a few tenths of a millisecond,
 * so Cicada can come out below the bare client: that counts as adding nothing.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { root } from "./shared.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);

interface Target {
  port: number;
  /** Stops the target and returns the durations it recorded. */
  stop(): Promise<number[]>;
}

async function startTarget(): Promise<Target> {
  const child = spawn(process.execPath, [join(root, "dist/bench/delay-target.js"), "10"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout.on("data", (d) => {
    out += d;
  });
  while (!out.includes("\n")) await new Promise((r) => setTimeout(r, 20));
  const port = Number(out.trim());
  out = "";
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await new Promise((r) => child.on("close", r));
      return JSON.parse(out.trim()) as number[];
    },
  };
}

/** The floor: raw sockets, no parsing beyond spotting the body, same pacing as the loadfile. */
async function bareClient(port: number): Promise<number[]> {
  const lat: number[] = [];
  const end = Date.now() + SECONDS * 1000;
  const req = Buffer.from("GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
  await Promise.all(
    Array.from(
      { length: 10 },
      () =>
        new Promise<void>((done) => {
          const s = connect(port, "127.0.0.1");
          s.setNoDelay(true);
          let t0 = 0;
          const go = () => {
            if (Date.now() > end) {
              s.end();
              done();
              return;
            }
            t0 = performance.now();
            s.write(req);
          };
          s.on("connect", go);
          s.on("data", (d: Buffer) => {
            if (d.indexOf("\r\n\r\nok") < 0) return;
            const now = performance.now();
            lat.push(now - t0);
            setTimeout(go, Math.max(0, 10 - (now - t0)));
          });
        }),
    ),
  );
  return lat;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

const bareTarget = await startTarget();
const bare = (await bareClient(bareTarget.port)).sort((a, b) => a - b);
const bareTruth = (await bareTarget.stop()).sort((a, b) => a - b);

const target = await startTarget();
const work = mkdtempSync(join(tmpdir(), "cicada-lat-"));
const json = join(work, "r.json");
const gen = spawnSync(
  process.execPath,
  [
    join(root, "dist/src/cicada.js"),
    "run",
    "--headless",
    join(root, "bench/loadfiles/paced.ts"),
    "-H",
    `http://127.0.0.1:${target.port}`,
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
const truth = (await target.stop()).sort((a, b) => a - b);
const r = JSON.parse(readFileSync(json, "utf8"));
rmSync(work, { recursive: true, force: true });

console.log(
  `bare client: ${bare.length} requests; cicada: ${r.totals.requests} requests at ${r.totals.rps} req/s (exit ${gen.status})\n`,
);
console.log("      server-side  bare client   cicada   cicada − bare   goal");
for (const [name, p, goal] of [
  ["p50", 50, 0.3],
  ["p90", 90, undefined],
  ["p99", 99, 1],
] as const) {
  const c = r.totals.latencyMs[name] as number;
  const b = pct(bare, p);
  const d = c - b;
  const verdict = goal === undefined ? "" : `≤ ${goal} ms: ${d <= goal ? "met" : "NOT met"}`;
  console.log(
    `${name}  ${pct(truth, p).toFixed(3).padStart(8)} ms ${b.toFixed(3).padStart(8)} ms ${c.toFixed(3).padStart(8)} ms ` +
      `${(d >= 0 ? "+" : "") + d.toFixed(3)} ms`.padStart(14) +
      `   ${verdict}`,
  );
}
console.log(`\n(server-side durations of the bare run: p50 ${pct(bareTruth, 50).toFixed(3)} ms)`);
