/**
 * `npm run bench:master`: what merging costs the master of a distributed run. MASTER_WORKERS
 * simulated workers (1,000) each send the master one stats snapshot a second over their own
 * loopback TCP connection, in the remote transport's wire form (one JSON text per line); the
 * master reads them with the real socket transport and merges them into a StatsAggregate as the
 * coordinator does. Prints the master's CPU per second of run, snapshot size and merge time per
 * snapshot, and the ratio to the goal (half a core). It reports; it never fails on speed.
 *
 *   npm run bench:master
 *   MASTER_WORKERS=1000 MASTER_SECONDS=10 MASTER_RPS=1000 npm run bench:master
 *
 * The workers are simulated by MASTER_PROCESSES (2) child processes, so their CPU is not counted.
 * Their snapshots are real: a Recorder per simulated worker records MASTER_RPS requests a second
 * (spread over MASTER_ENDPOINTS endpoints, 20) with log-normal latencies, a few 404s and 500s;
 * each child takes a pool of such snapshots once and replays them with each worker's own id,
 * sequence number and time, so sending costs the children nothing but the write.
 */
import { spawn } from "node:child_process";
import { connect, createServer, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import {
  type CoordinatorMessage,
  encodeMessage,
  PROTOCOL_VERSION,
  type WorkerMessage,
} from "../src/runner/protocol.js";
import { socketTransport } from "../src/runner/remote.js";
import { StatsAggregate } from "../src/stats/aggregate.js";
import { Recorder } from "../src/stats/recorder.js";

const WORKERS = Number(process.env.MASTER_WORKERS ?? 1000);
const SECONDS = Number(process.env.MASTER_SECONDS ?? 10);
/** Seconds of snapshots before the measured window: connections, JIT, first histograms. */
const WARMUP = Number(process.env.MASTER_WARMUP ?? 3);
const RPS = Number(process.env.MASTER_RPS ?? 1000);
const ENDPOINTS = Number(process.env.MASTER_ENDPOINTS ?? 20);
const PROCESSES = Number(process.env.MASTER_PROCESSES ?? 2);
/** Distinct snapshots each child records and replays. */
const POOL = Number(process.env.MASTER_POOL ?? 50);
/** The goal, in cores. */
const GOAL = 0.5;

if (process.argv[2] === "workers") {
  await workers(Number(process.argv[3]), Number(process.argv[4]), Number(process.argv[5]));
} else {
  await master();
}

/** Deterministic, so two runs send the same snapshots. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** One second of one worker, recorded as a worker would record it. */
function recordSecond(random: () => number, users: number): ReturnType<Recorder["snapshot"]> {
  const r = new Recorder("pool");
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  for (let i = 0; i < RPS; i++) {
    const e = i % ENDPOINTS;
    const method = e % 4 === 3 ? "POST" : "GET";
    const name = `/api/v1/resource-${e}/{id}`;
    // Medians from 4 ms to about 240 ms by endpoint, a log-normal spread, and a slow 1 %.
    const medianUs = 4000 * 1.24 ** e;
    let us = medianUs * Math.exp(0.45 * normal());
    if (random() < 0.01) us *= 4 + 6 * random();
    const ttfb = us * (0.7 + 0.25 * random());
    const roll = random();
    const status = roll < 0.004 ? 500 : roll < 0.006 ? 404 : 200;
    r.iteration();
    r.request(
      "http",
      method,
      name,
      us,
      ttfb,
      200 + Math.floor(random() * 8000),
      status >= 400 ? `HTTP ${status}` : null,
      status,
    );
    if (i % 10 === 0) r.check("status is 200", status === 200);
  }
  return r.snapshot(users, false, users);
}

/** Child: simulates `count` workers from `first` on, each on its own connection. */
async function workers(port: number, first: number, count: number): Promise<void> {
  // Bounded whatever happens to the master.
  setTimeout(() => process.exit(3), (WARMUP + SECONDS + 60) * 1000).unref();
  const random = rng(first + 1);
  const users = 50;
  // Everything after the worker's id, sequence number and time, as encodeMessage writes it.
  const tails: string[] = [];
  // Requests in each, for the master's check that nothing was lost.
  const counts: number[] = [];
  for (let p = 0; p < POOL; p++) {
    const snapshot = recordSecond(random, users);
    counts.push(snapshot.endpoints.reduce((n, e) => n + e.count, 0));
    const text = encodeMessage({ type: "stats", snapshot });
    const at = text.indexOf(',"final":');
    if (!text.startsWith('{"type":"stats","snapshot":{"workerId":') || at < 0)
      throw new Error("unexpected wire form of a stats message");
    tails.push(`${text.slice(at)}\n`);
  }
  const sockets: Socket[] = [];
  await Promise.all(
    Array.from(
      { length: count },
      (_, k) =>
        new Promise<void>((resolve, reject) => {
          const s = connect(port, "127.0.0.1", () => {
            s.setNoDelay(true);
            const hello: WorkerMessage = {
              type: "hello",
              workerId: `w${first + k}`,
              version: PROTOCOL_VERSION,
              pid: process.pid,
            };
            s.write(`${encodeMessage(hello)}\n`);
            resolve();
          });
          s.on("error", reject);
          s.on("data", () => {});
          sockets.push(s);
        }),
    ),
  );
  process.stdout.write("connected\n");
  // Workers start together, but their timers drift apart: spread the sends over the second.
  const rounds = WARMUP + SECONDS + 1;
  const start = Date.now() + 200;
  const seq = new Array<number>(count).fill(0);
  let requests = 0;
  let pending = count;
  const tick = setInterval(() => {
    const now = Date.now();
    for (let k = 0; k < count; k++) {
      const w = first + k;
      if (seq[k]! >= rounds || now < start + seq[k]! * 1000 + Math.floor((w * 1000) / WORKERS)) continue;
      const id = `w${w}`;
      const p = (w + seq[k]!) % POOL;
      const tail = tails[p]!;
      const s = sockets[k]!;
      s.write(`{"type":"stats","snapshot":{"workerId":"${id}","seq":${seq[k]},"at":${now}${tail}`);
      const hb: WorkerMessage = { type: "heartbeat", at: now, elu: 0.3, windowMs: 1000, heapUsedMB: 80 };
      s.write(`${encodeMessage(hb)}\n`);
      requests += counts[p]!;
      if (++seq[k]! === rounds) {
        s.end();
        if (--pending === 0) {
          clearInterval(tick);
          process.stdout.write(`sent ${requests}\n`);
        }
      }
    }
  }, 5);
}

async function master(): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  const stats = new StatsAggregate(Date.now());
  const lastHeard = new Map<string, number>();
  const load = new Map<string, number>();
  let sockets = 0;
  let open = 0;
  let snapshots = 0;
  let mergeMs = 0;
  let measuring = false;
  let windowSnapshots = 0;
  let windowMergeMs = 0;
  const all: Socket[] = [];
  let closed: (() => void) | undefined;
  const server = createServer((socket) => {
    all.push(socket);
    sockets++;
    open++;
    socket.on("close", () => {
      if (--open === 0 && sockets === WORKERS) closed?.();
    });
    const t = socketTransport<CoordinatorMessage, WorkerMessage>(socket);
    let id = "";
    t.onMessage((m) => {
      // What the coordinator does with each message (runner/coordinator.ts).
      if (m.type === "stats") {
        lastHeard.set(m.snapshot.workerId, Date.now());
        const t0 = performance.now();
        stats.add(m.snapshot);
        const ms = performance.now() - t0;
        snapshots++;
        mergeMs += ms;
        if (measuring) {
          windowSnapshots++;
          windowMergeMs += ms;
        }
      } else if (m.type === "heartbeat") load.set(id, m.elu ?? 0);
      else if (m.type === "hello") id = m.workerId;
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;

  const children = Array.from({ length: PROCESSES }, (_, i) => {
    const first = Math.floor((i * WORKERS) / PROCESSES);
    const count = Math.floor(((i + 1) * WORKERS) / PROCESSES) - first;
    const child = spawn(process.execPath, [self, "workers", String(port), String(first), String(count)], {
      stdio: ["ignore", "pipe", "inherit"],
      env: process.env,
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    const exited = new Promise((r) => child.once("exit", r));
    return { child, exited, output: () => out };
  });
  const deadline = setTimeout(
    () => {
      console.error(
        `the benchmark did not finish in time: ${sockets}/${WORKERS} connected, ${open} open, ${snapshots} snapshots merged`,
      );
      for (const c of children) c.child.kill("SIGTERM");
      process.exit(1);
    },
    (WARMUP + SECONDS + 90) * 1000,
  );
  deadline.unref();

  const bytesRead = () => all.reduce((n, s) => n + s.bytesRead, 0);
  // The console's live line reads the current view once a second.
  const live = setInterval(() => stats.current(), 1000);

  // Warm-up: from the first snapshot on, WARMUP seconds.
  while (snapshots === 0) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const bytes0 = bytesRead();
  const cpu0 = process.cpuUsage();
  const elu0 = performance.eventLoopUtilization();
  const t0 = performance.now();
  measuring = true;
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  measuring = false;
  const wallSec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const elu = performance.eventLoopUtilization(elu0).utilization;
  const bytes = bytesRead() - bytes0;
  clearInterval(live);

  // Drain: every worker sends its last snapshot and hangs up.
  await new Promise<void>((r) => {
    closed = r;
    if (open === 0 && sockets === WORKERS) r();
  });
  await Promise.all(children.map((c) => c.exited));
  stats.finish();
  server.close();
  const sent = children.reduce((n, c) => n + Number(/sent (\d+)/.exec(c.output())?.[1] ?? Number.NaN), 0);

  const cpuSec = (cpu.user + cpu.system) / 1e6;
  const cores = cpuSec / wallSec;
  const perSnapUs = (cpuSec * 1e6) / windowSnapshots;
  const fmt = (n: number, d = 1) => n.toFixed(d);
  console.log(
    `master: ${WORKERS} workers x 1 snapshot/s over loopback TCP, ${ENDPOINTS} endpoints, ` +
      `${RPS} req/s per worker (${fmt((WORKERS * RPS) / 1e6, 2)}M req/s in all), ${PROCESSES} sending processes`,
  );
  console.log(
    `window: ${fmt(wallSec)} s after ${WARMUP} s warm-up; ${windowSnapshots} snapshots merged ` +
      `(${fmt(windowSnapshots / wallSec, 0)}/s, expected ${WORKERS}/s)`,
  );
  console.log(`snapshot size: ${fmt(bytes / windowSnapshots / 1024)} KiB on the wire (with its heartbeat)`);
  console.log(
    `merge (StatsAggregate.add) per snapshot: ${fmt((windowMergeMs * 1000) / windowSnapshots, 0)} µs; ` +
      `all master CPU per snapshot (read, decode, merge): ${fmt(perSnapUs, 0)} µs`,
  );
  console.log(`event-loop utilization: ${fmt(elu * 100)} %`);
  console.log(
    `master CPU: ${fmt(cores, 3)} cores (user ${fmt(cpu.user / 1e6 / wallSec, 3)}, system ${fmt(cpu.system / 1e6 / wallSec, 3)}); ` +
      `goal < ${GOAL}: ${fmt(cores / GOAL, 2)}x the goal, ${cores < GOAL ? "met" : "NOT met"}`,
  );
  if (windowSnapshots < 0.95 * WORKERS * wallSec)
    console.log(
      `the master fell behind (${fmt(windowSnapshots / wallSec, 0)} of ${WORKERS} snapshots a second): it needs ` +
        `about ${fmt((perSnapUs * WORKERS) / 1e6, 2)} cores at full rate, more than it got`,
    );
  const merged = stats.total.count;
  console.log(
    `exactness: ${merged} requests merged, ${sent} sent${merged === sent ? "" : " -- MISMATCH"}; ` +
      `${snapshots} snapshots in all, ${fmt(mergeMs)} ms merging`,
  );
  if (merged !== sent) process.exitCode = 1;
}
