/** Prometheus metrics of a running test: scraped as Prometheus would, and by a real Prometheus. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import {
  CHAT_LOADFILE,
  chatStream,
  describeRun,
  startCli,
  startServer,
  tempProject,
  until,
} from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant, check } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task async hit() {
    const r = await this.client.get("/hit");
    check(r, { "is 200": (x) => x.status === 200 });
  }
}
`;

/** Parses the text exposition format: `name{labels} value` lines, comments skipped. */
function parseExposition(
  text: string,
): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const out: Array<{ name: string; labels: Record<string, string>; value: number }> = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * A bounded chat run in the web UI (which keeps serving the last test's books once it ends):
 * every other stream answers its first token late, so some streams miss a TTFT bound. Returns
 * /metrics and the JSON result, both read after the test stopped.
 */
async function chatRunInWebUi(extra: string[]): Promise<{ metrics: string; result: RunResult }> {
  let n = 0;
  const server = await startServer((req, res) => {
    req.resume();
    const slow = n++ % 2 === 1;
    void chatStream(res, slow ? 1000 : 5, slow ? 2 : 4);
  });
  const project = tempProject({ "loadtest.ts": CHAT_LOADFILE });
  const run = startCli(
    ["run", "loadtest.ts", "-H", server.url, "--web-port", "0", "--autostart", "-u", "2", "-r", "100"].concat(
      ["--processes", "2", "--iterations", "8", ...extra],
    ),
    { cwd: project.dir },
  );
  try {
    await run.waitFor(/web UI on http:\/\/\S+/);
    const base = /web UI on (http:\/\/\S+)/.exec(run.output().stderr)![1]!.replace(/\/$/, "");
    await until(
      "the test to stop",
      async () => ((await (await fetch(`${base}/api/state`)).json()) as { status: string }).status,
      (s) => s === "stopped",
      30_000,
    );
    const res = await fetch(`${base}/metrics`);
    assert.equal(res.status, 200);
    const metrics = await res.text();
    const result = (await (await fetch(`${base}/api/report.json`)).json()) as RunResult;
    return { metrics, result };
  } finally {
    run.child.kill("SIGINT");
    const timer = setTimeout(() => run.child.kill("SIGKILL"), 10_000);
    await run.result;
    clearTimeout(timer);
    project.cleanup();
    await server.close();
  }
}

function promBinary(): string | null {
  return ["/usr/bin/prometheus", "/usr/local/bin/prometheus"].find((p) => existsSync(p)) ?? null;
}

describe("Prometheus metrics", () => {
  it("--prometheus-port serves the running test's merged figures at /metrics", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    const run = startCli(
      [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        server.url,
        "-u",
        "3",
        "-r",
        "100",
        "-t",
        "6s",
        "--prometheus-port",
        "0",
        "--threshold",
        "p95<5000",
        "--only-summary",
      ],
      { cwd: project.dir },
    );
    try {
      await run.waitFor(/Prometheus metrics on http:\/\/\S+\/metrics/);
      const url = /Prometheus metrics on (http:\/\/\S+\/metrics)/.exec(run.output().stderr)![1]!;
      // Scraped until the three users run and their figures are in, not once after a fixed
      // sleep: on a busy machine the users may start seconds after the endpoint is up.
      const scrape = async () => {
        const res = await fetch(url);
        return { res, samples: parseExposition(await res.text()) };
      };
      const find = (
        samples: ReturnType<typeof parseExposition>,
        name: string,
        labels: Record<string, string>,
      ) =>
        samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
      const { res, samples } = await until(
        "the running users' figures at /metrics",
        scrape,
        ({ samples: xs }) =>
          find(xs, "cicada_users", {})?.value === 3 &&
          (find(xs, "cicada_requests_total", { name: "/hit" })?.value ?? 0) > 0 &&
          (find(xs, "cicada_checks_total", { check: "is 200", result: "pass" })?.value ?? 0) > 0 &&
          // Judged live once a second: before the first tick with requests it has nothing to
          // measure, and a threshold with nothing to measure fails (0).
          find(xs, "cicada_threshold_passed", { threshold: "p95<5000" })?.value === 1,
      );
      const one = (name: string, labels: Record<string, string> = {}) => find(samples, name, labels);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      assert.equal(one("cicada_users")?.value, 3);
      const requests = one("cicada_requests_total", { type: "HTTP", method: "GET", name: "/hit" })!.value;
      assert.ok(
        requests > 0 && requests <= server.total(),
        `${requests} requests vs ${server.total()} served`,
      );
      assert.equal(one("cicada_failures_total", { name: "/hit" })?.value, 0);
      const p50 = one("cicada_response_time_seconds", { name: "/hit", quantile: "0.5" })!.value;
      assert.ok(p50 > 0 && p50 < 1, `p50 ${p50} s`);
      assert.equal(one("cicada_threshold_passed", { threshold: "p95<5000" })?.value, 1);
      assert.ok(one("cicada_checks_total", { check: "is 200", result: "pass" })!.value > 0);
      assert.ok(one("cicada_worker_users")!.value > 0);
      assert.equal((await fetch(url.replace("/metrics", "/other"))).status, 404);
      // Bound to loopback, a page that rebinds its own name to 127.0.0.1 is refused.
      const port = new URL(url).port;
      assert.equal((await getWithHost(url, `evil.example:${port}`)).status, 403);
      assert.equal((await getWithHost(url, `localhost:${port}`)).status, 200);
      const r = await run.result;
      assert.equal(r.code, 0, describeRun(r));
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGKILL");
      project.cleanup();
      await server.close();
    }
  });

  it("the web UI serves /metrics too, behind its login", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    const run = startCli(["run", "loadtest.ts", "-H", server.url, "--web-port", "0", "--web-login", "a:b"], {
      cwd: project.dir,
    });
    try {
      await run.waitFor(/web UI on http:\/\/\S+/);
      const base = /web UI on (http:\/\/\S+)/.exec(run.output().stderr)![1]!;
      assert.equal((await fetch(`${base}/metrics`)).status, 401);
      const auth = { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` };
      const before = await fetch(`${base}/metrics`, { headers: auth });
      assert.equal(before.status, 200);
      assert.match(await before.text(), /^cicada_users 0$/m);
    } finally {
      run.child.kill("SIGINT");
      await run.result;
      project.cleanup();
      await server.close();
    }
  });

  it("--slo: per-endpoint counters of judged and good streams equal the result's goodput", async () => {
    const { metrics, result } = await chatRunInWebUi(["--slo", "ttft<400ms,e2el<10s"]);
    const g = result.goodput;
    assert.ok(g, "goodput in the result");
    assert.equal(g.judged, 8);
    // Both kinds of stream happened, so the counters below are not trivially equal.
    assert.ok(g.requests > 0 && g.requests < g.judged, `${g.requests} good of ${g.judged}`);
    const samples = parseExposition(metrics);
    const at = { type: "SSE", method: "POST", name: "/v1/chat/completions" };
    const one = (name: string) =>
      samples.filter((s) => s.name === name && Object.entries(at).every(([k, v]) => s.labels[k] === v));
    const [judged] = one("cicada_slo_judged_total");
    const [good] = one("cicada_slo_good_total");
    const [tokens] = one("cicada_slo_good_output_tokens_total");
    assert.equal(judged?.value, g.judged, metrics);
    assert.equal(good?.value, g.requests, metrics);
    const chat = result.endpoints.find((e) => e.name === at.name)!;
    assert.ok((chat.counters?.["slo:good_output_tokens"] ?? 0) > 0);
    assert.equal(tokens?.value, chat.counters?.["slo:good_output_tokens"]);
    assert.equal(samples.filter((s) => s.name.startsWith("cicada_slo_")).length, 3, "one series each");
    assert.match(metrics, /^# HELP cicada_slo_good_total .*--slo/m);
    assert.match(metrics, /^# TYPE cicada_slo_judged_total counter$/m);
  });

  it("a run without --slo has no SLO series", async () => {
    const { metrics, result } = await chatRunInWebUi([]);
    assert.equal(result.goodput, undefined);
    const samples = parseExposition(metrics);
    // The same streams were counted: only the judgement is missing.
    assert.equal(
      samples.find((s) => s.name === "cicada_requests_total" && s.labels.type === "SSE")?.value,
      8,
    );
    assert.deepEqual(
      samples.filter((s) => s.name.startsWith("cicada_slo_")),
      [],
    );
  });

  const prometheus = promBinary();
  it("a real Prometheus scrapes it and answers queries with the run's figures", {
    skip:
      prometheus === null && !process.env.CI
        ? "no prometheus binary (the distribution's prometheus package)"
        : false,
  }, async () => {
    assert.ok(prometheus, "prometheus is installed on CI by .ci/run");
    const server = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    const run = startCli(
      [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        server.url,
        "-u",
        "2",
        "-t",
        "30s",
        "--prometheus-port",
        "0",
        "--only-summary",
      ],
      { cwd: project.dir },
    );
    const dir = mkdtempSync(join(tmpdir(), "cicada-prom-"));
    let prom: ReturnType<typeof spawn> | undefined;
    try {
      await run.waitFor(/Prometheus metrics on http:\/\/\S+\/metrics/);
      const target = /Prometheus metrics on http:\/\/(\S+)\/metrics/.exec(run.output().stderr)![1]!;
      writeFileSync(
        join(dir, "prometheus.yml"),
        `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: cicada\n    static_configs:\n      - targets: ["${target}"]\n`,
      );
      // A free port for Prometheus itself: bind, read, release.
      const portProbe = await startServer((_q, r) => r.end());
      const promPort = Number(new URL(portProbe.url).port);
      await portProbe.close();
      prom = spawn(
        prometheus!,
        [
          `--config.file=${join(dir, "prometheus.yml")}`,
          `--storage.tsdb.path=${join(dir, "data")}`,
          `--web.listen-address=127.0.0.1:${promPort}`,
        ],
        { stdio: "ignore" },
      );
      const query = async (q: string) => {
        const r = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
        const body = (await r.json()) as { data: { result: Array<{ value: [number, string] }> } };
        return body.data.result.map((x) => Number(x.value[1]));
      };
      const deadline = Date.now() + 20000;
      let seen: number[] = [];
      while (Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 1000));
        try {
          seen = await query('cicada_requests_total{name="/hit"}');
          if (seen.length > 0 && seen[0]! > 0) break;
        } catch {
          // Prometheus is still starting.
        }
      }
      assert.ok(seen.length === 1 && seen[0]! > 0, `Prometheus saw ${JSON.stringify(seen)}`);
      assert.ok(seen[0]! <= server.total());
      const users = await query("cicada_users");
      assert.deepEqual(users, [2]);
    } finally {
      prom?.kill("SIGKILL");
      run.child.kill("SIGKILL");
      await run.result;
      rmSync(dir, { recursive: true, force: true });
      project.cleanup();
      await server.close();
    }
  });
});

/** GET with a Host header of our choosing (fetch does not let a caller set Host). */
function getWithHost(url: string, host: string): Promise<{ status: number }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers: { host } }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode ?? 0 }));
    });
    req.on("error", reject);
    req.end();
  });
}
