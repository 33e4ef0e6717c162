/**
 * WebSocketUser against real `ws` servers on 127.0.0.1: round-trip times, id correlation, exact
 * counters, the ways servers fail, the demo endpoints, and 2,000 connections held open.
 */
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { describe, it } from "node:test";
import { WebSocketServer } from "ws";
import { attachWebSocketDemo } from "../src/demo/ws.js";
import type { RunResult } from "../src/result/result.js";
import { runLoad, startServer, type TestServer } from "./helpers.js";

type Endpoint = RunResult["endpoints"][number];

function ws(result: RunResult, method: string, name: string): Endpoint | undefined {
  return result.endpoints.find((e) => e.type === "WS" && e.method === method && e.name === name);
}

function counter(e: Endpoint | undefined, name: string): number {
  return (e as { counters?: Record<string, number> } | undefined)?.counters?.[name] ?? 0;
}

function closes(e: Endpoint | undefined): number {
  const c = (e as { counters?: Record<string, number> } | undefined)?.counters ?? {};
  return Object.entries(c)
    .filter(([k]) => k.startsWith("close:"))
    .reduce((a, [, v]) => a + v, 0);
}

function metric(e: Endpoint | undefined, name: string) {
  return (e as { metrics?: Record<string, { count: number; p50: number }> } | undefined)?.metrics?.[name];
}

/** A loopback HTTP server whose upgrades go to `onUpgrade`; counts WS traffic it sees. */
async function wsServer(
  onUpgrade: (wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer) => void,
): Promise<TestServer & { wss: WebSocketServer }> {
  const server = await startServer((_req, res) => res.end("not a websocket"));
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  const sockets = new Set<Duplex>();
  server.server.on("upgrade", (req, socket, head) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    onUpgrade(wss, req, socket, head);
  });
  return Object.assign(server, {
    wss,
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        for (const s of sockets) s.destroy();
        server.server.closeAllConnections();
        server.server.close(() => r());
      }),
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

