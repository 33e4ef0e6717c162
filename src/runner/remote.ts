import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import type { RemoteWorkerLink, RemoteWorkerSource } from "./coordinator.js";
import {
  type CoordinatorMessage,
  decodeMessage,
  encodeMessage,
  PROTOCOL_VERSION,
  type Transport,
  type WorkerMessage,
} from "./protocol.js";
import { Worker } from "./worker.js";

/**
 * Workers on other machines: the same messages as worker threads, one JSON text per line over
 * TCP. JSON text never holds a raw newline (JSON.stringify escapes them inside strings), so a
 * newline is an unambiguous frame end.
 */

/** Most bytes a frame may grow to before the peer is dropped: a snapshot is far smaller. */
const MAX_FRAME = 256 * 1024 * 1024;

export function socketTransport<
  Out extends CoordinatorMessage | WorkerMessage,
  In extends CoordinatorMessage | WorkerMessage,
>(socket: Socket): Transport<Out, In> & { first(): Promise<In> } {
  let handler: ((m: In) => void) | undefined;
  // A reader of one message only (the master's check of a worker's hello).
  let once: ((m: In) => void) | undefined;
  let lostHandler: ((reason: string) => void) | undefined;
  // Messages that arrive before anyone listens (a worker's hello) wait here.
  const early: In[] = [];
  let closed = false;
  let lost: string | undefined;
  let buf = "";
  socket.setEncoding("utf8");
  socket.setNoDelay(true);
  socket.on("data", (chunk: string) => {
    buf += chunk;
    if (buf.length > MAX_FRAME) {
      socket.destroy(new Error("frame too large"));
      return;
    }
    let i = buf.indexOf("\n");
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.length > 0) {
        let m: In;
        try {
          m = decodeMessage<In>(line);
        } catch {
          socket.destroy(new Error("not a Cicada message"));
          return;
        }
        if (once) {
          const take = once;
          once = undefined;
          take(m);
        } else if (handler) handler(m);
        else early.push(m);
      }
      i = buf.indexOf("\n");
    }
  });
  const gone = (reason: string) => {
    if (closed || lost !== undefined) return;
    lost = reason;
    lostHandler?.(reason);
  };
  socket.on("error", (err) => gone(`connection error: ${err.message}`));
  socket.on("close", () => gone("connection closed"));
  return {
    send: (m) => {
      if (!closed && !socket.destroyed) socket.write(`${encodeMessage(m)}\n`);
    },
    onMessage: (h) => {
      handler = h;
      for (const m of early.splice(0)) h(m);
    },
    /** The next message, read on its own: later ones still wait for `onMessage`. */
    first: () =>
      new Promise<In>((resolve) => {
        const m = early.shift();
        if (m !== undefined) resolve(m);
        else once = resolve;
      }),
    onLost: (h) => {
      lostHandler = h;
      if (lost !== undefined) h(lost);
    },
    close: () => {
      if (closed) return;
      closed = true;
      socket.end();
    },
  };
}

/**
 * The master's side: accepts worker connections, checks each says hello in this protocol
 * version, and hands them to the coordinator one by one.
 */
