/**
 * `npm run bench`: Cicada's request rate beside the limit of its own platform, in one run,
 * against the same loopback target. Contenders: a raw Node socket loop (the reference: every
 * ratio is to it), autocannon, wrk -t1 when installed, `cicada quick` and `cicada run` with a
 * scripted HttpUser. Prints each one's median req/s over the rounds, its ratio to the raw loop,
 * the range of the within-round ratios, and CPU per request. It reports; it never fails on speed.
 *
 *   npm run bench
 *   BENCH_SECONDS=10 BENCH_CONNECTIONS=50 BENCH_ROUNDS=5 npm run bench
 *   BENCH_URL=http://127.0.0.1:8080/ npm run bench     # a target you started yourself
 *
 * With nginx installed, the target is nginx (one worker); otherwise a small Node server in its
 * own process. With taskset available and 2+ cores, the target is pinned to the last core and
 * each generator to core 0, so "per core" means what it says. autocannon is taken from
 * node_modules/.bin or PATH, else installed once into a folder of the temp directory
 * (BENCH_AUTOCANNON_DIR) and reused; without network it is left out.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  canMeasureCpu,
  canPin,
  childCpuSeconds,
  cicadaBin,
  envNumber,
  has,
  median,
  range,
  root,
  startTarget,
  targetCore,
} from "./shared.js";

const SECONDS = envNumber("BENCH_SECONDS", 5);
const CONNECTIONS = envNumber("BENCH_CONNECTIONS", 50);
const ROUNDS = envNumber("BENCH_ROUNDS", 3);
const INSTALL_TIMEOUT_MS = envNumber("BENCH_INSTALL_TIMEOUT", 120) * 1000;
const genPrefix = canPin ? ["taskset", "-c", "0"] : [];

interface Sample {
  rps: number;
  requests: number;
  /** CPU seconds of the contender's whole process tree; undefined without /proc. */
  cpu: number | undefined;
}

/**
 * Runs one generator command to its end, pinned to core 0, and returns its stdout and the CPU
 * its process tree used. Bounded in time: a contender that hangs is killed.
 */
function exec(cmd: string[], okStatus: number[] = [0]): { stdout: string; cpu: number | undefined } {
  const [file, ...args] = [...genPrefix, ...cmd];
  const before = canMeasureCpu ? childCpuSeconds() : 0;
  const r = spawnSync(file!, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 1 << 26,
    timeout: (SECONDS * 3 + 60) * 1000,
  });
  const cpu = canMeasureCpu ? childCpuSeconds() - before : undefined;
  if (r.error) throw r.error;
  if (r.status === null || !okStatus.includes(r.status)) {
    const why = r.status === null ? `was killed (${r.signal})` : `exited with ${r.status}`;
    throw new Error(`${cmd.join(" ")} ${why}: ${r.stderr.trim().split("\n").slice(-3).join(" / ")}`);
  }
  return { stdout: r.stdout, cpu };
}

/** The reference: raw sockets, minimal framing, no stats. The ceiling for any Node generator here. */
function rawLoop(url: string): Sample {
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
  const { stdout, cpu } = exec([process.execPath, "-e", script]);
  const rps = Number(stdout.trim());
  return { rps, requests: rps * SECONDS, cpu };
}

/**
 * A folder only this user can write to: autocannon's binary is run from it, so a folder another
 * local user created first under the same name must not be trusted.
 */
function privateDir(dir: string): boolean {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = statSync(dir);
  return (process.getuid === undefined || st.uid === process.getuid()) && (st.mode & 0o022) === 0;
}

