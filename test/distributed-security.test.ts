/**
 * Who may be a worker, and who a master: the shared token proved both ways, protocol versions,
 * peers that are silent, slow, garbled or oversized, and TLS. Real CLI processes on loopback as a
 * user types them; raw sockets for the peers that misbehave.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import { PROTOCOL_VERSION } from "../src/runner/protocol.js";
import { describeRun, runCli, startCli, startMaster, startServer, tempProject } from "./helpers.js";

/** A secret the loadfile holds: it travels in the bundle, so no unproved peer may ever see it. */
const SECRET = "bundle-secret-5d1e0c7a";
const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
const apiKey = "${SECRET}";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task hit() { return this.client.get("/hit", { headers: { "x-key": apiKey } }); }
}
`;
const TOKEN = "d41f0a9c3b7e4e21a5c8f6b2e9d0c4a7";

/** A raw TCP peer: what it received, and when the other side closed it. */
async function rawPeer(port: number) {
  const socket = connect({ host: "127.0.0.1", port });
  let received = "";
  socket.setEncoding("utf8");
  socket.on("data", (d: string) => {
    received += d;
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((r) => socket.on("close", () => r()));
  await new Promise<void>((r) => socket.once("connect", () => r()));
  return {
    socket,
    /** How the master names this peer in its log. */
    name: `127.0.0.1:${socket.localPort}`,
    received: () => received,
    closed,
    /** The `n`th line the peer received (0-based), parsed. */
    line: async (n: number) => {
      const deadline = Date.now() + 10_000;
      while (received.split("\n").length <= n + 1 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      return JSON.parse(received.split("\n")[n]!) as Record<string, unknown>;
    },
    send: (m: unknown) => socket.write(`${JSON.stringify(m)}\n`),
  };
}

const hello = (version = PROTOCOL_VERSION) => ({
  type: "hello",
  workerId: "",
  version,
  pid: 1,
  nonce: randomBytes(32).toString("hex"),
});

/** Resolves within `ms` or fails the test: every bad peer must be let go of, not held. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms}ms`)), ms)),
  ]);
}

