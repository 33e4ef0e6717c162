import type { CicadaConfig } from "../api/config.js";
import { BaselineStore, baselineDir } from "../compare/store.js";
import { ExitCode, UsageError } from "../core/errors.js";
import { isLoopback } from "../core/http-guard.js";
import {
  type LoadedLoadfile,
  type RunIo,
  type RunOutcome,
  startMetrics,
  type WorkerPool,
} from "../testrun/testrun.js";
import { ApiError, WebController } from "./controller.js";
import { WebServer } from "./server.js";

/**
 * `cicada run` without --headless: serve the web UI until Ctrl-C, or until --autoquit seconds
 * after the test ends. The exit code is the last test's.
 */
export async function serveWebUi(
  loaded: LoadedLoadfile,
  s: CicadaConfig,
  io: RunIo,
  workers?: WorkerPool,
): Promise<RunOutcome> {
  // Without --autostart nothing would ever start the countdown: the process would serve the
  // UI until Ctrl-C while the user waits for the quit they asked for.
  if (s.autoquit !== undefined && s.autostart !== true) {
    throw new UsageError(
      "--autoquit counts from the end of the test --autostart starts: add --autostart (or use --headless)",
    );
  }
  const host = s.webHost!;
  const controller = new WebController(loaded, s, io, s.webLogin !== undefined, workers);
  const server = new WebServer(controller, {
    host,
    port: s.webPort!,
    ...(s.webLogin ? { login: s.webLogin } : {}),
    baselines: new BaselineStore(baselineDir(s.baselineDir, io.env)),
    metrics: () => controller.metricsSource(),
  });
  const metrics = await startMetrics(s, io, () => controller.metricsSource());
  let url: string;
  try {
    url = await server.listen();
  } catch (err) {
    throw new UsageError(
      `cannot serve the web UI on ${host}:${s.webPort}: ${(err as Error).message} (use --web-port, or --headless)`,
    );
  }
  let quit!: () => void;
  const quitting = new Promise<void>((r) => (quit = r));
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      io.stderr.write(`${sig}: quitting${controller.busy ? " after the test stops" : ""}\n`);
      if (controller.busy) controller.stop();
      quit();
    } else {
      io.stderr.write(`${sig}: stopping now\n`);
      controller.abort();
      quit();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Announced only once Ctrl-C is handled: whoever reads the line may send it at once.
  io.stderr.write(`web UI on ${url}\n`);
  if (!isLoopback(host) && !s.webLogin) {
    io.stderr.write(
      `warning: the web UI listens on ${host} without --web-login: anyone who can reach it can start load from this machine\n`,
    );
  }

  try {
    if (s.autostart) {
      try {
        await controller.start({});
      } catch (err) {
        if (err instanceof ApiError) throw new UsageError(err.message);
        throw err;
      }
      if (s.autoquit !== undefined) {
        const seconds = s.autoquit;
        void controller.settled().then(() => setTimeout(quit, seconds * 1000));
      }
    }
    await quitting;
    const last = await controller.settled();
    return last ?? { exitCode: ExitCode.Ok };
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await server.close();
    await metrics?.close?.();
  }
}
