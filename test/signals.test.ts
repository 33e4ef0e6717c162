import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { Ajv } from "ajv";
import {
  type CliResult,
  type RunningCli,
  readJson,
  startCli,
  startServer,
  type TestServer,
  tempProject,
} from "./helpers.js";

const LOADFILE = `import { HttpUser, constant, task } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task()
  async index() {
    await this.client.get("/");
  }
}
`;

const schema = JSON.parse(readFileSync(new URL("../../schema/result.schema.json", import.meta.url), "utf8"));
const ajv = new Ajv({ allErrors: true });
ajv.addFormat(
  "date-time",
  (s: string) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/.test(s) && !Number.isNaN(Date.parse(s)),
);
const validateResult = ajv.compile(schema);

function assertValidResult(json: unknown): void {
  const ok = validateResult(json);
  assert.ok(ok, `result does not match schema/result.schema.json: ${ajv.errorsText(validateResult.errors)}`);
}

function show(r: CliResult): string {
  return `code=${r.code} signal=${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** A server whose `first` promise resolves when the first request arrives. */
async function serverWithFirst(
  handler: (res: ServerResponse) => void,
): Promise<TestServer & { first: Promise<void> }> {
  let arrived!: () => void;
  const first = new Promise<void>((r) => (arrived = r));
  const srv = await startServer((_req, res) => {
    arrived();
    handler(res);
  });
  return Object.assign(srv, { first });
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** Waits for the process to exit; kills it and fails if it takes longer than `ms`. */
async function exitWithin(run: RunningCli, ms: number): Promise<{ r: CliResult; elapsedMs: number }> {
  const t0 = Date.now();
  try {
    const r = await withTimeout(run.result, ms, "waiting for cicada to exit");
    return { r, elapsedMs: Date.now() - t0 };
  } catch (err) {
    run.child.kill("SIGKILL");
    throw err;
  }
}

async function waitUntil(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await delay(20);
  }
}

describe("signals during a run", { concurrency: 2 }, () => {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    it(`${sig} stops the run gracefully, writes the JSON result and the summary`, async () => {
      const srv = await serverWithFirst((res) => res.end("ok"));
      const p = tempProject({ "loadtest.ts": LOADFILE });
      const run = startCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          srv.url,
          "-u",
          "2",
          "-r",
          "10",
          "-t",
          "30s",
          "--json",
          "result.json",
        ],
        { cwd: p.dir },
      );
      try {
        await withTimeout(srv.first, 15000, "first request at the server");
        // Let some requests complete, so the result has something to show.
        await delay(1000);
        assert.equal(run.child.exitCode, null, "cicada exited before the signal");
        run.child.kill(sig);
        const { r, elapsedMs } = await exitWithin(run, 10000);

        assert.equal(r.signal, null, `cicada was killed by the signal instead of handling it\n${show(r)}`);
        assert.ok(r.code === 0 || r.code === 1, `exit code ${r.code}\n${show(r)}`);
        assert.ok(elapsedMs < 10000, `took ${elapsedMs} ms to exit`);

        const out = join(p.dir, "result.json");
        assert.ok(existsSync(out), `no JSON result written\n${show(r)}`);
        const json = readJson(out);
        assertValidResult(json);
        assert.equal(json.stopReason, "signal");
        assert.equal(json.exitCode, r.code);
        assert.ok(json.totals.requests > 0, "no requests recorded");
        assert.equal(json.totals.failures, 0);
        assert.ok(json.durationSec < 15, `durationSec ${json.durationSec}: the 30 s run was not cut short`);
        assert.ok(srv.total() >= json.totals.requests);

        assert.match(r.stdout + r.stderr, new RegExp(`${sig}: stopping`));
        assert.match(r.stdout, /stopped by signal/, `no summary\n${show(r)}`);
        assert.match(r.stdout, /Aggregated/);
        assert.doesNotMatch(r.stderr, /^\s+at .+[:(]\d+/m, "stack trace on stderr");
      } finally {
        if (run.child.exitCode === null) run.child.kill("SIGKILL");
        await srv.close();
        p.cleanup();
      }
    });
  }

  it("with --json -, stdout stays pure JSON when a signal stops the run", async () => {
    const srv = await serverWithFirst((res) => res.end("ok"));
    const p = tempProject({ "loadtest.ts": LOADFILE });
    const run = startCli(
      ["run", "--headless", "loadtest.ts", "-H", srv.url, "-u", "1", "-t", "30s", "--json", "-"],
      {
        cwd: p.dir,
      },
    );
    try {
      await withTimeout(srv.first, 15000, "first request at the server");
      await delay(500);
      run.child.kill("SIGINT");
      const { r } = await exitWithin(run, 10000);
      assert.equal(r.signal, null, show(r));
      let json: any;
      assert.doesNotThrow(() => (json = JSON.parse(r.stdout)), `stdout is not pure JSON\n${show(r)}`);
      assertValidResult(json);
      assert.equal(json.stopReason, "signal");
      // The stop notice and the summary belong on stderr.
      assert.match(r.stderr, /SIGINT: stopping/);
      assert.match(r.stderr, /stopped by signal/);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
      await srv.close();
      p.cleanup();
    }
  });
});

describe("a second SIGINT while users are stuck in slow requests", () => {
  const USERS = 2;
  const pending = new Set<NodeJS.Timeout>();
  let srv: TestServer;
  let p: ReturnType<typeof tempProject>;
  let r: CliResult;
  let json: any;
  let aliveAfterFirst = false;
  let exitAfterSecondMs = 0;

  before(async () => {
    // Answers only after 20 s: far beyond this test, so every request stays in flight.
    srv = await startServer((_req, res) => {
      const t = setTimeout(() => res.end("late"), 20000);
      pending.add(t);
      res.on("close", () => {
        clearTimeout(t);
        pending.delete(t);
      });
    });
    p = tempProject({ "loadtest.ts": LOADFILE });
    const run = startCli(
      [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        srv.url,
        "-u",
        String(USERS),
        "-r",
        "20",
        "-t",
        "30s",
        "-s",
        "30",
        "--json",
        "result.json",
      ],
      { cwd: p.dir },
    );
    try {
      await waitUntil(() => srv.total() >= USERS, 15000, `${USERS} requests at the server`);
      await delay(300);
      run.child.kill("SIGINT");
      // The stop timeout is 30 s and the requests take 20 s: the first signal must not end the run.
      await delay(1000);
      aliveAfterFirst = run.child.exitCode === null && run.child.signalCode === null;
      run.child.kill("SIGINT");
      const done = await exitWithin(run, 5000);
      r = done.r;
      exitAfterSecondMs = done.elapsedMs;
      const out = join(p.dir, "result.json");
      json = existsSync(out) ? readJson(out) : undefined;
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
    }
  });

  after(async () => {
    for (const t of pending) clearTimeout(t);
    await srv?.close();
    p?.cleanup();
  });

  it("the first SIGINT waits for the stop timeout; the second exits at once", () => {
    assert.ok(aliveAfterFirst, "cicada exited after the first SIGINT although users were still busy");
    assert.equal(r.signal, null, show(r));
    assert.ok(exitAfterSecondMs < 5000, `took ${exitAfterSecondMs} ms after the second SIGINT`);
    assert.match(r.stderr, /SIGINT: stopping now/);
    assert.doesNotMatch(r.stderr, /^\s+at .+[:(]\d+/m, "stack trace on stderr");
  });

  it("still writes a valid JSON result with the in-flight requests counted as cancelled", () => {
    assert.ok(json, `no JSON result written\n${show(r)}`);
    assertValidResult(json);
    assert.equal(json.stopReason, "signal");
    assert.equal(json.totals.requests, 0, "no request ever completed");
    assert.equal(json.totals.failures, 0, "cancelled requests are not failures");
    assert.equal(json.totals.cancelled, srv.total(), "every request the server saw was cancelled");
    assert.equal(json.totals.cancelled, USERS);
    const ep = json.endpoints.find((e: any) => e.method === "GET" && e.name === "/");
    assert.ok(ep, "no endpoint row for GET /");
    assert.equal(ep.cancelled, USERS);
    assert.match(r.stdout, /stopped by signal/, "no summary");
    assert.match(r.stdout, new RegExp(`${USERS} request\\(s\\) were still in flight`));
  });

  it("exits with code 130 (ExitCode.Interrupted) and records it in the JSON", () => {
    assert.equal(r.code, 130, show(r));
    assert.equal(json?.exitCode, 130);
  });
});
