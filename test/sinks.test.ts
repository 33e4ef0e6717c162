// Outputs as sinks: result files check their paths before the run and write the finished result.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { UsageError } from "../src/core/errors.js";
import { jsonText, resultFile } from "../src/outputs/sink.js";
import type { RunResult } from "../src/result/result.js";

const RESULT = { tool: "cicada", totals: { requests: 3 } } as unknown as RunResult;

describe("result-file sinks", () => {
  it("refuse a path in a missing directory when made, naming the flag and the path", () => {
    assert.throws(
      () => resultFile("--html", "/no/such/dir/report.html", () => ""),
      (err: unknown) =>
        err instanceof UsageError &&
        /--html \/no\/such\/dir\/report\.html/.test(err.message) &&
        err.exitCode === 2,
    );
  });

  it("write the rendered result to the file, or to stdout for -", () => {
    const dir = mkdtempSync(join(tmpdir(), "cicada-sink-"));
    try {
      const path = join(dir, "r.json");
      resultFile("--json", path, jsonText).result!(RESULT);
      assert.deepEqual(JSON.parse(readFileSync(path, "utf8")), RESULT);
      let out = "";
      const sink = resultFile("--json", "-", jsonText, { write: (s: string) => (out += s) });
      sink.result!(RESULT);
      assert.deepEqual(JSON.parse(out), RESULT);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("report a write that fails at the end as a UsageError naming the output", () => {
    const dir = mkdtempSync(join(tmpdir(), "cicada-sink-"));
    try {
      // The directory exists when the sink is made, and is gone when the result comes.
      const sink = resultFile("--junit", join(dir, "sub-is-gone", "..", "j.xml"), () => "<x/>");
      rmSync(dir, { recursive: true, force: true });
      assert.throws(() => sink.result!(RESULT), /cannot write --junit/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
