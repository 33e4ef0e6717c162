import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { readResultFile } from "../compare/store.js";
import { UsageError } from "../core/errors.js";
import { renderHtmlReport } from "../outputs/html/report.js";
import { toJUnit } from "../outputs/junit.js";
import type { RunIo } from "../testrun/testrun.js";

function write(path: string, flag: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (err) {
    throw new UsageError(`cannot write ${flag} ${path}: ${(err as Error).message}`);
  }
}

/** `cicada report result.json --html out.html`: the report of a saved run, rendered later. */
export function registerReport(program: Command, io: RunIo): void {
  program
    .command("report")
    .description("render the reports of a saved JSON result")
    .argument("<result>", "a result file written by cicada run --json")
    .option("--html <file>", "write the self-contained HTML report")
    .option("--junit <file>", "write thresholds, checks and comparison verdicts as JUnit XML")
    .action((file: string, flags: { html?: string; junit?: string }) => {
      if (!flags.html && !flags.junit) {
        throw new UsageError("report: nothing to write; pass --html FILE and/or --junit FILE");
      }
      const result = readResultFile(file);
      if (flags.html) {
        write(flags.html, "--html", renderHtmlReport(result));
        io.stderr.write(`HTML report written to ${flags.html}\n`);
      }
      if (flags.junit) {
        write(flags.junit, "--junit", toJUnit(result));
        io.stderr.write(`JUnit XML written to ${flags.junit}\n`);
      }
    });
}
