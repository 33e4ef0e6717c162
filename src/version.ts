import { readFileSync } from "node:fs";

// Compiled to dist/src/version.js, so the package root is two levels up.
const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
  version: string;
};

export const VERSION: string = pkg.version;
