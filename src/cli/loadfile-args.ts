// Where `run` and `sweep` find the loadfile and the user class names: their arguments, or the tag lists that took them in.
import { UsageError } from "../core/errors.js";
import { flagLabel, type SettingValues } from "../testrun/settings.js";

/** What tells a loadfile from a user class name or a tag. */
const LOADFILE_EXT = /\.(ts|mts|cts|js|mjs|cjs|tsx|jsx)$/;

const TAG_LISTS = ["tags", "excludeTags"] as const;

/**
 * Sets `front.loadfile` (unless -f gave one) and `front.userClasses` from the command's
 * arguments: a loadfile first, then user class names.
 *
 * -T and -E take several words (`-T a b`, as in Locust), so commander hands them every word up
 * to the next flag: in `-T smoke loadtest.ts MyUser` the loadfile and the class are in the tag
 * list. So when no loadfile came as an argument or with -f, a tag value that looks like a
 * loadfile ends its list: it is the loadfile and the values after it are class names, as the
 * user typed them. Commander merges a repeated flag into one list, so in `-T a loadtest.ts -T b`
 * the `b` is a class name too: every tag goes before the loadfile (or after it, with the loadfile first).
 * A tag that ends like a loadfile stays a tag when the loadfile comes first or with -f.
 */
export function placeLoadfileArgs(front: SettingValues, positional: readonly string[]): void {
  const rest = [...positional];
  if (!front.loadfile && rest.length > 0 && LOADFILE_EXT.test(rest[0]!)) front.loadfile = rest.shift();
  if (!front.loadfile) {
    const found = TAG_LISTS.flatMap((key) => {
      const list = front[key] ?? [];
      const at = list.findIndex((v) => LOADFILE_EXT.test(v));
      return at < 0 ? [] : [{ key, list, at }];
    });
    if (found.length > 1) {
      throw new UsageError(
        `two loadfiles: "${found[0]!.list[found[0]!.at]}" after ${flagLabel(found[0]!.key)} and "${found[1]!.list[found[1]!.at]}" after ${flagLabel(found[1]!.key)}; give one`,
      );
    }
    const f = found[0];
    if (f) {
      const [loadfile, ...classes] = f.list.slice(f.at);
      // `-T loadtest.ts` alone would run every task: the tag the user meant is missing.
      if (f.at === 0) {
        throw new UsageError(`${flagLabel(f.key)}: expected a tag before the loadfile, got "${loadfile}"`);
      }
      front[f.key] = f.list.slice(0, f.at);
      front.loadfile = loadfile;
      rest.unshift(...classes);
    }
  }
  if (rest.length > 0) front.userClasses = rest;
}
