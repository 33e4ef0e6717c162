// The master of remote workers with its web UI: tests started in the UI run on the connected workers.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { chromium } from "playwright-core";
import {
  browserSkipReason,
  findChromium,
  type RunningCli,
  startCli,
  startServer,
  type TestServer,
  tempProject,
  until,
} from "./helpers.js";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

const chromiumPath = findChromium();

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task hit() { return this.client.get("/hit"); }
}
`;

const JSON_HEADERS = { "content-type": "application/json" };
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
    const state = (await (await api("/api/state")).json()) as { workers: { connected: number } | null };
    assert.deepEqual(state.workers, { connected: 0 });
  });

  it("runs two tests in a row on the connected workers; the counts are the target's own", async () => {
    for (let i = 0; i < 2; i++) {
      workers.push(startCli(["worker", "--master-port", port], { cwd: workerDir.dir }));
    }
    await until("two workers", async () =>
      (master.output().stderr.match(/worker \S+ connected/g) ?? []).length >= 2 ? true : undefined,
    );
    // The start form's count of waiting workers.
    const state = (await (await api("/api/state")).json()) as { workers: { connected: number } | null };
    assert.deepEqual(state.workers, { connected: 2 });
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

  it("in a browser, the Workers tab shows each worker's users, and a lost worker's users moving to the others", {
    skip: browserSkipReason(chromiumPath),
    timeout: 60_000,
  }, async () => {
    assert.ok(chromiumPath, "no Chromium found (CI is set, so this fails instead of skipping)");
    // Two workers of their own, so one can be killed without touching the others.
    const mine = [0, 1].map(() => startCli(["worker", "--master-port", port], { cwd: workerDir.dir }));
    workers.push(...mine);
    const connectedBefore = (master.output().stderr.match(/worker \S+ connected/g) ?? []).length;
    await until("the two new workers", async () =>
      (master.output().stderr.match(/worker \S+ connected/g) ?? []).length >= connectedBefore + 2
        ? true
        : undefined,
    );
    // Old workers of the previous test may still be in the pool: stop them, so exactly these two run.
    for (const w of workers.filter((x) => !mine.includes(x))) w.child.kill("SIGKILL");
    await delay(4000);
    const browser = await chromium.launch({
      executablePath: chromiumPath!,
      args: ["--no-sandbox"],
      timeout: 30_000,
    });
    try {
      const page = await browser.newPage();
      await page.goto(`${ui}/`);
      const start = await api("/api/start", { users: 6, spawnRate: 100, runTime: "20s" });
      assert.equal(start.status, 200, await start.clone().text());
      await page.click('[data-tab="workers"]');
      const rows = async () =>
        page.$$eval("#workers tbody tr", (trs) =>
          trs.map((tr) => ({
            text: tr.textContent ?? "",
            users: Number(tr.querySelectorAll("td")[1]?.textContent) || 0,
          })),
        );
      // Waits for the ramp to finish: mid-ramp the rows show fewer than 6 users between them.
      const live = await until("both workers with all 6 users between them in the tab", async () => {
        const r = await rows();
        const total = r.reduce((n, x) => n + x.users, 0);
        return r.length === 2 && r.every((x) => x.users > 0) && total === 6 ? r : undefined;
      });
      assert.equal(
        live.reduce((n, x) => n + x.users, 0),
        6,
      );
      mine[0]!.child.kill("SIGKILL");
      const moved = await until("the lost worker's users on the other", async () => {
        const r = await rows();
        const lost = r.find((x) => /lost/.test(x.text));
        const other = r.find((x) => !/lost/.test(x.text));
        return lost && other && other.users === 6 ? r : undefined;
      });
      assert.equal(moved.length, 2);
      const stop = await api("/api/stop", {});
      assert.equal(stop.status, 200);
    } finally {
      await browser.close();
    }
  });
});