export class RemoteWorkers implements RemoteWorkerSource {
  private readonly server: Server;
  private readonly ready: Array<RemoteWorkerLink & { lastHeard: number }> = [];
  private readonly taken: Array<Transport<CoordinatorMessage, WorkerMessage>> = [];
  private changed: (() => void) | undefined;
  private joined: (() => void) | undefined;
  /** Every connection, so closing never waits on a peer that stopped answering. */
  private readonly sockets = new Set<Socket>();
  private readonly beat: NodeJS.Timeout;
  readonly heartbeatTimeoutMs: number;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly onNotice: (m: string) => void = () => {},
    heartbeatTimeoutSec = 3,
  ) {
    this.heartbeatTimeoutMs = Math.round(heartbeatTimeoutSec * 1000);
    this.server = createServer((socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      this.accept(socket);
    });
    // Both ways: workers hear the master once a second (and stop their load when it goes
    // quiet); a waiting worker that goes quiet is dropped before it is handed out.
    this.beat = setInterval(() => {
      const now = Date.now();
      for (const w of this.ready) w.transport.send({ type: "heartbeat", at: now });
      for (const t of this.taken) t.send({ type: "heartbeat", at: now });
      for (const w of [...this.ready]) {
        if (now - w.lastHeard < this.heartbeatTimeoutMs) continue;
        this.ready.splice(this.ready.indexOf(w), 1);
        w.transport.close();
        this.onNotice(`worker ${w.peer} went silent before the test started; dropped`);
        this.changed?.();
      }
    }, 1000);
    this.beat.unref();
  }

  onJoin(listener: (() => void) | undefined): void {
    this.joined = listener;
    if (listener && this.ready.length > 0) listener();
  }

  get connected(): number {
    return this.ready.length;
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const a = this.server.address();
    return typeof a === "object" && a
      ? `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`
      : "";
  }

  private accept(socket: Socket): void {
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const transport = socketTransport<CoordinatorMessage, WorkerMessage>(socket);
    // A peer that says nothing useful in time is not a worker.
    const timer = setTimeout(() => socket.destroy(), 10_000);
    void transport.first().then((m) => {
      clearTimeout(timer);
      if (m.type !== "hello" || m.version !== PROTOCOL_VERSION) {
        this.onNotice(
          `worker ${peer} rejected: ${m.type === "hello" ? `protocol version ${m.version}, this master speaks ${PROTOCOL_VERSION}` : "it did not say hello"}`,
        );
        socket.destroy();
        return;
      }
      // Until the coordinator listens, only liveness matters: a waiting worker sends nothing else.
      const entry = {
        transport,
        peer,
        host: socket.remoteAddress ?? "",
        cores: Math.max(1, Math.floor(Number(m.cores) || 1)),
        lastHeard: Date.now(),
      };
      transport.onMessage(() => (entry.lastHeard = Date.now()));
      this.ready.push(entry);
      // The coordinator installs its own handler when it takes the worker.
      transport.onLost?.(() => {
        const i = this.ready.indexOf(entry);
        if (i >= 0) {
          this.ready.splice(i, 1);
          this.onNotice(`worker ${peer} disconnected before the test started`);
          this.changed?.();
        }
      });
      this.onNotice(`worker ${peer} connected (${this.ready.length + this.taken.length})`);
      this.changed?.();
      this.joined?.();
    });
  }

  /** Resolves once `n` workers are connected; rejects after `maxWaitSec` (if given). */
  waitFor(n: number, maxWaitSec?: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer =
        maxWaitSec === undefined
          ? undefined
          : setTimeout(() => {
              this.changed = undefined;
              reject(
                new Error(`only ${this.ready.length} of ${n} worker(s) connected within ${maxWaitSec}s`),
              );
            }, maxWaitSec * 1000);
      const check = () => {
        if (this.ready.length >= n) {
          clearTimeout(timer);
          this.changed = undefined;
          resolve();
        }
      };
      this.changed = check;
      check();
    });
  }

  /** The next connected worker, for the coordinator. */
  take(): RemoteWorkerLink | undefined {
    const next = this.ready.shift();
    if (!next) return undefined;
    this.taken.push(next.transport);
    return { transport: next.transport, peer: next.peer, host: next.host, cores: next.cores };
  }

  /**
   * Stops listening and lets go of every worker (they wait for the next test). A peer behind a
   * cut link never acknowledges the close: after a short grace its socket is dropped, so the
   * master exits whatever the network does.
   */
  async close(): Promise<void> {
    clearInterval(this.beat);
    for (const w of this.ready.splice(0)) w.transport.close();
    for (const t of this.taken) t.close();
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    const grace = new Promise<void>((r) => setTimeout(r, 1000).unref());
    await Promise.race([closed, grace]);
    for (const s of this.sockets) s.destroy();
  }
}

/**
 * A worker process (`cicada worker`): connects to the master, runs whatever share of the test
 * it is given, and when the master closes the connection (or goes silent) stops its load and
 * connects again for the next test, unless `once`. The master ships the bundled loadfile, so
 * the worker needs only Cicada itself, not the loadfile.
 */
