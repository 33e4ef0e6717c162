// `cicada sweep` and `sweep()` as a user runs them, against a loopback server of known capacity:
// the knee, the automatic rates, the early stop, the outputs and the exit codes.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";
import type { SweepResult } from "../src/index.js";
import {
  assertValidResult,
  browserSkipReason,
  findChromium,
  readJson,
  runCli,
  startServer,
  type TestServer,
  tempProject,
} from "./helpers.js";

const INDEX = new URL("../src/index.js", import.meta.url).href;

/** At most SLOTS requests are served at once, each for SERVICE_MS: the capacity is SLOTS / SERVICE_MS. */
const SLOTS = 4;
const SERVICE_MS = 50;
const CAPACITY = SLOTS / (SERVICE_MS / 1000); // 80 req/s

const LOADFILE = `import { HttpUser, task } from "cicada-load";
export class Worker extends HttpUser {
  @task
  async work(): Promise<void> {
    await this.client.get(process.env.SWEEP_PATH ?? "/work");
  }
}
`;

interface CapacityServer extends TestServer {
  maxBusy: number;
}

/**
 * A server that serves SLOTS requests at once for SERVICE_MS each; the rest wait in a queue
 * (/work) or are refused with 503 (/reject). A request whose client left is dropped from the queue.
 */
async function capacityServer(): Promise<CapacityServer> {
  let busy = 0;
  const queue: Array<() => void> = [];
  let self: CapacityServer | undefined;
  const next = () => {
    while (busy < SLOTS && queue.length > 0) queue.shift()!();
  };
  const srv = await startServer((req: IncomingMessage, res: ServerResponse) => {
    const serve = () => {
      busy++;
      self!.maxBusy = Math.max(self!.maxBusy, busy);
      setTimeout(() => {
        busy--;
        res.end("ok");
        next();
      }, SERVICE_MS);
    };
    if (busy < SLOTS) serve();
    else if ((req.url ?? "").startsWith("/reject")) {
      res.statusCode = 503;
      res.end("busy");
    } else {
      queue.push(serve);
      res.on("close", () => {
        const i = queue.indexOf(serve);
        if (i >= 0) queue.splice(i, 1);
      });
    }
  });
  self = Object.assign(srv, { maxBusy: 0 });
  return self;
}

interface JUnitCase {
  classname: string;
  name: string;
  outcome: "passed" | "failed" | "skipped";
  /** The failure's or the skip's message, as written (XML-escaped). */
  message: string;
  /** Everything inside the test case. */
  text: string;
}

/** The test cases of a JUnit document, in order, as a CI reads them. */
function junitCases(xml: string): JUnitCase[] {
  const out: JUnitCase[] = [];
  const re = /<testcase name="([^"]*)" classname="([^"]*)"[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const inner = m[4] ?? "";
    const failure = /<failure message="([^"]*)"/.exec(inner);
    const skipped = /<skipped message="([^"]*)"/.exec(inner);
    out.push({
      name: m[1]!,
      classname: m[2]!,
      outcome: failure ? "failed" : skipped ? "skipped" : "passed",
      message: failure?.[1] ?? skipped?.[1] ?? "",
      text: inner,
    });
  }
  return out;
}

const chromiumPath = findChromium();

/** Short levels keep the tests bounded: 0.5 s of warm-up, 1.5 s measured. */
const SHORT = ["--step-time", "1.5s", "--warmup", "0.5s", "--processes", "1"];

