/**
 * A master and workers on separate "machines" (network namespaces joined by a bridge, addresses
 * only inside them): exact merge across machines, and a killed worker, a frozen one, a cut link,
 * a late joiner, a worker serving two tests and a lost master, with real processes.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import { assertValidResult, CLI, cliEnv, describeRun, startCli, tempProject } from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.05);
  @task hit() { return this.client.get("/hit"); }
}
`;

// Unique per test process, so parallel runs never share a name or a subnet.
const TAG = `cf${process.pid % 100000}`;
const SUBNET = `10.251.${process.pid % 250}`;
const ROOT_IP = `${SUBNET}.1`;
const BRIDGE = `${TAG}b`;
const MACHINES = [1, 2, 3, 4].map((i) => ({
  ns: `${TAG}n${i}`,
  hostSide: `${TAG}h${i}`,
  ip: `${SUBNET}.${10 + i}`,
}));

// The master listens beyond loopback, so master and workers share a token.
const TOKEN = randomBytes(32).toString("hex");

const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });

function teardown(): void {
  for (const m of MACHINES) {
    try {
      ip("netns", "del", m.ns);
    } catch {}
  }
  try {
    ip("link", "del", BRIDGE);
  } catch {}
}

/** Builds the machines; returns why it could not, for the skip message. */
function setUp(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  try {
    ip("link", "add", BRIDGE, "type", "bridge");
    ip("addr", "add", `${ROOT_IP}/24`, "dev", BRIDGE);
    ip("link", "set", BRIDGE, "up");
    for (const m of MACHINES) {
      const inside = `${TAG}w${m.ns.slice(-1)}`;
      ip("netns", "add", m.ns);
      ip("link", "add", m.hostSide, "type", "veth", "peer", "name", inside);
      ip("link", "set", inside, "netns", m.ns);
      ip("link", "set", m.hostSide, "master", BRIDGE);
      ip("link", "set", m.hostSide, "up");
      ip("netns", "exec", m.ns, "ip", "addr", "add", `${m.ip}/24`, "dev", inside);
      ip("netns", "exec", m.ns, "ip", "link", "set", inside, "up");
      ip("netns", "exec", m.ns, "ip", "link", "set", "lo", "up");
    }
    return undefined;
  } catch (err) {
    teardown();
    const e = err as { stderr?: Buffer; message: string };
    return `cannot create network namespaces here (${(e.stderr?.toString() || e.message).trim()})`;
  }
}

const skipReason = setUp();
if (skipReason) console.log(`# skipping distributed fault tests: ${skipReason}`);
process.on("exit", teardown);
after(teardown);

/** A target on the bridge, where every machine reaches it; counts requests by machine. */
async function startTarget(): Promise<{
  server: Server;
  url: string;
  byIp: Map<string, number>;
  total(): number;
}> {
  const byIp = new Map<string, number>();
  const server = createServer((req, res) => {
    const from = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
    byIp.set(from, (byIp.get(from) ?? 0) + 1);
    res.end("ok");
  });
  server.keepAliveTimeout = 60000;
  await new Promise<void>((r) => server.listen(0, ROOT_IP, r));
  const { port } = server.address() as { port: number };
  return {
    server,
    url: `http://${ROOT_IP}:${port}`,
    byIp,
    total: () => [...byIp.values()].reduce((a, b) => a + b, 0),
  };
}

