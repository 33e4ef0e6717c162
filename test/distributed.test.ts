/** A master and worker processes over TCP on loopback: exact merge, lost workers, bad setups. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import type { CoordinatorMessage, WorkerMessage } from "../src/runner/protocol.js";
import { socketTransport } from "../src/runner/remote.js";
import {
  assertValidResult,
  describeRun,
  rng,
  runCli,
  startCli,
  startMaster,
  startServer,
  tempProject,
} from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task hit() { return this.client.get("/hit", { headers: { "x-user": String(this.userId) } }); }
}
`;

describe("distributed: master and workers", () => {
  it("runs the users on the workers and merges their figures exactly", async () => {
    const users = new Set<string>();
    const server = await startServer((req, res) => {
      users.add(String(req.headers["x-user"]));
      res.end("ok");
    });
    // Workers run from another directory: they need no loadfile, the master ships the bundle.
    const workerDir = tempProject({});
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const { master, port } = await startMaster(project.dir, [
        "--expect-workers",
        "2",
        "-H",
        server.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "3s",
        "--json",
        "r.json",
        "--only-summary",
      ]);
      // --once: they exit after this test instead of waiting for the next.
      const w1 = startCli(["worker", "--once", "--master-port", String(port)], { cwd: workerDir.dir });
      const w2 = startCli(["run", "--worker", "--once", "--master-port", String(port)], {
        cwd: workerDir.dir,
      });
      const timer = setTimeout(() => master.child.kill("SIGKILL"), 30000);
      const r = await master.result;
      clearTimeout(timer);
      assert.equal(r.code, 0, describeRun(r));
      const [r1, r2] = await Promise.all([w1.result, w2.result]);
      assert.equal(r1.code, 0, describeRun(r1));
      assert.equal(r2.code, 0, describeRun(r2));
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      assertValidResult(result);
      assert.equal(result.config.processes, 2);
      assert.equal(result.users.peak, 4);
      assert.equal(result.totals.requests + result.totals.cancelled, server.total(), "exact merge");
      // User ids alternate between the two workers (index + k × 2): both ran users.
      const ids = [...users].map(Number);
      assert.deepEqual(
        ids.sort((a, b) => a - b),
        [0, 1, 2, 3],
      );
      assert.match(r.stderr, /worker 127\.0\.0\.1:\d+ connected \(2\)/);
    } finally {
      project.cleanup();
      workerDir.cleanup();
      await server.close();
    }
  });

  it("runs scenarios with every scenario spread over every worker, merged exactly", async () => {
    // Which scenario and which worker process made each request, as the server saw it.
    const seen = new Map<string, number>();
    const server = await startServer((req, res) => {
      const key = `${req.url}@${req.headers["x-pid"]}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
      res.end("ok");
    });
    const workerDir = tempProject({});
    // Module state on purpose: each scenario runs in its own thread on a worker, so the two
    // classes' counters never mix, as on one machine.
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, task, constant } from "cicada-load";
let made = 0;
const pid = String(process.pid);
export class Browse extends HttpUser {
  static waitTime = constant(0.05);
  @task page() { made++; return this.client.get("/browse", { headers: { "x-pid": pid } }); }
}
export class Buy extends HttpUser {
  static waitTime = constant(0.05);
  @task buy() { made++; return this.client.get("/buy", { headers: { "x-pid": pid } }); }
}
export const options = {
  scenarios: {
    browse: { userClasses: ["Browse"], users: 4, spawnRate: 100, duration: "3s" },
    buy: { userClasses: ["Buy"], users: 2, spawnRate: 100, duration: "2s", startTime: "1s", processes: 1 },
  },
};
`,
    });
    try {
      const { master, port } = await startMaster(project.dir, [
        "--expect-workers",
        "2",
        "-H",
        server.url,
        "--json",
        "r.json",
        "--only-summary",
      ]);
      const w1 = startCli(["worker", "--once", "--master-port", String(port)], { cwd: workerDir.dir });
      const w2 = startCli(["worker", "--once", "--master-port", String(port)], { cwd: workerDir.dir });
      const timer = setTimeout(() => master.child.kill("SIGKILL"), 40000);
      const r = await master.result;
      clearTimeout(timer);
      assert.equal(r.code, 0, describeRun(r));
      const [r1, r2] = await Promise.all([w1.result, w2.result]);
      assert.equal(r1.code, 0, describeRun(r1));
      assert.equal(r2.code, 0, describeRun(r2));
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      assertValidResult(result);
      assert.equal(result.totals.requests + result.totals.cancelled, server.total(), "exact merge");
      const served = (path: string) =>
        [...seen].filter(([k]) => k.startsWith(`${path}@`)).reduce((n, [, v]) => n + v, 0);
      const counted = (path: string) =>
        result.endpoints.filter((e) => e.name === path).reduce((n, e) => n + e.requests + e.cancelled, 0);
      assert.equal(counted("/browse"), served("/browse"));
      assert.equal(counted("/buy"), served("/buy"));
      // Both worker processes ran both scenarios (a scenario's own processes applies to local runs).
      const pids = (path: string) => new Set([...seen.keys()].filter((k) => k.startsWith(`${path}@`)));
      assert.equal(pids("/browse").size, 2, JSON.stringify([...seen]));
      assert.equal(pids("/buy").size, 2, JSON.stringify([...seen]));
      const byName = new Map(result.scenarios?.map((s) => [s.name, s]));
      assert.ok(byName.get("buy")!.startOffsetSec! >= 0.9, JSON.stringify(result.scenarios));
    } finally {
      project.cleanup();
      workerDir.cleanup();
      await server.close();
    }
  });

  it("a worker that dies is reported, and the run still ends with its outputs", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const { master, port } = await startMaster(project.dir, [
        "--expect-workers",
        "2",
        "-H",
        server.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "4s",
        "--json",
        "r.json",
        "--only-summary",
      ]);
      const w1 = startCli(["worker", "--once", "--master-port", String(port)]);
      const w2 = startCli(["worker", "--once", "--master-port", String(port)]);
      await master.waitFor(/connected \(2\)/);
      await new Promise((r) => setTimeout(r, 1500));
      w2.child.kill("SIGKILL");
      const timer = setTimeout(() => master.child.kill("SIGKILL"), 30000);
      const r = await master.result;
      clearTimeout(timer);
      await w1.result;
      assert.equal(r.code, 1, `a lost worker makes the run incomplete\n${describeRun(r)}`);
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      assert.ok(
        result.warnings.some((w) => w.kind === "worker"),
        JSON.stringify(result.warnings),
      );
      assert.ok(result.totals.requests > 0);
    } finally {
      project.cleanup();
      await server.close();
    }
  });

  it("a worker that leaves as the test starts is left out: the run goes on and writes its JSON", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const { master, port } = await startMaster(project.dir, [
        "--expect-workers",
        "2",
        "-H",
        server.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "2s",
        "--json",
        "r.json",
        "--only-summary",
      ]);
      const w1 = startCli(["worker", "--once", "--master-port", String(port)]);
      await master.waitFor(/connected \(1\)/);
      const w2 = startCli(["worker", "--once", "--master-port", String(port)]);
      await master.waitFor(/connected \(2\)/);
      w2.child.kill("SIGKILL");
      const timer = setTimeout(() => master.child.kill("SIGKILL"), 30000);
      const r = await master.result;
      clearTimeout(timer);
      await w1.result;
      // Whether it left before or after it was handed its share, the test runs on the other.
      assert.ok(r.code === 0 || r.code === 1, describeRun(r));
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      assertValidResult(result);
      assert.equal(result.totals.requests + result.totals.cancelled, server.total(), "exact merge");
      assert.ok(result.totals.requests > 0);
    } finally {
      project.cleanup();
      await server.close();
    }
  });

  it("clear errors: no master to reach, no workers in time, --master with the web UI", async () => {
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const lonely = await runCli(["worker", "--master-port", "9", "--connect-timeout", "1"]);
      assert.equal(lonely.code, 4, describeRun(lonely));
      assert.match(lonely.stderr, /cannot reach the master at 127\.0\.0\.1:9 within 1s/);

      const waiting = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "--master",
          "--master-bind-host",
          "127.0.0.1",
          "--master-bind-port",
          "0",
          "--expect-workers",
          "2",
          "--expect-workers-max-wait",
          "1s",
          "-H",
          "http://127.0.0.1:9",
          "--no-preflight",
        ],
        { cwd: project.dir },
      );
      assert.equal(waiting.code, 4, describeRun(waiting));
      assert.match(waiting.stderr, /only 0 of 2 worker\(s\) connected within 1s/);
    } finally {
      project.cleanup();
    }
  });
});

describe("the TCP transport's framing", () => {
  it("decodes messages split at any byte and packed several to a chunk", async () => {
    let serverSide!: Socket;
    const server = createServer((s) => (serverSide = s));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as { port: number }).port;
    const client = connect({ host: "127.0.0.1", port });
    await new Promise<void>((r) => client.once("connect", r));
    while (!serverSide) await new Promise((r) => setTimeout(r, 5));
    try {
      const received: WorkerMessage[] = [];
      const t = socketTransport<CoordinatorMessage, WorkerMessage>(serverSide);
      t.onMessage((m) => received.push(m));
      const rand = rng(42);
      const sent: WorkerMessage[] = [];
      let wire = "";
      for (let i = 0; i < 200; i++) {
        // Text with newlines, quotes and non-ASCII: JSON escapes what would break a frame.
        const m: WorkerMessage = {
          type: "error",
          message: `line\n${i} "q" ü ${"x".repeat(Math.floor(rand() * 3000))}`,
          fatal: false,
        };
        sent.push(m);
        wire += `${JSON.stringify(m)}\n`;
      }
      const bytes = Buffer.from(wire);
      for (let at = 0; at < bytes.length; ) {
        const n = 1 + Math.floor(rand() * 4000);
        client.write(bytes.subarray(at, at + n));
        at += n;
      }
      const deadline = Date.now() + 5000;
      while (received.length < sent.length && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(received, sent);

      // Garbage is not a message: the connection is dropped, and the transport says it is lost.
      const lost = new Promise<string>((r) => t.onLost?.(r));
      client.write("this is not json\n");
      assert.match(await lost, /not a Cicada message|closed/);
    } finally {
      client.destroy();
      server.close();
    }
  });
});
