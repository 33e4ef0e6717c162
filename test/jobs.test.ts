/**
 * Async jobs against real loopback servers: the demo's job queue with a known duration, and
 * small servers for failing jobs, streamed states and broken submissions.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RunStopped } from "../src/api/errors.js";
import { type DemoServer, startDemoServer } from "../src/demo/server.js";
import { HttpSession } from "../src/protocols/http/session.js";
import { jobState } from "../src/protocols/jobs.js";
import { Recorder } from "../src/stats/recorder.js";
import { describeRun, runLoad, startServer, type TestServer } from "./helpers.js";

const JOB_MS = 400;

function client(baseUrl: string) {
  const rec = new Recorder("test");
  const stop = new AbortController();
  const session = new HttpSession({ recorder: rec, baseUrl, signal: stop.signal });
  return { session, stop, snapshot: () => rec.snapshot(1), close: () => session.close(true) };
}

/** Jobs that fail, stream their states, or cannot be submitted. */
function jobServer(): Promise<TestServer> {
  return startServer((req, res) => {
    req.resume();
    const path = (req.url ?? "").split("?")[0];
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    if (path === "/jobs" && req.method === "POST") json(202, { id: "job-1", state: "queued" });
    else if (path === "/jobs/job-1") json(200, { id: "job-1", state: "FAILED", reason: "out of memory" });
    else if (path === "/broken-submit") json(500, { error: "down" });
    else if (path === "/gone" && req.method === "POST")
      json(202, { status: "pending" }, { location: "/nowhere/7" });
    else if (path === "/streamed" && req.method === "POST") json(202, { task: "t-42", status: "pending" });
    else if (path === "/events/t-42") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write(`data: ${JSON.stringify({ status: "pending" })}\n\n`);
      setTimeout(() => res.write(`data: ${JSON.stringify({ status: "running" })}\n\n`), 20);
      setTimeout(() => res.write(`data: ${JSON.stringify({ status: "succeeded", output: 42 })}\n\n`), 40);
      // Stays open: the terminal state, not the end of the stream, ends the job.
    } else json(404, { error: "no route" });
  });
}

describe("job()", () => {
  let demo: DemoServer;
  let jobs: TestServer;
  before(async () => {
    demo = await startDemoServer({ jobDurationMs: JOB_MS });
    jobs = await jobServer();
  });
  after(async () => {
    await demo.close();
    await jobs.close();
  });

  it("polls the demo queue until the job completes: completion time and poll count", async () => {
    const c = client(demo.url);
    try {
      const before = demo.requests();
      const r = await c.session.job({
        submit: { url: "/api/v1/jobs", json: { task: "summarise" } },
        status: (j) => `/api/v1/jobs/${j.job_id}`,
        poll: { interval: 0.1 },
      });
      assert.equal(r.ok, true);
      assert.equal(r.state, "completed");
      assert.equal(r.error, null);
      assert.equal(r.result.status, "completed");
      // The job is created after the submit started and is done JOB_MS later.
      assert.ok(r.completionMs >= JOB_MS, `completion ${r.completionMs}`);
      assert.ok(r.completionMs < JOB_MS + 100 + 1500, `completion ${r.completionMs}`);
      // A poll every ≥100 ms: at most one per 100 ms of the job's life, plus the one that sees it done.
      assert.ok(r.polls >= 1 && r.polls <= JOB_MS / 100, `polls ${r.polls}`);
      assert.equal(demo.requests() - before, 1 + r.polls);
      const snap = c.snapshot();
      const job = snap.endpoints.find((e) => e.type === "JOB");
      assert.ok(job);
      assert.equal(job.method, "POST");
      assert.equal(job.name, "/api/v1/jobs");
      assert.equal(job.count, 1);
      assert.deepEqual(job.counters, { completed: 1 });
      assert.ok(job.metrics?.submit && job.metrics.polls);
      const polls = snap.endpoints.find((e) => e.type === "HTTP" && e.method === "GET");
      assert.equal(polls?.name, "/api/v1/jobs/[id]", "one endpoint for all job ids");
      assert.equal(polls?.count, r.polls);
    } finally {
      await c.close();
    }
  });

  it("uses the Location header when no status URL is given", async () => {
    const c = client(demo.url);
    try {
      const r = await c.session.job({
        submit: { url: "/api/v1/jobs", json: { task: 1 } },
        poll: { interval: 0.1 },
      });
      assert.equal(r.state, "completed");
    } finally {
      await c.close();
    }
  });

  it("a job past its timeout is a failure", async () => {
    const slow = await startDemoServer({ jobDurationMs: 10_000 });
    const c = client(slow.url);
    try {
      const r = await c.session.job({
        name: "slow job",
        submit: { url: "/api/v1/jobs", json: { task: "x" } },
        poll: { interval: 0.05, timeout: 0.3 },
      });
      assert.equal(r.ok, false);
      assert.equal(r.state, "timeout");
      assert.equal(r.error, "job timeout");
      assert.ok(r.completionMs >= 300 && r.completionMs < 2000, `completion ${r.completionMs}`);
      const snap = c.snapshot();
      const job = snap.endpoints.find((e) => e.type === "JOB");
      assert.equal(job?.name, "slow job");
      assert.equal(job?.failures, 1);
      assert.deepEqual(job?.counters, { timeout: 1 });
      assert.ok(snap.errors.some((e) => e.name === "slow job" && e.error === "job timeout"));
    } finally {
      await c.close();
      await slow.close();
    }
  });

  it("a failed job, a failed submit and a vanished job are failures with their reasons", async () => {
    const c = client(jobs.url);
    try {
      const failed = await c.session.job({
        submit: { url: "/jobs", json: {} },
        status: (j) => `/jobs/${j.id}`,
        poll: { interval: 0.01 },
      });
      assert.equal(failed.state, "failed");
      assert.equal(failed.error, "job failed: FAILED");
      assert.equal(failed.result.reason, "out of memory");
      assert.equal(failed.polls, 1);
      const submit = await c.session.job({ submit: { url: "/broken-submit" } });
      assert.equal(submit.error, "job failed: submit HTTP 500");
      assert.equal(submit.submitMs, null);
      const gone = await c.session.job({ submit: { url: "/gone" }, poll: { interval: 0.01 } });
      assert.equal(gone.error, "job failed: poll HTTP 404");
      const snap = c.snapshot();
      for (const name of ["/jobs", "/broken-submit", "/gone"]) {
        const job = snap.endpoints.find((e) => e.type === "JOB" && e.name === name);
        assert.deepEqual(job?.counters, { failed: 1 }, name);
        assert.equal(job?.failures, 1, name);
      }
    } finally {
      await c.close();
    }
  });

  it("waits on a stream of states instead of polling", async () => {
    const c = client(jobs.url);
    try {
      const r = await c.session.job({
        submit: { url: "/streamed" },
        stream: (j) => `/events/${j.task}`,
        poll: { timeout: 5 },
      });
      assert.equal(r.state, "completed", r.error ?? "");
      assert.equal(r.polls, 0);
      assert.equal(r.result.output, 42);
      assert.ok(r.completionMs >= 40);
      const snap = c.snapshot();
      const stream = snap.endpoints.find((e) => e.type === "SSE");
      assert.equal(stream?.name, "/events/[id]");
      assert.equal(stream?.failures, 0);
      assert.equal(stream?.counters?.events, 3);
      assert.deepEqual(snap.endpoints.find((e) => e.type === "JOB")?.counters, { completed: 1 });
    } finally {
      await c.close();
    }
  });

  it("the hard stop cancels a waiting job", async () => {
    const slow = await startDemoServer({ jobDurationMs: 10_000 });
    const c = client(slow.url);
    try {
      setTimeout(() => c.stop.abort(), 150);
      await assert.rejects(
        c.session.job({ submit: { url: "/api/v1/jobs", json: { task: 1 } }, poll: { interval: 0.05 } }),
        RunStopped,
      );
      const job = c.snapshot().endpoints.find((e) => e.type === "JOB");
      assert.equal(job?.cancelled, 1);
      assert.equal(job?.count, 0);
    } finally {
      await c.close();
      await slow.close();
    }
  });

  it("the default done() reads common status words", () => {
    assert.equal(jobState({ status: "succeeded" }), "completed");
    assert.equal(jobState({ state: "Cancelled" }), "failed");
    assert.equal(jobState({ status: { state: "completed" } }), "completed");
    assert.equal(jobState({ status: "running" }), "pending");
    assert.equal(jobState("completed"), "pending");
  });
});

