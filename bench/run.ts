/**
 * `npm run bench`: measures Cicada's request rate against references on loopback and prints
 * ratios. Never fails on speed; it reports.
 *
 *   BENCH_SECONDS=5 BENCH_CONNECTIONS=50 npm run bench
 *   BENCH_URL=http://127.0.0.1:8080/ npm run bench     # e.g. an nginx you started
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Pool } from "undici";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const root = fileURLToPath(new URL("../../", import.meta.url));

async function startTarget(): Promise<{ url: string; stop: () => void }> {
  if (process.env.BENCH_URL) return { url: process.env.BENCH_URL, stop: () => {} };
  const child = spawn(process.execPath, [join(root, "dist/bench/target.js")], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<string>((resolve) =>
    child.stdout.once("data", (d) => resolve(String(d).trim())),
  );
  return { url: `http://127.0.0.1:${port}/`, stop: () => child.kill("SIGTERM") };
}

async function undiciPool(url: string): Promise<number> {
  const u = new URL(url);
  const pool = new Pool(u.origin, { connections: CONNECTIONS, pipelining: 1 });
  let n = 0;
  const end = performance.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < end) {
        const r = await pool.request({ path: u.pathname, method: "GET" });
        await r.body.dump();
        n++;
      }
    }),
  );
  await pool.close();
  return n / SECONDS;
}

function cicada(url: string): number {
  const dir = mkdtempSync(join(tmpdir(), "cicada-bench-"));
  try {
    const out = join(dir, "r.json");
    execFileSync(
      process.execPath,
      [
        join(root, "dist/src/cli/main.js"),
        "run",
        join(root, "bench/loadfiles/get.ts"),
        "-H",
        new URL(url).origin,
        "-u",
        String(CONNECTIONS),
        "-r",
        String(CONNECTIONS * 100),
        "-t",
        `${SECONDS}s`,
        "--only-summary",
        "--json",
        out,
      ],
      { stdio: ["ignore", "ignore", "inherit"] },
    );
    return JSON.parse(readFileSync(out, "utf8")).totals.rps;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function wrk(url: string): number | undefined {
  if (spawnSync("which", ["wrk"]).status !== 0) return undefined;
  const out = execFileSync("wrk", ["-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, url], { encoding: "utf8" });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

const target = await startTarget();
try {
  const rows: Array<[string, number | undefined]> = [];
  rows.push(["wrk (1 thread)", wrk(target.url)]);
  rows.push(["undici Pool loop", await undiciPool(target.url)]);
  rows.push(["cicada run (scripted users)", cicada(target.url)]);
  const ref = rows.find(([, v]) => v !== undefined)?.[1] ?? 1;
  console.log(`target ${target.url}, ${CONNECTIONS} connections, ${SECONDS}s each\n`);
  for (const [name, v] of rows) {
    if (v === undefined) console.log(`${name.padEnd(30)} (not installed)`);
    else console.log(`${name.padEnd(30)} ${v.toFixed(0).padStart(8)} req/s   ${(v / ref).toFixed(2)}×`);
  }
} finally {
  target.stop();
}
