/**
 * End-to-end behaviour of requests and their accounting, run through the real CLI against real
 * loopback servers: the stop timeout, request counts that match the server's, latency accuracy,
 * per-user cookies, redirects, catchResponse, request names, and custom (non-HTTP) samples.
 * Every HTTP case runs once per engine, chosen with `--http-engine` as a user types it, so both
 * clients keep the same behaviour. Every JSON result is also checked against schema/result.schema.json.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, it } from "node:test";
import {
  count,
  describeRun,
  endpoint,
  type LoadRun,
  runLoad,
  startServer,
  type TestServer,
} from "./helpers.js";

const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0);

/**
 * p50 latency of sequential requests from a bare node:http client in another process: what the
 * machine itself allows (waking an idle process costs ~1 ms on some VMs).
 */
function baselineP50(url: string, n: number): Promise<number> {
  const script = `
const http = require("node:http");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
const one = () => new Promise((resolve, reject) => {
  const t0 = performance.now();
  http.get(process.argv[1], { agent }, (res) => {
    res.resume();
    res.on("end", () => resolve(performance.now() - t0));
  }).on("error", reject);
});
(async () => {
  const xs = [];
  for (let i = 0; i < ${n}; i++) xs.push(await one());
  xs.sort((a, b) => a - b);
  console.log(xs[Math.floor(xs.length / 2)]);
  agent.destroy();
})();
`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ["-e", script, url], { timeout: 20_000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(Number(stdout.trim()));
    });
  });
}

const ENGINES = ["fast", "undici"] as const;

