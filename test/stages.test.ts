/** Load shapes from stages: parsing, the level at any time, and real runs that follow them. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CicadaError } from "../src/core/errors.js";
import { parseStages, stageLevel, stagesDuration, stagesPeak } from "../src/runner/stages.js";
import { runCli, runLoad, startServer, tempProject } from "./helpers.js";

describe("stages: parsing and levels", () => {
  it("parses the CLI form and the object form alike", () => {
    const a = parseStages("30s:100, 2m:100,10s:0");
    const b = parseStages([
      { duration: "30s", target: 100 },
      { duration: 120, target: 100 },
      { duration: "10s", target: 0 },
    ]);
    assert.deepEqual(a, b);
    assert.deepEqual(a, [
      { durationSec: 30, target: 100 },
      { durationSec: 120, target: 100 },
      { durationSec: 10, target: 0 },
    ]);
    assert.equal(stagesDuration(a), 160);
    assert.equal(stagesPeak(a), 100);
  });

  it("rejects malformed stages with a usage error", () => {
    for (const bad of ["", "30s", "30s:-1", "x:10", "30s:10,,5q:1", "10s:1.5"]) {
      assert.throws(
        () => parseStages(bad),
        (e: unknown) => e instanceof CicadaError && e.exitCode === 2,
        JSON.stringify(bad),
      );
    }
  });

  it("ramps linearly from the previous target and ends after the last stage", () => {
    const s = parseStages("10s:100,10s:100,5s:0");
    assert.equal(stageLevel(s, 0), 0);
    assert.equal(stageLevel(s, 5), 50);
    assert.equal(stageLevel(s, 10), 100);
    assert.equal(stageLevel(s, 15), 100);
    assert.equal(stageLevel(s, 22.5), 50);
    assert.equal(stageLevel(s, 25), null);
    // A zero-length stage jumps to its target.
    assert.equal(stageLevel(parseStages("0s:7,10s:7"), 0), 7);
  });
});

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.1);
  override async onStart() { await this.client.get("/start"); }
  @task async hit() { await this.client.get("/hit"); }
}
`;

describe("stages: real runs", () => {
  it("follows --stages: reaches each target within a second, ramps down, ends with the last stage", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    try {
      const { result: res, ...r } = await runLoad(LOADFILE, ["-H", server.url, "--stages", "1s:4,2s:4,1s:0"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(res.stopReason, "stages");
      assert.ok(res.durationSec >= 3.9 && res.durationSec < 6, `duration ${res.durationSec}`);
      assert.equal(res.users.peak, 4);
      assert.equal(server.counts.get("GET /start"), 4, "4 users started, no more");
      // Per-second rows: the target is held from the end of the first second to the start of the
      // ramp-down, and nobody is left at the end.
      const rows = res.series as Array<{ t: number; users: number }>;
      const at = (t: number) => rows.find((x) => Math.round(x.t) === t);
      assert.equal(at(2)?.users, 4, JSON.stringify(rows));
      assert.equal(at(3)?.users, 4, JSON.stringify(rows));
      assert.equal(rows[rows.length - 1]!.users, 0, JSON.stringify(rows));
      assert.equal((res.config.stages as unknown[]).length, 3);
    } finally {
      await server.close();
    }
  });

  it("takes stages from the loadfile's options, and --run-time still cuts the run short", async () => {
    const server = await startServer((_req, res) => res.end("ok"));
    try {
      const { result: res, ...r } = await runLoad(
        `${LOADFILE}\nexport const options = { stages: [{ duration: "1s", target: 3 }, { duration: "20s", target: 3 }] };\n`,
        ["-H", server.url, "-t", "2s"],
      );
      assert.equal(r.code, 0, r.stderr);
      assert.equal(res.stopReason, "run-time");
      assert.equal(res.users.peak, 3);
      assert.ok(res.durationSec < 4, `duration ${res.durationSec}`);
    } finally {
      await server.close();
    }
  });

  it("a malformed --stages is a usage error", async () => {
    const p = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const r = await runCli(
        ["run", "--headless", "loadtest.ts", "-H", "http://127.0.0.1:9", "--stages", "10s:x"],
        {
          cwd: p.dir,
        },
      );
      assert.equal(r.code, 2);
      assert.match(r.stderr, /--stages/);
    } finally {
      p.cleanup();
    }
  });
});