function closeTarget(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

async function freePort(): Promise<number> {
  const s = createTcpServer();
  await new Promise<void>((r) => s.listen(0, ROOT_IP, r));
  const { port } = s.address() as { port: number };
  await new Promise((r) => s.close(r));
  return port;
}

interface NsWorker {
  child: ChildProcess;
  output(): string;
  result: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitFor(re: RegExp, timeoutMs?: number): Promise<void>;
}

/** `cicada worker` on machine `m`, pointed at the master on the bridge. */
function startWorker(m: (typeof MACHINES)[number], port: number): NsWorker {
  const child = spawn(
    "ip",
    [
      "netns",
      "exec",
      m.ns,
      process.execPath,
      CLI,
      "worker",
      "--master-host",
      ROOT_IP,
      "--master-port",
      String(port),
      "--heartbeat-timeout",
      "2s",
      "--token",
      TOKEN,
    ],
    { env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const result = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.on("close", (code, signal) => r({ code, signal })),
  );
  return {
    child,
    output: () => out,
    result,
    waitFor: async (re, timeoutMs = 15000) => {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(`worker on ${m.ns}: timed out waiting for ${re}\n${out}`);
        await sleep(50);
      }
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function startMaster(dir: string, port: number, args: string[]) {
  return startCli(
    [
      "run",
      "--headless",
      "loadtest.ts",
      "--master",
      "--master-bind-host",
      ROOT_IP,
      "--master-bind-port",
      String(port),
      "--only-summary",
      "--token",
      TOKEN,
      ...args,
    ],
    { cwd: dir },
  );
}

/** Waits for a process's end, killing it past `ms`: a hang fails the test instead of the suite. */
async function bounded<T>(p: Promise<T>, child: ChildProcess, ms: number): Promise<T> {
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  try {
    return await p;
  } finally {
    clearTimeout(timer);
  }
}

describe("distributed: workers on other machines, and their faults", { skip: skipReason }, () => {
  const project = tempProject({ "loadtest.ts": LOADFILE });
  const workers: NsWorker[] = [];
  let target: Awaited<ReturnType<typeof startTarget>>;
  let port = 0;
  after(async () => {
    for (const w of workers) {
      w.child.kill("SIGCONT");
      w.child.kill("SIGKILL");
    }
    await Promise.all(workers.map((w) => w.result));
    if (target) await closeTarget(target.server);
    project.cleanup();
  });

  it("three machines: every one runs users, and the merged counts equal the target's", async () => {
    target = await startTarget();
    port = await freePort();
    const master = startMaster(project.dir, port, [
      "--expect-workers",
      "3",
      "-H",
      target.url,
      "-u",
      "9",
      "-r",
      "100",
      "-t",
      "3s",
      "--json",
      "r1.json",
    ]);
    await master.waitFor(/master listening/);
    for (const m of MACHINES.slice(0, 3)) workers.push(startWorker(m, port));
    const r = await bounded(master.result, master.child, 40000);
    assert.equal(r.code, 0, describeRun(r));
    const result = JSON.parse(readFileSync(join(project.dir, "r1.json"), "utf8")) as RunResult;
    assertValidResult(result);
    assert.equal(result.totals.requests + result.totals.cancelled, target.total(), "exact merge");
    for (const m of MACHINES.slice(0, 3)) assert.ok((target.byIp.get(m.ip) ?? 0) > 0, `no load from ${m.ip}`);
    // They stay for the next test.
    for (const w of workers) await w.waitFor(/waiting for the next test/);
  });

  it("a killed, a frozen and a cut-off worker: users move, a late one joins, the master ends on time", async () => {
    assert.ok(port > 0, "the first test sets the stage");
    target.byIp.clear();
    const [killed, frozen, cut] = workers as [NsWorker, NsWorker, NsWorker];
    const started = Date.now();
    const master = startMaster(project.dir, port, [
      "--expect-workers",
      "3",
      "-H",
      target.url,
      "-u",
      "12",
      "-r",
      "100",
      "-t",
      "12s",
      "--heartbeat-timeout",
      "2s",
      "--fail-on-worker-loss",
      "--json",
      "r2.json",
    ]);
    // The same three worker processes come back for this second test.
    await master.waitFor(/connected \(3\)/, 20000);
    const t0 = Date.now();
    const at = (sec: number) => sleep(Math.max(0, t0 + sec * 1000 - Date.now()));
    await at(2.5);
    killed.child.kill("SIGKILL");
    const late = startWorker(MACHINES[3]!, port);
    workers.push(late);
    await at(4.5);
    frozen.child.kill("SIGSTOP");
    await at(6);
    ip("link", "set", MACHINES[2]!.hostSide, "down");
    await at(8.5);
    // The frozen one wakes up: it is back, and gets a share again.
    frozen.child.kill("SIGCONT");
    // The link stays cut to the end: the master must not wait on a peer that cannot answer.
    const r = await bounded(master.result, master.child, 40000);
    const took = (Date.now() - started) / 1000;
    ip("link", "set", MACHINES[2]!.hostSide, "up");
    // 12 s of test, the stop, and startup: nowhere near the old hang, nor the grace of the dead.
    assert.ok(took < 26, `the master took ${took}s\n${describeRun(r)}`);
    assert.equal(r.code, 4, `--fail-on-worker-loss\n${describeRun(r)}`);

    const result = JSON.parse(readFileSync(join(project.dir, "r2.json"), "utf8")) as RunResult;
    assertValidResult(result);
    const events = result.warnings.flatMap((w) => (w.worker ? [w.worker] : []));
    const moved = (e: string) => events.filter((x) => x.event === e && x.usersMoved > 0);
    assert.ok(moved("lost").length >= 1, `the killed worker's users moved: ${JSON.stringify(events)}`);
    assert.ok(
      moved("missing").length >= 2,
      `the frozen and the cut-off one's too: ${JSON.stringify(events)}`,
    );
    assert.ok(
      events.some((x) => x.event === "joined"),
      `the late worker joined: ${JSON.stringify(events)}`,
    );
    assert.ok(
      events.some((x) => x.event === "returned"),
      `the frozen worker came back: ${JSON.stringify(events)}`,
    );
    assert.ok(
      !result.warnings.some((w) => w.kind === "cpu"),
      `a frozen worker is not a saturated generator: ${JSON.stringify(result.warnings)}`,
    );
    // The run's time is its test, not the wait for the dead: rates are not diluted by it.
    assert.ok(result.durationSec <= 14.5, `duration ${result.durationSec}s`);
    // The users moved: late in the run the full dozen is back.
    const lateUsers = result.series.filter((p) => p.t >= 9).map((p) => p.users);
    assert.ok(
      lateUsers.includes(12) && lateUsers.every((u) => u <= 12),
      `users after the faults: ${JSON.stringify(result.series.map((p) => [p.t, p.users]))}\n${r.stderr}`,
    );
    // What was measured stays: the merged count covers all but the dead workers' last moments.
    const counted = result.totals.requests + result.totals.cancelled;
    assert.ok(counted <= target.total(), `${counted} counted, target saw ${target.total()}`);
    assert.ok(counted >= 0.7 * target.total(), `${counted} counted, target saw ${target.total()}`);
    // Everything the late worker did reached the master.
    assert.ok((target.byIp.get(MACHINES[3]!.ip) ?? 0) > 0, "the late worker ran users");
    // The frozen worker served the first test and came back for the second.
    assert.ok((frozen.output().match(/connected to the master/g) ?? []).length >= 2, frozen.output());
    // The cut-off one noticed its master was gone (it reconnects for the next test, below).
    await cut.waitFor(/master was silent/, 5000);
  });

  it("a lost master stops every worker's load within seconds; the cut-off worker is back", async () => {
    const alive = [workers[3]!, workers[1]!, workers[2]!];
    const master = startMaster(project.dir, port, [
      "--expect-workers",
      "2",
      "-H",
      target.url,
      "-u",
      "4",
      "-r",
      "100",
      "-t",
      "60s",
      "--heartbeat-timeout",
      "2s",
    ]);
    await master.waitFor(/connected \(3\)/, 20000);
    await sleep(2500);
    const before = target.total();
    // Frozen, not closed: only the missing heartbeats tell the workers.
    master.child.kill("SIGSTOP");
    await sleep(5000);
    const stopped = target.total();
    await sleep(2000);
    try {
      assert.ok(stopped > before, "the load ran before the master froze");
      assert.equal(target.total(), stopped, "no load runs on without its master");
      for (const w of alive) await w.waitFor(/master was silent/, 1000);
    } finally {
      master.child.kill("SIGKILL");
      master.child.kill("SIGCONT");
      await master.result;
    }
  });
});
