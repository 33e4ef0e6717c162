/** `run --html` and `cicada report`: the same report, live or from a saved result. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { describeRun, runCli, startServer, tempProject } from "./helpers.js";

describe("HTML report from the CLI", () => {
  it("run --html writes the report; report RESULT --html renders the same page from the JSON", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.05);
  @task hit() { return this.client.get("/report-me"); }
}
`,
    });
    try {
      const run = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          server.url,
          "-u",
          "2",
          "-t",
          "2s",
          "--html",
          "live.html",
          "--json",
          "r.json",
          "--junit",
          "j.xml",
          "--only-summary",
        ],
        { cwd: project.dir },
      );
      assert.equal(run.code, 0, describeRun(run));
      const live = readFileSync(join(project.dir, "live.html"), "utf8");
      assert.match(live, /^<!doctype html>/i);
      assert.match(live, /\/report-me/);

      const later = await runCli(["report", "r.json", "--html", "later.html", "--junit", "later.xml"], {
        cwd: project.dir,
      });
      assert.equal(later.code, 0, describeRun(later));
      assert.equal(
        readFileSync(join(project.dir, "later.html"), "utf8"),
        live,
        "the same page from the saved result",
      );
      assert.equal(
        readFileSync(join(project.dir, "later.xml"), "utf8"),
        readFileSync(join(project.dir, "j.xml"), "utf8"),
      );

      const none = await runCli(["report", "r.json"], { cwd: project.dir });
      assert.equal(none.code, 2);
      assert.match(none.stderr, /nothing to write/);
      const missing = await runCli(["report", "nope.json", "--html", "x.html"], { cwd: project.dir });
      assert.equal(missing.code, 2);
      assert.match(missing.stderr, /nope\.json/);
      const notResult = await runCli(["report", "loadtest.ts", "--html", "x.html"], { cwd: project.dir });
      assert.equal(notResult.code, 2, describeRun(notResult));
    } finally {
      project.cleanup();
      await server.close();
    }
  });

  it("an output path in a missing directory is a usage error before the test, not after it", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task hit() { return this.client.get("/x"); }
}
`,
    });
    try {
      for (const flag of ["--html", "--json", "--junit"]) {
        const r = await runCli(
          ["run", "--headless", "loadtest.ts", "-H", server.url, "-t", "1s", flag, "/nonexistent-dir/out"],
          {
            cwd: project.dir,
          },
        );
        assert.equal(r.code, 2, describeRun(r));
        assert.match(
          r.stderr,
          new RegExp(`cannot write ${flag} /nonexistent-dir/out: no directory /nonexistent-dir`),
        );
      }
      assert.equal(server.total(), 0, "no load was sent");
    } finally {
      project.cleanup();
      await server.close();
    }
  });
});
