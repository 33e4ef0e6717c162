import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import type { CicadaConfig } from "../api/config.js";
import { UsageError } from "../core/errors.js";
import { makeTempDir, removeTempDir } from "../core/tempdir.js";
import { checkReachable } from "../testrun/preflight.js";
import { envName, fromEnv, int, positiveSeconds } from "../testrun/settings.js";
import type { RunIo } from "../testrun/testrun.js";
import { addSettingFlags } from "./flags.js";
import { executeRun } from "./run.js";

/**
 * `cicada quick URL`: a loadfile-free benchmark of one endpoint, like hey, ab or autocannon.
 *
 * It rides on the normal run path: the request is turned into a tiny generated loadfile (one
 * HttpUser class with one task) in a temp directory, and `executeRun` runs it, so quick runs
 * get exactly the statistics, summary, JSON result and exit codes of `cicada run`.
 */

const DEFAULT_CONNECTIONS = 50;
const DEFAULT_DURATION = "10s";
/** Seconds for the response head, and again for the body. */
const DEFAULT_TIMEOUT_SEC = 10;
/** Name of the generated user class (shows up in `config.userClassesRun` of the JSON). */
const USER_CLASS = "QuickUser";
/** RFC 9110 token: valid method and header names. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Load-shape settings from CICADA_* that must not leak into a quick run. */
const IGNORED_ENV = [
  "loadfile",
  "userClasses",
  "host",
  "users",
  "spawnRate",
  "runTime",
  "iterations",
  "tags",
  "excludeTags",
  "stopTimeout",
].map(envName);

interface QuickFlags {
  connections: number;
  requests?: number;
  duration?: string;
  method: string;
  header: string[];
  body?: string;
  rate?: number;
  json?: string;
  onlySummary?: boolean;
  exitCodeOnError?: number;
  timeout?: number;
  verifyTls?: boolean;
  httpEngine?: CicadaConfig["httpEngine"];
}

/** What the generated loadfile does. Everything here is user input: it is only ever JSON-encoded. */
export interface QuickRequest {
  method: string;
  /** Path and query, e.g. "/search?q=x". */
  target: string;
  headers: Record<string, string>;
  body: Buffer | undefined;
  timeoutSec: number;
  /** Tasks per second per user (constantThroughput), or undefined for no wait. */
  perUserRate: number | undefined;
  users: number;
}

const parseConnections = (v: string) => int(1)(v, "-c/--connections");
const parseRequests = (v: string) => int(1)(v, "-n/--requests");
const parseTimeout = (v: string) => positiveSeconds(v, "-t/--timeout");
const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Parses and checks the target URL: http(s) only, exit 2 otherwise. */
export function parseTargetUrl(text: string): URL {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`invalid URL "${text}": expected e.g. http://127.0.0.1:8000/path`);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new UsageError(`URL must start with http:// or https://, got "${text}"`);
  }
  if (!u.hostname) throw new UsageError(`URL has no host: "${text}"`);
  return u;
}

/** `-H "Name: value"` → lower-cased name and value. A later header of the same name wins. */
export function parseHeaders(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of list) {
    const colon = h.indexOf(":");
    const name = colon > 0 ? h.slice(0, colon).trim() : "";
    if (!TOKEN.test(name)) {
      throw new UsageError(`-H/--header: expected "Name: value", got "${h}"`);
    }
    const value = h.slice(colon + 1).trim();
    if (/[\r\n\0]/.test(value)) {
      throw new UsageError(`-H/--header: the value of ${name} contains a line break`);
    }
    out[name.toLowerCase()] = value;
  }
  return out;
}

