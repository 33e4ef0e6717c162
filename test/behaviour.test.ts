/**
 * End-to-end behaviour of the scheduler, run through the real CLI against real loopback servers:
 * user-class distribution, task weights, wait times, tag selection, iteration budgets, task sets
 * and decorator flavours. Every JSON result is also checked against schema/result.schema.json.
 */
import assert from "node:assert/strict";
import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, it } from "node:test";
import {
  count,
  describeRun,
  endpoint,
  type LoadRun,
  runLoad,
  startServer,
  type TestServer,
} from "./helpers.js";

/** Server that answers 200 "ok" after `delayMs`, and logs the arrival times of each user's requests. */
async function startTimingServer(delayMs = 0): Promise<TestServer & { arrivals: Map<string, number[]> }> {
  const arrivals = new Map<string, number[]>();
  const server = await startServer((req: IncomingMessage, res: ServerResponse) => {
    const user = String(req.headers["x-user"] ?? "?");
    let list = arrivals.get(user);
    if (!list) arrivals.set(user, (list = []));
    list.push(performance.now());
    if (delayMs > 0) setTimeout(() => res.end("ok"), delayMs);
    else res.end("ok");
  });
  return Object.assign(server, { arrivals });
}

function gaps(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

const ok = (_req: IncomingMessage, res: ServerResponse) => res.end("ok");

// ---------------------------------------------------------------------------------------------

describe("user classes: weight and fixedCount", () => {
  const loadfile = `
import { HttpUser, constant, task } from "cicada-load";

export class A extends HttpUser {
  static weight = 3;
  static waitTime = constant(0.2);
  override async onStart() { await this.client.get("/start/A"); }
  @task work() { return this.client.get("/work"); }
}

export class B extends HttpUser {
  static weight = 1;
  static waitTime = constant(0.2);
  override async onStart() { await this.client.get("/start/B"); }
  @task work() { return this.client.get("/work"); }
}

// fixedCount wins over weight: the huge weight must be ignored.
export class C extends HttpUser {
  static weight = 100;
  static fixedCount = 2;
  static waitTime = constant(0.2);
  override async onStart() { await this.client.get("/start/C"); }
  @task work() { return this.client.get("/work"); }
}
`;

  it("-u 10: C gets exactly its fixed 2 users, A and B share the other 8 by weight 3:1", async () => {
    const server = await startServer(ok);
    try {
      const r = await runLoad(loadfile, ["-H", server.url, "-u", "10", "-r", "100", "-t", "1.2s"]);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(count(server, "GET /start/C"), 2);
      assert.equal(count(server, "GET /start/A"), 6);
      assert.equal(count(server, "GET /start/B"), 2);
      assert.equal(r.result.users.peak, 10);
      assert.equal(endpoint(r.result, "/start/A")?.requests, 6);
      assert.equal(endpoint(r.result, "/start/B")?.requests, 2);
      assert.equal(endpoint(r.result, "/start/C")?.requests, 2);
      assert.deepEqual(r.result.config.userClassesRun, ["A", "B", "C"]);
    } finally {
      await server.close();
    }
  });

  it("-u 3: fixed-count users are spawned first, the rest goes to the heaviest class", async () => {
    const server = await startServer(ok);
    try {
      const r = await runLoad(loadfile, ["-H", server.url, "-u", "3", "-r", "100", "-t", "0.8s"]);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(count(server, "GET /start/C"), 2);
      assert.equal(count(server, "GET /start/A"), 1);
      assert.equal(count(server, "GET /start/B"), 0);
    } finally {
      await server.close();
    }
  });
});

describe("task weights", () => {
  it("@task(3) and @task(1) are picked about 3:1", async () => {
    const server = await startServer(ok);
    try {
      const r = await runLoad(
        `
import { HttpUser, constant, task } from "cicada-load";
export class Weighted extends HttpUser {
  static waitTime = constant(0);
  @task(3) a() { return this.client.get("/a"); }
  @task(1) b() { return this.client.get("/b"); }
}
`,
        // A fixed number of picks (≈1–2 s here) keeps the ratio's spread small: σ ≈ 0.11.
        ["-H", server.url, "-u", "2", "-r", "100", "-i", "4000", "-t", "20s"],
      );
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.result.stopReason, "iterations");
      const a = count(server, "GET /a");
      const b = count(server, "GET /b");
      assert.equal(a + b, 4000);
      const ratio = a / b;
      assert.ok(Math.abs(ratio - 3) <= 0.6, `a/b = ${ratio.toFixed(3)} (a=${a}, b=${b}), expected 3 ± 0.6`);
      assert.equal(endpoint(r.result, "/a")!.requests, a);
      assert.equal(endpoint(r.result, "/b")!.requests, b);
    } finally {
      await server.close();
    }
  });
});