/** autocannon's command: installed, or installed now into the temp folder; undefined without it. */
function findAutocannon(): string | undefined {
  const local = join(root, "node_modules/.bin/autocannon");
  if (existsSync(local)) return local;
  if (has("autocannon")) return "autocannon";
  const dir = process.env.BENCH_AUTOCANNON_DIR ?? join(tmpdir(), "cicada-bench-autocannon");
  const bin = join(dir, "node_modules/.bin/autocannon");
  if (!privateDir(dir)) {
    console.log(`autocannon: ${dir} belongs to another user or is writable by others; going on without it`);
    return undefined;
  }
  if (existsSync(bin)) return bin;
  const r = spawnSync(
    "npm",
    ["install", "--prefix", dir, "--no-save", "--no-audit", "--no-fund", "autocannon@8"],
    { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: INSTALL_TIMEOUT_MS },
  );
  if (r.status === 0 && existsSync(bin)) {
    console.log(`autocannon: installed autocannon@8 into ${dir} (reused next time)`);
    return bin;
  }
  const why = r.error
    ? r.error.message
    : r.status === null
      ? `timed out after ${INSTALL_TIMEOUT_MS / 1000} s`
      : (r.stderr
          .trim()
          .split("\n")
          .find((l) => /ERR/.test(l)) ?? `npm exited with ${r.status}`);
  console.log(`autocannon: not installed and could not be installed (${why}); going on without it`);
  return undefined;
}

function autocannon(bin: string, url: string): Sample {
  const { stdout, cpu } = exec([bin, "-j", "-c", String(CONNECTIONS), "-d", String(SECONDS), url]);
  const r = JSON.parse(stdout) as { requests: { average: number; total?: number } };
  return { rps: r.requests.average, requests: r.requests.total ?? r.requests.average * SECONDS, cpu };
}

function wrk(url: string): Sample {
  const { stdout, cpu } = exec(["wrk", "-t1", `-c${CONNECTIONS}`, `-d${SECONDS}s`, url]);
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  const total = /(\d+) requests in/.exec(stdout);
  if (!rate) throw new Error(`wrk printed no Requests/sec: ${stdout.trim()}`);
  const rps = Number(rate[1]);
  return { rps, requests: total ? Number(total[1]) : rps * SECONDS, cpu };
}

/** Reads a cicada JSON result; exit 1 (some request failed) still has figures, but says so. */
function cicadaResult(file: string, cpu: number | undefined, name: string): Sample {
  const r = JSON.parse(readFileSync(file, "utf8")) as {
    totals: { rps: number; requests: number; failures: number };
  };
  if (r.totals.failures > 0) console.log(`  (${name}: ${r.totals.failures} failed requests)`);
  return { rps: r.totals.rps, requests: r.totals.requests, cpu };
}

function cicadaQuick(url: string, work: string): Sample {
  const out = join(work, "quick.json");
  const { cpu } = exec(
    [
      process.execPath,
      cicadaBin,
      "quick",
      url,
      "-c",
      String(CONNECTIONS),
      "-d",
      `${SECONDS}s`,
      "--only-summary",
      "--json",
      out,
    ],
    [0, 1],
  );
  return cicadaResult(out, cpu, "cicada quick");
}

function cicadaRun(url: string, work: string): Sample {
  const out = join(work, "run.json");
  const { cpu } = exec(
    [
      process.execPath,
      cicadaBin,
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
      "--processes",
      "1",
      "--only-summary",
      "--json",
      out,
    ],
    [0, 1],
  );
  return cicadaResult(out, cpu, "cicada run");
}

interface Contender {
  name: string;
  measure: () => Sample;
  samples: Array<Sample | undefined>;
  errors: string[];
}

