// The `cicada` command line: its commands and flags, parsed by commander, and the exit code.
import { Command, CommanderError } from "commander";
import type { CicadaConfig } from "../api/config.js";
import { CicadaError, ExitCode, UsageError } from "../core/errors.js";
import { VERSION } from "../core/version.js";
import { envName, RUN_FLAGS, SETTINGS, type SettingValues } from "../testrun/settings.js";
import type { RunIo, WebUiFront } from "../testrun/testrun.js";
import { registerBaselineCommands } from "./baseline.js";
import { registerBench } from "./bench.js";
import { registerDemo } from "./demo.js";
import { addSettingFlags } from "./flags.js";
import { placeLoadfileArgs } from "./loadfile-args.js";
import { registerQuick } from "./quick.js";
import { registerReport } from "./report.js";
import { executeRun } from "./run.js";
import { registerSweep } from "./sweep.js";

/** The flags of `cicada worker` (and `run --worker`), besides where the master is. */
const WORKER_SECURITY = ["token", "tokenFile", "tlsCa", "handshakeTimeout"] as const;

async function workerCommand(flags: SettingValues, connectTimeoutSec: number, io: RunIo): Promise<number> {
  const { runRemoteWorker } = await import("../runner/remote.js");
  const { readPem, resolveToken } = await import("../runner/handshake.js");
  // A flag wins over its CICADA_* variable, as for `run`.
  const s: SettingValues = { ...flags };
  for (const key of WORKER_SECURITY) {
    const v = io.env[envName(key)];
    if (s[key] === undefined && v !== undefined) {
      (s as Record<string, unknown>)[key] = SETTINGS[key].parse(v, envName(key));
    }
  }
  const token = resolveToken(s, SETTINGS.token.parse);
  // Ctrl-C / SIGTERM (a service manager stopping it) ends the test as a master that goes away
  // does, and the worker's files with it; a second one exits at once (the exit still removes them).
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (!stop.signal.aborted) {
      io.stderr.write(`worker: ${sig}: stopping (again to stop at once)\n`);
      stop.abort(sig);
    } else {
      io.stderr.write(`worker: ${sig}: stopping now\n`);
      process.exit(ExitCode.Interrupted);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await runRemoteWorker(
      s.masterHost ?? SETTINGS.masterHost.default!,
      s.masterPort ?? SETTINGS.masterPort.default!,
      {
        connectTimeoutSec,
        log: (m) => io.stderr.write(`worker: ${m}\n`),
        ...(s.once ? { once: true } : {}),
        heartbeatTimeoutSec: s.heartbeatTimeout ?? SETTINGS.heartbeatTimeout.default!,
        ...(token !== undefined ? { token } : {}),
        ...(s.tlsCa !== undefined ? { tlsCa: readPem("--tls-ca", s.tlsCa) } : {}),
        handshakeTimeoutSec: s.handshakeTimeout ?? SETTINGS.handshakeTimeout.default!,
        monitor: { pids: s.monitorPid, urls: s.monitorUrl, queries: s.monitorQuery },
        stop: stop.signal,
      },
    );
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}

/** `run`'s settings from its flags and arguments: a loadfile first, then user class names. */
function runSettings(flags: SettingValues, positional: string[]): CicadaConfig & { config?: string } {
  const { worker: _w, masterHost: _h, masterPort: _p, once: _o, tlsCa, ...cfg } = flags;
  if (tlsCa !== undefined) {
    throw new UsageError(
      "--tls-ca is a worker's flag (with --worker); the master takes --tls-cert and --tls-key",
    );
  }
  placeLoadfileArgs(cfg, positional);
  return cfg;
}

/** The other fronts the CLI can hand a run to; the `cicada` command passes the web UI. */
export interface Fronts {
  webUi?: WebUiFront;
}

export async function main(argv: string[], io: RunIo, fronts: Fronts = {}): Promise<number> {
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

  const run = program
    .command("run")
    .description("run a loadfile: the web UI on :8089, or --headless for the terminal and CI")
    .argument("[loadfile-and-classes...]", "loadfile, then user class names to run (default: all)");
  const runFlags = addSettingFlags(run, RUN_FLAGS);
  run.action(async (positional: string[], opts: Record<string, unknown>) => {
    const flags = runFlags(opts);
    // Locust's `--worker`: the loadfile argument is not needed, the master ships it.
    if (flags.worker) {
      exitCode = await workerCommand(flags, SETTINGS.connectTimeout.default!, io);
      return;
    }
    exitCode = (await executeRun(runSettings(flags, positional), io, fronts.webUi)).exitCode;
  });

  const worker = program
    .command("worker")
    .description("run as a worker of a master on another machine (cicada run --master)");
  const workerFlags = addSettingFlags(
    worker,
    [
      "masterHost",
      "masterPort",
      "connectTimeout",
      "heartbeatTimeout",
      "once",
      ...WORKER_SECURITY,
      "monitorPid",
      "monitorUrl",
      "monitorQuery",
    ],
    {
      masterHost: { help: "the master's address", default: SETTINGS.masterHost.default },
      masterPort: { help: "the master's port", default: SETTINGS.masterPort.default },
      connectTimeout: { default: SETTINGS.connectTimeout.default },
      heartbeatTimeout: {
        help: "stop the test when the master is silent this long (default 3s)",
        default: SETTINGS.heartbeatTimeout.default,
      },
      token: { help: "the master's token (or CICADA_TOKEN): proved to the master, and checked it knows it" },
      tokenFile: { help: "read the token from this file (or CICADA_TOKEN_FILE)" },
      tlsCa: { help: "connect over TLS; trust only a master whose certificate this CA (PEM) signed" },
      handshakeTimeout: {
        help: "give up on a master that has not completed the greeting within this long (default 5s)",
      },
      monitorPid: {
        help: "watch these processes on this machine (pids or names) and send their figures to the master; repeatable",
      },
      monitorUrl: { help: "scrape this Prometheus endpoint from this machine for the master; repeatable" },
    },
  );
  worker.action(async (opts: Record<string, unknown>) => {
    const f = workerFlags(opts);
    exitCode = await workerCommand(f, f.connectTimeout!, io);
  });

  registerDemo(program, io, (code) => {
    exitCode = code;
  });
  registerQuick(program, io, (code) => {
    exitCode = code;
  });
  registerBaselineCommands(program, io, (code) => {
    exitCode = code;
  });
  registerReport(program, io);
  registerBench(program, io, (code) => {
    exitCode = code;
  });
  registerSweep(program, io, (code) => {
    exitCode = code;
  });

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
