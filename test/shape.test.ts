/** LoadShape classes (Locust's LoadTestShape) and the stage helpers, against real servers. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ramp, soak, spike, step } from "../src/api/shape.js";
import { parseStages, stageLevel } from "../src/runner/stages.js";
import { runLoad, startServer } from "./helpers.js";

/** A run with a 2 s stop timeout, so in-flight work of a shape ends counted, not cancelled. */
function run(loadfile: string, url: string, args: string[] = []) {
  return runLoad(loadfile, ["-H", url, "-s", "2", ...args]);
}

describe("LoadShape", () => {
  it("a burst of N arrivals issues exactly N requests", async () => {
    const server = await startServer((_req, res) => setTimeout(() => res.end("ok"), 20));
    try {
      const {
        code,
        stderr,
        result: res,
      } = await run(
        `
import { HttpUser, LoadShape, type ShapeTick, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/burst"); }
}
export class Burst extends LoadShape {
  private fired = false;
  tick(t: number): ShapeTick | null {
    if (t >= 1.5) return null;
    if (this.fired) return { rate: 0 };
    this.fired = true;
    return { burst: 40 };
  }
}
`,
        server.url,
        ["--max-users", "100"],
      );
      assert.equal(code, 0, stderr);
      assert.equal(server.counts.get("GET /burst"), 40);
      assert.equal(res.totals.requests, 40);
      assert.equal(res.stopReason, "shape");
      assert.equal(res.config.shape, "Burst");
      assert.equal(res.config.model, "open");
    } finally {
      await server.close();
    }
  });

  it("drives users: ramps at the spawn rate, picks user classes, ends when tick() returns null", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    try {
      const {
        code,
        stderr,
        result: res,
      } = await run(
        `
import { HttpUser, LoadShape, type ShapeTick, task, constant } from "cicada-load";
export class A extends HttpUser {
  static waitTime = constant(0.2);
  override async onStart() { await this.client.get("/start/A"); }
  @task async hit() { await this.client.get("/a"); }
}
export class B extends HttpUser {
  static waitTime = constant(0.2);
  override async onStart() { await this.client.get("/start/B"); }
  @task async hit() { await this.client.get("/b"); }
}
export class Shape extends LoadShape {
  tick(t: number): ShapeTick | null {
    if (t < 2) return { users: 4, spawnRate: 10, userClasses: ["B"] };
    return null;
  }
}
`,
        server.url,
        ["--processes", "1"],
      );
      assert.equal(code, 0, stderr);
      assert.equal(res.stopReason, "shape");
      assert.equal(server.counts.get("GET /start/B"), 4);
      assert.equal(server.counts.get("GET /start/A") ?? 0, 0, "class A was not picked");
      assert.equal(res.users.peak, 4);
      assert.ok(res.durationSec >= 1.9 && res.durationSec < 4, `duration ${res.durationSec}`);
    } finally {
      await server.close();
    }
  });
});

describe("stage helpers", () => {
  it("ramp, soak, step and spike build the stages they promise", () => {
    const s = parseStages([...ramp(10, "10s"), ...soak(10, "1m")]);
    assert.equal(stageLevel(s, 5), 5);
    assert.equal(stageLevel(s, 40), 10);
    const st = parseStages(step(0, 30, 3, "10s"));
    assert.deepEqual(
      [0, 5, 15, 25, 35].map((t) => stageLevel(st, t)),
      [0, 0, 10, 20, 30],
    );
    const sp = parseStages([...soak(5, "10s"), ...spike(5, 50, "5s", "20s")]);
    assert.equal(stageLevel(sp, 5), 5);
    assert.equal(stageLevel(sp, 12), 50);
    assert.equal(stageLevel(sp, 20), 5);
    assert.equal(stageLevel(sp, 36), null);
  });
});

describe("burst against a rate-limited target", () => {
  it("counts the 429s by status code and reports the time to recover", async () => {
    // A token bucket of 20 requests per second, full at the start. Each answer takes 10 ms, as a
    // real service's would: against a sub-millisecond p95, a few ms of a busy test machine's own
    // scheduling would read as "not recovered".
    let tokens = 20;
    let last = Date.now();
    const server = await startServer((_req, res) => {
      const now = Date.now();
      tokens = Math.min(20, tokens + ((now - last) / 1000) * 20);
      last = now;
      const ok = tokens >= 1;
      if (ok) tokens -= 1;
      setTimeout(() => {
        if (!ok) res.statusCode = 429;
        res.end(ok ? "ok" : "slow down");
      }, 10);
    });
    try {
      const {
        code,
        result: res,
        stdout,
      } = await run(
        `
import { HttpUser, LoadShape, type ShapeTick, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/limited"); }
}
export class BurstThenCalm extends LoadShape {
  private fired = false;
  tick(t: number): ShapeTick | null {
    if (t < 2) return { rate: 10 };
    if (!this.fired) { this.fired = true; return { burst: 100 }; }
    if (t < 8) return { rate: 10 };
    return null;
  }
}
`,
        server.url,
        ["--max-users", "120"],
      );
      assert.equal(code, 1, "429s are failures by default");
      const codes = res.totals.statusCodes as Record<string, number>;
      assert.ok((codes["429"] ?? 0) >= 60, JSON.stringify(codes));
      assert.equal((codes["200"] ?? 0) + (codes["429"] ?? 0), res.totals.requests);
      assert.equal(res.bursts?.length, 1);
      const b = res.bursts![0]!;
      assert.equal(b.count, 100);
      assert.ok(b.recoverySec !== null && b.recoverySec >= 1 && b.recoverySec <= 3, JSON.stringify(b));
      // The summary shows the soak verdict's finer figure (docs/soak.md): three seconds back at the
      // level, judged together, of which the calm part after the burst holds several.
      const finer = res.soak?.recovery.find((r) => r.cause === "burst");
      assert.ok(finer?.recoverySec != null && finer.recoverySec <= 3, JSON.stringify(finer));
      assert.match(stdout, new RegExp(`Burst of 100 at [\\d.]+s: recovered after ${finer.recoverySec}s`));
    } finally {
      await server.close();
    }
  });
});
