/** The live web UI, driven in a real headless browser against `cicada run` and a loopback target. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
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

const LOADFILE = `
import { HttpUser, task, constant, check } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.05);
  @task async ok() {
    const res = await this.client.get("/ok");
    check(res, { "ok is 200": (r) => r.status === 200 });
  }
}
`;

const chromiumPath = findChromium();
const browserSkip = browserSkipReason(chromiumPath);

interface WebCli extends RunningCli {
  url: string;
  log(): string;
  /** Asks it to quit as Ctrl-C would, and kills it if it lingers. */
  quit(): Promise<void>;
}

/** `cicada run loadtest.ts --web-port 0 ARGS` in `dir`, once it says where the UI is. */
async function startWeb(dir: string, args: string[]): Promise<WebCli> {
  const cli = startCli(["run", "loadtest.ts", "--web-port", "0", ...args], {
    cwd: dir,
  });
  let out = "";
  cli.child.stderr!.on("data", (d) => (out += d));
  cli.child.stdout!.on("data", (d) => (out += d));
  const quit = async () => {
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) return;
    cli.child.kill("SIGINT");
    const timer = setTimeout(() => cli.child.kill("SIGKILL"), 10_000);
    await cli.result;
    clearTimeout(timer);
  };
  try {
    await cli.waitFor(/web UI on http:\/\/\S+/, 20_000);
  } catch (err) {
    await quit();
    throw err;
  }
  const url = /web UI on (http:\/\/\S+)/.exec(out)![1]!.replace(/\/?$/, "/");
  return Object.assign(cli, { url, log: () => out, quit });
}

const status = (page: Page) => page.textContent('[data-metric="status"] .badge');
const metric = async (page: Page, id: string) =>
  (await page.textContent(`[data-metric="${id}"] .value`)) ?? "";
const aggregatedRequests = async (page: Page) => {
  const text = await page.textContent('#stats tr[data-endpoint="Aggregated"] [data-col="requests"]');
  return Number((text ?? "").replace(/,/g, "")) || 0;
};
const chartLengths = (page: Page) =>
  page.evaluate(() => {
    const charts = (globalThis as any).cicadaUi?.charts ?? {};
    const out: Record<string, number[]> = {};
    for (const [id, c] of Object.entries(charts as Record<string, { data: ArrayLike<unknown>[] }>)) {
      out[id] = Array.from(c.data, (col) => col.length);
    }
    return out;
  });

