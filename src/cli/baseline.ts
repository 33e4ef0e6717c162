import type { Command } from "commander";
import type { RunIo } from "./run.js";

/** `cicada baseline save|list|show` and `cicada compare`. */
export function registerBaselineCommands(
  _program: Command,
  _io: RunIo,
  _setExit: (code: number) => void,
): void {}
