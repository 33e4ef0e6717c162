/**
 * The docs are tested: every `npx cicada …` line in a shell block of README.md and docs/*.md
 * runs as typed, in a project that installed the packed package, against the demo target.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it, type TestContext } from "node:test";
import { type DemoServer, startDemoServer } from "../src/demo/server.js";
import { type InstalledPackage, installPackedPackage, npmEnv, ROOT, readJson } from "./helpers.js";

// ---------------------------------------------------------------------------------------------
// Reading the docs.

const DOCS = [
  "README.md",
  ...readdirSync(join(ROOT, "docs"))
    .filter((f) => f.endsWith(".md"))
    .sort()
    .map((f) => `docs/${f}`),
];

const SHELL_LANGS = new Set(["sh", "bash", "console", "shell", "zsh"]);

/** One command as a user copies it: continuation lines joined, a trailing `# comment` dropped. */
interface DocLine {
  doc: string;
  /** 1-based line of the command's first line. */
  lineNo: number;
  /** Index of its shell block in the doc: the lines of one block run in order, in one directory. */
  block: number;
  text: string;
}

/** `text` without a `# comment` that starts outside quotes after whitespace (as sh reads it). */
function stripComment(text: string): string {
  let quote: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === "#" && (i === 0 || /\s/.test(text[i - 1]!))) {
      return text.slice(0, i).trimEnd();
    }
  }
  return text.trimEnd();
}

