// The package's version, read from its package.json.
import { readFileSync } from "node:fs";

// Compiled to dist/src/core/version.js, so the package root is three levels up.
const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

export const VERSION: string = pkg.version;
