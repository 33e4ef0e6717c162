/** Commander options built from the settings table, and the settings read back from them. */
import { type Command, Option } from "commander";
import {
  flagLabel,
  SETTINGS,
  type Setting,
  type SettingKey,
  type SettingValues,
} from "../testrun/settings.js";

/** What one command shows differently for a shared flag: its help text or a default. */
export interface FlagOverride {
  help?: string;
  default?: unknown;
}

/**
 * Adds the flags of `keys` to `cmd`, in that order, each parsed by the table's parser under its
 * own name. Returns the function that turns the parsed options into settings.
 */
export function addSettingFlags(
  cmd: Command,
  keys: readonly SettingKey[],
  overrides: Partial<Record<SettingKey, FlagOverride>> = {},
): (opts: Record<string, unknown>) => SettingValues {
  const readers: Array<(opts: Record<string, unknown>, out: Record<string, unknown>) => void> = [];
  for (const key of keys) {
    const s = SETTINGS[key] as Setting<unknown>;
    if (!s.flag) throw new Error(`setting ${key} has no flag`);
    const o = overrides[key];
    const opt = new Option(s.flag, o?.help ?? s.help);
    const label = flagLabel(key);
    const takesValue = opt.required || opt.optional;
    if (takesValue) {
      opt.argParser(
        s.many
          ? (v: string, prev: unknown) => [
              ...((prev as unknown[]) ?? []),
              ...(s.parse(v, label) as unknown[]),
            ]
          : (v: string) => s.parse(v, label),
      );
    }
    if (o?.default !== undefined) opt.default(o.default);
    cmd.addOption(opt);
    const attr = opt.attributeName();
    readers.push((opts, out) => {
      const v = opts[attr];
      if (takesValue) {
        if (v !== undefined) out[key] = v;
      } else if (opt.negate) {
        // Commander sets a negatable flag to true when it is absent: only its use counts.
        if (v === false) out[key] = false;
      } else if (v === true) {
        out[key] = s.flagSets ?? true;
      }
    });
  }
  return (opts) => {
    const out: Record<string, unknown> = {};
    for (const read of readers) read(opts, out);
    return out as SettingValues;
  };
}