function codeBlocks(doc: string): Array<{ lang: string; start: number; lines: string[] }> {
  const blocks: Array<{ lang: string; start: number; lines: string[] }> = [];
  let open: { lang: string; start: number; lines: string[] } | undefined;
  readFileSync(join(ROOT, doc), "utf8")
    .split("\n")
    .forEach((line, i) => {
      const fence = /^\s*```+\s*([\w-]*)/.exec(line);
      if (fence) {
        if (open) {
          blocks.push(open);
          open = undefined;
        } else {
          open = { lang: fence[1]!.toLowerCase(), start: i + 2, lines: [] };
        }
      } else if (open) {
        open.lines.push(line);
      }
    });
  return blocks;
}

/** Every Cicada command in the shell blocks of one doc (bare `cicada …` included, to flag it). */
function commandLines(doc: string): DocLine[] {
  const out: DocLine[] = [];
  codeBlocks(doc)
    .filter((b) => SHELL_LANGS.has(b.lang))
    .forEach((b, block) => {
      let text = "";
      let first = 0;
      b.lines.forEach((raw, i) => {
        let line = raw.trim().replace(/^\$\s+/, "");
        if (text === "") first = b.start + i;
        const more = line.endsWith("\\");
        if (more) line = line.slice(0, -1).trim();
        text = text === "" ? line : `${text} ${line}`;
        if (more) return;
        const cmd = stripComment(text);
        text = "";
        if (/^(npx )?cicada(\s|$)/.test(cmd)) out.push({ doc, lineNo: first, block, text: cmd });
      });
    });
  return out;
}

/** The `n`th ```ts block of a doc: a page's own loadfile, for the command lines under it. */
function tsBlock(doc: string, n: number): string {
  const block = codeBlocks(doc).filter((b) => b.lang === "ts")[n];
  assert.ok(block, `${doc} has no ts block #${n}`);
  return `${block.lines.join("\n")}\n`;
}

// ---------------------------------------------------------------------------------------------
// Where the lines run.

/**
 * The hosts of the examples, all standing in for the demo target that the test starts on
 * loopback (one per block, so a block's requests are its own).
 */
const DOC_HOSTS = /\bhttps?:\/\/(?:127\.0\.0\.1:8000|localhost:5000)([^\s'"]*)/g;

/**
 * Paths the examples request, and what the demo serves in their place. A path missing here fails
 * the suite: add it with the demo route that takes the same kind of request.
 */
const DEMO_PATHS: Record<string, string> = {
  "": "", // -H: the base URL
  "/health": "/health",
  "/api/health": "/health",
  "/api/agents": "/health", // a GET list; any cheap GET does
  "/search?q=x": "/health?q=x",
  "/api/v1/agents/invoke": "/api/v1/agents/invoke",
  // A POST of a JSON object of any shape: the demo's agent stream takes one and answers it.
  "/api/agents/42/query": "/api/v1/agents/stream",
  // The demo has no upload route (and no PUT at all): see the line's entry.
  "/api/upload": "/api/upload",
};

function substitute(text: string, demoUrl: string): string {
  return text.replace(DOC_HOSTS, (_m, path: string) => {
    const to = DEMO_PATHS[path];
    assert.ok(to !== undefined, `no demo path for "${path}" (in: ${text}); add it to DEMO_PATHS`);
    return `${demoUrl}${to}`;
  });
}

/** The files every block's directory starts with, beside the installed package. */
function fixtures(proj: string, demoUrl: string): Record<string, string> {
  return {
    // The loadfile of the examples: the shipped example for the demo target, as a user copies it
    // from the package.
    "loadtest.ts": readFileSync(join(proj, "node_modules/cicada-load/examples/agent-service.ts"), "utf8"),
    // Lines without -H take their host from here, as in the README's "Configuration" example.
    "cicada.config.ts": `import { defineConfig } from "cicada-load";\n\nexport default defineConfig({ host: "${demoUrl}" });\n`,
    // quick's `-b @payload.json`.
    "payload.json": `${JSON.stringify({ message: "hello from a file" })}\n`,
  };
}

/** For `-H "Authorization: Bearer $TOKEN"`. */
const ENV = { TOKEN: "doc-test-token", npm_config_update_notifier: "false" };

// ---------------------------------------------------------------------------------------------
// What each line must do.

interface Entry {
  /**
   * The exit code as the shell sees it. After a Ctrl-C that is npm's: `npx` exits 130 whatever
   * Cicada returned (README, "Spawning and stopping"), so Cicada's own outcome is checked by its outputs.
   */
  exit: number;
  /** Seconds the line may take, Ctrl-C included. */
  limitSec: number;
  /** Press Ctrl-C this many seconds after the target got the line's first request. */
  ctrlC?: number;
  /** Files the line must leave in its directory. */
  writes?: string[];
  /** What stdout + stderr must show. */
  prints?: RegExp[];
  /** Cicada's own exit code, from the `exitCode` of the JSON result the line writes. */
  json?: { file: string; exitCode: number };
  /** What the user does while the line runs (after its first request, before any Ctrl-C). */
  whileRunning?: () => Promise<void>;
  /** Files that replace the fixtures for the line's block. */
  files?: () => Record<string, string>;
}

/** Ctrl-C this long after the first request: short, and under the 5 s a comparison needs. */
const SOON = 2;

const stoppedBySignal = /stopped by signal/;

/**
 * Every command line of the docs, exactly as written (continuations joined, comments dropped).
 * Lines of one shell block run in order in one directory, so a later line finds the files an
 * earlier one wrote.
 */
const LINES: Record<string, Entry> = {
  // README: the first example; 5 minutes, so the user stops it.
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 -u 100 -r 10 -t 5m --json result.json": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    json: { file: "result.json", exitCode: 0 },
    prints: [stoppedBySignal],
  },
  // docs/streaming.md: the LLM example, as in a clone of the repository, against the demo target.
  "npx cicada run examples/llm-service.ts --headless -H http://127.0.0.1:8000 -u 16 -t 30s": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal],
    files: () => ({ "examples/llm-service.ts": readFileSync(join(ROOT, "examples/llm-service.ts"), "utf8") }),
  },
  // README: quick start in your own project.
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 -u 10 -r 2 -t 1m": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal, /Aggregated/],
  },
  // README: quick mode.
  "npx cicada quick http://127.0.0.1:8000/health -c 50 -d 30s": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal, /GET \/health/],
  },
  'npx cicada quick http://127.0.0.1:8000/api/v1/agents/invoke -m POST -b \'{"message":"hi"}\' -n 1000 -c 100':
    {
      exit: 0,
      limitSec: 60,
      prints: [/POST \/api\/v1\/agents\/invoke\s+1000\s+0\(0\.0%\)/],
    },
  "npx cicada quick http://127.0.0.1:8000/search?q=x --rate 200 -d 1m --json quick.json": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    json: { file: "quick.json", exitCode: 0 },
  },
  // README: the same loadfile on undici for one run, over the example classes' own engine.
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 -u 10 -t 5s --http-engine undici": {
    exit: 0,
    limitSec: 40,
    prints: [/Cicada .*stopped by run-time/, /Aggregated/],
  },
  // README: stages, open model, all cores.
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 --stages 30s:100,2m:100,10s:0": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal],
  },
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 --rate 200 -t 5m --max-users 500": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal, /[Oo]pen model/],
  },
  // docs/arrivals.md: arrival processes, a concurrency cap, windows and a replayed trace.
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 --rate 20 --arrivals poisson --seed 42 -t 5s":
    {
      exit: 0,
      limitSec: 40,
      prints: [/Aggregated/],
    },
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 --rate 20 --arrivals gamma --burstiness 0.5 --seed 42 -t 5s":
    {
      exit: 0,
      limitSec: 40,
      prints: [/Aggregated/],
    },
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 --rate 50 --max-concurrency 8 -t 5s": {
    exit: 0,
    limitSec: 40,
    prints: [/Aggregated/],
  },
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 --rate 20 -t 8s --warmup 2s --cooldown 2s --json result.json":
    {
      exit: 0,
      limitSec: 40,
      json: { file: "result.json", exitCode: 0 },
    },
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 --schedule trace.jsonl": {
    exit: 0,
    limitSec: 40,
    files: () => ({
      "trace.jsonl": `${Array.from({ length: 20 }, (_, i) => JSON.stringify({ t: i * 0.1, prompt: `p${i}` })).join("\n")}\n`,
    }),
    prints: [/Aggregated/],
  },
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 -u 200 -r 50 -t 5m --processes 4": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal],
  },
  // README: thresholds. The example loadfile has no task tagged "checkout": that threshold
  // measures nothing and fails, as documented, so JUnit holds a failure.
  'npx cicada run loadtest.ts --headless -u 50 -t 5m --threshold "p95<500" --threshold "POST /api/v1/agents/invoke: p99<1000" --threshold "error_rate<1%" --accept-status 429 --threshold "rps>100" --threshold "tag:checkout p95<300" --threshold "checks>99%" --junit junit.xml':
    {
      exit: 130,
      limitSec: 40,
      ctrlC: SOON,
      writes: ["junit.xml"],
      prints: [stoppedBySignal, /✗ FAIL\s+tag:checkout p95<300/],
    },
  // README and docs/compare.md: baselines. The runs are stopped within 5 s, too short for any
  // metric to be judged, so every comparison is inconclusive and exits 0.
  "npx cicada run loadtest.ts --headless -t 2m --json result.json": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    json: { file: "result.json", exitCode: 0 },
  },
  "npx cicada baseline save result.json --name prod-v1": {
    exit: 0,
    limitSec: 20,
    writes: [".cicada/baselines/prod-v1.json"],
  },
  "npx cicada baseline list": { exit: 0, limitSec: 20, prints: [/^prod-v1\s/m] },
  "npx cicada baseline show prod-v1": { exit: 0, limitSec: 20, prints: [/Baseline "prod-v1"/, /Aggregated/] },
  "npx cicada run loadtest.ts --headless -t 2m --json new.json": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    json: { file: "new.json", exitCode: 0 },
  },
  "npx cicada compare prod-v1 new.json --tolerance 10%": {
    exit: 0,
    limitSec: 20,
    prints: [/Verdict: inconclusive/i],
  },
  "npx cicada run loadtest.ts --headless -t 2m --compare-to prod-v1": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal, /Compared with prod-v1/, /Verdict: inconclusive/i],
  },
  "npx cicada baseline save result.json --name main": {
    exit: 0,
    limitSec: 20,
    writes: [".cicada/baselines/main.json"],
  },
  "npx cicada compare main new.json": { exit: 0, limitSec: 20, prints: [/Verdict: inconclusive/i] },
  // README and docs/monitoring.md: watching processes named node (the demo target's among them).
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 -u 10 -t 5s --monitor-pid node --json result.json":
    {
      exit: 0,
      limitSec: 40,
      json: { file: "result.json", exitCode: 0 },
      prints: [/Cicada .*stopped by run-time/],
    },
  // docs/monitoring.md: the user points Prometheus at the port while the test runs.
  "npx cicada run loadtest.ts --headless -u 100 -t 30m --prometheus-port 9646": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal, /Prometheus metrics on http:\/\/127\.0\.0\.1:9646\/metrics/],
    whileRunning: async () => {
      // Scrapes as Prometheus does, until the first second's figures are in (once a second). It
      // stops as soon as they are; the 15 s budget is for a busy machine's slow first merge.
      let text = "";
      for (let i = 0; i < 60 && !/^cicada_requests_total\{/m.test(text); i++) {
        await new Promise((r) => setTimeout(r, 250));
        const res = await fetch("http://127.0.0.1:9646/metrics");
        assert.equal(res.status, 200);
        text = await res.text();
      }
      assert.match(text, /^cicada_users [1-9]\d*$/m);
      assert.match(text, /^cicada_requests_total\{[^}]*\} [1-9]\d*$/m);
    },
  },
  // docs/monitoring.md: OpenTelemetry; no collector listens here, so the run warns and goes on.
  "npx cicada run loadtest.ts --headless -u 100 -t 30m --otel http://127.0.0.1:4318 --otel-traces": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal],
  },
  "npx cicada run loadtest.ts --headless -u 100 -t 30m --otel http://127.0.0.1:4318 --otel-traces --otel-traces-sample 0.01":
    {
      exit: 130,
      limitSec: 40,
      ctrlC: SOON,
      prints: [stoppedBySignal],
    },
  // docs/quick.md.
  "npx cicada quick http://127.0.0.1:8000/api/health -n 1000 -c 100": {
    exit: 0,
    limitSec: 60,
    prints: [/GET \/health\s+1000\s+0\(0\.0%\)/],
  },
  "npx cicada quick http://127.0.0.1:8000/api/health": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal],
  },
  "npx cicada quick http://127.0.0.1:8000/api/agents -n 5000 -c 200": {
    exit: 0,
    limitSec: 60,
    prints: [/GET \/health\s+5000\s+0\(0\.0%\)/],
  },
  "npx cicada quick http://127.0.0.1:8000/api/health -d 30s --rate 200 -c 20": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal],
  },
  // Streams take a while each; the user stops the 1000 of them early.
  'npx cicada quick http://127.0.0.1:8000/api/agents/42/query -m POST -b \'{"query": "SELECT 1"}\' -H "Authorization: Bearer $TOKEN" -H "X-Request-Source: bench" -n 1000 -c 20':
    {
      exit: 130,
      limitSec: 40,
      ctrlC: SOON,
      prints: [stoppedBySignal, /POST \/api\/v1\/agents\/stream\s+\d+\s+0\(0\.0%\)/],
    },
  // The demo has no PUT route: every request is a 404 failure. What the line shows here is that
  // the body is read from payload.json (a missing file would be a usage error before any request).
  "npx cicada quick http://127.0.0.1:8000/api/upload -m PUT -b @payload.json -d 20s": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    prints: [stoppedBySignal, /PUT\s+\/api\/upload\s+HTTP 404/],
  },
  "npx cicada quick http://127.0.0.1:8000/api/health -n 2000 -c 50 --json result.json --only-summary": {
    exit: 0,
    limitSec: 60,
    json: { file: "result.json", exitCode: 0 },
  },
  "npx cicada quick http://localhost:5000/api/health -n 1000 -c 100": {
    exit: 0,
    limitSec: 60,
    prints: [/GET \/health\s+1000\s+0\(0\.0%\)/],
  },
  // README: a sweep with the default 30 s levels; the user stops it during the first level.
  "npx cicada sweep loadtest.ts -H http://127.0.0.1:8000 --concurrency 10,50,100,200,500 --json sweep.json": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    // The sweep's JSON is no run result (`json` checks those): it is written, and holds the level.
    writes: ["sweep.json"],
    prints: [/stopping the sweep/, /10 users\s+\d+/, /50 users\s+(-\s+)+not run/],
  },
  // docs/sweep.md: three short levels against the demo target, to the end; then its JUnit.
  "npx cicada sweep loadtest.ts --concurrency 5,10,20 --step-time 2s --warmup 1s --csv levels --html sweep.html --json sweep.json":
    {
      exit: 0,
      limitSec: 60,
      writes: ["levels_sweep.csv", "sweep.html", "sweep.json"],
      prints: [/3 of 3 levels run/, /Capacity estimate: /],
    },
  "npx cicada report sweep.json --junit sweep.xml": {
    exit: 0,
    limitSec: 20,
    writes: ["sweep.xml"],
    prints: [/JUnit XML written to sweep\.xml/],
  },
  // docs/report.md.
  "npx cicada run loadtest.ts --headless -t 2m --html report.html --json result.json": {
    exit: 130,
    limitSec: 40,
    ctrlC: SOON,
    writes: ["report.html"],
    json: { file: "result.json", exitCode: 0 },
  },
  "npx cicada report result.json --html report.html": {
    exit: 0,
    limitSec: 20,
    writes: ["report.html"],
    prints: [/HTML report written to report\.html/],
  },
  // docs/streaming.md, with the page's own loadfile (chat streams and a job queue, both served by
  // the demo). The user waits until jobs have finished, so the JOB threshold has samples. The
  // latency thresholds are measured; whether they hold depends on this machine's load.
  'npx cicada run loadtest.ts -H http://127.0.0.1:8000 -u 20 -t 2m --headless --threshold "SSE /v1/chat/completions: ttft p95<800" --threshold "SSE /v1/chat/completions: itl p95<60" --threshold "SSE /v1/chat/completions: error_rate<1%" --threshold "JOB /api/v1/jobs: p95<30000"':
    {
      exit: 130,
      limitSec: 60,
      ctrlC: 12,
      files: () => ({ "loadtest.ts": tsBlock("docs/streaming.md", 0) }),
      prints: [
        stoppedBySignal,
        /(✓ pass|✗ FAIL)\s+SSE \/v1\/chat\/completions: ttft p95<800\s+measured \d/,
        /(✓ pass|✗ FAIL)\s+SSE \/v1\/chat\/completions: itl p95<60\s+measured \d/,
        /✓ pass\s+SSE \/v1\/chat\/completions: error_rate<1%/,
        /✓ pass\s+JOB \/api\/v1\/jobs: p95<30000\s+measured \d/,
      ],
    },
  // docs/test-suites.md: the page's bench file (its last ts block), run twice and compared. One
  // second per benchmark is too short for a verdict: the comparison is inconclusive and exits 0.
  "npx cicada bench bench.ts -H http://127.0.0.1:8000 --json before.json": {
    exit: 0,
    limitSec: 60,
    files: () => ({ "bench.ts": tsBlock("docs/test-suites.md", 8) }),
    json: { file: "before.json", exitCode: 0 },
    prints: [/Name \(time in (ns|us|ms|s)\)/, /GET \/health\s/, /POST \/api\/v1\/agents\/invoke\s/],
  },
  "npx cicada bench bench.ts -H http://127.0.0.1:8000 --json after.json": {
    exit: 0,
    limitSec: 60,
    json: { file: "after.json", exitCode: 0 },
  },
  "npx cicada compare before.json after.json": {
    exit: 0,
    limitSec: 20,
    prints: [/BENCH GET \/health/, /BENCH POST \/api\/v1\/agents\/invoke/, /Verdict: inconclusive/i],
  },
};

