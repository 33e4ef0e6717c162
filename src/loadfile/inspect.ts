import { collectTasks, filterTasks, type TagFilter, type TaskDef, taskSetTasks } from "../api/tasks.js";
import { HttpUser, isUserClass, User, type UserClass } from "../api/user.js";
import type { WaitTime } from "../api/wait.js";
import { UsageError } from "../core/errors.js";
import type { HttpEngine } from "../protocols/http/session.js";

/** A user class ready to run: its tasks already filtered by tags. */
export interface CompiledClass {
  readonly name: string;
  readonly cls: UserClass;
  readonly weight: number;
  readonly fixedCount: number;
  readonly host: string | undefined;
  readonly waitTime: WaitTime | undefined;
  readonly tasks: readonly TaskDef[];
}

/** The exported, non-abstract user classes of a loaded loadfile module, in export order. */
export function findUserClasses(mod: Record<string, unknown>): UserClass[] {
  const seen = new Set<unknown>();
  const out: UserClass[] = [];
  for (const value of Object.values(mod)) {
    if (!isUserClass(value) || seen.has(value) || value === (HttpUser as unknown)) continue;
    seen.add(value);
    if (Object.hasOwn(value, "abstract") && value.abstract) continue;
    out.push(value);
  }
  return out;
}

export interface CompileOptions extends TagFilter {
  /** Class names picked on the command line; empty means all. */
  readonly userClasses?: readonly string[];
  /** Shown in errors. */
  readonly loadfile: string;
}

/** The classes picked on the command line (all when none are), in that order; exit 2 for a name not exported. */
function pickUserClasses(mod: Record<string, unknown>, opts: CompileOptions): UserClass[] {
  const all = findUserClasses(mod);
  if (all.length === 0) {
    throw new UsageError(
      `${opts.loadfile}:1:1: error: no user class exported (export a class that extends User or HttpUser)`,
    );
  }
  let picked = all;
  if (opts.userClasses && opts.userClasses.length > 0) {
    const byName = new Map(all.map((c) => [c.name, c]));
    const unknown = opts.userClasses.filter((n) => !byName.has(n));
    if (unknown.length > 0) {
      throw new UsageError(
        `unknown user class ${unknown.map((n) => JSON.stringify(n)).join(", ")} in ${opts.loadfile}; it exports: ${all.map((c) => c.name).join(", ")}`,
      );
    }
    picked = opts.userClasses.map((n) => byName.get(n)!);
  }
  return picked;
}

/**
 * Picks and checks the classes to run. Errors here are the user's to fix, so they are
 * CicadaErrors with exit code 2 and a message naming the loadfile.
 */
export function compileUserClasses(mod: Record<string, unknown>, opts: CompileOptions): CompiledClass[] {
  const picked = pickUserClasses(mod, opts);
  const filtered = (opts.include?.length ?? 0) > 0 || (opts.exclude?.length ?? 0) > 0;
  const compiled: CompiledClass[] = [];
  for (const cls of picked) {
    for (const [key, ok] of [
      ["weight", Number.isInteger(cls.weight) && cls.weight >= 0],
      ["fixedCount", Number.isInteger(cls.fixedCount) && cls.fixedCount >= 0],
    ] as const) {
      if (!ok) {
        throw new UsageError(`${opts.loadfile}: ${cls.name}.${key} must be a non-negative integer`);
      }
    }
    if (cls.waitTime !== undefined && typeof cls.waitTime !== "function") {
      throw new UsageError(
        `${opts.loadfile}: ${cls.name}.waitTime must be a wait-time function such as between(1, 3)`,
      );
    }
    const tasks = filterTasks(collectTasks(cls, User.prototype), opts);
    if (tasks.length === 0) {
      // Like Locust: a class left without tasks by the tag filter simply does not run, but a
      // class that has no tasks at all is a mistake worth stopping for.
      if (filtered) continue;
      throw new UsageError(
        `${opts.loadfile}: ${cls.name} has no tasks (decorate methods with @task or set static tasks)`,
      );
    }
    compiled.push({
      name: cls.name,
      cls,
      weight: cls.weight,
      fixedCount: cls.fixedCount,
      host: cls.host,
      waitTime: cls.waitTime,
      tasks,
    });
  }
  if (compiled.length === 0) {
    throw new UsageError(
      filtered
        ? `no task of ${picked.map((c) => c.name).join(", ")} matches --tags/--exclude-tags`
        : `${opts.loadfile}: ${picked.map((c) => c.name).join(", ")} ${picked.length === 1 ? "has" : "have"} no tasks (decorate methods with @task or set static tasks)`,
    );
  }
  return compiled;
}

