/**
 * Serving metrics of streams against loopback servers with known timings: TTFT, ITL, TPOT and
 * E2EL checked against what the server itself timed; goodput against --slo counted exactly
 * across workers; the order of token sources; dispatch delay in the open model.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import {
  assertValidResult,
  describeRun,
  readJson,
  runCli,
  runLoad,
  startServer,
  tempProject,
} from "./helpers.js";

const content = (text: string): string =>
  `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [{ index: 0, delta: { content: text } }] })}\n\n`;
const usage = (completion: number, prompt: number): string =>
  `data: ${JSON.stringify({ object: "chat.completion.chunk", choices: [], usage: { completion_tokens: completion, prompt_tokens: prompt } })}\n\n`;

function sseHead(res: ServerResponse): void {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the server timed for one stream, in ms from the arrival of the request. */
interface ServerTiming {
  first: number;
  gaps: number[];
  end: number;
  tokens: number;
}

/**
 * Streams `tokens` content chunks, the first after `firstMs`, then one every `everyMs`, then a
 * usage chunk (when `withUsage`) and [DONE]; times each write as it is made.
 */
async function stream(
  req: IncomingMessage,
  res: ServerResponse,
  o: { firstMs: number; everyMs: number; tokens: number; withUsage: boolean },
): Promise<ServerTiming> {
  const t0 = performance.now();
  req.resume();
  sseHead(res);
  await sleep(o.firstMs);
  const times: number[] = [];
  for (let i = 0; i < o.tokens; i++) {
    if (i > 0) await sleep(o.everyMs);
    times.push(performance.now() - t0);
    res.write(content(`t${i} `));
  }
  if (o.withUsage) res.write(usage(o.tokens, 3));
  const end = performance.now() - t0;
  res.end("data: [DONE]\n\n");
  return { first: times[0]!, gaps: times.slice(1).map((t, i) => t - times[i]!), end, tokens: o.tokens };
}

