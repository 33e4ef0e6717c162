/**
 * Leak verdicts end to end: a target process that keeps what each request allocates is flagged
 * (a growing RSS, `target_rss_slope` fails, exit 3); one that lets it go is not. Both are real
 * processes the test starts, watched with `--monitor-pid PID`.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { runLoad, tempProject } from "./helpers.js";

/**
 * The target: a loopback HTTP server that answers after 20 ms and allocates 32 KB per request,
 * keeping it if told to (at most 256 MB: about 6 MB/s at this load, some 100 MB over the run).
 */
const TARGET = `
const http = require("node:http");
const keep = [];
const leak = process.argv[2] === "leak";
// Warm up first, so that the heap and the allocator have settled before the run.
for (let i = 0; i < 3000; i++) Buffer.alloc(32 * 1024, i);
if (global.gc) global.gc();
const server = http.createServer((req, res) => {
  const b = Buffer.alloc(32 * 1024, 1);
  if (leak && keep.length < 8192) keep.push(b);
  setTimeout(() => res.end(String(b.length)), 20);
});
server.listen(0, "127.0.0.1", () => process.stdout.write(server.address().port + "\\n"));
`;

const project = tempProject({ "target.cjs": TARGET });
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) c.kill("SIGKILL");
  project.cleanup();
});

async function startTarget(mode: "leak" | "steady"): Promise<{ pid: number; url: string }> {
  const child = spawn(process.execPath, ["--expose-gc", join(project.dir, "target.cjs"), mode], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(child);
  const port = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      if (buf.includes("\n")) resolve(buf.trim());
    });
    child.on("exit", (code) => reject(new Error(`target exited with ${code}`)));
  });
  return { pid: child.pid!, url: `http://127.0.0.1:${port}` };
}

const LOADFILE = `
import { HttpUser, task } from "cicada-load";
export class Web extends HttpUser {
  @task async hit() { await this.client.get("/alloc"); }
}
`;

function runAgainst(t: { pid: number; url: string }) {
  return runLoad(LOADFILE, [
    "-H",
    t.url,
    "-u",
    "4",
    "-r",
    "4",
    "-t",
    "20s",
    "--monitor-pid",
    String(t.pid),
    "--threshold",
    "target_rss_slope<20MB/min",
  ]);
}

describe("memory leaks of the target, watched with --monitor-pid", () => {
  it("a target that keeps 32 KB per request is flagged as growing", async () => {
    const t = await startTarget("leak");
    const { code, stderr, result } = await runAgainst(t);
    const rss = result.soak?.leaks.find((l) => l.kind === "target" && l.metric === "rss_bytes");
    assert.ok(rss, `no fit of the target's RSS: ${stderr}\n${JSON.stringify(result.soak)}`);
    assert.equal(rss.growing, true, JSON.stringify(rss));
    assert.ok(rss.lowPerMin > 0, JSON.stringify(rss));
    // It grew by what it kept: 32 KB for each request served.
    const kept = result.totals.requests * 32 * 1024;
    assert.ok(rss.growth > kept * 0.2, `${JSON.stringify(rss)} vs ${kept} B kept`);
    assert.equal(code, 3, stderr);
    assert.equal(result.thresholds?.find((x) => x.metric === "target_rss_slope")?.passed, false);
    assert.ok(
      result.recommendations?.some((f) => f.kind === "soak" && /memory .*grew steadily/.test(f.message)),
      JSON.stringify(result.recommendations),
    );
  });

  it("a target that lets its allocations go is not", async () => {
    const t = await startTarget("steady");
    const { code, stderr, result } = await runAgainst(t);
    const rss = result.soak?.leaks.find((l) => l.kind === "target" && l.metric === "rss_bytes");
    assert.ok(rss, `no fit of the target's RSS: ${stderr}\n${JSON.stringify(result.soak)}`);
    assert.equal(rss.growing, false, JSON.stringify(rss));
    assert.equal(code, 0, `${stderr}\n${JSON.stringify(result.thresholds)}`);
  });
});