describe("distributed security: who may be a worker", () => {
  it("misbehaving peers are each dropped with one line; the workers with the token run the test exactly", async () => {
    let keyed = 0;
    const server = await startServer((req, res) => {
      if (req.headers["x-key"] === SECRET) keyed++;
      res.end("ok");
    });
    const project = tempProject({ "loadtest.ts": LOADFILE, "cicada.token": `${TOKEN}\n` });
    const workerDir = tempProject({});
    try {
      const { master, port } = await startMaster(project.dir, [
        "--token",
        TOKEN,
        "--handshake-timeout",
        "1s",
        "--expect-workers",
        "2",
        "-H",
        server.url,
        "-u",
        "4",
        "-r",
        "100",
        "-t",
        "3s",
        "--json",
        "r.json",
        "--only-summary",
      ]);
      const killer = setTimeout(() => master.child.kill("SIGKILL"), 60_000);

      // Silent after connecting, and a slow one that drips a byte every 300 ms.
      const silent = await rawPeer(port);
      const slow = await rawPeer(port);
      const drip = setInterval(() => slow.socket.write("{"), 300);
      // Garbage, and one line with no end.
      const garbage = await rawPeer(port);
      garbage.socket.write(Buffer.concat([randomBytes(200), Buffer.from("\n")]));
      const oversized = await rawPeer(port);
      oversized.socket.write("x".repeat(100_000));
      // Many small messages at once: only a few may wait in the greeting.
      const flood = await rawPeer(port);
      flood.socket.write(`${JSON.stringify(hello())}\n`.repeat(1000));
      // Another protocol version.
      const old = await rawPeer(port);
      old.send({ type: "hello", workerId: "", version: 1, pid: 1 });
      // A hello, then no token; then a made-up proof.
      const tokenless = await rawPeer(port);
      tokenless.send(hello());
      const challenge = await tokenless.line(0);
      assert.equal(challenge.type, "challenge");
      assert.equal(challenge.token, true);
      tokenless.send({ type: "auth" });
      const guesser = await rawPeer(port);
      guesser.send(hello());
      const c2 = await guesser.line(0);
      guesser.send({
        type: "auth",
        proof: createHmac("sha256", "not-the-token-but-long-enough").update(String(c2.nonce)).digest("hex"),
      });

      const all = [silent, slow, garbage, oversized, flood, old, tokenless, guesser];
      await within(Promise.all(all.map((p) => p.closed)), 10_000, "every bad peer closed");
      clearInterval(drip);
      const log = () => master.output().stderr;
      assert.ok(log().includes(`worker ${silent.name} dropped: no hello within 1s`), log());
      assert.ok(log().includes(`worker ${slow.name} dropped: no hello within 1s`), log());
      assert.ok(
        log().includes(`worker ${garbage.name} dropped: sent something that is not a Cicada message`),
        log(),
      );
      assert.ok(
        log().includes(`worker ${oversized.name} dropped: sent a line longer than 16384 characters`),
        log(),
      );
      assert.ok(
        log().includes(`worker ${flood.name} dropped: sent more than 4 messages ahead of the greeting`),
        log(),
      );
      assert.ok(
        log().includes(
          `worker ${old.name} refused: it speaks protocol version 1, this master speaks ${PROTOCOL_VERSION}`,
        ),
        log(),
      );
      assert.match(
        String((await old.line(0)).reason),
        new RegExp(`protocol version ${PROTOCOL_VERSION}, this worker 1`),
      );
      assert.ok(
        log().includes(`worker ${tokenless.name} refused: it gave no token (this master requires one)`),
        log(),
      );
      assert.ok(log().includes(`worker ${guesser.name} refused: wrong token`), log());
      for (const p of all) {
        assert.ok(!p.received().includes(SECRET), "an unproved peer got the bundle");
        assert.ok(!p.received().includes('"plan"'), "an unproved peer got a plan");
      }

      // The CLI's own workers with no token or the wrong one: refused on both sides.
      const none = await runCli(["worker", "--master-port", String(port)], { cwd: workerDir.dir });
      assert.equal(none.code, 2, describeRun(none));
      assert.match(
        none.stderr,
        /worker: the master requires a token: give this worker the master's with --token/,
      );
      const wrong = await runCli(["worker", "--master-port", String(port), "--token", "x".repeat(32)], {
        cwd: workerDir.dir,
      });
      assert.equal(wrong.code, 2, describeRun(wrong));
      assert.match(wrong.stderr, /worker: the master refused this worker: wrong token/);
      assert.match(log(), /worker 127\.0\.0\.1:\d+ refused: it refused this master: it has no token/);
      assert.doesNotMatch(log(), /connected \(\d\)/, "no bad peer counts as a worker");

      // The two that know it: one from the environment, one from a file.
      const w1 = startCli(["worker", "--master-port", String(port), "--once"], {
        cwd: workerDir.dir,
        env: { CICADA_TOKEN: TOKEN },
      });
      const w2 = startCli(
        [
          "run",
          "--worker",
          "--once",
          "--master-port",
          String(port),
          "--token-file",
          join(project.dir, "cicada.token"),
        ],
        {
          cwd: workerDir.dir,
        },
      );
      const r = await master.result;
      clearTimeout(killer);
      assert.equal(r.code, 0, describeRun(r));
      const [r1, r2] = await Promise.all([w1.result, w2.result]);
      assert.equal(r1.code, 0, describeRun(r1));
      assert.equal(r2.code, 0, describeRun(r2));
      assert.match(r1.stderr, /connected to the master at 127\.0\.0\.1:\d+, token proved both ways/);
      assert.match(r.stderr, /connected \(2\)/);
      assert.doesNotMatch(r.stderr, /connected \(3\)/);
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      assert.equal(result.config.processes, 2);
      assert.ok(result.totals.requests > 0);
      assert.equal(result.totals.requests + result.totals.cancelled, server.total(), "exact counts");
      assert.equal(keyed, server.total(), "every request came from the real bundle");
      // The token itself never crossed the wire to a peer.
      for (const p of all) assert.ok(!p.received().includes(TOKEN));
    } finally {
      project.cleanup();
      workerDir.cleanup();
      await server.close();
    }
  });

  it("a master beyond loopback without a token refuses to start; bad tokens are usage errors that do not echo them", async () => {
    const project = tempProject({ "loadtest.ts": LOADFILE, "empty.token": "\n" });
    try {
      const open = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "--master",
          "--master-bind-host",
          "0.0.0.0",
          "-H",
          "http://127.0.0.1:9",
        ],
        { cwd: project.dir },
      );
      assert.equal(open.code, 2, describeRun(open));
      assert.match(open.stderr, /--master-bind-host 0\.0\.0\.0 lets other machines connect.*add --token/);
      assert.doesNotMatch(open.stderr, /master listening/);

      const short = await runCli(["worker", "--token", "hunter2"], { cwd: project.dir });
      assert.equal(short.code, 2, describeRun(short));
      assert.match(short.stderr, /--token: expected a secret of at least 16 characters.*got 7 character/);
      assert.doesNotMatch(short.stderr, /hunter2/);

      const envShort = await runCli(["worker"], { cwd: project.dir, env: { CICADA_TOKEN: "hunter2" } });
      assert.equal(envShort.code, 2, describeRun(envShort));
      assert.match(envShort.stderr, /CICADA_TOKEN: expected a secret/);

      const empty = await runCli(["worker", "--token-file", "empty.token"], { cwd: project.dir });
      assert.equal(empty.code, 2, describeRun(empty));
      assert.match(empty.stderr, /--token-file empty\.token: expected a secret/);

      const both = await runCli(["worker", "--token", TOKEN, "--token-file", "empty.token"], {
        cwd: project.dir,
      });
      assert.equal(both.code, 2, describeRun(both));
      assert.match(both.stderr, /give the token once/);

      const half = await runCli(
        ["run", "--headless", "loadtest.ts", "--master", "--tls-cert", "x.pem", "-H", "http://127.0.0.1:9"],
        { cwd: project.dir },
      );
      assert.equal(half.code, 2, describeRun(half));
      assert.match(half.stderr, /--tls-cert and --tls-key go together/);
    } finally {
      project.cleanup();
    }
  });
});

