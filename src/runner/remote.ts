import { writeFileSync } from "node:fs";
import { connect, createServer, isIP, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { connect as connectTls, createServer as createTlsServer, type TLSSocket } from "node:tls";
import { ExitCode } from "../core/errors.js";
import { makeTempDir, removeTempDir } from "../core/tempdir.js";
import { type MonitorOptions, ResourceMonitor } from "../protocols/monitor/monitor.js";
import type { RemoteWorkerLink, RemoteWorkerSource } from "./coordinator.js";
import {
  GREETING_MAX_LINE,
  GREETING_MAX_QUEUED,
  type GreetingChannel,
  GreetingFailed,
  greetMaster,
  greetWorker,
  type MasterGreeting,
  printable,
  type WorkerGreeting,
} from "./handshake.js";
import {
  type CoordinatorMessage,
  decodeMessage,
  encodeMessage,
  type OnChannel,
  type Transport,
  type WorkerMessage,
} from "./protocol.js";
import { startThreadWorker, threadsEnded } from "./thread.js";
import { Worker } from "./worker.js";

/**
 * Workers on other machines: the same messages as worker threads, one JSON text per line over
 * TCP. JSON text never holds a raw newline (JSON.stringify escapes them inside strings), so a
 * newline is an unambiguous frame end.
 */

/** How the master admits workers: its token, its TLS certificate, the greeting's deadline. */
export interface MasterSecurity {
  /** Workers must prove they know it (and the master proves it back); none on loopback only. */
  token?: string;
  tls?: { cert: string; key: string };
  /** Seconds a peer has to complete the greeting (default 5). */
  handshakeTimeoutSec?: number;
}

/** The master's options: who may become a worker, and when a worker counts as gone. */
export interface RemoteWorkersOptions extends MasterSecurity {
  /** Seconds of silence after which a worker counts as missing (default 3). */
  heartbeatTimeoutSec?: number;
}

/** Connections in their greeting at once; more are dropped until some finish or time out. */
const MAX_GREETING = 64;

const peerOf = (socket: Socket) =>
  `${isIP(socket.remoteAddress ?? "") === 6 ? `[${socket.remoteAddress}]` : socket.remoteAddress}:${socket.remotePort}`;

/** Most characters a frame from an authenticated peer may have: a snapshot or a bundle is far smaller. */
const MAX_FRAME = 256 * 1024 * 1024;

export interface FrameLimits {
  /** Most characters one line may have before the peer is dropped. */
  maxFrame?: number;
  /** Most messages kept for a reader that has not asked for them yet. */
  maxQueued?: number;
  /** The limits once the greeting is done: `next(true)` sets them as its message is read. */
  afterGreeting?: { maxFrame: number; maxQueued: number };
}

/** A transport over a socket, with the reads the greeting needs and its limits to lift after it. */
export type SocketTransport<Out, In> = Transport<Out, In> & {
  /**
   * The next message read on its own (later ones still wait for `onMessage`); rejects if the
   * peer is lost. `last`: the greeting's last message, after which `afterGreeting` applies, from
   * the very next byte (an answer may follow it in the same chunk).
   */
  next(last?: boolean): Promise<In>;
  /** Drops the connection at once, with `reason` as what `onLost` and `next` report. */
  drop(reason: string): void;
};

export function socketTransport<Out extends { type: string }, In extends { type: string }>(
  socket: Socket,
  limits: FrameLimits = {},
): SocketTransport<Out, In> {
  let maxFrame = limits.maxFrame ?? MAX_FRAME;
  let maxQueued = limits.maxQueued ?? Number.POSITIVE_INFINITY;
  let handler: ((m: In) => void) | undefined;
  // A reader of one message only (a side of the greeting).
  let once: { resolve: (m: In) => void; reject: (e: Error) => void; last: boolean } | undefined;
  let lostHandler: ((reason: string) => void) | undefined;
  // Messages that arrive before anyone listens (a worker's first stats) wait here.
  const early: In[] = [];
  let closed = false;
  let lost: string | undefined;
  let buf = "";
  // Set when this side cut the peer off: what it queued before is not read any more.
  let dropped = false;
  const drop = (reason: string) => {
    gone(reason);
    dropped = true;
    socket.destroy();
  };
  const deliver = (line: string): boolean => {
    let m: In;
    try {
      m = decodeMessage<CoordinatorMessage | WorkerMessage>(line) as unknown as In;
    } catch {
      m = undefined as unknown as In;
    }
    if (m === null || typeof m !== "object" || typeof m.type !== "string") {
      drop("sent something that is not a Cicada message");
      return false;
    }
    if (once) {
      const take = once;
      once = undefined;
      if (take.last && limits.afterGreeting) {
        maxFrame = limits.afterGreeting.maxFrame;
        maxQueued = limits.afterGreeting.maxQueued;
      }
      take.resolve(m);
    } else if (handler) handler(m);
    else if (early.length >= maxQueued) {
      drop(`sent more than ${maxQueued} messages ahead of the greeting`);
      return false;
    } else early.push(m);
    return true;
  };
  socket.setEncoding("utf8");
  socket.setNoDelay(true);
  socket.on("data", (chunk: string) => {
    if (lost !== undefined) return;
    // Only the new chunk is searched for the frame end: a long line costs linear time, not quadratic.
    let start = 0;
    let i = chunk.indexOf("\n");
    while (i >= 0) {
      if (buf.length + i - start > maxFrame) {
        drop(`sent a line longer than ${maxFrame} characters`);
        return;
      }
      const line = buf + chunk.slice(start, i);
      buf = "";
      start = i + 1;
      if (line.length > 0 && !deliver(line)) return;
      if (lost !== undefined) return;
      i = chunk.indexOf("\n", start);
    }
    buf += chunk.slice(start);
    if (buf.length > maxFrame) drop(`sent a line longer than ${maxFrame} characters`);
  });
  const gone = (reason: string) => {
    if (closed || lost !== undefined) return;
    lost = reason;
    if (once) {
      const take = once;
      once = undefined;
      take.reject(new Error(reason));
    }
    lostHandler?.(reason);
  };
  socket.on("error", (err) => gone(`connection error: ${err.message}`));
  socket.on("close", () => gone("connection closed"));
  const next = (last = false) =>
    new Promise<In>((resolve, reject) => {
      const m = dropped ? undefined : early.shift();
      if (m !== undefined) {
        if (last && limits.afterGreeting) {
          maxFrame = limits.afterGreeting.maxFrame;
          maxQueued = limits.afterGreeting.maxQueued;
        }
        resolve(m);
      } else if (lost !== undefined) reject(new Error(lost));
      else once = { resolve, reject, last };
    });
  return {
    send: (m) => {
      if (!closed && !socket.destroyed)
        socket.write(`${encodeMessage(m as unknown as CoordinatorMessage)}\n`);
    },
    onMessage: (h) => {
      handler = h;
      for (const m of early.splice(0)) h(m);
    },
    next,
    drop,
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
 * The master's side: accepts worker connections, greets each (protocol version, token), and
 * hands the workers that passed to the coordinator one by one. A peer that fails the greeting is
 * dropped with one line saying who and why, and never counts as a worker. Heartbeats go both
 * ways from the greeting on; a waiting worker that goes silent is dropped before it is handed out.
 */
export class RemoteWorkers implements RemoteWorkerSource {
  private readonly server: Server;
  private readonly ready: Array<RemoteWorkerLink & { lastHeard: number }> = [];
  private readonly taken: Array<Transport<CoordinatorMessage, WorkerMessage>> = [];
  private changed: (() => void) | undefined;
  private joined: (() => void) | undefined;
  private readonly watchers = new Set<() => void>();
  /** Connections still in their greeting: bounded, so a flood of silent peers costs little. */
  private greeting = 0;
  /** Their sockets, let go of at close() rather than waited for. */
  private readonly greetingSockets = new Set<Socket>();
  /** Every connection (the TCP one under TLS), so closing never waits on a peer that stopped answering. */
  private readonly sockets = new Set<Socket>();
  private readonly beat: NodeJS.Timeout;
  readonly heartbeatTimeoutMs: number;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly onNotice: (m: string) => void = () => {},
    private readonly security: RemoteWorkersOptions = {},
  ) {
    this.heartbeatTimeoutMs = Math.round((security.heartbeatTimeoutSec ?? 3) * 1000);
    const timeoutMs = this.handshakeMs;
    this.server = security.tls
      ? createTlsServer({ ...security.tls, handshakeTimeout: timeoutMs }, (socket) => this.accept(socket))
      : createServer((socket) => this.accept(socket));
    this.server.on("connection", (raw: Socket) => {
      this.sockets.add(raw);
      raw.on("close", () => this.sockets.delete(raw));
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
        this.countChanged();
      }
    }, 1000);
    this.beat.unref();
    if (security.tls) {
      // Named as they connect: a peer that hung up mid-handshake no longer has an address.
      const names = new WeakMap<Socket, string>();
      this.server.on("connection", (raw: Socket) => names.set(raw, peerOf(raw)));
      this.server.on("tlsClientError", (err: Error, socket: TLSSocket) => {
        const raw = (socket as TLSSocket & { _parent?: Socket })._parent;
        const name = (raw && names.get(raw)) ?? peerOf(socket);
        const e = err as Error & { code?: string };
        // OpenSSL's messages are a source path and a routine name; its code reads better.
        const why =
          e.code === "ERR_SSL_WRONG_VERSION_NUMBER" || e.code === "ERR_SSL_HTTP_REQUEST"
            ? "it does not speak TLS"
            : /routines/.test(e.message) && e.code
              ? e.code
              : e.message;
        this.onNotice(`worker ${name} dropped: TLS handshake failed: ${printable(why)}`);
        // Node leaves the connection open after a failed handshake; it would hold close() up.
        socket.destroy();
        raw?.destroy();
      });
    }
  }

  private get handshakeMs(): number {
    return (this.security.handshakeTimeoutSec ?? 5) * 1000;
  }

  /** Told whenever a waiting worker connects or leaves (the web UI shows the count). */
  onCountChange(listener: () => void): void {
    this.watchers.add(listener);
  }

  private countChanged(): void {
    this.changed?.();
    for (const w of this.watchers) w();
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
    const peer = peerOf(socket);
    if (this.greeting >= MAX_GREETING) {
      this.onNotice(`worker ${peer} dropped: ${MAX_GREETING} other connections are still greeting`);
      socket.destroy();
      return;
    }
    this.greeting++;
    this.greetingSockets.add(socket);
    // Nothing is read without a limit: a greeting line is small, and only a few may queue.
    const transport = socketTransport<CoordinatorMessage | MasterGreeting, WorkerMessage | WorkerGreeting>(
      socket,
      {
        maxFrame: GREETING_MAX_LINE,
        maxQueued: GREETING_MAX_QUEUED,
        afterGreeting: { maxFrame: MAX_FRAME, maxQueued: Number.POSITIVE_INFINITY },
      },
    );
    // Errors after a drop (a reset by the peer) have nowhere else to go.
    socket.on("error", () => {});
    const greeted = greetWorker(transport as GreetingChannel<MasterGreeting, WorkerGreeting>, {
      token: this.security.token,
      timeoutMs: this.handshakeMs,
    });
    void greeted.then(
      ({ cores }) => {
        this.greeting--;
        this.greetingSockets.delete(socket);
        this.admit(
          transport as Transport<CoordinatorMessage, WorkerMessage>,
          peer,
          socket.remoteAddress ?? "",
          cores,
        );
      },
      (err: Error) => {
        this.greeting--;
        this.greetingSockets.delete(socket);
        const refused = err instanceof GreetingFailed && err.refusal;
        const why = err instanceof GreetingFailed ? err.message : `${err.message} during the greeting`;
        this.onNotice(`worker ${peer} ${refused ? "refused" : "dropped"}: ${why}`);
        if (refused) {
          // The refusal just sent gets out before the connection goes.
          socket.end();
          setTimeout(() => socket.destroy(), 1000).unref();
        } else transport.drop(why);
      },
    );
  }

  /** A greeted worker: waits in `ready` until the coordinator takes it. */
  private admit(
    transport: Transport<CoordinatorMessage, WorkerMessage>,
    peer: string,
    host: string,
    cores: number,
  ): void {
    // Until the coordinator listens, only liveness matters: a waiting worker sends nothing else.
    const entry = { transport, peer, host, cores, lastHeard: Date.now() };
    transport.onMessage(() => (entry.lastHeard = Date.now()));
    this.ready.push(entry);
    // The coordinator installs its own handler when it takes the worker.
    transport.onLost?.(() => {
      const i = this.ready.indexOf(entry);
      if (i >= 0) {
        this.ready.splice(i, 1);
        this.onNotice(`worker ${peer} disconnected before the test started`);
        this.countChanged();
      }
    });
    this.onNotice(`worker ${peer} connected (${this.ready.length + this.taken.length})`);
    this.countChanged();
    this.joined?.();
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
   * Stops listening and lets go of every worker (they wait for the next test). Peers still
   * greeting are dropped at once; a peer behind a cut link never acknowledges the close, so after
   * a short grace every socket is dropped and the master exits whatever the network does.
   */
  async close(): Promise<void> {
    clearInterval(this.beat);
    for (const w of this.ready.splice(0)) w.transport.close();
    for (const t of this.taken) t.close();
    for (const s of this.greetingSockets) s.destroy();
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    const grace = new Promise<void>((r) => setTimeout(r, 1000).unref());
    await Promise.race([closed, grace]);
    for (const s of this.sockets) s.destroy();
  }
}

/**
 * A worker process (`cicada worker`): connects to the master and greets it (token both ways,
 * TLS when given a CA), runs whatever share of the test it is given, and when the master closes
 * the connection (or goes silent) stops its load and connects again for the next test, unless
 * `once`. The master ships the bundled loadfile, so the worker needs only Cicada itself, not the
 * loadfile. Returns the exit code: 0 after `once`, 2 when the master refused this worker (or this
 * worker the master), 4 when the master cannot be reached, 130 once `stop` is aborted (its test
 * stopped as when the master goes away, its files removed).
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
    /** The master's token: this worker proves it knows it and checks the master does. */
    token?: string;
    /** PEM of the CA that signed the master's certificate: connect over TLS, trust only that. */
    tlsCa?: string;
    /** Seconds the master has to complete the greeting (default 5). */
    handshakeTimeoutSec?: number;
    /** What to watch on this machine for the master (`--monitor-pid`, `--monitor-url`). */
    monitor?: Pick<MonitorOptions, "pids" | "urls" | "queries">;
    /** Aborted on Ctrl-C / SIGTERM: stop the test (or the wait for one) and return 130. */
    stop?: AbortSignal;
  },
): Promise<number> {
  // Checked before connecting: a process or endpoint that is not there is the user's to fix now.
  // The master names the samples after this worker's address, whatever "host" says here.
  const monitor = await ResourceMonitor.open({
    ...opts.monitor,
    host: "worker",
    self: "worker",
    onNotice: (m) => opts.log(m),
  });
  const stop = opts.stop;
  const stopped = new Promise<"stopped">((resolve) => {
    if (stop?.aborted) resolve("stopped");
    stop?.addEventListener("abort", () => resolve("stopped"), { once: true });
  });
  const timeoutMs = (opts.handshakeTimeoutSec ?? 5) * 1000;
  for (let tests = 0; ; tests++) {
    if (stop?.aborted) return ExitCode.Interrupted;
    // The first master has `connectTimeoutSec` to appear; between tests the worker waits on.
    const connecting = connectToMaster(
      host,
      port,
      opts.tlsCa,
      tests === 0 ? opts.connectTimeoutSec : null,
      timeoutMs,
      stop,
    );
    const connected = await Promise.race([connecting, stopped]);
    if (connected === "stopped") {
      void connecting.then((c) => ("socket" in c ? c.socket.destroy() : undefined));
      return ExitCode.Interrupted;
    }
    if ("failed" in connected) {
      opts.log(connected.failed);
      return connected.exitCode;
    }
    const { socket } = connected;
    const transport = socketTransport<WorkerMessage | WorkerGreeting, CoordinatorMessage | MasterGreeting>(
      socket,
      {
        maxFrame: GREETING_MAX_LINE,
        maxQueued: GREETING_MAX_QUEUED,
        afterGreeting: { maxFrame: MAX_FRAME, maxQueued: Number.POSITIVE_INFINITY },
      },
    );
    // Stopped mid-greeting: the greeting fails at once instead of at its deadline.
    const dropGreeting = () => socket.destroy();
    stop?.addEventListener("abort", dropGreeting, { once: true });
    try {
      // No plan is taken before this: the master has proved it knows the token (when there is one).
      await greetMaster(transport as GreetingChannel<WorkerGreeting, MasterGreeting>, {
        token: opts.token,
        timeoutMs,
      });
    } catch (err) {
      if (stop?.aborted) return ExitCode.Interrupted;
      const refused = err instanceof GreetingFailed && err.refusal;
      opts.log(
        `${refused ? "" : `greeting the master at ${host}:${port} failed: `}${err instanceof GreetingFailed ? err.message : `${(err as Error).message} during the greeting${opts.tlsCa ? "" : " (does the master use TLS? then give --tls-ca)"}`}`,
      );
      // A bye just sent gets out before the connection goes.
      socket.end();
      setTimeout(() => socket.destroy(), 1000).unref();
      if (refused) return 2;
      if (tests === 0) return 4;
      // Between tests a master that stalls or goes away mid-greeting is one not up yet.
      await Promise.race([new Promise((r) => setTimeout(r, 1000)), stopped]);
      continue;
    } finally {
      stop?.removeEventListener("abort", dropGreeting);
    }
    opts.log(
      `connected to the master at ${host}:${port}${opts.tlsCa ? " over TLS" : ""}${opts.token ? ", token proved both ways" : ""}`,
    );
    await workerSession(
      socket,
      transport as SocketTransport<WorkerMessage, CoordinatorMessage>,
      (opts.heartbeatTimeoutSec ?? 3) * 1000,
      opts.log,
      monitor,
      stopped,
    );
    if (stop?.aborted) return ExitCode.Interrupted;
    if (opts.once) return 0;
    opts.log("waiting for the next test");
  }
}

