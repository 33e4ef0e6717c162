// `cicada sweep LOADFILE`: the test at one load level after another, with the table, the knee and the capacity.
import type { Command } from "commander";
import { formatSweep } from "../outputs/sweep.js";
import { flagLabel, SETTINGS, type SettingKey, type SettingValues, seconds } from "../testrun/settings.js";
import {
  checkSweepOutputs,
  runSweep,
  SWEEP_SETTINGS,
  type SweepControl,
  sweepPlan,
  writeSweepOutputs,
} from "../testrun/sweep.js";
import { type RunIo, withLoadedTest } from "../testrun/testrun.js";
import { addSettingFlags } from "./flags.js";
import { placeLoadfileArgs } from "./loadfile-args.js";

/** The flags of `run` a sweep takes: what is tested and how, and where the outputs go. */
const SHARED: SettingKey[] = [
  "loadfile",
  "host",
  "tags",
  "excludeTags",
  "stopTimeout",
  "json",
  "csv",
  "html",
  "junit",
  "onlySummary",
  "config",
  "verifyTls",
  "httpEngine",
  "preflight",
  "processes",
  "maxUsers",
  "maxDelay",
  "acceptStatus",
];

export const flagName = (key: string): string =>
  key in SETTINGS ? flagLabel(key as SettingKey) : `--${key}`;

export function registerSweep(program: Command, io: RunIo, setExit: (code: number) => void): void {
  const cmd = program
    .command("sweep")
    .description("run the loadfile at one load level after another and find the knee (docs/sweep.md)")
    .argument("[loadfile-and-classes...]", "loadfile, then user class names to run (default: all)");
  const sweepFlags = addSettingFlags(cmd, [...SWEEP_SETTINGS]);
  cmd
    .option("--warmup <duration>", "unmeasured time at the start of each level (default 5s)", (v) => {
      seconds(v, "--warmup");
      return v;
    })
    .option(
      "--slo <bounds>",
      'the SLO each level is checked against at p95, e.g. "ttft<500ms,tpot<50ms,e2el<10s"; exit 3 when no level meets it',
    );
  const sharedFlags = addSettingFlags(cmd, SHARED, {
    maxUsers: {
      help: "with --rates: most users the pool may grow to; with --rates auto: users of the throughput run (default 100)",
    },
    json: {
      help: "write the sweep's JSON (levels, knee, capacity; each level's full result) to FILE (- for stdout)",
    },
    csv: { help: "write PREFIX_sweep.csv: one row per level" },
    html: { help: "write the sweep's HTML report: the throughput–latency curve and the levels" },
    onlySummary: { help: "no progress lines; print only the table" },
  });
  cmd.action(async (positional: string[], opts: Record<string, unknown>) => {
    const front: SettingValues = { ...sharedFlags(opts), ...sweepFlags(opts) };
    placeLoadfileArgs(front, positional);
    const extra = {
      ...(opts.warmup !== undefined ? { warmup: opts.warmup as string } : {}),
      ...(opts.slo !== undefined ? { slo: opts.slo as string } : {}),
    };
    const code = await withLoadedTest(front, io, async (loaded, s) => {
      const plan = sweepPlan(s, extra, flagName);
      checkSweepOutputs(s);
      const out = s.json === "-" ? io.stderr : io.stdout;
      let control: SweepControl | undefined;
      const onSignal = (sig: NodeJS.Signals) => {
        io.stderr.write(`${sig}: stopping the sweep; the levels measured so far are kept\n`);
        control?.stop();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const result = await runSweep(loaded, s, plan, io, {
          onControl: (c) => {
            control = c;
          },
          ...(s.onlySummary ? {} : { onProgress: (line: string) => io.stderr.write(`${line}\n`) }),
        });
        out.write(formatSweep(result));
        for (const f of writeSweepOutputs(result, s, io)) io.stderr.write(`written: ${f}\n`);
        return result.exitCode;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    });
    setExit(code);
  });
}
