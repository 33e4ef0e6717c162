import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  assertValidResult,
  type CliResult,
  count,
  describeRun,
  endpoint,
  readJson,
  runCli,
  runLoad,
  startCli,
  startServer,
  type TestServer,
  tempProject,
} from "./helpers.js";

/**
 * `--processes N`: users run in N worker threads. Every loadfile here reports, from onStart,
 * its userId and the worker_threads `threadId` it runs on (0 is the main thread), so the server
 * sees which thread each user really lived in.
 */

interface Start {
  path: string;
  user: string;
  thread: string;
}

/** A server that answers "ok" and records the x-user / x-thread headers of every request that has them. */
async function recordingServer(): Promise<TestServer & { starts: Start[] }> {
  const starts: Start[] = [];
  const srv = await startServer((req: IncomingMessage, res) => {
    const user = req.headers["x-user"];
    const thread = req.headers["x-thread"];
    if (typeof user === "string" && typeof thread === "string") {
      starts.push({ path: (req.url ?? "").split("?")[0]!, user, thread });
    }
    res.end("ok");
  });
  return Object.assign(srv, { starts });
}

const HEADERS = `{ headers: { "x-user": String(this.userId), "x-thread": String(threadId) } }`;

const TWO_ENDPOINTS = `import { HttpUser, constant, task } from "cicada-load";
import { threadId } from "node:worker_threads";
export class Web extends HttpUser {
  static waitTime = constant(0.005);
  override async onStart() {
    await this.client.get("/start", ${HEADERS});
  }
  @task(3) async a() { await this.client.get("/a"); }
  @task(1) async b() { await this.client.get("/b"); }
}
`;

/**
 * Requests written just before the generator exited may still sit in the server's socket
 * buffer: give the server a moment (up to 2 s) to read up to `expected` requests.
 */
async function settle(srv: TestServer, expected: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while (srv.total() < expected && Date.now() < deadline) await delay(20);
}

function show(r: CliResult): string {
  return describeRun(r);
}

/** Counts per distinct value. */
function tally(values: string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return m;
}

