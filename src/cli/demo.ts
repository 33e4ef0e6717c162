// `cicada demo`: the built-in demo target, either driven by the shipped example loadfile or,
// with --serve, left running for loadfiles of your own.
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { ExitCode, UsageError } from "../core/errors.js";
import type { DemoServerOptions } from "../demo/server.js";
import { flagLabel, int, port, usageError } from "../testrun/settings.js";
import type { RunIo } from "../testrun/testrun.js";
import { addSettingFlags } from "./flags.js";
import { executeRun } from "./run.js";

/** The port `--serve` binds unless `--port` says otherwise: the one the docs' examples use. */
const SERVE_PORT = 8000;

/** The run flags the demo passes to its example run; with --serve there is no run to pass them to. */
const RUN_KEYS = ["users", "spawnRate", "runTime", "json", "onlySummary", "processes"] as const;

interface DemoFlags {
  serve?: boolean;
  port?: number;
  capacity?: number;
  queue?: number;
  tokenMs?: number;
  prefillMs?: number;
}

/** A number ≥ 0 (milliseconds may be fractional: 0.2 ms of prefill per token). */
function millis(v: unknown, name: string): number {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : Number.NaN;
  if (!(Number.isFinite(n) && n >= 0)) throw usageError(name, "a number of milliseconds ≥ 0", v);
  return n;
}

export function registerDemo(program: Command, io: RunIo, setExit: (code: number) => void): void {
  const demo = program
    .command("demo")
    .description(
      "start the built-in demo target and run the example loadfile against it; --serve keeps it running for yours",
    );
  const demoFlags = addSettingFlags(demo, RUN_KEYS, {
    users: { default: 20 },
    spawnRate: { default: 10 },
    runTime: { help: "run time", default: "30s" },
    json: { help: "write the JSON result to FILE" },
    onlySummary: { help: "no live view" },
    processes: { help: "worker threads; -1 = one per core (default)" },
  });
  demo
    .option("--serve", `only serve the demo target (on 127.0.0.1:${SERVE_PORT}) until Ctrl-C`)
    .option(
      "--port <n>",
      `port to bind (default ${SERVE_PORT} with --serve, else a free one; 0 = a free one)`,
      (v) => port(v, "--port"),
    )
    .option("--capacity <n>", "/v1/chat/completions: generations that run at once (default 8)", (v) =>
      int(1)(v, "--capacity"),
    )
    .option(
      "--queue <n>",
      "/v1/chat/completions: requests that wait for a generation; beyond them 429 (default 64)",
      (v) => int(0)(v, "--queue"),
    )
    .option(
      "--token-ms <ms>",
      "/v1/chat/completions: per-token time of a lone generation; rises with load (default 15)",
      (v) => millis(v, "--token-ms"),
    )
    .option(
      "--prefill-ms <ms>",
      "/v1/chat/completions: prefill time per prompt token, added to the first token (default 0.2)",
      (v) => millis(v, "--prefill-ms"),
    );

  demo.action(async (opts: Record<string, unknown>) => {
    const flags = opts as DemoFlags;
    const given = RUN_KEYS.filter((k) => demo.getOptionValueSource(k) === "cli");
    if (flags.serve && given.length > 0) {
      const names = given.map((k) => flagLabel(k));
      throw new UsageError(
        `demo --serve runs no test, so ${names.join(", ")} ${names.length > 1 ? "have" : "has"} nothing to do: drop ${names.length > 1 ? "them" : "it"}`,
      );
    }
    const { startDemoServer } = await import("../demo/server.js");
    const serverOpts: DemoServerOptions = {
      port: flags.port ?? (flags.serve ? SERVE_PORT : 0),
      ...(flags.capacity !== undefined ? { capacity: flags.capacity } : {}),
      ...(flags.queue !== undefined ? { queue: flags.queue } : {}),
      ...(flags.tokenMs !== undefined ? { tokenDelayMs: flags.tokenMs } : {}),
      ...(flags.prefillMs !== undefined ? { prefillMsPerToken: flags.prefillMs } : {}),
    };
    const server = await startDemoServer(serverOpts);
    io.stderr.write(`demo target listening on ${server.url}\n`);
    if (flags.serve) {
      io.stderr.write("serving until Ctrl-C: e.g. POST /v1/chat/completions, GET /v1/models, GET /health\n");
      // Stopping a server that was meant to run until stopped is its normal end: exit 0.
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          resolve();
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      await server.close();
      io.stderr.write("demo target stopped\n");
      setExit(ExitCode.Ok);
      return;
    }
    try {
      const example = fileURLToPath(new URL("../../../examples/agent-service.ts", import.meta.url));
      const outcome = await executeRun(
        { ...demoFlags(opts), loadfile: example, host: server.url, stopTimeout: 5, headless: true },
        io,
      );
      // The demo's rate-limited route fails on purpose; the demo itself succeeded.
      setExit(outcome.exitCode === ExitCode.Failures ? ExitCode.Ok : outcome.exitCode);
    } finally {
      await server.close();
    }
  });
}
