// -T/-E take several words, and the loadfile and class names may follow them: `cicada run -T smoke
// shop.ts MyUser` as typed, against a real loopback server whose counts show which tasks ran.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type CliResult, runCli, startServer, tempProject } from "./helpers.js";

/**
 * Other weighs more, so the one user of a run (-u 1) is an Other unless the class names select
 * MyUser: a class name taken for a tag shows as /other/... requests.
 */
const LOADFILE = `import { HttpUser, tag, task } from "cicada-load";
export class MyUser extends HttpUser {
  @task @tag("smoke") smoke() { return this.client.get("/my/smoke"); }
  @task plain() { return this.client.get("/my/plain"); }
  @task @tag("edge.js") edge() { return this.client.get("/my/edge"); }
}
export class Other extends HttpUser {
  static weight = 10;
  @task @tag("smoke") smoke() { return this.client.get("/other/smoke"); }
  @task @tag("slow") slow() { return this.client.get("/other/slow"); }
  @task plain() { return this.client.get("/other/plain"); }
}
`;

function show(r: CliResult): string {
  return `code=${r.code} signal=${r.signal}\n--- stdout ---\n${r.stdout}\n--- stderr ---\n${r.stderr}`;
}

/**
 * Runs `cicada ARGS` in a project holding the loadfile as `file`, with `{url}` in ARGS replaced by
 * a fresh server's URL; returns the run and the server's request counts by path.
 */
async function hits(
  args: string[],
  file = "shop.ts",
): Promise<{ r: CliResult; counts: Record<string, number>; total: number }> {
  const server = await startServer((_req, res) => res.end("ok"));
  const project = tempProject({ [file]: LOADFILE });
  try {
    const r = await runCli(
      args.map((a) => (a === "{url}" ? server.url : a)),
      { cwd: project.dir, timeoutMs: 60_000 },
    );
    const counts = Object.fromEntries([...server.counts].map(([k, n]) => [k.replace(/^GET /, ""), n]));
    return { r, counts, total: server.total() };
  } finally {
    project.cleanup();
    await server.close();
  }
}

const run = (...args: string[]) => ["run", "--headless", ...args, "-H", "{url}", "-i", "6", "--only-summary"];

