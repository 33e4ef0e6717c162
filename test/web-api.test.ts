/** The web UI's HTTP API, against a real `cicada run` serving it and a real loopback target. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RunResult } from "../src/result/result.js";
import { assertValidResult, describeRun, runCli, startCli, startServer, tempProject } from "./helpers.js";

const LOADFILE = `
import { HttpUser, task, constant } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.02);
  @task hit() { return this.client.get("/hit"); }
}
export const options = { thresholds: ["p95<5000"] };
`;

interface Ui {
  url: string;
  api(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<{ code: number | null; stdout: string; stderr: string }>;
}

async function startUi(args: string[], dir: string, auth?: string): Promise<Ui> {
  const run = startCli(["run", "loadtest.ts", "--web-port", "0", ...args], {
    cwd: dir,
  });
  await run.waitFor(/web UI on http:\/\/\S+/);
  const url = /web UI on (http:\/\/\S+)/.exec(run.output().stderr)![1]!;
  const headers: Record<string, string> = auth
    ? { authorization: `Basic ${Buffer.from(auth).toString("base64")}` }
    : {};
  return {
    url,
    api: (path, init = {}) =>
      fetch(url + path, {
        ...init,
        headers: {
          "content-type": "application/json",
          ...headers,
          ...((init.headers as Record<string, string>) ?? {}),
        },
      }),
    stop: async () => {
      if (run.child.exitCode === null) run.child.kill("SIGINT");
      const timer = setTimeout(() => run.child.kill("SIGKILL"), 15000);
      const r = await run.result;
      clearTimeout(timer);
      return r;
    },
  };
}

/** Reads Server-Sent Events until `until` says stop, or the time is up. */
async function readEvents(
  res: Response,
  until: (events: Array<{ event: string; data: any }>) => boolean,
  timeoutMs = 10000,
): Promise<Array<{ event: string; data: any }>> {
  const events: Array<{ event: string; data: any }> = [];
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline && !until(events)) {
      const chunk = await Promise.race([
        reader.read(),
        new Promise<null>((r) => setTimeout(() => r(null), deadline - Date.now())),
      ]);
      if (!chunk || chunk.done) break;
      buf += decoder.decode(chunk.value, { stream: true });
      let i = buf.indexOf("\n\n");
      while (i >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (ev && data) events.push({ event: ev, data: JSON.parse(data) });
        i = buf.indexOf("\n\n");
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return events;
}

async function waitUntil<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 10000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe("web UI API", () => {
  it("starts, streams, edits, resets and stops a test; serves its reports; keeps baselines", async () => {
    const target = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    const ui = await startUi(["-H", target.url], project.dir);
    try {
      const state = (await (await ui.api("/api/state")).json()) as any;
      assert.equal(state.status, "ready");
      assert.deepEqual(
        state.classes.map((c: any) => c.name),
        ["Web"],
      );
      assert.equal(state.defaults.host, target.url);
      assert.equal(target.total(), 0, "nothing runs before start");
      assert.equal((await ui.api("/api/report.json")).status, 404);

      const bad = await ui.api("/api/start", { method: "POST", body: JSON.stringify({ users: 0 }) });
      assert.equal(bad.status, 400);
      assert.match(((await bad.json()) as any).error, /users/);

      const events = ui.api("/api/events");
      const started = await ui.api("/api/start", {
        method: "POST",
        body: JSON.stringify({ users: 2, spawnRate: 100, runTime: "60s" }),
      });
      assert.equal(started.status, 200, await started.clone().text());
      const again = await ui.api("/api/start", { method: "POST", body: "{}" });
      assert.equal(again.status, 409);

      // Pushed, not polled: stats events arrive on their own, with series rows appended.
      const stream = await readEvents(
        await events,
        (evs) => evs.filter((e) => e.event === "stats").length >= 3,
      );
      const stats = stream.filter((e) => e.event === "stats").map((e) => e.data);
      assert.ok(stats.length >= 3, `only ${stats.length} stats events`);
      assert.ok(stream.some((e) => e.event === "state"));
      const last = stats[stats.length - 1]!;
      assert.equal(last.users, 2);
      assert.ok(last.totals.requests > 0);
      assert.equal(last.endpoints[0].name, "/hit");
      assert.equal(last.thresholds[0].expr, "p95<5000");
      assert.equal(
        last.workers.reduce((n: number, w: any) => n + w.users, 0),
        2,
      );
      // Each event carries the rows after the previous one's.
      let rows = 0;
      for (const s of stats) {
        assert.equal(s.seriesFrom, rows);
        rows += s.series.length;
      }
      assert.ok(rows >= 1);

      const edited = await ui.api("/api/edit", {
        method: "POST",
        body: JSON.stringify({ users: 5, spawnRate: 100 }),
      });
      assert.equal(edited.status, 200);
      await waitUntil(async () => {
        const s = (await (await ui.api("/api/stats")).json()) as any;
        return s.users === 5 ? s : undefined;
      }, "5 users");

      const before = ((await (await ui.api("/api/stats")).json()) as any).totals.requests;
      assert.equal((await ui.api("/api/reset", { method: "POST" })).status, 200);
      const after = ((await (await ui.api("/api/stats")).json()) as any).totals.requests;
      assert.ok(after < before, `reset: ${after} should be below ${before}`);

      // Downloads while running, then after the stop.
      const live = (await (await ui.api("/api/report.json")).json()) as RunResult;
      assertValidResult(live);
      assert.equal((await ui.api("/api/stop", { method: "POST" })).status, 200);
      await waitUntil(async () => {
        const s = (await (await ui.api("/api/state")).json()) as any;
        return s.status === "stopped" ? s : undefined;
      }, "stopped");
      const result = (await (await ui.api("/api/report.json")).json()) as RunResult;
      assertValidResult(result);
      assert.equal(result.stopReason, "api");
      assert.ok(result.totals.requests > 0);
      const html = await (await ui.api("/api/report.html")).text();
      assert.match(html, /^<!doctype html>/i);
      const csv = await (await ui.api("/api/report/stats.csv")).text();
      assert.match(csv, /^Type,Name,Request Count/);
      assert.match(csv, /\r\nGET,\/hit,/);
      const history = await (await ui.api("/api/report/stats_history.csv")).text();
      assert.match(history, /^Timestamp,User Count/);
      assert.match(await (await ui.api("/api/report/failures.csv")).text(), /^Method,Name,Error,Occurrences/);
      assert.match(
        await (await ui.api("/api/report/exceptions.csv")).text(),
        /^Count,Message,Traceback,Nodes/,
      );

      // Baselines: the same store as the CLI's.
      const saved = await ui.api("/api/baselines", {
        method: "POST",
        body: JSON.stringify({ name: "ui-v1" }),
      });
      assert.equal(saved.status, 201, await saved.clone().text());
      const dup = await ui.api("/api/baselines", { method: "POST", body: JSON.stringify({ name: "ui-v1" }) });
      assert.equal(dup.status, 409);
      const uploaded = await ui.api("/api/baselines", {
        method: "POST",
        body: JSON.stringify({ name: "uploaded", result }),
      });
      assert.equal(uploaded.status, 201);
      const badName = await ui.api("/api/baselines", {
        method: "POST",
        body: JSON.stringify({ name: "../x" }),
      });
      assert.equal(badName.status, 400);
      const notResult = await ui.api("/api/baselines", {
        method: "POST",
        body: JSON.stringify({ name: "junk", result: { hello: 1 } }),
      });
      assert.equal(notResult.status, 400);
      const list = (await (await ui.api("/api/baselines")).json()) as any[];
      assert.deepEqual(list.map((b) => b.name).sort(), ["ui-v1", "uploaded"]);
      const one = (await (await ui.api("/api/baselines/ui-v1")).json()) as RunResult;
      assert.equal(one.totals.requests, result.totals.requests);
      assert.equal((await ui.api("/api/baselines/nope")).status, 404);

      // A second test in the same session.
      const second = await ui.api("/api/start", {
        method: "POST",
        body: JSON.stringify({ users: 1, runTime: "1s" }),
      });
      assert.equal(second.status, 200);
      assert.equal(((await second.json()) as any).run.id, 2);
      await waitUntil(async () => {
        const s = (await (await ui.api("/api/state")).json()) as any;
        return s.status === "stopped" && s.run.id === 2 ? s : undefined;
      }, "second test stopped");
    } finally {
      const r = await ui.stop();
      assert.ok(r.code !== null, describeRun(r as any));
      project.cleanup();
      await target.close();
    }
  });

  it("enforces --web-login on pages, API and events", async () => {
    const target = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    const ui = await startUi(["-H", target.url, "--web-login", "alice:s3cret"], project.dir, "alice:s3cret");
    try {
      for (const path of ["/", "/api/state", "/api/events", "/api/baselines"]) {
        const anon = await fetch(ui.url + path);
        assert.equal(anon.status, 401, path);
        assert.match(anon.headers.get("www-authenticate") ?? "", /Basic/);
        await anon.body?.cancel();
        const wrong = await fetch(ui.url + path, {
          headers: { authorization: `Basic ${Buffer.from("alice:nope").toString("base64")}` },
        });
        assert.equal(wrong.status, 401, path);
        await wrong.body?.cancel();
      }
      const ok = await ui.api("/api/state");
      assert.equal(ok.status, 200);
      const start = await fetch(`${ui.url}/api/start`, { method: "POST", body: "{}" });
      assert.equal(start.status, 401);
      assert.equal(target.total(), 0);
    } finally {
      await ui.stop();
      project.cleanup();
      await target.close();
    }
  });

  it("--autostart runs the test at once and --autoquit ends the process after it", async () => {
    const target = await startServer((_req, res) => res.end("ok"));
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const run = startCli(
        [
          "run",
          "loadtest.ts",
          "-H",
          target.url,
          "--web-port",
          "0",
          "-u",
          "2",
          "-t",
          "2s",
          "--autostart",
          "--autoquit",
          "1",
          "--json",
          "r.json",
        ],
        { cwd: project.dir },
      );
      const timer = setTimeout(() => run.child.kill("SIGKILL"), 20000);
      const r = await run.result;
      clearTimeout(timer);
      assert.equal(r.code, 0, describeRun(r as any));
      assert.match(r.stderr, /web UI on http/);
      assert.match(r.stdout, /Aggregated/);
      assert.ok(target.total() > 0);
    } finally {
      project.cleanup();
      await target.close();
    }
  });

  it("--autoquit without --autostart is a usage error, not a web UI that never quits", async () => {
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const r = await runCli(
        ["run", "loadtest.ts", "-H", "http://127.0.0.1:9", "--web-port", "0", "--autoquit", "1"],
        {
          cwd: project.dir,
          timeoutMs: 20000,
        },
      );
      assert.equal(r.code, 2, describeRun(r));
      assert.match(r.stderr, /--autoquit .*add --autostart/);
      assert.doesNotMatch(r.stderr, /web UI on/);
    } finally {
      project.cleanup();
    }
  });

  it("warns when it listens beyond this machine without a login", async () => {
    const project = tempProject({ "loadtest.ts": LOADFILE });
    try {
      const run = startCli(
        ["run", "loadtest.ts", "-H", "http://127.0.0.1:9", "--web-port", "0", "--web-host", "0.0.0.0"],
        {
          cwd: project.dir,
        },
      );
      await run.waitFor(/without --web-login/);
      run.child.kill("SIGINT");
      const r = await run.result;
      assert.equal(r.code, 0, describeRun(r as any));
    } finally {
      project.cleanup();
    }
  });
});
