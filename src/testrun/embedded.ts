/**
 * Tests run from inside another program (the programmatic API): from a loadfile, or from classes
 * held in memory, with the settings of the call. Nothing here prints unless its streams do,
 * installs signal handlers or exits; an AbortSignal ends the run with its partial result.
 */
import type { CicadaConfig } from "../api/config.js";
import type { LoadShape } from "../api/shape.js";
import { UsageError } from "../core/errors.js";
import { resolveProcesses } from "../core/parse.js";
import { type Bundle, stopBundler } from "../loadfile/bundle.js";
import { threadsEnded } from "../runner/thread.js";
import { loadConfigFile } from "./config-file.js";
import { fromEnv } from "./settings.js";
import { loadTest, type RunIo, type RunOutcome, TestRun, type TestSource } from "./testrun.js";

export type ShapeClass = new () => LoadShape;

/** Where the test comes from: a loadfile to bundle, or a module of classes already in memory. */
export type EmbeddedSource = TestSource;

export interface EmbeddedTest {
  source: EmbeddedSource;
  /** The caller's settings: they win over every other source. */
  settings: CicadaConfig;
  /** Defaults of this front, under the loadfile's `options` (e.g. one thread). */
  base?: CicadaConfig;
  /** Unless some source sets a spawn rate, start all users at once (not one per second). */
  spawnAtOnce?: boolean;
  /** Refuse a run that nothing would end (no duration, limit, stages, shape, scenarios or signal). */
  requireEnd?: boolean;
  /** A load shape given by the caller; it drives the run. */
  shape?: ShapeClass;
  /** A config file to read; none is looked for otherwise. */
  config?: string;
  /** CICADA_* settings are read from this environment; none otherwise. */
  env?: NodeJS.ProcessEnv;
  io: RunIo;
  signal?: AbortSignal;
}

/** Worker threads import the test from its bundle file; a module in memory has none. */
function checkThreads(label: string, s: CicadaConfig): void {
  const wanted = [
    ["processes", s.processes] as const,
    ...Object.entries(s.scenarios ?? {}).map(
      ([name, sc]) => [`scenarios.${name}.processes`, sc.processes ?? s.processes] as const,
    ),
  ];
  for (const [key, v] of wanted) {
    const n = resolveProcesses(v);
    if (n !== 1) {
      throw new UsageError(
        `${label}: ${key}: ${v} runs users in worker threads, which load the test from a file; ` +
          "classes and tasks given in code run in this thread only. Pass loadfile (a module that " +
          "exports the user classes) to use threads, or leave processes at 1",
      );
    }
  }
}

/**
 * One test from its source to its outcome. Settings merge as defaults < `base` < the loadfile's
 * `options` < the config file < `env` < the caller's. Resolves with the result, also when
 * aborted; throws the CicadaError of a test that cannot start.
 */
export async function runEmbedded(t: EmbeddedTest): Promise<RunOutcome> {
  let bundle: Bundle | undefined;
  try {
    const file = t.config !== undefined ? (await loadConfigFile(t.config)).config : {};
    const env = t.env ? fromEnv(t.env) : {};
    const { loaded, settings: s } = await loadTest(t.source, {
      ...(t.base ? { base: t.base } : {}),
      file,
      env,
      front: { ...t.settings, headless: true },
      ...(t.spawnAtOnce ? { withoutDefaults: ["spawnRate" as const] } : {}),
    });
    bundle = loaded.bundle;
    const loadfile = loaded.loadfile;
    s.spawnRate ??= Math.max(1, s.users ?? 1);
    if (!("loadfile" in t.source)) checkThreads(loadfile, s);
    const shapes = [...(t.shape ? [t.shape] : []), ...loaded.shapes];
    if (t.shape) s.shape = t.shape.name;
    const ends =
      s.runTime !== undefined ||
      s.iterations !== undefined ||
      s.iterationsPerUser !== undefined ||
      s.stages !== undefined ||
      s.scenarios !== undefined ||
      (shapes.length > 0 && s.shape !== null) ||
      t.signal !== undefined;
    if (t.requireEnd && !ends) {
      throw new UsageError(
        `${loadfile}: this run would never end: give duration, iterations, iterationsPerUser, stages, a shape or a signal`,
      );
    }
    const test = await TestRun.create({ ...loaded, shapes, cli: t.settings }, s, t.io);
    const signal = t.signal;
    const onAbort = () => test.abort();
    // Aborted while starting: the runner takes the abort as soon as its workers are ready.
    if (signal?.aborted) test.abort();
    else signal?.addEventListener("abort", onAbort, { once: true });
    try {
      return await test.run();
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  } finally {
    bundle?.dispose();
    // A library call leaves nothing behind: worker threads have ended, and esbuild's service
    // process (kept between builds) is stopped; the next build starts it again.
    await threadsEnded();
    await stopBundler();
  }
}