describe("WebSocketUser", () => {
  it("rtt matches a server that answers after a known delay; ids correlate; counters are exact; source addresses", async () => {
    const delays: number[] = [];
    const from = new Set<string>();
    let received = 0;
    let sent = 0;
    const server = await wsServer((wss, req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (c) => {
        from.add(req.socket.remoteAddress ?? "");
        c.on("message", (data) => {
          received++;
          const at = performance.now();
          const msg = JSON.parse(data.toString()) as { id: number; delay: number };
          // An unsolicited message first: correlation by id must skip it.
          c.send(JSON.stringify({ type: "noise" }));
          sent++;
          setTimeout(() => {
            delays.push(performance.now() - at);
            c.send(JSON.stringify({ id: msg.id, type: "reply" }));
            sent++;
          }, msg.delay);
        });
      }),
    );
    try {
      const { code, stderr, result } = await runLoad(
        `
import { WebSocketUser, task, constant } from "cicada-load";
export class Talker extends WebSocketUser {
  static override waitTime = constant(0.05);
  static override sourceAddresses = ["127.0.0.2", "127.0.0.3"];
  conn;
  n = 0;
  async onStart() {
    this.conn = await this.connect("/rtt");
    this.conn.onMessage(() => {});
  }
  @task async talk() {
    // Three requests in flight at once: the one sent second is answered first.
    const a = ++this.n, b = ++this.n, c = ++this.n;
    const [ra, rb, rc] = await Promise.all([
      this.conn.request({ id: a, delay: 30 }),
      this.conn.request({ id: b, delay: 10 }),
      this.conn.request({ id: c, delay: 30 }),
    ]);
    if (this.stopping) return;
    this.check(ra, { "reply a": (m) => m.json().id === a });
    this.check(rb, { "reply b": (m) => m.json().id === b });
    this.check(rc, { "reply c": (m) => m.json().id === c });
  }
}
`,
        ["-H", server.url, "-u", "4", "-r", "4", "-t", "3s", "--stop-timeout", "5"],
      );
      assert.equal(code, 0, stderr);
      const e = ws(result, "CONNECT", "/rtt");
      assert.ok(e, JSON.stringify(result.endpoints));
      assert.equal(e.requests, 4);
      assert.equal(e.failures, 0);
      for (const c of result.checks ?? []) assert.equal(c.fails, 0, `${c.name}: ${c.fails} failed`);
      const rtt = metric(e, "rtt")!;
      assert.equal(rtt.count, delays.length);
      // Two thirds of the replies come after 30 ms: both medians fall among those.
      assert.ok(
        Math.abs(rtt.p50 - median(delays)) <= 2,
        `rtt p50 ${rtt.p50} ms vs server-measured median ${median(delays)} ms`,
      );
      assert.equal(counter(e, "sent"), received);
      assert.equal(counter(e, "received"), sent);
      assert.equal(counter(e, "close:1000"), 4, JSON.stringify(e));
      assert.equal(counter(e, "errors"), 0);
      assert.deepEqual(
        [...from].sort(),
        ["127.0.0.2", "127.0.0.3"],
        "connections bind to the source addresses in turn",
      );
    } finally {
      await server.close();
    }
  });

  it("servers that close with 1011, drop the socket, never upgrade or refuse: failures, no crash", async () => {
    const server = await wsServer((wss, req, socket, head) => {
      const path = req.url;
      if (path === "/silent") return; // never answers the upgrade
      if (path === "/refuse") {
        socket.end("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      wss.handleUpgrade(req, socket, head, (c) => {
        c.on("message", () => {
          if (path === "/close1011") c.close(1011, "internal error");
          else if (path === "/destroy") socket.destroy();
          // "/mute": never replies
        });
      });
    });
    try {
      const { code, stderr, result } = await runLoad(
        `
import { WebSocketUser, task, constant } from "cicada-load";
class Base extends WebSocketUser {
  static abstract = true;
  static fixedCount = 1;
  static override waitTime = constant(0.2);
  path = "";
  @task async go() {
    const conn = await this.connect(this.path, { timeout: 1 });
    if (!conn) return;
    const reply = await conn.request({ id: 1 }, { timeout: 0.5 });
    if (reply !== undefined) throw new Error("unexpected reply");
    await conn.close();
  }
}
export class C1011 extends Base { path = "/close1011"; }
export class Destroy extends Base { path = "/destroy"; }
export class Silent extends Base { path = "/silent"; }
export class Refuse extends Base { path = "/refuse"; }
export class Mute extends Base { path = "/mute"; }
`,
        ["-H", server.url, "-u", "5", "-r", "5", "-t", "3s", "--stop-timeout", "3"],
      );
      assert.deepEqual(result.exceptions, []);
      assert.notEqual(code, 0, "failures make the exit code non-zero");
      assert.doesNotMatch(stderr, /TypeError|unhandled/i);
      const errs = (method: string, name: string) =>
        result.failures.filter((f) => f.method === method && f.name === name).map((f) => f.error);

      const c1011 = ws(result, "CONNECT", "/close1011");
      assert.ok(counter(c1011, "close:1011") >= 2, JSON.stringify(c1011));
      assert.equal(c1011?.failures, 0);
      assert.deepEqual(errs("CLOSE", "/close1011"), ["WS closed by server (1011)"]);
      assert.deepEqual(errs("REPLY", "/close1011"), ["WS closed before the reply (1011)"]);

      const destroy = ws(result, "CONNECT", "/destroy");
      assert.ok(counter(destroy, "close:1006") >= 2, JSON.stringify(destroy));
      assert.deepEqual(errs("CLOSE", "/destroy"), ["WS connection lost (1006)"]);

      const silent = ws(result, "CONNECT", "/silent");
      assert.ok(
        silent && silent.failures >= 2 && silent.failures === silent.requests,
        JSON.stringify(silent),
      );
      assert.deepEqual(errs("CONNECT", "/silent"), ["WS timeout: no handshake within 1s"]);
      assert.equal(counter(silent, "errors"), silent.failures);

      const refuse = ws(result, "CONNECT", "/refuse");
      assert.ok(
        refuse && refuse.failures >= 5 && refuse.failures === refuse.requests,
        JSON.stringify(refuse),
      );
      assert.deepEqual(errs("CONNECT", "/refuse"), ["HTTP 403"]);

      const mute = ws(result, "CONNECT", "/mute");
      assert.equal(mute?.failures, 0);
      assert.ok(counter(mute, "close:1000") >= 2, JSON.stringify(mute));
      assert.deepEqual(errs("REPLY", "/mute"), ["WS timeout: no reply within 0.5s"]);
    } finally {
      await server.close();
    }
  });

  it("at the hard stop, requests in flight are cancelled, not failures, and connections close with 1001", async () => {
    let serverClosed = 0;
    const server = await wsServer((wss, req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (c) => {
        c.on("close", () => serverClosed++);
        // Never replies.
      }),
    );
    try {
      const { code, stderr, result } = await runLoad(
        `
import { WebSocketUser, task } from "cicada-load";
export class Waiter extends WebSocketUser {
  @task async wait() {
    const conn = await this.connect("/wait");
    await conn?.request({ id: 1 }, { timeout: 60 });
  }
}
`,
        ["-H", server.url, "-u", "3", "-r", "3", "-t", "2s"],
      );
      assert.equal(code, 0, stderr);
      assert.deepEqual(result.failures, []);
      assert.deepEqual(result.exceptions, []);
      const e = ws(result, "CONNECT", "/wait");
      assert.equal(e?.requests, 3);
      assert.equal(e?.cancelled, 3);
      assert.equal(counter(e, "close:1001"), 3, JSON.stringify(e));
      for (let i = 0; i < 30 && serverClosed < 3; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(serverClosed, 3);
    } finally {
      await server.close();
    }
  });

  it("the demo's echo and chat: replies by id, server pushes on the side", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    attachWebSocketDemo(server.server);
    try {
      const { code, stderr, result } = await runLoad(
        `
import { WebSocketUser, task, constant } from "cicada-load";
export class Demo extends WebSocketUser {
  static override waitTime = constant(0.1);
  chat; echo; n = 0; notices = 0;
  async onStart() {
    this.echo = await this.connect("/ws/echo");
    this.chat = await this.connect("/ws/chat");
    this.chat.onMessage((m) => { if (m.json().type === "notice") this.notices++; });
  }
  @task async talk() {
    const id = "u" + this.userId + "-" + ++this.n;
    const reply = await this.chat.request({ id, type: "chat", text: "hello" });
    const echoed = await this.echo.request("ping " + id);
    if (this.stopping) return;
    this.check(reply, { "chat reply": (m) => m.json().type === "reply" && m.json().id === id });
    this.check(echoed, { "echo": (m) => m.text === "ping " + id });
  }
}
`,
        ["-H", server.url, "-u", "5", "-r", "5", "-t", "3s", "--stop-timeout", "5"],
      );
      assert.equal(code, 0, stderr);
      for (const c of result.checks ?? []) assert.equal(c.fails, 0, `${c.name}: ${c.fails} failed`);
      const chat = ws(result, "CONNECT", "/ws/chat");
      const echo = ws(result, "CONNECT", "/ws/echo");
      assert.equal(chat?.requests, 5);
      assert.equal(echo?.requests, 5);
      assert.ok(metric(chat, "rtt")!.p50 >= 10, "chat replies come after 10–50 ms");
      assert.equal(counter(echo, "sent"), counter(echo, "received"));
      assert.ok(counter(chat, "received") >= counter(chat, "sent"));
    } finally {
      await server.close();
    }
  });

  it("holds 2,000 connections open at once, each sending every 1–2 s", async () => {
    let open = 0;
    let peak = 0;
    let serverReceived = 0;
    let serverClosed = 0;
    const server = await wsServer((wss, req, socket, head) =>
      wss.handleUpgrade(req, socket, head, (c) => {
        peak = Math.max(peak, ++open);
        c.on("close", () => {
          open--;
          serverClosed++;
        });
        c.on("message", (data) => {
          serverReceived++;
          c.send(data);
        });
      }),
    );
    try {
      const { code, stderr, result } = await runLoad(
        `
import { WebSocketUser, task, between } from "cicada-load";
export class Holder extends WebSocketUser {
  static override waitTime = between(1, 2);
  conn;
  async onStart() { this.conn = await this.connect("/hold", { timeout: 20 }); }
  @task async ping() { await this.conn?.request("x"); }
}
`,
        ["-H", server.url, "-u", "2000", "-r", "1000", "-t", "7s", "--processes", "1", "--stop-timeout", "5"],
      );
      assert.equal(code, 0, stderr);
      const e = ws(result, "CONNECT", "/hold");
      assert.ok(e, JSON.stringify(result.endpoints));
      assert.equal(peak, 2000, "the server saw 2,000 concurrent connections");
      assert.equal(e.requests, 2000);
      assert.equal(e.failures, 0);
      assert.equal(counter(e, "sent"), serverReceived);
      assert.ok(serverReceived >= 2000 * 3, `messages ${serverReceived}`);
      assert.equal(counter(e, "received"), metric(e, "rtt")!.count);
      assert.equal(closes(e), 2000, JSON.stringify(e));
      // The server sees every close soon after.
      for (let i = 0; i < 50 && serverClosed < 2000; i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(serverClosed, 2000);
    } finally {
      await server.close();
    }
  });
});
