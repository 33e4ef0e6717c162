// `cicada run` in the terminal: headless runs with their live view and Ctrl-C, and the master
// of remote workers; the web UI comes in from the `cicada` command.
import type { CicadaConfig } from "../api/config.js";
import { Interrupted, UsageError, WorkersUnreachable } from "../core/errors.js";
import { isLoopback } from "../core/http-guard.js";
import { LiveView } from "../outputs/console.js";
import type { RemoteWorkerSource } from "../runner/coordinator.js";
import { readPem, resolveToken } from "../runner/handshake.js";
import type { MasterSecurity } from "../runner/remote.js";
import { SETTINGS } from "../testrun/settings.js";
import {
  type LoadedLoadfile,
  type RunIo,
  type RunOutcome,
  startMetrics,
  TestRun,
  type WebUiFront,
  withLoadedTest,
} from "../testrun/testrun.js";

/**
 * `cicada run`: the loadfile runs headless in the terminal, as the master of remote workers, or
 * under the web UI, which the `cicada` command hands in (the CLI does not import the web front).
 */
export async function executeRun(
  cli: CicadaConfig & { config?: string },
  io: RunIo,
  webUi?: WebUiFront,
): Promise<RunOutcome> {
  return withLoadedTest(cli, io, async (loaded, s) => {
    if (s.master) {
      if (s.headless !== true && !webUi) {
        throw new UsageError("this build of cicada has no web UI: add --headless");
      }
      return await runMaster(loaded, s, io, webUi);
    }
    if (s.headless !== true) {
      if (!webUi) throw new UsageError("this build of cicada has no web UI: add --headless");
      return await webUi(loaded, s, io);
    }
    return await runHeadless(loaded, s, io);
  });
}

/**
 * `--master`: headless, it waits for `--expect-workers` workers (`cicada worker`) to connect, then
 * runs the test with the users on them, as a headless run; with the web UI, each test started
 * there runs on the workers connected at that moment.
 */
async function runMaster(
  loaded: LoadedLoadfile,
  s: CicadaConfig,
  io: RunIo,
  webUi: WebUiFront | undefined,
): Promise<RunOutcome> {
  const { RemoteWorkers } = await import("../runner/remote.js");
  const expected = s.expectWorkers!;
  const security = masterSecurity(s);
  let pool: InstanceType<typeof RemoteWorkers>;
  try {
    pool = new RemoteWorkers(s.masterBindHost!, s.masterBindPort!, (m) => io.stderr.write(`${m}\n`), {
      ...security,
      heartbeatTimeoutSec: s.heartbeatTimeout ?? SETTINGS.heartbeatTimeout.default!,
    });
  } catch (err) {
    // Only the TLS context can fail here: a key that does not parse or match its certificate.
    throw new UsageError(`--tls-cert ${s.tlsCert} / --tls-key ${s.tlsKey}: ${(err as Error).message}`);
  }
  let address: string;
  try {
    address = await pool.listen();
  } catch (err) {
    throw new UsageError(`--master: cannot listen: ${(err as Error).message}`);
  }
  let cancel!: (err: Error) => void;
  const cancelled = new Promise<never>((_, reject) => (cancel = reject));
  const onSignal = () => cancel(new Interrupted("interrupted while waiting for workers"));
  try {
    const waiting =
      s.headless === true ? `waiting for ${expected} worker(s)` : "workers join as they connect";
    io.stderr.write(
      `master listening on ${address}${security.tls ? " (TLS)" : ""}; ${waiting}${security.token ? " that know the token" : ""}\n`,
    );
    if (!security.tls && !isLoopback(s.masterBindHost!)) {
      io.stderr.write(
        "warning: workers connect without TLS: the loadfile bundle (and any secret in it) and the figures cross the network in clear text; add --tls-cert and --tls-key on untrusted networks\n",
      );
    }
    // The web UI starts each test on the workers connected then; it handles Ctrl-C itself.
    if (s.headless !== true) return await webUi!(loaded, s, io, pool);
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      await Promise.race([
        pool.waitFor(expected, s.expectWorkersMaxWait).catch((err: Error) => {
          throw new WorkersUnreachable(`--expect-workers: ${err.message}`);
        }),
        cancelled,
      ]);
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    return await runHeadless(loaded, { ...s, processes: expected }, io, pool);
  } finally {
    await pool.close();
  }
}

/**
 * Who may become a worker. Beyond loopback a token is required: any peer that can reach the port
 * would otherwise get the loadfile (and its secrets) and a share of the users.
 */
function masterSecurity(s: CicadaConfig): MasterSecurity {
  const token = resolveToken(s, SETTINGS.token.parse);
  if (token === undefined && !isLoopback(s.masterBindHost!)) {
    throw new UsageError(
      `--master-bind-host ${s.masterBindHost} lets other machines connect, so workers must prove they know a shared secret: add --token (or CICADA_TOKEN, or --token-file FILE), e.g. from openssl rand -hex 32, and give the workers the same; or bind to 127.0.0.1`,
    );
  }
  if ((s.tlsCert === undefined) !== (s.tlsKey === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together: give both, or neither");
  }
  return {
    ...(token !== undefined ? { token } : {}),
    ...(s.tlsCert !== undefined && s.tlsKey !== undefined
      ? { tls: { cert: readPem("--tls-cert", s.tlsCert), key: readPem("--tls-key", s.tlsKey) } }
      : {}),
    handshakeTimeoutSec: s.handshakeTimeout ?? SETTINGS.handshakeTimeout.default!,
  };
}

/** One test from start to outputs, with the live view and Ctrl-C handling of the terminal. */
async function runHeadless(
  loaded: LoadedLoadfile,
  s: CicadaConfig,
  io: RunIo,
  remote?: RemoteWorkerSource,
): Promise<RunOutcome> {
  const view = s.onlySummary
    ? undefined
    : new LiveView(io.stderr.isTTY || s.json === "-" ? io.stderr : io.stdout);
  const test = await TestRun.create(loaded, s, io, { view, ...(remote ? { remote } : {}) });
  const metrics = await startMetrics(s, io, () => test.metricsSource());
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      const msg = `${sig}: stopping (users get ${test.stopTimeoutSec}s to finish; again to stop at once)`;
      view ? view.notice(msg) : io.stderr.write(`${msg}\n`);
      test.stop("signal");
    } else {
      io.stderr.write(`${sig}: stopping now\n`);
      test.abort();
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await test.run();
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    await metrics?.close?.();
  }
}
