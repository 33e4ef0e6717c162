import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import Ajv from "ajv";
import type { RunResult } from "../src/result/result.js";

/** The repository root (tests run from dist/test/). */
export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The compiled CLI entry point (tests run from dist/test/). */
export const CLI = fileURLToPath(new URL("../src/cicada.js", import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunningCli {
  child: ReturnType<typeof spawn>;
  result: Promise<CliResult>;
  /** Resolves once stderr or stdout contains `text`. */
  waitFor(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** What the process wrote so far. */
  output(): { stdout: string; stderr: string };
}

/**
 * The environment of a CLI run: this process's, without the CICADA_* settings a developer's
 * shell may hold, so every run sees only what its test passes (a command line as a user types
 * it, plus `env`).
 */
export function cliEnv(env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^CICADA_/i.test(k)) out[k] = v;
  return { ...out, ...env };
}

/** Starts `cicada ARGS` as a real child process. */
export function startCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: opts.cwd,
    env: cliEnv(opts.env),
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters: Array<{ re: string | RegExp; resolve: () => void }> = [];
  const check = () => {
    for (const w of [...waiters]) {
      const hit = typeof w.re === "string" ? (stdout + stderr).includes(w.re) : w.re.test(stdout + stderr);
      if (hit) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout!.on("data", (d) => {
    stdout += d;
    check();
  });
  child.stderr!.on("data", (d) => {
    stderr += d;
    check();
  });
  const result = new Promise<CliResult>((resolve) => {
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return {
    child,
    result,
    output: () => ({ stdout, stderr }),
    waitFor: (re, timeoutMs = 15000) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${re}; stdout=${stdout} stderr=${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        check();
      }),
  };
}

/** Runs `cicada ARGS` to completion. A hard cap keeps a hung run from hanging the suite. */
export async function runCli(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  const run = startCli(args, opts);
  const timer = setTimeout(() => run.child.kill("SIGKILL"), opts.timeoutMs ?? 60000);
  const r = await run.result;
  clearTimeout(timer);
  return r;
}

/** A temp directory with the given files; removed by the returned cleanup. */
export function tempProject(files: Record<string, string>): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "cicada-test-"));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface TestServer {
  url: string;
  server: Server;
  /** Requests received, by "METHOD path" (path without query). */
  counts: Map<string, number>;
  total(): number;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 with a free port, counting every request it receives. */
export async function startServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<TestServer> {
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const key = `${req.method} ${(req.url ?? "").split("?")[0]}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    handler(req, res);
  });
  server.keepAliveTimeout = 60000;
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    counts,
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export function readJson<T = any>(path: string): T {
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

// ---------------------------------------------------------------------------------------------
// Running a loadfile end to end, with its JSON result checked against the schema.

const schema = JSON.parse(
  readFileSync(fileURLToPath(new URL("../../schema/result.schema.json", import.meta.url)), "utf8"),
) as object;
// ajv-formats is not installed, so "format" (date-time) is checked by hand below.
const validateResult = new Ajv.default({ allErrors: true, strict: false, validateFormats: false }).compile(
  schema,
);

export function assertValidResult(result: unknown): asserts result is RunResult {
  const ok = validateResult(result);
  assert.ok(ok, `JSON result does not match the schema: ${JSON.stringify(validateResult.errors, null, 2)}`);
  const r = result as RunResult;
  assert.ok(Number.isFinite(Date.parse(r.startedAt)), `startedAt is not a date-time: ${r.startedAt}`);
  assert.ok(Number.isFinite(Date.parse(r.endedAt)), `endedAt is not a date-time: ${r.endedAt}`);
}

export interface LoadRun extends CliResult {
  result: RunResult;
}

/**
 * Writes `loadfile` (plus `extra` files) into a temp dir and runs
 * `cicada run loadtest.ts --headless ARGS --json out.json --only-summary` there.
 */
export async function runLoad(
  loadfile: string,
  args: string[],
  extra: Record<string, string> = {},
): Promise<LoadRun> {
  const project = tempProject({ "loadtest.ts": loadfile, ...extra });
  try {
    const out = join(project.dir, "out.json");
    const cli = await runCli(["run", "loadtest.ts", "--headless", ...args, "--json", out, "--only-summary"], {
      cwd: project.dir,
      timeoutMs: 30_000,
    });
    assert.ok(
      existsSync(out),
      `no JSON result (exit ${cli.code}, signal ${cli.signal})\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`,
    );
    const result = readJson(out) as unknown;
    assertValidResult(result);
    return { ...cli, result };
  } finally {
    project.cleanup();
  }
}

export function describeRun(r: CliResult): string {
  return `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

export function count(server: TestServer, key: string): number {
  return server.counts.get(key) ?? 0;
}

export function endpoint(result: RunResult, name: string, method = "GET") {
  return result.endpoints.find((e) => e.name === name && e.method === method);
}

// ---------------------------------------------------------------------------------------------
// Shared by tests that need reproducible randomness or a real browser.

/** A seeded generator (the one arrivals use), so every run of the suite sees the same samples. */
export { mulberry32 as rng } from "../src/core/random.js";

/** Debian's chromium (or CICADA_CHROMIUM), for the browser tests; null if none is installed. */
export function findChromium(): string | null {
  const candidates = [process.env.CICADA_CHROMIUM, "/usr/bin/chromium", "/usr/bin/chromium-browser"];
  return candidates.find((p): p is string => Boolean(p) && existsSync(p!)) ?? null;
}

/** Skip reason for the browser tests; on CI a missing browser must fail, not pass as skipped. */
export function browserSkipReason(chromiumPath: string | null): string | false {
  return chromiumPath === null && !process.env.CI
    ? "no Chromium found: install one (e.g. the distribution's chromium package) or set CICADA_CHROMIUM"
    : false;
}

/** A request's whole body as text (for test servers that read what they were sent). */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let s = "";
    req.setEncoding("utf8");
    req.on("data", (d: string) => {
      s += d;
    });
    req.on("end", () => resolve(s));
    req.on("error", reject);
  });
}

// ---------------------------------------------------------------------------------------------
// The published package: packed from this repository and installed into an empty project.

/**
 * The environment for npm/npx in a temp project. When a suite runs under `npm test`, npm
 * exports its own lifecycle variables; npm_config_local_prefix in particular would point npm
 * commands at this repository instead of the temp project. Keep only machine-wide settings,
 * and none of a developer's CICADA_* settings.
 */
export function npmEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const keep = /^npm_config_(cache|userconfig|globalconfig|cafile|registry|strict_ssl|.*proxy)$/i;
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(cliEnv())) {
    if (/^npm_/i.test(k) && !keep.test(k)) continue;
    if (k === "INIT_CWD") continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

export interface Exec {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end (killed after timeoutMs); a failure is a non-zero code, never a throw. */
export function exec(cmd: string, args: string[], cwd: string, timeoutMs: number): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(
      cmd,
      args,
      { cwd, env: npmEnv(), timeout: timeoutMs, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

export function assertExecOk(r: Exec, what: string): void {
  assert.equal(r.code, 0, `${what} failed (exit ${r.code})\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`);
}

export interface InstalledPackage {
  /** Holds pack/ (the tarball) and proj/; removed by cleanup. */
  tmp: string;
  /** An ESM npm project with the tarball installed as a dev dependency. */
  proj: string;
  tarball: string;
  /** The tarball's file list, as npm pack reported it. */
  packed: string[];
  cleanup(): void;
}

/**
 * `npm pack` of this repository, installed with `npm i -D` (plus `extra` packages) into a new
 * empty project, as a user installs it from the registry. dist/ must be built already.
 */
export async function installPackedPackage(extra: string[] = []): Promise<InstalledPackage> {
  assert.ok(
    existsSync(join(ROOT, "dist/src/cicada.js")),
    "dist/ is missing: run `npm run build` first (npm test does)",
  );
  const tmp = mkdtempSync(join(tmpdir(), "cicada-pkg-"));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  try {
    const packDir = join(tmp, "pack");
    const proj = join(tmp, "proj");
    mkdirSync(packDir);
    mkdirSync(proj);
    // --ignore-scripts skips `prepare`, which would rebuild dist/ under the feet of tests
    // running in parallel.
    const pack = await exec(
      "npm",
      ["pack", "--ignore-scripts", "--json", "--pack-destination", packDir],
      ROOT,
      120_000,
    );
    assertExecOk(pack, "npm pack");
    const info = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const tarball = join(packDir, info[0]!.filename);
    assert.ok(existsSync(tarball), `no tarball at ${tarball}`);
    assertExecOk(await exec("npm", ["init", "-y"], proj, 60_000), "npm init");
    const pj = JSON.parse(readFileSync(join(proj, "package.json"), "utf8"));
    pj.type = "module";
    writeFileSync(join(proj, "package.json"), JSON.stringify(pj, null, 2));
    assertExecOk(
      await exec(
        "npm",
        ["i", "-D", tarball, ...extra, "--prefer-offline", "--no-audit", "--no-fund"],
        proj,
        200_000,
      ),
      "npm install of the tarball",
    );
    return { tmp, proj, tarball, packed: info[0]!.files.map((f) => f.path), cleanup };
  } catch (err) {
    cleanup();
    throw err;
  }
}

/**
 * Polls `read` until `ok` holds for what it returns; fails with the last value otherwise. Without
 * `ok`, it waits for a value that is not undefined.
 */
export async function until<T, S extends T = Exclude<T, undefined>>(
  what: string,
  read: () => Promise<T>,
  ok: ((v: T) => v is S) | ((v: T) => boolean) = (v) => v !== undefined,
  ms = 15_000,
): Promise<S> {
  const end = Date.now() + ms;
  let v = await read();
  while (!ok(v)) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}; last value: ${JSON.stringify(v)}`);
    await delay(150);
    v = await read();
  }
  return v as S;
}

/** `cicada run --headless loadtest.ts --master` on loopback with a free port, once it listens. */
export async function startMaster(
  dir: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ master: RunningCli; port: number }> {
  const master = startCli(
    ["run", "--headless", "loadtest.ts", "--master", "--master-bind-port", "0", ...args],
    {
      cwd: dir,
      env,
    },
  );
  await master.waitFor(/master listening on 127\.0\.0\.1:\d+/);
  const port = Number(/master listening on 127\.0\.0\.1:(\d+)/.exec(master.output().stderr)![1]);
  return { master, port };
}

/** An OpenAI-style chat stream: the first token after `firstMs`, then `tokens - 1` more, usage, [DONE]. */
export async function chatStream(res: ServerResponse, firstMs: number, tokens: number): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
  res.flushHeaders();
  const chunk = (o: object) => `data: ${JSON.stringify({ object: "chat.completion.chunk", ...o })}\n\n`;
  await new Promise((r) => setTimeout(r, firstMs));
  for (let i = 0; i < tokens; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 5));
    res.write(chunk({ choices: [{ index: 0, delta: { content: `t${i} ` } }] }));
  }
  res.write(chunk({ choices: [], usage: { completion_tokens: tokens, prompt_tokens: 3 } }));
  res.end("data: [DONE]\n\n");
}

/** A loadfile whose one user streams OpenAI-style chat completions, counting tokens. */
export const CHAT_LOADFILE = `
import { HttpUser, task } from "cicada-load";
export class Chat extends HttpUser {
  @task async chat() {
    await this.client.sse("/v1/chat/completions", {
      json: { stream: true, messages: [{ role: "user", content: "hi" }] },
      tokens: "openai",
    });
  }
}
`;