/** One greeted connection to a master: heartbeats both ways, and the test it sends. */
async function workerSession(
  socket: Socket,
  transport: SocketTransport<WorkerMessage, CoordinatorMessage>,
  heartbeatTimeoutMs: number,
  log: (m: string) => void,
  monitor: ResourceMonitor,
  stopped: Promise<"stopped">,
): Promise<void> {
  const dir = makeTempDir("worker");
  // The connection's own message: every scenario on it gets the samples.
  monitor.start((samples) => transport.send({ type: "resources", at: Date.now(), samples }));
  let lastHeard = Date.now();
  socket.on("data", () => (lastHeard = Date.now()));
  let beat: NodeJS.Timeout | undefined;
  try {
    const ended = new Promise<string>((resolve) => {
      transport.onLost?.(resolve);
      void stopped.then(() => resolve("this worker is stopping"));
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
    const localPlan = (m: CoordinatorMessage, name: string): CoordinatorMessage => {
      if (m.type !== "plan" || m.plan.bundleCode === undefined) return m;
      const path = join(dir, name);
      writeFileSync(path, m.plan.bundleCode);
      const { bundleCode: _code, ...plan } = m.plan;
      return { ...m, plan: { ...plan, bundlePath: path } };
    };
    // One test on the connection runs in this thread; scenarios sharing it (messages with a
    // channel) each run in a worker thread of their own: their own module state, recorder and
    // event loop, as on one machine.
    let inThread: ((m: CoordinatorMessage) => void) | undefined;
    const channels = new Map<number, Transport<CoordinatorMessage, WorkerMessage>>();
    const local: Transport<WorkerMessage, CoordinatorMessage> = {
      send: (m) => transport.send(m),
      onMessage: (h) => {
        inThread = h;
      },
      close: () => transport.close(),
    };
    // Before the connection's handler: the plan may already wait in the transport's queue,
    // and is handed over the moment a handler is set.
    const worker = new Worker(local, "loadfile");
    transport.onMessage((m) => {
      const ch = (m as OnChannel<CoordinatorMessage>).ch;
      if (ch === undefined) {
        inThread?.(localPlan(m, "loadfile.bundle.mjs"));
        return;
      }
      let thread = channels.get(ch);
      if (m.type === "close") {
        thread?.close();
        channels.delete(ch);
        return;
      }
      if (!thread) {
        if (m.type !== "plan") return;
        thread = startThreadWorker(`ch${ch}`);
        thread.onMessage((out) => {
          const tagged: OnChannel<WorkerMessage> = { ...out, ch };
          transport.send(tagged);
        });
        thread.onLost?.((why) => {
          const failed: OnChannel<WorkerMessage> = {
            type: "error",
            message: `worker thread ${why}`,
            fatal: true,
            ch,
          };
          transport.send(failed);
        });
        channels.set(ch, thread);
      }
      const { ch: _ch, ...msg } = m as OnChannel<CoordinatorMessage>;
      thread.send(localPlan(msg as CoordinatorMessage, `loadfile.${ch}.bundle.mjs`));
    });
    const reason = await ended;
    log(`master connection ended (${reason})`);
    // Whatever still runs stops now; users stuck in their own code are left after a grace.
    for (const thread of channels.values()) thread.close();
    await Promise.race([
      Promise.all([worker.abandon(), threadsEnded()]),
      new Promise((r) => setTimeout(r, 3000).unref()),
    ]);
  } finally {
    monitor.stop();
    clearInterval(beat);
    socket.destroy();
    removeTempDir(dir);
  }
}

/** Certificate errors: the master is not who the CA vouches for, so trying again will not help. */
const CERT_ERROR = /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|ISSUER/;

/** Errors that mean the master is not up (yet): worth trying again until the connect timeout. */
const NOT_UP_YET = new Set([
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EAI_AGAIN",
]);

/** How long one attempt waits for the TCP connection: a cut link drops the SYN silently. */
const CONNECT_ATTEMPT_MS = 3000;

/**
 * A connection to the master, over TLS when `ca` is given; the master may start after its
 * workers, so a master that is not up is tried again until `connectTimeoutSec` (null: for ever,
 * as between tests). Returns the line to log and the exit code instead when it cannot: a
 * certificate this worker does not trust (2), a master that is not up or does not answer (4).
 */
async function connectToMaster(
  host: string,
  port: number,
  ca: string | undefined,
  connectTimeoutSec: number | null,
  timeoutMs: number,
  stop?: AbortSignal,
): Promise<{ socket: Socket } | { failed: string; exitCode: number }> {
  const deadline =
    connectTimeoutSec === null ? Number.POSITIVE_INFINITY : Date.now() + connectTimeoutSec * 1000;
  for (;;) {
    try {
      return {
        socket: await new Promise<Socket>((resolve, reject) => {
          const s: Socket = ca
            ? connectTls({ host, port, ca, ...(isIP(host) ? {} : { servername: host }) }, () => done())
            : connect({ host, port }, () => done());
          // No TCP connection in time is a master not reached yet: the next attempt tries again.
          let timer = setTimeout(
            () => s.destroy(Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" })),
            CONNECT_ATTEMPT_MS,
          );
          if (ca) {
            s.once("connect", () => {
              clearTimeout(timer);
              // A master that accepts and then never finishes TLS is not reached.
              timer = setTimeout(
                () => s.destroy(new Error(`no answer within ${timeoutMs / 1000}s`)),
                timeoutMs,
              );
            });
          }
          const done = () => {
            clearTimeout(timer);
            s.off("error", fail);
            resolve(s);
          };
          const fail = (err: Error) => {
            clearTimeout(timer);
            s.destroy();
            reject(err);
          };
          s.once("error", fail);
        }),
      };
    } catch (err) {
      const e = err as Error & { code?: string };
      if (stop?.aborted) return { failed: "stopped", exitCode: ExitCode.Interrupted };
      if (ca && CERT_ERROR.test(e.code ?? "")) {
        return {
          failed: `refusing the master at ${host}:${port}: its TLS certificate is not trusted by --tls-ca (${e.code}: ${e.message})`,
          exitCode: 2,
        };
      }
      if (!NOT_UP_YET.has(e.code ?? "")) {
        // Something answers but not as a master does: trying again would only repeat it.
        return {
          failed: `cannot connect to the master at ${host}:${port}: ${e.message}${ca ? " (does the master use TLS?)" : ""}`,
          exitCode: 4,
        };
      }
      if (Date.now() > deadline) {
        return {
          failed: `cannot reach the master at ${host}:${port} within ${connectTimeoutSec}s: ${e.message}`,
          exitCode: 4,
        };
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
