import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import {
  assertValidResult,
  type CliResult,
  readJson,
  runCli,
  startCli,
  startServer,
  type TestServer,
  tempProject,
} from "./helpers.js";

/** What the server saw of one request. */
interface Seen {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

interface QuickServer extends TestServer {
  seen: Seen[];
  /** Distinct TCP connections that carried at least one request. */
  sockets: Set<Socket>;
  /** Most requests in progress at the same time. */
  maxInFlight: number;
}

/**
 * A real server on 127.0.0.1 that records every request (method, URL, headers, body) and
 * answers after `delayMs`: 500 for paths under /fail, 200 otherwise.
 */
async function quickServer(delayMs = 0): Promise<QuickServer> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  let inFlight = 0;
  let self: QuickServer | undefined;
  const srv = await startServer((req: IncomingMessage, res: ServerResponse) => {
    sockets.add(req.socket);
    inFlight++;
    self!.maxInFlight = Math.max(self!.maxInFlight, inFlight);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      seen.push({
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks),
      });
      const reply = () => {
        inFlight--;
        res.statusCode = (req.url ?? "").startsWith("/fail") ? 500 : 200;
        res.end("ok");
      };
      if (delayMs > 0) setTimeout(reply, delayMs);
      else reply();
    });
  });
  self = Object.assign(srv, { seen, sockets, maxInFlight: 0 });
  return self;
}

async function withServer<T>(delayMs: number, fn: (s: QuickServer) => Promise<T>): Promise<T> {
  const s = await quickServer(delayMs);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

interface QuickRun extends CliResult {
  json: any;
  wallSec: number;
}

/**
 * Runs `cicada quick ARGS --json result.json` in a fresh temp project holding `files`.
 * `json` is the parsed result, or undefined if none was written.
 */
async function quick(
  args: string[],
  opts: { files?: Record<string, string>; json?: boolean } = {},
): Promise<QuickRun> {
  const p = tempProject(opts.files ?? {});
  try {
    const out = join(p.dir, "result.json");
    const t0 = Date.now();
    const r = await runCli(["quick", ...args, ...(opts.json === false ? [] : ["--json", out])], {
      cwd: p.dir,
      timeoutMs: 30_000,
    });
    const wallSec = (Date.now() - t0) / 1000;
    return { ...r, wallSec, json: existsSync(out) ? readJson(out) : undefined };
  } finally {
    p.cleanup();
  }
}

function show(r: CliResult): string {
  return `code=${r.code} signal=${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/** Exit `code`, one `cicada: ...` line on stderr matching `re`, nothing on stdout, no stack. */
function assertCliError(r: QuickRun, code: number, re: RegExp): void {
  assert.equal(r.signal, null, show(r));
  assert.equal(r.code, code, show(r));
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr\n${show(r)}`);
  assert.match(lines[0]!, re, show(r));
  assert.equal(r.stdout, "", show(r));
  assert.equal(r.json, undefined, "no JSON result for a run that never started");
}