const work = mkdtempSync(join(tmpdir(), "cicada-bench-"));
const target = await startTarget(work, canPin);
let failed = false;
try {
  const autocannonBin = findAutocannon();
  const contenders: Contender[] = [];
  const add = (name: string, measure: () => Sample) =>
    contenders.push({ name, measure, samples: Array(ROUNDS).fill(undefined), errors: [] });
  add("raw Node socket loop", () => rawLoop(target.url));
  if (autocannonBin) add("autocannon", () => autocannon(autocannonBin, target.url));
  if (has("wrk")) add("wrk -t1", () => wrk(target.url));
  add("cicada quick", () => cicadaQuick(target.url, work));
  add("cicada run, --processes 1", () => cicadaRun(target.url, work));
  const [raw] = contenders;
  const byName = (name: string) => contenders.find((c) => c.name.startsWith(name));

  console.log(
    `target: ${target.kind} at ${target.url}; ${CONNECTIONS} connections; ${SECONDS} s each; ` +
      `${ROUNDS} rounds; ${canPin ? `generator pinned to core 0, target to core ${targetCore}` : "not pinned"}` +
      `${has("wrk") ? "" : "; wrk not installed"}\n`,
  );

  // Rounds are interleaved, and the order rotates so no contender always runs first: a shared
  // machine drifts by tens of percent between runs, and within a round conditions are alike.
  for (let round = 0; round < ROUNDS; round++) {
    const line: string[] = [];
    for (let k = 0; k < contenders.length; k++) {
      const c = contenders[(round + k) % contenders.length]!;
      try {
        const s = c.measure();
        c.samples[round] = s;
        line.push(`${c.name} ${(s.rps / 1000).toFixed(1)}k`);
      } catch (err) {
        c.errors.push((err as Error).message);
        line.push(`${c.name} failed`);
        failed = true;
      }
    }
    console.log(`round ${round + 1}: ${line.join(", ")}`);
  }

  const rates = (c: Contender) => c.samples.flatMap((s) => (s ? [s.rps] : []));
  const cpuPerRequest = (c: Contender) =>
    c.samples.flatMap((s) => (s?.cpu !== undefined && s.requests > 0 ? [(s.cpu * 1e6) / s.requests] : []));
  /** a ÷ b of each round where both ran: rounds share the machine's conditions. */
  const withinRounds = (a: Contender, b: Contender) =>
    a.samples.flatMap((s, i) => {
      const t = b.samples[i];
      return s && t && t.rps > 0 ? [s.rps / t.rps] : [];
    });

  const rawRate = median(rates(raw!));
  const rawCpu = median(cpuPerRequest(raw!));
  const head = ["", "median req/s", "× raw loop", "within rounds"];
  if (canMeasureCpu) head.push("CPU µs/req", "CPU × raw");
  const rows = [head];
  for (const c of contenders) {
    const rate = median(rates(c));
    const cpu = median(cpuPerRequest(c));
    const row = [
      c.name,
      rate === undefined ? "failed" : Math.round(rate).toLocaleString("en-US"),
      rate !== undefined && rawRate ? (rate / rawRate).toFixed(2) : "",
      range(withinRounds(c, raw!)),
    ];
    if (canMeasureCpu) {
      row.push(
        cpu === undefined ? "" : cpu.toFixed(1),
        cpu !== undefined && rawCpu ? (cpu / rawCpu).toFixed(2) : "",
      );
    }
    rows.push(row);
  }
  const widths = head.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  console.log("");
  for (const r of rows)
    console.log(
      r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("   "),
    );

  // The issue's goals, as ratios (medians, then the range of the within-round ratios).
  console.log("");
  const ratio = (label: string, a: Contender | undefined, b: Contender | undefined, goal: string) => {
    if (!a || !b) return console.log(`${label.padEnd(26)} (${label.split(" ÷ ")[a ? 1 : 0]} did not run)`);
    const ma = median(rates(a));
    const mb = median(rates(b));
    if (ma === undefined || !mb) return console.log(`${label.padEnd(26)} (a run failed)`);
    console.log(
      `${label.padEnd(26)} ${(ma / mb).toFixed(2)}   within rounds ${range(withinRounds(a, b))}   goal ${goal}`,
    );
  };
  const run = byName("cicada run");
  ratio("cicada run ÷ raw loop", run, raw, "≥ 0.85");
  ratio("cicada run ÷ autocannon", run, byName("autocannon"), "≥ 1.5");
  ratio("quick ÷ run", byName("cicada quick"), run, "≥ 1.00");

  if (canMeasureCpu) {
    console.log(
      "\nCPU µs/req: user + system CPU of the contender's whole process tree (all threads; this\n" +
        "process's cutime + cstime before and after it ran) ÷ the requests it completed, median of\n" +
        "the rounds. Nothing is subtracted: it includes each process's start, which for cicada means\n" +
        "loading its modules and (run) bundling the loadfile, a few tenths of a second of CPU.",
    );
  }
  for (const c of contenders) for (const e of c.errors) console.log(`${c.name} could not run: ${e}`);
} finally {
  target.stop();
  setTimeout(() => rmSync(work, { recursive: true, force: true }), 300);
}
if (failed) process.exitCode = 1;
