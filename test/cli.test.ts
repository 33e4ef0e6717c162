import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type CliResult, readJson, runCli, startServer, type TestServer, tempProject } from "./helpers.js";

/** Hits GET / with a short wait, so a run makes a modest, steady number of requests. */
const WEB = `import { HttpUser, constant, task } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task()
  async index() {
    await this.client.get("/");
  }
}
`;

/** Two classes hitting different paths, to see which ones ran. */
const TWO = `import { HttpUser, constant, task } from "cicada-load";
export class Alpha extends HttpUser {
  static waitTime = constant(0.02);
  @task()
  async a() {
    await this.client.get("/alpha");
  }
}
export class Beta extends HttpUser {
  static waitTime = constant(0.02);
  @task()
  async b() {
    await this.client.get("/beta");
  }
}
`;

const PACKAGE_VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** Runs the CLI in a fresh temp project holding `files`; the project is removed afterwards. */
async function runIn(
  files: Record<string, string>,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult & { json: any }> {
  const p = tempProject(files);
  try {
    const r = await runCli(args, { cwd: p.dir, env: opts.env, timeoutMs: opts.timeoutMs ?? 30000 });
    const out = join(p.dir, "result.json");
    return { ...r, json: existsSync(out) ? readJson(out) : undefined };
  } finally {
    p.cleanup();
  }
}

function show(r: CliResult): string {
  return `code=${r.code} signal=${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

function assertNoStack(r: CliResult): void {
  assert.doesNotMatch(r.stderr, /^\s+at .+[:(]\d+/m, `stack trace on stderr\n${show(r)}`);
  assert.doesNotMatch(r.stderr, /internal error/i, show(r));
}

/** Exit code `code`, exactly one line on stderr matching `re`, nothing on stdout, no stack. */
function assertUsageError(r: CliResult, code: number, re: RegExp): void {
  assert.equal(r.signal, null, show(r));
  assert.equal(r.code, code, show(r));
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr\n${show(r)}`);
  assert.match(lines[0]!, re, show(r));
  assert.equal(r.stdout, "", show(r));
  assertNoStack(r);
}

/** The bundle of checks shared by the "server misbehaves" runs. */
function assertFailedRun(r: CliResult & { json: any }, error: RegExp): void {
  assert.equal(r.signal, null, show(r));
  assert.equal(r.code, 1, show(r));
  assertNoStack(r);
  assert.ok(r.json, `no JSON result written\n${show(r)}`);
  assert.equal(r.json.stopReason, "run-time");
  assert.equal(r.json.exitCode, 1);
  assert.ok(r.json.totals.requests > 0, "no requests were recorded");
  assert.equal(r.json.totals.failures, r.json.totals.requests, "every completed request must fail");
  assert.ok(r.json.failures.length >= 1);
  for (const f of r.json.failures) {
    assert.equal(f.method, "GET");
    assert.equal(f.name, "/");
    assert.match(f.error, error);
    assert.doesNotMatch(f.error, /\n\s+at /, "the error text must not be a stack trace");
  }
  assert.match(r.stdout, /Failures/, "the summary lists the failures");
}