for (const engine of ENGINES) {
  describe(`stop timeout [${engine}]`, () => {
    const SLOW_MS = 2000;
    const loadfile = `
import { HttpUser, constant, task } from "cicada-load";
export class Slow extends HttpUser {
  // One request, then a long sleep that the stop interrupts at once.
  static waitTime = constant(30);
  @task t() { return this.client.get("/slow"); }
}
`;
    const slowServer = () =>
      startServer((_req, res) => {
        const timer = setTimeout(() => res.end("done"), SLOW_MS);
        res.on("close", () => clearTimeout(timer));
      });

    it("-s 3: the in-flight request completes and is counted, and the run ends when it does", async () => {
      const server = await slowServer();
      try {
        const r = await runLoad(loadfile, [
          "-H",
          server.url,
          "--http-engine",
          engine,
          "-u",
          "1",
          "-t",
          "1s",
          "-s",
          "3",
        ]);
        assert.equal(r.code, 0, describeRun(r));
        const e = endpoint(r.result, "/slow")!;
        assert.equal(e.requests, 1);
        assert.equal(e.failures, 0);
        assert.equal(e.cancelled, 0);
        assert.equal(r.result.totals.cancelled, 0);
        // A timer may fire up to ~1 ms early against the loop's cached clock.
        assert.ok(e.latencyMs.min >= SLOW_MS - 2, `latency ${e.latencyMs.min} ms`);
        // It waited for the answer (≈2 s), not for the whole stop timeout (1 + 3 = 4 s).
        assert.ok(
          r.result.durationSec >= 1.9 && r.result.durationSec <= 3.2,
          `durationSec ${r.result.durationSec}`,
        );
        assert.equal(server.total(), 1);
        assert.equal(r.result.stopReason, "run-time");
      } finally {
        await server.close();
      }
    });

    it("-s 0.3: the request still in flight is cancelled, and the run does not wait for it", async () => {
      const server = await slowServer();
      try {
        const r = await runLoad(loadfile, [
          "-H",
          server.url,
          "--http-engine",
          engine,
          "-u",
          "1",
          "-t",
          "1s",
          "-s",
          "0.3",
        ]);
        // The run completed no request, so it measured nothing: that never passes.
        assert.equal(r.code, 1, describeRun(r));
        assert.match(r.stderr, /no request completed/);
        const e = endpoint(r.result, "/slow");
        assert.ok(e, `no /slow endpoint in ${JSON.stringify(r.result.endpoints)}`);
        assert.equal(e.requests, 0);
        assert.equal(e.failures, 0);
        assert.ok((e.cancelled ?? 0) >= 1, `cancelled ${e.cancelled}`);
        assert.equal(r.result.totals.cancelled, 1);
        assert.equal(r.result.totals.requests, 0);
        assert.equal(r.result.failures.length, 0);
        // Stopped at ≈1.3 s; the server would have answered at 2 s.
        assert.ok(
          r.result.durationSec >= 1.2 && r.result.durationSec < 1.85,
          `durationSec ${r.result.durationSec}`,
        );
        assert.equal(server.total(), 1);
      } finally {
        await server.close();
      }
    });
  });

  describe(`request accounting [${engine}]`, () => {
    it("the server's request count equals reported requests + cancelled", async () => {
      const server = await startServer((_req, res) => {
        const timer = setTimeout(() => res.end("ok"), 20 + Math.random() * 280);
        res.on("close", () => clearTimeout(timer));
      });
      try {
        const r = await runLoad(
          `
import { HttpUser, task } from "cicada-load";
export class Busy extends HttpUser {
  @task(2) x() { return this.client.get("/x"); }
  @task(1) y() { return this.client.post("/y", { json: { n: 1 } }); }
}
`,
          ["-H", server.url, "--http-engine", engine, "-u", "5", "-r", "100", "-t", "2s", "-s", "0.15"],
        );
        assert.equal(r.code, 0, describeRun(r));
        const t = r.result.totals;
        assert.ok(t.requests >= 20, `only ${t.requests} requests`);
        assert.equal(t.failures, 0);
        assert.equal(
          t.requests + (t.cancelled ?? 0),
          server.total(),
          JSON.stringify({ ...t, server: server.total() }),
        );
        assert.equal(sum(r.result.endpoints.map((e) => e.requests)), t.requests);
        assert.equal(sum(r.result.endpoints.map((e) => e.cancelled ?? 0)), t.cancelled);
        const x = endpoint(r.result, "/x")!;
        const y = endpoint(r.result, "/y", "POST")!;
        assert.equal(x.requests + (x.cancelled ?? 0), count(server, "GET /x"));
        assert.equal(y.requests + (y.cancelled ?? 0), count(server, "POST /y"));
      } finally {
        await server.close();
      }
    });
  });

  describe(`latency [${engine}]`, () => {
    it("a server that takes 20 ms is reported with p50 within 1 ms of it", async () => {
      // The bare client's baseline is measured while the run goes on (from its first request), so
      // both see the same machine: a busy CI machine's load may come and go between two runs
      // made one after the other.
      let baseline: Promise<number> | undefined;
      const server = await startServer((req, res) => {
        if (req.url === "/d" && !baseline) {
          baseline = baselineP50(`${server.url}/baseline`, 40);
          baseline.catch(() => {}); // awaited below; a rejection before then is not unhandled
        }
        setTimeout(() => res.end("ok"), 20);
      });
      try {
        const r = await runLoad(
          `
import { HttpUser, task } from "cicada-load";
export class Timed extends HttpUser {
  @task t() { return this.client.get("/d"); }
}
`,
          ["-H", server.url, "--http-engine", engine, "-u", "1", "-t", "2s"],
        );
        assert.equal(r.code, 0, describeRun(r));
        const e = endpoint(r.result, "/d")!;
        assert.ok(e.requests >= 40, `only ${e.requests} requests`);
        assert.ok(baseline, "the run reached the server");
        const bare = await baseline;
        const { min, p50, max } = e.latencyMs;
        const upper = Math.max(21.5, bare + 1);
        assert.ok(
          p50 >= 20 && p50 <= upper,
          `p50 ${p50} ms, want 20–${upper.toFixed(2)} (bare node:http client: ${bare.toFixed(2)} ms)`,
        );
        // Node's timers run against the loop's cached clock, so one can fire up to ~1 ms early.
        assert.ok(min >= 18.5 && min <= p50 && p50 <= max, JSON.stringify(e.latencyMs));
        assert.ok(e.ttfbMs.p50 <= p50 + 0.05, `ttfb p50 ${e.ttfbMs.p50} > latency p50 ${p50}`);
        // With no wait time, one user's requests take the whole run: rps ≈ 1000 / latency.
        assert.ok(e.rps >= 30 && e.rps <= 52, `rps ${e.rps}`);
      } finally {
        await server.close();
      }
    });
  });

  describe(`cookies [${engine}]`, () => {
    // With sharedConnections the users' requests take turns on one connection: the jar is the
    // user's, never the connection's or the shared dispatcher's.
    for (const shared of [false, true]) {
      it(`each user keeps its own cookie jar${shared ? ", on connections its class shares" : ""}`, async () => {
        const issued = new Map<string, string>();
        const problems: string[] = [];
        let anonymousWithCookie = 0;
        const server = await startServer((req: IncomingMessage, res: ServerResponse) => {
          const url = new URL(req.url ?? "/", "http://x");
          const user = String(req.headers["x-user"] ?? "");
          const sid = /(?:^|;\s*)sid=([^;]+)/.exec(req.headers.cookie ?? "")?.[1];
          if (url.pathname === "/login") {
            const token = randomUUID();
            issued.set(user, token);
            res.setHeader("set-cookie", `sid=${token}; Path=/; HttpOnly`);
            res.end("welcome");
          } else if (url.pathname === "/whoami") {
            if (user === "anonymous") {
              if (sid) anonymousWithCookie++;
              res.statusCode = sid ? 200 : 401;
              res.end(sid ? "someone" : "who are you?");
            } else if (!sid) {
              problems.push(`user ${user}: no cookie`);
              res.statusCode = 401;
              res.end("who are you?");
            } else if (sid !== issued.get(user)) {
              problems.push(`user ${user}: cookie of another user`);
              res.statusCode = 403;
              res.end("not yours");
            } else {
              res.end(user);
            }
          } else {
            res.statusCode = 404;
            res.end();
          }
        });
        try {
          const r = await runLoad(
            `
import { HttpUser, constant, task } from "cicada-load";

export class Member extends HttpUser {
  static waitTime = constant(0.05);${shared ? "\n  static sharedConnections = 1;" : ""}
  override async onStart() {
    this.client.headers["x-user"] = String(this.userId);
    await this.client.post("/login");
  }
  @task me() {
    return this.client.get("/whoami", {
      catchResponse: (res) => {
        if (res.status === 200 && res.text() !== String(this.userId)) res.failure("wrong user: " + res.text());
      },
    });
  }
}

// Never logs in: it must not see the others' cookies.
export class Anonymous extends HttpUser {
  static fixedCount = 1;
  static waitTime = constant(0.05);${shared ? "\n  static sharedConnections = 1;" : ""}
  override onStart() { this.client.headers["x-user"] = "anonymous"; }
  @task me() {
    return this.client.get("/whoami", {
      name: "/whoami (anonymous)",
      catchResponse: (res) => (res.status === 401 ? res.success() : res.failure("saw a cookie")),
    });
  }
}
`,
            ["-H", server.url, "--http-engine", engine, "-u", "4", "-r", "100", "-t", "1.2s"],
          );
          assert.equal(r.code, 0, describeRun(r));
          assert.equal(issued.size, 3, `logins: ${[...issued.keys()]}`);
          assert.equal(new Set(issued.values()).size, 3);
          assert.deepEqual(problems, []);
          assert.equal(anonymousWithCookie, 0);
          const me = endpoint(r.result, "/whoami")!;
          assert.ok(me.requests >= 3 * 5, `only ${me.requests} /whoami requests`);
          assert.equal(me.failures, 0);
          assert.ok(endpoint(r.result, "/whoami (anonymous)")!.requests >= 5);
          assert.equal(r.result.totals.failures, 0);
        } finally {
          await server.close();
        }
      });
    }
  });

  describe(`redirects, catchResponse and request names [${engine}]`, () => {
    it("follows redirects under the original name, lets catchResponse decide, groups by name", async () => {
      const server = await startServer((req, res) => {
        const path = (req.url ?? "").split("?")[0]!;
        if (path === "/old") {
          res.writeHead(302, { location: "/new" });
          res.end();
        } else if (path === "/chain") {
          res.writeHead(307, { location: "/old" });
          res.end();
        } else if (path === "/new") {
          setTimeout(() => res.end("new place"), 30);
        } else if (path === "/missing") {
          res.statusCode = 404;
          res.end("nothing here");
        } else if (path === "/ok") {
          res.end("plain body");
        } else if (/^\/jobs\/\d+$/.test(path)) {
          res.end(path);
        } else {
          res.statusCode = 500;
          res.end();
        }
      });
      try {
        const r = await runLoad(
          `
import { HttpUser, task } from "cicada-load";
export class Client extends HttpUser {
  @task async flow() {
    const moved = await this.client.get("/old");
    if (moved.status !== 200 || !moved.url.endsWith("/new") || moved.text() !== "new place") {
      throw new Error("redirect not followed: " + moved.status + " " + moved.url);
    }
    await this.client.get("/chain");
    await this.client.get("/missing", { catchResponse: (res) => { if (res.status === 404) res.success(); } });
    await this.client.get("/ok", {
      catchResponse: (res) => { if (!res.text().includes("foo")) res.failure("body lacks foo"); },
    });
    for (const id of [1, 2]) await this.client.get("/jobs/" + id, { name: "/jobs/[id]" });
  }
}
`,
          ["-H", server.url, "--http-engine", engine, "-u", "1", "-i", "5"],
        );
        assert.equal(r.code, 1, `failures must give exit code 1\n${describeRun(r)}`);
        assert.deepEqual(r.result.exceptions, []);
        const names = r.result.endpoints.map((e) => e.name).sort();
        assert.deepEqual(names, ["/chain", "/jobs/[id]", "/missing", "/ok", "/old"]);

        // Redirects: one entry under the name that was requested, timed to the final body.
        assert.equal(count(server, "GET /old"), 10);
        assert.equal(count(server, "GET /chain"), 5);
        assert.equal(count(server, "GET /new"), 10);
        const old = endpoint(r.result, "/old")!;
        assert.equal(old.requests, 5);
        assert.equal(old.failures, 0);
        assert.ok(old.latencyMs.min >= 28, `redirect latency ${old.latencyMs.min} ms excludes the final hop`);
        assert.equal(endpoint(r.result, "/chain")!.requests, 5);
        assert.equal(endpoint(r.result, "/chain")!.failures, 0);

        // catchResponse: a 404 made a success, a 200 made a failure with the given reason.
        const missing = endpoint(r.result, "/missing")!;
        assert.equal(missing.requests, 5);
        assert.equal(missing.failures, 0);
        const okEp = endpoint(r.result, "/ok")!;
        assert.equal(okEp.requests, 5);
        assert.equal(okEp.failures, 5);
        assert.deepEqual(r.result.failures, [
          { method: "GET", name: "/ok", error: "body lacks foo", occurrences: 5 },
        ]);
        assert.equal(r.result.totals.failures, 5);

        // name: /jobs/1 and /jobs/2 are one entry.
        assert.equal(count(server, "GET /jobs/1"), 5);
        assert.equal(count(server, "GET /jobs/2"), 5);
        assert.equal(endpoint(r.result, "/jobs/[id]")!.requests, 10);
      } finally {
        await server.close();
      }
    });
  });

  describe(`connections [${engine}]`, () => {
    // One keep-alive connection per user on both engines, and `sharedConnections` caps a class's
    // users at N per origin and worker on both: the fast engine's shared pools, undici's shared
    // dispatcher (README, "Engines, connections and pools").
    it("each user keeps one connection; sharedConnections caps a class's", async () => {
      const own = await startServer((_req, res) => res.end("own"));
      const shared = await startServer((_req, res) => res.end("shared"));
      const connections = { own: 0, shared: 0 };
      own.server.on("connection", () => connections.own++);
      shared.server.on("connection", () => connections.shared++);
      try {
        const r = await runLoad(
          `
import { HttpUser, constant, task } from "cicada-load";
export class Own extends HttpUser {
  static fixedCount = 4;
  static waitTime = constant(0.01);
  @task t() { return this.client.get("/own"); }
}
export class Pooled extends HttpUser {
  static fixedCount = 4;
  static sharedConnections = 2;
  static waitTime = constant(0.01);
  @task t() { return this.client.get(${JSON.stringify(`${shared.url}/shared`)}); }
}
`,
          ["-H", own.url, "--http-engine", engine, "--processes", "1", "-u", "8", "-r", "100", "-i", "160"],
        );
        assert.equal(r.code, 0, describeRun(r));
        assert.equal(r.result.totals.requests, 160);
        assert.equal(own.total() + shared.total(), 160);
        assert.ok(own.total() >= 20 && shared.total() >= 20, `own ${own.total()}, shared ${shared.total()}`);
        // The start-up probe checks the -H host: one connection more there.
        assert.equal(connections.own, 4 + 1, `connections to the own-connection class's host`);
        assert.ok(connections.shared >= 1 && connections.shared <= 2, `shared: ${connections.shared}`);
        assert.deepEqual(
          r.stderr.split("\n").filter((l) => l.startsWith("warning:")),
          [],
        );
      } finally {
        await own.close();
        await shared.close();
      }
    });
  });

  describe(`shared connections per class [${engine}]`, () => {
    it("two classes with the same sharedConnections each have their own N", async () => {
      // Each request is held until 4 are in flight at once, which 2 connections could not carry:
      // the run gets through only if each class has its 2.
      let waiting: Array<() => void> = [];
      const server = await startServer((_req, res) => {
        waiting.push(() => res.end("ok"));
        if (waiting.length >= 4) {
          const go = waiting;
          waiting = [];
          for (const f of go) f();
        }
      });
      const ports = { a: new Set<number>(), b: new Set<number>() };
      server.server.on("request", (req) => {
        const which = (req.url ?? "").startsWith("/a") ? ports.a : ports.b;
        which.add(req.socket.remotePort!);
      });
      try {
        const r = await runLoad(
          `
import { HttpUser, task } from "cicada-load";
export class A extends HttpUser {
  static fixedCount = 4;
  static sharedConnections = 2;
  @task t() { return this.client.get("/a"); }
}
export class B extends HttpUser {
  static fixedCount = 4;
  static sharedConnections = 2;
  @task t() { return this.client.get("/b"); }
}
`,
          [
            "-H",
            server.url,
            "--http-engine",
            engine,
            "--processes",
            "1",
            "-u",
            "8",
            "-r",
            "100",
            "-i",
            "40",
            "-t",
            "20s",
          ],
        );
        assert.equal(r.code, 0, describeRun(r));
        assert.equal(r.result.totals.requests, 40);
        assert.equal(server.total(), 40);
        assert.equal(ports.a.size, 2, `class A's connections: ${[...ports.a]}`);
        assert.equal(ports.b.size, 2, `class B's connections: ${[...ports.b]}`);
        assert.deepEqual(
          [...ports.a].filter((p) => ports.b.has(p)),
          [],
          "no connection carried both classes' requests",
        );
      } finally {
        await server.close();
      }
    });
  });

  describe(`exact counts [${engine}]`, () => {
    // What the rewrite of a hot path could lose or double: every request the server answered is in
    // the totals, no more and no less, in one thread and merged from two.
    const loadfile = `
import { HttpUser, task } from "cicada-load";
export class Hammer extends HttpUser {
  @task(3) a() { return this.client.get("/a"); }
  @task(1) b() { return this.client.post("/b", { body: "x" }); }
}
`;
    const check = (r: LoadRun, server: TestServer, processes: string) => {
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.result.config.processes, Number(processes));
      const t = r.result.totals;
      assert.equal(t.failures, 0, JSON.stringify(r.result.failures));
      assert.equal(t.cancelled ?? 0, 0);
      assert.equal(t.requests, server.total(), JSON.stringify({ ...t, server: server.total() }));
      assert.equal(endpoint(r.result, "/a")!.requests, count(server, "GET /a"));
      assert.equal(endpoint(r.result, "/b", "POST")!.requests, count(server, "POST /b"));
      // Every iteration made exactly one request.
      assert.equal(t.iterations, t.requests);
    };

    for (const processes of ["1", "2"]) {
      it(`--processes ${processes} -i 1500: the server counted exactly 1500, and so did the run`, async () => {
        const server = await startServer((_req, res) => res.end("ok"));
        try {
          const r = await runLoad(loadfile, [
            "-H",
            server.url,
            "--http-engine",
            engine,
            "--processes",
            processes,
            "-u",
            "8",
            "-r",
            "1000",
            "-i",
            "1500",
          ]);
          check(r, server, processes);
          assert.equal(r.result.totals.requests, 1500);
          assert.equal(r.result.stopReason, "iterations");
        } finally {
          await server.close();
        }
      });

      it(`--processes ${processes} -t 1s: the run counted exactly what the server answered`, async () => {
        const server = await startServer((_req, res) => res.end("ok"));
        try {
          // -s 5: requests in flight at the stop finish (the server answers at once), so none is
          // cancelled and the two counts must agree exactly.
          const r = await runLoad(loadfile, [
            "-H",
            server.url,
            "--http-engine",
            engine,
            "--processes",
            processes,
            "-u",
            "8",
            "-r",
            "1000",
            "-t",
            "1s",
            "-s",
            "5",
          ]);
          check(r, server, processes);
          assert.ok(r.result.totals.requests >= 200, `only ${r.result.totals.requests} requests`);
          assert.equal(r.result.stopReason, "run-time");
        } finally {
          await server.close();
        }
      });
    }
  });
}

