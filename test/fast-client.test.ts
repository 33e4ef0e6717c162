/**
 * The "fast" HTTP engine (src/protocols/http/fast/connection.ts through HttpSession), driven
 * directly against real loopback servers: node:http servers, and raw node:net servers that send
 * exact bytes (stale keep-alive races, read-until-close bodies, garbage, resets, silence).
 * Connections are counted on the server side; request accounting is read from a real Recorder.
 * A differential part runs the same scenarios through the "undici" engine and compares.
 *
 * Every request is bounded (`bounded()`), so a client that hangs fails its test instead of the suite.
 */
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { type AddressInfo, createServer as createNetServer, type Socket } from "node:net";
import { describe, it, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { RunStopped } from "../src/api/errors.js";
import type { HttpResponse } from "../src/protocols/http/response.js";
import {
  type HttpEngine,
  HttpSession,
  type HttpSessionOptions,
  SharedPools,
} from "../src/protocols/http/session.js";
import { Recorder } from "../src/stats/recorder.js";
import type { StatsSnapshot } from "../src/stats/snapshot.js";

const PROTOCOL = "Response does not match the HTTP/1.1 protocol";
const TEST = { timeout: 15_000 };
/** Bound for one small request on loopback: generous, yet a hang costs little. */
const REQ_MS = 2000;

// ---------------------------------------------------------------------------------------------
// Helpers

/** Rejects if `p` has not settled within `ms`: a hung client becomes a clear failure. */
async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hung: ${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");

interface Client {
  session: HttpSession;
  recorder: Recorder;
  ac: AbortController;
}

/** A session as a user gets it, with its own recorder and hard-stop signal; closed after the test. */
function client(
  t: TestContext,
  baseUrl: string | undefined,
  extra: Partial<HttpSessionOptions> = {},
): Client {
  const recorder = new Recorder("test");
  const ac = new AbortController();
  const session = new HttpSession({ recorder, baseUrl, signal: ac.signal, ...extra });
  t.after(async () => {
    await session.close(true);
    ac.abort();
  });
  return { session, recorder, ac };
}

interface Totals {
  count: number;
  failures: number;
  cancelled: number;
  notSent: number;
  errors: StatsSnapshot["errors"];
  endpoints: StatsSnapshot["endpoints"];
}

/** What the recorder holds since the last call (snapshots hand over and reset). */
function totals(recorder: Recorder): Totals {
  const snap = recorder.snapshot(0);
  let count = 0;
  let failures = 0;
  let cancelled = 0;
  let notSent = 0;
  for (const e of snap.endpoints) {
    count += e.count;
    failures += e.failures;
    cancelled += e.cancelled;
    notSent += e.notSent ?? 0;
  }
  return { count, failures, cancelled, notSent, errors: snap.errors, endpoints: snap.endpoints };
}

interface HttpTestServer {
  url: string;
  port: number;
  /** TCP connections accepted so far. */
  connections(): number;
  /** Requests received so far. */
  requests(): number;
  /** Connections closed so far (by either side). */
  closed(): number;
  close(): Promise<void>;
}

/** A node:http server on 127.0.0.1 that counts connections and requests; closed after the test. */
async function httpServer(
  t: TestContext,
  handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
  opts: { keepAliveTimeout?: number } = {},
): Promise<HttpTestServer> {
  let connections = 0;
  let requests = 0;
  let closed = 0;
  const server = createServer((req, res) => {
    requests++;
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => handler(req, res, Buffer.concat(chunks)));
  });
  server.keepAliveTimeout = opts.keepAliveTimeout ?? 60_000;
  server.on("connection", (sock: Socket) => {
    connections++;
    sock.on("close", () => closed++);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  t.after(close);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: () => connections,
    requests: () => requests,
    closed: () => closed,
    close,
  };
}

interface RawRequest {
  method: string;
  path: string;
  /** Lower-case names; the last value wins. */
  headers: Record<string, string>;
  body: Buffer;
  /** 0 for the first request on its connection. */
  index: number;
}

interface RawServer extends HttpTestServer {
  /** Requests that arrived after the handler had ended or destroyed the socket. */
  ignored(): number;
}

/**
 * A raw TCP server on 127.0.0.1 that frames requests (Content-Length bodies only) and lets the
 * handler write whatever bytes it likes to the socket.
 */
async function rawServer(
  t: TestContext,
  handler: (sock: Socket, req: RawRequest) => void,
): Promise<RawServer> {
  let connections = 0;
  let requests = 0;
  let closed = 0;
  let ignored = 0;
  const sockets = new Set<Socket>();
  const server = createNetServer((sock) => {
    connections++;
    sockets.add(sock);
    sock.on("close", () => {
      closed++;
      sockets.delete(sock);
    });
    sock.on("error", () => {});
    let buf = Buffer.alloc(0);
    let index = 0;
    sock.on("data", (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString("latin1").split("\r\n");
        const [method = "", path = ""] = (lines[0] ?? "").split(" ");
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(":");
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers["content-length"] ?? 0);
        if (buf.length < end + 4 + length) return;
        const body = buf.subarray(end + 4, end + 4 + length);
        buf = buf.subarray(end + 4 + length);
        if (sock.writableEnded || sock.destroyed) {
          ignored++;
          continue;
        }
        requests++;
        handler(sock, { method, path, headers, body, index: index++ });
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  const close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  t.after(close);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    connections: () => connections,
    requests: () => requests,
    closed: () => closed,
    ignored: () => ignored,
    close,
  };
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const okResponse = (body: string, extra = "") =>
  `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;

// ---------------------------------------------------------------------------------------------

describe("keep-alive and connection reuse", () => {
  it("500 sequential GETs on one session use exactly one TCP connection", TEST, async (t) => {
    const server = await httpServer(t, (req, res) => res.end(`hi ${req.url}`));
    const { session, recorder } = client(t, server.url);
    for (let i = 0; i < 500; i++) {
      const res = await bounded(session.get(`/n?i=${i % 7}`, { name: "/n" }), REQ_MS, `GET #${i}`);
      assert.equal(res.status, 200);
      assert.equal(res.text(), `hi /n?i=${i % 7}`);
    }
    assert.equal(server.requests(), 500);
    assert.equal(server.connections(), 1);
    const tot = totals(recorder);
    assert.equal(tot.count, 500);
    assert.equal(tot.failures, 0);
    assert.deepEqual(tot.errors, []);
  });

  it(
    "two sessions use two connections; one session talking to two origins uses one per origin",
    TEST,
    async (t) => {
      const a = await httpServer(t, (_req, res) => res.end("a"));
      const b = await httpServer(t, (_req, res) => res.end("b"));
      const s1 = client(t, a.url).session;
      const s2 = client(t, a.url).session;
      for (let i = 0; i < 10; i++) {
        assert.equal((await bounded(s1.get("/"), REQ_MS, "s1 GET")).text(), "a");
        assert.equal((await bounded(s2.get("/"), REQ_MS, "s2 GET")).text(), "a");
      }
      assert.equal(a.requests(), 20);
      assert.equal(a.connections(), 2);

      // One session, alternating between two origins (absolute URLs), then concurrently.
      const { session, recorder } = client(t, a.url);
      for (let i = 0; i < 10; i++) {
        assert.equal((await bounded(session.get("/x"), REQ_MS, "GET a")).text(), "a");
        assert.equal((await bounded(session.get(`${b.url}/y`), REQ_MS, "GET b")).text(), "b");
      }
      assert.equal(a.connections(), 3);
      assert.equal(b.connections(), 1);
      assert.equal(b.requests(), 10);
      // Concurrent requests of one user queue on its one connection per origin.
      const both = await bounded(
        Promise.all([0, 1, 2, 3, 4].flatMap(() => [session.get("/x"), session.get(`${b.url}/y`)])),
        REQ_MS * 2,
        "concurrent GETs",
      );
      assert.deepEqual(
        both.map((r) => r.text()),
        [0, 1, 2, 3, 4].flatMap(() => ["a", "b"]),
      );
      assert.equal(a.connections(), 3);
      assert.equal(b.connections(), 1);
      const tot = totals(recorder);
      assert.equal(tot.count, 30);
      assert.equal(tot.failures, 0);
    },
  );

  it(
    "an idle connection the server closed (keepAliveTimeout 150 ms) is replaced silently",
    TEST,
    async (t) => {
      const server = await httpServer(t, (_req, res) => res.end("ok"), { keepAliveTimeout: 150 });
      const { session, recorder } = client(t, server.url);
      const r1 = await bounded(session.get("/"), REQ_MS, "first GET");
      assert.equal(r1.status, 200);
      // Node 20.20 closes an idle socket about 1 s after keepAliveTimeout (an added buffer), so
      // wait for the close itself (bounded), then give the client's side time to see the FIN.
      for (let i = 0; i < 300 && server.closed() < 1; i++) await sleep(10);
      assert.equal(server.closed(), 1, "the server did not close the idle connection");
      await sleep(100);
      const r2 = await bounded(session.get("/"), REQ_MS, "GET after the server closed the idle socket");
      assert.equal(r2.status, 200, `error: ${r2.error}`);
      assert.equal(r2.text(), "ok");
      assert.equal(server.connections(), 2);
      assert.equal(server.requests(), 2);
      const tot = totals(recorder);
      assert.equal(tot.count, 2);
      assert.equal(tot.failures, 0, JSON.stringify(tot.errors));
    },
  );

  it(
    "stale keep-alive race: a server that ends each socket right after answering (no Connection: close)",
    TEST,
    async (t) => {
      const server = await rawServer(t, (sock, req) => {
        sock.write(okResponse(`r${req.path}`));
        sock.end();
      });
      const { session, recorder } = client(t, server.url);
      for (let i = 0; i < 50; i++) {
        const res = await bounded(session.get(`/${i}`), REQ_MS, `GET #${i}`);
        assert.equal(res.status, 200, `request ${i}: ${res.error}`);
        assert.equal(res.text(), `r/${i}`);
      }
      // Every request was answered exactly once (a request written to a socket the server had
      // already ended is not answered, and was retried on a fresh connection).
      assert.equal(server.requests(), 50, `${server.ignored()} requests hit an ended socket`);
      assert.equal(server.connections(), 50);
      const tot = totals(recorder);
      assert.equal(tot.count, 50);
      assert.equal(tot.failures, 0, JSON.stringify(tot.errors));
    },
  );

  for (const how of ["FIN", "RST"] as const) {
    it(
      `stale keep-alive, deterministic: each reused connection is closed (${how}) as the request arrives`,
      TEST,
      async (t) => {
        // Answers the first request of each connection; drops the connection on the second one,
        // without a byte of answer: the client must retry that request on a fresh connection.
        const server = await rawServer(t, (sock, req) => {
          if (req.index === 0) sock.write(okResponse(`r${req.path}`));
          else if (how === "FIN") sock.end();
          else sock.resetAndDestroy();
        });
        const { session, recorder } = client(t, server.url);
        for (let i = 0; i < 20; i++) {
          const res = await bounded(session.post(`/${i}`, { json: { i } }), REQ_MS, `POST #${i}`);
          assert.equal(res.status, 200, `request ${i}: ${res.error}`);
          assert.equal(res.text(), `r/${i}`);
        }
        // 20 answered first requests + 19 dropped second requests; one connection per answer.
        assert.equal(server.requests(), 39);
        assert.equal(server.connections(), 20);
        const tot = totals(recorder);
        assert.equal(tot.count, 20);
        assert.equal(tot.failures, 0, JSON.stringify(tot.errors));
      },
    );
  }

  it(
    "the stale retry happens once: a fresh connection that fails too gives an error, not a loop",
    TEST,
    async (t) => {
      let answered = 0;
      const server = await rawServer(t, (sock) => {
        if (answered++ === 0) sock.write(okResponse("first"));
        else sock.end();
      });
      const { session, recorder } = client(t, server.url);
      assert.equal((await bounded(session.get("/"), REQ_MS, "first GET")).text(), "first");
      const res = await bounded(session.get("/"), REQ_MS, "second GET");
      assert.equal(res.status, 0);
      assert.match(res.error ?? "", /closed/);
      // The second request: once on the reused connection, once (the retry) on a fresh one.
      assert.equal(server.requests(), 3);
      assert.equal(server.connections(), 2);
      const tot = totals(recorder);
      assert.equal(tot.count, 2);
      assert.equal(tot.failures, 1);
    },
  );

  it("a first request on a fresh connection that the server drops is not retried", TEST, async (t) => {
    const server = await rawServer(t, (sock) => sock.end());
    const { session, recorder } = client(t, server.url);
    const res = await bounded(session.get("/"), REQ_MS, "GET");
    assert.equal(res.status, 0);
    assert.match(res.error ?? "", /closed/);
    assert.equal(server.requests(), 1);
    const tot = totals(recorder);
    assert.equal(tot.failures, 1);
  });

  it("a reused connection that dies after part of a response is not retried", TEST, async (t) => {
    const server = await rawServer(t, (sock, req) => {
      if (req.index === 0) sock.write(okResponse("first"));
      else {
        sock.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial");
        sock.end();
      }
    });
    const { session } = client(t, server.url);
    assert.equal((await bounded(session.post("/", { body: "x" }), REQ_MS, "first POST")).text(), "first");
    const res = await bounded(session.post("/", { body: "y" }), REQ_MS, "second POST");
    assert.equal(res.status, 0);
    assert.match(res.error ?? "", /closed/);
    // Something was answered: a retry could repeat a non-idempotent request.
    assert.equal(server.requests(), 2);
    assert.equal(server.connections(), 1);
  });

  it("Connection: close responses: every request succeeds, one connection per request", TEST, async (t) => {
    const server = await httpServer(t, (_req, res) => {
      res.setHeader("connection", "close");
      res.end("bye");
    });
    const { session, recorder } = client(t, server.url);
    for (let i = 0; i < 20; i++) {
      const res = await bounded(session.get("/"), REQ_MS, `GET #${i}`);
      assert.equal(res.status, 200, `request ${i}: ${res.error}`);
      assert.equal(res.text(), "bye");
    }
    assert.equal(server.requests(), 20);
    assert.equal(server.connections(), 20);
    const tot = totals(recorder);
    assert.equal(tot.count, 20);
    assert.equal(tot.failures, 0, JSON.stringify(tot.errors));
  });
});

