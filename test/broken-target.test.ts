/**
 * A broken target never passes. Servers that trickle their response head one byte a second,
 * trickle their body, never answer, or never even accept the connection, each driven through
 * the real CLI (`run --headless` with a loadfile per HTTP engine, and `quick`): every case ends
 * on time, with timeout failures and exit code 1; a run that completed no request exits non-zero
 * whatever --exit-code-on-error says; and at the hard stop, requests + cancelled equals what the
 * server received, while requests never written are counted apart as notSent.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import {
  assertValidResult,
  type CliResult,
  describeRun,
  readJson,
  runCli,
  startServer,
  type TestServer,
  tempProject,
} from "./helpers.js";

const ENGINES = ["fast", "undici"] as const;
type Engine = (typeof ENGINES)[number];

/** Request deadlines the tests set (seconds), for the head and for the body. */
const TIMEOUT_SEC = 2;
/**
 * Upper bound on a whole CLI run that makes one timed-out request: the deadline, the fast
 * engine's sweep (≤ 0.2 s late), process start and loadfile bundling, with a wide margin for a
 * busy machine. A timeout that trickled bytes re-arm would run into the 10 s stop timeout first.
 */
const WALL_MS = 9000;

// ---------------------------------------------------------------------------------------------
// Broken servers

type Kind = "slow-head" | "slow-body" | "silent";

interface BrokenServer {
  url: string;
  /** Request heads received so far. */
  requests(): number;
  /** When each request head came in (Date.now()). */
  arrivals(): number[];
  close(): Promise<void>;
}

const HEAD_START = "HTTP/1.1 200 OK\r\n";
const HEAD_PAD = "x-slow: 1\r\n";

/**
 * A raw TCP server on 127.0.0.1. "slow-head" sends a head that never ends (header line after
 * header line) one byte a second; "slow-body" sends a complete head at once and then the body of
 * a 1 MB response one byte a second; "silent" reads the request and never answers.
 */
