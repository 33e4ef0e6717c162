// Cicada's folders in the OS temp folder (bundles, a worker's shipped loadfile, quick's loadfile):
// gone after Ctrl-C and SIGTERM, and those of a process killed with SIGKILL swept by the next one.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { once } from "node:events";
import { existsSync, lutimesSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  type CliResult,
  describeRun,
  type RunningCli,
  startCli,
  startMaster,
  startServer,
  type TestServer,
  tempProject,
  until,
} from "./helpers.js";

const LOADFILE = `import { HttpUser, constant, task } from "cicada-load";
export class Web extends HttpUser {
  static waitTime = constant(0.05);
  @task hit() { return this.client.get("/"); }
}
`;

/** A project with the loadfile, and a temp folder of its own (TMPDIR) that only its runs use. */
function project(): { dir: string; tmp: string; env: NodeJS.ProcessEnv; cleanup: () => void } {
  const p = tempProject({ "loadtest.ts": LOADFILE });
  const tmp = join(p.dir, "tmp");
  mkdirSync(tmp);
  return { ...p, tmp, env: { TMPDIR: tmp } };
}

const list = (tmp: string) => readdirSync(tmp).sort();

/** Waits for the process to exit; kills it and fails if it takes longer than `ms`. */
async function exitWithin(run: RunningCli, ms: number): Promise<CliResult> {
  const timer = setTimeout(() => run.child.kill("SIGKILL"), ms);
  const r = await run.result;
  clearTimeout(timer);
  assert.notEqual(r.signal, "SIGKILL", `still running after ${ms} ms\n${describeRun(r)}`);
  return r;
}

