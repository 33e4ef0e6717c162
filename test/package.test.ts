import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, normalize, posix } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { readJson, startServer, type TestServer } from "./helpers.js";

/** The repository root (tests run from dist/test/). */
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/**
 * The environment for npm/npx in the temp project. When this suite runs under `npm test`, npm
 * exports its own lifecycle variables; npm_config_local_prefix in particular would point npm
 * commands at this repository instead of the temp project. Keep only machine-wide settings.
 */
function cleanEnv(): NodeJS.ProcessEnv {
  const keep = /^npm_config_(cache|userconfig|globalconfig|cafile|registry|strict_ssl|.*proxy)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.test(k)) continue;
    if (k === "INIT_CWD") continue;
    env[k] = v;
  }
  return env;
}

interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd, env: cleanEnv(), timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

function ok(r: Exec, what: string): void {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

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
  let tmp: string;
  let proj: string;
  let tarball: string;
  let packed: string[];
  let server: TestServer;

  before(
    async () => {
      assert.ok(
        existsSync(join(ROOT, "dist/src/cli/main.js")),
        "dist/ is missing: run `npm run build` first (npm test does)",
      );
      tmp = mkdtempSync(join(tmpdir(), "cicada-pkg-"));
      const packDir = join(tmp, "pack");
      proj = join(tmp, "proj");
      mkdirSync(packDir);
      mkdirSync(proj);
      server = await startServer((_req, res) => {
        res.setHeader("content-type", "text/plain");
        res.end("hello");
      });

      // dist/ is already built (npm test builds first); --ignore-scripts skips `prepare`, which would
      // rebuild dist/ under the feet of tests running in parallel.
      const pack = await run(
        "npm",
        ["pack", "--ignore-scripts", "--json", "--pack-destination", packDir],
        ROOT,
        120_000,
      );
      ok(pack, "npm pack");
      const info = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
      tarball = join(packDir, info[0]!.filename);
      packed = info[0]!.files.map((f) => f.path);
      assert.ok(existsSync(tarball), `no tarball at ${tarball}`);

      ok(await run("npm", ["init", "-y"], proj, 60_000), "npm init");
      const pj = JSON.parse(readFileSync(join(proj, "package.json"), "utf8"));
      pj.type = "module";
      writeFileSync(join(proj, "package.json"), JSON.stringify(pj, null, 2));
      ok(
        await run(
          "npm",
          ["i", "-D", tarball, "typescript@5", "--prefer-offline", "--no-audit", "--no-fund"],
          proj,
          200_000,
        ),
        "npm install of the tarball",
      );
      writeFileSync(join(proj, "loadtest.ts"), LOADFILE);
      writeFileSync(join(proj, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2));
    },
    { timeout: 230_000 },
  );

  after(async () => {
    await server?.close();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("the tarball holds the CLI, the API with its types and the schema, and no tests or sources", () => {
    for (const f of [
      "package.json",
      "dist/src/cli/main.js",
      "dist/src/api/index.js",
      "dist/src/api/index.d.ts",
      "dist/src/loadfile/bundle.js",
      "dist/src/runner/worker.js",
      "schema/result.schema.json",
      "README.md",
      "dist/src/web/server.js",
      "dist/src/outputs/html/client.js",
      "dist/web/index.html",
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
    const d = readFileSync(join(dir, dirname(normalize(types[0]!)), "index.d.ts"), "utf8");
    for (const name of ["HttpUser", "task", "constant", "between", "TaskSet"]) {
      assert.match(d, new RegExp(`\\b${name}\\b`), `index.d.ts does not export ${name}`);
    }
  });

  it("tsc type-checks a decorated loadfile against the installed types", async () => {
    ok(await run("npx", ["tsc", "--noEmit", "-p", "tsconfig.json"], proj, 120_000), "tsc --noEmit");
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
      const bad = await run("npx", ["tsc", "--noEmit", "-p", "tsconfig.json"], proj, 120_000);
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
    const r = await run(
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
    ok(r, "npx cicada run");
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