/** Lines that cannot run here, and why. */
const SKIP: Record<string, string> = {
  "npx cicada demo --serve --capacity 8 --queue 64 --token-ms 15":
    "a target that serves on port 8000 until Ctrl-C, in its own terminal (test/demo-llm.test.ts starts it with --port 0 and streams against it)",
  "npx cicada run loadtest.ts --headless -H http://127.0.0.1:8000 -t 5m --monitor-url http://127.0.0.1:8000/metrics --monitor-query 'jobs=queue_length{queue=\"jobs\"}'":
    "the demo target serves no Prometheus metrics (test/monitor.test.ts scrapes a prom-client target with --monitor-query)",
  "npx cicada run loadtest.ts --headless --master --expect-workers 2 -H http://127.0.0.1:8000 -u 20 -r 10 -t 1m":
    "one of three commands typed in three terminals at once, which one block run in order cannot do (test/distributed.test.ts runs a master and two --once workers on loopback)",
  "npx cicada worker --once":
    "a worker in its own terminal beside its master (test/distributed.test.ts runs this on loopback)",
  "npx cicada run loadtest.ts --headless --master --master-bind-host 0.0.0.0 --token-file cicada.token --expect-workers 4 -H http://target:8000 -u 2000 -r 100 -t 10m":
    "a master on all interfaces waiting for four workers on other machines, against a host named target (test/distributed.test.ts and test/distributed-security.test.ts run master and workers on loopback)",
  "npx cicada worker --master-host master.example --master-port 5557 --token-file cicada.token":
    "a worker on another machine, for a master at master.example (test/distributed-security.test.ts runs them on loopback)",
  "npx cicada worker --master-host master.example --token-file cicada.token":
    "a worker on another machine, for a master at master.example (test/distributed-security.test.ts runs them on loopback)",
  "npx cicada run loadtest.ts --headless --master --master-bind-host 0.0.0.0 --token-file cicada.token --tls-cert master.pem --tls-key master.key --expect-workers 4 -H http://target:8000 -u 2000 -r 100 -t 10m":
    "a TLS master on all interfaces for workers on other machines (test/distributed-security.test.ts runs one over TLS on loopback with a CA it generates)",
  "npx cicada worker --master-host master.example --token-file cicada.token --tls-ca ca.pem":
    "a TLS worker for a master at master.example (test/distributed-security.test.ts runs one over TLS on loopback)",
  'npx cicada run agents.ts -H https://agents.example.com -u 20 -t 1m -s 10 --headless --threshold "MCP tools/call: p95<500" --threshold "JSONRPC message/send: error_rate<1%"':
    "a real agent service at agents.example.com, with the page's agents.ts (its /mcp, /a2a and /agui/run are not the demo's routes)",
};

