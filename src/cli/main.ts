#!/usr/bin/env node
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { Command, CommanderError, Option } from "commander";
import type { CicadaConfig } from "../api/config.js";
import { VERSION } from "../version.js";
import { registerBaselineCommands } from "./baseline.js";
import { CicadaError, ExitCode } from "./errors.js";
import {
  parseAutoquit,
  parseDuration,
  parseExitCode,
  parseIterations,
  parseList,
  parsePort,
  parseProcesses,
  parsePrometheusPort,
  parseRate,
  parseSpawnRate,
  parseStatusList,
  parseStopTimeout,
  parseUsers,
  parseWebLogin,
  parseWebPort,
} from "./options.js";
import { registerQuick } from "./quick.js";
import { registerReport } from "./report.js";
import { executeRun, type RunIo } from "./run.js";

const LOADFILE_EXT = /\.(ts|mts|cts|js|mjs|cjs|tsx|jsx)$/;

interface RunFlags {
  iterationsPerUser?: number;
  stages?: string;
  scenario?: string[];
  threshold?: string[];
  acceptStatus?: string[];
  junit?: string;
  compareTo?: string;
  tolerance?: string;
  baselineDir?: string;
  csv?: string;
  csvFullHistory?: boolean;
  html?: string;
  rate?: number;
  maxUsers?: number;
  maxDelay?: string;
  loadfile?: string;
  host?: string;
  users?: number;
  spawnRate?: number;
  runTime?: string;
  tags?: string[];
  excludeTags?: string[];
  iterations?: number;
  stopTimeout?: number;
  json?: string;
  onlySummary?: boolean;
  exitCodeOnError?: number;
  headless?: boolean;
  webHost?: string;
  webPort?: number;
  autostart?: boolean;
  autoquit?: number;
  webLogin?: string;
  prometheusPort?: number;
  prometheusHost?: string;
  master?: boolean;
  masterBindHost?: string;
  masterBindPort?: number;
  expectWorkers?: number;
  expectWorkersMaxWait?: string;
  worker?: boolean;
  masterHost?: string;
  masterPort?: number;
  config?: string;
  insecure?: boolean;
  preflight?: boolean;
  processes?: number;
}

function addRunOptions(cmd: Command): Command {
  return cmd
    .option("-f, --loadfile <file>", "loadfile (default loadtest.ts)")
    .option("-H, --host <url>", "base URL of the target, e.g. http://127.0.0.1:8000")
    .option("-u, --users <n>", "peak number of concurrent users", parseUsers)
    .option("-r, --spawn-rate <n>", "users started per second", parseSpawnRate)
    .option("-t, --run-time <duration>", "stop after this long: 30s, 5m, 1h30m")
    .option("-T, --tags <tags...>", "run only tasks with any of these tags (comma or space separated)")
    .option("-E, --exclude-tags <tags...>", "skip tasks with any of these tags; wins over --tags")
    .option("-i, --iterations <n>", "stop after this many task iterations in total", parseIterations)
    .option(
      "-s, --stop-timeout <seconds>",
      "seconds users get to finish their task when the run stops",
      parseStopTimeout,
    )
    .option("--json <file>", "write the JSON result to FILE (- for stdout)")
    .option("--only-summary", "no live view; print only the final summary")
    .option(
      "--exit-code-on-error <n>",
      "exit code when any request failed or user code threw (default 1)",
      parseExitCode,
    )
    .option("--headless", "no web UI: start at once, print the summary and exit (CI)")
    .option("--web-host <host>", "address the web UI binds to (default 127.0.0.1)")
    .option("-P, --web-port <port>", "port of the web UI (default 8089; 0 = any free port)", parseWebPort)
    .option("--autostart", "web UI: start the test at once")
    .option("--autoquit <seconds>", "web UI: quit this many seconds after the test ends", parseAutoquit)
    .option("--web-login <user:pass>", "web UI: require this HTTP Basic login", parseWebLogin)
    .option(
      "--prometheus-port <port>",
      "serve Prometheus metrics at /metrics on this port (0 = any free one)",
      parsePrometheusPort,
    )
    .option("--prometheus-host <host>", "address of the metrics endpoint (default 127.0.0.1)")
    .option("--master", "run as the master of workers on other machines (cicada worker); headless")
    .option("--master-bind-host <host>", "address the master listens on (default 0.0.0.0)")
    .option(
      "--master-bind-port <port>",
      "port the master listens on (default 5557; 0 = any free one)",
      parsePort("--master-bind-port"),
    )
    .option("--expect-workers <n>", "workers the master waits for before it starts (default 1)", parseUsers)
    .option("--expect-workers-max-wait <duration>", "give up when they have not all come within this long")
    .option("--worker", "run as a worker of a master (the same as cicada worker)")
    .option("--master-host <host>", "with --worker: the master's address (default 127.0.0.1)")
    .option(
      "--master-port <port>",
      "with --worker: the master's port (default 5557)",
      parsePort("--master-port"),
    )
    .option("--config <file>", "config file (default ./cicada.config.ts if present)")
    .option("--insecure", "do not verify TLS certificates")
    .addOption(new Option("--no-preflight", "skip the check that each host accepts connections"))
    .option(
      "--processes <n>",
      "worker threads running the users, each with its own event loop; -1 = one per core (default)",
      parseProcesses,
    )
    .option("--iterations-per-user <n>", "each user stops after N task iterations", parseIterations)
    .option("--rate <n>", "open model: start N iterations per second, whatever the response times", parseRate)
    .option("--max-users <n>", "open model: most users the pool may grow to", parseUsers)
    .option(
      "--max-delay <duration>",
      "open model: drop an arrival that cannot start within this (default 10s)",
    )
    .option("--stages <list>", "load shape: ramp users linearly, e.g. 30s:100,2m:100,10s:0 (replaces -u/-r)")
    .option("--scenario <names...>", "run only these of the loadfile's scenarios (comma or space separated)")
    .option(
      "--threshold <expr>",
      'pass/fail criterion, repeatable: "p95<500", "error_rate<1%", "POST /api: p99<1s", "tag:checkout p95<300", "checks>99%"',
      (v: string, prev: string[] = []) => [...prev, v],
    )
    .option("--accept-status <codes...>", "status codes that are not failures, e.g. 429 or 400-404")
    .option("--junit <file>", "write thresholds, checks and comparison verdicts as JUnit XML")
    .option("--compare-to <baseline>", "compare the result with a stored baseline name or a result file")
    .option("--tolerance <spec>", 'tolerances for --compare-to: "15%" or "p99=20%,error_rate=50%"')
    .option("--baseline-dir <dir>", "directory of stored baselines (default .cicada/baselines)")
    .option("--csv <prefix>", "write Locust-compatible CSV files PREFIX_stats.csv, _stats_history.csv, ...")
    .option("--csv-full-history", "per-endpoint rows in PREFIX_stats_history.csv")
    .option("--html <file>", "write the self-contained HTML report");
}

