/**
 * One table of settings: every bad value is refused under the name the user gave it (flag, env
 * var, config-file key, scenario key, web API field), and unknown names are refused too.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  type CliResult,
  describeRun,
  readJson,
  runCli,
  startCli,
  startServer,
  type TestServer,
  tempProject,
} from "./helpers.js";

const LOADFILE = `import { HttpUser, constant, task } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task() hit() { return this.client.get("/hit"); }
}
`;

const config = (settings: string) => `export default ${settings};\n`;

async function runIn(
  files: Record<string, string>,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<CliResult & { json: any }> {
  const p = tempProject({ "loadtest.ts": LOADFILE, ...files });
  try {
    const r = await runCli(args, { cwd: p.dir, env, timeoutMs: 30_000 });
    const out = join(p.dir, "result.json");
    return { ...r, json: existsSync(out) ? readJson(out) : undefined };
  } finally {
    p.cleanup();
  }
}

/** Exit 2 and one line on stderr, the one the test expects; no stack trace. */
function assertUsage(r: CliResult, message: RegExp, notMessage?: RegExp): void {
  assert.equal(r.code, 2, describeRun(r));
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line on stderr:\n${r.stderr}`);
  assert.match(lines[0]!, /^cicada: /);
  assert.match(lines[0]!, message);
  if (notMessage) assert.doesNotMatch(lines[0]!, notMessage);
}

// Nothing listens on port 1: a run that got past its settings would fail with exit 4, not 2.
const RUN = ["run", "loadtest.ts", "--headless", "-H", "http://127.0.0.1:1"];

describe("settings: a bad flag is named as the user wrote it", { concurrency: 3 }, () => {
  const cases: Array<[string, string[], RegExp, RegExp?]> = [
    [
      "--iterations-per-user -1",
      [...RUN, "--iterations-per-user", "-1"],
      /--iterations-per-user: expected an integer ≥ 1, got "-1"/,
      /-i\/--iterations\b/,
    ],
    [
      "--rate 5 --max-users 0",
      [...RUN, "--rate", "5", "--max-users", "0"],
      /--max-users: expected an integer ≥ 1, got "0"/,
      /-u\/--users/,
    ],
    [
      "--expect-workers 0",
      [...RUN, "--master", "--expect-workers", "0"],
      /--expect-workers: expected an integer ≥ 1, got "0"/,
      /-u\/--users/,
    ],
    [
      "worker --connect-timeout abc",
      ["worker", "--connect-timeout", "abc"],
      /--connect-timeout: expected an integer ≥ 0, got "abc"/,
      /--autoquit/,
    ],
    [
      "--exit-code-on-error 256",
      [...RUN, "--exit-code-on-error", "256"],
      /--exit-code-on-error: expected an exit code 0–255, got "256"/,
    ],
    [
      "quick --exit-code-on-error 300",
      ["quick", "http://127.0.0.1:1/", "--exit-code-on-error", "300"],
      /--exit-code-on-error: expected an exit code 0–255, got "300"/,
    ],
    ["demo -u 0", ["demo", "-u", "0"], /-u\/--users: expected an integer ≥ 1, got "0"/],
    [
      "--http-engine turbo",
      [...RUN, "--http-engine", "turbo"],
      /--http-engine: expected auto, fast or undici, got "turbo"$/,
    ],
    [
      "quick --http-engine h2",
      ["quick", "http://127.0.0.1:1/", "--http-engine", "h2"],
      /--http-engine: expected auto, fast or undici, got "h2"$/,
    ],
    [
      "--stages with a bad item",
      [...RUN, "--stages", "30s:10,soon"],
      /--stages: expected DURATION:TARGET items such as 30s:100, got "soon"/,
    ],
  ];
  for (const [label, args, message, notMessage] of cases) {
    it(`${label} → exit 2 naming that flag`, async () => {
      assertUsage(await runIn({}, args), message, notMessage);
    });
  }
});

describe("settings: exit codes are 0–255", () => {
  it("--exit-code-on-error 255 is the exit code of a run whose requests all fail", async () => {
    const failing: TestServer = await startServer((_req, res) => {
      res.statusCode = 500;
      res.end("no");
    });
    try {
      const r = await runIn({}, [
        "run",
        "loadtest.ts",
        "--headless",
        "--only-summary",
        "-H",
        failing.url,
        "-i",
        "3",
        "--exit-code-on-error",
        "255",
        "--json",
        "result.json",
      ]);
      assert.equal(r.code, 255, describeRun(r));
      assert.equal(r.json.totals.failures, 3);
      assert.equal(failing.total(), 3);
    } finally {
      await failing.close();
    }
  });
});

describe("settings: env, config file, loadfile options and scenarios name their key", {
  concurrency: 3,
}, () => {
  it("CICADA_MAX_USERS=0 → exit 2 naming the env var", async () => {
    assertUsage(
      await runIn({}, [...RUN, "--rate", "5"], { CICADA_MAX_USERS: "0" }),
      /CICADA_MAX_USERS: expected an integer ≥ 1, got "0"/,
    );
  });

  it("CICADA_EXIT_CODE_ON_ERROR=256 → exit 2 naming the env var", async () => {
    assertUsage(
      await runIn({}, RUN, { CICADA_EXIT_CODE_ON_ERROR: "256" }),
      /CICADA_EXIT_CODE_ON_ERROR: expected an exit code 0–255, got "256"/,
    );
  });

  it("CICADA_HTTP_ENGINE=curl → exit 2 naming the env var and the engines", async () => {
    assertUsage(
      await runIn({}, RUN, { CICADA_HTTP_ENGINE: "curl" }),
      /CICADA_HTTP_ENGINE: expected auto, fast or undici, got "curl"$/,
    );
  });

  it("a bad value in the config file → exit 2 naming the file and the key", async () => {
    assertUsage(
      await runIn({ "cicada.config.ts": config("{ users: -1 }") }, RUN),
      /cicada\.config\.ts: users: expected an integer ≥ 1, got -1/,
    );
  });

  it("a misspelt config-file key → exit 2 with the closest setting", async () => {
    assertUsage(
      await runIn({ "cicada.config.ts": config("{ spawnrate: 5 }") }, RUN),
      /cicada\.config\.ts: unknown setting "spawnrate" \(did you mean "spawnRate"\?\)/,
    );
  });

  it("a bad scenario value in the config file → exit 2 naming scenarios.NAME.KEY", async () => {
    assertUsage(
      await runIn({ "cicada.config.ts": config("{ scenarios: { checkout: { users: 0 } } }") }, RUN),
      /cicada\.config\.ts: scenarios\.checkout\.users: expected an integer ≥ 1, got 0/,
    );
  });

  it("a bad value in the loadfile's options → exit 2 naming options.KEY", async () => {
    const r = await runIn(
      { "loadtest.ts": `${LOADFILE}export const options = { exitCodeOnError: 300 };\n` },
      RUN,
    );
    assertUsage(r, /loadtest\.ts: options\.exitCodeOnError: expected an exit code 0–255, got 300/);
  });

  it("a bad httpEngine in the loadfile's options → exit 2 naming options.httpEngine", async () => {
    const r = await runIn(
      { "loadtest.ts": `${LOADFILE}export const options = { httpEngine: "h2" };\n` },
      RUN,
    );
    assertUsage(r, /loadtest\.ts: options\.httpEngine: expected auto, fast or undici, got "h2"$/);
  });

  it("a workload setting from the environment with scenarios → exit 2 naming the env var", async () => {
    const r = await runIn(
      { "loadtest.ts": `${LOADFILE}export const options = { scenarios: { a: { users: 1 } } };\n` },
      RUN,
      { CICADA_USERS: "3" },
    );
    assertUsage(r, /CICADA_USERS does not apply when the loadfile defines scenarios/);
  });

  it("the config file may hold scenarios", async () => {
    const target = await startServer((_req, res) => res.end("ok"));
    try {
      const r = await runIn(
        { "cicada.config.ts": config("{ scenarios: { a: { users: 1, iterations: 2 } } }") },
        ["run", "loadtest.ts", "--headless", "--only-summary", "-H", target.url, "-t", "20s"],
      );
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(target.total(), 2);
    } finally {
      await target.close();
    }
  });
});

describe("settings: the web API refuses unknown fields", () => {
  it("POST /api/start and /api/edit answer 400 naming the field, and suggest the closest", async () => {
    const target = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    const run = startCli(["run", "loadtest.ts", "--web-port", "0", "-H", target.url], {
      cwd: project.dir,
      env: { CICADA_HEADLESS: "false" },
    });
    try {
      await run.waitFor(/web UI on http:\/\/\S+/);
      const url = /web UI on (http:\/\/\S+)/.exec(run.output().stderr)![1]!;
      const post = async (path: string, body: unknown) => {
        const res = await fetch(`${url}/api/${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        return { status: res.status, body: (await res.json()) as { error?: string } };
      };

      const misspelt = await post("start", { user: 5, runTime: "1s" });
      assert.equal(misspelt.status, 400);
      assert.match(misspelt.body.error!, /unknown field "user" \(did you mean "users"\?\)/);

      const unknown = await post("start", { users: 1, colour: "red" });
      assert.equal(unknown.status, 400);
      assert.match(unknown.body.error!, /unknown field "colour"; known: .*\busers\b/);

      const bad = await post("start", { maxUsers: 0, rate: 5 });
      assert.equal(bad.status, 400);
      assert.match(bad.body.error!, /^maxUsers: expected an integer ≥ 1, got 0$/);
      assert.equal(target.total(), 0, "a refused start sends nothing");

      const started = await post("start", { users: 1, spawnRate: 10, runTime: "30s" });
      assert.equal(started.status, 200, JSON.stringify(started.body));

      const editTypo = await post("edit", { usres: 2 });
      assert.equal(editTypo.status, 400);
      assert.match(editTypo.body.error!, /unknown field "usres" \(did you mean "users"\?\)/);
      const notEditable = await post("edit", { runTime: "5s" });
      assert.equal(notEditable.status, 400);
      assert.match(notEditable.body.error!, /unknown field "runTime"; known: users, spawnRate, rate/);

      assert.equal((await post("stop", {})).status, 200);
    } finally {
      if (run.child.exitCode === null) run.child.kill("SIGINT");
      const timer = setTimeout(() => run.child.kill("SIGKILL"), 15_000);
      await run.result;
      clearTimeout(timer);
      project.cleanup();
      await target.close();
    }
  });
});
