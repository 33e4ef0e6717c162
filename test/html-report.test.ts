/** The HTML report, rendered from a real run and opened in a real headless browser. */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import { embedJson, renderHtmlReport } from "../src/outputs/html/report.js";
import type { RunResult } from "../src/result/result.js";
import { browserSkipReason, describeRun, findChromium, runLoad, startServer } from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant, check } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task async ok() {
    const res = await this.client.get("/ok");
    check(res, { "ok is 200": (r) => r.status === 200 });
  }
  @task async flaky() {
    const res = await this.client.get("/flaky");
    check(res, { "flaky is 200": (r) => r.status === 200 });
    if (res.status === 503) throw new Error("flaky said 503");
  }
}
`;

const chromiumPath = findChromium();
const browserSkip = browserSkipReason(chromiumPath);

/** As the report formats milliseconds: integers as they are, else two decimals. */
const ms = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2));

const label = (e: RunResult["endpoints"][number]) => `${e.method} ${e.name}`;

interface ChartView {
  lengths: number[];
  data: Array<Array<number | null>>;
}

describe("HTML report", () => {
  let result: RunResult;
  let serverUrl = "";
  const dir = mkdtempSync(join(tmpdir(), "cicada-html-"));

  before(async () => {
    let n = 0;
    const server = await startServer((req, res) => {
      if (req.url === "/flaky") {
        n++;
        res.statusCode = n % 4 === 0 ? 503 : 200;
        res.end("flaky");
      } else setTimeout(() => res.end("ok"), 2);
    });
    serverUrl = server.url;
    try {
      const run = await runLoad(LOADFILE, [
        "-H",
        server.url,
        "-u",
        "4",
        "-r",
        "20",
        "-t",
        "4s",
        "--threshold",
        "p95<5000",
        "--threshold",
        "GET /flaky: error_rate<1%",
      ]);
      assert.equal(run.code, 3, `the error-rate threshold should fail the run\n${describeRun(run)}`);
      result = run.result;
    } finally {
      await server.close();
    }
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it("references nothing outside the file and embeds hostile names safely", () => {
    const html = renderHtmlReport(result);
    assert.doesNotMatch(html, /\b(?:src|href|action|poster)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    assert.doesNotMatch(html, /url\(\s*["']?\s*(?:https?:)?\/\//i);
    assert.doesNotMatch(html, /@import/i);
    assert.doesNotMatch(html, /<(?:script|link|img|iframe)\b[^>]*\bsrc\s*=/i);

    const hostile = structuredClone(result);
    const name = "</script><script>globalThis.pwned=1</script><!-- a\u2028b\u2029c";
    hostile.endpoints[0]!.name = name;
    const page = renderHtmlReport(hostile);
    assert.ok(!page.includes("<script>globalThis.pwned"), "a name must not be able to open a script");
    const json = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(page);
    assert.ok(json, "the data block is there and ends where it should");
    assert.ok(!json[1]!.includes("\u2028") && !json[1]!.includes("\u2029"));
    const data = JSON.parse(json[1]!) as { endpoints: Array<{ key: string }> };
    assert.equal(data.endpoints[0]!.key, `${hostile.endpoints[0]!.method} ${name}`);
    assert.equal(JSON.parse(embedJson({ s: "</script>\u2028" })).s, "</script>\u2028");
  });

  it("opens offline in a browser with charts, tables and sections that match the JSON", {
    skip: browserSkip,
    timeout: 40_000,
  }, async () => {
    assert.ok(
      chromiumPath,
      "no Chromium found (CI is set, so this fails instead of skipping): install chromium or set CICADA_CHROMIUM",
    );
    const file = join(dir, "report.html");
    writeFileSync(file, renderHtmlReport(result));
    const url = pathToFileURL(file).href;

    const browser = await chromium.launch({
      executablePath: chromiumPath,
      args: ["--no-sandbox"],
      timeout: 30_000,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      const requests: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(`console: ${m.text()}`);
      });
      page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
      page.on("request", (r) => requests.push(r.url()));
      await page.goto(url, { waitUntil: "load" });
      await page.waitForFunction(() => Boolean((globalThis as any).cicadaReport?.charts?.distribution));

      const charts = () =>
        page.evaluate(() => {
          const out: Record<string, { lengths: number[]; data: Array<Array<number | null>> }> = {};
          for (const [id, c] of Object.entries(
            (globalThis as any).cicadaReport.charts as Record<string, any>,
          )) {
            const data = (c.data as ArrayLike<number | null>[]).map((col) => Array.from(col));
            out[id] = { lengths: data.map((col) => col.length), data };
          }
          return out;
        }) as Promise<Record<string, ChartView>>;

      // Charts of the whole run: one point per second of the top-level series.
      const n = result.series.length;
      assert.ok(n >= 3, `a 4 s run has several seconds: ${n}`);
      let c = await charts();
      // Every run records the generator's CPU and memory: a chart for each, next to RPS and latency.
      assert.deepEqual(Object.keys(c).sort(), [
        "distribution",
        "latency",
        "load",
        "res-cpu",
        "res-memory",
        "throughput",
      ]);
      const rss = result.resources!.find((x) => x.source === "master" && x.metric === "rss_bytes")!;
      const memory = c["res-memory"]!;
      const at = memory.data[0]!;
      const plotted = rss.points.map(([t]) =>
        memory.data.find((col, i) => i > 0 && col[at.indexOf(t)] !== null),
      );
      assert.ok(plotted.every(Boolean), "each point of the master's RSS is on the memory chart");
      assert.ok(
        rss.points.some(([t, v]) =>
          memory.data.some((col, i) => i > 0 && col[at.indexOf(t)] === Math.round((v / 1048576) * 100) / 100),
        ),
        "in MB",
      );
      for (const id of ["throughput", "latency", "load"]) {
        assert.ok(
          c[id]!.lengths.every((len) => len === n),
          `${id}: ${c[id]!.lengths} points, expected ${n}`,
        );
      }
      assert.deepEqual(
        c.throughput!.data[1],
        result.series.map((r) => r.rps),
      );
      assert.deepEqual(
        c.load!.data[1],
        result.series.map((r) => r.users),
      );

      // One endpoint: its seconds, with the seconds it had no requests filled in.
      const flaky = result.endpoints.find((e) => e.name === "/flaky")!;
      assert.ok(flaky.failures > 0 && flaky.series);
      await page.selectOption("#series-endpoint", { label: "GET /flaky" });
      c = await charts();
      const rows = new Map(flaky.series!.map((r) => [r.t, r]));
      assert.deepEqual(c.throughput!.lengths, [n, n, n]);
      assert.deepEqual(
        c.throughput!.data[1],
        result.series.map((r) => rows.get(r.t)?.requests ?? 0),
      );
      assert.deepEqual(
        c.throughput!.data[2],
        result.series.map((r) => rows.get(r.t)?.failures ?? 0),
      );
      assert.deepEqual(
        c.latency!.data[2],
        result.series.map((r) => rows.get(r.t)?.p95 ?? null),
      );
      await page.selectOption("#series-endpoint", "all");
      c = await charts();
      assert.deepEqual(
        c.throughput!.data[1],
        result.series.map((r) => r.rps),
      );

      // The distribution holds every request of the chosen endpoint.
      const sum = (v: Array<number | null>) => v.reduce<number>((a, b) => a + (b ?? 0), 0);
      assert.equal(sum(c.distribution!.data[1]!), result.totals.requests);
      await page.selectOption("#dist-endpoint", { label: "GET /flaky" });
      c = await charts();
      assert.equal(sum(c.distribution!.data[1]!), flaky.requests);
      assert.match((await page.textContent("#dist-caption")) ?? "", /GET \/flaky/);

      // The endpoint table, row by row.
      const table = await page.$$eval("#endpoints tr[data-endpoint]", (trs) =>
        trs.map((tr) => {
          const col = (name: string) => tr.querySelector(`[data-col="${name}"]`);
          return {
            key: tr.getAttribute("data-endpoint"),
            requests: col("requests")?.textContent,
            failures: col("failures")?.getAttribute("data-value"),
            p95: col("p95")?.textContent,
          };
        }),
      );
      assert.deepEqual(table, [
        ...result.endpoints.map((e) => ({
          key: label(e),
          requests: e.requests.toLocaleString("en-US"),
          failures: String(e.failures),
          p95: ms(e.latencyMs.p95),
        })),
        {
          key: "Aggregated",
          requests: result.totals.requests.toLocaleString("en-US"),
          failures: String(result.totals.failures),
          p95: ms(result.totals.latencyMs.p95),
        },
      ]);
      const p95s = await page.$$eval('#percentiles tbody [data-col="p95"]', (tds) =>
        tds.map((td) => td.textContent),
      );
      assert.deepEqual(
        p95s,
        result.endpoints.map((e) => ms(e.latencyMs.p95)),
      );
      const status503 = await page.textContent(
        '#status-codes tr[data-endpoint="GET /flaky"] [data-col="503"]',
      );
      assert.equal(status503, flaky.statusCodes["503"]!.toLocaleString("en-US"));

      // Metadata, thresholds, checks, findings, exceptions.
      assert.equal(await page.textContent('#run [data-meta="Host"]'), serverUrl);
      assert.equal(await page.textContent('#run [data-meta="Stop reason"]'), result.stopReason);
      const thresholds = await page.$$eval("#thresholds tr[data-threshold]", (trs) =>
        trs.map((tr) => [tr.getAttribute("data-threshold"), tr.getAttribute("data-passed")]),
      );
      assert.deepEqual(
        thresholds,
        result.thresholds!.map((t) => [t.expr, String(t.passed)]),
      );
      assert.deepEqual(
        thresholds.map((t) => t[1]),
        ["true", "false"],
      );
      const checks = await page.$$eval("#checks tr[data-check]", (trs) =>
        trs.map((tr) => tr.getAttribute("data-check")),
      );
      assert.deepEqual(
        checks,
        result.checks!.map((x) => x.name),
      );
      assert.ok(result.recommendations && result.recommendations.length > 0);
      assert.equal(await page.locator("#findings-list li").count(), result.recommendations.length);
      assert.equal(await page.locator("#exceptions details").count(), result.exceptions.length);
      assert.match((await page.textContent("#exceptions")) ?? "", /flaky said 503/);
      assert.equal(await page.locator("#comparison").count(), 0, "no comparison without a baseline");

      // A hostile endpoint name stays text.
      const hostile = structuredClone(result);
      hostile.endpoints[0]!.name = "</script><script>globalThis.pwned=1</script>";
      const hostileFile = join(dir, "hostile.html");
      writeFileSync(hostileFile, renderHtmlReport(hostile));
      await page.goto(pathToFileURL(hostileFile).href, { waitUntil: "load" });
      await page.waitForFunction(() => Boolean((globalThis as any).cicadaReport));
      assert.equal(await page.evaluate(() => (globalThis as any).pwned), undefined);
      assert.equal(
        await page.textContent('#endpoints tbody tr:first-child [data-col="name"]'),
        `GET ${hostile.endpoints[0]!.name}`,
      );

      assert.deepEqual(problems, []);
      assert.deepEqual(
        requests,
        [url, pathToFileURL(hostileFile).href],
        "the report loads nothing but itself",
      );
    } finally {
      await browser.close();
    }
  });
});
