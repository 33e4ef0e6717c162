/**
 * `npm run bench:memory`: generator memory per user. Runs N users that each GET and sleep
 * between(1, 3) s against nginx, samples the generator's RSS, and prints the peak.
 *
 *   BENCH_USERS=19000 npm run bench:memory                       # one connection per user
 *   BENCH_USERS=100000 BENCH_SHARED_CONNECTIONS=2000 npm run bench:memory
 *
 * One connection per user needs one file descriptor per user in the generator (and in the
 * target): raise `ulimit -n` first. See docs/performance.md.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, root } from "./shared.js";

const USERS = Number(process.env.BENCH_USERS ?? 10_000);
const SHARED = Number(process.env.BENCH_SHARED_CONNECTIONS ?? 0);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const SPAWN_RATE = Number(process.env.BENCH_SPAWN_RATE ?? 5000);

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

const work = mkdtempSync(join(tmpdir(), "cicada-mem-"));
const port = await freePort();
const conf = join(work, "nginx.conf");
writeFileSync(
  conf,
  `worker_processes 2;\nworker_rlimit_nofile 20000;\ndaemon off;\npid ${work}/nginx.pid;\nerror_log ${work}/error.log crit;\n` +
    `events { worker_connections 19000; }\nhttp { access_log off; keepalive_requests 10000000; keepalive_timeout 300; ` +
    `server { listen 127.0.0.1:${port} backlog=65535; location / { return 200 'ok'; } } }\n`,
);
if (spawnSync("sh", ["-c", "command -v nginx || test -x /usr/sbin/nginx"]).status !== 0) {
  console.log("nginx is not installed; this benchmark needs it as a target that holds many connections");
  process.exit(0);
}
const nginx = spawn("/usr/sbin/nginx", ["-c", conf, "-p", work], { stdio: "ignore" });
await new Promise((r) => setTimeout(r, 500));
const out = join(work, "r.json");
const gen = spawn(
  process.execPath,
  [
    ...(process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(" ") : []),
    join(root, "dist/src/cicada.js"),
    "run",
    "--headless",
    join(root, "bench/loadfiles/idle.ts"),
    "-H",
    `http://127.0.0.1:${port}`,
    "-u",
    String(USERS),
    "-r",
    String(SPAWN_RATE),
    "-t",
    `${SECONDS}s`,
    "--only-summary",
    "--json",
    out,
    ...(process.env.BENCH_PROCESSES ? ["--processes", process.env.BENCH_PROCESSES] : []),
  ],
  {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, BENCH_SHARED_CONNECTIONS: String(SHARED) },
  },
);
let peak = 0;
const sampler = setInterval(() => {
  peak = Math.max(peak, rssMb(gen.pid!));
}, 250);
const code = await new Promise<number | null>((r) => gen.on("close", r));
clearInterval(sampler);
nginx.kill("SIGTERM");
try {
  const r = JSON.parse(readFileSync(out, "utf8"));
  console.log(
    `${USERS} users (${SHARED > 0 ? `${SHARED} shared connections` : "one connection each"}): ` +
      `peak RSS ${peak.toFixed(0)} MB, ${((peak * 1024) / USERS).toFixed(1)} KB/user; ` +
      `peak users ${r.users.peak}, ${r.totals.requests} requests, ${r.totals.failures} failures, exit ${code}`,
  );
  if (r.failures.length > 0) console.log("failures:", r.failures.slice(0, 3));
} catch (err) {
  console.log(`no result (exit ${code}): ${(err as Error).message}`);
}
setTimeout(() => rmSync(work, { recursive: true, force: true }), 300);
