/** Responses are counted per status code, per endpoint and in total: the rate-limit tests' 429s. */
import assert from "node:assert/strict";
import { it } from "node:test";
import { runLoad, startServer } from "./helpers.js";

for (const engine of ["fast", "undici"] as const) {
  it(`[${engine}] counts responses by status code, and 429s are failures unless the loadfile says otherwise`, async () => {
    let n = 0;
    const server = await startServer((req, res) => {
      n++;
      res.statusCode = req.url?.startsWith("/limited") && n % 3 === 0 ? 429 : 200;
      res.end("x");
    });
    try {
      const { result: res, ...r } = await runLoad(
        `
import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/limited"); }
}
`,
        ["-H", server.url, "--http-engine", engine, "-i", "30", "--processes", "1"],
      );
      assert.equal(r.code, 1, r.stderr);
      assert.deepEqual(res.totals.statusCodes, { "200": 20, "429": 10 });
      assert.deepEqual(res.endpoints[0]!.statusCodes, { "200": 20, "429": 10 });
      assert.equal(res.totals.failures, 10);
      assert.match(r.stdout, /Status codes: 200 ×20, 429 ×10/);
    } finally {
      await server.close();
    }
  });
}
