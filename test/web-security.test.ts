/**
 * The web UI on localhost refuses what other sites send it: cross-site writes (CSRF) and requests
 * under another name (DNS rebinding), from raw HTTP and from a real browser.
 */
import assert from "node:assert/strict";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium, type Request } from "playwright-core";
import { RequestGuard } from "../src/core/http-guard.js";
import {
  browserSkipReason,
  findChromium,
  type RunningCli,
  startCli,
  startServer,
  type TestServer,
  tempProject,
  until,
} from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.05);
  @task ok() { return this.client.get("/ok"); }
}
`;

interface WebCli extends RunningCli {
  /** As printed: http://127.0.0.1:PORT/ */
  url: string;
  port: number;
  quit(): Promise<void>;
}

/**
 * `cicada run loadtest.ts` serving its UI on a free loopback port, every setting the test relies on
 * given on the command line.
 */
async function startWeb(dir: string, target: string, extra: string[] = []): Promise<WebCli> {
  const cli = startCli(
    [
      "run",
      "loadtest.ts",
      "--web-host",
      "127.0.0.1",
      "--web-port",
      "0",
      "-H",
      target,
      "-u",
      "1",
      "-r",
      "10",
      "-t",
      "30s",
      "--baseline-dir",
      "baselines",
      ...extra,
    ],
    { cwd: dir, env: { CICADA_HEADLESS: "false" } },
  );
  const quit = async () => {
    if (cli.child.exitCode !== null || cli.child.signalCode !== null) return;
    cli.child.kill("SIGINT");
    const timer = setTimeout(() => cli.child.kill("SIGKILL"), 10_000);
    await cli.result;
    clearTimeout(timer);
  };
  try {
    await cli.waitFor(/web UI on http:\/\/\S+/, 20_000);
  } catch (err) {
    await quit();
    throw err;
  }
  const url = /web UI on (http:\/\/\S+)/.exec(cli.output().stderr)![1]!.replace(/\/?$/, "/");
  return Object.assign(cli, { url, port: Number(new URL(url).port), quit });
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): any;
}

/**
 * One request to 127.0.0.1:`port` with exactly these headers (Host included), as a script or a
 * browser under another name would send it. Event streams are read for a moment, then dropped.
 */
function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: "127.0.0.1", port, method, path, headers, setHost: headers.host === undefined },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => {
          text += d;
        });
        const done = () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        if (String(res.headers["content-type"]).startsWith("text/event-stream")) {
          setTimeout(() => {
            res.destroy();
            done();
          }, 300);
        } else res.on("end", done);
      },
    );
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`${method} ${path}: no answer`)));
    req.end(body);
  });
}

const own = (port: number) => ({ host: `127.0.0.1:${port}` });
const json = { "content-type": "application/json" };

async function uiState(port: number): Promise<{ status: string; run: unknown }> {
  const res = await raw(port, "GET", "/api/state", own(port));
  assert.equal(res.status, 200, res.text);
  return res.json();
}

async function stopRun(port: number): Promise<void> {
  const res = await raw(port, "POST", "/api/stop", { ...own(port), ...json }, "{}");
  assert.equal(res.status, 200, res.text);
  await until(
    "the test to stop",
    () => uiState(port),
    (s) => s.status === "stopped",
  );
}

describe("web UI security: raw requests", () => {
  let target: TestServer;
  let web: WebCli;
  const project = tempProject({ "loadtest.ts": LOADFILE });

  before(async () => {
    target = await startServer((_req, res) => res.end("ok"));
    web = await startWeb(project.dir, target.url);
  });

  after(async () => {
    await web?.quit();
    await target?.close();
    project.cleanup();
  });

  it("refuses writes from another origin, under another Host, or without a JSON body, and starts nothing", async () => {
    const p = web.port;
    const body = JSON.stringify({ users: 1, runTime: "20s" });
    const cases: Array<[string, Record<string, string>, number, string, string?]> = [
      ["another site's Origin", { ...own(p), ...json, origin: "http://evil.example" }, 403, "origin"],
      ["another port's Origin", { ...own(p), ...json, origin: `http://127.0.0.1:${p + 1}` }, 403, "origin"],
      ["an https Origin", { ...own(p), ...json, origin: `https://127.0.0.1:${p}` }, 403, "origin"],
      ["the null Origin", { ...own(p), ...json, origin: "null" }, 403, "origin"],
      ["a rebinding Host", { host: `evil.example:${p}`, ...json }, 403, "host"],
      [
        "a rebinding Host with a matching Origin",
        { host: `evil.example:${p}`, ...json, origin: `http://evil.example:${p}` },
        403,
        "host",
      ],
      ["a Host without the port", { host: "127.0.0.1", ...json }, 403, "host"],
      ["a Host with another port", { host: `localhost:${p + 1}`, ...json }, 403, "host"],
      ["a Host that is not a host", { host: `127.0.0.1:${p}@evil.example`, ...json }, 403, "host"],
      [
        "Sec-Fetch-Site: cross-site",
        { ...own(p), ...json, "sec-fetch-site": "cross-site" },
        403,
        "fetch-site",
      ],
      ["Sec-Fetch-Site: same-site", { ...own(p), ...json, "sec-fetch-site": "same-site" }, 403, "fetch-site"],
      ["a text/plain body", { ...own(p), "content-type": "text/plain;charset=UTF-8" }, 415, "content-type"],
      [
        "a form body",
        { ...own(p), "content-type": "application/x-www-form-urlencoded" },
        415,
        "content-type",
        "users=1&runTime=20s",
      ],
      [
        "a multipart body",
        { ...own(p), "content-type": "multipart/form-data; boundary=x" },
        415,
        "content-type",
      ],
      ["no content-type", { ...own(p) }, 415, "content-type"],
    ];
    for (const [what, headers, status, reason, text] of cases) {
      const res = await raw(p, "POST", "/api/start", headers, text ?? body);
      assert.equal(res.status, status, `${what}: ${res.text}`);
      assert.equal(res.json().reason, reason, what);
      assert.match(res.json().error, /^refused: /, what);
      const state = await uiState(p);
      assert.equal(state.status, "ready", `${what}: no test started`);
      assert.equal(state.run, null, what);
    }
    // Every write is guarded, not only start: a baseline is not saved from a form either.
    const form = await raw(
      p,
      "POST",
      "/api/baselines",
      { ...own(p), "content-type": "text/plain" },
      '{"name":"x"}',
    );
    assert.equal(form.status, 415);
    const cross = await raw(
      p,
      "PUT",
      "/api/start",
      { ...own(p), ...json, origin: "http://evil.example" },
      body,
    );
    assert.equal(cross.status, 403);
    const list = await raw(p, "GET", "/api/baselines", own(p));
    assert.deepEqual(list.json(), []);
    assert.equal(target.total(), 0, "no load reached the target");
  });

  it("refuses reads and pages under another Host, and serves them under its own names", async () => {
    const p = web.port;
    for (const path of ["/", "/api/state", "/api/stats", "/api/events", "/api/report.json", "/metrics"]) {
      for (const host of [`evil.example:${p}`, `127.0.0.1.evil.example:${p}`, `localhost:${p + 1}`]) {
        const res = await raw(p, "GET", path, { host });
        assert.equal(res.status, 403, `GET ${path} with Host ${host}: ${res.text}`);
        assert.equal(res.json().reason, "host");
      }
    }
    for (const host of [`127.0.0.1:${p}`, `localhost:${p}`, `LOCALHOST.:${p}`, `[::1]:${p}`]) {
      for (const path of ["/api/state", "/api/events", "/metrics"]) {
        const res = await raw(p, "GET", path, { host });
        assert.equal(res.status, 200, `GET ${path} with Host ${host}: ${res.text}`);
      }
    }
    const page = await raw(p, "GET", "/", own(p));
    assert.equal(page.status, 200);
    assert.equal(page.headers["x-frame-options"], "DENY", "no other site may frame the UI");
    assert.match(String(page.headers["content-security-policy"]), /frame-ancestors 'none'/);
  });

  it("accepts writes from its own page and from scripts, under each of its loopback names", async () => {
    const p = web.port;
    for (const [what, headers] of [
      [
        "its own page",
        {
          host: `localhost:${p}`,
          origin: `http://localhost:${p}`,
          "sec-fetch-site": "same-origin",
          "content-type": "application/json; charset=utf-8",
        },
      ],
      ["its own page by IP", { ...own(p), ...json, origin: `http://127.0.0.1:${p}` }],
      ["a script (no Origin)", { host: `[::1]:${p}`, ...json }],
    ] as const) {
      const res = await raw(p, "POST", "/api/start", headers, JSON.stringify({ users: 1, runTime: "20s" }));
      assert.equal(res.status, 200, `${what}: ${res.text}`);
      await until(
        `${what}: the test to run`,
        () => uiState(p),
        (s) => s.status === "running" || s.status === "spawning",
      );
      await stopRun(p);
    }
    assert.ok(target.total() > 0, "the accepted runs reached the target");
  });

  it("keeps the login, and refuses a cross-site write even with it", async () => {
    const web2 = await startWeb(project.dir, target.url, ["--web-login", "alice:s3cret"]);
    const p = web2.port;
    const auth = { authorization: `Basic ${Buffer.from("alice:s3cret").toString("base64")}` };
    try {
      assert.equal((await raw(p, "GET", "/api/state", own(p))).status, 401);
      assert.equal((await raw(p, "GET", "/api/state", { ...own(p), ...auth })).status, 200);
      // A browser sends its cached login along with another site's form: the login is no guard.
      const cross = await raw(
        p,
        "POST",
        "/api/start",
        { ...own(p), ...auth, ...json, origin: "http://evil.example" },
        "{}",
      );
      assert.equal(cross.status, 403);
      const rebound = await raw(p, "GET", "/api/state", { host: `evil.example:${p}`, ...auth });
      assert.equal(rebound.status, 403);
      const plain = await raw(
        p,
        "POST",
        "/api/start",
        { ...own(p), ...auth, "content-type": "text/plain" },
        "{}",
      );
      assert.equal(plain.status, 415);
      const state = await raw(p, "GET", "/api/state", { ...own(p), ...auth });
      assert.equal(state.json().status, "ready");
      const ok = await raw(p, "POST", "/api/start", { ...own(p), ...auth, ...json }, '{"runTime":"20s"}');
      assert.equal(ok.status, 200, ok.text);
      await raw(p, "POST", "/api/stop", { ...own(p), ...auth, ...json }, "{}");
    } finally {
      await web2.quit();
    }
  });
});