async function workerCommand(
  host: string | undefined,
  port: number | undefined,
  connectTimeoutSec: number,
  io: RunIo,
): Promise<number> {
  const { runRemoteWorker } = await import("../runner/remote.js");
  return runRemoteWorker(host ?? "127.0.0.1", port ?? 5557, {
    connectTimeoutSec,
    log: (m) => io.stderr.write(`worker: ${m}\n`),
  });
}

function toConfig(flags: RunFlags, positional: string[]): CicadaConfig & { config?: string } {
  let loadfile = flags.loadfile;
  const rest = [...positional];
  if (!loadfile && rest.length > 0 && LOADFILE_EXT.test(rest[0]!)) loadfile = rest.shift();
  const cfg: CicadaConfig & { config?: string } = {
    loadfile,
    userClasses: rest.length > 0 ? rest : undefined,
    host: flags.host,
    users: flags.users,
    spawnRate: flags.spawnRate,
    runTime: flags.runTime,
    tags: parseList(flags.tags),
    excludeTags: parseList(flags.excludeTags),
    iterations: flags.iterations,
    stopTimeout: flags.stopTimeout,
    json: flags.json,
    onlySummary: flags.onlySummary,
    exitCodeOnError: flags.exitCodeOnError,
    headless: flags.headless,
    webHost: flags.webHost,
    webPort: flags.webPort,
    autostart: flags.autostart,
    autoquit: flags.autoquit,
    webLogin: flags.webLogin,
    prometheusPort: flags.prometheusPort,
    prometheusHost: flags.prometheusHost,
    master: flags.master,
    masterBindHost: flags.masterBindHost,
    masterBindPort: flags.masterBindPort,
    expectWorkers: flags.expectWorkers,
    expectWorkersMaxWait:
      flags.expectWorkersMaxWait === undefined
        ? undefined
        : parseDuration(flags.expectWorkersMaxWait, "--expect-workers-max-wait"),
    verifyTls: flags.insecure ? false : undefined,
    preflight: flags.preflight === false ? false : undefined,
    processes: flags.processes,
    stages: flags.stages,
    rate: flags.rate,
    iterationsPerUser: flags.iterationsPerUser,
    maxUsers: flags.maxUsers,
    maxDelay: flags.maxDelay,
    scenario: parseList(flags.scenario),
    thresholds: flags.threshold,
    acceptStatus: flags.acceptStatus === undefined ? undefined : parseStatusList(flags.acceptStatus),
    junit: flags.junit,
    compareTo: flags.compareTo,
    tolerance: flags.tolerance,
    baselineDir: flags.baselineDir,
    csv: flags.csv,
    csvFullHistory: flags.csvFullHistory,
    html: flags.html,
    config: flags.config,
  };
  return cfg;
}