// ---------------------------------------------------------------------------------------------
// Running a line as a user does: in a shell, in the project, Ctrl-C when they have seen enough.

interface LineRun {
  /** As the shell reports it: 128 + the signal's number when the command died of a signal. */
  exit: number;
  stdout: string;
  stderr: string;
  seconds: number;
}

async function runLine(text: string, cwd: string, demo: DemoServer, e: Entry): Promise<LineRun> {
  const t0 = Date.now();
  // `exec`: the command is the process group's leader, as a shell's foreground job is, and
  // what it exits with is what the user sees.
  const child = spawn("sh", ["-c", `exec ${substitute(text, demo.url)}`], {
    cwd,
    env: npmEnv(ENV),
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (d) => {
    stdout += d;
  });
  child.stderr.on("data", (d) => {
    stderr += d;
  });
  const group = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // Already gone.
    }
  };
  let timedOut = false;
  const killer = setTimeout(() => {
    timedOut = true;
    group("SIGKILL");
  }, e.limitSec * 1000);
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("close", (code, signal) => resolve({ code, signal })),
  );
  let exited = false;
  void closed.then(() => {
    exited = true;
  });
  let userError: unknown;
  if (e.ctrlC !== undefined || e.whileRunning) {
    const before = demo.requests();
    while (!exited && demo.requests() === before) await new Promise((r) => setTimeout(r, 50));
    if (!exited) {
      try {
        await e.whileRunning?.();
      } catch (err) {
        userError = err;
      }
      if (e.ctrlC !== undefined) {
        await new Promise((r) => setTimeout(r, e.ctrlC! * 1000));
        // Ctrl-C in a terminal: SIGINT to the foreground process group.
        if (!exited) group("SIGINT");
      }
    }
  }
  const { code, signal } = await closed;
  clearTimeout(killer);
  group("SIGKILL");
  const seconds = (Date.now() - t0) / 1000;
  const run = { exit: code ?? 128 + constants.signals[signal!], stdout, stderr, seconds };
  const show = `${text}\n(exit ${run.exit}, ${seconds.toFixed(1)} s)\nstdout:\n${stdout}\nstderr:\n${stderr}`;
  assert.ok(!timedOut, `did not finish within ${e.limitSec} s: ${show}`);
  if (userError) throw userError;
  return run;
}

