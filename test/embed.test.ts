// The programmatic API, `run()`, as a program uses it: in-process against real loopback servers,
// with its typed errors, its abort, and nothing left running once it has resolved.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  CicadaError,
  type HttpUser,
  LoadShape,
  LoadTestFailed,
  run,
  type ShapeTick,
  TargetUnreachable,
  UsageError,
} from "../src/index.js";
import { assertValidResult, count, startServer, type TestServer, tempProject } from "./helpers.js";

const INDEX = new URL("../src/index.js", import.meta.url).href;

const LOADFILE = `import { HttpUser, task } from "cicada-load";
export class Pinger extends HttpUser {
  @task
  async ping(): Promise<void> {
    await this.client.get("/ping");
  }
}
`;

/** Processes whose parent is this one (Linux): esbuild's service would be one. */
function childProcesses(): string[] {
  const out: string[] = [];
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[1]) === process.pid)
        out.push(stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** Waits until the server has seen no new request for a while (stragglers of a stopped run). */
async function settled(server: TestServer): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20 && server.total() !== last; i++) {
    last = server.total();
    await delay(100);
  }
  return server.total();
}

const health = (u: HttpUser) => u.client.get("/health");

describe("run(): a load test in-process", () => {
  let server: TestServer;
  let project: ReturnType<typeof tempProject>;
  let served = 0;

  before(async () => {
    server = await startServer((req, res) => {
      served++;
      if (req.url === "/flaky" && served % 4 === 0) res.statusCode = 500;
      if (req.url === "/slow") setTimeout(() => res.end("slow"), 30);
      else res.end("ok");
    });
    project = tempProject({ "loadtest.ts": LOADFILE });
  });

  after(async () => {
    await server.close();
    project.cleanup();
  });

  it("runs task functions and resolves to the JSON result with helpers; counts match the server's", async () => {
    const before = { health: count(server, "GET /health"), flaky: count(server, "GET /flaky") };
    const r = await run({
      host: server.url,
      tasks: { health, flaky: (u) => u.client.get("/flaky") },
      users: 4,
      iterations: 200,
      json: join(project.dir, "r.json"),
      html: join(project.dir, "r.html"),
      junit: join(project.dir, "r.xml"),
      csv: join(project.dir, "r"),
    });
    // The plain JSON result, as `cicada run --json` writes it: the helpers are not its fields.
    const json = JSON.parse(JSON.stringify(r));
    assertValidResult(json);
    assert.deepEqual(json, JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")));
    assert.deepEqual(Object.keys(json).sort(), Object.keys(r).sort());
    assert.ok(!("passed" in json) && !("endpoint" in json));
    assert.match(readFileSync(join(project.dir, "r.html"), "utf8"), /<html/i);
    assert.match(readFileSync(join(project.dir, "r.xml"), "utf8"), /<testsuites/);
    assert.match(readFileSync(join(project.dir, "r_stats.csv"), "utf8"), /GET,\/flaky,/);
    const h = r.endpoint("GET /health");
    const f = r.endpoint("/flaky");
    assert.equal(h.requests, count(server, "GET /health") - before.health);
    assert.equal(f.requests, count(server, "GET /flaky") - before.flaky);
    assert.equal(h.requests + f.requests, 200);
    assert.equal(r.total.requests, 200);
    assert.equal(h.failures, 0);
    assert.ok(f.failures > 0, "every fourth request of the server fails");
    assert.equal(f.failRatio, f.failures / f.requests);
    assert.equal(r.total.successRatio, (200 - f.failures) / 200);
    assert.equal(f.statusCodes["500"], f.failures);
    // Percentiles from the full histogram, within the exact bounds.
    assert.ok(h.min <= h.p(50) && h.p(50) <= h.p(95) && h.p(95) <= h.max, JSON.stringify(h.latencyMs));
    assert.equal(h.p(100), h.max);
    assert.equal(h.median, h.latencyMs.p50);
    assert.throws(() => h.p(101), UsageError);
    assert.throws(
      () => r.endpoint("GET /nope"),
      /no endpoint "GET \/nope" in the result; it has: GET \/flaky, GET \/health/,
    );
    // Failed requests do not reject: the result says so, and assertPassed explains.
    assert.equal(r.exitCode, 1);
    assert.equal(r.passed, false);
    assert.throws(
      () => r.assertPassed(),
      (e: unknown) =>
        e instanceof LoadTestFailed &&
        e.exitCode === 1 &&
        e.message.includes(`${f.failures} of 200 requests failed`) &&
        e.message.includes("GET /flaky: HTTP 500"),
    );
  });

  it("a failed threshold fails assertPassed with the metric, the limit and the measured value", async () => {
    const r = await run({
      host: server.url,
      tasks: { slow: (u) => u.client.get("/slow") },
      users: 2,
      iterations: 10,
      thresholds: ["GET /slow: p50<1", "error_rate<1%"],
    });
    assert.equal(r.exitCode, 3);
    const t = r.thresholds!.find((x) => x.expr === "GET /slow: p50<1")!;
    assert.equal(t.passed, false);
    assert.ok(t.value! >= 25, `the server waits 30 ms, measured ${t.value}`);
    let message = "";
    try {
      r.assertPassed();
    } catch (e) {
      assert.ok(e instanceof LoadTestFailed && e instanceof CicadaError);
      assert.equal(e.code, "ERR_CICADA_FAILED");
      message = e.message;
    }
    assert.match(
      message,
      new RegExp(
        `threshold "GET /slow: p50<1" failed: p50 of GET /slow measured ${t.value!.toFixed(2)} ms, limit < 1 ms`,
      ),
    );
    // The threshold that held is not blamed.
    assert.doesNotMatch(message, /error_rate/);
  });

  it("an AbortSignal ends a 60 s run at once with a partial result whose counts are the server's", async () => {
    const slow = await startServer((_req, res) => setTimeout(() => res.end("ok"), 50));
    try {
      const ac = new AbortController();
      const t0 = Date.now();
      let abortedAt = 0;
      setTimeout(() => {
        abortedAt = Date.now();
        ac.abort();
      }, 1000);
      const r = await run({
        host: slow.url,
        tasks: { health },
        users: 10,
        duration: "60s",
        signal: ac.signal,
      });
      const after = Date.now() - abortedAt;
      assert.ok(
        abortedAt > 0 && after < 1000,
        `resolved ${after} ms after the abort (${Date.now() - t0} ms in all)`,
      );
      assert.equal(r.exitCode, 130);
      assert.equal(r.stopReason, "signal");
      assert.equal(r.passed, false);
      assert.ok(r.totals.requests > 20, `requests: ${r.totals.requests}`);
      // Every request the server saw is in the result: completed, or cut off in flight.
      const seen = await settled(slow);
      assert.equal(seen, r.totals.requests + r.totals.cancelled, JSON.stringify(r.totals));
      assertValidResult(JSON.parse(JSON.stringify(r)));
    } finally {
      await slow.close();
    }
  });

  it("a signal aborted before the start resolves at once with an empty result", async () => {
    const t0 = Date.now();
    const r = await run({
      host: server.url,
      tasks: { health },
      users: 3,
      duration: "60s",
      signal: AbortSignal.abort(),
    });
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    assert.equal(r.exitCode, 130);
    assert.equal(r.totals.requests, 0);
  });

  it("throws typed errors for what cannot start, each naming what the caller wrote", async () => {
    const cases: Array<[() => Promise<unknown>, new (...a: any[]) => CicadaError, RegExp]> = [
      [() => run({} as never), UsageError, /run\(\): nothing to run: give loadfile, classes or tasks/],
      [
        () => run({ host: server.url, tasks: { health }, user: 3 } as never),
        UsageError,
        /run\(\): unknown option "user" \(did you mean "users"\?\)/,
      ],
      [
        () => run({ host: server.url, tasks: { health }, users: 0 }),
        UsageError,
        /run\(\): users: expected an integer ≥ 1, got 0/,
      ],
      [
        () => run({ host: server.url, tasks: { health }, httpEngine: "h2" as never }),
        UsageError,
        /run\(\): httpEngine: expected auto, fast or undici, got "h2"/,
      ],
      [
        () => run({ host: server.url, tasks: { health }, duration: "soon" }),
        UsageError,
        /duration: expected a duration/,
      ],
      [() => run({ tasks: { health }, duration: 1 }), UsageError, /no host for Tasks: pass host/],
      [
        () => run({ host: server.url, tasks: { health }, users: 2 }),
        UsageError,
        /run\(\{ tasks \}\): this run would never end: give duration, iterations/,
      ],
      [
        () => run({ host: server.url, tasks: { health }, processes: 2, duration: 1 }),
        UsageError,
        /processes: 2 runs users in worker threads.*Pass loadfile/,
      ],
      [
        () => run({ loadfile: join(project.dir, "missing.ts") }),
        UsageError,
        /loadfile not found: .*missing\.ts/,
      ],
      [
        () => run({ host: "http://127.0.0.1:1", tasks: { health }, duration: 1 }),
        TargetUnreachable,
        /cannot reach http:\/\/127\.0\.0\.1:1/,
      ],
      [
        () => run({ classes: [class NotAUser {}] as never, host: server.url }),
        UsageError,
        /classes\[0\]: not a user class/,
      ],
    ];
    for (const [call, type, message] of cases) {
      await assert.rejects(call(), (e: unknown) => {
        assert.ok(e instanceof type, `${(e as Error)?.name}: ${(e as Error)?.message}`);
        assert.match((e as Error).message, message);
        return true;
      });
    }
    const unreachable = await run({ host: "http://127.0.0.1:1", tasks: { health }, duration: 1 }).catch(
      (e: unknown) => e,
    );
    assert.ok(unreachable instanceof TargetUnreachable);
    assert.equal(unreachable.exitCode, 4);
    assert.equal(unreachable.code, "ERR_CICADA_UNREACHABLE");
  });

  it("runs user classes and a LoadShape given as an instance, and hands the summary to log", async () => {
    const { HttpUser } = await import("../src/index.js");
    class Checker extends HttpUser {
      static override host = server.url;
      static override tasks = [(u: Checker) => u.client.get("/health")];
    }
    class TwoUsersForASecond extends LoadShape {
      tick(t: number): ShapeTick | null {
        return t < 1 ? { users: 2 } : null;
      }
    }
    const logged: string[] = [];
    const r = await run({ classes: [Checker], shape: new TwoUsersForASecond(), log: (t) => logged.push(t) });
    assert.equal(r.stopReason, "shape");
    assert.equal(r.config.shape, "TwoUsersForASecond");
    assert.deepEqual(r.config.userClassesRun, ["Checker"]);
    assert.equal(r.users.peak, 2);
    assert.ok(r.totals.requests > 0);
    assert.match(logged.join("\n"), /Aggregated/);
  });

  it("runs a loadfile in worker threads, twice: esbuild is stopped after each run and starts again", async () => {
    const loadfile = join(project.dir, "loadtest.ts");
    for (let i = 0; i < 2; i++) {
      const before = count(server, "GET /ping");
      const r = await run({ loadfile, host: server.url, users: 4, processes: 2, iterations: 100 });
      assert.equal(r.exitCode, 0, JSON.stringify(r.failures));
      assert.equal(r.config.processes, 2);
      assert.equal(r.totals.requests, 100);
      assert.equal(count(server, "GET /ping") - before, 100);
      // Nothing of the run is left: no worker thread, no esbuild service process.
      assert.ok(
        !process.getActiveResourcesInfo().includes("MessagePort"),
        process.getActiveResourcesInfo().join(),
      );
      if (process.platform === "linux") {
        // Killed by then; the kernel may take a moment to take it off the process table.
        for (let t = 0; t < 40 && childProcesses().length > 0; t++) await delay(50);
        assert.deepEqual(childProcesses(), []);
      }
    }
  });
});

describe("run(): nothing left open, nothing printed", () => {
  it("a script that awaits run() and benchmark() exits by itself, silent unless asked", async () => {
    const project = tempProject({
      "loadtest.ts": LOADFILE,
      "script.mjs": `import { createServer } from "node:http";
import { benchmark, run } from ${JSON.stringify(INDEX)};
const server = createServer((req, res) => res.end("ok"));
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const host = "http://127.0.0.1:" + server.address().port;
const a = await run({ host, tasks: { ping: (u) => u.client.get("/ping") }, users: 5, duration: 1 });
const b = await run({ loadfile: "loadtest.ts", host, users: 4, processes: 2, iterations: 200 });
const c = await benchmark("ping", async () => { await fetch(host + "/ping").then((r) => r.text()); }, { iterations: 20, log: false });
server.closeAllConnections();
server.close();
process.stdout.write("done " + [a.exitCode, b.exitCode, b.totals.requests, c.rounds].join(" ") + "\\n");
`,
    });
    try {
      const child = spawn(process.execPath, ["script.mjs"], {
        cwd: project.dir,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      let doneAt = 0;
      child.stdout.on("data", (d) => {
        stdout += d;
        if (!doneAt && stdout.includes("done")) doneAt = Date.now();
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
      clearTimeout(killer);
      const exitedAfter = Date.now() - doneAt;
      assert.equal(code, 0, `stdout: ${stdout}\nstderr: ${stderr}`);
      assert.equal(stdout, "done 0 0 200 20\n");
      assert.equal(stderr, "");
      assert.ok(exitedAfter < 3000, `exited ${exitedAfter} ms after its last line`);
    } finally {
      project.cleanup();
    }
  });
});

// The loadfile bundler still gives loadfiles only the loadfile API, not run() and the rest.
describe("the loadfile's cicada-load", () => {
  it("has no run(): a loadfile that imports it gets a clear error", async () => {
    const project = tempProject({
      "bad.ts": `import { run } from "cicada-load";\nexport const x = run;\n`,
    });
    try {
      await assert.rejects(run({ loadfile: join(project.dir, "bad.ts") }), (e: unknown) => {
        assert.ok(e instanceof UsageError);
        assert.match(
          e.message,
          /bad\.ts:1:10: error: No matching export in "cicada-load" for import "run" \(run\(\) and benchmark\(\) are for programs/,
        );
        return true;
      });
    } finally {
      project.cleanup();
    }
  });
});
