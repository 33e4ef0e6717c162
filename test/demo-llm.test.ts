/**
 * The demo's LLM endpoint as a user meets it: `cicada demo --serve` started as typed, then
 * OpenAI-style chat completions against it — SSE framing, usage, max_tokens, a bounded number of
 * generations with a queue behind them and 429 beyond it, per-token time rising with load.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import {
  assertValidResult,
  describeRun,
  ROOT,
  type RunningCli,
  readJson,
  runCli,
  startCli,
  tempProject,
} from "./helpers.js";

/** One SSE event as the client saw it: its data and when it arrived (ms since the request). */
interface TimedEvent {
  data: string;
  at: number;
}

interface Streamed {
  status: number;
  contentType: string;
  /** The body exactly as sent. */
  raw: string;
  events: TimedEvent[];
  /** When the headers arrived, and when the body ended (ms since the request). */
  headersAt: number;
  endAt: number;
}

interface Chunk {
  object: string;
  choices: { index: number; delta: { role?: string; content?: string }; finish_reason: string | null }[];
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

const CONFIG = { capacity: 2, queue: 2, tokenMs: 20, prefillMs: 1 };
/** The demo's time from a generation's start to its first token, before prefill. */
const FIRST_TOKEN_MS = 80;

function chat(url: string, body: Record<string, unknown>): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "cicada-demo", messages: [{ role: "user", content: "hello" }], ...body }),
  });
}

/** Reads a response body as SSE events, timing each one as it arrives. */
async function readStream(res: Response, t0: number, headersAt: number): Promise<Streamed> {
  const decoder = new TextDecoder();
  const events: TimedEvent[] = [];
  let raw = "";
  let pending = "";
  for await (const bytes of res.body!) {
    const at = performance.now() - t0;
    const text = decoder.decode(bytes as Uint8Array, { stream: true });
    raw += text;
    pending += text;
    let end = pending.indexOf("\n\n");
    while (end >= 0) {
      const block = pending.slice(0, end);
      pending = pending.slice(end + 2);
      assert.ok(block.startsWith("data: "), `an event that is not "data: …": ${JSON.stringify(block)}`);
      events.push({ data: block.slice("data: ".length), at });
      end = pending.indexOf("\n\n");
    }
  }
  assert.equal(pending, "", "the body ends inside an event");
  return {
    status: res.status,
    contentType: res.headers.get("content-type") ?? "",
    raw,
    events,
    headersAt,
    endAt: performance.now() - t0,
  };
}

async function stream(url: string, body: Record<string, unknown>): Promise<Streamed> {
  const t0 = performance.now();
  const res = await chat(url, { stream: true, ...body });
  return readStream(res, t0, performance.now() - t0);
}

/** The content chunks of a stream: those whose delta carries text. */
function contentEvents(s: Streamed): TimedEvent[] {
  return s.events.filter(
    (e) => e.data !== "[DONE]" && (JSON.parse(e.data) as Chunk).choices[0]?.delta.content,
  );
}

/** Mean gap between content chunks after the first: the per-token time the client saw. */
function meanItl(s: Streamed): number {
  const c = contentEvents(s);
  return (c.at(-1)!.at - c[0]!.at) / (c.length - 1);
}

/**
 * Median gap between content chunks, over all the given streams: the typical per-token time. A
 * busy machine's stall of either process lengthens one gap (or bunches a few chunks into one
 * read), which moves a mean of 15 gaps by several ms but leaves the median where it was.
 */
function medianItl(...streams: Streamed[]): number {
  const gaps = streams
    .flatMap((s) => {
      const c = contentEvents(s);
      return c.slice(1).map((e, i) => e.at - c[i]!.at);
    })
    .sort((a, b) => a - b);
  return gaps[Math.floor(gaps.length / 2)]!;
}

