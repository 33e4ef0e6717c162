#!/usr/bin/env node
// The `cicada` command: assembles its fronts (the command line, with the web UI it can serve).
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { main } from "./cli/main.js";
import { serveWebUi } from "./web/serve.js";

function invokedDirectly(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    // npm's bin entry is a symlink; compare real paths.
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  // V8 lets the heap grow to several times its live size between full collections. With
  // 100,000 users that slack is most of the RSS; a smaller growth step keeps it near the live
  // size at no measurable cost in throughput (docs/performance.md). Process-wide: it also
  // applies to worker threads.
  setFlagsFromString("--heap-growing-percent=30");
  const code = await main(
    process.argv.slice(2),
    { stdout: process.stdout, stderr: process.stderr, env: process.env },
    { webUi: serveWebUi },
  );
  process.exit(code);
}
