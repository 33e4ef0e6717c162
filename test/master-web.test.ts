// The master of remote workers with its web UI: tests started in the UI run on the connected workers.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type RunningCli, startCli, startServer, type TestServer, tempProject } from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task hit() { return this.client.get("/hit"); }
}
`;

const JSON_HEADERS = { "content-type": "application/json" };
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await delay(200);
  }
}

describe("the master with its web UI", () => {
  let target: TestServer;
  let project: ReturnType<typeof tempProject>;
  let workerDir: ReturnType<typeof tempProject>;
  let master: RunningCli;
  const workers: RunningCli[] = [];
  let ui = "";
  let port = "";

  before(async () => {
    target = await startServer((_req, res) => res.end("ok"));
    project = tempProject({ "loadtest.ts": LOADFILE });
    workerDir = tempProject({});
    master = startCli(
      ["run", "loadtest.ts", "--master", "--master-bind-port", "0", "--web-port", "0", "-H", target.url],
      { cwd: project.dir },
    );
    await master.waitFor(/web UI on http:\/\/\S+/);
    const err = master.output().stderr;
    ui = /web UI on (http:\/\/\S+)/.exec(err)![1]!.replace(/\/$/, "");
    port = /master listening on 127\.0\.0\.1:(\d+)/.exec(err)![1]!;
  });

  after(async () => {
    for (const w of workers) if (w.child.exitCode === null) w.child.kill("SIGKILL");
    if (master.child.exitCode === null) {
      master.child.kill("SIGINT");
      const timer = setTimeout(() => master.child.kill("SIGKILL"), 10_000);
      await master.result;
      clearTimeout(timer);
    }
    project.cleanup();
    workerDir.cleanup();
    await target.close();
  });

  const api = (path: string, body?: unknown) =>
    fetch(
      `${ui}${path}`,
      body === undefined ? {} : { method: "POST", headers: JSON_HEADERS, body: JSON.stringify(body) },
    );

  it("refuses a start before any worker connected, with a message that says what to do", async () => {
    const r = await api("/api/start", { users: 2, spawnRate: 100 });
    assert.equal(r.status, 409);
    assert.match(((await r.json()) as { error: string }).error, /no worker has connected.*cicada worker/);
  });

  it("runs two tests in a row on the connected workers; the counts are the target's own", async () => {
    for (let i = 0; i < 2; i++) {
      workers.push(startCli(["worker", "--master-port", port], { cwd: workerDir.dir }));
    }
    await until("two workers", async () =>
      (master.output().stderr.match(/worker \S+ connected/g) ?? []).length >= 2 ? true : undefined,
    );
    for (let test = 1; test <= 2; test++) {
      const before = target.total();
      const start = await api("/api/start", { users: 4, spawnRate: 100, runTime: "2s" });
      assert.equal(start.status, 200, await start.clone().text());
      // While it runs, the users are on the workers, and the workers' rows show them.
      const rows = await until("workers with users", async () => {
        const s = (await (await api("/api/stats")).json().catch(() => undefined)) as
          | { workers?: Array<{ users: number }> }
          | undefined;
        const w = s?.workers ?? [];
        return w.length === 2 && w.every((x) => x.users > 0) ? w : undefined;
      });
      assert.equal(
        rows.reduce((n, w) => n + w.users, 0),
        4,
      );
      const result = await until("the test's end", async () => {
        const st = (await (await api("/api/state")).json()) as { state?: string; status?: string };
        if ((st.state ?? st.status) === "running" || (st.state ?? st.status) === "stopping") return undefined;
        const r = await api("/api/report.json");
        if (r.status !== 200) return undefined;
        const j = (await r.json()) as { totals: { requests: number; cancelled: number }; stopReason: string };
        return j.stopReason === "run-time" ? j : undefined;
      });
      const served = target.total() - before;
      assert.ok(result.totals.requests > 0, `test ${test}: no requests`);
      assert.ok(
        served >= result.totals.requests && served <= result.totals.requests + result.totals.cancelled,
        `test ${test}: served ${served}, counted ${result.totals.requests} (+${result.totals.cancelled} cancelled)`,
      );
      // The workers stay for the next test: they reconnect once this one is over.
      await until("the workers back in the pool", async () => {
        const n = (master.output().stderr.match(/worker \S+ connected/g) ?? []).length;
        return n >= 2 * (test + 1) ? true : undefined;
      });
    }
  });
});
