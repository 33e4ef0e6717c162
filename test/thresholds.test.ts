/** Thresholds, checks, accepted status codes, JUnit output and findings, against real servers. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { XMLParser, XMLValidator } from "fast-xml-parser";
import { latencyTrend, recommend, spearman } from "../src/result/recommendations.js";
import type { RunResult } from "../src/result/result.js";
import { parseThreshold } from "../src/thresholds/parse.js";
import { describeRun, runCli, runLoad, startServer, tempProject } from "./helpers.js";

describe("threshold expressions", () => {
  it("parses scopes, metrics, units and options", () => {
    const p95 = parseThreshold("p95<500");
    assert.deepEqual(p95.scope, { kind: "all" });
    assert.equal(p95.metricText, "p95");
    assert.equal(p95.op, "<");
    assert.equal(p95.target, 500);

    const ep = parseThreshold("POST /api/v1/agents/invoke: p99<1s");
    assert.deepEqual(ep.scope, { kind: "endpoint", selector: "POST /api/v1/agents/invoke" });
    assert.equal(ep.metricText, "p99");
    assert.equal(ep.target, 1000);

    const er = parseThreshold("error_rate<1%");
    assert.equal(er.metric.kind, "error_rate");
    assert.equal(er.target, 0.01);
    assert.equal(parseThreshold("error_rate<=0.05").target, 0.05);

    const rps = parseThreshold("rps>100");
    assert.equal(rps.metric.kind, "rps");
    assert.equal(rps.op, ">");

    const tag = parseThreshold("tag:checkout p95<300");
    assert.deepEqual(tag.scope, { kind: "tag", tag: "checkout" });
    assert.equal(tag.metricText, "p95");

    const ttfb = parseThreshold("GET /a:b: ttfb p99.9 <= 20ms");
    assert.deepEqual(ttfb.scope, { kind: "endpoint", selector: "GET /a:b" });
    assert.equal(ttfb.metricText, "ttfb_p99.9");
    assert.equal(ttfb.op, "<=");
    assert.equal(parseThreshold("p(95)<5").metricText, "p95");
    assert.equal(parseThreshold("med<5").metricText, "p50");
    assert.equal(parseThreshold("avg<5").metricText, "mean");

    const checks = parseThreshold("checks>99%");
    assert.equal(checks.metric.kind, "checks");
    assert.equal(checks.target, 0.99);
    const one = parseThreshold("check:has id: rate>=99.5%");
    assert.deepEqual(one.scope, { kind: "check", name: "has id" });

    const sc = parseThreshold("scenario:checkout p95<300");
    assert.equal(sc.scenario, "checkout");
    assert.deepEqual(sc.scope, { kind: "all" });
    assert.equal(sc.scopeText, "scenario:checkout");
    const scEp = parseThreshold("scenario:checkout GET /cart: p99<1s");
    assert.equal(scEp.scenario, "checkout");
    assert.deepEqual(scEp.scope, { kind: "endpoint", selector: "GET /cart" });
    assert.equal(scEp.scopeText, "scenario:checkout GET /cart");
    assert.equal(scEp.target, 1000);
    const scTag = parseThreshold("scenario:checkout tag:pay error_rate<1%");
    assert.deepEqual([scTag.scenario, scTag.scope], ["checkout", { kind: "tag", tag: "pay" }]);
    assert.equal(parseThreshold("scenario:spike recovery<5s").scenario, "spike");
    assert.equal(parseThreshold("scenario:spike: p95<5").scenario, "spike");

    const abort = parseThreshold("error_rate<5% abortOnFail delayAbortEval=10s");
    assert.equal(abort.abortOnFail, true);
    assert.equal(abort.delayAbortSec, 10);
    const obj = parseThreshold({ threshold: "p95<100", abortOnFail: true, delayAbortEval: "1m" });
    assert.equal(obj.abortOnFail, true);
    assert.equal(obj.delayAbortSec, 60);
  });

  it("rejects bad expressions with a message that says what is wrong", () => {
    const cases: Array<[string, RegExp]> = [
      ["p95", /expected "\[scope:\] metric <op> value"/],
      ["latency<5", /unknown metric "latency"/],
      ["p95<5%", /latency takes ms or s/],
      ["error_rate<5", /more than 1: write a percentage/],
      ["p101<5", /percentile must be in/],
      ["p95<5 abortOnFial", /unknown option "abortOnFial"/],
      ["check:x: p95<5", /check: scope takes the checks/],
      ["rps>5ms", /rps takes a plain number/],
      ["scenario: p95<5", /scenario: needs a scenario name/],
      ["scenario:a target_cpu<80%", /the machine's, measured over the whole run; it takes no scenario/],
      ["scenario:a target_rss_slope<1MB/min", /takes no scenario/],
    ];
    for (const [expr, re] of cases) {
      assert.throws(
        () => parseThreshold(expr),
        (err: Error) => {
          assert.match(err.message, re, expr);
          assert.match(err.message, new RegExp(`threshold "${expr.replace(/[()[\]|.*+?^$]/g, "\\$&")}"`));
          return true;
        },
      );
    }
  });
});

const SLOW_FAST = `
import { HttpUser, task, tag, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.01);
  @task @tag("slow") slow() { return this.client.get("/slow"); }
  @task @tag("fast") fast() { return this.client.get("/fast"); }
}
`;

describe("thresholds in a run", () => {
  it("a threshold that must fail exits 3, one that must pass exits 0; tags and endpoints are scoped", async () => {
    const server = await startServer((req, res) => {
      if (req.url === "/slow") setTimeout(() => res.end("slow"), 30);
      else res.end("fast");
    });
    try {
      const pass = await runLoad(SLOW_FAST, [
        "-H",
        server.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "2s",
        "--threshold",
        "p95<5000",
        "--threshold",
        "tag:slow p50>=25",
        "--threshold",
        "tag:fast p50<25",
        "--threshold",
        "GET /slow: min>=25",
        "--threshold",
        "/fast: error_rate<1%",
        "--threshold",
        "rps>1",
      ]);
      assert.equal(pass.code, 0, describeRun(pass));
      const th = pass.result.thresholds!;
      assert.equal(th.length, 6);
      assert.ok(
        th.every((t) => t.passed),
        JSON.stringify(th, null, 1),
      );
      const slowTag = pass.result.tags!.find((t) => t.tag === "slow")!;
      const slowEp = pass.result.endpoints.find((e) => e.name === "/slow")!;
      assert.equal(slowTag.requests, slowEp.requests, "tag figures count the tagged task's requests");
      assert.equal(th[1]!.value, slowTag.latencyMs.p50);
      assert.match(pass.stdout, /✓ pass {2}p95<5000/);

      const fail = await runLoad(SLOW_FAST, [
        "-H",
        server.url,
        "-u",
        "2",
        "-t",
        "2s",
        "--threshold",
        "tag:slow p95<5",
        "--threshold",
        "p95<5000",
        "--threshold",
        "GET /nowhere: p95<5000",
      ]);
      assert.equal(fail.code, 3, describeRun(fail));
      const [slow, all, nowhere] = fail.result.thresholds!;
      assert.equal(slow!.passed, false);
      assert.ok(slow!.value! >= 25);
      assert.equal(all!.passed, true);
      assert.equal(nowhere!.passed, false, "a scope that matched nothing fails");
      assert.equal(nowhere!.value, null);
      assert.match(fail.stdout, /✗ FAIL {2}tag:slow p95<5/);
      assert.ok(fail.result.recommendations?.some((r) => r.kind === "threshold" && r.subject === "tag:slow"));
    } finally {
      await server.close();
    }
  });

  it("abortOnFail stops the run within its delay + 1 s, with exit code 3", async () => {
    const server = await startServer((_req, res) => setTimeout(() => res.end("ok"), 20));
    try {
      const r = await runLoad(SLOW_FAST.replace("/fast", "/slow"), [
        "-H",
        server.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "30s",
        "--threshold",
        "p95<5 abortOnFail delayAbortEval=2s",
      ]);
      assert.equal(r.code, 3, describeRun(r));
      assert.equal(r.result.stopReason, "threshold");
      assert.ok(r.result.durationSec >= 1.9, `stopped too early: ${r.result.durationSec}s`);
      assert.ok(r.result.durationSec <= 3.6, `stopped after ${r.result.durationSec}s, more than 2 s + 1 s`);
      assert.match(r.stderr + r.stdout, /threshold "p95<5 abortOnFail delayAbortEval=2s" failed/);
      assert.equal(r.result.thresholds?.[0]?.passed, false);
    } finally {
      await server.close();
    }
  });

  it("accepted status codes (429) are not failures, and are still counted by code", async () => {
    let n = 0;
    const server = await startServer((_req, res) => {
      n++;
      res.statusCode = n % 4 === 0 ? 429 : 200;
      res.end("x");
    });
    const loadfile = `
import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task hit() { return this.client.get("/limited"); }
}
`;
    try {
      const args = [
        "-H",
        server.url,
        "-u",
        "1",
        "-i",
        "40",
        "--processes",
        "1",
        "--threshold",
        "error_rate<1%",
      ];
      const strict = await runLoad(loadfile, args);
      assert.equal(strict.code, 3, describeRun(strict));
      assert.equal(strict.result.totals.failures, 10);
      assert.equal(strict.result.totals.statusCodes["429"], 10);

      n = 0;
      const lenient = await runLoad(loadfile, [...args, "--accept-status", "429"]);
      assert.equal(lenient.code, 0, describeRun(lenient));
      assert.equal(lenient.result.totals.failures, 0);
      assert.equal(lenient.result.totals.statusCodes["429"], 10, "429s are still counted by status code");
      assert.equal(lenient.result.thresholds?.[0]?.value, 0);
    } finally {
      await server.close();
    }
  });
});

describe("checks", () => {
  it("records a pass rate per check, fails requests only when told, and feeds thresholds", async () => {
    let n = 0;
    const server = await startServer((_req, res) => {
      n++;
      res.setHeader("content-type", "application/json");
      res.end(n % 2 === 1 ? JSON.stringify({ id: n }) : "{}");
    });
    const loadfile = (failRequest: boolean) => `
import { HttpUser, task, check } from "cicada-load";
export class Web extends HttpUser {
  @task async item() {
    const r = await this.client.get("/item");
    check(r, {
      "status is 200": (x) => x.status === 200,
      "has id": (x) => Boolean(x.json().id),
    }${failRequest ? ", { failRequest: true }" : ""});
    this.check(r.json(), { "body is an object": (b) => typeof b === "object" });
  }
}
`;
    try {
      const plain = await runLoad(loadfile(false), [
        "-H",
        server.url,
        "-i",
        "30",
        "--threshold",
        "checks>99%",
        "--threshold",
        "check:status is 200: rate==100%",
      ]);
      assert.equal(plain.code, 3, describeRun(plain));
      const checks = Object.fromEntries(plain.result.checks!.map((c) => [c.name, c]));
      assert.deepEqual(
        { passes: checks["has id"]!.passes, fails: checks["has id"]!.fails },
        { passes: 15, fails: 15 },
      );
      assert.equal(checks["status is 200"]!.passes, 30);
      assert.equal(checks["body is an object"]!.passes, 30);
      assert.equal(plain.result.totals.failures, 0, "a failed check does not fail the request by itself");
      const [all, status] = plain.result.thresholds!;
      assert.equal(all!.passed, false);
      assert.ok(Math.abs(all!.value! - 75 / 90) < 1e-5);
      assert.equal(status!.passed, true);
      assert.match(plain.stdout, /✗ has id +50\.00%/);

      n = 0;
      const failing = await runLoad(loadfile(true), ["-H", server.url, "-i", "30"]);
      assert.equal(failing.code, 1, describeRun(failing));
      assert.equal(failing.result.totals.requests, 30);
      assert.equal(failing.result.totals.failures, 15);
      assert.equal(failing.result.failures[0]?.error, "check failed: has id");
    } finally {
      await server.close();
    }
  });
});

describe("JUnit output", () => {
  it("is valid XML with one test case per threshold and check", async () => {
    const server = await startServer((_req, res) => setTimeout(() => res.end("{}"), 5));
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, task, check } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() {
    const r = await this.client.get("/x");
    check(r, { "ok": (x) => x.ok, "never <&>": () => false });
  }
}
`,
    });
    try {
      const junit = join(project.dir, "junit.xml");
      const r = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          server.url,
          "-i",
          "20",
          "--only-summary",
          "--threshold",
          "p95<5000",
          "--threshold",
          "GET /x: p50<0.001 delayAbortEval=1s",
          "--junit",
          junit,
        ],
        { cwd: project.dir },
      );
      assert.equal(r.code, 3, describeRun(r));
      const xml = readFileSync(junit, "utf8");
      assert.equal(XMLValidator.validate(xml), true, xml);
      const doc = new XMLParser({
        ignoreAttributes: false,
        attributeNamePrefix: "",
        isArray: (n) => n === "testsuite" || n === "testcase",
      }).parse(xml);
      const suites = doc.testsuites.testsuite as Array<{
        name: string;
        tests: string;
        failures: string;
        testcase: Array<{ name: string; failure?: unknown }>;
      }>;
      const byName = Object.fromEntries(suites.map((s) => [s.name, s]));
      const th = byName["cicada.thresholds"]!;
      assert.equal(th.tests, "2");
      assert.equal(th.failures, "1");
      assert.deepEqual(
        th.testcase.map((c) => [c.name, c.failure !== undefined]),
        [
          ["p95<5000", false],
          ["GET /x: p50<0.001 delayAbortEval=1s", true],
        ],
      );
      const ck = byName["cicada.checks"]!;
      assert.deepEqual(
        ck.testcase.map((c) => [c.name, c.failure !== undefined]),
        [
          ["ok", false],
          ["never <&>", true],
        ],
      );
      assert.equal(doc.testsuites.failures, "2");
    } finally {
      project.cleanup();
      await server.close();
    }
  });
});

describe("findings", () => {
  it("spots latency that grows steadily, and not noise", () => {
    const rising = Array.from({ length: 30 }, (_, i) => ({ t: i + 1, requests: 10, p50: 10 + i * 0.5 }));
    const tr = latencyTrend(rising);
    assert.ok(tr && tr.rho > 0.99 && tr.to > tr.from * 1.25);
    let seed = 7;
    const rnd = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const flat = Array.from({ length: 60 }, (_, i) => ({ t: i + 1, requests: 10, p50: 10 + rnd() * 4 }));
    assert.equal(latencyTrend(flat), null);
    assert.equal(latencyTrend(rising.slice(0, 10)), null, "too few seconds to judge");
    assert.equal(spearman([1, 2, 3], [3, 2, 1]), -1);
  });

  it("reports error hot spots and a saturated generator in plain language", () => {
    const base = {
      endpoints: [
        { type: "HTTP", method: "GET", name: "/ok", requests: 100, failures: 0 },
        { type: "HTTP", method: "POST", name: "/pay", requests: 200, failures: 50 },
      ],
      failures: [
        { method: "POST", name: "/pay", error: "HTTP 503", occurrences: 40 },
        { method: "POST", name: "/pay", error: "ECONNRESET", occurrences: 10 },
      ],
      warnings: [{ at: "", kind: "cpu", message: "warning: cpu" }],
    } as unknown as RunResult;
    const found = recommend(base);
    const errors = found.find((f) => f.kind === "errors");
    assert.equal(errors?.subject, "POST /pay");
    assert.match(
      errors!.message,
      /failed 25\.0% of its requests \(50 of 200\): HTTP 503 ×40, ECONNRESET ×10/,
    );
    assert.ok(found.some((f) => f.kind === "generator"));
    assert.ok(!found.some((f) => f.subject === "GET /ok"));
  });
});
