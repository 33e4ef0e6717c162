// The programmatic API from the published package, as a user's test suite runs it: the shipped
// examples under node:test and under Vitest, a failing threshold as Vitest reports it, and the
// types of run() and benchmark() checked by tsc.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { copyFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { assertExecOk, type Exec, type InstalledPackage, installPackedPackage, npmEnv } from "./helpers.js";

/**
 * Runs a command in the project as a user's shell would: without this test runner's own
 * NODE_TEST_CONTEXT (a nested `node --test` would report to it instead of printing) and without
 * colours, so the output reads as text.
 */
function exec(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Exec> {
  const env = npmEnv({ NO_COLOR: "1", FORCE_COLOR: "0" });
  delete env.NODE_TEST_CONTEXT;
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, killSignal: "SIGKILL" }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

/** Vitest 4.1 runs on Node 20 and takes Vite 8, as this repository's own dev dependency. */
const VITEST = "vitest@4.1.12";

const FAILING = `import { createServer } from "node:http";
import { run } from "cicada-load";
import { afterAll, beforeAll, it } from "vitest";

let server;
let host;
beforeAll(async () => {
  server = createServer((req, res) => res.end("ok"));
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  host = "http://127.0.0.1:" + server.address().port;
});
afterAll(() => server.close());

it("holds an impossible threshold", async () => {
  const result = await run({ host, tasks: { health: (u) => u.client.get("/health") }, users: 2, iterations: 20, thresholds: ["p95<0.001"] });
  result.assertPassed();
});
`;

const TYPED = `import { benchmark, run, UsageError, type LoadTestResult } from "cicada-load";

export async function ok(host: string): Promise<number> {
  const r: LoadTestResult = await run({ host, tasks: { health: (u) => u.client.get("/health") }, users: 5, duration: "1s" });
  const b = await benchmark("GET /health", async ({ signal }) => { await fetch(host, { signal }); }, { iterations: 10 });
  if (r.total.failRatio > 0 || !(r instanceof Object) || UsageError.name === "") return 0;
  return r.endpoint("GET /health").p(95) + b.median;
}
`;

const BAD = `import { run } from "cicada-load";

export async function bad(host: string): Promise<number> {
  const r = await run({ host, tasks: { health: (u) => u.client.get("/health") }, user: 5 });
  return r.endpoint("GET /health").p("95");
}
`;

const TSCONFIG = {
  compilerOptions: {
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    target: "ES2022",
    skipLibCheck: true,
    types: ["node"],
    noEmit: true,
  },
  files: ["vitest.test.ts", "typed.ts"],
};

describe("run() and benchmark() from the installed package", { timeout: 300_000 }, () => {
  let pkg: InstalledPackage;

  before(
    async () => {
      pkg = await installPackedPackage([VITEST, "typescript@5", "@types/node@20"]);
      for (const f of ["node-test.test.mjs", "vitest.test.ts"]) {
        copyFileSync(join(pkg.proj, "node_modules/cicada-load/examples", f), join(pkg.proj, f));
      }
      writeFileSync(join(pkg.proj, "failing.test.mjs"), FAILING);
      writeFileSync(join(pkg.proj, "typed.ts"), TYPED);
      writeFileSync(join(pkg.proj, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
    },
    { timeout: 280_000 },
  );

  after(() => pkg?.cleanup());

  it("the shipped node:test example passes under node --test", async () => {
    const r = await exec(process.execPath, ["--test", "node-test.test.mjs"], pkg.proj, 120_000);
    assertExecOk(r, "node --test node-test.test.mjs");
    assert.match(r.stdout, /# pass 2\n# fail 0/);
  });

  it("the shipped Vitest example passes under vitest run", async () => {
    const r = await exec("npx", ["vitest", "run", "vitest.test.ts"], pkg.proj, 120_000);
    assertExecOk(r, "npx vitest run vitest.test.ts");
    assert.match(r.stdout, /Tests\s+4 passed/);
  });

  it("a failed threshold fails the Vitest test with the metric, the limit and the measured value", async () => {
    const r = await exec("npx", ["vitest", "run", "failing.test.mjs"], pkg.proj, 120_000);
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 1, out);
    assert.match(out, /LoadTestFailed: load test failed \(exit code 3\):/);
    assert.match(out, /threshold "p95<0\.001" failed: p95 measured \d+\.\d\d ms, limit < 0\.001 ms/);
  });

  it("tsc checks the examples and a program against the installed types, and finds misuse", async () => {
    assertExecOk(await exec("npx", ["tsc", "-p", "tsconfig.json"], pkg.proj, 120_000), "tsc");
    writeFileSync(join(pkg.proj, "bad.ts"), BAD);
    writeFileSync(
      join(pkg.proj, "tsconfig.bad.json"),
      JSON.stringify({ ...TSCONFIG, files: ["bad.ts"] }, null, 2),
    );
    const bad = await exec("npx", ["tsc", "-p", "tsconfig.bad.json"], pkg.proj, 120_000);
    const out = bad.stdout + bad.stderr;
    assert.notEqual(bad.code, 0, out);
    assert.match(out, /bad\.ts\(4,.*'user' does not exist/);
    assert.match(out, /bad\.ts\(5,.*'string' is not assignable to parameter of type 'number'/);
    assert.equal(out.trim().split("\n").length, 2, out);
  });
});
