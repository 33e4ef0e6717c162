/**
 * The "auto" HTTP engine: Cicada's fast HTTP/1.1 path by default, undici where the fast path
 * cannot go — a proxy set in the environment, a TLS server that speaks only HTTP/2.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer, request as httpRequest } from "node:http";
import { createSecureServer } from "node:http2";
import { type AddressInfo, connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readJson, runCli, startServer, type TestServer, tempProject } from "./helpers.js";

const LOADFILE = `
import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/hello"); }
}
`;

describe("auto engine", () => {
  let target: TestServer;
  before(async () => {
    target = await startServer((_req, res) => res.end("hi"));
  });
  after(() => target.close());

  it("goes through HTTP_PROXY when one is set (via undici)", async () => {
    let proxied = 0;
    const tunnels: string[] = [];
    // A minimal forward proxy: CONNECT tunnels (what undici uses) and absolute-form requests.
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
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
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
      assert.ok(tunnels.length + proxied > 0, "nothing went through the proxy");
      // One more connection than tunnels: the start-up reachability probe goes direct.
      assert.equal(targetConnections, tunnels.length + 1, "some requests bypassed the proxy");
      assert.ok(
        tunnels.every((u) => u === new URL(target.url).host),
        `unexpected tunnels: ${tunnels.join(", ")}`,
      );
    } finally {
      p.cleanup();
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
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