/** What decides the HTTP engine of every class of a run, as far as it is known before the run. */
export interface EngineChoice {
  /** The run's --http-engine (CICADA_HTTP_ENGINE, `httpEngine`), when given: it wins over each class's. */
  readonly engine?: HttpEngine;
  /** How the user gave it, for messages, e.g. `--http-engine undici`. */
  readonly source?: string;
  /**
   * The proxy variable that makes "auto" pick undici. Absent when none is set, and for remote
   * workers, whose own environment decides.
   */
  readonly proxyVariable?: string;
}

/**
 * The warning for an HttpUser class whose `sourceAddresses` will be ignored because it runs on
 * undici, or undefined. Said once at plan time: undici binds no source address per connection,
 * and a run whose connections all leave from the default one is not the run asked for.
 * (`sharedConnections` works on both engines.) "auto" that falls back to undici for an
 * HTTP/2-only server is decided per connection, later.
 */
export function fastOnlyWarning(c: CompiledClass, choice: EngineChoice): string | undefined {
  if (!(c.cls.prototype instanceof HttpUser)) return undefined;
  const cls = c.cls as unknown as typeof HttpUser;
  const addresses = Array.isArray(cls.sourceAddresses) ? cls.sourceAddresses : [];
  if (addresses.length === 0) return undefined;
  // The same rule as the user's session: the run's engine wins over the class's.
  const engine = choice.engine ?? cls.engine;
  let why: string;
  if (engine === "undici") {
    why =
      choice.engine !== undefined
        ? (choice.source ?? `--http-engine undici`)
        : `its static engine = "undici"`;
  } else if (engine === "auto" && choice.proxyVariable !== undefined) {
    why = `engine "auto" picks undici because ${choice.proxyVariable} is set`;
  } else {
    return undefined;
  }
  return `warning: ${c.name}.sourceAddresses = ${listOf(addresses)} is ignored on the undici engine (${why}): connections go out from the default source address; the setting needs the fast engine`;
}

/** A short JSON list for a message: the first few entries of a long one, and how many in all. */
function listOf(items: readonly unknown[]): string {
  const shown = items.slice(0, 3).map((x) => JSON.stringify(x));
  return `[${shown.join(", ")}${items.length > 3 ? `, … (${items.length} in all)` : ""}]`;
}

/** Every tag of these tasks and of the tasks of their task sets, nested ones included. */
function tagsOf(tasks: readonly TaskDef[], into: Set<string>, seen = new Set<unknown>()): Set<string> {
  for (const t of tasks) {
    for (const x of t.tags) into.add(x);
    if (t.taskSet && !seen.has(t.taskSet)) {
      seen.add(t.taskSet);
      tagsOf(taskSetTasks(t.taskSet), into, seen);
    }
  }
  return into;
}

/**
 * Warnings for `--tags`/`--exclude-tags` values that no task of the picked classes has: a typo
 * beside a tag that matches (`-T smoke,smoek`) would otherwise run less than asked, silently.
 * (When no tag matches at all, `compileUserClasses` stops the run instead.)
 */
export function unknownTagWarnings(mod: Record<string, unknown>, opts: CompileOptions): string[] {
  const classes = pickUserClasses(mod, opts);
  const known = new Set<string>();
  for (const cls of classes) tagsOf(collectTasks(cls, User.prototype), known);
  const out: string[] = [];
  for (const [flag, list] of [
    ["--tags", opts.include],
    ["--exclude-tags", opts.exclude],
  ] as const) {
    const unknown = [...new Set(list ?? [])].filter((t) => !known.has(t));
    if (unknown.length === 0) continue;
    const names = unknown.map((t) => JSON.stringify(t)).join(", ");
    const have =
      known.size > 0 ? `; the tags there are: ${[...known].sort().join(", ")}` : "; no task has a tag";
    out.push(
      `warning: ${flag} ${names}: no task of ${classes.map((c) => c.name).join(", ")} has ${unknown.length === 1 ? "this tag" : "these tags"}${have}`,
    );
  }
  return out;
}