export async function main(argv: string[], io: RunIo): Promise<number> {
  let exitCode: number = ExitCode.Ok;
  const program = new Command("cicada")
    .description("Load testing for TypeScript and Node.js")
    .version(VERSION, "-V, --version")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showSuggestionAfterError(true);

  addRunOptions(
    program
      .command("run")
      .description("run a loadfile: the web UI on :8089, or --headless for the terminal and CI")
      .argument("[loadfile-and-classes...]", "loadfile, then user class names to run (default: all)"),
  ).action(async (positional: string[], flags: RunFlags) => {
    // Locust's `--worker`: the loadfile argument is not needed, the master ships it.
    if (flags.worker) {
      exitCode = await workerCommand(flags.masterHost, flags.masterPort, 60, io);
      return;
    }
    exitCode = (await executeRun(toConfig(flags, positional), io)).exitCode;
  });

  program
    .command("worker")
    .description("run as a worker of a master on another machine (cicada run --master)")
    .option("--master-host <host>", "the master's address", "127.0.0.1")
    .option("--master-port <port>", "the master's port", parsePort("--master-port"), 5557)
    .option("--connect-timeout <seconds>", "keep trying to reach the master this long", parseAutoquit, 60)
    .action(async (flags: { masterHost: string; masterPort: number; connectTimeout: number }) => {
      exitCode = await workerCommand(flags.masterHost, flags.masterPort, flags.connectTimeout, io);
    });

  program
    .command("demo")
    .description("start the built-in demo target and run the example loadfile against it")
    .option("-u, --users <n>", "peak number of concurrent users", parseUsers, 20)
    .option("-r, --spawn-rate <n>", "users started per second", parseSpawnRate, 10)
    .option("-t, --run-time <duration>", "run time", "30s")
    .option("--json <file>", "write the JSON result to FILE")
    .option("--only-summary", "no live view")
    .option("--processes <n>", "worker threads; -1 = one per core (default)", parseProcesses)
    .action(
      async (flags: {
        users: number;
        spawnRate: number;
        runTime: string;
        json?: string;
        onlySummary?: boolean;
        processes?: number;
      }) => {
        const { startDemoServer } = await import("../demo/server.js");
        const server = await startDemoServer();
        io.stderr.write(`demo target listening on ${server.url}\n`);
        try {
          const example = fileURLToPath(new URL("../../../examples/agent-service.ts", import.meta.url));
          const outcome = await executeRun(
            {
              loadfile: example,
              host: server.url,
              users: flags.users,
              spawnRate: flags.spawnRate,
              runTime: flags.runTime,
              json: flags.json,
              onlySummary: flags.onlySummary,
              processes: flags.processes,
              stopTimeout: 5,
              headless: true,
            },
            io,
          );
          // The demo's rate-limited route fails on purpose; the demo itself succeeded.
          exitCode = outcome.exitCode === ExitCode.Failures ? ExitCode.Ok : outcome.exitCode;
        } finally {
          await server.close();
        }
      },
    );

  registerQuick(program, io, (code) => {
    exitCode = code;
  });
  registerBaselineCommands(program, io, (code) => {
    exitCode = code;
  });
  registerReport(program, io);

  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === "commander.helpDisplayed" ||
        err.code === "commander.version" ||
        err.code === "commander.help"
      ) {
        return ExitCode.Ok;
      }
      // Commander printed the message already.
      return ExitCode.Usage;
    }
    if (err instanceof CicadaError) {
      io.stderr.write(`cicada: ${err.message}\n`);
      return err.exitCode;
    }
    io.stderr.write(`cicada: internal error: ${(err as Error)?.stack ?? err}\n`);
    return ExitCode.Internal;
  }
}

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    // npm's bin entry is a symlink; compare real paths.
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  // V8 lets the heap grow to several times its live size between full collections. With
  // 100,000 users that slack is most of the RSS; a smaller growth step keeps it near the live
  // size at no measurable cost in throughput (docs/performance.md). Process-wide: it also
  // applies to worker threads.
  setFlagsFromString("--heap-growing-percent=30");
  const code = await main(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
  });
  process.exit(code);
}
