/** The config file: `--config FILE`, or cicada.config.* in the working directory. */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import type { CicadaConfig } from "../api/config.js";
import { bundleLoadfile, importBundle } from "../loadfile/bundle.js";
import { readConfigObject } from "./settings.js";

const CONFIG_NAMES = ["cicada.config.ts", "cicada.config.mts", "cicada.config.js", "cicada.config.mjs"];

/** Loads and checks the config file, if there is one; errors name the file and the key. */
export async function loadConfigFile(
  explicit: string | undefined,
): Promise<{ path?: string; config: CicadaConfig }> {
  const name = explicit ?? CONFIG_NAMES.find((n) => existsSync(resolve(n)));
  if (!name) return { config: {} };
  const path = explicit ?? resolve(name);
  const bundle = await bundleLoadfile(path, "config file");
  try {
    const mod = await importBundle(bundle.path, path);
    return { path, config: readConfigObject(mod.default ?? mod.config ?? {}, name) };
  } finally {
    bundle.dispose();
  }
}