async function brokenServer(kind: Kind): Promise<BrokenServer> {
  let requests = 0;
  const arrivals: number[] = [];
  const sockets = new Set<Socket>();
  const server = createNetServer((sock) => {
    sockets.add(sock);
    sock.on("error", () => {});
    let timer: NodeJS.Timeout | undefined;
    sock.on("close", () => {
      clearInterval(timer);
      sockets.delete(sock);
    });
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString("latin1");
      // The clients send body-less GETs: each blank line ends one request.
      for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
        requests++;
        arrivals.push(Date.now());
        buf = buf.slice(end + 4);
      }
      if (kind === "silent" || timer) return;
      let sent = 0;
      const nextByte = (): string => {
        const i = sent++;
        if (kind === "slow-body") return "x";
        return i < HEAD_START.length ? HEAD_START[i]! : HEAD_PAD[(i - HEAD_START.length) % HEAD_PAD.length]!;
      };
      if (kind === "slow-body") sock.write("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n");
      sock.write(nextByte());
      timer = setInterval(() => sock.write(nextByte()), 1000);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    arrivals: () => [...arrivals],
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const EXPECTED_ERROR: Record<Kind, string> = {
  "slow-head": `timeout: no response within ${TIMEOUT_SEC}s`,
  silent: `timeout: no response within ${TIMEOUT_SEC}s`,
  "slow-body": `timeout: response body not complete within ${TIMEOUT_SEC}s`,
};

// ---------------------------------------------------------------------------------------------
// Running the CLI

interface Outcome extends CliResult {
  result: RunResult;
  wallMs: number;
}

/** `cicada run --headless` of `loadfile` in a temp project, with its JSON result checked. */
async function runHeadless(loadfile: string, args: string[]): Promise<Outcome> {
  const project = tempProject({ "loadtest.ts": loadfile });
  try {
    const out = join(project.dir, "out.json");
    const t0 = Date.now();
    const cli = await runCli(["run", "loadtest.ts", "--headless", ...args, "--json", out, "--only-summary"], {
      cwd: project.dir,
      timeoutMs: 40_000,
    });
    const wallMs = Date.now() - t0;
    assert.ok(existsSync(out), `no JSON result\n${describeRun(cli)}`);
    const result = readJson(out) as unknown;
    assertValidResult(result);
    return { ...cli, result, wallMs };
  } finally {
    project.cleanup();
  }
}

/** `cicada quick URL ARGS`, with its JSON result checked. */
async function runQuick(url: string, args: string[]): Promise<Outcome> {
  const project = tempProject({});
  try {
    const out = join(project.dir, "out.json");
    const t0 = Date.now();
    const cli = await runCli(["quick", url, ...args, "--json", out, "--only-summary"], {
      cwd: project.dir,
      timeoutMs: 40_000,
    });
    const wallMs = Date.now() - t0;
    assert.ok(existsSync(out), `no JSON result\n${describeRun(cli)}`);
    const result = readJson(out) as unknown;
    assertValidResult(result);
    return { ...cli, result, wallMs };
  } finally {
    project.cleanup();
  }
}

/** One user class on `engine` making GET `path` with both deadlines set to TIMEOUT_SEC. */
function oneRequestLoadfile(engine: Engine): string {
  return `
import { HttpUser, constant, task } from "cicada-load";
export class Target extends HttpUser {
  static engine = ${JSON.stringify(engine)} as const;
  static waitTime = constant(0);
  @task t() { return this.client.get("/", { timeout: ${TIMEOUT_SEC}, bodyTimeout: ${TIMEOUT_SEC} }); }
}
`;
}

/** The checks every broken-server case shares: one timed-out failure, exit 1, on time. */
function assertTimedOut(o: Outcome, kind: Kind, server: BrokenServer): void {
  const show = `${describeRun(o)}\nresult totals: ${JSON.stringify(o.result.totals)}`;
  assert.equal(o.code, 1, show);
  assert.equal(o.result.exitCode, 1);
  assert.equal(o.result.totals.requests, 1, show);
  assert.equal(o.result.totals.failures, 1, show);
  assert.equal(o.result.totals.cancelled, 0, show);
  assert.equal(o.result.totals.notSent, 0, show);
  assert.deepEqual(
    o.result.failures.map((f) => [f.method, f.name, f.error, f.occurrences]),
    [["GET", "/", EXPECTED_ERROR[kind], 1]],
  );
  // A deadline: neither early, nor pushed back by the bytes that kept arriving.
  const ms = o.result.totals.latencyMs.max;
  assert.ok(ms >= TIMEOUT_SEC * 1000 - 50 && ms < TIMEOUT_SEC * 1000 + 1500, `timed out after ${ms} ms`);
  assert.ok(o.wallMs < WALL_MS, `the run took ${o.wallMs} ms`);
  assert.equal(server.requests(), 1);
}

// ---------------------------------------------------------------------------------------------

for (const kind of ["slow-head", "slow-body", "silent"] as const) {
  describe(`a ${kind} server`, () => {
    for (const engine of ENGINES) {
      it(`run, ${engine} engine: a timeout failure, exit 1, on time`, async () => {
        const server = await brokenServer(kind);
        try {
          // -s 10: the stop must not be what ends the request; its own deadline must.
          const o = await runHeadless(oneRequestLoadfile(engine), [
            "-H",
            server.url,
            "-u",
            "1",
            "-i",
            "1",
            "-s",
            "10",
            "--processes",
            "1",
          ]);
          assertTimedOut(o, kind, server);
          assert.match(o.stdout, new RegExp(EXPECTED_ERROR[kind].replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
        } finally {
          await server.close();
        }
      });
    }

    it(`quick -t ${TIMEOUT_SEC}: a timeout failure, exit 1, on time`, async () => {
      const server = await brokenServer(kind);
      try {
        const o = await runQuick(`${server.url}/`, ["-n", "1", "-c", "1", "-t", String(TIMEOUT_SEC)]);
        assertTimedOut(o, kind, server);
      } finally {
        await server.close();
      }
    });
  });
}

describe("a silent server behind shared connections", () => {
  for (const engine of ENGINES) {
    it(`${engine} engine: requests waiting for one of the 2 connections time out on time too, unsent`, async () => {
      const server = await brokenServer("silent");
      try {
        // 6 users on 2 connections: 2 requests on the wire, 4 queued behind them. The timeout
        // bounds the whole wait for the head, the queue included.
        const o = await runHeadless(
          `
import { HttpUser, constant, task } from "cicada-load";
export class Target extends HttpUser {
  static engine = ${JSON.stringify(engine)} as const;
  static sharedConnections = 2;
  static waitTime = constant(0);
  @task t() { return this.client.get("/", { timeout: ${TIMEOUT_SEC} }); }
}
`,
          ["-H", server.url, "-u", "6", "-r", "100", "-i", "6", "-s", "10", "--processes", "1"],
        );
        const show = `${describeRun(o)}\nresult totals: ${JSON.stringify(o.result.totals)}`;
        assert.equal(o.code, 1, show);
        assert.deepEqual(
          [o.result.totals.requests, o.result.totals.failures, o.result.totals.notSent],
          [6, 6, 0],
          show,
        );
        assert.deepEqual(
          o.result.failures.map((f) => [f.error, f.occurrences]),
          [[EXPECTED_ERROR.silent, 6]],
          show,
        );
        const ms = o.result.totals.latencyMs.max;
        assert.ok(ms >= TIMEOUT_SEC * 1000 - 50 && ms < TIMEOUT_SEC * 1000 + 1500, `slowest after ${ms} ms`);
        assert.ok(o.wallMs < WALL_MS, `the run took ${o.wallMs} ms`);
        // None was sent after its deadline. A queued one may still go out just before it, when a
        // connection frees up then (undici), so the server sees 2 or a few more; all of them
        // within the deadline of the first (the users start within ~60 ms of each other).
        const at = server.arrivals();
        assert.ok(at.length >= 2 && at.length <= 6, show);
        const late = at.filter((t) => t - at[0]! > TIMEOUT_SEC * 1000 + 250).map((t) => t - at[0]!);
        assert.deepEqual(
          late,
          [],
          `sent after the deadline (ms after the first): ${late.join(", ")}\n${show}`,
        );
      } finally {
        await server.close();
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe("a run that completed no request", () => {
  it("exits 1 even with --exit-code-on-error 0, and says why on stderr", async () => {
    const server = await brokenServer("silent");
    try {
      // The request waits far longer than the run: the hard stop (-s 0) cuts it off.
      const loadfile = `
import { HttpUser, constant, task } from "cicada-load";
export class Target extends HttpUser {
  static waitTime = constant(0);
  @task t() { return this.client.get("/", { timeout: 60 }); }
}
`;
      const o = await runHeadless(loadfile, [
        "-H",
        server.url,
        "-u",
        "1",
        "-t",
        "1s",
        "-s",
        "0",
        "--processes",
        "1",
        "--exit-code-on-error",
        "0",
      ]);
      assert.equal(o.code, 1, describeRun(o));
      assert.equal(o.result.exitCode, 1);
      assert.equal(o.result.totals.requests, 0);
      assert.equal(o.result.totals.cancelled, 1);
      assert.equal(server.requests(), 1);
      assert.match(
        o.stderr,
        /^cicada: no request completed, so the run measured nothing \(at the stop: 1 cut off in flight\)/m,
      );
      assert.ok(o.wallMs < WALL_MS, `the run took ${o.wallMs} ms`);
    } finally {
      await server.close();
    }
  });

  it("exits 1 when the tasks made no request at all", async () => {
    const loadfile = `
import { User, constant, task } from "cicada-load";
export class Idle extends User {
  static waitTime = constant(0.1);
  @task t() {}
}
`;
    const o = await runHeadless(loadfile, [
      "-u",
      "1",
      "-t",
      "1s",
      "--processes",
      "1",
      "--exit-code-on-error",
      "0",
    ]);
    assert.equal(o.code, 1, describeRun(o));
    assert.ok(o.result.totals.iterations > 0, "the task ran");
    assert.equal(o.result.endpoints.length, 0);
    assert.match(o.stderr, /^cicada: no request completed, so the run measured nothing; /m);
  });
});

// ---------------------------------------------------------------------------------------------

describe("accounting at the hard stop", () => {
  let server: TestServer;
  let o: Outcome;

  before(async () => {
    // /ok answers at once; every other path is held open until the run is over.
    server = await startServer((req, res) => {
      if (req.url === "/ok") res.end("ok");
    });
    const cls = (name: string, engine: Engine, path: string, extra = "") => `
export class ${name} extends HttpUser {
  static engine = ${JSON.stringify(engine)} as const;
  static fixedCount = ${path === "/queued" ? 3 : 1};
  static waitTime = constant(0.02);${extra}
  @task t() { return this.client.get(${JSON.stringify(path)}, { timeout: 60 }); }
}`;
    const loadfile = `import { HttpUser, constant, task } from "cicada-load";
${cls("FastOk", "fast", "/ok")}
${cls("UndiciOk", "undici", "/ok")}
${cls("FastHang", "fast", "/hang-fast")}
${cls("UndiciHang", "undici", "/hang-undici")}
${cls("Queued", "fast", "/queued", "\n  static sharedConnections = 1;")}
`;
    // One worker thread, so the three Queued users share one connection.
    o = await runHeadless(loadfile, [
      "-H",
      server.url,
      "-u",
      "7",
      "-r",
      "100",
      "-t",
      "1.5s",
      "-s",
      "0",
      "--processes",
      "1",
    ]);
  });
  after(() => server?.close());

  it("requests + cancelled equals the server's own count, per endpoint and in total, on both engines", () => {
    const show = `${describeRun(o)}\n${JSON.stringify(o.result.endpoints.map((e) => [e.name, e.requests, e.cancelled, e.notSent]))}\nserver: ${JSON.stringify([...server.counts])}`;
    assert.equal(o.code, 0, show);
    const byName = (name: string) => {
      const e = o.result.endpoints.find((x) => x.method === "GET" && x.name === name);
      assert.ok(e, `no row for GET ${name}\n${show}`);
      return e;
    };
    const ok = byName("/ok");
    assert.ok(ok.requests > 10, show);
    assert.equal(ok.failures, 0, show);
    assert.equal(ok.requests + ok.cancelled, server.counts.get("GET /ok"), show);
    for (const path of ["/hang-fast", "/hang-undici"]) {
      const e = byName(path);
      assert.deepEqual([e.requests, e.cancelled, e.notSent], [0, 1, 0], `${path}\n${show}`);
      assert.equal(server.counts.get(`GET ${path}`), 1, show);
    }
    const t = o.result.totals;
    assert.equal(t.requests + t.cancelled, server.total(), show);
  });

  it("requests queued for a shared connection at the stop are notSent, not cancelled", () => {
    const e = o.result.endpoints.find((x) => x.name === "/queued");
    assert.ok(e, describeRun(o));
    assert.deepEqual([e.requests, e.cancelled, e.notSent], [0, 1, 2]);
    assert.equal(server.counts.get("GET /queued"), 1, "one on the wire, two waiting for it");
    assert.equal(o.result.totals.notSent, 2);
    assert.match(o.stdout, /2 request\(s\) were stopped at the stop timeout before they were sent/);
  });
});

// ---------------------------------------------------------------------------------------------

/**
 * A listening socket whose process never accepts: a child blocks its event loop right after
 * listen() with a backlog of 1, so once the kernel's accept queue is full (filled here by the
 * test), the kernel drops further SYNs and clients stay connecting. Loopback only.
 */
async function stuckListener(): Promise<{ url: string; close(): void }> {
  const script = `
const net = require("node:net");
const fs = require("node:fs");
const srv = net.createServer();
srv.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
  fs.writeSync(1, srv.address().port + "\\n");
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});
`;
  const child: ChildProcess = spawn(process.execPath, ["-e", script], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(Number(out.trim()));
    });
    child.once("exit", (code) => reject(new Error(`the listener exited (${code})`)));
  });
  const fillers: Socket[] = [];
  const close = () => {
    for (const s of fillers) s.destroy();
    child.kill("SIGKILL");
  };
  // Fill the accept queue: connect until one attempt does not complete.
  try {
    for (let i = 0; ; i++) {
      if (i === 16) throw new Error("the accept queue never filled: 16 connections were accepted");
      const s = connect({ host: "127.0.0.1", port });
      s.on("error", () => {});
      fillers.push(s);
      const connected = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 700);
        s.once("connect", () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
      if (!connected) break;
    }
  } catch (err) {
    close();
    throw err;
  }
  return { url: `http://127.0.0.1:${port}`, close };
}

describe("a server that never accepts the connection", () => {
  it("requests still connecting at the hard stop are notSent on both engines; exit 1, on time", async () => {
    const target = await stuckListener();
    try {
      const cls = (engine: Engine) => `
export class ${engine === "fast" ? "FastUser" : "UndiciUser"} extends HttpUser {
  static engine = ${JSON.stringify(engine)} as const;
  static fixedCount = 1;
  @task t() { return this.client.get("/${engine}", { timeout: 60 }); }
}`;
      const loadfile = `import { HttpUser, task } from "cicada-load";
${cls("fast")}
${cls("undici")}
`;
      // No preflight: it would find the target unreachable, which is the point here.
      const o = await runHeadless(loadfile, [
        "-H",
        target.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "1s",
        "-s",
        "0",
        "--processes",
        "1",
        "--no-preflight",
      ]);
      const show = `${describeRun(o)}\n${JSON.stringify(o.result.endpoints.map((e) => [e.name, e.requests, e.failures, e.cancelled, e.notSent]))}`;
      assert.equal(o.code, 1, show);
      for (const engine of ENGINES) {
        const e = o.result.endpoints.find((x) => x.name === `/${engine}`);
        assert.ok(e, show);
        assert.deepEqual(
          [e.requests, e.failures, e.cancelled, e.notSent],
          [0, 0, 0, 1],
          `${engine}\n${show}`,
        );
      }
      assert.equal(o.result.totals.notSent, 2);
      assert.match(
        o.stderr,
        /no request completed, so the run measured nothing \(at the stop: 2 never sent\)/,
      );
      // Well before the 10 s connect timeout: the stop ended the wait.
      assert.ok(o.wallMs < WALL_MS, `the run took ${o.wallMs} ms`);
    } finally {
      target.close();
    }
  });
});
