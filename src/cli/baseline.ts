import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { compareResults } from "../compare/compare.js";
import { formatComparison } from "../compare/format.js";
import { BaselineStore, baselineDir, checkBaselineName, readResultFile } from "../compare/store.js";
import { parseTolerances } from "../compare/tolerance.js";
import { ExitCode } from "../core/errors.js";
import { formatSummary } from "../outputs/console.js";
import type { RunIo } from "../testrun/testrun.js";

const DIR_HELP = "baseline directory (default $CICADA_BASELINE_DIR, else .cicada/baselines)";

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** `cicada baseline save|list|show|delete` and `cicada compare`. */
export function registerBaselineCommands(program: Command, io: RunIo, setExit: (code: number) => void): void {
  const storeOf = (dir: string | undefined) => new BaselineStore(baselineDir(dir, io.env));
  const out = (s: string) => io.stdout.write(s.endsWith("\n") ? s : `${s}\n`);

  const baseline = program
    .command("baseline")
    .description("keep run results as named baselines to compare later runs against");

  baseline
    .command("save")
    .description("store a JSON result (from cicada run --json) as a named baseline")
    .argument("<result>", "result file")
    .requiredOption("--name <name>", "baseline name: letters, digits, '.', '_' and '-'")
    .option("--force", "overwrite an existing baseline of that name")
    .option("--dir <dir>", DIR_HELP)
    .action((file: string, flags: { name: string; force?: boolean; dir?: string }) => {
      checkBaselineName(flags.name);
      const result = readResultFile(file);
      const path = storeOf(flags.dir).save(flags.name, result, { force: flags.force });
      out(`saved baseline "${flags.name}" to ${path}`);
    });

  baseline
    .command("list")
    .description("list the stored baselines")
    .option("--dir <dir>", DIR_HELP)
    .action((flags: { dir?: string }) => {
      const store = storeOf(flags.dir);
      const items = store.list();
      if (items.length === 0) {
        out(`no baselines in ${store.dir}`);
        return;
      }
      out(
        table(
          ["Name", "Started", "Duration", "Requests", "Version"],
          items.map((b) => [
            b.name,
            b.startedAt,
            `${b.durationSec.toFixed(1)}s`,
            String(b.requests),
            b.version,
          ]),
        ),
      );
    });

  baseline
    .command("show")
    .description("print the summary of a stored baseline")
    .argument("<name>", "baseline name")
    .option("--dir <dir>", DIR_HELP)
    .action((name: string, flags: { dir?: string }) => {
      const store = storeOf(flags.dir);
      const result = store.load(name);
      out(`Baseline "${name}" (${store.pathOf(name)})`);
      out(formatSummary(result));
    });

  baseline
    .command("delete")
    .description("delete a stored baseline")
    .argument("<name>", "baseline name")
    .option("--dir <dir>", DIR_HELP)
    .action((name: string, flags: { dir?: string }) => {
      storeOf(flags.dir).delete(name);
      out(`deleted baseline "${name}"`);
    });

  program
    .command("compare")
    .description("compare two runs (stored baseline names or result files); exit 3 if the second regressed")
    .argument("<baseline>", "baseline name or result file")
    .argument("<current>", "baseline name or result file")
    .option(
      "--tolerance <spec>",
      "relative change allowed before a significant change counts: 15% for all, or p99=20%,error_rate=50% (default 10%)",
    )
    .option("--json <file>", "also write the comparison as JSON to FILE")
    .option("--dir <dir>", DIR_HELP)
    .action((b: string, c: string, flags: { tolerance?: string; json?: string; dir?: string }) => {
      const tolerances = flags.tolerance === undefined ? {} : parseTolerances(flags.tolerance);
      const store = storeOf(flags.dir);
      const comparison = compareResults(store.resolve(b), store.resolve(c), {
        tolerances,
        baselineLabel: b,
        currentLabel: c,
      });
      out(formatComparison(comparison));
      if (flags.json) writeFileSync(flags.json, `${JSON.stringify(comparison, null, 2)}\n`);
      setExit(comparison.verdict === "regression" ? ExitCode.Thresholds : ExitCode.Ok);
    });
}
