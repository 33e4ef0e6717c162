// Processes of the target read from Linux's /proc: which pids a name means, and one reading of each.
import { readdirSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { UsageError } from "../../core/errors.js";

/**
 * /proc counts CPU time in USER_HZ ticks, which the kernel fixes at 100 for every program
 * (whatever the kernel's own HZ), so it needs no sysconf.
 */
const TICKS_PER_SEC = 100;

/** What one process looks like in /proc. */
export interface ProcInfo {
  pid: number;
  /** Its name as /proc/PID/comm gives it (at most 15 characters). */
  comm: string;
  /** The basename of its program (argv[0]), "" for kernel threads. */
  program: string;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

export function procInfo(pid: number): ProcInfo | undefined {
  const comm = readText(`/proc/${pid}/comm`);
  if (comm === undefined) return undefined;
  const argv0 = (readText(`/proc/${pid}/cmdline`) ?? "").split("\0")[0] ?? "";
  return { pid, comm: comm.trim(), program: argv0 ? basename(argv0) : "" };
}

function hasProc(): boolean {
  return readText("/proc/self/stat") !== undefined;
}

/**
 * The processes `--monitor-pid` names: each pid as given, each name as every process whose comm
 * or program is that name (this process excepted: the generator is recorded on its own). A pid or
 * name that matches nothing is a usage error naming it.
 */
export function resolveProcesses(specs: readonly string[], flag = "--monitor-pid"): ProcInfo[] {
  if (specs.length === 0) return [];
  if (!hasProc()) {
    throw new UsageError(`${flag} reads /proc, which this system does not have (Linux only)`);
  }
  const out = new Map<number, ProcInfo>();
  let all: ProcInfo[] | undefined;
  for (const spec of specs) {
    if (/^\d+$/.test(spec)) {
      const info = procInfo(Number(spec));
      if (!info) throw new UsageError(`${flag} ${spec}: no process with that id`);
      out.set(info.pid, info);
      continue;
    }
    all ??= readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)
      .map((d) => procInfo(Number(d)))
      .filter((p): p is ProcInfo => p !== undefined);
    const found = all.filter((p) => p.comm === spec || p.program === spec);
    if (found.length === 0) throw new UsageError(`${flag} ${spec}: no running process has that name`);
    for (const p of found) out.set(p.pid, p);
  }
  return [...out.values()];
}

/** One reading of a process: figures that exist now, and cumulative CPU ticks for the rate. */
export interface ProcReading {
  at: number;
  cpuTicks: number;
  rssBytes: number;
  threads: number;
  fds?: number;
  ioReadBytes?: number;
  ioWriteBytes?: number;
}

/** Reads a process; undefined once it has exited. */
export function readProcess(pid: number): ProcReading | undefined {
  const stat = readText(`/proc/${pid}/stat`);
  const status = readText(`/proc/${pid}/status`);
  if (stat === undefined || status === undefined) return undefined;
  // The name in parentheses may hold spaces and parentheses: fields start after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is the state (field 3 of proc(5)): utime and stime are fields 14 and 15.
  if (fields[0] === "Z" || fields[0] === "X") return undefined;
  const cpuTicks = Number(fields[11]) + Number(fields[12]);
  const kb = (key: string) => {
    const m = new RegExp(`^${key}:\\s*(\\d+)`, "m").exec(status);
    return m ? Number(m[1]) : undefined;
  };
  const reading: ProcReading = {
    at: Date.now(),
    cpuTicks,
    rssBytes: (kb("VmRSS") ?? 0) * 1024,
    threads: kb("Threads") ?? Number(fields[17]),
  };
  try {
    reading.fds = readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    // Another user's process: its fds are not ours to list.
  }
  const io = readText(`/proc/${pid}/io`);
  if (io !== undefined) {
    const r = /^read_bytes:\s*(\d+)/m.exec(io);
    const w = /^write_bytes:\s*(\d+)/m.exec(io);
    if (r) reading.ioReadBytes = Number(r[1]);
    if (w) reading.ioWriteBytes = Number(w[1]);
  }
  return reading;
}

/** CPU use between two readings, in percent of one core; undefined when they are too close. */
export function cpuPercent(prev: ProcReading, cur: ProcReading): number | undefined {
  const dt = (cur.at - prev.at) / 1000;
  // Ticks are 10 ms: over a shorter span than this the figure is mostly rounding.
  if (dt < 0.5) return undefined;
  return Math.round(((cur.cpuTicks - prev.cpuTicks) / TICKS_PER_SEC / dt) * 100 * 10) / 10;
}