/** The lower median. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.ceil(s.length / 2) - 1]!;
}

const within1 = (what: string, client: number, server: number) =>
  assert.ok(Math.abs(client - server) <= 1, `${what}: client ${client} ms, server ${server} ms`);

describe("serving metrics of a stream", () => {
  it("TTFT, ITL, TPOT and E2EL equal their definitions within 1 ms of the server's own timings", async () => {
    const STREAMS = 6;
    const TOKENS = 8;
    const timings = new Map<string, ServerTiming>();
    const server = await startServer((req, res) => {
      if (req.url === "/warm") {
        req.resume();
        sseHead(res);
        res.end("data: [DONE]\n\n");
        return;
      }
      const id = String(req.headers["x-req"]);
      void stream(req, res, { firstMs: 100, everyMs: 20, tokens: TOKENS, withUsage: true }).then((t) =>
        timings.set(id, t),
      );
    });
    // The loadfile writes what each stream's result said, keyed by the request's id.
    const project = tempProject({
      "loadtest.ts": `
import { appendFileSync } from "node:fs";
import { HttpUser, task } from "cicada-load";
let n = 0;
export class Chat extends HttpUser {
  async onStart() {
    // The stream's connection is open (and its code warm) before the first timed stream.
    await this.client.sse("/warm", { tokens: "openai" });
  }
  @task async chat() {
    const id = String(n++);
    const r = await this.client.sse("/v1/chat/completions", {
      json: { stream: true, messages: [{ role: "user", content: "hi" }] },
      headers: { "x-req": id },
      tokens: "openai",
    });
    appendFileSync("figures.jsonl", JSON.stringify({ id, ttft: r.ttftMs, tpot: r.tpotMs, e2el: r.durationMs, out: r.outputTokens, inp: r.inputTokens }) + "\\n");
  }
}
`,
    });
    try {
      const out = join(project.dir, "out.json");
      const cli = await runCli(
        [
          "run",
          "loadtest.ts",
          "--headless",
          "-H",
          server.url,
          "-u",
          "1",
          "--iterations",
          String(STREAMS),
          "--json",
          out,
          "--only-summary",
        ],
        { cwd: project.dir, timeoutMs: 30_000 },
      );
      assert.equal(cli.code, 0, describeRun(cli));
      const result = readJson(out) as RunResult;
      assertValidResult(result);
      const figures = readFileSync(join(project.dir, "figures.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map(
          (l) =>
            JSON.parse(l) as {
              id: string;
              ttft: number;
              tpot: number;
              e2el: number;
              out: number;
              inp: number;
            },
        );
      assert.equal(figures.length, STREAMS);
      // The client starts its clock before the request is sent and reads each chunk after it was
      // written, so its TTFT and E2EL exceed the server's by the loopback trips (a fraction of a ms
      // on an idle machine, a few ms when the CPU is shared): never below, and a few ms at most.
      // TPOT and the mean ITL are differences of two arrivals, where the trips cancel: within 1 ms
      // (TPOT: the median request; one chunk read late on a busy machine moves a single TPOT).
      const excess = { ttft: [] as number[], e2el: [] as number[] };
      const tpotOff: number[] = [];
      for (const f of figures) {
        const t = timings.get(f.id);
        assert.ok(t, `the server timed request ${f.id}`);
        excess.ttft.push(f.ttft - t.first);
        excess.e2el.push(f.e2el - t.end);
        tpotOff.push(Math.abs(f.tpot - (t.end - t.first) / (t.tokens - 1)));
        assert.equal(f.out, TOKENS);
        assert.equal(f.inp, 3);
      }
      assert.ok(median(tpotOff) <= 1, `tpot within 1 ms of the server's: off by ${tpotOff.join(", ")}`);
      for (const [what, xs] of Object.entries(excess)) {
        assert.ok(Math.min(...xs) >= -0.5, `${what} is never earlier than the server's: ${xs.join(", ")}`);
        assert.ok(median(xs) <= 10, `${what} is the server's plus the loopback trips: ${xs.join(", ")}`);
      }
      // The books hold the same figures as the results.
      const e = result.endpoints.find((x) => x.type === "SSE" && x.name === "/v1/chat/completions");
      assert.ok(e?.metrics);
      const m = e.metrics;
      const close = (what: string, got: number, want: number) =>
        assert.ok(Math.abs(got - want) <= Math.max(0.01, want * 0.002), `${what}: ${got} vs ${want}`);
      const byClient = (k: "ttft" | "tpot" | "e2el") => figures.map((f) => f[k]);
      for (const k of ["ttft", "tpot", "e2el"] as const) {
        assert.equal(m[k]!.count, STREAMS, `${k} count`);
        close(`${k} min`, m[k]!.min, Math.min(...byClient(k)));
        close(`${k} max`, m[k]!.max, Math.max(...byClient(k)));
      }
      const gaps = [...timings.values()].flatMap((t) => t.gaps);
      assert.equal(m.itl!.count, STREAMS * (TOKENS - 1));
      within1("itl mean", m.itl!.mean, gaps.reduce((a, b) => a + b, 0) / gaps.length);
      assert.equal(m.output_tokens!.max, TOKENS);
      assert.equal(e.counters?.output_tokens, STREAMS * TOKENS);
      assert.equal(e.counters?.input_tokens, STREAMS * 3);
      assert.deepEqual(e.tokenSource, { output: "usage", input: "usage" });
    } finally {
      project.cleanup();
      await server.close();
    }
  });
});

describe("goodput against --slo", () => {
  it("counts exactly the streams that meet every SLO, across two workers; thresholds and the report read it", async () => {
    // By the server's request number: fast, slow first token, slow tokens, and again.
    let n = 0;
    let fast = 0;
    let fastTokens = 0;
    const server = await startServer((req, res) => {
      const kind = n++ % 3;
      const o =
        kind === 0
          ? { firstMs: 10, everyMs: 5, tokens: 5, withUsage: true }
          : kind === 1
            ? { firstMs: 300, everyMs: 5, tokens: 5, withUsage: true }
            : { firstMs: 10, everyMs: 80, tokens: 4, withUsage: true };
      void stream(req, res, o).then((t) => {
        if (kind === 0) {
          fast++;
          fastTokens += t.tokens;
        }
      });
    });
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, task } from "cicada-load";
export class Chat extends HttpUser {
  @task async chat() {
    await this.client.sse("/v1/chat/completions", {
      json: { stream: true, messages: [{ role: "user", content: "hi" }] },
      tokens: "openai",
    });
  }
}
`,
    });
    try {
      const out = join(project.dir, "out.json");
      const html = join(project.dir, "report.html");
      const cli = await runCli(
        [
          "run",
          "loadtest.ts",
          "--headless",
          "-H",
          server.url,
          "-u",
          "4",
          "-r",
          "100",
          "--processes",
          "2",
          "--iterations",
          "12",
          "--slo",
          "ttft<150ms,tpot<40ms,e2el<5s",
          "--threshold",
          "goodput>0.1/s",
          "--threshold",
          "output_token_goodput>0.1/s",
          "--threshold",
          "tpot p95<1s",
          "--threshold",
          "e2el p99<10s",
          "--threshold",
          "e2e_latency p99<10000",
          "--threshold",
          "slo_attainment>95%",
          "--json",
          out,
          "--html",
          html,
        ],
        { cwd: project.dir, timeoutMs: 30_000 },
      );
      // The attainment threshold fails: a third of the streams are good.
      assert.equal(cli.code, 3, describeRun(cli));
      const r = readJson(out) as RunResult;
      assertValidResult(r);
      assert.equal(r.totals.requests, 12);
      assert.equal(fast, 4);
      const g = r.goodput;
      assert.ok(g, "goodput in the result");
      assert.deepEqual(g.slos, { ttft: 150, tpot: 40, e2el: 5000 });
      assert.equal(g.judged, 12);
      assert.equal(g.requests, fast);
      assert.equal(g.attainment, Math.round((fast / 12) * 1e6) / 1e6);
      assert.ok(Math.abs(g.perSec - fast / r.durationSec) < 0.002, `perSec ${g.perSec}`);
      assert.ok(
        Math.abs(g.outputTokensPerSec - fastTokens / r.durationSec) < 0.002,
        `outputTokensPerSec ${g.outputTokensPerSec}`,
      );
      const th = new Map((r.thresholds ?? []).map((t) => [t.metric, t]));
      assert.equal(th.get("slo_attainment")?.passed, false);
      assert.equal(th.get("slo_attainment")?.value, Math.round((fast / 12) * 1e6) / 1e6);
      for (const name of ["goodput", "output_token_goodput", "tpot_p95", "e2el_p99"]) {
        assert.equal(th.get(name)?.passed, true, `${name}: ${JSON.stringify(th.get(name))}`);
      }
      assert.equal(r.thresholds?.filter((t) => t.metric === "e2el_p99").length, 2, "e2e_latency reads e2el");
      assert.match(cli.stdout, /Goodput \(ttft<=150ms, tpot<=40ms, e2el<=5000ms\): 4 of 12 streams good/);
      assert.ok(existsSync(html));
      const page = readFileSync(html, "utf8");
      assert.match(page, /data-row="goodput"[\s\S]*?4 of 12 streams/);
    } finally {
      project.cleanup();
      await server.close();
    }
  });

  it("a threshold on goodput without --slo fails with a note, not a pass", async () => {
    const server = await startServer((req, res) => {
      void stream(req, res, { firstMs: 1, everyMs: 1, tokens: 2, withUsage: false });
    });
    try {
      const run = await runLoad(
        `
import { HttpUser, task } from "cicada-load";
export class Chat extends HttpUser {
  @task async chat() {
    await this.client.sse("/s", { json: { stream: true }, tokens: "openai" });
  }
}
`,
        ["-H", server.url, "-u", "1", "--iterations", "2", "--threshold", "goodput>0/s"],
      );
      assert.equal(run.code, 3, describeRun(run));
      const t = run.result.thresholds![0]!;
      assert.equal(t.value, null);
      assert.match(t.note ?? "", /--slo/);
      assert.equal(run.result.goodput, undefined);
    } finally {
      await server.close();
    }
  });

  it("--slo errors name what was written (exit 2)", async () => {
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, task } from "cicada-load";
export class U extends HttpUser { @task async t() {} }
`,
      "bad-options.ts": `
import { HttpUser, task } from "cicada-load";
export const options = { slo: "ttft>5ms" };
export class U extends HttpUser { @task async t() {} }
`,
    });
    try {
      for (const [file, slo, named] of [
        ["loadtest.ts", "ttft<fast", "ttft<fast"],
        ["loadtest.ts", "speed<5ms", "speed"],
        ["loadtest.ts", "ttft<5ms,ttft<6ms", "ttft<6ms"],
        ["loadtest.ts", "", "no SLO"],
        ["bad-options.ts", null, "ttft>5ms"],
      ] as const) {
        const args = ["run", file, "--headless", "-H", "http://127.0.0.1:9", "-t", "1s"];
        if (slo !== null) args.push("--slo", slo);
        const r = await runCli(args, { cwd: project.dir, timeoutMs: 20_000 });
        assert.equal(r.code, 2, `${file} ${slo}: ${describeRun(r)}`);
        assert.ok(r.stderr.includes(named), `names ${named}: ${r.stderr}`);
        assert.match(r.stderr, /slo/);
      }
    } finally {
      project.cleanup();
    }
  });
});

describe("token counts", () => {
  it("come from usage, else the tokens counter, else the tokenizer; the result names the source", async () => {
    const server = await startServer((req, res) => {
      const path = (req.url ?? "").split("?")[0];
      if (path === "/plain") {
        req.resume();
        sseHead(res);
        res.write("data: alpha\n\n");
        res.write("data:  beta gamma\n\n");
        res.end("data:  delta\n\n");
        return;
      }
      req.resume();
      sseHead(res);
      for (let i = 0; i < 5; i++) res.write(content(`w${i} `));
      if (path === "/usage") res.write(usage(9, 13));
      res.end("data: [DONE]\n\n");
    });
    try {
      const run = await runLoad(
        `
import { HttpUser, task } from "cicada-load";
const tokenizer = (text: string) => text.split(/\\s+/).filter(Boolean).length;
const json = { stream: true, messages: [{ role: "user", content: "say hello world" }] };
export class Chat extends HttpUser {
  @task async chat() {
    await this.client.sse("/usage", { json, tokens: "openai", tokenizer });
    await this.client.sse("/nousage", { json, tokens: "openai", tokenizer });
    await this.client.sse("/plain", { tokenizer });
    await this.client.sse("/bare", { json, tokens: "openai" });
  }
}
`,
        ["-H", server.url, "-u", "1", "--iterations", "2"],
      );
      assert.equal(run.code, 0, describeRun(run));
      const ep = (name: string) => run.result.endpoints.find((e) => e.name === name)!;
      assert.deepEqual(ep("/usage").tokenSource, { output: "usage", input: "usage" });
      assert.equal(ep("/usage").counters?.output_tokens, 18);
      assert.equal(ep("/usage").counters?.input_tokens, 26);
      assert.deepEqual(ep("/nousage").tokenSource, { output: "preset", input: "tokenizer" });
      assert.equal(ep("/nousage").counters?.output_tokens, 10);
      assert.equal(ep("/nousage").counters?.input_tokens, 6);
      // No counter: the events' data is the text; no JSON body, so no prompt to count.
      assert.deepEqual(ep("/plain").tokenSource, { output: "tokenizer" });
      assert.equal(ep("/plain").counters?.output_tokens, 8);
      assert.equal(ep("/plain").metrics?.tpot?.count, 2);
      // Neither usage nor a tokenizer: the chunks are counted, the prompt is not.
      assert.deepEqual(ep("/bare").tokenSource, { output: "preset" });
      assert.equal(ep("/bare").counters?.input_tokens, undefined);
    } finally {
      await server.close();
    }
  });
});

describe("dispatch delay", () => {
  it("open model: one value per iteration, beside the corrected latency, and thresholds read it", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    try {
      const run = await runLoad(
        `
import { HttpUser, task } from "cicada-load";
export class U extends HttpUser { @task async t() { await this.client.get("/"); } }
`,
        [
          "-H",
          server.url,
          "--rate",
          "20",
          "-t",
          "2s",
          "--threshold",
          "dispatch_delay p99<5000",
          "--threshold",
          "dispatch_delay max>=0",
        ],
      );
      assert.equal(run.code, 0, describeRun(run));
      const d = run.result.totals.dispatchDelayMs;
      assert.ok(d, "dispatch delay in the totals");
      assert.ok(run.result.totals.correctedLatencyMs, "beside the corrected latency");
      assert.equal(d.count, run.result.totals.iterations);
      assert.ok(d.count >= 20, `iterations ${d.count}`);
      assert.ok(d.max < 5000, `max ${d.max}`);
      assert.ok(run.result.thresholds?.every((t) => t.passed && t.value !== null));
    } finally {
      await server.close();
    }
  });
});