describe("--processes 2: users in two worker threads", () => {
  it("merges both threads exactly: server count = requests + cancelled, per endpoint and per second", async () => {
    const srv = await recordingServer();
    try {
      const r = await runLoad(TWO_ENDPOINTS, [
        "-H",
        srv.url,
        "-u",
        "6",
        "-r",
        "100",
        "-t",
        "2s",
        "--processes",
        "2",
      ]);
      assert.equal(r.code, 0, show(r));
      const res = r.result;
      assert.equal(res.config.processes, 2);
      await settle(srv, res.totals.requests + res.totals.cancelled);

      // The users really ran in two threads, neither of them the main one, three each.
      const threads = tally(srv.starts.map((s) => s.thread));
      assert.equal(threads.size, 2, `threads seen: ${JSON.stringify([...threads])}`);
      assert.ok(!threads.has("0"), "a user ran in the main thread");
      assert.deepEqual([...threads.values()].sort(), [3, 3], "users were not split evenly");
      assert.equal(res.users.peak, 6);

      // Exact merge: nothing lost or counted twice between the threads and the coordinator.
      assert.ok(res.totals.requests > 50, `only ${res.totals.requests} requests`);
      assert.equal(srv.total(), res.totals.requests + res.totals.cancelled);
      let sum = 0;
      for (const path of ["/start", "/a", "/b"]) {
        const e = endpoint(res, path);
        assert.ok(e, `no endpoint row for ${path}`);
        assert.equal(e.requests + (e.cancelled ?? 0), count(srv, `GET ${path}`), `endpoint ${path}`);
        sum += e.requests;
      }
      assert.equal(sum, res.totals.requests, "endpoint rows do not add up to the total");
      assert.equal(count(srv, "GET /start"), 6);
      const perSecond = res.series.reduce((s, row) => s + row.requests, 0);
      assert.equal(perSecond, res.totals.requests, "the per-second series does not add up to the total");
      const maxOfEndpoints = Math.max(...res.endpoints.map((e) => e.latencyMs.max));
      assert.equal(res.totals.latencyMs.max, maxOfEndpoints);
      assert.deepEqual(res.warnings, []);
    } finally {
      await srv.close();
    }
  });

  it("gives every user an id that is unique across the threads", async () => {
    const srv = await recordingServer();
    try {
      const r = await runLoad(TWO_ENDPOINTS, [
        "-H",
        srv.url,
        "-u",
        "8",
        "-r",
        "100",
        "-t",
        "1s",
        "--processes",
        "2",
      ]);
      assert.equal(r.code, 0, show(r));
      const starts = srv.starts.filter((s) => s.path === "/start");
      assert.equal(starts.length, 8, show(r));
      const ids = new Set(starts.map((s) => s.user));
      assert.equal(
        ids.size,
        8,
        `user ids repeat across threads: ${starts.map((s) => `${s.thread}:${s.user}`)}`,
      );
      for (const id of ids) assert.match(id, /^\d+$/);
      assert.equal(new Set(starts.map((s) => s.thread)).size, 2);
    } finally {
      await srv.close();
    }
  });

  it("respects fixedCount across threads (3 fixed users over 2 workers = 3 in all)", async () => {
    const loadfile = `import { HttpUser, constant, task } from "cicada-load";
import { threadId } from "node:worker_threads";
export class Fixed extends HttpUser {
  static fixedCount = 3;
  static waitTime = constant(0.05);
  override async onStart() { await this.client.get("/fixed", ${HEADERS}); }
  @task async f() { await this.client.get("/f"); }
}
export class Rest extends HttpUser {
  static waitTime = constant(0.05);
  override async onStart() { await this.client.get("/rest", ${HEADERS}); }
  @task async r() { await this.client.get("/r"); }
}
`;
    const srv = await recordingServer();
    try {
      const r = await runLoad(loadfile, [
        "-H",
        srv.url,
        "-u",
        "5",
        "-r",
        "100",
        "-t",
        "1.5s",
        "--processes",
        "2",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.equal(count(srv, "GET /fixed"), 3, "fixed users at the server");
      assert.equal(count(srv, "GET /rest"), 2, "other users at the server");
      assert.equal(r.result.users.peak, 5);
      const threads = tally(srv.starts.map((s) => s.thread));
      assert.equal(threads.size, 2, "both threads should have users");
      assert.deepEqual([...threads.values()].sort(), [2, 3], "5 users should be split 3 + 2");
      assert.equal(new Set(srv.starts.map((s) => s.user)).size, 5);
    } finally {
      await srv.close();
    }
  });

  it("-i 25 over 2 threads runs exactly 25 iterations", async () => {
    const loadfile = `import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task async it() { await this.client.get("/it"); }
}
`;
    const srv = await startServer((_req, res) => res.end("ok"));
    try {
      const r = await runLoad(loadfile, [
        "-H",
        srv.url,
        "-u",
        "4",
        "-r",
        "100",
        "-i",
        "25",
        "-t",
        "20s",
        "--processes",
        "2",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.result.config.processes, 2);
      assert.equal(r.result.stopReason, "iterations");
      assert.equal(r.result.totals.iterations, 25);
      assert.equal(r.result.totals.requests, 25);
      assert.equal(count(srv, "GET /it"), 25);
      assert.ok(
        r.result.durationSec < 10,
        `took ${r.result.durationSec}s: the run did not end on its iterations`,
      );
    } finally {
      await srv.close();
    }
  });

  it("records exceptions thrown by tasks in one thread", async () => {
    // Worker w1 hands out the odd user ids (index + k × count), so only its users throw.
    const loadfile = `import { HttpUser, constant, task } from "cicada-load";
import { threadId } from "node:worker_threads";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task async work() {
    await this.client.get("/w", ${HEADERS});
    if (this.userId % 2 === 1) throw new Error("boom in thread " + threadId);
  }
}
`;
    const srv = await recordingServer();
    try {
      const r = await runLoad(loadfile, [
        "-H",
        srv.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "1.5s",
        "--processes",
        "2",
      ]);
      assert.equal(r.code, 1, show(r));
      await settle(srv, r.result.totals.requests + r.result.totals.cancelled);
      const threadsOfThrowers = new Set(
        srv.starts.filter((s) => Number(s.user) % 2 === 1).map((s) => s.thread),
      );
      assert.equal(threadsOfThrowers.size, 1, "odd users should all live in one thread");
      const [thread] = [...threadsOfThrowers];
      assert.notEqual(thread, "0");
      assert.equal(r.result.exceptions.length, 1, JSON.stringify(r.result.exceptions));
      const x = r.result.exceptions[0]!;
      assert.equal(x.where, "Web.work");
      assert.equal(x.message, `Error: boom in thread ${thread}`);
      // Every completed request of an odd user threw once; cut-off ones did not get to throw.
      const oddRequests = srv.starts.filter((s) => Number(s.user) % 2 === 1).length;
      assert.ok(
        x.count <= oddRequests && x.count >= oddRequests - 2,
        `${x.count} exceptions, ${oddRequests} requests`,
      );
      assert.ok(r.result.totals.requests > x.count, "the even users' requests are missing");
      assert.match(r.stdout, /Exceptions in user code/);
    } finally {
      await srv.close();
    }
  });

  it("SIGINT with two threads stops them all and still writes the JSON", async () => {
    const srv = await recordingServer();
    const p = tempProject({ "loadtest.ts": TWO_ENDPOINTS });
    const run = startCli(
      [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        srv.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "30s",
        "--processes",
        "2",
        "--json",
        "out.json",
      ],
      { cwd: p.dir },
    );
    try {
      const deadline = Date.now() + 15000;
      while (srv.total() < 40) {
        assert.ok(Date.now() < deadline, "no load reached the server");
        await delay(20);
      }
      run.child.kill("SIGINT");
      const killedAt = Date.now();
      const timer = setTimeout(() => run.child.kill("SIGKILL"), 10000);
      const r = await run.result;
      clearTimeout(timer);
      assert.equal(r.signal, null, `killed instead of stopping\n${show(r)}`);
      assert.equal(r.code, 0, show(r));
      assert.ok(Date.now() - killedAt < 8000, "took too long to stop");
      const out = join(p.dir, "out.json");
      assert.ok(existsSync(out), `no JSON written\n${show(r)}`);
      const res = readJson(out);
      assertValidResult(res);
      assert.equal(res.stopReason, "signal");
      assert.equal(res.config.processes, 2);
      assert.ok(res.durationSec < 20);
      await settle(srv, res.totals.requests + res.totals.cancelled);
      assert.equal(srv.total(), res.totals.requests + res.totals.cancelled);
      assert.equal(new Set(srv.starts.map((s) => s.thread)).size, 2);
      assert.match(r.stdout + r.stderr, /SIGINT: stopping/);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
      await srv.close();
      p.cleanup();
    }
  });
});

describe("a worker thread that dies", () => {
  it("ends the run normally with the other thread, a notice and a written JSON", async () => {
    // process.exit() in a worker thread ends that thread only. User 1 lives in worker w1.
    const loadfile = `import { HttpUser, constant, task } from "cicada-load";
import { threadId } from "node:worker_threads";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  override async onStart() {
    if (this.userId === 1) process.exit(3);
  }
  @task async work() { await this.client.get("/w", ${HEADERS}); }
}
`;
    const srv = await recordingServer();
    try {
      const r = await runLoad(loadfile, [
        "-H",
        srv.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "2s",
        "--processes",
        "2",
      ]);
      assert.equal(r.code, 1, `a lost worker should fail the run like an exception\n${show(r)}`);
      const res = r.result;
      assert.equal(res.stopReason, "run-time", "the surviving thread should run to the end");
      assert.ok(res.durationSec >= 1.8, `durationSec ${res.durationSec}`);
      const lost = res.warnings.filter((w) => w.kind === "worker");
      assert.equal(lost.length, 1, JSON.stringify(res.warnings));
      assert.match(lost[0]!.message, /worker w1 exited unexpectedly with code 3/);
      assert.ok(Number.isFinite(Date.parse(lost[0]!.at)));
      assert.match(r.stderr, /warning: worker w1 exited unexpectedly with code 3/);
      assert.match(r.stdout, /Warnings\n.*worker w1 exited unexpectedly/);
      // The other thread carried on; what it did is all there.
      assert.ok(res.totals.requests > 20, `only ${res.totals.requests} requests`);
      assert.ok(srv.total() >= res.totals.requests + res.totals.cancelled);
      const evenRequests = srv.starts.filter((s) => Number(s.user) % 2 === 0).length;
      assert.ok(evenRequests > 20);
    } finally {
      await srv.close();
    }
  });

  it("ends the run at once when every thread has died", async () => {
    const loadfile = `import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  override async onStart() { process.exit(3); }
  @task async work() { await this.client.get("/w"); }
}
`;
    const srv = await startServer((_req, res) => res.end("ok"));
    try {
      const t0 = Date.now();
      const r = await runLoad(loadfile, [
        "-H",
        srv.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "30s",
        "--processes",
        "2",
      ]);
      assert.ok(Date.now() - t0 < 15000, "the run went on with no worker left");
      assert.equal(r.code, 1, show(r));
      assert.equal(r.result.stopReason, "error");
      assert.equal(r.result.warnings.filter((w) => w.kind === "worker").length, 2);
      assert.equal(r.result.totals.requests, 0);
    } finally {
      await srv.close();
    }
  });
});

describe("choosing the number of workers", () => {
  it("--processes 1 runs users in the main thread, as before", async () => {
    const srv = await recordingServer();
    try {
      const r = await runLoad(TWO_ENDPOINTS, [
        "-H",
        srv.url,
        "-u",
        "3",
        "-r",
        "100",
        "-t",
        "1s",
        "--processes",
        "1",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.result.config.processes, 1);
      await settle(srv, r.result.totals.requests + r.result.totals.cancelled);
      assert.deepEqual(
        [...new Set(srv.starts.map((s) => s.thread))],
        ["0"],
        "users should run in the main thread",
      );
      assert.deepEqual(new Set(srv.starts.map((s) => s.user)), new Set(["0", "1", "2"]));
      assert.equal(srv.total(), r.result.totals.requests + r.result.totals.cancelled);
    } finally {
      await srv.close();
    }
  });

  it("-1 and the default mean one worker per core, never more than users; CICADA_PROCESSES sets it", async () => {
    const srv = await startServer((_req, res) => res.end("ok"));
    const p = tempProject({ "loadtest.ts": TWO_ENDPOINTS });
    try {
      const cores = availableParallelism();
      const cases: Array<{ args: string[]; env?: NodeJS.ProcessEnv; expect: number }> = [
        { args: ["--processes", "-1", "-u", "8"], expect: Math.min(cores, 8) },
        { args: ["-u", "8"], expect: Math.min(cores, 8) },
        { args: ["-u", "1"], expect: 1 },
        { args: ["-u", "3"], env: { CICADA_PROCESSES: "2" }, expect: 2 },
        { args: ["-u", "3", "--processes", "1"], env: { CICADA_PROCESSES: "2" }, expect: 1 },
      ];
      await Promise.all(
        cases.map(async (c, i) => {
          const out = join(p.dir, `out${i}.json`);
          const r = await runCli(
            [
              "run",
              "--headless",
              "loadtest.ts",
              "-H",
              srv.url,
              "-r",
              "100",
              "-t",
              "0.5s",
              "--only-summary",
              "--json",
              out,
              ...c.args,
            ],
            { cwd: p.dir, env: c.env, timeoutMs: 30000 },
          );
          assert.equal(r.code, 0, `${c.args.join(" ")}\n${show(r)}`);
          const res = readJson(out);
          assertValidResult(res);
          assert.equal(res.config.processes, c.expect, `${c.args.join(" ")} ${JSON.stringify(c.env ?? {})}`);
        }),
      );
    } finally {
      await srv.close();
      p.cleanup();
    }
  });

  it("never starts more workers than fixedCount-only classes have users (-i still ends the run)", async () => {
    const loadfile = `import { HttpUser, task } from "cicada-load";
export class Only extends HttpUser {
  static fixedCount = 1;
  @task async a() { await this.client.get("/only"); }
}
`;
    const srv = await startServer((_req, res) => res.end("ok"));
    try {
      const r = await runLoad(loadfile, [
        "-H",
        srv.url,
        "-u",
        "4",
        "-i",
        "10",
        "-t",
        "20s",
        "--processes",
        "2",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.result.config.processes, 1);
      assert.equal(r.result.stopReason, "iterations");
      assert.equal(count(srv, "GET /only"), 10);
    } finally {
      await srv.close();
    }
  });

  it("`processes` in the loadfile's options and in the config file, with the usual precedence", async () => {
    const srv = await startServer((_req, res) => res.end("ok"));
    const withOptions = `${TWO_ENDPOINTS}export const options = { processes: 1 };\n`;
    const p = tempProject({
      "loadtest.ts": withOptions,
      "bad.config.ts": "export default { processes: 0 };\n",
    });
    try {
      const base = [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        srv.url,
        "-u",
        "3",
        "-r",
        "100",
        "-t",
        "0.5s",
        "--only-summary",
      ];
      const fromOptions = await runCli([...base, "--json", "a.json"], { cwd: p.dir });
      assert.equal(fromOptions.code, 0, show(fromOptions));
      assert.equal(readJson(join(p.dir, "a.json")).config.processes, 1, "options.processes");
      const flagWins = await runCli([...base, "--json", "b.json", "--processes", "2"], { cwd: p.dir });
      assert.equal(flagWins.code, 0, show(flagWins));
      assert.equal(readJson(join(p.dir, "b.json")).config.processes, 2, "--processes over options");
      const bad = await runCli([...base, "--config", "bad.config.ts"], { cwd: p.dir });
      assert.equal(bad.code, 2, show(bad));
      assert.match(bad.stderr, /bad\.config\.ts: processes: expected/);
    } finally {
      await srv.close();
      p.cleanup();
    }
  });

  for (const bad of ["0", "abc", "-2", "1.5"]) {
    it(`--processes ${bad} is a usage error (exit 2)`, async () => {
      const p = tempProject({ "loadtest.ts": TWO_ENDPOINTS });
      try {
        const r = await runCli(
          ["run", "--headless", "loadtest.ts", "-H", "http://127.0.0.1:9", "-t", "1s", `--processes=${bad}`],
          {
            cwd: p.dir,
          },
        );
        assert.equal(r.code, 2, show(r));
        assert.match(r.stderr, /--processes: expected/);
        assert.doesNotMatch(r.stderr, /^\s+at /m);
      } finally {
        p.cleanup();
      }
    });
  }

  it("CICADA_PROCESSES=0 is a usage error (exit 2)", async () => {
    const p = tempProject({ "loadtest.ts": TWO_ENDPOINTS });
    try {
      const r = await runCli(["run", "--headless", "loadtest.ts", "-H", "http://127.0.0.1:9", "-t", "1s"], {
        cwd: p.dir,
        env: { CICADA_PROCESSES: "0" },
      });
      assert.equal(r.code, 2, show(r));
      assert.match(r.stderr, /CICADA_PROCESSES: expected/);
    } finally {
      p.cleanup();
    }
  });
});