describe("cicada quick: request count, duration and rate", () => {
  it("-n 200 -c 10: exactly 200 requests at the server and in the JSON, over 10 keep-alive connections", async () => {
    await withServer(2, async (s) => {
      const r = await quick([`${s.url}/hello`, "-n", "200", "-c", "10", "--only-summary"]);
      assert.equal(r.code, 0, show(r));
      assert.ok(r.json, show(r));
      assertValidResult(r.json);
      assert.equal(s.total(), 200, "requests at the server");
      assert.equal(s.counts.get("GET /hello"), 200);
      assert.equal(r.json.totals.requests, 200);
      assert.equal(r.json.totals.failures, 0);
      assert.equal(r.json.totals.iterations, 200);
      assert.equal(r.json.stopReason, "iterations");
      assert.equal(r.json.config.users, 10);
      assert.equal(r.json.users.peak, 10);
      // One stat row, named by the URL path, with the method in its own column.
      assert.equal(r.json.endpoints.length, 1);
      assert.equal(r.json.endpoints[0]!.name, "/hello");
      assert.equal(r.json.endpoints[0]!.method, "GET");
      assert.equal(r.json.endpoints[0]!.requests, 200);
      // Each user keeps one keep-alive connection, and they really run side by side.
      assert.equal(s.sockets.size, 10, "distinct connections that carried requests");
      assert.ok(s.maxInFlight >= 5, `at most ${s.maxInFlight} requests were in flight at once`);
    });
  });

  it("-n 10 -c 10: all connections start together, so all ten requests are in flight at once", async () => {
    // The server takes 40 ms: a user that started alone would get through several requests
    // before the others, leaving fewer than ten to overlap.
    await withServer(40, async (s) => {
      const r = await quick([`${s.url}/together`, "-n", "10", "-c", "10", "--only-summary"]);
      assert.equal(r.code, 0, show(r));
      assert.equal(s.total(), 10);
      assert.equal(s.maxInFlight, 10, "requests in flight at the same time");
      assert.equal(s.sockets.size, 10);
    });
  });

  it("-n smaller than -c opens only as many connections as requests", async () => {
    await withServer(0, async (s) => {
      const r = await quick([`${s.url}/few`, "-n", "3", "-c", "50", "--only-summary"]);
      assert.equal(r.code, 0, show(r));
      assert.equal(s.total(), 3);
      assert.equal(r.json.totals.requests, 3);
      assert.equal(r.json.config.users, 3);
      assert.ok(s.sockets.size <= 3, `${s.sockets.size} connections for 3 requests`);
    });
  });

  it("-d 2s runs about 2 s, and every request the server saw is in the result", async () => {
    await withServer(5, async (s) => {
      const r = await quick([`${s.url}/timed?x=1`, "-d", "2s", "-c", "4", "--only-summary"]);
      assert.equal(r.code, 0, show(r));
      assertValidResult(r.json);
      assert.equal(r.json.stopReason, "run-time");
      assert.equal(r.json.config.runTimeSec, 2);
      assert.ok(
        r.json.durationSec >= 1.9 && r.json.durationSec <= 3,
        `durationSec ${r.json.durationSec}, expected about 2`,
      );
      assert.ok(r.wallSec < 15, `the whole command took ${r.wallSec}s`);
      // In-flight requests finish at the stop (within the timeout), so nothing is lost.
      assert.equal(r.json.totals.cancelled, 0);
      assert.ok(r.json.totals.requests > 20, `only ${r.json.totals.requests} requests in 2 s`);
      assert.equal(s.total(), r.json.totals.requests, "server count vs reported requests");
      // The query is sent and is part of the row name.
      assert.equal(r.json.endpoints[0]!.name, "/timed?x=1");
      assert.ok(s.seen.every((x) => x.url === "/timed?x=1"));
    });
  });

  it("--rate 50 -d 2s (50 connections) gives about 100 requests, spread over the run", async () => {
    await withServer(0, async (s) => {
      const arrivals: number[] = [];
      s.server.on("request", () => arrivals.push(Date.now()));
      const r = await quick([`${s.url}/paced`, "--rate", "50", "-d", "2s", "--only-summary"]);
      assert.equal(r.code, 0, show(r));
      const n = s.total();
      assert.ok(n >= 75 && n <= 125, `${n} requests, expected 100 ± 25 %`);
      assert.equal(r.json.totals.requests, n);
      // Paced, not one burst: no 200 ms window holds more than a third of the requests.
      let worst = 0;
      for (const t of arrivals) worst = Math.max(worst, arrivals.filter((u) => u >= t && u < t + 200).length);
      assert.ok(worst <= n / 3, `${worst} of ${n} requests arrived within 200 ms`);
    });
  });

  it("with neither -n nor -d it runs for 10 s by default; Ctrl-C stops it gracefully", async () => {
    await withServer(5, async (s) => {
      const p = tempProject({});
      try {
        const out = join(p.dir, "result.json");
        const run = startCli(["quick", `${s.url}/`, "-c", "2", "--json", out], { cwd: p.dir });
        const killer = setTimeout(() => run.child.kill("SIGKILL"), 20_000);
        try {
          await run.waitFor("quick: GET");
          // Ctrl-C once the load is flowing: on a busy machine the first request can take a while.
          for (let i = 0; i < 150 && s.total() === 0; i++) await delay(100);
          await delay(300);
          run.child.kill("SIGINT");
          const r = await run.result;
          assert.equal(r.code, 0, show(r));
          const json = readJson(out);
          assert.equal(json.config.runTimeSec, 10);
          assert.equal(json.config.iterations, null);
          assert.equal(json.stopReason, "signal");
          assert.ok(json.durationSec < 5, `ran ${json.durationSec}s after SIGINT at ~1 s`);
          assert.equal(s.total(), json.totals.requests);
        } finally {
          clearTimeout(killer);
        }
      } finally {
        p.cleanup();
      }
    });
  });
});