// A plain User makes no HTTP request: the engine does not matter, so this runs once.
describe("custom samples from a plain User", () => {
  it("measure() and record() appear in the endpoints with their type", async () => {
    const r = await runLoad(
      `
import { User, task } from "cicada-load";
export class Db extends User {
  @task async query() {
    await this.measure("DB", "query", () => new Promise((resolve) => setTimeout(resolve, 15)));
    this.record({ type: "gRPC", method: "unary", name: "Greeter/Say", latencyMs: 7.5, bytes: 10 });
    try {
      await this.measure("DB", "broken", async () => {
        throw new Error("boom");
      });
    } catch {}
  }
}
`,
      ["-u", "1", "-i", "10"],
    );
    assert.equal(r.code, 1, `a failed sample gives exit code 1\n${describeRun(r)}`);
    assert.deepEqual(r.result.exceptions, []);
    const find = (type: string, name: string) =>
      r.result.endpoints.find((e) => e.type === type && e.name === name);

    const query = find("DB", "query");
    assert.ok(query, `no DB query in ${JSON.stringify(r.result.endpoints.map((e) => [e.type, e.name]))}`);
    assert.equal(query.method, "");
    assert.equal(query.requests, 10);
    assert.equal(query.failures, 0);
    assert.ok(query.latencyMs.min >= 13 && query.latencyMs.p50 < 60, JSON.stringify(query.latencyMs));

    const say = find("gRPC", "Greeter/Say");
    assert.ok(say);
    assert.equal(say.method, "unary");
    assert.equal(say.requests, 10);
    assert.equal(say.bytesReceived, 100);
    assert.equal(say.latencyMs.p50, 7.5);
    assert.equal(say.latencyMs.max, 7.5);

    const broken = find("DB", "broken");
    assert.ok(broken);
    assert.equal(broken.requests, 10);
    assert.equal(broken.failures, 10);
    assert.deepEqual(r.result.failures, [{ method: "", name: "broken", error: "boom", occurrences: 10 }]);
    assert.equal(r.result.totals.requests, 30);
    assert.equal(r.result.totals.iterations, 10);
  });
});
