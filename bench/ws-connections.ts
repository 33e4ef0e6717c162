/**
 * `node dist/bench/ws-connections.js`: how many WebSocket connections one generator process
 * holds, and at what memory. An echo server runs in a child process on loopback; the generator
 * (`cicada run bench/loadfiles/ws.ts --processes 1`) opens WS_CONNECTIONS connections at 1,000/s
 * and sends a message on each every 5 s for WS_SECONDS; its peak RSS is sampled from /proc.
 *
 *   WS_CONNECTIONS=10000 WS_SECONDS=30 node dist/bench/ws-connections.js
 *
 * WS_DEFLATE=1 turns permessage-deflate on at both ends, to see what compression costs.
 * Past ~28,000 connections to one address and port, give source addresses:
 * WS_SOURCE_ADDRESSES=127.0.0.1,127.0.0.2 (see docs/performance.md).
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

if (process.argv[2] === "server") {
  // The target: an echo server, in its own process so its memory and CPU are not counted.
  const { WebSocketServer } = await import("ws");
  let open = 0;
  let peak = 0;
  const wss = new WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    perMessageDeflate: process.env.WS_DEFLATE === "1",
    backlog: 65535,
  });
  wss.on("connection", (ws) => {
    peak = Math.max(peak, ++open);
    ws.on("close", () => open--);
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  wss.on("listening", () => {
    process.stdout.write(`${(wss.address() as { port: number }).port}\n`);
  });
  process.on("SIGTERM", () => {
    process.stdout.write(`peak ${peak}\n`);
    process.exit(0);
  });
} else {
  await main();
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const N = Number(process.env.WS_CONNECTIONS ?? 10_000);
  const SECONDS = Number(process.env.WS_SECONDS ?? 30);
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const self = fileURLToPath(import.meta.url);

  const server = spawn(process.execPath, [self, "server"], { stdio: ["ignore", "pipe", "inherit"] });
  let serverOut = "";
  server.stdout.on("data", (d) => {
    serverOut += d;
  });
  const port = await new Promise<number>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("echo server did not start")), 10_000);
    server.stdout.on("data", () => {
      const m = /^(\d+)\n/.exec(serverOut);
      if (m) {
        clearTimeout(t);
        resolve(Number(m[1]));
      }
    });
  });

  const work = mkdtempSync(join(tmpdir(), "cicada-ws-"));
  const out = join(work, "r.json");
  const started = performance.now();
  const gen = spawn(
    process.execPath,
    [
      join(root, "dist/src/cicada.js"),
      "run",
      "--headless",
      join(root, "bench/loadfiles/ws.ts"),
      "-H",
      `http://127.0.0.1:${port}`,
      "-u",
      String(N),
      "-r",
      "1000",
      "-t",
      `${SECONDS}s`,
      "--processes",
      "1",
      "--only-summary",
      "--json",
      out,
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  let peak = 0;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssMb(gen.pid!));
  }, 250);
  const code = await new Promise<number | null>((r) => gen.on("close", r));
  clearInterval(sampler);
  const wallS = (performance.now() - started) / 1000;

  server.kill("SIGTERM");
  await new Promise((r) => server.on("close", r));
  const serverPeak = Number(/peak (\d+)/.exec(serverOut)?.[1] ?? 0);

  try {
    const r = JSON.parse(readFileSync(out, "utf8"));
    const e = r.endpoints.find(
      (x: { type: string; method: string }) => x.type === "WS" && x.method === "CONNECT",
    );
    const rtt = e?.metrics?.rtt;
    console.log(
      `${N} connections asked, ${e?.requests ?? 0} opened (${e?.failures ?? 0} failed), ` +
        `${serverPeak} held at once (server-side peak); ` +
        `${e?.counters?.sent ?? 0} messages sent, ${e?.counters?.received ?? 0} received in ${wallS.toFixed(0)} s; ` +
        `connect p50 ${e?.latencyMs.p50} ms p99 ${e?.latencyMs.p99} ms; ` +
        `rtt p50 ${rtt?.p50} ms p99 ${rtt?.p99} ms; ` +
        `peak generator RSS ${peak.toFixed(0)} MB (${((peak * 1024) / N).toFixed(1)} KB/connection); exit ${code}`,
    );
    if (r.failures.length > 0) console.log("failures:", r.failures.slice(0, 5));
    if (r.exceptions.length > 0) console.log("exceptions:", r.exceptions.slice(0, 3));
  } catch (err) {
    console.log(`no result (exit ${code}): ${(err as Error).message}`);
  }
  rmSync(work, { recursive: true, force: true });
}