// ---------------------------------------------------------------------------------------------

describe("response framing", () => {
  it(
    "HEAD with Content-Length: 1000 returns at once with an empty body; the connection stays usable",
    TEST,
    async (t) => {
      const server = await rawServer(t, (sock, req) => {
        if (req.method === "HEAD")
          sock.write("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\nx-kind: head\r\n\r\n");
        else sock.write(okResponse("after-head"));
      });
      const { session, recorder } = client(t, server.url);
      const t0 = performance.now();
      const res = await bounded(session.head("/", { timeout: 2 }), REQ_MS, "HEAD");
      const ms = performance.now() - t0;
      assert.equal(res.status, 200, `error: ${res.error}`);
      assert.equal(res.body.length, 0);
      assert.equal(res.header("content-length"), "1000");
      assert.equal(res.header("x-kind"), "head");
      assert.ok(ms < 1000, `HEAD took ${ms} ms: it waited for a body`);
      const next = await bounded(session.get("/"), REQ_MS, "GET after HEAD");
      assert.equal(next.text(), "after-head");
      assert.equal(server.connections(), 1);
      assert.equal(totals(recorder).failures, 0);
    },
  );

  it("204 and 304 have no body, even with a Content-Length; the connection stays usable", TEST, async (t) => {
    const server = await rawServer(t, (sock, req) => {
      if (req.path === "/204") sock.write("HTTP/1.1 204 No Content\r\nx-a: 1\r\n\r\n");
      else if (req.path === "/304")
        sock.write('HTTP/1.1 304 Not Modified\r\ncontent-length: 5\r\netag: "e"\r\n\r\n');
      else sock.write(okResponse("plain"));
    });
    const { session, recorder } = client(t, server.url);
    for (let i = 0; i < 3; i++) {
      const r204 = await bounded(session.get("/204", { timeout: 2 }), REQ_MS, "GET /204");
      assert.equal(r204.status, 204, `error: ${r204.error}`);
      assert.equal(r204.body.length, 0);
      assert.equal(r204.header("x-a"), "1");
      const r304 = await bounded(session.get("/304", { timeout: 2 }), REQ_MS, "GET /304");
      assert.equal(r304.status, 304, `error: ${r304.error}`);
      assert.equal(r304.body.length, 0);
      assert.equal(r304.header("etag"), '"e"');
      assert.equal((await bounded(session.get("/p"), REQ_MS, "GET /p")).text(), "plain");
    }
    assert.equal(server.connections(), 1);
    const tot = totals(recorder);
    assert.equal(tot.count, 9);
    assert.equal(tot.failures, 0);
  });

  it("a chunked body is reassembled, small and 2 MB", TEST, async (t) => {
    const big = randomBytes(2 * 1024 * 1024);
    const server = await httpServer(t, (req, res) => {
      res.setHeader("content-type", "application/octet-stream");
      if (req.url === "/small") {
        for (const part of ["al", "pha", "-", "beta", "é"]) res.write(part);
        res.end();
      } else {
        for (let off = 0; off < big.length; off += 100_000) res.write(big.subarray(off, off + 100_000));
        res.end();
      }
    });
    const { session } = client(t, server.url);
    const small = await bounded(session.get("/small"), REQ_MS, "GET /small");
    assert.equal(small.header("transfer-encoding"), "chunked");
    assert.equal(small.text(), "alpha-betaé");
    const res = await bounded(session.get("/big"), 5000, "GET /big");
    assert.equal(res.header("transfer-encoding"), "chunked");
    assert.equal(res.body.length, big.length);
    assert.equal(sha256(res.body), sha256(big));
    assert.equal(server.connections(), 1);
  });

  it("a 2 MB Content-Length body arrives intact", TEST, async (t) => {
    const big = randomBytes(2 * 1024 * 1024 + 17);
    const server = await httpServer(t, (_req, res) => {
      res.setHeader("content-length", big.length);
      res.end(big);
    });
    const { session, recorder } = client(t, server.url);
    for (let i = 0; i < 2; i++) {
      const res = await bounded(session.get("/big"), 5000, "GET /big");
      assert.equal(res.status, 200);
      assert.equal(res.body.length, big.length);
      assert.equal(sha256(res.body), sha256(big));
    }
    assert.equal(server.connections(), 1);
    const snap = totals(recorder);
    assert.equal(snap.endpoints[0]?.bytes, 2 * big.length);
  });

  it(
    "a read-until-close body (no Content-Length, not chunked) completes when the server closes",
    TEST,
    async (t) => {
      const parts = ["first part, ", "second part, ", "last part"];
      const server = await rawServer(t, (sock) => {
        sock.write("HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n");
        let i = 0;
        const next = () => {
          if (i < parts.length) {
            sock.write(parts[i++]!);
            setTimeout(next, 20);
          } else sock.end();
        };
        setTimeout(next, 20);
      });
      const { session, recorder } = client(t, server.url);
      for (let i = 0; i < 3; i++) {
        const res = await bounded(session.get("/"), REQ_MS, `GET #${i}`);
        assert.equal(res.status, 200, `request ${i}: ${res.error}`);
        assert.equal(res.text(), parts.join(""));
      }
      assert.equal(server.connections(), 3);
      const tot = totals(recorder);
      assert.equal(tot.failures, 0, JSON.stringify(tot.errors));
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe("errors: clear strings, no throw", () => {
  it("connection refused: status 0 and an error naming ECONNREFUSED", TEST, async (t) => {
    const port = await closedPort();
    const { session, recorder } = client(t, `http://127.0.0.1:${port}`);
    const res = await bounded(session.get("/x"), 5000, "GET to a closed port");
    assert.equal(res.status, 0);
    assert.match(res.error ?? "", /ECONNREFUSED/);
    assert.equal(res.ok, false);
    assert.equal(res.body.length, 0);
    const tot = totals(recorder);
    assert.equal(tot.count, 1);
    assert.equal(tot.failures, 1);
    assert.equal(tot.errors[0]?.error, res.error);
    // The session still works once something listens... on another port: a new origin is fine.
    const server = await httpServer(t, (_req, res2) => res2.end("up"));
    assert.equal((await bounded(session.get(`${server.url}/`), REQ_MS, "GET elsewhere")).text(), "up");
  });

  it("the server resets the connection mid-response", TEST, async (t) => {
    const server = await rawServer(t, (sock) => {
      sock.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789", () => {
        setTimeout(() => sock.resetAndDestroy(), 20);
      });
    });
    const { session, recorder } = client(t, server.url);
    const res = await bounded(session.get("/"), REQ_MS, "GET");
    assert.equal(res.status, 0);
    assert.match(res.error ?? "", /ECONNRESET|closed/);
    assert.equal(server.requests(), 1, "a response had begun: no retry");
    assert.equal(totals(recorder).failures, 1);
  });

  it("the server closes (FIN) mid-body", TEST, async (t) => {
    const server = await rawServer(t, (sock) => {
      sock.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789");
      sock.end();
    });
    const { session } = client(t, server.url);
    const res = await bounded(session.get("/"), REQ_MS, "GET");
    assert.equal(res.status, 0);
    assert.match(res.error ?? "", /closed/);
    assert.equal(server.requests(), 1);
  });

  it(
    "a garbage response: the protocol error, and the session recovers on a new connection",
    TEST,
    async (t) => {
      const server = await rawServer(t, (sock, req) => {
        if (req.path === "/garbage") sock.write("SMTP ready, not HTTP\r\n\r\n");
        else sock.write(okResponse("fine"));
      });
      const { session, recorder } = client(t, server.url);
      const res = await bounded(session.get("/garbage"), REQ_MS, "GET /garbage");
      assert.equal(res.status, 0);
      assert.ok(res.error?.includes(PROTOCOL), `error: ${res.error}`);
      const ok = await bounded(session.get("/ok"), REQ_MS, "GET /ok after garbage");
      assert.equal(ok.status, 200, `error: ${ok.error}`);
      assert.equal(ok.text(), "fine");
      assert.equal(server.connections(), 2);
      const tot = totals(recorder);
      assert.equal(tot.count, 2);
      assert.equal(tot.failures, 1);
    },
  );

  it("timeout: 0.3 against a server that never answers", TEST, async (t) => {
    const server = await rawServer(t, () => {});
    const { session, recorder } = client(t, server.url);
    const t0 = performance.now();
    const res = await bounded(session.get("/", { timeout: 0.3 }), 5000, "GET with timeout 0.3");
    const ms = performance.now() - t0;
    assert.equal(res.status, 0);
    assert.ok(res.error?.startsWith("timeout"), `error: ${res.error}`);
    assert.equal(res.error, "timeout: no response within 0.3s");
    assert.ok(ms >= 280 && ms < 1500, `took ${ms} ms`);
    assert.ok(res.elapsedMs >= 280 && res.elapsedMs < 1500, `elapsedMs ${res.elapsedMs}`);
    assert.equal(totals(recorder).failures, 1);
  });
});

// ---------------------------------------------------------------------------------------------

describe("hard stop", () => {
  it(
    "aborting the signal rejects in-flight requests with RunStopped at once; counted as cancelled, a later one as not sent",
    TEST,
    async (t) => {
      const server = await rawServer(t, () => {});
      const recorder = new Recorder("test");
      const ac = new AbortController();
      const sessions = [0, 1, 2].map(
        () => new HttpSession({ recorder, baseUrl: server.url, signal: ac.signal }),
      );
      t.after(() => Promise.all(sessions.map((s) => s.close(true))));
      const pending = sessions.map((s) => s.get("/hang", { timeout: 5 }));
      for (const p of pending) p.catch(() => {});
      // All three requests are on the wire.
      for (let i = 0; i < 100 && server.requests() < 3; i++) await sleep(10);
      assert.equal(server.requests(), 3);
      const t0 = performance.now();
      ac.abort();
      for (const p of pending) await assert.rejects(bounded(p, 2000, "aborted GET"), RunStopped);
      const ms = performance.now() - t0;
      assert.ok(ms < 500, `took ${ms} ms to reject`);
      // After the stop, a new request is refused the same way.
      await assert.rejects(bounded(sessions[0]!.get("/hang"), 1000, "GET after abort"), RunStopped);
      const tot = totals(recorder);
      assert.equal(tot.count, 0);
      assert.equal(tot.failures, 0);
      assert.equal(tot.cancelled, 3, "the three requests the server received");
      assert.equal(tot.notSent, 1, "the request made after the stop");
      assert.deepEqual(tot.errors, []);
    },
  );

  it(
    "aborting while the connection is still being made rejects with RunStopped, not sent, leaving no timer",
    TEST,
    async (t) => {
      const server = await rawServer(t, (sock) => sock.write(okResponse("ok")));
      const { session, recorder, ac } = client(t, server.url);
      const timers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;
      const before = timers();
      // The connect has started (session.get runs synchronously up to it) and not finished.
      const p = session.get("/");
      p.catch(() => {});
      ac.abort();
      await assert.rejects(bounded(p, REQ_MS, "GET aborted while connecting"), RunStopped);
      const tot = totals(recorder);
      assert.equal(tot.cancelled, 0);
      assert.equal(tot.notSent, 1, "nothing was written: the connection was not up");
      assert.equal(tot.failures, 0);
      await sleep(50);
      // A connect timer left running would keep a stopped process alive (10 s connect timeout).
      assert.equal(timers(), before, `timers before ${before}, after ${timers()}`);
    },
  );

  it("with SharedPools, requests queued for a connection are stopped too", TEST, async (t) => {
    const server = await rawServer(t, () => {});
    const recorder = new Recorder("test");
    const ac = new AbortController();
    t.after(() => ac.abort());
    const sharedPools = SharedPools.forWorker(HttpSession, 1, true, ac.signal);
    const sessions = [0, 1, 2].map(
      () => new HttpSession({ recorder, baseUrl: server.url, signal: ac.signal, sharedPools }),
    );
    // A short request timeout bounds the test when queued requests are not stopped.
    const pending = sessions.map((s) => s.get("/hang", { timeout: 1 }));
    for (const p of pending) p.catch(() => {});
    for (let i = 0; i < 100 && server.requests() < 1; i++) await sleep(10);
    await sleep(50);
    assert.equal(server.requests(), 1, "one connection: one request on the wire, two queued");
    const t0 = performance.now();
    ac.abort();
    for (const p of pending) await assert.rejects(bounded(p, REQ_MS, "aborted GET"), RunStopped);
    const ms = performance.now() - t0;
    assert.ok(ms < 500, `took ${ms} ms to reject the queued requests`);
    assert.equal(server.connections(), 1, "no new connection after the stop");
    const tot = totals(recorder);
    assert.equal(tot.failures, 0);
    assert.equal(tot.cancelled, 1, "the request on the wire");
    assert.equal(tot.notSent, 2, "the two queued ones");
  });
});

// ---------------------------------------------------------------------------------------------

describe("SharedPools", () => {
  it("40 sessions share at most 4 connections; requests queue and all succeed", TEST, async (t) => {
    const DELAY = 20;
    let inFlight = 0;
    let maxInFlight = 0;
    const server = await httpServer(t, (_req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      setTimeout(() => {
        inFlight--;
        res.end("shared");
      }, DELAY);
    });
    const recorder = new Recorder("test");
    const ac = new AbortController();
    t.after(() => ac.abort());
    class ShopUser {}
    class OtherUser {}
    const sharedPools = SharedPools.forWorker(ShopUser, 4, true, ac.signal);
    assert.equal(
      SharedPools.forWorker(ShopUser, 4, true, ac.signal),
      sharedPools,
      "one set per worker and class",
    );
    assert.notEqual(
      SharedPools.forWorker(OtherUser, 4, true, ac.signal),
      sharedPools,
      "another class with the same size has its own connections",
    );
    const sessions = Array.from(
      { length: 40 },
      () => new HttpSession({ recorder, baseUrl: server.url, signal: ac.signal, sharedPools }),
    );
    const PER_SESSION = 2;
    const t0 = performance.now();
    const results = await bounded(
      Promise.all(
        sessions.map(async (s) => {
          const out: HttpResponse[] = [];
          for (let i = 0; i < PER_SESSION; i++) out.push(await s.get("/s"));
          return out;
        }),
      ),
      10_000,
      "shared-pool requests",
    );
    const ms = performance.now() - t0;
    const total = 40 * PER_SESSION;
    for (const r of results.flat()) {
      assert.equal(r.status, 200, `error: ${r.error}`);
      assert.equal(r.text(), "shared");
    }
    assert.equal(server.requests(), total);
    assert.ok(server.connections() <= 4, `${server.connections()} connections`);
    assert.ok(maxInFlight <= 4, `${maxInFlight} requests at once at the server`);
    assert.ok(maxInFlight >= 2, `${maxInFlight} requests at once: the pool did not run in parallel`);
    const floor = (total / 4) * DELAY;
    assert.ok(ms >= floor * 0.8, `took ${ms} ms, less than queueing allows (${floor} ms)`);
    const tot = totals(recorder);
    assert.equal(tot.count, total);
    assert.equal(tot.failures, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe("request headers and bodies", () => {
  it("a header value or name with CR/LF/NUL throws a TypeError; nothing is sent", TEST, async (t) => {
    const seen: IncomingMessage["headers"][] = [];
    const server = await httpServer(t, (req, res) => {
      seen.push(req.headers);
      res.end("ok");
    });
    const { session, recorder } = client(t, server.url);
    await assert.rejects(
      session.get("/", { headers: { "x-a": "b\r\nx-injected: 1" } }),
      (e: unknown) => e instanceof TypeError && /CR, LF or NUL/.test(e.message),
    );
    await assert.rejects(session.get("/", { headers: { "x-a": "b\nx-injected: 1" } }), TypeError);
    await assert.rejects(session.get("/", { headers: { "x-a": "b\0" } }), TypeError);
    await assert.rejects(session.get("/", { headers: { "x-injected: 1\r\nx-a": "b" } }), TypeError);
    await assert.rejects(session.post("/", { headers: { "x-a:": "b" }, body: "x" }), TypeError);
    session.headers["x-session"] = "v\r\n\r\nGET /smuggled HTTP/1.1";
    await assert.rejects(session.get("/"), TypeError);
    delete session.headers["x-session"];
    assert.equal(server.requests(), 0);
    const res = await bounded(session.get("/", { headers: { "x-a": "clean" } }), REQ_MS, "clean GET");
    assert.equal(res.status, 200);
    assert.equal(server.requests(), 1);
    assert.equal(seen[0]?.["x-a"], "clean");
    assert.equal(seen[0]?.["x-injected"], undefined);
    assert.equal(totals(recorder).count, 1);
  });

  it(
    "a method that is not a token throws a TypeError instead of splitting the request line",
    TEST,
    async (t) => {
      const server = await httpServer(t, (_req, res) => res.end("ok"));
      const { session } = client(t, server.url);
      await assert.rejects(
        bounded(session.request("GET /smuggled HTTP/1.1\r\nx-a:", "/"), REQ_MS, "bad method"),
        TypeError,
      );
      await assert.rejects(bounded(session.request("GET X", "/"), REQ_MS, "method with a space"), TypeError);
      assert.equal(server.requests(), 0);
    },
  );

  it(
    "POST json / form / raw bodies arrive intact with the right content-length and content-type",
    TEST,
    async (t) => {
      const server = await httpServer(t, (req, res, body) => {
        res.setHeader("content-type", "application/json");
        res.end(
          JSON.stringify({
            method: req.method,
            ct: req.headers["content-type"] ?? null,
            cl: req.headers["content-length"] ?? null,
            te: req.headers["transfer-encoding"] ?? null,
            hash: sha256(body),
            text: body.toString("utf8"),
            len: body.length,
          }),
        );
      });
      const { session, recorder } = client(t, server.url);
      const echo = async (p: Promise<HttpResponse>) => (await bounded(p, 5000, "request")).json();

      const json = { a: 1, ü: "é", list: [1, "two", null] };
      let e = await echo(session.post("/", { json }));
      assert.equal(e.method, "POST");
      assert.equal(e.ct, "application/json");
      assert.equal(e.cl, String(Buffer.byteLength(JSON.stringify(json))));
      assert.deepEqual(JSON.parse(e.text), json);

      e = await echo(session.post("/", { form: { a: 1, b: "x y", c: "ü&=", d: true } }));
      assert.equal(e.ct, "application/x-www-form-urlencoded");
      assert.equal(e.text, "a=1&b=x+y&c=%C3%BC%26%3D&d=true");
      assert.equal(e.cl, String(e.text.length));

      e = await echo(
        session.post("/", { json: { x: 1 }, headers: { "Content-Type": "application/vnd.x+json" } }),
      );
      assert.equal(e.ct, "application/vnd.x+json", "an explicit content-type wins");

      const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      e = await echo(session.post("/", { body: bytes }));
      assert.equal(e.cl, "256");
      assert.equal(e.ct, null);
      assert.equal(e.hash, sha256(bytes));

      // A view into a larger buffer: only its own bytes go out.
      const backing = randomBytes(1000);
      const view = new Uint8Array(backing.buffer, backing.byteOffset + 100, 300);
      e = await echo(session.put("/", { body: view }));
      assert.equal(e.cl, "300");
      assert.equal(e.hash, sha256(backing.subarray(100, 400)));

      e = await echo(session.post("/", { body: "héllo wörld" }));
      assert.equal(e.cl, String(Buffer.byteLength("héllo wörld")));
      assert.equal(e.text, "héllo wörld");

      const big = randomBytes(1024 * 1024 + 3);
      e = await echo(session.post("/", { body: big }));
      assert.equal(e.len, big.length);
      assert.equal(e.hash, sha256(big));

      for (const method of ["PUT", "PATCH", "POST"]) {
        e = await echo(session.request(method, "/"));
        assert.equal(e.method, method);
        assert.equal(e.cl, "0", `${method} without a body sends content-length: 0`);
        assert.equal(e.te, null);
      }
      for (const method of ["GET", "DELETE"]) {
        e = await echo(session.request(method, "/"));
        assert.equal(e.cl, null, `${method} without a body sends no content-length`);
        assert.equal(e.te, null);
      }
      assert.equal(server.connections(), 1);
      const tot = totals(recorder);
      assert.equal(tot.count, 12);
      assert.equal(tot.failures, 0);
    },
  );
});

// ---------------------------------------------------------------------------------------------

describe("differential: fast engine vs undici engine", () => {
  /** Routes for the differential scenarios. */
  const handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const u = new URL(req.url ?? "/", "http://x");
    const redirect = (status: number, location: string, extra: Record<string, string | string[]> = {}) => {
      res.writeHead(status, { location, ...extra });
      res.end(`redirecting to ${location}`);
    };
    switch (u.pathname) {
      case "/text":
        res.writeHead(200, { "content-type": "text/plain", "x-test": "a" });
        res.end("hello");
        return;
      case "/json404":
        res.writeHead(404, { "content-type": "application/json" });
        res.end('{"error":"nope"}');
        return;
      case "/err500":
        res.writeHead(500);
        res.end("boom");
        return;
      case "/teapot":
        res.writeHead(418, "I'm a teapot", { "x-multi": ["1", "2"] });
        res.end("short and stout");
        return;
      case "/cookies":
        res.writeHead(200, { "set-cookie": ["a=1; Path=/", "b=2; Path=/; HttpOnly"] });
        res.end("set");
        return;
      case "/chunked":
        res.write("ch");
        res.write("unk");
        res.end("ed");
        return;
      case "/empty204":
        res.writeHead(204, { "x-empty": "yes" });
        res.end();
        return;
      case "/head":
        res.writeHead(200, { "content-length": "1000", "content-type": "text/html" });
        res.end();
        return;
      case "/r301":
        return redirect(301, "/echo?from=301");
      case "/r302":
        return redirect(302, "/echo?from=302");
      case "/r303":
        return redirect(303, "/echo?from=303");
      case "/r307":
        return redirect(307, "/echo?from=307");
      case "/r308":
        return redirect(308, "/echo?from=308");
      case "/relative/r":
        return redirect(302, "../echo?from=relative");
      case "/login":
        return redirect(302, "/echo?from=login", { "set-cookie": "sid=xyz; Path=/" });
      case "/loop":
        return redirect(302, "/loop");
      default:
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            method: req.method,
            url: req.url,
            body: body.toString("utf8"),
            ct: req.headers["content-type"] ?? null,
            cl: req.headers["content-length"] ?? null,
            cookie: req.headers.cookie ?? null,
            ua: req.headers["user-agent"] ?? null,
            xu: req.headers["x-user"] ?? null,
          }),
        );
    }
  };

  type Step = [method: string, url: string, opts?: Parameters<HttpSession["request"]>[2]];
  const steps: Step[] = [
    ["GET", "/text"],
    ["GET", "/json404"],
    ["GET", "/err500"],
    ["GET", "/teapot"],
    ["GET", "/chunked"],
    ["GET", "/empty204"],
    ["HEAD", "/head"],
    ["GET", "/cookies"],
    ["GET", "/echo", { headers: { "X-User": "u1" } }],
    ["GET", "/r301"],
    ["POST", "/r301", { json: { a: 1 } }],
    ["POST", "/r302", { form: { a: "1" } }],
    ["POST", "/r303", { body: "raw" }],
    ["PUT", "/r303", { json: { p: 1 } }],
    ["POST", "/r307", { json: { keep: true } }],
    ["POST", "/r308", { body: "keep-me" }],
    ["HEAD", "/r303"],
    ["GET", "/relative/r"],
    ["GET", "/login"],
    ["GET", "/loop", { maxRedirects: 3 }],
    ["GET", "/r302", { allowRedirects: false }],
    ["GET", "/echo", { query: { a: [1, 2], b: "x y", c: null } }],
    ["DELETE", "/echo?x=1"],
    ["GET", "/json404", { name: "caught", catchResponse: (r) => r.success() }],
    ["GET", "/text", { name: "rejected", catchResponse: (r) => r.failure("not good") }],
  ];

  const HEADERS = [
    "content-type",
    "content-length",
    "x-test",
    "x-multi",
    "set-cookie",
    "location",
    "x-empty",
  ];

  async function runAll(engine: HttpEngine, baseUrl: string, t: TestContext) {
    const { session, recorder } = client(t, baseUrl, { engine });
    const out: Array<Record<string, unknown>> = [];
    for (const [method, url, opts] of steps) {
      const r = await bounded(session.request(method, url, opts), 5000, `${engine} ${method} ${url}`);
      const headers: Record<string, unknown> = {};
      // header() joins repeated headers; set-cookie is compared as the array.
      for (const h of HEADERS) headers[h] = h === "set-cookie" ? r.headers[h] : r.header(h);
      let body: unknown = r.text();
      if (r.header("content-type") === "application/json" && r.body.length > 0) body = r.json();
      out.push({ step: `${method} ${url}`, status: r.status, url: r.url, error: r.error, body, headers });
    }
    // The session's cookies at the end.
    const cookies = session.cookies.getCookieStringSync(baseUrl);
    const snap = recorder.snapshot(0);
    const endpoints = snap.endpoints
      .map((e) => ({
        method: e.method,
        name: e.name,
        count: e.count,
        failures: e.failures,
        bytes: e.bytes,
      }))
      .sort((a, b) => `${a.method} ${a.name}`.localeCompare(`${b.method} ${b.name}`));
    const errors = snap.errors
      .map((e) => ({ ...e }))
      .sort((a, b) => `${a.method} ${a.name}`.localeCompare(`${b.method} ${b.name}`));
    return { out, cookies, endpoints, errors };
  }

  it("same statuses, bodies, headers, final URLs, cookies and recorded counts", TEST, async (t) => {
    const server = await httpServer(t, handler);
    const fast = await runAll("fast", server.url, t);
    const undici = await runAll("undici", server.url, t);
    for (let i = 0; i < steps.length; i++) {
      assert.deepEqual(fast.out[i], undici.out[i], `step ${i}: ${fast.out[i]?.step}`);
    }
    assert.equal(fast.cookies, undici.cookies);
    assert.equal(fast.cookies, "a=1; b=2; sid=xyz");
    assert.deepEqual(fast.endpoints, undici.endpoints);
    assert.deepEqual(fast.errors, undici.errors);

    // Spot checks, so that "both wrong the same way" cannot pass.
    const byStep = (s: string) => fast.out.find((o) => o.step === s)!;
    const body = (s: string) => byStep(s).body as Record<string, unknown>;
    assert.deepEqual((byStep("GET /cookies").headers as Record<string, unknown>)["set-cookie"], [
      "a=1; Path=/",
      "b=2; Path=/; HttpOnly",
    ]);
    assert.equal(body("GET /echo").cookie, "a=1; b=2");
    assert.equal(body("GET /echo").xu, "u1");
    assert.equal(body("POST /r301").method, "GET");
    assert.equal(body("POST /r302").method, "GET");
    assert.equal(body("POST /r303").method, "GET");
    assert.equal(body("POST /r303").body, "");
    assert.equal(body("PUT /r303").method, "GET");
    assert.equal(body("POST /r307").method, "POST");
    assert.equal(body("POST /r307").body, '{"keep":true}');
    assert.equal(body("POST /r307").ct, "application/json");
    assert.equal(body("POST /r308").body, "keep-me");
    assert.equal(byStep("HEAD /r303").status, 200);
    assert.equal(byStep("HEAD /r303").body, "");
    assert.match(String(byStep("GET /relative/r").url), /\/echo\?from=relative$/);
    assert.equal(body("GET /login").cookie, "a=1; b=2; sid=xyz");
    assert.equal(byStep("GET /loop").status, 302);
    assert.equal(byStep("GET /r302").status, 302);
    assert.equal((byStep("GET /r302").headers as Record<string, unknown>).location, "/echo?from=302");
    assert.equal(body("GET /echo").ua, body("GET /r301").ua);
    assert.match(String(body("GET /r301").ua), /^cicada\//);
    assert.deepEqual(
      fast.errors.map((e) => `${e.method} ${e.name}: ${e.error}`),
      ["GET /err500: HTTP 500", "GET /json404: HTTP 404", "GET /teapot: HTTP 418", "GET rejected: not good"],
    );
  });

  it("a content-type given as a header is dropped too when a 303 turns POST into GET", TEST, async (t) => {
    const server = await httpServer(t, handler);
    const results: Record<string, unknown> = {};
    for (const engine of ["fast", "undici"] as const) {
      const { session } = client(t, server.url, { engine });
      const r = await bounded(
        session.post("/r303", { body: "x", headers: { "content-type": "text/plain" } }),
        3000,
        `${engine} POST /r303`,
      );
      results[engine] = r.json().ct;
    }
    assert.deepEqual(results, { fast: null, undici: null });
  });

  it("network errors give the same strings", TEST, async (t) => {
    const port = await closedPort();
    const silent = await rawServer(t, () => {});
    const garbage = await rawServer(t, (sock) => sock.write("garbage\r\n\r\n"));
    const results: Record<string, string[]> = {};
    for (const engine of ["fast", "undici"] as const) {
      const errs: string[] = [];
      const refused = client(t, `http://127.0.0.1:${port}`, { engine }).session;
      errs.push((await bounded(refused.get("/"), 5000, `${engine} refused`)).error ?? "");
      const s = client(t, silent.url, { engine }).session;
      errs.push((await bounded(s.get("/", { timeout: 0.3 }), 5000, `${engine} timeout`)).error ?? "");
      const g = client(t, garbage.url, { engine }).session;
      errs.push((await bounded(g.get("/"), 5000, `${engine} garbage`)).error ?? "");
      results[engine] = errs;
    }
    const [refused, timeout, garbageErr] = results.fast!;
    assert.equal(refused, `connect ECONNREFUSED 127.0.0.1:${port}`);
    assert.equal(timeout, "timeout: no response within 0.3s");
    assert.ok(garbageErr?.includes(PROTOCOL), garbageErr);
    // Refused and timeout strings match; protocol errors share the prefix and differ in detail.
    assert.deepEqual(results.fast!.slice(0, 2), results.undici!.slice(0, 2));
    assert.ok(results.undici![2]?.includes(PROTOCOL), results.undici![2]);
  });

  it("timeouts are deadlines: bytes trickling in every 100 ms do not extend them", TEST, async (t) => {
    const timers = new Set<NodeJS.Timeout>();
    t.after(() => {
      for (const x of timers) clearInterval(x);
    });
    const trickle = (sock: Socket, next: () => string) => {
      const timer = setInterval(() => sock.write(next()), 100);
      timers.add(timer);
      sock.on("close", () => clearInterval(timer));
    };
    // A head that never ends, and a 1 MB body that never ends, both a byte every 100 ms.
    const slowHead = await rawServer(t, (sock) => {
      sock.write("HTTP/1.1 200 OK\r\n");
      trickle(sock, () => "x");
    });
    const slowBody = await rawServer(t, (sock) => {
      sock.write("HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n");
      trickle(sock, () => "x");
    });
    for (const engine of ["fast", "undici"] as const) {
      const head = client(t, slowHead.url, { engine });
      let t0 = performance.now();
      const h = await bounded(head.session.get("/", { timeout: 0.5 }), 5000, `${engine} slow head`);
      const headMs = performance.now() - t0;
      assert.equal(h.error, "timeout: no response within 0.5s", engine);
      assert.ok(headMs >= 480 && headMs < 1500, `${engine}: slow head failed after ${headMs} ms`);

      const body = client(t, slowBody.url, { engine });
      t0 = performance.now();
      const b = await bounded(
        body.session.get("/", { timeout: 5, bodyTimeout: 0.5 }),
        5000,
        `${engine} slow body`,
      );
      const bodyMs = performance.now() - t0;
      assert.equal(b.status, 0, engine);
      assert.equal(b.error, "timeout: response body not complete within 0.5s", engine);
      assert.ok(bodyMs >= 480 && bodyMs < 1500, `${engine}: slow body failed after ${bodyMs} ms`);
      assert.equal(totals(body.recorder).failures, 1);
    }
  });

  it("a timeout that is not a number of seconds > 0 is refused, naming what was given", TEST, async (t) => {
    const server = await httpServer(t, (_req, res) => res.end("ok"));
    for (const engine of ["fast", "undici"] as const) {
      const { session } = client(t, server.url, { engine });
      await assert.rejects(
        session.get("/", { timeout: 0 }),
        /^TypeError: timeout: expected seconds > 0, got 0$/,
      );
      await assert.rejects(
        session.get("/", { bodyTimeout: -1 }),
        /^TypeError: bodyTimeout: expected seconds > 0, got -1$/,
      );
    }
    assert.equal(server.requests(), 0);
  });
});