const chromiumPath = findChromium();

describe("web UI security: in a browser", { skip: browserSkipReason(chromiumPath) }, () => {
  let browser: Browser;
  let target: TestServer;
  let web: WebCli;
  let evil: Server;
  let evilPort = 0;
  const project = tempProject({ "loadtest.ts": LOADFILE });

  /** Another origin's page: it tries to start a test on the UI by fetch and by form posts. */
  const attackPage = (ui: string) => `<!doctype html>
<title>elsewhere</title>
<iframe name="sink1"></iframe>
<iframe name="sink2"></iframe>
<form id="plain" method="POST" action="${ui}api/start" enctype="text/plain" target="sink1">
  <input name='{"users":1,"runTime":"20s","x":"' value='"}'>
</form>
<form id="urlencoded" method="POST" action="${ui}api/start" target="sink2">
  <input name="users" value="1">
</form>
<script>
  window.attack = async () => {
    const out = [];
    for (const init of [
      { method: "POST", mode: "no-cors", body: JSON.stringify({ users: 1, runTime: "20s" }) },
      { method: "POST", mode: "no-cors", headers: { "content-type": "application/json" }, body: "{}" },
      { method: "POST", mode: "no-cors", headers: { "content-type": "text/plain" }, body: "{}" },
    ]) {
      try { await fetch("${ui}api/start", init); out.push("sent"); } catch (e) { out.push(String(e)); }
    }
    try {
      await fetch("${ui}api/start?cors", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
      out.push("cors fetch answered");
    } catch (e) { out.push("cors fetch blocked"); }
    return out;
  };
</script>`;

  before(async () => {
    assert.ok(
      chromiumPath,
      "no Chromium found (CI is set, so this fails instead of skipping): install chromium or set CICADA_CHROMIUM",
    );
    target = await startServer((_req, res) => setTimeout(() => res.end("ok"), 2));
    web = await startWeb(project.dir, target.url);
    const ui = web.url;
    evil = createServer((_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(attackPage(ui));
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", r));
    evilPort = (evil.address() as AddressInfo).port;
    browser = await chromium.launch({
      executablePath: chromiumPath!,
      // evil.example resolves to loopback in this browser only: a DNS-rebinding name without DNS.
      args: ["--no-sandbox", "--host-resolver-rules=MAP evil.example 127.0.0.1"],
      timeout: 30_000,
    });
  });

  after(async () => {
    await browser?.close();
    await web?.quit();
    await new Promise<void>((r) => (evil ? evil.close(() => r()) : r()));
    await target?.close();
    project.cleanup();
  });

  for (const [what, origin] of [
    ["another site", () => `http://evil.example:${evilPort}/`],
    ["another port of the same host", () => `http://127.0.0.1:${evilPort}/`],
  ] as const) {
    it(`a page on ${what} cannot start a test by fetch or form`, { timeout: 40_000 }, async () => {
      const context = await browser.newContext();
      const page = await context.newPage();
      // What became of each POST to the UI: the status it answered, or, where the browser hid
      // the answer from the page (the UI's answers are same-origin only), the browser's reason.
      const answers = new Map<Request, string>();
      const isStart = (r: Request) => r.url() === `${web.url}api/start` && r.method() === "POST";
      page.on("response", (r) => {
        if (isStart(r.request())) answers.set(r.request(), String(r.status()));
      });
      page.on("requestfailed", (r) => {
        if (isStart(r) && !answers.has(r)) answers.set(r, r.failure()?.errorText ?? "failed");
      });
      try {
        await page.goto(origin());
        const results = await page.evaluate(() => (globalThis as any).attack() as Promise<string[]>);
        // A no-cors fetch is sent; its answer is opaque, or an error since the UI's answers are
        // same-origin only. A JSON fetch needs a preflight, which the UI does not grant.
        assert.equal(results.length, 4);
        assert.equal(results[3], "cors fetch blocked");
        for (const form of ["plain", "urlencoded"]) {
          await page.evaluate((id) => (globalThis as any).document.getElementById(id).submit(), form);
        }
        // Each no-cors fetch and each form reached the server, which answered (the CORS fetch,
        // to api/start?cors, never passed its preflight).
        const seen = await until(
          "the server's answers to every attempt",
          async () => [...answers.values()],
          (a) => a.length >= 5,
        );
        for (const a of seen) assert.match(a, /^(403|415|net::ERR_BLOCKED_BY_RESPONSE\b.*)$/, `${seen}`);
        assert.ok(
          seen.some((a) => a === "403" || a === "415"),
          `the forms' answers are refusals: ${seen}`,
        );
        const state = await uiState(web.port);
        assert.equal(state.status, "ready");
        assert.equal(state.run, null);
        assert.equal(target.total(), 0, "no load reached the target");
      } finally {
        await context.close();
      }
    });
  }

  it("a page under a rebound name cannot read or drive the UI", { timeout: 30_000 }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    try {
      // evil.example now points at the UI itself: the browser counts it as evil.example's origin.
      const rebound = `http://evil.example:${web.port}/`;
      const res = await page.goto(rebound);
      assert.equal(res?.status(), 403);
      const tries = await page.evaluate(async (ui) => {
        const get = await fetch(`${ui}api/state`);
        const post = await fetch(`${ui}api/start`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ users: 1, runTime: "20s" }),
        });
        return [get.status, post.status, ((await post.json()) as { reason: string }).reason];
      }, rebound);
      assert.deepEqual(tries, [403, 403, "host"]);
      assert.equal((await uiState(web.port)).status, "ready");
    } finally {
      await context.close();
    }
  });

  it("its own page still starts and stops a test", { timeout: 40_000 }, async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") problems.push(`console: ${m.text()}`);
    });
    const status = () => page.textContent('[data-metric="status"] .badge');
    try {
      // By the name localhost, not the address printed: both are this UI's own origins.
      await page.goto(`http://localhost:${web.port}/`);
      await page.waitForSelector("#start-form");
      await page.fill('input[name="users"]', "2");
      await page.fill('input[name="spawnRate"]', "20");
      await page.fill('input[name="runTime"]', "30s");
      await page.click("#start-button");
      await until("the test to run", status, (s) => s === "running");
      await until(
        "load on the target",
        async () => target.total(),
        (n) => n > 0,
      );
      await page.click("#stop-button");
      await until("the test to stop", status, (s) => s === "stopped");
      assert.equal((await uiState(web.port)).status, "stopped");
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

describe("web UI security: the Host names it answers to", () => {
  // The rule for addresses a test should not bind (all interfaces, a LAN name), on the guard itself.
  const allowed = (bind: string, address: string, hosts: string[]) => {
    const g = new RequestGuard(bind, address, 8089, "Build-Box.lan");
    return hosts.filter((h) => g.hostAllowed(h));
  };

  it("bound to loopback: its address and the loopback names, with its port", () => {
    assert.deepEqual(
      allowed("127.0.0.1", "127.0.0.1", [
        "127.0.0.1:8089",
        "localhost:8089",
        "[::1]:8089",
        "2130706433:8089",
        "127.0.0.1",
        "127.0.0.1:8090",
        "192.168.1.5:8089",
        "build-box:8089",
        "evil.example:8089",
        "localhost.evil.example:8089",
      ]),
      ["127.0.0.1:8089", "localhost:8089", "[::1]:8089", "2130706433:8089"],
    );
    assert.deepEqual(allowed("::1", "::1", ["[::1]:8089", "[0:0:0:0:0:0:0:1]:8089", "localhost:8089"]), [
      "[::1]:8089",
      "[0:0:0:0:0:0:0:1]:8089",
      "localhost:8089",
    ]);
  });

  it("bound to all interfaces: any IP address, localhost and the machine's name", () => {
    for (const bind of ["0.0.0.0", "::"]) {
      assert.deepEqual(
        allowed(bind, bind, [
          "192.168.1.5:8089",
          "[fe80::1]:8089",
          "localhost:8089",
          "build-box.lan:8089",
          "BUILD-BOX:8089",
          "192.168.1.5:80",
          "build-box.evil.example:8089",
          "evil.example:8089",
        ]),
        ["192.168.1.5:8089", "[fe80::1]:8089", "localhost:8089", "build-box.lan:8089", "BUILD-BOX:8089"],
        bind,
      );
    }
  });

  it("bound to one address or name: that, its address and the machine's name", () => {
    assert.deepEqual(
      allowed("ui.lan", "192.168.1.5", [
        "ui.lan:8089",
        "UI.LAN.:8089",
        "192.168.1.5:8089",
        "build-box:8089",
        "192.168.1.6:8089",
        "localhost:8089",
        "evil.example:8089",
      ]),
      ["ui.lan:8089", "UI.LAN.:8089", "192.168.1.5:8089", "build-box:8089"],
    );
  });
});