describe("cicada demo --serve: the OpenAI-compatible LLM endpoint", () => {
  let cli: RunningCli;
  let url: string;

  before(async () => {
    cli = startCli([
      "demo",
      "--serve",
      "--port",
      "0",
      "--capacity",
      String(CONFIG.capacity),
      "--queue",
      String(CONFIG.queue),
      "--token-ms",
      String(CONFIG.tokenMs),
      "--prefill-ms",
      String(CONFIG.prefillMs),
    ]);
    await cli.waitFor(/listening on http:\/\/127\.0\.0\.1:\d+/);
    url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(cli.output().stderr)![1]!;
  });

  after(async () => {
    cli.child.kill("SIGINT");
    const r = await cli.result;
    // Ctrl-C is how a server started to run until stopped ends: exit 0.
    assert.equal(r.code, 0, describeRun(r));
    assert.match(r.stderr, /demo target stopped/);
  });

  it("streams chunks as OpenAI sends them, with usage in the last data chunk when asked", async () => {
    const prompt = "x".repeat(40); // 40 characters: 10 prompt tokens
    const s = await stream(url, {
      max_tokens: 5,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: prompt }],
    });
    assert.equal(s.status, 200);
    assert.match(s.contentType, /^text\/event-stream/);
    assert.ok(s.raw.endsWith("data: [DONE]\n\n"), s.raw);
    assert.equal(s.events.at(-1)!.data, "[DONE]");
    const chunks = s.events.slice(0, -1).map((e) => JSON.parse(e.data) as Chunk);
    for (const c of chunks) assert.equal(c.object, "chat.completion.chunk");
    // role, 5 contents, finish, usage
    assert.equal(chunks.length, 8);
    assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: "assistant", content: "" });
    const contents = chunks.slice(1, 6).map((c) => c.choices[0]!.delta.content!);
    for (const t of contents) assert.match(t, /^\S+ $/);
    assert.equal(chunks[6]!.choices[0]!.finish_reason, "length");
    assert.deepEqual(chunks[7]!.choices, []);
    assert.deepEqual(chunks[7]!.usage, { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
    assert.equal(chunks.filter((c) => c.usage !== undefined).length, 1);
  });

  it("sends no usage chunk unless stream_options.include_usage is true", async () => {
    const s = await stream(url, { max_tokens: 3 });
    assert.equal(s.events.at(-1)!.data, "[DONE]");
    const chunks = s.events.slice(0, -1).map((e) => JSON.parse(e.data) as Chunk);
    assert.equal(chunks.length, 5); // role, 3 contents, finish
    assert.ok(chunks.every((c) => c.usage === undefined));
  });

  it("honours max_tokens, and refuses one out of range with a 400", async () => {
    for (const n of [1, 12]) {
      const s = await stream(url, { max_tokens: n });
      assert.equal(contentEvents(s).length, n, `max_tokens ${n}`);
    }
    for (const bad of [0, 4097, "ten", 2.5]) {
      const res = await chat(url, { stream: true, max_tokens: bad });
      assert.equal(res.status, 400, `max_tokens ${JSON.stringify(bad)}`);
      assert.match(((await res.json()) as { error: string }).error, /max_tokens/);
    }
  });

  it("without stream answers one chat.completion object with usage", async () => {
    const t0 = performance.now();
    const res = await chat(url, {
      max_tokens: 7,
      messages: [
        { role: "system", content: "be brief" }, // 8 characters
        { role: "user", content: [{ type: "text", text: "what time is it?" }] }, // 16
      ],
    });
    const elapsed = performance.now() - t0;
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const body = (await res.json()) as {
      id: string;
      object: string;
      model: string;
      choices: { index: number; message: { role: string; content: string }; finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
    };
    assert.match(body.id, /^chatcmpl-/);
    assert.equal(body.object, "chat.completion");
    assert.equal(body.model, "cicada-demo");
    assert.equal(body.choices.length, 1);
    assert.equal(body.choices[0]!.message.role, "assistant");
    assert.equal(body.choices[0]!.message.content.split(" ").length, 7);
    assert.equal(body.choices[0]!.finish_reason, "length");
    assert.deepEqual(body.usage, { prompt_tokens: 6, completion_tokens: 7, total_tokens: 13 });
    // It answers after the generation: first token, then 6 more at ≥ token-ms each.
    assert.ok(elapsed >= FIRST_TOKEN_MS + 6 * CONFIG.tokenMs, `answered after ${elapsed} ms`);
  });

  it("GET /v1/models lists the demo model", async () => {
    const res = await fetch(`${url}/v1/models`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { object: string; data: { id: string; object: string }[] };
    assert.equal(body.object, "list");
    assert.deepEqual(
      body.data.map((m) => [m.id, m.object]),
      [["cicada-demo", "model"]],
    );
  });

  it("runs `capacity` generations at once: the next ones wait (their TTFT includes the wait), beyond the queue 429", async () => {
    const t0 = performance.now();
    const opened: Array<{ res: Response; headersAt: number }> = [];
    // Four at once: two generate, two wait in the queue; all four are accepted (headers sent).
    for (let i = 0; i < 4; i++) {
      const res = await chat(url, { stream: true, max_tokens: 10 });
      assert.equal(res.status, 200, `request ${i + 1}`);
      opened.push({ res, headersAt: performance.now() - t0 });
    }
    const reading = opened.map((o) => readStream(o.res, t0, o.headersAt));
    // The fifth finds both generations busy and the queue full.
    const rejected = await chat(url, { stream: true, max_tokens: 10 });
    assert.equal(rejected.status, 429);
    const retryAfter = Number(rejected.headers.get("retry-after"));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`);
    assert.match(((await rejected.json()) as { error: string }).error, /busy/);

    const streams = await Promise.all(reading);
    for (const s of streams) assert.equal(contentEvents(s).length, 10);
    const ttft = (s: Streamed) => contentEvents(s)[0]!.at;
    const [a, b, c, d] = [...streams].sort((x, y) => ttft(x) - ttft(y)) as [
      Streamed,
      Streamed,
      Streamed,
      Streamed,
    ];
    const firstDone = Math.min(a.endAt, b.endAt);
    for (const queued of [c, d]) {
      // A queued request starts when a running one ends, then waits its own first-token time.
      assert.ok(
        ttft(queued) >= firstDone + FIRST_TOKEN_MS - 10,
        `queued TTFT ${ttft(queued).toFixed(0)} ms, first generation done at ${firstDone.toFixed(0)} ms`,
      );
      // Its role chunk comes when its generation starts, not when it was accepted.
      assert.ok(queued.events[0]!.at >= firstDone - 10, `role chunk at ${queued.events[0]!.at} ms`);
    }
    for (const running of [a, b]) assert.ok(ttft(running) < firstDone, "the first two start at once");

    // With the queue drained, requests are accepted again.
    const again = await stream(url, { max_tokens: 1 });
    assert.equal(again.status, 200);
  });

  it("a client that leaves the queue frees its place", async () => {
    const running = [
      chat(url, { stream: true, max_tokens: 15 }),
      chat(url, { stream: true, max_tokens: 15 }),
    ];
    const responses = await Promise.all(running);
    const leaving = new AbortController();
    const queued = await fetch(`${url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ stream: true, max_tokens: 5, messages: [] }),
      signal: leaving.signal,
    });
    assert.equal(queued.status, 200);
    const stays = await chat(url, { stream: true, max_tokens: 5 });
    assert.equal(stays.status, 200);
    assert.equal((await chat(url, { stream: true, max_tokens: 5 })).status, 429, "the queue is full");
    leaving.abort();
    // The server sees the close shortly after; then the freed place takes a new request.
    let status = 429;
    for (let i = 0; i < 20 && status === 429; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const res = await chat(url, { stream: true, max_tokens: 5 });
      status = res.status;
      await res.body?.cancel();
    }
    assert.equal(status, 200, "the place of the client that left is not freed");
    for (const r of [...responses, stays]) await r.text();
  });

  it("per-token time rises with the number of running generations", async () => {
    const alone = await stream(url, { max_tokens: 16 });
    const [x, y] = await Promise.all([stream(url, { max_tokens: 16 }), stream(url, { max_tokens: 16 })]);
    // Timers only ever fire late: over the whole stream, no faster than tokenMs a token.
    assert.ok(meanItl(alone) >= CONFIG.tokenMs - 2, `alone ${meanItl(alone).toFixed(1)} ms per token`);
    // tokenMs × (1 + 1·(2 − 1)/2) = 1.5 × tokenMs with both running. Compared by the median
    // gap: one stall during the stream alone would otherwise raise its mean towards the loaded one.
    const itlAlone = medianItl(alone);
    const itlLoaded = medianItl(x!, y!);
    assert.ok(
      itlLoaded >= itlAlone * 1.2,
      `per token: alone ${itlAlone.toFixed(1)} ms, two at once ${itlLoaded.toFixed(1)} ms`,
    );
  });

  it("the time to first token grows with the prompt (prefill)", async () => {
    const short = await stream(url, { max_tokens: 1, messages: [{ role: "user", content: "hi" }] });
    // 2,400 characters: 600 prompt tokens × 1 ms of prefill. The difference asked for leaves
    // 150 ms to a busy machine's stalls during the short one, which only make it look slower.
    const long = await stream(url, {
      max_tokens: 1,
      messages: [{ role: "user", content: "y".repeat(2400) }],
    });
    const ttft = (s: Streamed) => contentEvents(s)[0]!.at;
    assert.ok(ttft(long) >= FIRST_TOKEN_MS + 600, `long prompt TTFT ${ttft(long)} ms`);
    assert.ok(ttft(long) - ttft(short) >= 450, `short ${ttft(short)} ms, long ${ttft(long)} ms`);
  });

  it("the example loadfile streams completions with the server's usage", async () => {
    const project = tempProject({});
    try {
      const out = join(project.dir, "out.json");
      const r = await runCli(
        [
          "run",
          join(ROOT, "examples/llm-service.ts"),
          "--headless",
          "-H",
          url,
          "-u",
          "2",
          "--iterations-per-user",
          "2",
          "-t",
          "30s",
          "--processes",
          "1",
          "--only-summary",
          "--json",
          out,
        ],
        { timeoutMs: 30_000 },
      );
      assert.equal(r.code, 0, describeRun(r));
      const result = readJson<RunResult>(out);
      assertValidResult(result);
      const e = result.endpoints.find((x) => x.name === "/v1/chat/completions");
      assert.ok(e, `no /v1/chat/completions endpoint: ${result.endpoints.map((x) => x.name).join(", ")}`);
      assert.equal(e.requests, 4);
      assert.equal(e.failures, 0);
      // Two users at a capacity of two: nobody waits, and every stream brings its 64 tokens.
      assert.deepEqual([e.counters?.["end:completed"], e.counters?.tokens], [4, 4 * 64]);
    } finally {
      project.cleanup();
    }
  });
});

describe("cicada demo: bad flags", () => {
  for (const [args, message] of [
    [["--capacity", "0"], /--capacity: expected an integer ≥ 1, got "0"/],
    [["--queue", "-1"], /--queue: expected an integer ≥ 0, got "-1"/],
    [["--token-ms", "fast"], /--token-ms: expected a number of milliseconds ≥ 0, got "fast"/],
    [["--port", "70000"], /--port: expected a port 0–65535, got "70000"/],
    [["--serve", "-u", "5"], /demo --serve runs no test, so -u\/--users has nothing to do/],
  ] as const) {
    it(`demo ${args.join(" ")}: exit 2 naming it`, async () => {
      const r = await runCli(["demo", ...args], { timeoutMs: 20_000 });
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /listening/);
    });
  }
});
