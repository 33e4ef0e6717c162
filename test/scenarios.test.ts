/** Several scenarios in one run, each with its own classes, model, offset and duration. */
import assert from "node:assert/strict";
import type { IncomingMessage } from "node:http";
import { describe, it } from "node:test";
import { renderHtmlReport } from "../src/outputs/html/report.js";
import type { RunResult, ScenarioResult } from "../src/result/result.js";
import { describeRun, runCli, runLoad, startServer, tempProject } from "./helpers.js";

/** A server that notes when each path was first and last hit, and which user ids it saw. */
async function timedServer() {
  const seen = new Map<string, number[]>();
  const userIds = new Map<string, Set<string>>();
  const server = await startServer((req: IncomingMessage, res) => {
    const path = (req.url ?? "").split("?")[0]!;
    const times = seen.get(path) ?? [];
    times.push(Date.now());
    seen.set(path, times);
    const id = req.headers["x-user"];
    if (typeof id === "string") {
      const ids = userIds.get(path) ?? new Set();
      ids.add(id);
      userIds.set(path, ids);
    }
    setTimeout(() => res.end("ok"), 3);
  });
  return { ...server, seen, userIds };
}

const CLASSES = `
import { HttpUser, LoadShape, type ShapeTick, task, constant } from "cicada-load";
export class Browser extends HttpUser {
  static waitTime = constant(0.05);
  @task browse() { return this.client.get("/browse", { headers: { "x-user": String(this.userId) } }); }
}
export class Buyer extends HttpUser {
  @task buy() { return this.client.get("/buy", { headers: { "x-user": String(this.userId) } }); }
}
export class OneBurst extends LoadShape {
  private fired = false;
  tick(t: number): ShapeTick | null {
    if (t >= 1.5) return null;
    if (this.fired) return { rate: 0 };
    this.fired = true;
    return { burst: 30 };
  }
}
`;

function loadfile(scenarios: string): string {
  return `${CLASSES}\nexport const options = { scenarios: ${scenarios} };\n`;
}