describe("jobs in a run", () => {
  it("counts, poll metrics and the poll endpoint agree exactly; failures fail the run", async () => {
    const demo = await startDemoServer({ jobDurationMs: 1000 });
    try {
      const loadfile = `
import { HttpUser, task } from "cicada-load";
export class Jobs extends HttpUser {
  @task async run() {
    const ok = await this.client.job({
      submit: { url: "/api/v1/jobs", json: { task: "report" } },
      status: (j) => "/api/v1/jobs/" + j.job_id,
      poll: { interval: 0.2 },
    });
    if (!ok.ok) throw new Error("job should complete: " + ok.error);
    const late = await this.client.job({
      name: "too slow",
      submit: { url: "/api/v1/jobs", json: { task: "report" } },
      poll: { interval: 0.05, timeout: 0.1 },
    });
    if (late.state !== "timeout") throw new Error("job should time out");
  }
}
`;
      const run = await runLoad(loadfile, ["-H", demo.url, "-u", "2", "--iterations-per-user", "2"]);
      assert.equal(run.code, 1, describeRun(run));
      assert.deepEqual(run.result.exceptions, []);
      const ep = (type: string, name: string) =>
        run.result.endpoints.find((e) => e.type === type && e.name === name);
      const done = ep("JOB", "/api/v1/jobs");
      assert.equal(done?.requests, 4);
      assert.equal(done?.failures, 0);
      assert.deepEqual(done?.counters, { completed: 4 });
      const polls = done!.metrics!.polls!;
      assert.equal(polls.count, 4);
      const slow = ep("JOB", "too slow");
      assert.equal(slow?.failures, 4);
      assert.deepEqual(slow?.counters, { timeout: 4 });
      assert.equal(slow?.metrics?.submit?.count, 4);
      const pollRequests = ep("HTTP", "/api/v1/jobs/[id]")!.requests;
      const slowPolls = slow!.metrics!.polls!;
      assert.equal(pollRequests, Math.round(polls.mean * polls.count + slowPolls.mean * slowPolls.count));
      assert.equal(demo.requests(), 8 + pollRequests);
      assert.deepEqual(
        run.result.failures.map((f) => [f.name, f.error, f.occurrences]),
        [["too slow", "job timeout", 4]],
      );
    } finally {
      await demo.close();
    }
  });
});