/** A fake master on loopback that plays `script` with each connection. */
async function fakeMaster(
  script: (s: Socket, lines: () => Promise<Record<string, unknown>>) => Promise<void>,
) {
  const received: string[] = [];
  const server = createServer((socket) => {
    socket.setEncoding("utf8");
    socket.on("error", () => {});
    let buf = "";
    const waiting: Array<(m: Record<string, unknown>) => void> = [];
    const queue: Array<Record<string, unknown>> = [];
    socket.on("data", (d: string) => {
      buf += d;
      let i = buf.indexOf("\n");
      while (i >= 0) {
        const line = buf.slice(0, i);
        received.push(line);
        buf = buf.slice(i + 1);
        const m = JSON.parse(line) as Record<string, unknown>;
        const w = waiting.shift();
        if (w) w(m);
        else queue.push(m);
        i = buf.indexOf("\n");
      }
    });
    const next = () =>
      new Promise<Record<string, unknown>>((r) => {
        const m = queue.shift();
        if (m) r(m);
        else waiting.push(r);
      });
    void script(socket, next).catch(() => socket.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    received,
    close: () => {
      server.close();
      return new Promise((r) => setTimeout(r, 10));
    },
  };
}

describe("distributed security: who may be a master", () => {
  it("a worker refuses a master of another version, one without the token, one that cannot prove it, and a silent one", async () => {
    const dir = tempProject({});
    const marker = join(dir.dir, "ran-the-fake-masters-code");
    try {
      const version = await fakeMaster(async (s, next) => {
        await next();
        s.write(
          `${JSON.stringify({ type: "challenge", version: 99, nonce: "a".repeat(64), token: false })}\n`,
        );
      });
      const v = await runCli(["worker", "--master-port", String(version.port)], { cwd: dir.dir });
      assert.equal(v.code, 2, describeRun(v));
      assert.match(
        v.stderr,
        new RegExp(`worker: the master speaks protocol version 99, this worker ${PROTOCOL_VERSION}`),
      );
      assert.ok(
        version.received.some((l) => /"type":"bye".*protocol version/.test(l)),
        version.received.join("\n"),
      );
      await version.close();

      const tokenless = await fakeMaster(async (s, next) => {
        await next();
        s.write(
          `${JSON.stringify({ type: "challenge", version: PROTOCOL_VERSION, nonce: "b".repeat(64), token: false })}\n`,
        );
      });
      const t = await runCli(["worker", "--master-port", String(tokenless.port), "--token", TOKEN], {
        cwd: dir.dir,
      });
      assert.equal(t.code, 2, describeRun(t));
      assert.match(t.stderr, /worker: the master has no token, so it cannot prove it is the one/);
      await tokenless.close();

      // Claims a token, accepts any proof, answers with a made-up one, then sends code to run.
      const impostor = await fakeMaster(async (s, next) => {
        await next();
        s.write(
          `${JSON.stringify({ type: "challenge", version: PROTOCOL_VERSION, nonce: "c".repeat(64), token: true })}\n`,
        );
        await next();
        const code = `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "ran");`;
        s.write(`${JSON.stringify({ type: "welcome", proof: "0".repeat(64) })}\n`);
        s.write(
          `${JSON.stringify({
            type: "plan",
            workerId: "w0",
            plan: {
              bundlePath: "",
              bundleCode: code,
              loadfile: "evil.ts",
              workerIndex: 0,
              workerCount: 1,
              host: undefined,
              userClasses: [],
              tags: [],
              excludeTags: [],
              iterations: null,
              snapshotIntervalMs: 1000,
              verifyTls: true,
            },
          })}\n`,
        );
      });
      const i = await runCli(["worker", "--master-port", String(impostor.port), "--token", TOKEN], {
        cwd: dir.dir,
      });
      assert.equal(i.code, 2, describeRun(i));
      assert.match(i.stderr, /worker: the master could not prove it knows this worker's token/);
      assert.ok(!existsSync(marker), "the worker ran a plan from a master that did not prove the token");
      assert.ok(!impostor.received.join("\n").includes(TOKEN), "the token crossed the wire");
      await impostor.close();

      const silent = await fakeMaster(() => new Promise(() => {}));
      const sl = await runCli(["worker", "--master-port", String(silent.port), "--handshake-timeout", "1s"], {
        cwd: dir.dir,
      });
      assert.equal(sl.code, 4, describeRun(sl));
      assert.match(
        sl.stderr,
        /worker: greeting the master at 127\.0\.0\.1:\d+ failed: the master did not answer the hello within 1s/,
      );
      await silent.close();
    } finally {
      dir.cleanup();
    }
  });
});

describe("distributed security: TLS", () => {
  it("workers that trust the master's CA run the test; one that does not refuses the master", async () => {
    const certs = tempProject({ "ext.cnf": "subjectAltName=IP:127.0.0.1,DNS:localhost\n" });
    const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: certs.dir, stdio: "pipe" });
    const newCa = (name: string) =>
      openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        `${name}.key`,
        "-out",
        `${name}.pem`,
        "-days",
        "2",
        "-subj",
        `/CN=${name}`,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
      );
    newCa("ca");
    newCa("other-ca");
    openssl(
      "req",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      "master.key",
      "-out",
      "master.csr",
      "-subj",
      "/CN=cicada-master",
    );
    openssl(
      "x509",
      "-req",
      "-in",
      "master.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "master.pem",
      "-days",
      "2",
      "-extfile",
      "ext.cnf",
    );
    const server = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const { master, port } = await startMaster(project.dir, [
        "--token",
        TOKEN,
        "--tls-cert",
        join(certs.dir, "master.pem"),
        "--tls-key",
        join(certs.dir, "master.key"),
        "--expect-workers",
        "1",
        "-H",
        server.url,
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        "2s",
        "--json",
        "r.json",
        "--only-summary",
      ]);
      const killer = setTimeout(() => master.child.kill("SIGKILL"), 60_000);
      assert.match(master.output().stderr, /master listening on 127\.0\.0\.1:\d+ \(TLS\)/);

      const distrust = await runCli(
        [
          "worker",
          "--master-port",
          String(port),
          "--token",
          TOKEN,
          "--tls-ca",
          join(certs.dir, "other-ca.pem"),
        ],
        { cwd: certs.dir },
      );
      assert.equal(distrust.code, 2, describeRun(distrust));
      assert.match(
        distrust.stderr,
        /worker: refusing the master at 127\.0\.0\.1:\d+: its TLS certificate is not trusted by --tls-ca/,
      );
      await master.waitFor(/worker 127\.0\.0\.1:\d+ dropped: TLS handshake failed/);

      // Plain TCP to a TLS master is not a worker either.
      const plain = await rawPeer(port);
      plain.send(hello());
      await within(plain.closed, 10_000, "a plain-TCP peer closed");
      assert.equal(plain.received(), "");

      assert.match(
        master.output().stderr,
        new RegExp(`worker ${plain.name} dropped: TLS handshake failed: it does not speak TLS`),
      );

      // A peer that connects and stays silent holds no slot: the worker that comes after it starts the run.
      const lingerer = await rawPeer(port);
      const w = startCli(
        [
          "worker",
          "--once",
          "--master-port",
          String(port),
          "--token",
          TOKEN,
          "--tls-ca",
          join(certs.dir, "ca.pem"),
        ],
        { cwd: certs.dir },
      );
      await master.waitFor(/connected \(1\)/);
      assert.doesNotMatch(master.output().stderr, new RegExp(`worker ${lingerer.name} dropped`));
      const r = await master.result;
      clearTimeout(killer);
      assert.equal(r.code, 0, describeRun(r));
      const wr = await w.result;
      assert.equal(wr.code, 0, describeRun(wr));
      assert.match(wr.stderr, /connected to the master at 127\.0\.0\.1:\d+ over TLS, token proved both ways/);
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      assert.ok(result.totals.requests > 0);
      assert.equal(result.totals.requests + result.totals.cancelled, server.total(), "exact counts");
    } finally {
      project.cleanup();
      certs.cleanup();
      await server.close();
    }
  });
});