describe("wait times", () => {
  const userHeader = `override onStart() { this.client.headers["x-user"] = String(this.userId); }`;

  it("constant(0.5): two users for 3 s make about 2*3/0.5 = 12 requests, 0.5 s apart", async () => {
    const server = await startTimingServer();
    try {
      const r = await runLoad(
        `
import { HttpUser, constant, task } from "cicada-load";
export class Waiter extends HttpUser {
  static waitTime = constant(0.5);
  ${userHeader}
  @task t() { return this.client.get("/t"); }
}
`,
        ["-H", server.url, "-u", "2", "-r", "100", "-t", "3s"],
      );
      assert.equal(r.code, 0, describeRun(r));
      const total = count(server, "GET /t");
      assert.ok(total >= 10 && total <= 14, `expected ≈12 requests, got ${total}`);
      assert.equal(server.arrivals.size, 2);
      for (const [user, times] of server.arrivals) {
        const g = gaps(times);
        assert.ok(g.length >= 4, `user ${user}: only ${times.length} requests`);
        for (const x of g) assert.ok(x >= 495 && x <= 750, `user ${user}: gap ${x.toFixed(1)} ms, want ≈500`);
        const m = mean(g);
        assert.ok(m >= 500 && m <= 600, `user ${user}: mean gap ${m.toFixed(1)} ms, want ≈500`);
      }
    } finally {
      await server.close();
    }
  });

  it("constantPacing(0.5): one task every 0.5 s per user even when the server takes 200 ms", async () => {
    const server = await startTimingServer(200);
    try {
      const r = await runLoad(
        `
import { HttpUser, constantPacing, task } from "cicada-load";
export class Pacer extends HttpUser {
  static waitTime = constantPacing(0.5);
  ${userHeader}
  @task t() { return this.client.get("/t"); }
}
`,
        ["-H", server.url, "-u", "2", "-r", "100", "-t", "3s"],
      );
      assert.equal(r.code, 0, describeRun(r));
      const total = count(server, "GET /t");
      // constant(0.5) would give one request per 0.7 s: about 10 in all, gaps of 700 ms.
      assert.ok(total >= 11 && total <= 14, `expected ≈12 requests (2/s per user), got ${total}`);
      for (const [user, times] of server.arrivals) {
        const g = gaps(times);
        assert.ok(g.length >= 4, `user ${user}: only ${times.length} requests`);
        const m = mean(g);
        assert.ok(m >= 490 && m <= 600, `user ${user}: mean gap ${m.toFixed(1)} ms, want ≈500 (not 700)`);
      }
      assert.ok(endpoint(r.result, "/t")!.latencyMs.p50 >= 198);
    } finally {
      await server.close();
    }
  });

  it("between(0.2, 0.4): gaps stay within the bounds and vary", async () => {
    const server = await startTimingServer();
    try {
      const r = await runLoad(
        `
import { HttpUser, between, task } from "cicada-load";
export class Random extends HttpUser {
  static waitTime = between(0.2, 0.4);
  ${userHeader}
  @task t() { return this.client.get("/t"); }
}
`,
        ["-H", server.url, "-u", "2", "-r", "100", "-t", "2.5s"],
      );
      assert.equal(r.code, 0, describeRun(r));
      const all: number[] = [];
      for (const [user, times] of server.arrivals) {
        const g = gaps(times);
        for (const x of g)
          assert.ok(x >= 195 && x <= 500, `user ${user}: gap ${x.toFixed(1)} ms outside 200–400`);
        all.push(...g);
      }
      assert.ok(all.length >= 8, `only ${all.length} gaps`);
      const m = mean(all);
      assert.ok(m >= 230 && m <= 380, `mean gap ${m.toFixed(1)} ms, want ≈300`);
      assert.ok(Math.max(...all) - Math.min(...all) >= 20, "gaps do not vary: not random");
      const total = count(server, "GET /t");
      // 2 users * 2.5 s / ~0.3 s ≈ 17; allow for the randomness.
      assert.ok(total >= 11 && total <= 26, `got ${total} requests`);
    } finally {
      await server.close();
    }
  });
});

