import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
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
export class RemoteWorkers {
  private readonly server: Server;
  private readonly ready: Array<{ transport: Transport<CoordinatorMessage, WorkerMessage>; peer: string }> =
    [];
  private readonly taken: Array<Transport<CoordinatorMessage, WorkerMessage>> = [];
  private changed: (() => void) | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly onNotice: (m: string) => void = () => {},
  ) {
    this.server = createServer((socket) => this.accept(socket));
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
      // Until the coordinator listens, the transport keeps the worker's messages.
      const entry = { transport, peer };
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
  take(): Transport<CoordinatorMessage, WorkerMessage> {
    const next = this.ready.shift();
    if (!next) throw new Error("no connected worker left");
    this.taken.push(next.transport);
    return next.transport;
  }

  /** Stops listening and lets go of every worker (they exit when their connection closes). */
  close(): Promise<void> {
    for (const w of this.ready.splice(0)) w.transport.close();
    return new Promise((r) => this.server.close(() => r()));
  }
}

/**
 * A worker process (`cicada worker`): connects to the master, runs whatever share of the test
 * it is given, and exits when the master closes the connection. The master ships the bundled
 * loadfile, so the worker needs only Cicada itself, not the loadfile.
 */
export async function runRemoteWorker(
  host: string,
  port: number,
  opts: { connectTimeoutSec: number; log: (m: string) => void },
): Promise<number> {
  const deadline = Date.now() + opts.connectTimeoutSec * 1000;
  let socket: Socket | undefined;
  let lastError = "";
  // The master may start after its workers: keep trying until the deadline.
  while (!socket) {
    try {
      socket = await new Promise<Socket>((resolve, reject) => {
        const s = connect({ host, port }, () => {
          s.off("error", reject);
          resolve(s);
        });
        s.once("error", reject);
      });
    } catch (err) {
      lastError = (err as Error).message;
      if (Date.now() > deadline) {
        opts.log(
          `cannot reach the master at ${host}:${port} within ${opts.connectTimeoutSec}s: ${lastError}`,
        );
        return 4;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  opts.log(`connected to the master at ${host}:${port}`);
  const transport = socketTransport<WorkerMessage, CoordinatorMessage>(socket);
  const dir = mkdtempSync(join(tmpdir(), "cicada-worker-"));
  try {
    transport.send({ type: "hello", workerId: "", version: PROTOCOL_VERSION, pid: process.pid });
    const ended = new Promise<string>((resolve) => transport.onLost?.(resolve));
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
    new Worker(local, "loadfile");
    const reason = await ended;
    // The caller exits the process: whatever still runs stops with it.
    opts.log(`master connection ended (${reason})`);
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
