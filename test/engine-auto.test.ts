/**
 * The "auto" HTTP engine: Cicada's fast HTTP/1.1 path by default, undici where the fast path
 * cannot go — a proxy set in the environment, a TLS server that speaks only HTTP/2. And the run's
 * `--http-engine` (CICADA_HTTP_ENGINE, `httpEngine`) over each class's static engine, in worker
 * threads and on remote workers.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { createSecureServer } from "node:http2";
import { type AddressInfo, connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type CliResult,
  describeRun,
  readJson,
  runCli,
  startCli,
  startMaster,
  startServer,
  type TestServer,
  tempProject,
} from "./helpers.js";

const LOADFILE = `
import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/hello"); }
}
`;

/**
 * `cicada run --headless` of `loadfile` against `target`, `-u -r -i` as `load` says, one request per
 * iteration: checks that all of them succeeded and that the target's own count is the one
 * reported; returns the run and its warnings.
 */
async function countedRun(
  target: TestServer,
  loadfile: string,
  load: { users: number; rate: number; iterations: number },
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ r: CliResult; warnings: string[] }> {
  const p = tempProject({ "loadtest.ts": loadfile });
  const served = target.total();
  try {
    const r = await runCli(
      [
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        target.url,
        "-u",
        String(load.users),
        "-r",
        String(load.rate),
        "-i",
        String(load.iterations),
        "--json",
        "r.json",
        "--only-summary",
        ...args,
      ],
      { cwd: p.dir, env, timeoutMs },
    );
    assert.equal(r.code, 0, describeRun(r));
    const res = readJson(join(p.dir, "r.json"));
    assert.equal(res.totals.requests, load.iterations);
    assert.equal(res.totals.failures, 0, JSON.stringify(res.failures));
    assert.equal(target.total() - served, load.iterations, "the server's count is the one reported");
    return { r, warnings: r.stderr.split("\n").filter((l) => l.startsWith("warning:")) };
  } finally {
    p.cleanup();
  }
}

describe("auto engine", () => {
  let target: TestServer;
  before(async () => {
    target = await startServer((_req, res) => res.end("hi"));
  });
  after(() => target.close());

  it("goes through HTTP_PROXY when one is set (via undici)", async () => {
    const proxy = await startProxy();
    const proxyUrl = proxy.url;
    const p = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const out = join(p.dir, "r.json");
      const before = target.total();
      let targetConnections = 0;
      const countConnection = () => targetConnections++;
      target.server.on("connection", countConnection);
      const r = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          target.url,
          "-i",
          "20",
          "-u",
          "2",
          "--processes",
          "1",
          "--json",
          out,
          "--only-summary",
        ],
        { cwd: p.dir, env: { HTTP_PROXY: proxyUrl, NO_PROXY: "" } },
      );
      assert.equal(r.code, 0, r.stderr);
      const res = readJson(out);
      assert.equal(res.totals.requests, 20);
      assert.equal(res.totals.failures, 0);
      // Every request reached the target, and only through the proxy.
      assert.equal(target.total() - before, 20);
      target.server.off("connection", countConnection);
      const tunnels = proxy.tunnelTargets();
      assert.ok(proxy.used() > 0, "nothing went through the proxy");
      // One more connection than tunnels: the start-up reachability probe goes direct.
      assert.equal(targetConnections, tunnels.length + 1, "some requests bypassed the proxy");
      assert.ok(
        tunnels.every((u) => u === new URL(target.url).host),
        `unexpected tunnels: ${tunnels.join(", ")}`,
      );
    } finally {
      p.cleanup();
      await proxy.close();
    }
  });

  it("without a proxy, requests go straight to the target", async () => {
    const p = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const out = join(p.dir, "r.json");
      const before = target.total();
      const env: NodeJS.ProcessEnv = { HTTP_PROXY: "", http_proxy: "", HTTPS_PROXY: "", https_proxy: "" };
      const r = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          target.url,
          "-i",
          "10",
          "--processes",
          "1",
          "--json",
          out,
          "--only-summary",
        ],
        { cwd: p.dir, env },
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(readJson(out).totals.requests, 10);
      assert.equal(target.total() - before, 10);
    } finally {
      p.cleanup();
    }
  });

  it("falls back to undici for a TLS server that speaks only HTTP/2", async (t) => {
    const p = tempProject({ "loadtest.ts": LOADFILE });
    let cert: Buffer;
    let key: Buffer;
    try {
      execFileSync(
        "openssl",
        [
          "req",
          "-x509",
          "-newkey",
          "rsa:2048",
          "-nodes",
          "-keyout",
          "key.pem",
          "-out",
          "cert.pem",
          "-subj",
          "/CN=localhost",
          "-days",
          "1",
        ],
        { cwd: p.dir, stdio: "ignore" },
      );
      cert = readFileSync(join(p.dir, "cert.pem"));
      key = readFileSync(join(p.dir, "key.pem"));
    } catch {
      p.cleanup();
      t.skip("openssl is not installed");
      return;
    }
    let streams = 0;
    const h2 = createSecureServer({ cert, key, allowHTTP1: false }, (_req, res) => {
      streams++;
      res.end("h2 hi");
    });
    await new Promise<void>((r) => h2.listen(0, "127.0.0.1", r));
    const url = `https://127.0.0.1:${(h2.address() as AddressInfo).port}`;
    try {
      const out = join(p.dir, "r.json");
      const env: NodeJS.ProcessEnv = { HTTP_PROXY: "", http_proxy: "", HTTPS_PROXY: "", https_proxy: "" };
      const r = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          url,
          "-i",
          "10",
          "--insecure",
          "--processes",
          "1",
          "--json",
          out,
          "--only-summary",
        ],
        { cwd: p.dir, env },
      );
      assert.equal(r.code, 0, r.stderr + r.stdout);
      const res = readJson(out);
      assert.equal(res.totals.requests, 10);
      assert.equal(res.totals.failures, 0, JSON.stringify(res.failures));
      assert.equal(streams, 10);
    } finally {
      p.cleanup();
      await new Promise((r) => h2.close(r));
    }
  });
});

