import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type * as esbuild from "esbuild";
import * as api from "../api/index.js";
import { UsageError } from "../core/errors.js";
import { makeTempDir, removeTempDir } from "../core/tempdir.js";

/** Where the loaded loadfile finds the Cicada API: the runtime's own instance of it. */
export const API_GLOBAL = Symbol.for("cicada.api");

export interface Bundle {
  /** The loadfile as the user named it (for messages). */
  readonly loadfile: string;
  /** Absolute path of the bundled ESM file, or the key of a module held in memory (`memoryBundle`). */
  readonly path: string;
  /** Removes the bundle's temporary directory. */
  dispose(): void;
}

/**
 * The loadfile's `import ... from "cicada-load"` must reach the very classes the runtime checks
 * with `instanceof`, even if the user's node_modules holds another copy, and even when the
 * bundle is shipped to another thread or machine. So both names become one virtual module that
 * reads the API from a global the runtime sets before importing the bundle.
 */
const apiPlugin: esbuild.Plugin = {
  name: "cicada-api",
  setup(build) {
    build.onResolve({ filter: /^cicada(-load)?$/ }, () => ({ path: "cicada-load", namespace: "cicada-api" }));
    build.onLoad({ filter: /.*/, namespace: "cicada-api" }, () => {
      const names = Object.keys(api).filter((n) => /^[A-Za-z_$][\w$]*$/.test(n));
      const lines = [
        `const api = globalThis[Symbol.for("cicada.api")];`,
        `if (!api) throw new Error("this bundle must be loaded by cicada");`,
        ...names.map((n) => `export const ${n} = api.${n};`),
      ];
      return { contents: lines.join("\n"), loader: "js" };
    });
  },
};

/** esbuild's text, with the virtual module named as the user wrote it. */
function errorText(m: esbuild.Message): string {
  const text = m.text.replace('"cicada-api:cicada-load"', '"cicada-load"');
  // The package's entry point has more than loadfiles get: say why the name is missing.
  return /for import "(run|benchmark)"$/.test(text)
    ? `${text} (run() and benchmark() are for programs and test suites; a loadfile exports user classes)`
    : text;
}

function formatLocation(loadfile: string, m: esbuild.Message): string {
  const loc = m.location;
  if (!loc) return `${loadfile}: error: ${errorText(m)}`;
  const file = loc.file ? relative(process.cwd(), resolve(loc.file)) || loc.file : loadfile;
  return `${file}:${loc.line}:${loc.column + 1}: error: ${errorText(m)}`;
}

/** Builds in progress, so that `stopBundler` never cuts one off. */
let building = 0;
let esbuildLoaded = false;

/**
 * Stops esbuild's service process, unless a build is running. esbuild keeps it between builds
 * and starts it again for the next one, so this only matters to a process that must be left
 * with nothing open: the programmatic API, once its run is over.
 */
export async function stopBundler(): Promise<void> {
  if (!esbuildLoaded || building > 0) return;
  const { stop } = await import("esbuild");
  // A build may have started while esbuild was being looked up.
  if (building === 0) await stop();
}

/** Modules handed over in memory (user classes defined beside a programmatic run), by key. */
const inMemory = new Map<string, Record<string, unknown>>();

/**
 * A bundle that is no file: `importBundle` in this thread returns `mod` itself. Worker threads
 * and other machines cannot import it; the programmatic API only runs such modules in-process.
 */
export function memoryBundle(loadfile: string, mod: Record<string, unknown>): Bundle {
  const path = `memory:${randomBytes(8).toString("hex")}`;
  inMemory.set(path, mod);
  return { loadfile, path, dispose: () => inMemory.delete(path) };
}

/**
 * Bundles a loadfile (TypeScript or JavaScript, with its local imports and npm packages)
 * into one ESM file. Done once per run; workers import the result.
 */
export async function bundleLoadfile(loadfile: string, kind = "loadfile"): Promise<Bundle> {
  const abs = resolve(loadfile);
  if (!existsSync(abs) || !statSync(abs).isFile()) {
    throw new UsageError(`${kind} not found: ${loadfile}`);
  }
  const dir = makeTempDir("");
  const out = join(dir, "loadfile.mjs");
  building++;
  try {
    // Loaded here, not at module load: worker threads import this module but never bundle.
    const { build } = await import("esbuild");
    esbuildLoaded = true;
    await build({
      entryPoints: [abs],
      outfile: out,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      keepNames: true,
      sourcemap: "inline",
      sourcesContent: false,
      logLevel: "silent",
      plugins: [apiPlugin],
      // CommonJS packages inside an ESM bundle still call require(); give them one that
      // resolves from the loadfile's folder, and keep import.meta.url pointing at the loadfile.
      banner: {
        js: `import { createRequire as __cicadaCreateRequire } from "node:module";\nconst require = __cicadaCreateRequire(${JSON.stringify(abs)});`,
      },
      define: { "import.meta.url": JSON.stringify(pathToFileURL(abs).href) },
    });
  } catch (err) {
    removeTempDir(dir);
    const failure = err as esbuild.BuildFailure;
    if (Array.isArray(failure.errors) && failure.errors.length > 0) {
      const first = failure.errors[0]!;
      const more = failure.errors.length > 1 ? ` (and ${failure.errors.length - 1} more errors)` : "";
      throw new UsageError(formatLocation(loadfile, first) + more);
    }
    throw new UsageError(`${loadfile}: cannot bundle: ${(err as Error).message}`);
  } finally {
    building--;
  }
  return {
    loadfile,
    path: out,
    dispose: () => removeTempDir(dir),
  };
}

/** Makes the API reachable for bundles; call before importing one. */
export function installApiGlobal(): void {
  (globalThis as Record<symbol, unknown>)[API_GLOBAL] = api;
}

/**
 * Imports a bundle. A throw at the loadfile's top level becomes a CicadaError that points at
 * the loadfile line, found through the inline source map.
 */
export async function importBundle(bundlePath: string, loadfile: string): Promise<Record<string, unknown>> {
  const held = inMemory.get(bundlePath);
  if (held) return held;
  installApiGlobal();
  process.setSourceMapsEnabled(true);
  try {
    return (await import(pathToFileURL(bundlePath).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as Error;
    const where = locateInStack(e.stack ?? "", loadfile);
    throw new UsageError(`${where ?? loadfile}: error: loading failed: ${e.name}: ${e.message}`);
  }
}

function locateInStack(stack: string, loadfile: string): string | undefined {
  const abs = resolve(loadfile);
  const base = dirname(abs);
  for (const m of stack.matchAll(/\(?((?:file:\/\/)?\/[^\s():]+):(\d+):(\d+)\)?/g)) {
    const file = m[1]!.replace(/^file:\/\//, "");
    if (file.startsWith(base) && !file.includes("node_modules")) {
      return `${relative(process.cwd(), file) || file}:${m[2]}:${m[3]}`;
    }
  }
  return undefined;
}
