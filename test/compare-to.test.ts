/** `run --compare-to`: the comparison with a stored baseline at the end of a run. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { XMLParser } from "fast-xml-parser";
import type { RunResult } from "../src/result/result.js";
import { describeRun, runCli, startServer, tempProject } from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0);
  @task hit() { return this.client.get("/work"); }
}
`;

describe("run --compare-to", () => {
  it("flags a slower target against a stored baseline, with exit 3, JSON and JUnit", async () => {
    let delayMs = 10;
    const server = await startServer((_req, res) => setTimeout(() => res.end("done"), delayMs));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    const run = (extra: string[]) =>
      runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          server.url,
          "-u",
          "10",
          "-r",
          "100",
          "-t",
          "6s",
          "--processes",
          "1",
          "--only-summary",
          ...extra,
        ],
        { cwd: project.dir, timeoutMs: 30_000 },
      );
    try {
      const first = await run(["--json", "base.json"]);
      assert.equal(first.code, 0, describeRun(first));
      const saved = await runCli(["baseline", "save", "base.json", "--name", "v1"], { cwd: project.dir });
      assert.equal(saved.code, 0, describeRun(saved));

      // A baseline that does not exist is a usage error before anything runs.
      const before = server.total();
      const missing = await run(["--compare-to", "v0"]);
      assert.equal(missing.code, 2, describeRun(missing));
      assert.match(missing.stderr, /v0/);
      assert.equal(server.total(), before, "nothing ran");

      delayMs = 20;
      const slower = await run(["--compare-to", "v1", "--json", "out.json", "--junit", "junit.xml"]);
      assert.equal(slower.code, 3, describeRun(slower));
      const result = JSON.parse(readFileSync(join(project.dir, "out.json"), "utf8")) as RunResult;
      assert.equal(result.exitCode, 3);
      assert.equal(result.comparison?.verdict, "regression");
      const p50 = result.comparison!.rows.find((r) => r.endpoint === "GET /work" && r.metric === "p50");
      assert.equal(p50?.verdict, "regression", JSON.stringify(result.comparison?.rows, null, 1));
      assert.ok(result.recommendations?.some((f) => f.kind === "regression" && f.subject === "GET /work"));
      assert.match(slower.stdout, /Compared with v1/);

      const xml = readFileSync(join(project.dir, "junit.xml"), "utf8");
      const doc = new XMLParser({
        ignoreAttributes: false,
        attributeNamePrefix: "",
        isArray: (n) => n === "testsuite" || n === "testcase",
      }).parse(xml);
      const suite = (
        doc.testsuites.testsuite as Array<{
          name: string;
          testcase: Array<{ name: string; failure?: unknown }>;
        }>
      ).find((s) => s.name === "cicada.comparison");
      assert.ok(suite, xml);
      assert.ok(suite.testcase.some((c) => c.name === "GET /work p50" && c.failure !== undefined));
    } finally {
      project.cleanup();
      await server.close();
    }
  });
});