describe("cicada run: -T/-E and the loadfile after them", () => {
  it("-T smoke shop.ts: the loadfile ends the tag list", async () => {
    const { r, counts } = await hits(run("-T", "smoke", "shop.ts"));
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(counts, { "/other/smoke": 6 });
  });

  it("-T smoke,fast shop.ts MyUser: the class name after the loadfile selects the class", async () => {
    const { r, counts } = await hits(run("-T", "smoke,fast", "shop.ts", "MyUser"));
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(counts, { "/my/smoke": 6 });
  });

  it("-T smoke,fast loadtest.ts MyUser: the default loadfile's name is no tag either", async () => {
    const { r, counts } = await hits(run("-T", "smoke,fast", "loadtest.ts", "MyUser"), "loadtest.ts");
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(counts, { "/my/smoke": 6 });
  });

  it("-E slow shop.ts: the loadfile ends the excluded list", async () => {
    const { r, counts, total } = await hits([
      "run",
      "--headless",
      "-E",
      "slow",
      "shop.ts",
      "-H",
      "{url}",
      "-i",
      "40",
      "--only-summary",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.equal(total, 40, JSON.stringify(counts));
    for (const path of Object.keys(counts)) assert.ok(["/other/smoke", "/other/plain"].includes(path), path);
  });

  it("-T fast -T smoke shop.ts MyUser: repeated -T, then the loadfile and a class", async () => {
    const { r, counts } = await hits(run("-T", "fast", "-T", "smoke", "shop.ts", "MyUser"));
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(counts, { "/my/smoke": 6 });
  });

  it("-T smoke shop.ts -H URL MyUser: a class name after other flags", async () => {
    const { r, counts } = await hits([
      "run",
      "--headless",
      "-T",
      "smoke",
      "shop.ts",
      "-H",
      "{url}",
      "MyUser",
      "-i",
      "6",
      "--only-summary",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(counts, { "/my/smoke": 6 });
  });

  for (const tags of [
    ["-T", "fast", "smoke"],
    ["-T", "fast,smoke"],
    ["-T", "fast", "-T", "smoke"],
  ]) {
    it(`shop.ts ${tags.join(" ")}: tags after the loadfile, as before`, async () => {
      const { r, counts } = await hits(run("shop.ts", ...tags));
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(counts, { "/other/smoke": 6 });
    });
  }

  it("a tag that ends like a loadfile is a tag when the loadfile comes first or with -f", async () => {
    for (const args of [run("shop.ts", "-T", "edge.js"), run("-f", "shop.ts", "-T", "edge.js")]) {
      const { r, counts } = await hits(args);
      assert.equal(r.code, 0, show(r));
      assert.deepEqual(counts, { "/my/edge": 6 });
    }
  });

  it("-T shop.ts alone → exit 2: the tag is missing", async () => {
    const { r, total } = await hits(run("-T", "shop.ts"));
    assert.equal(r.code, 2, show(r));
    assert.equal(r.stderr.trim(), 'cicada: -T/--tags: expected a tag before the loadfile, got "shop.ts"');
    assert.equal(total, 0);
  });

  it("a loadfile after both -T and -E → exit 2 naming both", async () => {
    const { r, total } = await hits(run("-T", "smoke", "shop.ts", "-E", "slow", "other.ts"));
    assert.equal(r.code, 2, show(r));
    assert.equal(
      r.stderr.trim(),
      'cicada: two loadfiles: "shop.ts" after -T/--tags and "other.ts" after -E/--exclude-tags; give one',
    );
    assert.equal(total, 0);
  });
});

describe("cicada sweep: -T and the loadfile after it", () => {
  it("sweep -T smoke shop.ts MyUser runs only MyUser's smoke task", async () => {
    const { r, counts, total } = await hits([
      "sweep",
      "-T",
      "smoke",
      "shop.ts",
      "MyUser",
      "-H",
      "{url}",
      "--concurrency",
      "1",
      "--step-time",
      "0.5s",
      "--warmup",
      "0",
      "--processes",
      "1",
    ]);
    assert.equal(r.code, 0, show(r));
    assert.ok(total > 0, show(r));
    assert.deepEqual(counts, { "/my/smoke": total });
  });
});

describe("cicada run: a tag that no task has", () => {
  const warnings = (r: CliResult) => r.stderr.split("\n").filter((l) => l.startsWith("warning:"));

  it("-T smoke,smoek: runs the smoke tasks and warns, once, of the tag no task has", async () => {
    const { r, counts } = await hits([...run("shop.ts", "-T", "smoke,smoek"), "--processes", "2"]);
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(
      Object.keys(counts).sort(),
      ["/my/smoke", "/other/smoke"].filter((k) => k in counts),
    );
    assert.deepEqual(warnings(r), [
      'warning: --tags "smoek": no task of MyUser, Other has this tag; the tags there are: edge.js, slow, smoke',
    ]);
  });

  it("-E is checked too, against the classes picked", async () => {
    const { r, counts } = await hits(run("shop.ts", "MyUser", "-E", "slow,nope"));
    assert.equal(r.code, 0, show(r));
    assert.equal(counts["/other/plain"], undefined);
    // "slow" is Other's tag, not MyUser's: with MyUser picked, it too matches nothing.
    assert.deepEqual(warnings(r), [
      'warning: --exclude-tags "slow", "nope": no task of MyUser has these tags; the tags there are: edge.js, smoke',
    ]);
  });

  it("tags that all exist: no warning", async () => {
    const { r } = await hits(run("shop.ts", "-T", "smoke", "-E", "slow"));
    assert.equal(r.code, 0, show(r));
    assert.deepEqual(warnings(r), []);
  });
});
