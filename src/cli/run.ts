import { writeFileSync } from "node:fs";
import type { CicadaConfig } from "../api/config.js";
import { LoadShape } from "../api/shape.js";
import { HttpUser } from "../api/user.js";
import { bundleLoadfile, importBundle } from "../loadfile/bundle.js";
import { compileUserClasses } from "../loadfile/inspect.js";
import { formatSummary, LiveView } from "../outputs/console.js";
import { buildResult, type RunResult } from "../outputs/result.js";
import { Coordinator } from "../runner/coordinator.js";
import type { RunPlan } from "../runner/plan.js";
import { parseStages, stagesPeak } from "../runner/stages.js";
import { CicadaError, ExitCode } from "./errors.js";
import { fromEnv, loadConfigFile, mergeConfigs, parseDuration, resolveProcesses } from "./options.js";
import { checkReachable } from "./preflight.js";

export interface RunIo {
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
  env: NodeJS.ProcessEnv;
}

export interface RunOutcome {
  exitCode: number;
  result: RunResult;
}

/**
 * `cicada run`: settings are merged as defaults < loadfile `options` < config file < CICADA_*
 * env < command line; then the loadfile is bundled once and the coordinator runs it.
 */
export async function executeRun(cli: CicadaConfig & { config?: string }, io: RunIo): Promise<RunOutcome> {
  const { config: configPath, ...cliSettings } = cli;
  const file = await loadConfigFile(configPath);
  const env = fromEnv(io.env);
  const early = mergeConfigs(file.config, env, cliSettings);
  const loadfile = early.loadfile ?? "loadtest.ts";

  const bundle = await bundleLoadfile(loadfile);
  try {
    const mod = await importBundle(bundle.path, loadfile);
    const fromLoadfile = (mod.options ?? {}) as CicadaConfig;
    const s = mergeConfigs(
      { users: 1, spawnRate: 1, stopTimeout: 0, exitCodeOnError: 1 },
      fromLoadfile,
      file.config,
      env,
      cliSettings,
    );
    const plan: RunPlan = {
      loadfile,
      userClasses: s.userClasses ?? [],
      host: s.host,
      users: s.users!,
      spawnRate: s.spawnRate!,
      runTimeSec: s.runTime === undefined ? null : parseDuration(s.runTime),
      iterations: s.iterations ?? null,
      iterationsPerUser: s.iterationsPerUser ?? null,
      stopTimeoutSec:
        typeof s.stopTimeout === "number" ? s.stopTimeout : parseDuration(s.stopTimeout!, "--stop-timeout"),
      tags: s.tags ?? [],
      excludeTags: s.excludeTags ?? [],
      verifyTls: s.verifyTls ?? true,
      processes: resolveProcesses(s.processes),
      stages: s.stages === undefined ? null : parseStages(s.stages),
      rate: s.rate ?? null,
      maxUsers: 0,
      maxDelaySec: s.maxDelay === undefined ? 10 : parseDuration(s.maxDelay, "--max-delay"),
      shape: null,
    };
    // Open model: the pool may grow to --max-users, by default enough for one second of
    // arrivals at the peak rate, and at least -u.
    const peakRate = plan.stages && plan.rate !== null ? stagesPeak(plan.stages) : (plan.rate ?? 0);
    plan.maxUsers = s.maxUsers ?? Math.max(s.users ?? 1, Math.ceil(peakRate), 1);
    if (plan.stages && plan.rate === null) {
      // The shape sets the user count over time; -u is its peak, for the views.
      plan.users = Math.max(1, stagesPeak(plan.stages));
    }
    if (plan.rate !== null) plan.users = plan.maxUsers;
    // A LoadShape exported by the loadfile drives the run (like Locust's LoadTestShape).
    const shapes = Object.values(mod).filter(
      (v): v is new () => LoadShape => typeof v === "function" && v.prototype instanceof LoadShape,
    );
    if (shapes.length > 1) {
      throw new CicadaError(`${loadfile}: more than one LoadShape exported; export one`, ExitCode.Usage);
    }
    const shape = shapes[0] ? new shapes[0]() : undefined;
    if (shape) {
      plan.shape = shapes[0]!.name;
      // The shape decides how many users; every worker may get some.
      plan.users = Math.max(plan.users, plan.processes, plan.maxUsers);
    }
    if (plan.host !== undefined && !/^https?:\/\/[^/]/i.test(plan.host)) {
      throw new CicadaError(
        `-H/--host: expected an http:// or https:// URL, got "${plan.host}"`,
        ExitCode.Usage,
      );
    }
    // Same checks the workers will make, but here they fail before anything starts.
    const classes = compileUserClasses(mod, {
      loadfile,
      userClasses: plan.userClasses,
      include: plan.tags,
      exclude: plan.excludeTags,
    });
    // With only fixedCount classes there are never more users than their sum, whatever -u says;
    // a worker beyond that would sit idle on an iteration share nobody uses.
    if (!classes.some((c) => c.fixedCount <= 0 && c.weight > 0)) {
      const fixed = classes.reduce((n, c) => n + c.fixedCount, 0);
      plan.processes = Math.max(1, Math.min(plan.processes, fixed));
    }
    const hosts = new Set<string>();
    for (const c of classes) {
      const host = plan.host ?? c.host;
      if (host) hosts.add(host);
      else if (c.cls.prototype instanceof HttpUser) {
        throw new CicadaError(
          `no host for ${c.name}: pass -H/--host or set static host on the class`,
          ExitCode.Usage,
        );
      }
    }
    if (s.preflight !== false) for (const h of hosts) await checkReachable(h);

    const view = s.onlySummary
      ? undefined
      : new LiveView(io.stderr.isTTY || s.json === "-" ? io.stderr : io.stdout);
    const coordinator = new Coordinator(
      plan,
      bundle,
      {
        onTick: (c) => view?.tick(c),
        onNotice: (m) => (view ? view.notice(m) : io.stderr.write(`${m}\n`)),
      },
      shape,
    );

    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals++;
      if (signals === 1) {
        const msg = `${sig}: stopping (users get ${plan.stopTimeoutSec}s to finish; again to stop at once)`;
        view ? view.notice(msg) : io.stderr.write(`${msg}\n`);
        coordinator.stop("signal");
      } else {
        io.stderr.write(`${sig}: stopping now\n`);
        coordinator.abort();
      }
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    try {
      await coordinator.run();
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      view?.clear();
    }

    const t = coordinator.stats.total;
    let exitCode: number = ExitCode.Ok;
    if (coordinator.fatalError) exitCode = ExitCode.Internal;
    else if (signals >= 2) exitCode = ExitCode.Interrupted;
    else if (t.failures > 0 || coordinator.stats.exceptions.size > 0 || coordinator.lostWorkers > 0) {
      // A worker thread that died took its users and its last interval with it: the run is
      // incomplete, like one where user code threw.
      exitCode = s.exitCodeOnError!;
    }
    const result = buildResult(coordinator, exitCode);
    const jsonToStdout = s.json === "-";
    (jsonToStdout ? io.stderr : io.stdout).write(formatSummary(result));
    if (s.json) {
      const text = `${JSON.stringify(result, null, 2)}\n`;
      if (jsonToStdout) io.stdout.write(text);
      else {
        try {
          writeFileSync(s.json, text);
        } catch (err) {
          throw new CicadaError(`cannot write --json ${s.json}: ${(err as Error).message}`, ExitCode.Usage);
        }
      }
    }
    return { exitCode, result };
  } finally {
    bundle.dispose();
  }
}
