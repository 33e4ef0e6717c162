import assert from "node:assert/strict";
import { existsSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, normalize, posix } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  assertExecOk,
  exec,
  installPackedPackage,
  ROOT,
  readJson,
  startServer,
  type TestServer,
} from "./helpers.js";

const LOADFILE = `import { constant, HttpUser, task } from "cicada-load";

export class Shopper extends HttpUser {
  static override waitTime = constant(0.05);

  @task(2)
  async home(): Promise<void> {
    const res = await this.client.get("/hello", { name: "hello" });
    if (res.status !== 200) throw new Error(\`unexpected status \${res.status}\`);
  }

  @task
  async item(): Promise<void> {
    await this.client.get("/item/1", { name: "/item/[id]" });
  }
}
`;

const TSCONFIG = {
  compilerOptions: {
    module: "NodeNext",
    moduleResolution: "NodeNext",
    strict: true,
    target: "ES2022",
    skipLibCheck: true,
  },
};

describe("the published package", { timeout: 240_000 }, () => {
  let cleanup: (() => void) | undefined;
  let proj: string;
  let packed: string[];
  let server: TestServer;

  before(
    async () => {
      server = await startServer((_req, res) => {
        res.setHeader("content-type", "text/plain");
        res.end("hello");
      });
      const pkg = await installPackedPackage(["typescript@5"]);
      cleanup = pkg.cleanup;
      proj = pkg.proj;
      packed = pkg.packed;
      writeFileSync(join(proj, "loadtest.ts"), LOADFILE);
      writeFileSync(join(proj, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
    },
    { timeout: 230_000 },
  );

  after(async () => {
    await server?.close();
    cleanup?.();
  });

  it("the tarball holds the CLI, the API with its types and the schema, and no tests or sources", () => {
    for (const f of [
      "package.json",
      "dist/src/cicada.js",
      "dist/src/index.js",
      "dist/src/index.d.ts",
      "dist/src/api/index.js",
      "dist/src/api/index.d.ts",
      "dist/src/loadfile/bundle.js",
      "dist/src/runner/worker.js",
      "schema/result.schema.json",
      "README.md",
      "dist/src/web/server.js",
      "dist/src/outputs/html/client.js",
      "dist/web/index.html",
      "examples/node-test.test.mjs",
      "examples/vitest.test.ts",
    ]) {
      assert.ok(packed.includes(f), `${f} is not in the tarball`);
    }
    assert.deepEqual(
      packed.filter(
        (f) =>
          f.startsWith("dist/test/") || f.startsWith("src/") || f.startsWith("test/") || f.startsWith("web/"),
      ),
      [],
    );
  });

  it("every relative import of the packed JavaScript and declarations resolves inside the tarball", () => {
    const files = new Set(packed);
    const missing: string[] = [];
    const importRe = /(?:from\s+|import\s*\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g;
    for (const f of packed.filter((p) => /\.(js|d\.ts)$/.test(p))) {
      const text = readFileSync(join(ROOT, f), "utf8");
      for (const m of text.matchAll(importRe)) {
        const target = posix.normalize(posix.join(posix.dirname(f), m[1]!));
        const candidates = f.endsWith(".d.ts") ? [target, target.replace(/\.js$/, ".d.ts")] : [target];
        if (!candidates.some((c) => files.has(c))) missing.push(`${f} -> ${m[1]}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it("the installed package's types and exports point to existing declaration files", () => {
    const dir = join(proj, "node_modules", "cicada-load");
    // Installed from the tarball: a copy, not a link back to this repository.
    assert.ok(!realpathSync(dir).startsWith(realpathSync(ROOT)), "cicada is linked, not installed");
    const pj = readJson(join(dir, "package.json"));
    assert.equal(pj.name, "cicada-load");
    assert.equal(pj.type, "module");
    const types: string[] = [pj.types, pj.exports?.["."]?.types].filter(Boolean);
    assert.ok(types.length === 2, `package.json lacks "types" or exports["."].types: ${JSON.stringify(pj)}`);
    for (const t of types) {
      assert.match(t, /\.d\.ts$/);
      assert.ok(existsSync(join(dir, normalize(t))), `${t} does not exist in the installed package`);
    }
    const main = pj.exports["."].import;
    assert.ok(existsSync(join(dir, normalize(main))), `${main} does not exist in the installed package`);
    const bin = join(dir, pj.bin.cicada);
    assert.ok(existsSync(bin), `bin ${pj.bin.cicada} does not exist`);
    assert.match(readFileSync(bin, "utf8"), /^#!\/usr\/bin\/env node/);
    assert.ok(existsSync(join(proj, "node_modules", ".bin", "cicada")), "no cicada in node_modules/.bin");
    // The declarations reachable from the types entry, through its `export * from` re-exports.
    const declared = (file: string): string => {
      const text = readFileSync(file, "utf8");
      const more = [...text.matchAll(/export \* from "(\.[^"]+)\.js"/g)].map((m) =>
        declared(join(dirname(file), `${m[1]}.d.ts`)),
      );
      return [text, ...more].join("\n");
    };
    const d = declared(join(dir, normalize(types[0]!)));
    for (const name of [
      "HttpUser",
      "task",
      "constant",
      "between",
      "TaskSet",
      "run",
      "benchmark",
      "sweep",
      "UsageError",
    ]) {
      assert.match(d, new RegExp(`\\b${name}\\b`), `${types[0]} does not export ${name}`);
    }
  });

  it("tsc type-checks a decorated loadfile against the installed types", async () => {
    assertExecOk(
      await exec("npx", ["tsc", "--noEmit", "-p", "tsconfig.json"], proj, 120_000),
      "tsc --noEmit",
    );
    // ...and really checks it: a misuse of the API is an error, so the types are not `any`.
    writeFileSync(
      join(proj, "bad.ts"),
      `import { HttpUser, constant } from "cicada-load";
export class Bad extends HttpUser {
  static override waitTime = constant("1");
  async t(): Promise<void> {
    await this.client.gett("/");
  }
}
`,
    );
    try {
      const bad = await exec("npx", ["tsc", "--noEmit", "-p", "tsconfig.json"], proj, 120_000);
      const out = bad.stdout + bad.stderr;
      assert.notEqual(bad.code, 0, `tsc accepted a bad loadfile:\n${out}`);
      assert.match(out, /bad\.ts\(3,/, out);
      assert.match(out, /bad\.ts\(5,.*gett/, out);
      assert.doesNotMatch(out, /loadtest\.ts/, out);
    } finally {
      rmSync(join(proj, "bad.ts"));
    }
  });

  it("npx cicada runs the TypeScript loadfile against a real server", async () => {
    const before = server.total();
    const r = await exec(
      "npx",
      [
        "cicada",
        "run",
        "--headless",
        "loadtest.ts",
        "-H",
        server.url,
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "2s",
        "--json",
        "r.json",
        "--only-summary",
      ],
      proj,
      90_000,
    );
    assertExecOk(r, "npx cicada run");
    const result = readJson(join(proj, "r.json"));
    assert.equal(result.tool, "cicada");
    assert.equal(result.version, readJson(join(ROOT, "package.json")).version);
    assert.ok(result.totals.requests > 0, `no requests: ${JSON.stringify(result.totals)}`);
    assert.equal(result.totals.failures, 0, JSON.stringify(result.failures));
    assert.deepEqual(result.exceptions, []);
    const names = result.endpoints.map((e: { name: string }) => e.name).sort();
    assert.deepEqual(names, ["/item/[id]", "hello"]);
    // The requests really reached the server.
    const served = server.total() - before;
    // Requests cut off at the stop are counted as cancelled, and may or may not have been served.
    assert.ok(
      served >= result.totals.requests && served <= result.totals.requests + result.totals.cancelled,
      `served ${served}, counted ${result.totals.requests} (+${result.totals.cancelled} cancelled)`,
    );
    assert.ok((server.counts.get("GET /hello") ?? 0) > 0);
    assert.ok((server.counts.get("GET /item/1") ?? 0) > 0);
  });
});