/** `-b TEXT` or `-b @file` (read relative to the working directory). */
export function readBody(arg: string | undefined): Buffer | undefined {
  if (arg === undefined) return undefined;
  if (!arg.startsWith("@")) return Buffer.from(arg, "utf8");
  const file = arg.slice(1);
  if (file === "") throw new UsageError(`-b/--body: "@" needs a file name, e.g. -b @body.json`);
  try {
    return readFileSync(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOENT" ? "no such file" : e.code === "EISDIR" ? "is a directory" : e.message;
    throw new UsageError(`-b/--body: cannot read ${file}: ${why}`);
  }
}

function looksLikeJson(body: Buffer): boolean {
  try {
    JSON.parse(body.toString("utf8"));
    return true;
  } catch {
    return false;
  }
}

/**
 * The generated loadfile. User input enters only through JSON.stringify (a valid JS literal
 * for any string) and base64, never by pasting it into code.
 */
export function quickLoadfile(q: QuickRequest): string {
  const lit = JSON.stringify;
  const wait = "constant(0)";
  // Headers are passed only when there are some: a request without per-call headers reuses its
  // serialized head, one with them builds it each time.
  const headersLine = Object.keys(q.headers).length > 0 ? "  headers: HEADERS,\n" : "";
  // Without --rate: the coordinator starts one user at once and the rest at its next spawn
  // tick (100 ms later), so hold each user until all have started and all connections begin
  // together, like hey's workers. The loadfile may run in several worker threads, each with
  // its own copy of this module and only its share of the users, so the count alone cannot
  // tell when everyone is in: a thread also lets its users go once no user has joined it for
  // QUIET_MS, which is longer than a spawn tick. The wait is bounded either way.
  // With --rate: the open model starts requests on schedule itself; users need no hold.
  const onStart =
    q.perUserRate === undefined
      ? `  async onStart() {
    started++;
    lastStartAt = performance.now();
    while (started < USERS && performance.now() - lastStartAt < QUIET_MS && !this.stopping) {
      await this.sleep(0.005);
    }
  }`
      : "";
  return `// Generated by \`cicada quick\`.
import { HttpUser, constant } from "cicada-load";

const METHOD = ${lit(q.method)};
const TARGET = ${lit(q.target)};
const HEADERS = ${lit(q.headers)};
const BODY = ${q.body === undefined ? "undefined" : `Buffer.from(${lit(q.body.toString("base64"))}, "base64")`};
const TIMEOUT = ${lit(q.timeoutSec)};
const USERS = ${lit(q.users)};
const QUIET_MS = 120;
// One options object for every request: the client only reads it.
const OPTIONS = {
  name: TARGET,
${headersLine}  body: BODY,
  timeout: TIMEOUT,
  bodyTimeout: TIMEOUT,
};
let started = 0;
let lastStartAt = 0;

export class ${USER_CLASS} extends HttpUser {
  static waitTime = ${wait};
  static tasks = [
    {
      name: "request",
      task: (user) => user.client.request(METHOD, TARGET, OPTIONS),
    },
  ];

${onStart}
}
`;
}

function describeLoad(method: string, url: URL, f: QuickFlags, users: number): string {
  const what = f.requests !== undefined ? `${f.requests} requests` : `${f.duration ?? DEFAULT_DURATION}`;
  const rate = f.rate !== undefined ? `, ${f.rate} req/s` : "";
  return `quick: ${method} ${url.href}, ${users} connection${users === 1 ? "" : "s"}, ${what}${rate}\n`;
}

async function runQuick(urlText: string, f: QuickFlags, io: RunIo): Promise<number> {
  const url = parseTargetUrl(urlText);
  if (f.requests !== undefined && f.duration !== undefined) {
    throw new UsageError("-n/--requests and -d/--duration cannot be used together");
  }
  const runTimeSec = f.duration !== undefined ? positiveSeconds(f.duration, "-d/--duration") : undefined;
  const method = f.method.trim().toUpperCase();
  if (!TOKEN.test(method)) throw new UsageError(`-m/--method: invalid method "${f.method}"`);

  const headers = parseHeaders(f.header);
  if (url.username && headers.authorization === undefined) {
    const decode = (x: string) => {
      try {
        return decodeURIComponent(x);
      } catch {
        return x;
      }
    };
    const user = decode(url.username);
    const pass = decode(url.password);
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
  }
  const body = readBody(f.body);
  if (body !== undefined && headers["content-type"] === undefined && looksLikeJson(body)) {
    headers["content-type"] = "application/json";
  }

  // More connections than requests would only open idle ones.
  const users = f.requests !== undefined ? Math.min(f.connections, f.requests) : f.connections;
  const timeoutSec = f.timeout ?? DEFAULT_TIMEOUT_SEC;
  const request: QuickRequest = {
    method,
    target: url.pathname + url.search,
    headers,
    body,
    timeoutSec,
    perUserRate: f.rate === undefined ? undefined : f.rate / users,
    users,
  };

  const env = { ...io.env };
  for (const k of IGNORED_ENV) delete env[k];
  // Check the target before printing what we are about to do; executeRun checks again.
  if (env[envName("preflight")] === undefined) await checkReachable(url.origin);
  if (!(f.onlySummary ?? fromEnv(env).onlySummary)) io.stderr.write(describeLoad(method, url, f, users));

  const dir = makeTempDir("quick");
  try {
    const loadfile = join(dir, "quick.mjs");
    writeFileSync(loadfile, quickLoadfile(request));
    // An explicit, empty config file: a cicada.config.ts in the working directory is for
    // loadfile runs and must not change a quick run.
    const configFile = join(dir, "cicada.config.mjs");
    writeFileSync(configFile, "export default {};\n");
    const cfg: CicadaConfig & { config?: string } = {
      loadfile,
      userClasses: [USER_CLASS],
      host: url.origin,
      users,
      // All connections at once: the coordinator reaches the full count by its first spawn
      // tick (100 ms) instead of ramping over a second.
      spawnRate: users * 10,
      runTime: f.requests !== undefined ? undefined : (runTimeSec ?? DEFAULT_DURATION),
      iterations: f.requests,
      // --rate is the open model: requests start on schedule, whatever the response times, on
      // at most `users` connections; late ones are timed from their scheduled start too.
      ...(f.rate !== undefined ? { rate: f.rate, maxUsers: users } : {}),
      tags: [],
      excludeTags: [],
      // When the duration is up, in-flight requests get their timeouts (head, then body) to
      // finish or fail; the extra second covers timeouts firing up to 0.2 s late.
      stopTimeout: 2 * timeoutSec + 1,
      json: f.json,
      onlySummary: f.onlySummary,
      exitCodeOnError: f.exitCodeOnError,
      verifyTls: f.verifyTls,
      httpEngine: f.httpEngine,
      // quick has no web UI: it runs and exits, whatever CICADA_HEADLESS says.
      headless: true,
      config: configFile,
    };
    return (await executeRun(cfg, { ...io, env })).exitCode;
  } finally {
    removeTempDir(dir);
  }
}

/** Adds the `quick` subcommand to the program; `setExit` receives the exit code. */
export function registerQuick(program: Command, io: RunIo, setExit: (code: number) => void): void {
  const cmd = program
    .command("quick")
    .description("benchmark one URL without a loadfile (like hey, ab or autocannon)")
    .argument("<url>", "the full URL to request, e.g. http://127.0.0.1:8000/api/health")
    .option(
      "-c, --connections <n>",
      "concurrent users, each with its own keep-alive connection",
      parseConnections,
      DEFAULT_CONNECTIONS,
    )
    .option("-n, --requests <n>", "stop after this many requests in total", parseRequests)
    .option("-d, --duration <duration>", `stop after this long: 30s, 5m (default ${DEFAULT_DURATION})`)
    .option("-m, --method <method>", "HTTP method", "GET")
    .option("-H, --header <header>", 'request header "Name: value" (repeatable)', collect, [])
    .option("-b, --body <text>", "request body, or @file to read it from a file");
  // Flags shared with `run`: the same parsers, some with help that fits quick.
  const rate = addSettingFlags(cmd, ["rate"], {
    rate: { help: "total requests per second, paced per connection (rate / connections each)" },
  });
  cmd.option(
    "-t, --timeout <seconds>",
    `per-request timeout for the response head, and again for the body: 5, 5s, 500ms (default ${DEFAULT_TIMEOUT_SEC}s)`,
    parseTimeout,
  );
  const outputs = addSettingFlags(
    cmd,
    ["json", "onlySummary", "exitCodeOnError", "verifyTls", "httpEngine"],
    {
      exitCodeOnError: {
        help: "exit code when any request failed (default 1; no completed request at all exits 1 regardless)",
      },
    },
  );
  cmd.action(async (url: string, opts: Record<string, unknown>) => {
    const flags = { ...opts, ...rate(opts), ...outputs(opts) } as unknown as QuickFlags;
    setExit(await runQuick(url, flags, io));
  });
}
