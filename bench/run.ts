/**
 * `npm run bench`: Cicada's request rate beside wrk and autocannon, in one run, against the same
 * loopback target. Prints each rate and its ratio to wrk. It reports; it never fails on speed.
 *
 *   npm run bench
 *   BENCH_SECONDS=10 BENCH_CONNECTIONS=50 npm run bench
 *   BENCH_URL=http://127.0.0.1:8080/ npm run bench     # a target you started yourself
 *
 * With nginx installed, the target is nginx (one worker); otherwise a small Node server in its
 * own process. With taskset available and 2+ cores, the target is pinned to the last core and
 * each generator to core 0, so "per core" means what it says.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const root = fileURLToPath(new URL("../../", import.meta.url));
const cores = availableParallelism();
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
const pin = has("taskset") && cores >= 2;
const genPrefix = pin ? ["taskset", "-c", "0"] : [];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function startTarget(work: string): Promise<{ url: string; kind: string; stop: () => void }> {
  if (process.env.BENCH_URL) return { url: process.env.BENCH_URL, kind: "BENCH_URL", stop: () => {} };
  const port = await freePort();
  const nginx = ["/usr/sbin/nginx", "nginx"].find((p) => has(p));
  if (nginx) {
    const conf = join(work, "nginx.conf");
    writeFileSync(
      conf,
      `worker_processes 1;\ndaemon off;\npid ${work}/nginx.pid;\nerror_log ${work}/error.log;\n` +
        `events { worker_connections 4096; }\nhttp { access_log off; keepalive_requests 10000000; ` +
        `server { listen 127.0.0.1:${port}; location / { default_type application/json; ` +
        `return 200 '{"status":"ok","bench":"nginx"}'; } } }\n`,
    );
    const args = pin ? ["-c", String(cores - 1), nginx, "-c", conf, "-p", work] : ["-c", conf, "-p", work];
    const child = spawn(pin ? "taskset" : nginx, args, { stdio: "ignore" });
    await new Promise((r) => setTimeout(r, 500));
    return { url: `http://127.0.0.1:${port}/`, kind: "nginx", stop: () => child.kill("SIGTERM") };
  }
  const script = join(root, "dist/bench/target.js");
  const child = pin
    ? spawn("taskset", ["-c", String(cores - 1), process.execPath, script, String(port)], { stdio: "ignore" })
    : spawn(process.execPath, [script, String(port)], { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 500));
  return { url: `http://127.0.0.1:${port}/`, kind: "node", stop: () => child.kill("SIGTERM") };
}

function run(cmd: string[], opts: { encoding: "utf8" }): string {
  const [file, ...args] = [...genPrefix, ...cmd];
  return execFileSync(file!, args, { ...opts, stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 26 });
}

function wrk(url: string): number | undefined {
  if (!has("wrk")) return undefined;
  const out = run(["wrk", "-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, url], { encoding: "utf8" });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  return m ? Number(m[1]) : undefined;
}

function autocannon(url: string): number | undefined {
  const local = join(root, "node_modules/.bin/autocannon");
  const bin = has(local) ? local : has("autocannon") ? "autocannon" : undefined;
  if (!bin) return undefined;
  const out = run([bin, "-j", "-c", String(CONNECTIONS), "-d", String(SECONDS), url], { encoding: "utf8" });
  return JSON.parse(out).requests.average as number;
}

function cicada(url: string, work: string, extra: string[] = []): number {
  const out = join(work, "r.json");
  const res = spawnSync(
    genPrefix[0] ?? process.execPath,
    [
      ...genPrefix.slice(1),
      ...(genPrefix.length > 0 ? [process.execPath] : []),
      join(root, "dist/src/cicada.js"),
      "run",
      "--headless",
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
      ...extra,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  if (res.status !== 0 && res.status !== 1) throw new Error(`cicada exited with ${res.status}`);
  const r = JSON.parse(readFileSync(out, "utf8"));
  return r.totals.rps as number;
}

/** A bare Node loop: raw sockets, minimal framing. The ceiling for any Node generator here. */
function rawLoop(url: string): number {
  const u = new URL(url);
  const script = `
    const net = require("node:net");
    const req = Buffer.from("GET ${u.pathname} HTTP/1.1\\r\\nhost: ${u.host}\\r\\n\\r\\n");
    let n = 0; const end = Date.now() + ${SECONDS * 1000};
    for (let i = 0; i < ${CONNECTIONS}; i++) {
      const s = net.connect(${u.port}, "${u.hostname}"); s.setNoDelay(true); let buf = null;
      s.on("connect", () => s.write(req));
      s.on("data", (d) => {
        buf = buf ? Buffer.concat([buf, d]) : d;
        for (;;) {
          const he = buf.indexOf("\\r\\n\\r\\n"); if (he < 0) return;
          const m = /content-length: *(\\d+)/i.exec(buf.latin1Slice(0, he));
          const total = he + 4 + Number(m[1]); if (buf.length < total) return;
          n++; buf = buf.length > total ? buf.subarray(total) : null;
          if (Date.now() < end) s.write(req); else { s.destroy(); return; }
          if (!buf) return;
        }
      });
    }
    setTimeout(() => { console.log(n / ${SECONDS}); process.exit(0); }, ${SECONDS * 1000 + 200});`;
  return Number(run([process.execPath, "-e", script], { encoding: "utf8" }).trim());
}

const work = mkdtempSync(join(tmpdir(), "cicada-bench-"));
const target = await startTarget(work);
try {
  // Rounds are interleaved and the median kept: a shared machine drifts by tens of percent.
  const contenders: Array<[string, () => number | undefined]> = [
    ["wrk -t1", () => wrk(target.url)],
    ["autocannon", () => autocannon(target.url)],
    ["cicada run, 1 thread", () => cicada(target.url, work, ["--processes", "1"])],
    ["(raw-socket loop, no parsing)", () => rawLoop(target.url)],
  ];
  const samples = contenders.map((): number[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, [, measure]] of contenders.entries()) {
      const v = measure();
      if (v !== undefined) samples[i]!.push(v);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows: Array<[string, number | undefined]> = contenders.map(([name], i) => [
    name,
    median(samples[i]!),
  ]);
  const ref = rows[0]![1];
  console.log(
    `target: ${target.kind} at ${target.url}; ${CONNECTIONS} connections; ${SECONDS}s each; ` +
      `${pin ? "generator pinned to core 0, target to the last core" : "not pinned"}\n`,
  );
  for (const [name, v] of rows) {
    if (v === undefined) {
      console.log(`${name.padEnd(32)} (not installed)`);
      continue;
    }
    const ratio = ref ? `${(v / ref).toFixed(2)}× wrk` : "";
    console.log(`${name.padEnd(32)} ${v.toFixed(0).padStart(9)} req/s   ${ratio}`);
  }
} finally {
  target.stop();
  setTimeout(() => rmSync(work, { recursive: true, force: true }), 300);
}