function checkRun(text: string, dir: string, e: Entry, r: LineRun): void {
  const show = `${text}\n(exit ${r.exit}, ${r.seconds.toFixed(1)} s)\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
  assert.equal(r.exit, e.exit, `exit code: ${show}`);
  for (const f of [...(e.writes ?? []), ...(e.json ? [e.json.file] : [])]) {
    assert.ok(existsSync(join(dir, f)), `${f} was not written: ${show}`);
  }
  for (const re of e.prints ?? []) assert.match(r.stdout + r.stderr, re, show);
  if (e.json) {
    const result = readJson(join(dir, e.json.file));
    assert.equal(result.tool, "cicada", `${e.json.file} is not a result: ${show}`);
    assert.equal(result.exitCode, e.json.exitCode, `Cicada's own exit code in ${e.json.file}: ${show}`);
    assert.ok(result.totals.requests > 0, `${e.json.file}: no requests: ${show}`);
  }
}

// ---------------------------------------------------------------------------------------------

const ALL = DOCS.flatMap(commandLines);

describe("the docs' command lines", () => {
  it("every command line has an entry (or a reason to skip it), and every entry a line", () => {
    const missing = ALL.filter((l) => !(l.text in LINES) && !(l.text in SKIP)).map(
      (l) => `${l.doc}:${l.lineNo}: ${l.text}`,
    );
    assert.deepEqual(missing, [], "doc lines without an entry in LINES or SKIP of test/docs.test.ts");
    const texts = new Set(ALL.map((l) => l.text));
    const stale = [...Object.keys(LINES), ...Object.keys(SKIP)].filter((t) => !texts.has(t));
    assert.deepEqual(stale, [], "entries of LINES or SKIP that no doc has (any more)");
    assert.ok(ALL.length >= 30, `only ${ALL.length} command lines found: is the parser broken?`);
  });

  it("shell blocks say `npx cicada`: with the README's `npm i -D cicada-load`, a bare `cicada` is not on PATH", () => {
    const bare = ALL.filter((l) => !l.text.startsWith("npx ")).map((l) => `${l.doc}:${l.lineNo}: ${l.text}`);
    assert.deepEqual(bare, []);
  });
});