export async function runRemoteWorker(
  host: string,
  port: number,
  opts: {
    connectTimeoutSec: number;
    log: (m: string) => void;
    /** Exit after one test instead of waiting for the next master. */
    once?: boolean;
    /** Seconds of silence from the master after which its test is stopped (default 3). */
    heartbeatTimeoutSec?: number;
  },
): Promise<number> {
  for (let tests = 0; ; tests++) {
    // The first master has `connectTimeoutSec` to appear; between tests the worker waits on.
    const socket = await connectToMaster(host, port, tests === 0 ? opts.connectTimeoutSec : null, opts.log);
    if (!socket) return 4;
    opts.log(`connected to the master at ${host}:${port}`);
    await workerSession(socket, (opts.heartbeatTimeoutSec ?? 3) * 1000, opts.log);
    if (opts.once) return 0;
    opts.log("waiting for the next test");
  }
}

/** Keeps trying until the master answers; null `timeoutSec` tries for ever. */
async function connectToMaster(
  host: string,
  port: number,
  timeoutSec: number | null,
  log: (m: string) => void,
): Promise<Socket | undefined> {
  const deadline = timeoutSec === null ? Number.POSITIVE_INFINITY : Date.now() + timeoutSec * 1000;
  // The master may start after its workers: keep trying until the deadline.
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const s = connect({ host, port }, () => {
          s.off("error", reject);
          s.setTimeout(0);
          resolve(s);
        });
        s.once("error", reject);
        // A cut link drops the SYN silently: give up on this attempt and try again.
        s.setTimeout(3000, () => s.destroy(new Error("connect timed out")));
      });
    } catch (err) {
      if (Date.now() > deadline) {
        log(`cannot reach the master at ${host}:${port} within ${timeoutSec}s: ${(err as Error).message}`);
        return undefined;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

/** One connection to a master: hello, heartbeats both ways, and the test it sends. */
async function workerSession(
  socket: Socket,
  heartbeatTimeoutMs: number,
  log: (m: string) => void,
): Promise<void> {
  const transport = socketTransport<WorkerMessage, CoordinatorMessage>(socket);
  const dir = mkdtempSync(join(tmpdir(), "cicada-worker-"));
  let lastHeard = Date.now();
  socket.on("data", () => (lastHeard = Date.now()));
  let beat: NodeJS.Timeout | undefined;
  try {
    transport.send({
      type: "hello",
      workerId: "",
      version: PROTOCOL_VERSION,
      pid: process.pid,
      cores: availableParallelism(),
    });
    const ended = new Promise<string>((resolve) => {
      transport.onLost?.(resolve);
      // The connection's own heartbeat, and the watch on the master's: a master that stopped,
      // froze or sits behind a cut link must not leave this machine loading the target.
      let lastBeat = Date.now();
      beat = setInterval(() => {
        const now = Date.now();
        // This process stalled (or was stopped) itself: the silence is ours; the master's
        // messages are still unread in the socket.
        if (now - lastBeat > 2000) lastHeard = Math.max(lastHeard, now - 1000);
        lastBeat = now;
        transport.send({ type: "heartbeat", at: now });
        const silent = now - lastHeard;
        if (silent >= heartbeatTimeoutMs) {
          socket.destroy();
          resolve(`the master was silent for ${(silent / 1000).toFixed(1)}s`);
        }
      }, 1000);
    });
    // The plan carries the bundle: write it where this machine can import it.
    const local: Transport<WorkerMessage, CoordinatorMessage> = {
      send: (m) => transport.send(m),
      onMessage: (h) =>
        transport.onMessage((m) => {
          if (m.type === "plan" && m.plan.bundleCode !== undefined) {
            const path = join(dir, "loadfile.bundle.mjs");
            writeFileSync(path, m.plan.bundleCode);
            const { bundleCode: _code, ...plan } = m.plan;
            h({ ...m, plan: { ...plan, bundlePath: path } });
          } else h(m);
        }),
      close: () => transport.close(),
    };
    const worker = new Worker(local, "loadfile");
    const reason = await ended;
    log(`master connection ended (${reason})`);
    // Whatever still runs stops now; users stuck in their own code are left after a grace.
    await Promise.race([worker.abandon(), new Promise((r) => setTimeout(r, 3000).unref())]);
  } finally {
    clearInterval(beat);
    socket.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
