/** Locust-compatible CSV files: exact headers, rows that match the JSON, refreshed live, written on Ctrl-C. */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  EXCEPTIONS_HEADER,
  FAILURES_HEADER,
  HISTORY_HEADER,
  locustType,
  STATS_HEADER,
} from "../src/outputs/csv.js";
import type { RunResult } from "../src/result/result.js";
import { describeRun, runCli, startCli, startServer, tempProject } from "./helpers.js";

// The header lines Locust 2.12 writes, verbatim.
const LOCUST = {
  stats:
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%",
  history:
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,Total Min Response Time,Total Max Response Time,Total Average Content Size",
  failures: "Method,Name,Error,Occurrences",
  exceptions: "Count,Message,Traceback,Nodes",
};

/** A small RFC 4180 reader: quoted fields with commas, quotes and newlines. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n") {
      row.push(field.replace(/\r$/, ""));
      rows.push(row);
      row = [];
      field = "";
    } else field += c;
  }
  if (field !== "" || row.length > 0) rows.push([...row, field]);
  return rows;
}

function readCsv(path: string): Array<Record<string, string>> {
  const [header, ...rows] = parseCsv(readFileSync(path, "utf8"));
  return rows.map((r) => Object.fromEntries(header!.map((h, i) => [h, r[i]!])));
}

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.01);
  @task(3) ok() { return this.client.get("/ok"); }
  @task broken() { return this.client.get("/broken", { name: "broken, with a comma" }); }
  @task boom() { if (Math.random() < 2) throw new Error('bad "quote"\\nsecond line'); }
}
`;

describe("CSV output", () => {
  it("uses Locust's header lines exactly", () => {
    assert.equal(STATS_HEADER.join(","), LOCUST.stats);
    assert.equal(HISTORY_HEADER.join(","), LOCUST.history);
    assert.equal(FAILURES_HEADER.join(","), LOCUST.failures);
    assert.equal(EXCEPTIONS_HEADER.join(","), LOCUST.exceptions);
    assert.equal(locustType("HTTP", "POST"), "POST");
  });

  it("writes the four files with rows that match the JSON; history per second, per endpoint with full history", async () => {
    const server = await startServer((req, res) => {
      res.statusCode = req.url === "/broken" ? 503 : 200;
      res.end("hello");
    });
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const prefix = join(project.dir, "out");
      const r = await runCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          server.url,
          "-u",
          "3",
          "-r",
          "100",
          "-t",
          "4s",
          "--csv",
          prefix,
          "--csv-full-history",
          "--json",
          "r.json",
          "--only-summary",
        ],
        { cwd: project.dir },
      );
      assert.equal(r.code, 1, describeRun(r));
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      for (const [kind, header] of Object.entries(LOCUST)) {
        const file = `${prefix}_${kind === "history" ? "stats_history" : kind}.csv`;
        assert.equal(readFileSync(file, "utf8").split("\r\n")[0], header, file);
      }

      const stats = readCsv(`${prefix}_stats.csv`);
      assert.deepEqual(
        stats.map((s) => [s.Type, s.Name]),
        [
          ["GET", "/ok"],
          ["GET", "broken, with a comma"],
          ["", "Aggregated"],
        ],
      );
      for (const row of stats) {
        const e =
          row.Name === "Aggregated" ? result.totals : result.endpoints.find((x) => x.name === row.Name)!;
        assert.equal(Number(row["Request Count"]), e.requests);
        assert.equal(Number(row["Failure Count"]), e.failures);
        assert.equal(Number(row["95%"]), Math.round(e.latencyMs.p95));
        assert.equal(Number(row["Max Response Time"]), Math.round(e.latencyMs.max));
        assert.ok(Math.abs(Number(row["Average Response Time"]) - e.latencyMs.mean) < 0.01);
        assert.equal(Number(row["Average Content Size"]), 5);
      }

      const failures = readCsv(`${prefix}_failures.csv`);
      assert.deepEqual(failures, [
        {
          Method: "GET",
          Name: "broken, with a comma",
          Error: "HTTP 503",
          Occurrences: String(result.endpoints.find((x) => x.name === "broken, with a comma")!.failures),
        },
      ]);
      const exceptions = readCsv(`${prefix}_exceptions.csv`);
      assert.equal(exceptions.length, 1);
      assert.equal(exceptions[0]!.Message, 'Error: bad "quote"\nsecond line');
      assert.equal(Number(exceptions[0]!.Count), result.exceptions[0]!.count);

      const history = readCsv(`${prefix}_stats_history.csv`);
      const aggregated = history.filter((h) => h.Name === "Aggregated");
      assert.equal(aggregated.length, result.series.length, "one Aggregated row per second");
      assert.equal(
        aggregated.reduce((n, h) => n + Number(h["Requests/s"]), 0),
        result.totals.requests,
        "per-second requests add up to the total",
      );
      const last = aggregated[aggregated.length - 1]!;
      assert.equal(Number(last["Total Request Count"]), result.totals.requests);
      const perEndpoint = history.filter((h) => h.Name === "/ok");
      assert.ok(perEndpoint.length >= result.series.length - 1, "full history has per-endpoint rows");
      assert.ok(
        history.every((h) => /^\d{10}$/.test(h.Timestamp!)),
        "Unix seconds",
      );
    } finally {
      project.cleanup();
      await server.close();
    }
  });

  it("refreshes the files during the run, and Ctrl-C still writes them", async () => {
    const server = await startServer((_req, res) => res.end("x"));
    const project = tempProject({
      "loadtest.ts": `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task hit() { return this.client.get("/x"); }
}
`,
    });
    try {
      const prefix = join(project.dir, "live");
      const run = startCli(
        [
          "run",
          "--headless",
          "loadtest.ts",
          "-H",
          server.url,
          "-u",
          "2",
          "-r",
          "100",
          "--csv",
          prefix,
          "--json",
          "r.json",
        ],
        {
          cwd: project.dir,
        },
      );
      // Poll: on a loaded machine the first seconds may take a while to close.
      const deadline = Date.now() + 15000;
      let refreshed = false;
      while (!refreshed && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250));
        if (!existsSync(`${prefix}_stats.csv`)) continue;
        const mid = readCsv(`${prefix}_stats.csv`);
        refreshed =
          Number(mid.find((m) => m.Name === "Aggregated")?.["Request Count"]) > 0 &&
          readCsv(`${prefix}_stats_history.csv`).length >= 2;
      }
      assert.ok(refreshed, "stats refreshed and history grown mid-run");
      run.child.kill("SIGINT");
      const r = await run.result;
      assert.equal(r.code, 0, describeRun(r));
      const final = readCsv(`${prefix}_stats.csv`);
      const result = JSON.parse(readFileSync(join(project.dir, "r.json"), "utf8")) as RunResult;
      // Requests cut off by the stop are cancelled: sent (the server counts them), not timed.
      assert.equal(
        Number(final.find((m) => m.Name === "Aggregated")!["Request Count"]),
        result.totals.requests,
      );
      assert.equal(result.totals.requests + result.totals.cancelled, server.total());
    } finally {
      project.cleanup();
      await server.close();
    }
  });

  it("a prefix in a missing directory is a usage error before the run", async () => {
    const server = await startServer((_req, res) => res.end("x"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const r = await runCli(
        ["run", "--headless", "loadtest.ts", "-H", server.url, "-t", "1s", "--csv", "/nonexistent/dir/out"],
        {
          cwd: project.dir,
        },
      );
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, /cannot write --csv \/nonexistent\/dir\/out/);
      assert.equal(server.total(), 0);
    } finally {
      project.cleanup();
      await server.close();
    }
  });
});
