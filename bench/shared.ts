/**
 * What the throughput benchmarks (`npm run bench`, `npm run bench:cores`) share: the loopback
 * target, core pinning, the CPU clock of child processes (finished or running), medians and number
 * formats.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const root = fileURLToPath(new URL("../../", import.meta.url));
export const cicadaBin = join(root, "dist/src/cicada.js");
export const cores = availableParallelism();

export function has(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v '${cmd.replaceAll("'", "'\\''")}'`]).status === 0;
}

/** Pinning needs taskset and a core to spare for the target. */
export const canPin = has("taskset") && cores >= 2;
/** The last core: the target's, so the generator on core 0 never shares one with it. */
export const targetCore = String(cores - 1);

/** A port free on loopback right now, for a target started next. */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface Target {
  url: string;
  kind: string;
  stop: () => void;
}

/**
 * BENCH_URL when set; else nginx with one worker (a target that costs little per request, so
 * the generator is what gets measured) when installed; else bench/target.ts in its own process.
 * With `pin`, the target runs on the last core.
 */
export async function startTarget(work: string, pin: boolean): Promise<Target> {
  if (process.env.BENCH_URL) return { url: process.env.BENCH_URL, kind: "BENCH_URL", stop: () => {} };
  const port = await freePort();
  const prefix = pin ? ["taskset", "-c", targetCore] : [];
  const nginx = ["/usr/sbin/nginx", "nginx"].find((p) => has(p));
  let cmd: string[];
  let kind: string;
  if (nginx) {
    const conf = join(work, "nginx.conf");
    writeFileSync(
      conf,
      `worker_processes 1;\ndaemon off;\npid ${work}/nginx.pid;\nerror_log ${work}/error.log;\n` +
        `events { worker_connections 4096; }\nhttp { access_log off; keepalive_requests 10000000; ` +
        `server { listen 127.0.0.1:${port}; location / { default_type application/json; ` +
        `return 200 '{"status":"ok","bench":"nginx"}'; } } }\n`,
    );
    cmd = [...prefix, nginx, "-c", conf, "-p", work];
    kind = "nginx, one worker";
  } else {
    cmd = [...prefix, process.execPath, join(root, "dist/bench/target.js"), String(port)];
    kind = "Node target (nginx not installed)";
  }
  const child = spawn(cmd[0]!, cmd.slice(1), { stdio: "ignore" });
  await new Promise((r) => setTimeout(r, 500));
  if (child.exitCode !== null) throw new Error(`the target (${cmd.join(" ")}) exited with ${child.exitCode}`);
  return { url: `http://127.0.0.1:${port}/`, kind, stop: () => child.kill("SIGTERM") };
}

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ, almost always 100). */
const ticksPerSecond = (() => {
  const r = spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" });
  const n = Number(r.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** True when the kernel exposes /proc/self/stat: CPU per request is measured only then. */
export const canMeasureCpu = existsSync("/proc/self/stat");

/** The fields of /proc/PID/stat from field 3 on, so field N sits at index N − 3. */
function statFields(pid: number | "self"): string[] {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Field 2 (the command name) may hold spaces and parentheses: count from the last ")".
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ");
}

/**
 * CPU seconds (user + system) of this process's children that have ended and been waited for,
 * with all their threads and waited-for descendants: cutime + cstime (fields 16 and 17) of
 * /proc/self/stat. The difference around one child's run is the CPU of its whole process tree.
 */
export function childCpuSeconds(): number {
  const fields = statFields("self");
  return (Number(fields[13]) + Number(fields[14])) / ticksPerSecond;
}

/**
 * CPU seconds (user + system) a running process has used so far, all its threads included but
 * not its children: utime + stime (fields 14 and 15) of /proc/PID/stat. Undefined once it is
 * gone. Two readings bracket a window inside a run, away from its start and its end.
 */
export function processCpuSeconds(pid: number): number | undefined {
  try {
    const fields = statFields(pid);
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
  } catch {
    return undefined;
  }
}

export function median(xs: number[]): number | undefined {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid] : (s[mid - 1]! + s[mid]!) / 2;
}

/** "0.84–0.91" (or one figure when all are equal), "" when there are none. */
export function range(xs: number[], digits = 2): string {
  if (xs.length === 0) return "";
  const lo = Math.min(...xs).toFixed(digits);
  const hi = Math.max(...xs).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
}

export function envNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) {
    console.error(`${name}=${raw}: expected a positive number`);
    process.exit(2);
  }
  return n;
}