describe("the docs' command lines run as documented", { concurrency: 2, timeout: 300_000 }, () => {
  let pkg: InstalledPackage;

  before(
    async () => {
      pkg = await installPackedPackage();
    },
    { timeout: 200_000 },
  );

  after(() => pkg?.cleanup());

  // One test per shell block; the longest first, so the two lanes end together.
  const blocks = new Map<string, DocLine[]>();
  for (const l of ALL) {
    const key = `${l.doc}#${l.block}`;
    blocks.set(key, [...(blocks.get(key) ?? []), l]);
  }
  const cost = (ls: DocLine[]) => ls.reduce((s, l) => s + 2 + (LINES[l.text]?.ctrlC ?? 0), 0);
  const ordered = [...blocks.values()].sort((a, b) => cost(b) - cost(a));
  let n = 0;
  for (const lines of ordered) {
    const where = `${lines[0]!.doc}:${lines[0]!.lineNo}`;
    const runnable = lines.filter((l) => !(l.text in SKIP));
    const skip = runnable.length === 0 ? SKIP[lines[0]!.text] : false;
    const id = n++;
    it(`the shell block at ${where} (${lines.length} line${lines.length > 1 ? "s" : ""})`, {
      skip,
    }, async (t) => {
      const demo = await startDemoServer();
      try {
        const dir = join(pkg.proj, `block${id}`);
        mkdirSync(dir);
        const files = { ...fixtures(pkg.proj, demo.url) };
        for (const l of runnable) Object.assign(files, LINES[l.text]?.files?.());
        for (const [name, content] of Object.entries(files)) {
          mkdirSync(dirname(join(dir, name)), { recursive: true });
          writeFileSync(join(dir, name), content);
        }
        for (const l of lines) await runDocLine(t, l, dir, demo);
      } finally {
        await demo.close();
      }
    });
  }
});

async function runDocLine(t: TestContext, l: DocLine, dir: string, demo: DemoServer): Promise<void> {
  const name = `${l.doc}:${l.lineNo}: ${l.text}`;
  if (l.text in SKIP) {
    await t.test(name, { skip: SKIP[l.text] }, () => {});
    return;
  }
  const e = LINES[l.text];
  assert.ok(e, `no entry in LINES for ${name}`);
  await t.test(name, async () => checkRun(l.text, dir, e, await runLine(l.text, dir, demo, e)));
}