/** A PID that no process has: one of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = execFile(process.execPath, ["-e", ""]);
  await once(child, "exit");
  return child.pid!;
}

const TWO_MINUTES_AGO = new Date(Date.now() - 120_000);

describe("temp folders", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer((_req, res) => res.end("ok"));
  });
  after(() => server.close());

  for (const sig of ["SIGTERM", "SIGINT"] as const) {
    it(`a worker stopped with ${sig} mid-test stops its users, removes its folder and exits 130`, async () => {
      const p = project();
      const workerTmp = join(p.dir, "worker-tmp");
      mkdirSync(workerTmp);
      try {
        const { master, port } = await startMaster(
          p.dir,
          ["-H", server.url, "-u", "2", "-r", "100", "-t", "60s", "--only-summary"],
          p.env,
        );
        const worker = startCli(["worker", "--master-port", String(port)], { env: { TMPDIR: workerTmp } });
        try {
          await worker.waitFor("connected to the master");
          const [folder] = await until(
            "the worker's folder with the shipped bundle",
            async () => list(workerTmp),
            (names) => names.length === 1 && existsSync(join(workerTmp, names[0]!, "loadfile.bundle.mjs")),
          );
          assert.match(folder!, new RegExp(`^cicada-worker-${worker.child.pid}-[0-9a-f]{8}-[0-9a-f]{8}$`));
          const hits = server.total();
          await until(
            "load from the worker",
            async () => server.total(),
            (n) => n > hits + 5,
          );
          worker.child.kill(sig);
          const r = await exitWithin(worker, 15_000);
          assert.equal(r.code, 130, describeRun(r));
          assert.match(r.stderr, new RegExp(`worker: ${sig}: stopping`));
          assert.deepEqual(list(workerTmp), [], "the worker left its folder");
        } finally {
          worker.child.kill("SIGKILL");
          master.child.kill("SIGKILL");
          await master.result;
        }
      } finally {
        p.cleanup();
      }
    });

    it(`a worker stopped with ${sig} while it waits for the next test exits 130 and leaves nothing`, async () => {
      const p = project();
      const workerTmp = join(p.dir, "worker-tmp");
      mkdirSync(workerTmp);
      try {
        const { master, port } = await startMaster(
          p.dir,
          ["-H", server.url, "-u", "1", "-r", "100", "-t", "1s", "--only-summary"],
          p.env,
        );
        const worker = startCli(["worker", "--master-port", String(port)], { env: { TMPDIR: workerTmp } });
        try {
          const m = await exitWithin(master, 30_000);
          assert.equal(m.code, 0, describeRun(m));
          await worker.waitFor("waiting for the next test");
          worker.child.kill(sig);
          const r = await exitWithin(worker, 10_000);
          assert.equal(r.code, 130, describeRun(r));
          assert.deepEqual(list(workerTmp), []);
        } finally {
          worker.child.kill("SIGKILL");
        }
      } finally {
        p.cleanup();
      }
    });
  }

  it("cicada run stopped with SIGTERM mid-run, and quick with Ctrl-C, leave no folder", async () => {
    const p = project();
    // Earlier tests hit "/" of the same server too.
    const before = server.counts.get("GET /") ?? 0;
    try {
      const runs = [
        startCli(
          ["run", "--headless", "loadtest.ts", "-H", server.url, "-u", "2", "-t", "60s", "--json", "r.json"],
          {
            cwd: p.dir,
            env: p.env,
          },
        ),
        startCli(["quick", `${server.url}/quick`, "-c", "2", "-d", "60s"], { cwd: p.dir, env: p.env }),
      ];
      try {
        // The run's bundle, quick's generated loadfile and its bundle.
        await until(
          "the runs' folders",
          async () => list(p.tmp),
          (names) => names.length === 3,
        );
        // Both under load (a run stopped before its users start measured nothing, which is exit 1).
        await until(
          "load from both",
          async () => [server.counts.get("GET /") ?? 0, server.counts.get("GET /quick") ?? 0],
          ([run, quick]) => run! > before + 10 && quick! > 10,
        );
        runs[0]!.child.kill("SIGTERM");
        runs[1]!.child.kill("SIGINT");
        const [run, quick] = await Promise.all(runs.map((r) => exitWithin(r, 20_000)));
        assert.equal(run!.code, 0, describeRun(run!));
        assert.equal(quick!.code, 0, describeRun(quick!));
        // Ctrl-C still writes the outputs.
        assert.ok(existsSync(join(p.dir, "r.json")));
        assert.deepEqual(list(p.tmp), []);
      } finally {
        for (const r of runs) r.child.kill("SIGKILL");
      }
    } finally {
      p.cleanup();
    }
  });

  it("folders of dead Cicada processes are removed by the next run; live, fresh and foreign ones are kept", async () => {
    const p = project();
    try {
      // A run killed with SIGKILL cannot clean up: its bundle stays.
      const killed = startCli(
        ["run", "--headless", "loadtest.ts", "-H", server.url, "-u", "1", "-t", "60s"],
        {
          cwd: p.dir,
          env: p.env,
        },
      );
      const [left] = await until(
        "the killed run's bundle",
        async () => list(p.tmp),
        (n) => n.length === 1,
      );
      assert.match(left!, new RegExp(`^cicada-${killed.child.pid}-[0-9a-f]{8}-[0-9a-f]{8}$`));
      // This host's token, as the run wrote it; another host's differs.
      const host = left!.split("-")[2]!;
      const otherHost = `${host[0] === "0" ? "1" : "0"}${host.slice(1)}`;
      killed.child.kill("SIGKILL");
      await killed.result;
      assert.deepEqual(list(p.tmp), [left], "SIGKILL left the bundle");

      const dead = await deadPid();
      const stale = [
        left!,
        `cicada-worker-${dead}-${host}-0123abcd`,
        `cicada-quick-${dead}-89abcdef`, // the name before the host token
      ];
      const kept = [
        `cicada-${process.pid}-0a0b0c0d`, // its process is alive
        `cicada-${dead}-f0e0d0c0`, // dead, but touched less than a minute ago
        `cicada-worker-${dead}-deadbeef.txt`, // not the pattern
        `cicada-worker-Ab3dE9`, // the old name, with no PID to check
        `cicadax-${dead}-0123abcd`,
        `cicada-${dead}-0123abcdef`,
        `cicada-worker-${dead}-aaaaaaaa`, // a file, not a folder
        `cicada-quick-${dead}-bbbbbbbb`, // a symlink: never followed, never removed
        // Another container's or machine's, in a shared temp folder: its PID means nothing here.
        `cicada-${dead}-${otherHost}-0123abcd`,
      ];
      const target = join(p.dir, "elsewhere");
      mkdirSync(target);
      writeFileSync(join(target, "keep.txt"), "x");
      for (const name of [...stale.slice(1), ...kept.slice(0, 6), kept[8]!]) {
        mkdirSync(join(p.tmp, name));
        writeFileSync(join(p.tmp, name, "loadfile.mjs"), "// a bundle\n");
      }
      writeFileSync(join(p.tmp, kept[6]!), "x");
      symlinkSync(target, join(p.tmp, kept[7]!));
      for (const name of [...stale, ...kept]) {
        if (name !== kept[1]) lutimesSync(join(p.tmp, name), TWO_MINUTES_AGO, TWO_MINUTES_AGO);
      }

      const r = await exitWithin(
        startCli(
          ["run", "--headless", "loadtest.ts", "-H", server.url, "-u", "1", "-t", "1s", "--only-summary"],
          {
            cwd: p.dir,
            env: p.env,
          },
        ),
        30_000,
      );
      assert.equal(r.code, 0, describeRun(r));
      assert.deepEqual(list(p.tmp), [...kept].sort(), "only the stale folders are gone, and the run's own");
      assert.ok(existsSync(join(target, "keep.txt")), "the symlink's target is untouched");
    } finally {
      p.cleanup();
    }
  });
});