describe("web UI", { skip: browserSkip }, () => {
  let browser: Browser;
  let target: TestServer;
  const project = tempProject({ "loadtest.ts": LOADFILE });

  before(async () => {
    assert.ok(
      chromiumPath,
      "no Chromium found (CI is set, so this fails instead of skipping): install chromium or set CICADA_CHROMIUM",
    );
    target = await startServer((_req, res) => setTimeout(() => res.end("ok"), 2));
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--no-sandbox"],
      timeout: 30_000,
    });
  });

  after(async () => {
    await browser?.close();
    await target?.close();
    project.cleanup();
  });

  it("starts a test from the form, shows it live, steers it, stops it and offers its reports", {
    timeout: 50_000,
  }, async () => {
    const web = await startWeb(project.dir, ["-H", "http://127.0.0.1:9"]);
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      acceptDownloads: true,
    });
    const page = await context.newPage();
    const problems: string[] = [];
    const offsite: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      // The browser logs the deliberate 400 below as a failed resource; that one is expected.
      if (m.type() === "error" && !/status of 400/.test(m.text())) problems.push(`console: ${m.text()}`);
    });
    page.on("request", (r) => {
      if (!r.url().startsWith(web.url)) offsite.push(r.url());
    });
    try {
      await page.goto(web.url);
      await page.waitForSelector("#start-form");
      assert.equal(await status(page), "ready");
      // Prefilled from the server's defaults: the -H given on the command line.
      assert.equal(await page.inputValue('input[name="host"]'), "http://127.0.0.1:9");

      // The server's own 400 message shows next to the form.
      await page.fill('input[name="runTime"]', "soon");
      await page.click("#start-button");
      await page.waitForSelector("#start-error");
      assert.match((await page.textContent("#start-error")) ?? "", /\S/);
      assert.equal(await status(page), "ready");

      await page.fill('input[name="users"]', "2");
      await page.fill('input[name="spawnRate"]', "20");
      await page.fill('input[name="host"]', target.url);
      await page.fill('input[name="runTime"]', "40s");
      await page.click("#start-button");
      await until(
        "the test to run",
        () => status(page),
        (s) => s === "running",
      );
      assert.equal(await page.locator("#start-form").count(), 0, "the form goes once the test starts");

      // Charts and the table grow with each pushed event.
      const first = await until(
        "chart rows",
        () => chartLengths(page),
        (c) => (c.throughput?.[0] ?? 0) >= 1,
      );
      assert.deepEqual(
        Object.keys(first)
          .filter((k) => !k.startsWith("res-"))
          .sort(),
        ["latency", "throughput", "users"],
      );
      // The generator's own CPU and memory come with the stats events, a chart each, growing.
      const res = await until(
        "resource charts",
        () => chartLengths(page),
        (c) => (c["res-memory"]?.[0] ?? 0) >= 1 && (c["res-cpu"]?.[0] ?? 0) >= 1,
      );
      await until(
        "more resource points",
        () => chartLengths(page),
        (c) => (c["res-memory"]?.[0] ?? 0) > res["res-memory"]![0]!,
      );
      const requests = await until(
        "requests in the table",
        () => aggregatedRequests(page),
        (n) => n > 0,
      );
      await until(
        "more chart rows",
        () => chartLengths(page),
        (c) => (c.throughput?.[0] ?? 0) > first.throughput![0]!,
      );
      await until(
        "more requests",
        () => aggregatedRequests(page),
        (n) => n > requests,
      );
      const grown = await chartLengths(page);
      for (const [id, lengths] of Object.entries(grown)) {
        assert.ok(new Set(lengths).size === 1, `${id}: every column as long as the time axis: ${lengths}`);
      }
      assert.ok(target.total() > 0, "the target received load");
      assert.equal(await metric(page, "users"), "2");

      // One endpoint's series: the same time axis, its own values.
      const keys = await page.$$eval("#series-endpoint option", (os) =>
        os.map((o) => o.getAttribute("value") ?? ""),
      );
      assert.ok(keys.length >= 2, `the endpoint selector lists the endpoints: ${keys}`);
      await page.selectOption("#series-endpoint", keys[1]!);
      const one = await chartLengths(page);
      assert.equal(one.throughput![1], one.throughput![0]);
      await page.selectOption("#series-endpoint", "");

      // Users edited while running: the header and the API both follow.
      await page.fill("#edit-users", "5");
      await page.click("#edit-apply");
      await until(
        "5 users in the header",
        () => metric(page, "users"),
        (v) => v === "5",
      );
      const stats = await until(
        "5 users in /api/stats",
        async () => (await (await page.request.get(`${web.url}api/stats`)).json()) as { users: number },
        (s) => s.users === 5,
      );
      assert.equal(stats.users, 5);

      // Sorting and the column chooser.
      await page.click('#stats th[data-col="name"]');
      assert.equal(await page.getAttribute('#stats th[data-col="name"]', "aria-sort"), "ascending");
      await page.click(".column-chooser summary");
      await page.uncheck('input[data-column="max"]');
      assert.equal(await page.locator('#stats th[data-col="max"]').count(), 0);
      await page.check('input[data-column="max"]');
      assert.equal(await page.locator('#stats th[data-col="max"]').count(), 1);
      await page.click(".column-chooser summary");

      await page.click("#stop-button");
      await until(
        "the test to stop",
        () => status(page),
        (s) => s === "stopped",
      );
      const state = (await (await page.request.get(`${web.url}api/state`)).json()) as { status: string };
      assert.equal(state.status, "stopped");
      await page.waitForSelector("#new-test-button");

      await page.click('[data-tab="downloads"]');
      for (const path of [
        "api/report.json",
        "api/report/stats.csv",
        "api/report/stats_history.csv",
        "api/report/failures.csv",
        "api/report/exceptions.csv",
      ]) {
        assert.equal(await page.locator(`#downloads a[href="${path}"]`).count(), 1, `a link to ${path}`);
      }
      const json = await page.request.get(`${web.url}api/report.json`);
      assert.equal(json.status(), 200);
      assert.ok(((await json.json()) as { totals: { requests: number } }).totals.requests > 0);
      const [download] = await Promise.all([
        page.waitForEvent("download", { timeout: 15_000 }),
        page.click('#downloads a[href="api/report.html"]'),
      ]);
      const html = readFileSync((await download.path())!, "utf8");
      assert.match(html, /^<!doctype html>/i);

      // A new test starts from the form again, prefilled with the last one's settings.
      await page.click("#new-test-button");
      await page.waitForSelector("#start-form");
      assert.equal(await page.inputValue('input[name="host"]'), target.url);

      assert.deepEqual(problems, []);
      assert.deepEqual(offsite, [], "the page loads nothing from anywhere but the server");
    } finally {
      await context.close();
      await web.quit();
    }
  });

  it("asks for the login on the page and the API, and works with it", { timeout: 30_000 }, async () => {
    const web = await startWeb(project.dir, ["-H", target.url, "--web-login", "alice:s3cret"]);
    const context = await browser.newContext({ httpCredentials: { username: "alice", password: "s3cret" } });
    try {
      for (const path of ["", "api/state", "api/stats", "api/events"]) {
        const res = await fetch(`${web.url}${path}`);
        assert.equal(res.status, 401, `${path || "/"} without a login`);
        assert.match(res.headers.get("www-authenticate") ?? "", /^Basic/);
        await res.body?.cancel();
      }
      const wrong = await fetch(`${web.url}api/state`, {
        headers: { authorization: `Basic ${Buffer.from("alice:nope").toString("base64")}` },
      });
      assert.equal(wrong.status, 401);
      const right = await fetch(`${web.url}api/state`, {
        headers: { authorization: `Basic ${Buffer.from("alice:s3cret").toString("base64")}` },
      });
      assert.equal(right.status, 200);
      assert.equal(((await right.json()) as { status: string }).status, "ready");

      const page = await context.newPage();
      const res = await page.goto(web.url);
      assert.equal(res?.status(), 200);
      // The form appears only once the state came over the event stream, so that works too.
      await page.waitForSelector("#start-form");
      assert.equal(await status(page), "ready");
    } finally {
      await context.close();
      await web.quit();
    }
  });
});
