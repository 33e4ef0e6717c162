// `cicada bench FILE`: the named benchmarks of a bench file, timed round after round.
import type { Command } from "commander";
import { UsageError } from "../core/errors.js";
import { formatBenchmarks } from "../outputs/benchmark.js";
import { checkWritable, jsonText, resultFile } from "../outputs/sink.js";
import {
  type BenchmarkOptions,
  BenchmarkSession,
  loadBenchFile,
  readBenchmarkOptions,
} from "../testrun/benchmark.js";
import { int, positiveSeconds, SETTINGS } from "../testrun/settings.js";
import type { RunIo } from "../testrun/testrun.js";

interface BenchFlags extends BenchmarkOptions {
  host?: string;
  json?: string;
}

/**
 * Runs the benchmarks one after the other and prints pytest-benchmark's table; `--json` saves
 * them as a result (one endpoint per benchmark) that `cicada compare` reads. The command line's
 * settings win over each benchmark's own. Ctrl-C stops, and what was measured is still written.
 */
export function registerBench(program: Command, io: RunIo, setExit: (code: number) => void): void {
  program
    .command("bench")
    .description("time the named functions of a bench file, like pytest-benchmark; --json for cicada compare")
    .argument("<file>", 'bench file: export default { "GET /health": async ({ host }) => { ... } }')
    .argument("[names...]", "run only these benchmarks (default all)")
    .option("-H, --host <url>", "passed to each function as ctx.host", (v) =>
      SETTINGS.host.parse(v, "-H/--host"),
    )
    .option("-n, --iterations <n>", "measured rounds of each benchmark", (v) => int(1)(v, "-n/--iterations"))
    .option("-d, --duration <duration>", "measure each benchmark this long (default 1s)", (v) => {
      positiveSeconds(v, "-d/--duration");
      return v;
    })
    .option("-w, --warmup <n>", "unmeasured rounds first (default 0)", (v) => int(0)(v, "-w/--warmup"))
    .option("-c, --concurrency <n>", "rounds in flight at once (default 1)", (v) =>
      int(1)(v, "-c/--concurrency"),
    )
    .option("--json <file>", "write the result to FILE (cicada compare A B reads two of them)")
    .action(async (file: string, names: string[], flags: BenchFlags) => {
      if (flags.json) checkWritable(flags.json, "--json");
      let specs = await loadBenchFile(file);
      if (names.length > 0) {
        const known = specs.map((s) => s.name);
        const missing = names.filter((n) => !known.includes(n));
        if (missing.length > 0) {
          throw new UsageError(
            `no benchmark ${missing.map((n) => `"${n}"`).join(", ")} in ${file}; it has: ${known.map((n) => `"${n}"`).join(", ")}`,
          );
        }
        specs = names.map((n) => specs.find((s) => s.name === n)!);
      }
      const given = readBenchmarkOptions(flags as Record<string, unknown>, "");
      const session = new BenchmarkSession({ file, ...(flags.host ? { host: flags.host } : {}) });
      const onSignal = (sig: NodeJS.Signals) => {
        io.stderr.write(`${sig}: stopping; the rounds measured so far are kept\n`);
        session.stop();
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        for (const [i, spec] of specs.entries()) {
          if (session.aborted) break;
          io.stderr.write(`bench: ${spec.name} (${i + 1}/${specs.length})\n`);
          await session.run({ ...spec, ...given });
        }
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      const result = session.result();
      io.stdout.write(formatBenchmarks(session.results));
      if (flags.json) {
        resultFile("--json", flags.json, jsonText).result?.(result);
        io.stderr.write(`result written to ${flags.json}\n`);
      }
      setExit(result.exitCode);
    });
}