describe("--tags and --exclude-tags", () => {
  const loadfile = `
import { HttpUser, TaskSet, constant, tag, task } from "cicada-load";

export class Tagged extends HttpUser {
  static waitTime = constant(0.02);
  @task @tag("a") ta() { return this.client.get("/a"); }
  @task @tag("b") tb() { return this.client.get("/b"); }
  @task @tag("a", "slow") tas() { return this.client.get("/a-slow"); }
  @task untagged() { return this.client.get("/untagged"); }
}

// Class-level tags apply to every task of the class.
export class ClassTagged extends HttpUser {
  static tags = ["cls"];
  static waitTime = constant(0.02);
  @task t() { return this.client.get("/cls"); }
}

// A task set tagged as a whole; one of its tasks has its own tag too.
class Inner extends TaskSet {
  static tags = ["set"];
  @task x() { return this.client.get("/inner/x"); }
  @task @tag("innery") y() { return this.client.get("/inner/y"); }
}

export class WithSet extends HttpUser {
  static waitTime = constant(0.02);
  static tasks = [Inner];
  @task @tag("other") o() { return this.client.get("/other"); }
}
`;

  const paths = ["/a", "/b", "/a-slow", "/untagged", "/cls", "/inner/x", "/inner/y", "/other"];

  async function hits(args: string[]): Promise<{ hit: string[]; run: LoadRun }> {
    const server = await startServer(ok);
    try {
      const run = await runLoad(loadfile, ["-H", server.url, "-u", "3", "-r", "100", "-t", "0.8s", ...args]);
      assert.equal(run.code, 0, describeRun(run));
      const hit = paths.filter((p) => count(server, `GET ${p}`) > 0);
      const unknown = [...server.counts.keys()].filter((k) => !paths.includes(k.replace(/^GET /, "")));
      assert.deepEqual(unknown, []);
      return { hit, run };
    } finally {
      await server.close();
    }
  }

  it("--tags a runs only tasks tagged a; classes left without tasks do not run", async () => {
    const { hit, run } = await hits(["--tags", "a"]);
    assert.deepEqual(hit, ["/a", "/a-slow"]);
    assert.deepEqual(run.result.config.userClassesRun, ["Tagged"]);
    assert.deepEqual(run.result.endpoints.map((e) => e.name).sort(), ["/a", "/a-slow"]);
  });

  it("--exclude-tags wins over --tags", async () => {
    const { hit } = await hits(["--tags", "a", "--exclude-tags", "slow"]);
    assert.deepEqual(hit, ["/a"]);
  });

  it("static tags on a user class select all of its tasks", async () => {
    const { hit } = await hits(["--tags", "cls"]);
    assert.deepEqual(hit, ["/cls"]);
  });

  it("a tagged TaskSet keeps all its tasks; the rest of its user is left out", async () => {
    const { hit } = await hits(["--tags", "set"]);
    assert.deepEqual(hit, ["/inner/x", "/inner/y"]);
  });

  it("exclusion reaches inside a selected TaskSet", async () => {
    const { hit } = await hits(["--tags", "set", "--exclude-tags", "innery"]);
    assert.deepEqual(hit, ["/inner/x"]);
  });

  it("--exclude-tags alone drops tagged tasks, classes and task sets (comma-separated list)", async () => {
    const { hit, run } = await hits(["--exclude-tags", "a,cls,set"]);
    assert.deepEqual(hit, ["/b", "/untagged", "/other"]);
    assert.deepEqual(run.result.config.userClassesRun, ["Tagged", "WithSet"]);
  });
});

