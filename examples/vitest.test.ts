/**
 * Load tests in a Vitest suite: the service starts in this file, run() loads it in-process, and
 * the assertions read the result (docs/test-suites.md).
 *
 *   npx vitest run examples/vitest.test.ts
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { between, HttpUser, run } from "cicada-load";
import { afterAll, beforeAll, expect, it } from "vitest";

let server: Server;
let host: string;

beforeAll(async () => {
  // The service under test; in your project, start your own app (on port 0: any free port).
  server = createServer((req, res) => {
    if (req.url === "/health") return res.end("ok");
    if (req.url === "/api/workflows") return setTimeout(() => res.end("[]"), 10);
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  host = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

/** A user class, as in a loadfile: three health checks for each workflow list. */
class Visitor extends HttpUser {
  static override waitTime = between(0.01, 0.05);
  static override tasks = [
    { task: (u: Visitor) => u.client.get("/health"), weight: 3 },
    (u: Visitor) => u.client.get("/api/workflows"),
  ];
}

it("serves 10 users for 2 seconds within its thresholds", async () => {
  const result = await run({
    classes: [Visitor],
    host,
    users: 10,
    duration: "2s",
    thresholds: ["GET /health: p95<250", "GET /api/workflows: p95<500", "error_rate<1%"],
  });
  result.assertPassed();
  const workflows = result.endpoint("GET /api/workflows");
  expect(workflows.requests).toBeGreaterThan(0);
  // Any percentile, from the full histogram; the summary has min, max, mean and median too.
  expect(workflows.p(99)).toBeLessThan(500);
  expect(workflows.median).toBeLessThanOrEqual(workflows.max);
});

it.each([10, 50, 100])("answers %i concurrent requests with a success rate above 99 %%", async (n) => {
  const result = await run({
    host,
    tasks: { health: (u) => u.client.get("/health") },
    users: n,
    iterationsPerUser: 1,
  });
  expect(result.total.requests).toBe(n);
  expect(result.total.successRatio).toBeGreaterThan(0.99);
});
