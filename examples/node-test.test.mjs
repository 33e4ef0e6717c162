/**
 * Load tests in a node:test suite: the service starts in this file, run() loads it in-process,
 * and the assertions read the result (docs/test-suites.md).
 *
 *   node --test examples/node-test.test.mjs
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, test } from "node:test";
import { run } from "cicada-load";

/** The service under test. In your project, start your own app here (on port 0: any free port). */
function startService() {
  const server = createServer((req, res) => {
    res.setHeader("content-type", "application/json");
    if (req.url === "/health") return res.end('{"status":"ok"}');
    if (req.url === "/api/config") return setTimeout(() => res.end('{"debug":false}'), 5);
    res.statusCode = 404;
    res.end("{}");
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

let server;
let host;

before(async () => {
  server = await startService();
  host = `http://127.0.0.1:${server.address().port}`;
});

after(() => {
  server.closeAllConnections();
  server.close();
});

test("the health endpoint takes 100 concurrent requests", async () => {
  const result = await run({
    host,
    tasks: { health: (u) => u.client.get("/health") },
    // 100 users, all started at once, each sending one request.
    users: 100,
    iterationsPerUser: 1,
    thresholds: ["error_rate<1%", "p95<1000"],
  });
  // Throws a message naming each failed threshold, its limit and the measured value.
  result.assertPassed();
  assert.equal(result.total.requests, 100);
  assert.ok(result.total.successRatio > 0.99);
});

test("both endpoints stay fast with 20 users for 3 seconds", async () => {
  const result = await run({
    host,
    tasks: {
      health: (u) => u.client.get("/health"),
      config: { task: (u) => u.client.get("/api/config"), weight: 2 },
    },
    users: 20,
    duration: "3s",
    thresholds: ["GET /health: p95<250", "GET /api/config: p95<500", "error_rate<1%"],
  });
  result.assertPassed();
  // Per-endpoint figures, in ms: min, max, mean, median, and any percentile with p().
  const config = result.endpoint("GET /api/config");
  assert.ok(config.mean < 500, `mean ${config.mean} ms`);
  assert.ok(config.p(99) <= config.max);
});