describe("--iterations", () => {
  it("stops after exactly N task iterations in total across users", async () => {
    const server = await startServer(ok);
    try {
      const r = await runLoad(
        `
import { HttpUser, task } from "cicada-load";
export class Looper extends HttpUser {
  @task one() { return this.client.get("/it"); }
}
`,
        ["-H", server.url, "-u", "3", "-r", "100", "-i", "25"],
      );
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(count(server, "GET /it"), 25);
      assert.equal(server.total(), 25);
      assert.equal(r.result.stopReason, "iterations");
      assert.equal(r.result.totals.iterations, 25);
      assert.equal(r.result.totals.requests, 25);
      assert.equal(r.result.totals.cancelled ?? 0, 0);
    } finally {
      await server.close();
    }
  });
});

describe("task sets", () => {
  it("SequentialTaskSet runs in order; interrupt() returns to the parent set, then to the user", async () => {
    const sequences = new Map<string, string[]>();
    const server = await startServer((req, res) => {
      const user = String(req.headers["x-user"] ?? "?");
      let s = sequences.get(user);
      if (!s) sequences.set(user, (s = []));
      s.push((req.url ?? "").split("?")[0]!);
      res.end("ok");
    });
    try {
      const r = await runLoad(
        `
import { HttpUser, SequentialTaskSet, TaskSet, constant, task } from "cicada-load";

// A random task set with one task that leaves at once: control must go back to Flow.
class Inner extends TaskSet<Shopper> {
  @task visit() {
    return this.client.get("/inner").then(() => this.interrupt());
  }
}

class Flow extends SequentialTaskSet<Shopper> {
  static tasks = [
    (s: Flow) => s.client.get("/s/1"),
    Inner,
    async (s: Flow) => {
      await s.client.get("/s/3");
      s.interrupt();
    },
  ];
  override async onStart() { await this.client.get("/s/start"); }
}

export class Shopper extends HttpUser {
  static waitTime = constant(0.02);
  static tasks = [Flow];
  override onStart() { this.client.headers["x-user"] = String(this.userId); }
}
`,
        ["-H", server.url, "-u", "2", "-r", "100", "-t", "1.5s"],
      );
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.result.exceptions.length, 0, JSON.stringify(r.result.exceptions));
      const cycle = ["/s/start", "/s/1", "/inner", "/s/3"];
      assert.equal(sequences.size, 2);
      for (const [user, seq] of sequences) {
        assert.ok(seq.length >= 2 * cycle.length, `user ${user}: only ${seq.length} requests`);
        seq.forEach((p, i) => {
          assert.equal(p, cycle[i % cycle.length], `user ${user}, request #${i}: ${seq.join(" ")}`);
        });
      }
    } finally {
      await server.close();
    }
  });
});

describe("decorators", () => {
  it("legacy experimentalDecorators in the loadfile's tsconfig.json still work", async () => {
    const server = await startServer(ok);
    try {
      const r = await runLoad(
        `
import { HttpUser, tag, task } from "cicada-load";

// Records which decorator flavour esbuild emitted: legacy ones get (target, key, descriptor).
let flavour = "unknown";
function probe(...args: unknown[]): void {
  flavour = typeof args[1] === "string" ? "legacy" : "standard";
}

export class Legacy extends HttpUser {
  override async onStart() { await this.client.get("/flavour/" + flavour); }
  @probe @task(3) a() { return this.client.get("/a"); }
  @task(1) b() { return this.client.get("/b"); }
  @task @tag("skip") c() { return this.client.get("/c"); }
}
`,
        ["-H", server.url, "-u", "1", "-i", "400", "--exclude-tags", "skip"],
        { "tsconfig.json": JSON.stringify({ compilerOptions: { experimentalDecorators: true } }) },
      );
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(
        count(server, "GET /flavour/legacy"),
        1,
        `decorator flavour: ${[...server.counts.keys()]}`,
      );
      const a = count(server, "GET /a");
      const b = count(server, "GET /b");
      assert.equal(a + b, 400);
      assert.equal(count(server, "GET /c"), 0);
      assert.ok(a / b >= 2 && a / b <= 4.5, `a/b = ${a}/${b}, expected ≈3`);
    } finally {
      await server.close();
    }
  });
});