/** A minimal forward proxy that notes what went through it: the undici engine honours HTTP_PROXY, the fast one never does. */
async function startProxy(): Promise<{
  url: string;
  /** Requests and CONNECT tunnels it served so far. */
  used: () => number;
  tunnels: () => number;
  /** The host:port of each CONNECT tunnel so far. */
  tunnelTargets: () => string[];
  close: () => Promise<void>;
}> {
  let proxied = 0;
  const tunnels: string[] = [];
  const proxy = createServer((req, res) => {
    proxied++;
    const u = new URL(req.url ?? "");
    const up = httpRequest(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: req.method,
        headers: req.headers,
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  proxy.on("connect", (req, client, head) => {
    tunnels.push(req.url ?? "");
    const [host, port] = (req.url ?? "").split(":");
    const upstream = connect(Number(port), host ?? "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    used: () => proxied + tunnels.length,
    tunnels: () => tunnels.length,
    tunnelTargets: () => [...tunnels],
    close: async () => {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    },
  };
}

describe("choosing the engine: the run's setting over the class's static engine", () => {
  // With a proxy in the environment the two engines take different roads to the target: undici
  // through the proxy, the fast engine straight there. That tells, from outside, which one ran.
  let target: TestServer;
  let proxy: Awaited<ReturnType<typeof startProxy>>;
  let proxyEnv: NodeJS.ProcessEnv;
  before(async () => {
    target = await startServer((_req, res) => res.end("hi"));
    proxy = await startProxy();
    proxyEnv = {
      HTTP_PROXY: proxy.url,
      http_proxy: proxy.url,
      HTTPS_PROXY: "",
      https_proxy: "",
      NO_PROXY: "",
      no_proxy: "",
    };
  });
  after(async () => {
    await proxy.close();
    await target.close();
  });

  const loadfile = (classEngine: "fast" | "undici", options = "") => `
import { HttpUser, task } from "cicada-load";
${options}
export class Web extends HttpUser {
  static engine = ${JSON.stringify(classEngine)} as const;
  @task async hit() { await this.client.get("/hello"); }
}
`;

  /** Which engine served a run: the one whose road the requests took, or "both" if they took both. */
  async function engineOf(
    run: () => Promise<CliResult & { requests: number }>,
    probes = 1,
  ): Promise<"fast" | "undici" | "both"> {
    const before = { served: target.total(), used: proxy.used(), tunnels: proxy.tunnels() };
    let connections = 0;
    const count = () => connections++;
    target.server.on("connection", count);
    try {
      const r = await run();
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(r.requests, 12);
      assert.equal(target.total() - before.served, 12);
      const viaProxy = proxy.used() - before.used;
      // The start-up reachability probes always go straight to the target.
      const direct = connections - (proxy.tunnels() - before.tunnels) - probes;
      if (viaProxy > 0 && direct > 0) return "both";
      return viaProxy > 0 ? "undici" : "fast";
    } finally {
      target.server.off("connection", count);
    }
  }

  const run =
    (files: Record<string, string>, args: string[], env: NodeJS.ProcessEnv = {}) =>
    async () => {
      const p = tempProject(files);
      try {
        const r = await runCli(
          [
            "run",
            "--headless",
            "loadtest.ts",
            "-H",
            target.url,
            "-i",
            "12",
            "-u",
            "2",
            "-r",
            "100",
            "--json",
            "r.json",
            "--only-summary",
            ...args,
          ],
          { cwd: p.dir, env: { ...proxyEnv, ...env }, timeoutMs: 30_000 },
        );
        const requests = r.code === 0 ? readJson(join(p.dir, "r.json")).totals.requests : -1;
        return { ...r, requests };
      } finally {
        p.cleanup();
      }
    };

  it("without the setting the class's static engine stands", async () => {
    assert.equal(await engineOf(run({ "loadtest.ts": loadfile("fast") }, ["--processes", "1"])), "fast");
    assert.equal(await engineOf(run({ "loadtest.ts": loadfile("undici") }, ["--processes", "1"])), "undici");
  });

  it("--http-engine wins over the class's static engine, either way", async () => {
    const fastClass = { "loadtest.ts": loadfile("fast") };
    const undiciClass = { "loadtest.ts": loadfile("undici") };
    assert.equal(await engineOf(run(fastClass, ["--processes", "1", "--http-engine", "undici"])), "undici");
    assert.equal(await engineOf(run(undiciClass, ["--processes", "1", "--http-engine", "fast"])), "fast");
    // "auto" given explicitly also wins: with a proxy set, auto is undici.
    assert.equal(await engineOf(run(fastClass, ["--processes", "1", "--http-engine", "auto"])), "undici");
  });

  it("CICADA_HTTP_ENGINE and the loadfile's options set it too; the command line wins over both", async () => {
    const fastClass = { "loadtest.ts": loadfile("fast") };
    assert.equal(
      await engineOf(run(fastClass, ["--processes", "1"], { CICADA_HTTP_ENGINE: "undici" })),
      "undici",
    );
    assert.equal(
      await engineOf(
        run(fastClass, ["--processes", "1", "--http-engine", "fast"], { CICADA_HTTP_ENGINE: "undici" }),
      ),
      "fast",
    );
    const withOptions = {
      "loadtest.ts": loadfile("fast", 'export const options = { httpEngine: "undici" };'),
    };
    assert.equal(await engineOf(run(withOptions, ["--processes", "1"])), "undici");
  });

  it("reaches worker threads: --processes 2 --http-engine undici runs both threads on undici", async () => {
    assert.equal(
      await engineOf(
        run({ "loadtest.ts": loadfile("fast") }, ["--processes", "2", "--http-engine", "undici"]),
      ),
      "undici",
    );
  });

  it("quick takes it too: --http-engine fast goes straight to the target where auto would take the proxy", async () => {
    const quick = (args: string[]) => async () => {
      const p = tempProject({});
      try {
        const r = await runCli(
          [
            "quick",
            `${target.url}/hello`,
            "-n",
            "12",
            "-c",
            "2",
            "--json",
            "r.json",
            "--only-summary",
            ...args,
          ],
          { cwd: p.dir, env: proxyEnv, timeoutMs: 30_000 },
        );
        const requests = r.code === 0 ? readJson(join(p.dir, "r.json")).totals.requests : -1;
        return { ...r, requests };
      } finally {
        p.cleanup();
      }
    };
    // quick checks the target itself before its run checks it again: two direct probes.
    assert.equal(await engineOf(quick([]), 2), "undici");
    assert.equal(await engineOf(quick(["--http-engine", "fast"]), 2), "fast");
  });

  it("reaches remote workers: the master's --http-engine travels in the plan", async () => {
    const project = tempProject({ "loadtest.ts": loadfile("fast") });
    const workerDir = tempProject({});
    try {
      const served = await engineOf(async () => {
        const { master, port } = await startMaster(
          project.dir,
          [
            "--http-engine",
            "undici",
            "--expect-workers",
            "1",
            "-H",
            target.url,
            "-i",
            "12",
            "-u",
            "2",
            "-r",
            "100",
            "--json",
            "r.json",
            "--only-summary",
          ],
          proxyEnv,
        );
        // The worker is started as a user would, with no engine of its own: only the plan tells it.
        const worker = startCli(["worker", "--once", "--master-port", String(port)], {
          cwd: workerDir.dir,
          env: proxyEnv,
        });
        const timer = setTimeout(() => {
          master.child.kill("SIGKILL");
          worker.child.kill("SIGKILL");
        }, 30_000);
        const [r, w] = await Promise.all([master.result, worker.result]);
        clearTimeout(timer);
        assert.equal(w.code, 0, describeRun(w));
        const requests = r.code === 0 ? readJson(join(project.dir, "r.json")).totals.requests : -1;
        return { ...r, requests };
      });
      assert.equal(served, "undici");
    } finally {
      project.cleanup();
      workerDir.cleanup();
    }
  });
});

describe("sourceAddresses on undici: one warning per class and run; sharedConnections on both engines", () => {
  // sourceAddresses belongs to the fast engine; undici ignores it. The run says so once, at plan
  // time, and still runs: the server's own count is the one reported. sharedConnections works on
  // both engines, with no warning.
  let target: TestServer;
  let connections = 0;
  const countConnection = () => connections++;
  const noProxy: NodeJS.ProcessEnv = { HTTP_PROXY: "", http_proxy: "", HTTPS_PROXY: "", https_proxy: "" };
  before(async () => {
    target = await startServer((_req, res) => res.end("hi"));
    target.server.on("connection", countConnection);
  });
  after(() => target.close());

  const loadfile = (statics: string) => `
import { HttpUser, constant, task } from "cicada-load";
export class Shop extends HttpUser {
  static fixedCount = 8;
  static waitTime = constant(0.01);
${statics}
  @task hit() { return this.client.get("/hello"); }
}
export class Plain extends HttpUser {
  static fixedCount = 1;
  static waitTime = constant(0.01);
  @task hit() { return this.client.get("/plain"); }
}
`;

  /** Runs 150 iterations over 9 users in two worker threads; returns the run and the connections the target saw. */
  async function runWith(statics: string, args: string[], env: NodeJS.ProcessEnv = noProxy) {
    connections = 0;
    const load = { users: 9, rate: 200, iterations: 150 };
    const { r, warnings } = await countedRun(
      target,
      loadfile(statics),
      load,
      ["--processes", "2", ...args],
      env,
      30_000,
    );
    return { r, warnings, connections };
  }

  it("--http-engine undici: sharedConnections needs no warning, and the users share the two connections", async () => {
    const { r, warnings, connections } = await runWith("  static sharedConnections = 2;", [
      "--http-engine",
      "undici",
    ]);
    assert.deepEqual(warnings, [], r.stderr);
    // Two shared per worker thread at most for Shop, one for Plain, one probe; one per user
    // (8 + 1 + 1) would be the setting ignored.
    assert.ok(connections <= 2 * 2 + 1 + 1, `connections: ${connections}`);
  });

  it('a class\'s static engine = "undici" with both settings: one line naming sourceAddresses only', async () => {
    const { r, warnings, connections } = await runWith(
      '  static engine = "undici" as const;\n  static sharedConnections = 2;\n  static sourceAddresses = ["127.0.0.1"];',
      [],
    );
    assert.deepEqual(
      warnings,
      [
        'warning: Shop.sourceAddresses = ["127.0.0.1"] is ignored on the undici engine (its static engine = "undici"): connections go out from the default source address; the setting needs the fast engine',
      ],
      r.stderr,
    );
    assert.ok(connections <= 2 * 2 + 1 + 1, `connections: ${connections}`);
  });

  it("the same class with --http-engine fast: no warning, and the users share the two connections", async () => {
    const { r, warnings, connections } = await runWith(
      '  static engine = "undici" as const;\n  static sharedConnections = 2;\n  static sourceAddresses = ["127.0.0.1"];',
      ["--http-engine", "fast"],
    );
    assert.deepEqual(warnings, [], r.stderr);
    // Two shared per worker thread at most for Shop, one for Plain, one probe.
    assert.ok(connections <= 2 * 2 + 1 + 1, `connections: ${connections}`);
  });

  it("CICADA_HTTP_ENGINE=undici is named as such; sourceAddresses alone has its own effect", async () => {
    const { warnings } = await runWith('  static sourceAddresses = ["127.0.0.1"];', [], {
      ...noProxy,
      CICADA_HTTP_ENGINE: "undici",
    });
    assert.deepEqual(warnings, [
      'warning: Shop.sourceAddresses = ["127.0.0.1"] is ignored on the undici engine (CICADA_HTTP_ENGINE=undici): connections go out from the default source address; the setting needs the fast engine',
    ]);
  });

  it("distributed: the master warns from the plan; a proxy in the master's environment is not the workers'", async () => {
    const other = await startServer((_req, res) => res.end("b"));
    let otherConnections = 0;
    other.server.on("connection", () => otherConnections++);
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, constant, task } from "cicada-load";
export class Pinned extends HttpUser {
  static engine = "undici" as const;
  static sourceAddresses = ["127.0.0.1"];
  static fixedCount = 3;
  static waitTime = constant(0.01);
  @task hit() { return this.client.get("/hello"); }
}
export class Auto extends HttpUser {
  static sharedConnections = 2;
  static sourceAddresses = ["127.0.0.1"];
  static fixedCount = 3;
  static waitTime = constant(0.01);
  @task hit() { return this.client.get(${JSON.stringify(`${other.url}/b`)}); }
}
`,
    });
    const workerDir = tempProject({});
    try {
      const served = target.total() + other.total();
      // The master has a proxy set (it sends no load through it); the worker has none.
      const { master, port } = await startMaster(
        project.dir,
        [
          "--expect-workers",
          "1",
          "-H",
          target.url,
          "-u",
          "6",
          "-r",
          "100",
          "-i",
          "60",
          "--json",
          "r.json",
          "--only-summary",
        ],
        { ...noProxy, HTTP_PROXY: "http://127.0.0.1:9", http_proxy: "http://127.0.0.1:9" },
      );
      const worker = startCli(["worker", "--once", "--master-port", String(port)], {
        cwd: workerDir.dir,
        env: noProxy,
      });
      const timer = setTimeout(() => {
        master.child.kill("SIGKILL");
        worker.child.kill("SIGKILL");
      }, 30_000);
      const [r, w] = await Promise.all([master.result, worker.result]);
      clearTimeout(timer);
      assert.equal(r.code, 0, describeRun(r));
      assert.equal(w.code, 0, describeRun(w));
      const res = readJson(join(project.dir, "r.json"));
      assert.equal(res.totals.requests, 60);
      assert.equal(target.total() + other.total() - served, 60);
      assert.deepEqual(
        r.stderr.split("\n").filter((l) => l.startsWith("warning:")),
        [
          'warning: Pinned.sourceAddresses = ["127.0.0.1"] is ignored on the undici engine (its static engine = "undici"): connections go out from the default source address; the setting needs the fast engine',
        ],
      );
      assert.doesNotMatch(w.stderr + w.stdout, /warning:/);
      // Auto ran on the worker's fast engine, sharing its two connections, as no warning said.
      assert.ok(otherConnections >= 1 && otherConnections <= 2, `connections: ${otherConnections}`);
    } finally {
      project.cleanup();
      workerDir.cleanup();
      await other.close();
    }
  });

  it("engine auto with HTTP_PROXY beside an empty http_proxy: no proxy (as undici reads them), the fast engine, no warning", async () => {
    // undici reads the lowercase name first, so an empty one turns the proxy off; "auto" must
    // agree, or it would pick undici, which then goes direct with a connection per user.
    const proxy = await startProxy();
    try {
      const { warnings, connections } = await runWith(
        '  static sharedConnections = 2;\n  static sourceAddresses = ["127.0.0.1"];',
        [],
        {
          HTTP_PROXY: proxy.url,
          http_proxy: "",
          HTTPS_PROXY: "",
          https_proxy: "",
          NO_PROXY: "",
          no_proxy: "",
        },
      );
      assert.deepEqual(warnings, []);
      assert.equal(proxy.used(), 0, "the run went through the proxy");
      assert.ok(connections <= 2 * 2 + 2, `${connections} connections: the shared pools were not used`);
    } finally {
      await proxy.close();
    }
  });

  it("engine auto with a proxy set: the variable in effect is named as the reason", async () => {
    const proxy = await startProxy();
    try {
      const { warnings } = await runWith('  static sourceAddresses = ["127.0.0.1"];', [], {
        HTTP_PROXY: proxy.url,
        http_proxy: proxy.url,
        HTTPS_PROXY: "",
        https_proxy: "",
        NO_PROXY: "",
        no_proxy: "",
      });
      assert.deepEqual(warnings, [
        'warning: Shop.sourceAddresses = ["127.0.0.1"] is ignored on the undici engine (engine "auto" picks undici because http_proxy is set): connections go out from the default source address; the setting needs the fast engine',
      ]);
      assert.ok(proxy.used() > 0, "the run did not go through the proxy");
    } finally {
      await proxy.close();
    }
  });
});

describe("sharedConnections on the undici engine: one dispatcher per class and worker", () => {
  // 20 users, each with a request in flight most of the time, on a server that answers after a
  // few milliseconds: without sharing, undici opens one connection per user; with it, the class's
  // users queue for its N connections per worker. The server counts its own connections.
  let target: TestServer;
  let connections = 0;
  const countConnection = () => connections++;
  const noProxy: NodeJS.ProcessEnv = {
    HTTP_PROXY: "",
    http_proxy: "",
    HTTPS_PROXY: "",
    https_proxy: "",
    NO_PROXY: "",
    no_proxy: "",
  };
  before(async () => {
    target = await startServer((_req, res) => {
      setTimeout(() => res.end("hi"), 5);
    });
    target.server.on("connection", countConnection);
  });
  after(() => target.close());

  const loadfile = (statics: string, then = "") => `
import { HttpUser, constant, task } from "cicada-load";
export class Crowd extends HttpUser {
  static waitTime = constant(0.005);
  hits = 0;
${statics}
  @task async hit() {
    const res = await this.client.get("/hello");
    if (res.text() !== "hi") throw new Error("unexpected body " + res.text());
    this.hits++;
${then}
  }
}
`;

  /** 400 iterations over 20 users; returns the connections the target saw. */
  async function crowd(statics: string, args: string[], env: NodeJS.ProcessEnv = noProxy, then = "") {
    connections = 0;
    const load = { users: 20, rate: 1000, iterations: 400 };
    const { r, warnings } = await countedRun(target, loadfile(statics, then), load, args, env, 60_000);
    assert.deepEqual(warnings, [], r.stderr);
    // A listener per request in flight on the run's signal is expected, not a leak to warn of.
    assert.doesNotMatch(r.stderr, /MaxListenersExceededWarning/);
    return connections;
  }

  it("--processes 1: 20 users on at most 2 connections (and the start-up probe)", async () => {
    const n = await crowd("  static sharedConnections = 2;", ["--http-engine", "undici", "--processes", "1"]);
    assert.ok(n >= 2 && n <= 2 + 1, `connections: ${n}`);
  });

  it("--processes 2: at most 2 per worker", async () => {
    const n = await crowd("  static sharedConnections = 2;", ["--http-engine", "undici", "--processes", "2"]);
    assert.ok(n >= 2 && n <= 2 * 2 + 1, `connections: ${n}`);
  });

  it("users that leave early close nothing the others still use", async () => {
    // Half the users stop after three requests; a shared dispatcher closed by the first of them
    // would fail every later request of the others.
    const n = await crowd(
      "  static sharedConnections = 2;",
      ["--http-engine", "undici", "--processes", "1"],
      noProxy,
      "    if (this.userId % 2 === 0 && this.hits >= 3) this.stopUser();",
    );
    assert.ok(n >= 2 && n <= 2 + 1, `connections: ${n}`);
  });

  it("without sharedConnections: one connection per user, as before", async () => {
    const n = await crowd("", ["--http-engine", "undici", "--processes", "1"]);
    assert.equal(n, 20 + 1);
  });

  it('a class\'s static engine = "undici" with a sharedConnections of 1: one connection in all', async () => {
    const n = await crowd('  static engine = "undici" as const;\n  static sharedConnections = 1;', [
      "--processes",
      "1",
    ]);
    assert.ok(n >= 1 && n <= 1 + 1, `connections: ${n}`);
  });

  it("behind HTTP_PROXY (engine auto picks undici): the shared connections go through the proxy", async () => {
    const proxy = await startProxy();
    try {
      const n = await crowd("  static sharedConnections = 2;", ["--processes", "1"], {
        ...noProxy,
        HTTP_PROXY: proxy.url,
        http_proxy: proxy.url,
      });
      const tunnels = proxy.tunnelTargets();
      assert.ok(tunnels.length >= 1 && tunnels.length <= 2, `tunnels: ${tunnels.join(", ")}`);
      assert.ok(
        tunnels.every((u) => u === new URL(target.url).host),
        `unexpected tunnels: ${tunnels.join(", ")}`,
      );
      // Every connection but the start-up probe's came through a tunnel: none went direct.
      assert.equal(n, tunnels.length + 1, "some requests bypassed the proxy");
    } finally {
      await proxy.close();
    }
  });
});