describe("cicada sweep", () => {
  let server: CapacityServer;
  let project: { dir: string; cleanup: () => void };
  before(async () => {
    server = await capacityServer();
    project = tempProject({ "loadtest.ts": LOADFILE });
  });
  after(async () => {
    await server.close();
    project.cleanup();
  });

  it("finds the knee of a server of known capacity within one level, with the table, JSON, CSV and HTML", async () => {
    const r = await runCli(
      [
        "sweep",
        "loadtest.ts",
        "-H",
        server.url,
        "--concurrency",
        "1,2,4,8,16",
        ...SHORT,
        "--json",
        "sweep.json",
        "--csv",
        "out",
        "--html",
        "sweep.html",
      ],
      { cwd: project.dir, timeoutMs: 90_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const res = readJson<SweepResult>(join(project.dir, "sweep.json"));
    const levels = res.sweep.levels;
    assert.deepEqual(
      levels.map((l) => [l.kind, l.load, l.status]),
      [1, 2, 4, 8, 16].map((n) => ["concurrency", n, "ran"]),
    );
    assert.ok(server.maxBusy <= SLOTS);
    // The server did as designed: throughput grows with users up to SLOTS, then holds.
    for (const l of levels) {
      assert.equal(l.failures, 0);
      assert.equal(l.successRate, 1);
      assert.ok(l.result && l.result.totals.requests === l.requests, "each level carries its full result");
      assertValidResult(l.result);
      assert.ok(l.rps <= CAPACITY * 1.15, `level ${l.load}: ${l.rps} req/s above the capacity`);
    }
    assert.ok(
      levels[4]!.latencyMs.p95 > 2 * levels[0]!.latencyMs.p95,
      "queueing shows in the p95 at 16 users",
    );
    const knee = res.sweep.knee;
    assert.ok(knee, `no knee found:\n${r.stdout}`);
    // The true knee is at SLOTS users; within one level is 2, 4 or 8.
    assert.ok([2, 4, 8].includes(knee.load), `knee at ${knee.load} users:\n${r.stdout}`);
    const cap = res.sweep.capacity!;
    assert.equal(cap.from, "knee");
    assert.ok(cap.rps > CAPACITY * 0.4 && cap.rps <= CAPACITY * 1.15, `capacity ${cap.rps} req/s`);
    // The terminal table: one row per level, then the knee and the capacity.
    assert.match(r.stdout, /#\s+Load\s+Reqs\s+Success\s+p50\s+p95\s+p99\s+RPS/);
    for (const n of [1, 2, 4, 8, 16])
      assert.match(r.stdout, new RegExp(`^\\s*\\d+\\s+${n} users?\\s+\\d+\\s+100\\.0%`, "m"));
    assert.match(r.stdout, new RegExp(`Knee: level ${knee.level + 1} \\(${knee.load} users?\\)`));
    assert.match(r.stdout, /Capacity estimate: \d+\.\d req\/s/);
    // CSV: a header and one row per level.
    const csv = readFileSync(join(project.dir, "out_sweep.csv"), "utf8").trim().split("\r\n");
    assert.equal(csv.length, 6);
    assert.match(csv[0]!, /^Level,Kind,Model,Load,Status,/);
    assert.match(csv[knee.level + 1]!, /,knee$/);
    // HTML: the curve's data and uPlot inline.
    const html = readFileSync(join(project.dir, "sweep.html"), "utf8");
    assert.match(html, /id="chart-curve"/);
    assert.match(html, /uPlot/);
    const data = JSON.parse(
      /<script type="application\/json" id="sweep-data">(.*?)<\/script>/s.exec(html)![1]!,
    );
    assert.equal(data.rps.length, 5);
    assert.equal(data.knee.rps, knee.rps);
  });

  it("the HTML report draws the throughput–latency curve in a browser", {
    skip: browserSkipReason(chromiumPath),
  }, async () => {
    const file = join(project.dir, "sweep.html");
    assert.ok(existsSync(file), "the knee test wrote the report");
    const res = readJson<SweepResult>(join(project.dir, "sweep.json"));
    const browser = await chromium.launch({
      executablePath: chromiumPath!,
      args: ["--no-sandbox"],
      timeout: 30_000,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const problems: string[] = [];
      page.on("pageerror", (e) => problems.push(e.message));
      page.on("console", (m) => {
        if (m.type() === "error") problems.push(m.text());
      });
      await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
      const drawn = await page.evaluate(() => {
        const c = (globalThis as any).cicadaSweep.chart;
        return { series: c.series.map((x: { label: string }) => x.label), data: c.data };
      });
      assert.deepEqual(problems, []);
      assert.deepEqual(drawn.series, ["req/s", "p50", "p95", "p99"]);
      const byRps = [...res.sweep.levels].sort((a, b) => a.okRps - b.okRps);
      assert.deepEqual(
        drawn.data[0],
        byRps.map((l) => l.okRps),
      );
      assert.deepEqual(
        drawn.data[2],
        byRps.map((l) => l.latencyMs.p95),
      );
    } finally {
      await browser.close();
    }
  });

  it("--rates auto runs the synchronous and throughput levels first, then rates between them", async () => {
    const r = await runCli(
      [
        "sweep",
        "loadtest.ts",
        "-H",
        server.url,
        "--rates",
        "auto",
        "--sweep-size",
        "4",
        "--max-users",
        "16",
        ...SHORT,
        "--json",
        "auto.json",
      ],
      { cwd: project.dir, timeoutMs: 90_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const res = readJson<SweepResult>(join(project.dir, "auto.json"));
    const levels = res.sweep.levels;
    assert.deepEqual(
      levels.map((l) => [l.kind, l.model]),
      [
        ["synchronous", "closed"],
        ["throughput", "closed"],
        ["rate", "open"],
        ["rate", "open"],
      ],
    );
    assert.equal(levels[0]!.load, 1);
    assert.equal(levels[1]!.load, 16);
    const sync = levels[0]!.okRps;
    const max = levels[1]!.okRps;
    // One user waits SERVICE_MS per request; sixteen fill every slot.
    assert.ok(sync > 8 && sync < 1000 / SERVICE_MS + 2, `synchronous ${sync} req/s`);
    assert.ok(max > sync * 1.8, `throughput ${max} vs synchronous ${sync}`);
    // Evenly spaced from the synchronous rate to the throughput rate, the latter included.
    const step = (max - sync) / 2;
    assert.ok(Math.abs(levels[2]!.load - (sync + step)) < 0.02);
    assert.ok(Math.abs(levels[3]!.load - max) < 0.02);
    assert.ok(levels[2]!.requests > 0 && levels[3]!.requests > 0);
    assert.match(r.stdout, /sync \(1 user\)/);
    assert.match(r.stdout, /max \(16 users\)/);
  });

  it("--max-error-rate stops at the first level above it; the rest are reported as not run", async () => {
    const r = await runCli(
      [
        "sweep",
        "loadtest.ts",
        "-H",
        server.url,
        "--concurrency",
        "2,16,32,64",
        "--max-error-rate",
        "10%",
        ...SHORT,
        "--json",
        "err.json",
      ],
      { cwd: project.dir, env: { SWEEP_PATH: "/reject" }, timeoutMs: 90_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const res = readJson<SweepResult>(join(project.dir, "err.json"));
    const st = res.sweep.levels.map((l) => l.status);
    assert.deepEqual(st, ["ran", "ran", "not-run", "not-run"]);
    assert.equal(res.sweep.stoppedBy, "max-error-rate");
    assert.equal(res.sweep.levels[0]!.failures, 0);
    assert.ok(res.sweep.levels[1]!.errorRate > 0.1);
    assert.match(r.stderr, /above --max-error-rate 10\.0%: stopping the sweep/);
    assert.match(r.stdout, /32 users\s+(-\s+)+not run/);
  });

  it("cicada report renders a saved sweep: the same HTML page, and JUnit of its verdict and levels", async () => {
    // 1 user never meets a full server; 16 users meet 503s on /reject, an error rate above 10 %,
    // so the sweep stops there and the third level is not run.
    const r = await runCli(
      [
        "sweep",
        "loadtest.ts",
        "-H",
        server.url,
        "--concurrency",
        "1,16,32",
        "--max-error-rate",
        "10%",
        ...SHORT,
        "--json",
        "rep.json",
        "--html",
        "rep-live.html",
        "--junit",
        "rep-live.xml",
      ],
      { cwd: project.dir, env: { SWEEP_PATH: "/reject" }, timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const res = readJson<SweepResult>(join(project.dir, "rep.json"));
    assert.deepEqual(
      res.sweep.levels.map((l) => l.status),
      ["ran", "ran", "not-run"],
    );

    const later = await runCli(["report", "rep.json", "--html", "rep-later.html", "--junit", "rep.xml"], {
      cwd: project.dir,
    });
    assert.equal(later.code, 0, later.stderr);
    assert.match(later.stderr, /HTML report written to rep-later\.html/);
    assert.match(later.stderr, /JUnit XML written to rep\.xml/);
    const live = readFileSync(join(project.dir, "rep-live.html"), "utf8");
    assert.match(live, /id="sweep-data"/);
    assert.equal(
      readFileSync(join(project.dir, "rep-later.html"), "utf8"),
      live,
      "the page sweep --html wrote, from the saved JSON",
    );

    const xml = readFileSync(join(project.dir, "rep.xml"), "utf8");
    // `sweep --junit` writes the same XML as `report --junit` does later from its JSON.
    assert.equal(readFileSync(join(project.dir, "rep-live.xml"), "utf8"), xml);
    const cases = junitCases(xml);
    assert.deepEqual(
      cases.map((c) => [c.classname, c.name, c.outcome]),
      [
        ["cicada.sweep", "verdict", "passed"],
        ["cicada.sweep.levels", "level 1: 1 user", "passed"],
        ["cicada.sweep.levels", "level 2: 16 users", "passed"],
        ["cicada.sweep.levels", "level 3: 32 users", "skipped"],
      ],
      xml,
    );
    assert.match(cases[0]!.text, /Capacity estimate: /);
    // The level over --max-error-rate says so in its output; only the verdict may fail.
    assert.match(
      cases[2]!.text,
      /Over what the sweep judges by: error rate \d+\.\d% above --max-error-rate 10\.0%/,
    );
    assert.match(cases[3]!.message, /not run: the sweep stopped early \(max-error-rate\)/);
    assert.match(xml, /<testsuites name="cicada" tests="4" failures="0" errors="0"/);

    // A sweep is not a run: commands that need a run's result say so.
    for (const args of [
      ["compare", "rep.json", "rep.json"],
      ["baseline", "save", "rep.json", "--name", "sweep"],
    ]) {
      const bad = await runCli(args, { cwd: project.dir });
      assert.equal(bad.code, 2, `${args.join(" ")}: ${bad.stderr}`);
      assert.match(bad.stderr, /rep\.json is a sweep result \(from cicada sweep --json\), not a run result/);
      assert.doesNotMatch(bad.stderr, /no endpoints/);
    }
    assert.ok(!existsSync(join(project.dir, ".cicada")), "no baseline was saved");

    // Neither a run's nor a sweep's: one error naming the file.
    writeFileSync(join(project.dir, "other.json"), '{"tool": "cicada", "version": "1"}');
    writeFileSync(join(project.dir, "broken.json"), '{"tool": "cicada", "sweep": {"mode": "auto"}}');
    writeFileSync(join(project.dir, "notes.json"), '{"name": "x"}');
    for (const [file, re] of [
      ["other.json", /other\.json is not a Cicada result: it has neither "endpoints" .* nor "sweep"/],
      ["broken.json", /broken\.json is not a valid Cicada sweep result/],
      ["notes.json", /notes\.json is not a Cicada result: no "tool": "cicada"/],
    ] as const) {
      const bad = await runCli(["report", file, "--junit", "x.xml"], { cwd: project.dir });
      assert.equal(bad.code, 2, `${file}: ${bad.stderr}`);
      assert.match(bad.stderr, re);
      assert.ok(!existsSync(join(project.dir, "x.xml")));
    }
  });

  it("--stop-on-saturation stops at the first level whose queue and latency keep climbing", async () => {
    // 40/s is half the capacity: latency stays level. 250/s is three times it: the queue, and so
    // the latency and the requests in flight, grow every second.
    const r = await runCli(
      [
        "sweep",
        "loadtest.ts",
        "-H",
        server.url,
        "--rates",
        "40,250,300",
        "--max-users",
        "3000",
        "--stop-on-saturation",
        "--step-time",
        "12s",
        "--warmup",
        "1s",
        "--processes",
        "1",
        "--json",
        "sat.json",
      ],
      { cwd: project.dir, timeoutMs: 90_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    const res = readJson<SweepResult>(join(project.dir, "sat.json"));
    const [a, b, c] = res.sweep.levels;
    const seen = JSON.stringify(res.sweep.levels.map(({ result: _r, ...l }) => l));
    assert.equal(a!.status, "ran", seen);
    assert.equal(a!.saturated, undefined, seen);
    assert.equal(b!.status, "stopped", seen);
    assert.equal(b!.saturated, true, seen);
    // The test needs 5 rows of the level and a significant climb: on a quiet machine it stops the
    // level after about 6 s; a busy one (CI runs two test files at once) may take longer.
    assert.ok(b!.durationSec < 11, `the saturated level ran ${b!.durationSec}s of its 12s`);
    assert.equal(c!.status, "not-run", seen);
    assert.equal(res.sweep.stoppedBy, "saturation", seen);
    assert.match(r.stderr, /level 2 is over-saturated: stopping the sweep/);
  });

  it("a warning about the classes is said once for the sweep, not once per level", async () => {
    const pooled = tempProject({
      "loadtest.ts": LOADFILE.replace(
        "export class Worker extends HttpUser {",
        'export class Worker extends HttpUser {\n  static sourceAddresses = ["127.0.0.1"];',
      ),
    });
    try {
      const r = await runCli(
        [
          "sweep",
          "loadtest.ts",
          "-H",
          server.url,
          "--concurrency",
          "1,2",
          ...SHORT,
          "--http-engine",
          "undici",
        ],
        { cwd: pooled.dir, timeoutMs: 60_000 },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^\s*2\s+2 users\s+\d+\s+100\.0%/m);
      assert.deepEqual(
        r.stderr.split("\n").filter((l) => l.startsWith("warning:")),
        [
          'warning: Worker.sourceAddresses = ["127.0.0.1"] is ignored on the undici engine (--http-engine undici): connections go out from the default source address; the setting needs the fast engine',
        ],
      );
    } finally {
      pooled.cleanup();
    }
  });

  it("exits 3 when the --max-p95 SLO is met at no level", async () => {
    const r = await runCli(
      [
        "sweep",
        "loadtest.ts",
        "-H",
        server.url,
        "--concurrency",
        "1,2",
        "--max-p95",
        "5ms",
        ...SHORT,
        "--json",
        "slo.json",
      ],
      { cwd: project.dir, timeoutMs: 60_000 },
    );
    assert.equal(r.code, 3, r.stderr);
    const res = readJson<SweepResult>(join(project.dir, "slo.json"));
    assert.deepEqual(
      res.sweep.levels.map((l) => l.sloMet),
      [false, false],
    );
    assert.equal(res.sweep.slo?.max, null);
    assert.match(r.stdout, /SLO \(p95<5ms\) not met at any level/);
    // Its JUnit: the verdict fails with the exit code; each level that missed the SLO says so.
    const rep = await runCli(["report", "slo.json", "--junit", "slo.xml"], { cwd: project.dir });
    assert.equal(rep.code, 0, rep.stderr);
    const xml = readFileSync(join(project.dir, "slo.xml"), "utf8");
    const cases = junitCases(xml);
    assert.deepEqual(
      cases.map((c) => [c.name, c.outcome]),
      [
        ["verdict", "failed"],
        ["level 1: 1 user", "passed"],
        ["level 2: 2 users", "passed"],
      ],
      xml,
    );
    assert.equal(cases[0]!.message, "exit code 3: SLO (p95&lt;5ms) not met at any level");
    for (const c of cases.slice(1))
      assert.match(c.text, /Over what the sweep judges by: SLO \(p95&lt;5ms\) missed: p95 \d/);
  });

  it("bad input exits 2 naming what was written", async () => {
    const cases: Array<[string[], RegExp]> = [
      [
        ["--concurrency", "10,abc,50"],
        /--concurrency: expected a list of user counts.*"abc" is not an integer ≥ 1/,
      ],
      [["--concurrency", "10,0"], /--concurrency: .*"0" is not an integer ≥ 1/],
      [["--rates", "10,fast"], /--rates: expected a list of rates.*"fast" is not a number > 0/],
      [["--rates", "auto", "--sweep-size", "2"], /--sweep-size: expected an integer ≥ 3, got "2"/],
      [
        ["--concurrency", "1,2", "--max-error-rate", "150%"],
        /--max-error-rate: expected a share such as 0\.05 or 5%, got "150%"/,
      ],
      [["--concurrency", "1,2", "--slo", "ttft<fast"], /--slo: expected bounds .* got "ttft<fast"/],
      [["--concurrency", "1", "--rates", "5"], /give --concurrency or --rates, not both/],
      [[], /nothing to sweep: give --concurrency LIST/],
      [["--concurrency", "1", "--step-time", "0s"], /--step-time: must be more than 0, got "0s"/],
      [["--concurrency", "1", "--sweep-size", "5"], /--sweep-size goes with --rates auto/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(["sweep", "loadtest.ts", "-H", server.url, ...args], { cwd: project.dir });
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(" "));
      assert.equal(server.total() >= 0, true);
    }
  });

  it("exits 1 when no level completed a successful request", async () => {
    // Accepts the connection, reads the request, never answers.
    const silent = await startServer(() => {});
    try {
      const r = await runCli(
        [
          "sweep",
          "loadtest.ts",
          "-H",
          silent.url,
          "--concurrency",
          "1,2",
          "--step-time",
          "1s",
          "--warmup",
          "0",
          "--processes",
          "1",
          "--json",
          "none.json",
        ],
        { cwd: project.dir, timeoutMs: 60_000 },
      );
      assert.equal(r.code, 1, r.stderr);
      const res = readJson<SweepResult>(join(project.dir, "none.json"));
      assert.deepEqual(
        res.sweep.levels.map((l) => [l.status, l.requests]),
        [
          ["ran", 0],
          ["ran", 0],
        ],
      );
      assert.equal(res.sweep.capacity, null);
      assert.ok(silent.total() > 0, "the requests were sent");
    } finally {
      await silent.close();
    }
  });

  it("exits 4 when the target is unreachable, before any level", async () => {
    const closed = await startServer((_q, s) => s.end());
    const url = closed.url;
    await closed.close();
    const r = await runCli(["sweep", "loadtest.ts", "-H", url, "--concurrency", "1,2", ...SHORT], {
      cwd: project.dir,
    });
    assert.equal(r.code, 4, r.stderr);
    assert.doesNotMatch(r.stderr, /sweep: level 1/);
  });
});

const CHAT_LOADFILE = `import { HttpUser, task } from "cicada-load";
export class Chat extends HttpUser {
  @task async chat() {
    await this.client.sse("/v1/chat/completions", { json: { stream: true }, tokens: "openai" });
  }
}
`;

describe("cicada sweep of a stream", () => {
  it("shows TTFT per level from the endpoints' ttft metric", async () => {
    const chunk = (content: string) =>
      `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content } }] })}\n\n`;
    // The first token after 40 ms, then four more 5 ms apart.
    const server = await startServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      res.flushHeaders();
      let n = 0;
      const tick = () => {
        res.write(chunk(`t${n} `));
        if (++n < 5) setTimeout(tick, 5);
        else res.end("data: [DONE]\n\n");
      };
      setTimeout(tick, 40);
    });
    const project = tempProject({ "loadtest.ts": CHAT_LOADFILE });
    try {
      const r = await runCli(
        [
          "sweep",
          "loadtest.ts",
          "-H",
          server.url,
          "--concurrency",
          "1,2",
          "--step-time",
          "1s",
          "--warmup",
          "0",
          "--processes",
          "1",
          "--json",
          "chat.json",
        ],
        { cwd: project.dir, timeoutMs: 60_000 },
      );
      assert.equal(r.code, 0, r.stderr);
      const res = readJson<SweepResult>(join(project.dir, "chat.json"));
      for (const l of res.sweep.levels) {
        assert.ok(l.requests > 0);
        assert.ok(l.ttftMs && l.ttftMs.p50 >= 38 && l.ttftMs.p50 < l.latencyMs.p50, JSON.stringify(l.ttftMs));
        assert.ok(l.ttftMs.p95 >= l.ttftMs.p50);
      }
      assert.match(r.stdout, /RPS\s+TTFT p50\s+TTFT p95/);
    } finally {
      await server.close();
      project.cleanup();
    }
  });
});

describe("sweep()", () => {
  it("runs from a script and resolves to the levels, the knee and the capacity; nothing printed", async () => {
    const server = await capacityServer();
    const project = tempProject({
      "loadtest.ts": LOADFILE,
      "script.mjs": `import { sweep } from ${JSON.stringify(INDEX)};
const r = await sweep({ loadfile: "loadtest.ts", host: ${JSON.stringify(server.url)}, concurrency: [1, 4, 16], stepTime: 1, warmup: 0.5, html: "s.html" });
process.stdout.write(JSON.stringify({ exitCode: r.exitCode, levels: r.sweep.levels.map((l) => [l.load, l.status, l.requests > 0]), knee: r.sweep.knee?.load ?? null, capacity: r.sweep.capacity?.rps ?? null }) + "\\n");
`,
    });
    try {
      const child = spawn(process.execPath, ["script.mjs"], {
        cwd: project.dir,
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => {
        stdout += d;
      });
      child.stderr.on("data", (d) => {
        stderr += d;
      });
      const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
      const code = await new Promise<number | null>((r) => child.on("close", (c) => r(c)));
      clearTimeout(killer);
      assert.equal(code, 0, `stdout: ${stdout}\nstderr: ${stderr}`);
      assert.equal(stderr, "");
      const out = JSON.parse(stdout);
      assert.equal(out.exitCode, 0);
      assert.deepEqual(out.levels, [
        [1, "ran", true],
        [4, "ran", true],
        [16, "ran", true],
      ]);
      assert.ok([1, 4, 16].includes(out.knee), `knee ${out.knee}`);
      assert.ok(out.capacity > CAPACITY * 0.4 && out.capacity <= CAPACITY * 1.15, `capacity ${out.capacity}`);
      assert.ok(existsSync(join(project.dir, "s.html")));
    } finally {
      await server.close();
      project.cleanup();
    }
  });

  it("rejects bad options with a UsageError naming them", async () => {
    const { sweep, UsageError } = await import("../src/index.js");
    await assert.rejects(sweep({ loadfile: "x.ts", concurrency: [1, -2] } as never), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match((e as Error).message, /sweep\(\): concurrency: .*-2 is not an integer ≥ 1/);
      return true;
    });
    await assert.rejects(
      sweep({ loadfile: "x.ts", concurency: [1] } as never),
      /unknown option "concurency"/,
    );
  });
});