describe("cicada run: loadfile errors", { concurrency: 3 }, () => {
  it("syntax error → exit 2 with file:line:column", async () => {
    const r = await runIn(
      {
        "loadtest.ts": 'import { HttpUser, task } from "cicada-load";\nconst a = 1;\nconst = 1;\n',
      },
      ["run", "--headless", "loadtest.ts", "-H", "http://127.0.0.1:1"],
    );
    assertUsageError(r, 2, /^cicada: loadtest\.ts:3:7: error: \S/);
  });

  it("import of a missing local file → exit 2 with file:line:column", async () => {
    const r = await runIn(
      {
        "loadtest.ts": `import { x } from "./nothere.js";\n${WEB}export const y = x;\n`,
      },
      ["run", "--headless", "loadtest.ts", "-H", "http://127.0.0.1:1"],
    );
    assertUsageError(r, 2, /^cicada: loadtest\.ts:1:19: error: .*nothere\.js/);
  });

  it("import of a missing package → exit 2 with file:line:column", async () => {
    const r = await runIn(
      {
        "loadtest.ts": `${WEB}import pkg from "no-such-package-cicada-test";\nexport const y = pkg;\n`,
      },
      ["run", "--headless", "loadtest.ts", "-H", "http://127.0.0.1:1"],
    );
    assertUsageError(r, 2, /^cicada: loadtest\.ts:9:17: error: .*no-such-package-cicada-test/);
  });

  it("no exported user class → exit 2 naming the file", async () => {
    const r = await runIn(
      {
        "loadtest.ts":
          'import { HttpUser, task } from "cicada-load";\nclass Hidden extends HttpUser {\n  @task() a() {}\n}\nexport const x = Hidden.name;\n',
      },
      ["run", "--headless", "loadtest.ts", "-H", "http://127.0.0.1:1"],
    );
    assertUsageError(r, 2, /^cicada: loadtest\.ts\b.*no user class/);
  });

  it("throw at the top level → exit 2 naming the loadfile and line", async () => {
    const r = await runIn(
      {
        "loadtest.ts": `${WEB}\nthrow new Error("boom at top level");\n`,
      },
      ["run", "--headless", "loadtest.ts", "-H", "http://127.0.0.1:1"],
    );
    assertUsageError(r, 2, /^cicada: loadtest\.ts:10:\d+: error: .*boom at top level/);
  });

  it("missing loadfile → exit 2 not found", async () => {
    const r = await runIn({}, ["run", "--headless", "nope.ts", "-H", "http://127.0.0.1:1"]);
    assertUsageError(r, 2, /not found.*nope\.ts/);
  });

  it("default loadfile loadtest.ts missing → exit 2 not found", async () => {
    const r = await runIn({}, ["run", "--headless", "-H", "http://127.0.0.1:1"]);
    assertUsageError(r, 2, /not found.*loadtest\.ts/);
  });
});

describe("cicada run: bad flags and settings", { concurrency: 3 }, () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["-u abc", ["-u", "abc"], /-u\/--users.*"abc"/],
    ["-u 0", ["-u", "0"], /-u\/--users.*"0"/],
    ["-r 0", ["-r", "0"], /-r\/--spawn-rate.*"0"/],
    ["-t 5x", ["-t", "5x"], /--run-time.*"5x"/],
    // Unlike every real flag, so commander adds no "did you mean" line.
    ["--frobnicate", ["--frobnicate"], /unknown option.*--frobnicate/],
  ];
  for (const [label, flags, re] of cases) {
    it(`${label} → exit 2 naming the flag`, async () => {
      const r = await runIn({ "loadtest.ts": WEB }, [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        "http://127.0.0.1:1",
        ...flags,
      ]);
      assertUsageError(r, 2, re);
    });
  }

  it("unknown user class → exit 2 listing the available classes", async () => {
    const r = await runIn({ "loadtest.ts": TWO }, [
      "run",
      "--headless",
      "loadtest.ts",
      "Gamma",
      "-H",
      "http://127.0.0.1:1",
    ]);
    assertUsageError(r, 2, /unknown user class "Gamma".*Alpha.*Beta/);
  });

  it("unreachable host → exit 4 cannot reach", async () => {
    const r = await runIn({ "loadtest.ts": WEB }, [
      "run",
      "--headless",
      "loadtest.ts",
      "-H",
      "http://127.0.0.1:1",
      "-t",
      "1s",
    ]);
    assertUsageError(r, 4, /cannot reach http:\/\/127\.0\.0\.1:1\b/);
  });

  it("HttpUser without any host → exit 2 no host", async () => {
    const r = await runIn({ "loadtest.ts": WEB }, ["run", "--headless", "loadtest.ts", "-t", "1s"]);
    assertUsageError(r, 2, /no host for Web/);
  });

  it("--tags that match no task → exit 2", async () => {
    const tagged = WEB.replace("@task()", '@tag("browse")\n  @task()').replace("constant,", "constant, tag,");
    const r = await runIn({ "loadtest.ts": tagged }, [
      "run",
      "--headless",
      "loadtest.ts",
      "-H",
      "http://127.0.0.1:1",
      "-t",
      "1s",
      "--tags",
      "checkout",
    ]);
    assertUsageError(r, 2, /--tags/);
  });

  it("--version prints package.json's version", async () => {
    const r = await runCli(["--version"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout.trim(), PACKAGE_VERSION);
  });

  it("run --help lists -u, -r, -t and --tags", async () => {
    const r = await runCli(["run", "--help"]);
    assert.equal(r.code, 0, show(r));
    for (const flag of ["-u, --users", "-r, --spawn-rate", "-t, --run-time", "--tags"]) {
      assert.ok(r.stdout.includes(flag), `help lacks ${flag}\n${r.stdout}`);
    }
  });
});

