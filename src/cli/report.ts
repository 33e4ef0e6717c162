import { writeFileSync } from "node:fs";
import type { Command } from "commander";
import { readResultDocument } from "../compare/store.js";
import { UsageError } from "../core/errors.js";
import { renderHtmlReport } from "../outputs/html/report.js";
import { renderSweepHtml } from "../outputs/html/sweep.js";
import { sweepToJUnit, toJUnit } from "../outputs/junit.js";
import type { RunIo } from "../testrun/testrun.js";

function write(path: string, flag: string, text: string): void {
  try {
    writeFileSync(path, text);
  } catch (err) {
    throw new UsageError(`cannot write ${flag} ${path}: ${(err as Error).message}`);
  }
}

/**
 * `cicada report result.json --html out.html`: the reports of a saved run or sweep, rendered
 * later by the same code as `run --html` / `sweep --html`; which one, the document's fields say.
 */
export function registerReport(program: Command, io: RunIo): void {
  program
    .command("report")
    .description("render the reports of a saved JSON result (of a run or a sweep)")
    .argument("<result>", "a result file written by cicada run --json or cicada sweep --json")
    .option("--html <file>", "write the self-contained HTML report")
    .option(
      "--junit <file>",
      "write JUnit XML: a run's thresholds, checks and comparison verdicts; a sweep's verdict and levels",
    )
    .action((file: string, flags: { html?: string; junit?: string }) => {
      if (!flags.html && !flags.junit) {
        throw new UsageError("report: nothing to write; pass --html FILE and/or --junit FILE");
      }
      const doc = readResultDocument(file);
      if (flags.html) {
        write(
          flags.html,
          "--html",
          doc.kind === "sweep" ? renderSweepHtml(doc.result) : renderHtmlReport(doc.result),
        );
        io.stderr.write(`HTML report written to ${flags.html}\n`);
      }
      if (flags.junit) {
        write(flags.junit, "--junit", doc.kind === "sweep" ? sweepToJUnit(doc.result) : toJUnit(doc.result));
        io.stderr.write(`JUnit XML written to ${flags.junit}\n`);
      }
    });
}