function scenario(r: RunResult, name: string): ScenarioResult {
  const s = r.scenarios?.find((x) => x.name === name);
  assert.ok(s, `no scenario ${name} in ${JSON.stringify(r.scenarios?.map((x) => x.name))}`);
  return s;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

describe("scenarios", () => {
  it("runs a closed and an open scenario side by side, the second from its offset for its duration", async (ctx) => {
    const server = await timedServer();
    try {
      const run = await runLoad(
        loadfile(`{
          browse: { userClasses: ["Browser"], users: 3, spawnRate: 100 },
          buy: { userClasses: ["Buyer"], rate: 20, startTime: "1s", duration: "2s", maxUsers: 20 },
        }`),
        ["-H", server.url, "-t", "5s", "-s", "2"],
      );
      const r = run.result;
      assert.equal(run.code, 0, describeRun(run));
      assert.deepEqual(
        r.scenarios?.map((s) => s.name),
        ["browse", "buy"],
      );
      assert.equal(r.config.model, "mixed");
      const browse = scenario(r, "browse");
      const buy = scenario(r, "buy");

      // Each scenario ran only its own classes.
      assert.deepEqual(
        browse.endpoints.map((e) => e.name),
        ["/browse"],
      );
      assert.deepEqual(
        buy.endpoints.map((e) => e.name),
        ["/buy"],
      );
      assert.equal(browse.model, "closed");
      assert.equal(buy.model, "open");
      assert.equal(browse.users.peak, 3);

      // The open scenario started 20/s for 2 s: 40 arrivals, all of which reached the server.
      // Timers on a loaded 2-core machine may stretch the 2 s by a little: within 5 %.
      assert.ok(Math.abs(buy.totals.iterations - 40) <= 2, `buy iterations ${buy.totals.iterations}`);
      assert.equal(buy.totals.droppedIterations, 0);
      assert.equal(server.counts.get("GET /buy"), buy.totals.requests + buy.totals.cancelled);
      assert.equal(server.counts.get("GET /browse"), browse.totals.requests + browse.totals.cancelled);
      assert.equal(buy.stopReason, "run-time");
      assert.ok(buy.durationSec >= 1.9 && buy.durationSec <= 2.5, `buy lasted ${buy.durationSec}s`);

      // It started about 1 s after the first scenario, and stopped about 2 s later.
      const browseTimes = server.seen.get("/browse")!;
      const buyTimes = server.seen.get("/buy")!;
      const startGap = buyTimes[0]! - browseTimes[0]!;
      ctx.diagnostic(
        `buy: startOffsetSec ${buy.startOffsetSec}, first request ${startGap} ms after browse's`,
      );
      // A later scenario's workers load from the run's start and wait, so it starts at its offset
      // even on a busy machine, not the offset plus their start-up.
      assert.ok(startGap >= 900 && startGap <= 1300, `buy started ${startGap} ms after browse`);
      const buySpan = buyTimes[buyTimes.length - 1]! - buyTimes[0]!;
      assert.ok(buySpan >= 1700 && buySpan <= 2300, `buy arrivals spanned ${buySpan} ms`);
      assert.ok(buy.startOffsetSec !== null && buy.startOffsetSec >= 0.9 && buy.startOffsetSec <= 1.2);
      // Browsing went on after the buy scenario ended.
      assert.ok(browseTimes[browseTimes.length - 1]! - buyTimes[buyTimes.length - 1]! > 500);

      // The run's figures are the exact sum of the scenarios'.
      assert.equal(r.totals.requests, browse.totals.requests + buy.totals.requests);
      assert.equal(r.totals.iterations, browse.totals.iterations + buy.totals.iterations);
      assert.deepEqual(r.endpoints.map((e) => e.name).sort(), ["/browse", "/buy"]);
      assert.equal(sum(r.series.map((x) => x.requests)), r.totals.requests);
      assert.equal(sum(browse.series.map((x) => x.requests)), browse.totals.requests);
      assert.equal(sum(buy.series.map((x) => x.requests)), buy.totals.requests);
      assert.ok(buy.series.length >= 2 && buy.series.length <= 4, `buy has ${buy.series.length} rows`);
      assert.ok(r.series.length >= 4, `run has ${r.series.length} rows`);

      // User ids are unique across the scenarios, as they are across workers.
      const ids = [...server.userIds.get("/browse")!, ...server.userIds.get("/buy")!];
      assert.equal(new Set(ids).size, ids.length, `user ids repeat: ${ids.join(",")}`);

      assert.match(run.stdout, /Scenarios/);
      assert.match(run.stdout, /^buy\s+open\s/m);
    } finally {
      await server.close();
    }
  });

  it("--scenario picks scenarios; a LoadShape drives a scenario by name; its burst is judged in run time", async () => {
    const server = await timedServer();
    try {
      const run = await runLoad(
        loadfile(`{
          browse: { userClasses: ["Browser"], users: 2 },
          spike: { userClasses: ["Buyer"], shape: "OneBurst", maxUsers: 50, startTime: "1s" },
          other: { userClasses: ["Buyer"], rate: 5 },
        }`),
        [
          "-H",
          server.url,
          "-t",
          "4s",
          "-s",
          "2",
          "--scenario",
          "spike,browse",
          "--threshold",
          "recovery<10s",
        ],
      );
      const r = run.result;
      // The run's soak verdicts time the scenario's burst, at its run time, whatever the target did.
      const rec = r.soak?.recovery.find((x) => x.cause === "burst");
      const spikeRun = scenario(r, "spike");
      assert.ok(rec && spikeRun.startOffsetSec !== null, JSON.stringify(r.soak?.recovery));
      assert.equal(rec.count, 30);
      assert.equal(rec.t, Math.round((spikeRun.startOffsetSec + spikeRun.bursts![0]!.t) * 10) / 10);
      const th = r.thresholds?.find((x) => x.metric === "recovery");
      assert.ok(th, JSON.stringify(r.thresholds));
      assert.notEqual(th.note, "no bursts or steps up to recover from");
      assert.equal(th.value, rec.recoverySec);
      assert.equal(run.code, th.passed ? 0 : 3, describeRun(run));
      assert.equal(r.bursts, undefined, "a run with scenarios lists its bursts per scenario");
      // The report's Bursts table has it at its run time, with its scenario and the same recovery.
      const row = /<table id="bursts">[\s\S]*?<tbody><tr>(.*?)<\/tr>/.exec(renderHtmlReport(r));
      assert.ok(row, "a Bursts table");
      assert.match(row[1]!, new RegExp(`>${rec.t.toFixed(1)} s<.*<td>spike</td>.*>30<`));
      assert.match(row[1]!, new RegExp(rec.recoverySec === null ? ">never<" : `>${rec.recoverySec} s<`));
      assert.ok(
        run.stdout.includes(
          `Burst of 30 in scenario spike at ${spikeRun.bursts![0]!.t}s: ${rec.recoverySec === null ? "the target had not" : `recovered after ${rec.recoverySec}s`}`,
        ),
        run.stdout,
      );
      assert.deepEqual(
        r.scenarios?.map((s) => s.name),
        ["spike", "browse"],
      );
      const spike = scenario(r, "spike");
      assert.equal(spike.totals.requests, 30);
      assert.equal(server.counts.get("GET /buy"), 30, "the unpicked scenario did not run");
      assert.equal(spike.stopReason, "shape");
      assert.equal(spike.bursts?.length, 1);
      assert.equal(spike.bursts?.[0]?.count, 30);
      assert.equal(spike.config.shape, "OneBurst");
      // The shape ended its scenario; the other ran to the run's end.
      assert.equal(scenario(r, "browse").stopReason, "run-time");
      assert.equal(r.stopReason, "run-time");
    } finally {
      await server.close();
    }
  });

  it("each scenario has its own soak verdicts: its plan's steady part, its time; the summary shows what is worth a look", async () => {
    // /slow gets slower the longer the run goes (2 ms, then 3 ms more each second from its first
    // request); /flat does not.
    let t0 = 0;
    const server = await startServer((req, res) => {
      if (t0 === 0) t0 = Date.now();
      const extra = req.url?.startsWith("/slow") ? 3 * Math.floor((Date.now() - t0) / 1000) : 0;
      setTimeout(() => res.end("ok"), 2 + extra);
    });
    try {
      const run = await runLoad(
        `
import { HttpUser, task, constant } from "cicada-load";
export class Slow extends HttpUser {
  static waitTime = constant(0.05);
  @task hit() { return this.client.get("/slow"); }
}
export class Flat extends HttpUser {
  static waitTime = constant(0.05);
  @task hit() { return this.client.get("/flat"); }
}
export const options = { scenarios: {
  slowing: { userClasses: ["Slow"], users: 2, spawnRate: 100 },
  flat: { userClasses: ["Flat"], users: 2, spawnRate: 100, startTime: "1s" },
} };
`,
        ["-H", server.url, "-t", "10s"],
      );
      assert.equal(run.code, 0, describeRun(run));
      const r = run.result;
      // The run's own verdicts take the whole run; a scenario's, its users' steady part.
      assert.equal(r.soak?.steady?.basis, "run");
      const slowing = scenario(r, "slowing");
      const flat = scenario(r, "flat");
      assert.equal(slowing.soak?.steady?.basis, "users", JSON.stringify(slowing.soak));
      assert.equal(slowing.soak.steady.level, 2);
      assert.ok(slowing.soak.steady.toSec <= slowing.durationSec + 0.5, JSON.stringify(slowing.soak.steady));
      const d = slowing.soak.degradation;
      assert.ok(d && d.p95ChangePct !== null && d.p95ChangePct >= 50, JSON.stringify(d));
      assert.ok(flat.soak?.steady && flat.soak.steady.toSec <= flat.durationSec + 0.5);
      // The scenario that slowed down is worth a look; a scenario's block holds flagged lines only
      // (whether the flat one shows depends on a 2 ms target's noise, so it is not asserted).
      const block =
        /Soak verdicts of scenario slowing, worth a look \(times from its start\)\n((?: {2}.*\n)+)/.exec(
          run.stdout,
        );
      assert.ok(block, run.stdout);
      assert.match(block[1]!, /^ {2}! degradation/m);
      for (const line of block[1]!.trimEnd().split("\n")) assert.match(line, /^ {2}! /);
      // The report lists the same, under the run's verdicts.
      const html = renderHtmlReport(r);
      assert.match(
        html,
        /id="soak-section"[\s\S]*<h3>Scenario slowing \(times from its start\)<\/h3><table class="soak-scenario" data-scenario="slowing">[\s\S]*?data-soak="degradation" class="failed"/,
      );
    } finally {
      await server.close();
    }
  });

  it("a scenario due more than 10 s in starts its threads ahead too, and starts at its offset", async () => {
    const server = await timedServer();
    try {
      const run = await runLoad(
        loadfile(`{
          now: { userClasses: ["Browser"], users: 1 },
          much_later: { userClasses: ["Buyer"], rate: 10, startTime: "11s", duration: "1s" },
        }`),
        ["-H", server.url, "-t", "12.5s"],
      );
      assert.equal(run.code, 0, describeRun(run));
      const late = scenario(run.result, "much_later");
      assert.ok(
        late.startOffsetSec !== null && late.startOffsetSec >= 10.9 && late.startOffsetSec <= 11.2,
        `started at ${late.startOffsetSec} s`,
      );
      assert.equal(late.stopReason, "run-time");
      assert.equal(server.counts.get("GET /buy"), late.totals.requests + late.totals.cancelled);
      // Its threads counted seconds while they waited: the run's series still has every request.
      assert.equal(sum(run.result.series.map((x) => x.requests)), run.result.totals.requests);
      assert.equal(sum(late.series.map((x) => x.requests)), late.totals.requests);
      assert.ok(
        late.series.every((x) => x.t >= 0 && x.t <= 1.5),
        `its rows count from its start: ${JSON.stringify(late.series.map((x) => x.t))}`,
      );
    } finally {
      await server.close();
    }
  });

  it("scenario:NAME thresholds judge one scenario's own books; a name that does not run is exit 2", async () => {
    const server = await startServer((req, res) => {
      setTimeout(() => res.end("ok"), req.url?.startsWith("/buy") ? 60 : 1);
    });
    try {
      const run = await runLoad(
        loadfile(`{
          browse: { userClasses: ["Browser"], users: 2 },
          buy: { userClasses: ["Buyer"], users: 2 },
          never: { userClasses: ["Buyer"], users: 1, startTime: "30s" },
        }`),
        [
          "-H",
          server.url,
          "-t",
          "2s",
          "--threshold",
          "scenario:browse p95<40",
          "--threshold",
          "scenario:buy p95<40",
          "--threshold",
          "scenario:buy GET /buy: error_rate<1%",
          "--threshold",
          "scenario:never requests>0",
        ],
      );
      const th = (expr: string) => {
        const t = run.result.thresholds?.find((x) => x.expr === expr);
        assert.ok(t, `${expr} in ${JSON.stringify(run.result.thresholds)}`);
        return t;
      };
      assert.equal(run.code, 3, describeRun(run));
      const browse = scenario(run.result, "browse");
      const buy = scenario(run.result, "buy");
      assert.equal(th("scenario:browse p95<40").value, browse.totals.latencyMs.p95);
      assert.equal(th("scenario:browse p95<40").passed, true);
      assert.equal(th("scenario:buy p95<40").value, buy.totals.latencyMs.p95);
      assert.equal(th("scenario:buy p95<40").passed, false);
      assert.equal(th("scenario:buy GET /buy: error_rate<1%").scope, "scenario:buy GET /buy");
      assert.equal(th("scenario:buy GET /buy: error_rate<1%").passed, true);
      const never = th("scenario:never requests>0");
      assert.deepEqual(
        [never.value, never.passed, never.note],
        [null, false, 'scenario "never" has not started'],
      );

      const project = tempProject({
        "loadtest.ts": loadfile(
          `{ browse: { userClasses: ["Browser"], users: 1 }, buy: { userClasses: ["Buyer"], users: 1 } }`,
        ),
      });
      try {
        const typo = await runCli(
          ["run", "loadtest.ts", "--headless", "-H", server.url, "--threshold", "scenario:brwse p95<40"],
          { cwd: project.dir },
        );
        assert.equal(typo.code, 2, describeRun(typo));
        assert.match(
          typo.stderr,
          /threshold "scenario:brwse p95<40": no scenario "brwse" runs \(scenarios: browse, buy\)/,
        );
      } finally {
        project.cleanup();
      }
    } finally {
      await server.close();
    }
  });

  it("a scenario whose start comes after the end of the run never starts; scenarios that all end end the run", async () => {
    const server = await timedServer();
    try {
      const late = await runLoad(
        loadfile(`{
          now: { userClasses: ["Browser"], users: 1, duration: "1s" },
          later: { userClasses: ["Buyer"], users: 1, startTime: "30s" },
        }`),
        ["-H", server.url, "-t", "2s"],
      );
      assert.equal(late.code, 0, describeRun(late));
      const later = scenario(late.result, "later");
      assert.equal(later.stopReason, "not-started");
      assert.equal(later.startOffsetSec, null);
      assert.equal(later.totals.requests, 0);
      assert.equal(server.counts.get("GET /buy"), undefined);
      assert.ok(late.result.durationSec < 3, `ran ${late.result.durationSec}s`);

      // Without a run time, the run lasts until its last scenario ends.
      const both = await runLoad(
        loadfile(`{
          a: { userClasses: ["Browser"], users: 1, duration: "1s" },
          b: { userClasses: ["Buyer"], rate: 10, startTime: "0.5s", duration: "1s" },
        }`),
        ["-H", server.url],
      );
      assert.equal(both.code, 0, describeRun(both));
      assert.equal(both.result.stopReason, "scenarios");
      assert.ok(
        both.result.durationSec >= 1.4 && both.result.durationSec < 3,
        `ran ${both.result.durationSec}s`,
      );
      // R·T precision is the open-model test's business; here the scenario must have run its second.
      const b = scenario(both.result, "b").totals.iterations;
      assert.ok(b >= 8 && b <= 12, `scenario b started ${b} iterations, expected about 10`);
    } finally {
      await server.close();
    }
  });

  it("rejects bad scenario settings with one clear message and exit code 2", async () => {
    const server = await timedServer();
    try {
      const cases: Array<[string, string[], RegExp]> = [
        [
          `{ a: { userClasses: ["Browser"], startTIme: "1s" } }`,
          [],
          /loadtest\.ts: options\.scenarios\.a: unknown setting "startTIme" \(did you mean "startTime"\?\)/,
        ],
        [`{ a: { userClasses: ["Nobody"] } }`, [], /scenario "a":.*Nobody/],
        [`{ a: { userClasses: ["Buyer"], shape: "Nope" } }`, [], /scenario "a": shape "Nope".*OneBurst/],
        [
          `{ a: { userClasses: ["Buyer"], startTime: "soon" } }`,
          [],
          /options\.scenarios\.a\.startTime: expected a duration/,
        ],
        [
          `{ a: { userClasses: ["Buyer"], users: 0 } }`,
          [],
          /options\.scenarios\.a\.users: expected an integer ≥ 1/,
        ],
        [`{ a: { userClasses: ["Buyer"] } }`, ["-u", "5"], /-u\/--users does not apply .*scenarios/],
        [`{ a: { userClasses: ["Buyer"] } }`, ["--scenario", "b"], /no scenario "b"; defined: a/],
      ];
      for (const [scenarios, args, message] of cases) {
        const project = tempProject({ "loadtest.ts": loadfile(scenarios) });
        try {
          const r = await runCli(
            ["run", "--headless", "loadtest.ts", "-H", server.url, "-t", "1s", ...args],
            {
              cwd: project.dir,
            },
          );
          assert.equal(r.code, 2, `${scenarios} ${args.join(" ")}: ${describeRun(r)}`);
          assert.match(r.stderr, message);
          assert.ok(!/at .*\.js:\d+/.test(r.stderr), `a stack trace leaked: ${r.stderr}`);
        } finally {
          project.cleanup();
        }
      }
      assert.equal(server.total(), 0, "nothing ran");
    } finally {
      await server.close();
    }
  });
});