describe("cicada run: runs against a real server", { concurrency: 3 }, () => {
  let ok: TestServer;
  let failing: TestServer;

  before(async () => {
    ok = await startServer((_req, res) => res.end("ok"));
    failing = await startServer((_req, res) => {
      res.statusCode = 500;
      res.end("nope");
    });
  });

  after(async () => {
    await ok.close();
    await failing.close();
  });

  const on500 = (extra: string[]) =>
    runIn({ "loadtest.ts": WEB }, [
      "run",
      "--headless",
      "loadtest.ts",
      "-H",
      failing.url,
      "-u",
      "1",
      "-t",
      "1s",
      "--only-summary",
      "--json",
      "result.json",
      ...extra,
    ]);

  it("HTTP 500s → exit 1 by default", async () => {
    const r = await on500([]);
    assertFailedRun(r, /^HTTP 500$/);
  });

  it("HTTP 500s with --exit-code-on-error 0 → exit 0", async () => {
    const r = await on500(["--exit-code-on-error", "0"]);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.json.exitCode, 0);
    assert.ok(r.json.totals.failures > 0);
  });

  it("HTTP 500s with --exit-code-on-error 7 → exit 7", async () => {
    const r = await on500(["--exit-code-on-error", "7"]);
    assert.equal(r.code, 7, show(r));
    assert.equal(r.json.exitCode, 7);
    assert.ok(r.json.totals.failures > 0);
  });

  it("-f loadtest.ts works like the positional loadfile", async () => {
    const srv = await startServer((_req, res) => res.end("ok"));
    try {
      const r = await runIn({ "load.ts": WEB }, [
        "run",
        "--headless",
        "-f",
        "load.ts",
        "-H",
        srv.url,
        "-i",
        "3",
        "--only-summary",
        "--json",
        "result.json",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.json.config.loadfile, "load.ts");
      assert.equal(r.json.stopReason, "iterations");
      assert.equal(r.json.totals.requests, 3);
      assert.equal(srv.total(), 3);
    } finally {
      await srv.close();
    }
  });

  it("a run shorter than the 1 s stats interval still reports its peak users", async () => {
    const srv = await startServer((_req, res) => res.end("ok"));
    try {
      const r = await runIn({ "loadtest.ts": WEB }, [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        srv.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "0.6s",
        "--only-summary",
        "--json",
        "result.json",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.ok(r.json.totals.requests > 0);
      assert.equal(r.json.users.peak, 2, "both users ran, so the peak is 2");
      assert.match(r.stdout, /peak 2 users/);
    } finally {
      await srv.close();
    }
  });

  it("class names after the positional loadfile select the classes", async () => {
    const srv = await startServer((_req, res) => res.end("ok"));
    try {
      const r = await runIn({ "loadtest.ts": TWO }, [
        "run",
        "--headless",
        "loadtest.ts",
        "Beta",
        "-H",
        srv.url,
        "-u",
        "2",
        "-r",
        "100",
        "-i",
        "4",
        "--only-summary",
        "--json",
        "result.json",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(r.json.config.userClassesRun, ["Beta"]);
      assert.equal(srv.counts.get("GET /beta"), 4);
      assert.equal(srv.counts.get("GET /alpha"), undefined);
    } finally {
      await srv.close();
    }
  });

  it("class names after -f select the classes", async () => {
    const srv = await startServer((_req, res) => res.end("ok"));
    try {
      const r = await runIn({ "load.ts": TWO }, [
        "run",
        "--headless",
        "-f",
        "load.ts",
        "Alpha",
        "-H",
        srv.url,
        "-i",
        "2",
        "--only-summary",
        "--json",
        "result.json",
      ]);
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(r.json.config.userClassesRun, ["Alpha"]);
      assert.equal(srv.counts.get("GET /alpha"), 2);
      assert.equal(srv.counts.get("GET /beta"), undefined);
    } finally {
      await srv.close();
    }
  });

  it("--json - writes only valid JSON to stdout and the summary to stderr", async () => {
    const r = await runIn({ "loadtest.ts": WEB }, [
      "run",
      "--headless",
      "loadtest.ts",
      "-H",
      ok.url,
      "-t",
      "1s",
      "--json",
      "-",
    ]);
    assert.equal(r.code, 0, show(r));
    let json: any;
    assert.doesNotThrow(() => (json = JSON.parse(r.stdout)), `stdout is not pure JSON\n${show(r)}`);
    assert.equal(json.tool, "cicada");
    assert.ok(json.totals.requests > 0);
    assert.match(r.stderr, /Aggregated/);
    assert.match(r.stderr, /stopped by run-time/);
  });

  it("a server that resets every connection → exit 1 with clear failures, no crash", async () => {
    const srv = await startServer((req) => req.socket.destroy());
    try {
      const r = await runIn({ "loadtest.ts": WEB }, [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        srv.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "1s",
        "--only-summary",
        "--json",
        "result.json",
      ]);
      assertFailedRun(r, /connection (closed|reset)|ECONNRESET|socket/i);
    } finally {
      await srv.close();
    }
  });

  it("a server that answers garbage → exit 1 with clear failures, no crash", async () => {
    const sockets = new Set<Socket>();
    const raw: Server = createServer((sock) => {
      sockets.add(sock);
      sock.on("error", () => {});
      sock.on("close", () => sockets.delete(sock));
      sock.end("HELLO\r\n\r\n");
    });
    await new Promise<void>((r) => raw.listen(0, "127.0.0.1", r));
    const port = (raw.address() as { port: number }).port;
    try {
      const r = await runIn({ "loadtest.ts": WEB }, [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        `http://127.0.0.1:${port}`,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "1s",
        "--only-summary",
        "--json",
        "result.json",
      ]);
      assertFailedRun(r, /HTTP|protocol|parse|connection closed/i);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => raw.close(() => r()));
    }
  });
});

describe("cicada run: settings precedence", { concurrency: 3 }, () => {
  /** Runs `fn` with two fresh servers of its own, so concurrent tests cannot blur the counts. */
  async function withServers(fn: (a: TestServer, b: TestServer) => Promise<void>): Promise<void> {
    const a = await startServer((_req, res) => res.end("ok"));
    const b = await startServer((_req, res) => res.end("ok"));
    try {
      await fn(a, b);
    } finally {
      await a.close();
      await b.close();
    }
  }

  const configFile = (settings: string) =>
    `import { defineConfig } from "cicada-load";\nexport default defineConfig(${settings});\n`;
  const baseConfig = (host: string) =>
    configFile(`{ users: 3, spawnRate: 100, runTime: "1s", host: "${host}" }`);
  const args = ["run", "--headless", "loadtest.ts", "--only-summary", "--json", "result.json"];

  it("cicada.config.ts in the cwd sets users, runTime and host", () =>
    withServers(async (srv) => {
      const r = await runIn({ "loadtest.ts": WEB, "cicada.config.ts": baseConfig(srv.url) }, args);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.json.config.users, 3);
      assert.equal(r.json.config.runTimeSec, 1);
      assert.equal(r.json.config.host, srv.url);
      assert.equal(r.json.users.peak, 3);
      assert.equal(r.json.stopReason, "run-time");
      assert.ok(r.json.durationSec >= 0.9 && r.json.durationSec < 5, `durationSec ${r.json.durationSec}`);
      assert.ok(srv.total() > 0, "the config file's host got no requests");
      assert.equal(srv.total(), r.json.totals.requests + r.json.totals.cancelled);
    }));

  it("CICADA_USERS overrides the config file; the file still sets the rest", () =>
    withServers(async (srv) => {
      const r = await runIn({ "loadtest.ts": WEB, "cicada.config.ts": baseConfig(srv.url) }, args, {
        env: { CICADA_USERS: "4" },
      });
      assert.equal(r.code, 0, show(r));
      assert.equal(r.json.config.users, 4);
      assert.equal(r.json.users.peak, 4);
      assert.equal(r.json.config.runTimeSec, 1);
      assert.equal(r.json.config.host, srv.url);
      assert.ok(srv.total() > 0);
    }));

  it("a CLI flag overrides CICADA_* env and the config file", () =>
    withServers(async (srv, other) => {
      const r = await runIn(
        { "loadtest.ts": WEB, "cicada.config.ts": baseConfig(srv.url) },
        [...args, "-u", "2", "-H", other.url],
        { env: { CICADA_USERS: "4", CICADA_HOST: srv.url } },
      );
      assert.equal(r.code, 0, show(r));
      assert.equal(r.json.config.users, 2);
      assert.equal(r.json.users.peak, 2);
      assert.equal(r.json.config.host, other.url);
      assert.ok(other.total() > 0, "the -H host got no requests");
      assert.equal(srv.total(), 0, "the env/config host must not be used");
    }));

  it("--config FILE is used instead of cicada.config.ts", () =>
    withServers(async (srv, other) => {
      const r = await runIn(
        {
          "loadtest.ts": WEB,
          "cicada.config.ts": baseConfig(srv.url),
          "other.ts": configFile(`{ users: 2, spawnRate: 100, runTime: "1s", host: "${other.url}" }`),
        },
        [...args, "--config", "other.ts"],
      );
      assert.equal(r.code, 0, show(r));
      assert.equal(r.json.config.users, 2);
      assert.equal(r.json.config.host, other.url);
      assert.ok(other.total() > 0);
      assert.equal(srv.total(), 0, "cicada.config.ts must be ignored when --config is given");
    }));

  it("a config file with an unknown key → exit 2 naming the key", async () => {
    const r = await runIn(
      {
        "loadtest.ts": WEB,
        "cicada.config.ts": configFile(
          `{ users: 2, runTime: "1s", host: "http://127.0.0.1:1", userz: 5 } as any`,
        ),
      },
      args,
    );
    assertUsageError(r, 2, /cicada\.config\.ts.*unknown.*userz/);
  });

  it("a missing --config file → exit 2 not found", async () => {
    const r = await runIn({ "loadtest.ts": WEB }, [...args, "--config", "missing.config.ts"]);
    assertUsageError(r, 2, /not found.*missing\.config\.ts/);
  });

  const withOptions = `${WEB}export const options = { runTime: "1s", users: 2, spawnRate: 100 };\n`;

  it("the loadfile's exported options apply when nothing else sets them", () =>
    withServers(async (srv) => {
      const r = await runIn({ "loadtest.ts": withOptions }, [...args, "-H", srv.url]);
      assert.equal(r.code, 0, show(r));
      assert.equal(r.json.config.users, 2);
      assert.equal(r.json.config.runTimeSec, 1);
      assert.equal(r.json.users.peak, 2);
      assert.equal(r.json.stopReason, "run-time");
    }));

  it("the loadfile's options lose to the config file and to env", () =>
    withServers(async (srv) => {
      const fileWins = await runIn(
        { "loadtest.ts": withOptions, "cicada.config.ts": configFile(`{ users: 3, host: "${srv.url}" }`) },
        args,
      );
      assert.equal(fileWins.code, 0, show(fileWins));
      assert.equal(fileWins.json.config.users, 3);
      assert.equal(fileWins.json.config.runTimeSec, 1, "runTime still comes from the loadfile");

      const envWins = await runIn({ "loadtest.ts": withOptions }, [...args, "-H", srv.url], {
        env: { CICADA_USERS: "1", CICADA_RUN_TIME: "1.5s" },
      });
      assert.equal(envWins.code, 0, show(envWins));
      assert.equal(envWins.json.config.users, 1);
      assert.equal(envWins.json.config.runTimeSec, 1.5);
      assert.equal(envWins.json.users.peak, 1);
    }));
});
