// The package's import name: "cicada-load", with the older "cicada" kept as an alias in loadfiles.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { count, describeRun, runLoad, startServer, type TestServer } from "./helpers.js";

function loadfile(pkg: string): string {
  return `import { HttpUser, constant, task } from "${pkg}";
export class Web extends HttpUser {
  static waitTime = constant(0.05);
  @task()
  async index() {
    await this.client.get("/named");
  }
}
`;
}

describe("the package's import name", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer((_req, res) => res.end("ok"));
  });
  after(async () => {
    await server.close();
  });

  for (const pkg of ["cicada-load", "cicada"]) {
    it(`a loadfile importing from "${pkg}" runs`, async () => {
      const before = count(server, "GET /named");
      const r = await runLoad(loadfile(pkg), [
        "--headless",
        "-H",
        server.url,
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "1s",
      ]);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.result.tool, "cicada");
      assert.ok(r.result.totals.requests > 0, describeRun(r));
      const served = count(server, "GET /named") - before;
      assert.ok(
        served >= r.result.totals.requests && served <= r.result.totals.requests + r.result.totals.cancelled,
        `served ${served}, counted ${r.result.totals.requests} (+${r.result.totals.cancelled} cancelled)`,
      );
    });
  }

  it("a loadfile importing another package name is refused with a clear error", async () => {
    const r = await runLoad(loadfile("cicada-loadx"), [
      "--headless",
      "-H",
      server.url,
      "-u",
      "1",
      "-t",
      "1s",
    ]).catch((e: Error) => e);
    // No JSON result: the loadfile does not bundle, so runLoad's own assertion names the failure.
    assert.ok(r instanceof Error, "a loadfile with an unresolvable import ran");
    assert.match(r.message, /exit 2/);
    assert.match(r.message, /cicada-loadx/);
  });
});