describe("cicada quick: method, headers and body", () => {
  it("-m post -b JSON -H ... reaches the server intact, with content-type application/json", async () => {
    await withServer(0, async (s) => {
      const body = '{"query":"wörld","n":[1,2],"quote":"\\"`\u0024{process.exit(9)}`"}';
      const tricky = `"'\`\${1+1}\\n</script>`;
      const r = await quick([
        `${s.url}/api/echo?v=2`,
        "-m",
        "post",
        "-b",
        body,
        "-H",
        "X-Trace: abc: def",
        "-H",
        "authorization: Bearer t0k",
        "-H",
        `X-Tricky: ${tricky}`,
        "-n",
        "3",
        "-c",
        "1",
        "--only-summary",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.equal(s.seen.length, 3);
      for (const x of s.seen) {
        assert.equal(x.method, "POST");
        assert.equal(x.url, "/api/echo?v=2");
        assert.equal(x.body.toString("utf8"), body);
        assert.equal(x.headers["content-type"], "application/json");
        assert.equal(x.headers["content-length"], String(Buffer.byteLength(body)));
        assert.equal(x.headers["x-trace"], "abc: def");
        assert.equal(x.headers.authorization, "Bearer t0k");
        assert.equal(x.headers["x-tricky"], tricky);
      }
      assert.equal(r.json.endpoints[0]!.method, "POST");
      assert.equal(r.json.endpoints[0]!.name, "/api/echo?v=2");
    });
  });

  it("a non-JSON body gets no JSON content-type, and an explicit Content-Type always wins", async () => {
    await withServer(0, async (s) => {
      const plain = await quick([`${s.url}/form`, "-m", "PUT", "-b", "a=1&b=2", "-n", "1", "--only-summary"]);
      assert.equal(plain.code, 0, show(plain));
      assert.equal(s.seen[0]!.method, "PUT");
      assert.equal(s.seen[0]!.body.toString(), "a=1&b=2");
      assert.notEqual(s.seen[0]!.headers["content-type"], "application/json");

      const typed = await quick([
        `${s.url}/typed`,
        "-m",
        "POST",
        "-b",
        '{"a":1}',
        "-H",
        "Content-Type: text/plain",
        "-n",
        "1",
        "--only-summary",
      ]);
      assert.equal(typed.code, 0, show(typed));
      assert.equal(s.seen[1]!.headers["content-type"], "text/plain");
      assert.equal(s.seen[1]!.body.toString(), '{"a":1}');
    });
  });

  it("-b @file sends the file's bytes; a missing file is exit 2 and nothing is sent", async () => {
    await withServer(0, async (s) => {
      const body = '{\n  "name": "load",\n  "tags": ["ü", "\\u2028"]\n}\n';
      const r = await quick(
        [`${s.url}/upload`, "-m", "PUT", "-b", "@body.json", "-n", "2", "--only-summary"],
        {
          files: { "body.json": body },
        },
      );
      assert.equal(r.code, 0, show(r));
      assert.equal(s.seen.length, 2);
      for (const x of s.seen) {
        assert.equal(x.method, "PUT");
        assert.equal(x.body.toString("utf8"), body);
        assert.equal(x.headers["content-type"], "application/json");
      }

      const missing = await quick([`${s.url}/upload`, "-b", "@nope.json", "-n", "1"]);
      assertCliError(missing, 2, /-b\/--body: cannot read nope\.json: no such file/);
      assert.equal(s.total(), 2, "the failed run sent nothing");
    });
  });
});

describe("cicada quick: exit codes and output", () => {
  it("500 responses → exit 1, failures in the summary and the JSON; --exit-code-on-error changes it", async () => {
    await withServer(0, async (s) => {
      const r = await quick([`${s.url}/fail`, "-n", "20", "-c", "2", "--only-summary"]);
      assert.equal(r.code, 1, show(r));
      assert.equal(r.json.totals.requests, 20);
      assert.equal(r.json.totals.failures, 20);
      assert.equal(r.json.exitCode, 1);
      assert.deepEqual(
        r.json.failures.map((f: any) => [f.method, f.name, f.error, f.occurrences]),
        [["GET", "/fail", "HTTP 500", 20]],
      );
      assert.match(r.stdout, /Failures[\s\S]*20\s+GET\s+\/fail\s+HTTP 500/);

      const custom = await quick([
        `${s.url}/fail`,
        "-n",
        "2",
        "-c",
        "1",
        "--exit-code-on-error",
        "7",
        "--only-summary",
      ]);
      assert.equal(custom.code, 7, show(custom));
    });
  });

  it("prints the same summary as `run`; --json - puts the JSON on stdout and the summary on stderr", async () => {
    await withServer(0, async (s) => {
      const r = await quick([`${s.url}/sum`, "-n", "30", "-c", "3"], { json: false });
      assert.equal(r.code, 0, show(r));
      assert.match(r.stderr, /^quick: GET http:\/\/127\.0\.0\.1:\d+\/sum, 3 connections, 30 requests$/m);
      assert.match(r.stdout, /Cicada \S+: \d+\.\ds, peak 3 users, 30 iterations, stopped by iterations/);
      assert.match(r.stdout, /Response times in ms/);
      assert.match(r.stdout, /Type\s+Name\s+Reqs\s+Fails\s+Med\s+p90\s+p95\s+p99\s+Max\s+Avg\s+RPS/);
      assert.match(r.stdout, /HTTP\s+GET \/sum\s+30\s+0\(0\.0%\)/);
      assert.match(r.stdout, /Aggregated\s+30\s+0\(0\.0%\)/);

      const j = await quick([`${s.url}/sum`, "-n", "5", "-c", "1", "--json", "-", "--only-summary"], {
        json: false,
      });
      assert.equal(j.code, 0, show(j));
      const parsed = JSON.parse(j.stdout);
      assertValidResult(parsed);
      assert.equal(parsed.totals.requests, 5);
      assert.match(j.stderr, /Aggregated\s+5\s+0\(0\.0%\)/);
      assert.doesNotMatch(j.stderr, /^quick:/m, "--only-summary hides the banner");
    });
  });

  for (const [label, url] of [
    ["ftp:// URL", "ftp://127.0.0.1/x"],
    ["URL without a scheme", "localhost:8000/x"],
    ["not a URL", "not a url"],
  ] as const) {
    it(`${label} → exit 2`, async () => {
      const r = await quick([url, "-n", "1"]);
      assertCliError(r, 2, /^cicada: (invalid URL|URL must start with http)/);
    });
  }

  for (const [label, args, re] of [
    [
      "-n and -d together",
      ["-n", "10", "-d", "1s"],
      /-n\/--requests and -d\/--duration cannot be used together/,
    ],
    ["-c 0", ["-c", "0"], /-c\/--connections: expected an integer ≥ 1, got "0"/],
    ["-n 1.5", ["-n", "1.5"], /-n\/--requests: expected an integer ≥ 1/],
    ["-d soon", ["-d", "soon"], /-d\/--duration: expected a duration/],
    ["--rate 0", ["--rate", "0"], /--rate: expected a number > 0/],
    ["-t 0", ["-t", "0", "-n", "1"], /-t\/--timeout: must be more than 0/],
    ["a header without a colon", ["-H", "X-Broken", "-n", "1"], /-H\/--header: expected "Name: value"/],
    ["a bad method", ["-m", "GE T", "-n", "1"], /-m\/--method: invalid method/],
  ] as const) {
    it(`${label} → exit 2, nothing sent`, async () => {
      await withServer(0, async (s) => {
        const r = await quick([`${s.url}/x`, ...args]);
        assertCliError(r, 2, re);
        assert.equal(s.total(), 0);
      });
    });
  }

  it("unreachable URL → exit 4 from the preflight check", async () => {
    const r = await quick(["http://127.0.0.1:1/health", "-n", "5"]);
    assertCliError(r, 4, /^cicada: cannot reach http:\/\/127\.0\.0\.1:1\b/);
  });

  it("a timeout (-t) turns a slow response into a failure", async () => {
    await withServer(1500, async (s) => {
      const r = await quick([`${s.url}/slow`, "-n", "1", "-c", "1", "-t", "300ms", "--only-summary"]);
      assert.equal(r.code, 1, show(r));
      assert.equal(r.json.totals.failures, 1);
      assert.ok(r.json.totals.latencyMs.max < 1200, `took ${r.json.totals.latencyMs.max} ms`);
      assert.match(r.json.failures[0].error, /timeout|timed out/i);
    });
  });
});
