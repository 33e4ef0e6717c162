import type { WaitTime } from "./wait.js";

/** What the runtime knows about one task after tag filtering. */
export interface TaskDef {
  /** Method name, function name or TaskSet class name; used in error reports. */
  readonly name: string;
  readonly weight: number;
  readonly tags: ReadonlySet<string>;
  /** A method/function called with `this` bound to the user or task set... */
  readonly fn?: (this: unknown, owner: unknown) => unknown;
  /** ...or a nested task set class. */
  readonly taskSet?: TaskSetClass;
  /** The task set's own tasks, after tag filtering. */
  readonly children?: readonly TaskDef[];
}

interface TaskMeta {
  weight: number;
  tags: Set<string>;
}

/** Keyed by the method's function object, which both decorator flavours can see. */
const taskMeta = new WeakMap<object, TaskMeta>();

function metaFor(fn: object): TaskMeta {
  let m = taskMeta.get(fn);
  if (!m) {
    m = { weight: 0, tags: new Set() };
    taskMeta.set(fn, m);
  }
  return m;
}

function checkWeight(weight: number): number {
  if (!Number.isInteger(weight) || weight < 0) {
    throw new RangeError(`task weight must be a non-negative integer, got ${weight}`);
  }
  return weight;
}

type AnyMethod = (this: any, ...args: any[]) => any;

// Both TypeScript's legacy `experimentalDecorators` and standard (TC39) decorators are
// accepted: a user's tsconfig decides which one esbuild emits, and we must not care.
type MethodDecorator = {
  <T extends AnyMethod>(value: T, context: ClassMethodDecoratorContext): void;
  (target: object, key: string | symbol, descriptor: PropertyDescriptor): void;
};

function isStandardContext(x: unknown): x is ClassMethodDecoratorContext {
  return typeof x === "object" && x !== null && "kind" in x;
}

function applyToMethod(args: unknown[], apply: (fn: object) => void): void {
  const [a, b, c] = args;
  if (typeof a === "function" && isStandardContext(b)) {
    if (b.kind !== "method") throw new TypeError("@task and @tag can only decorate methods");
    apply(a);
    return;
  }
  const desc = c as PropertyDescriptor | undefined;
  if (desc && typeof desc.value === "function") {
    apply(desc.value);
    return;
  }
  throw new TypeError("@task and @tag can only decorate methods");
}

/**
 * Marks a method as a task. `@task` has weight 1; `@task(3)` is picked three times as often.
 */
export function task(weight?: number): MethodDecorator;
export function task<T extends AnyMethod>(value: T, context: ClassMethodDecoratorContext): void;
export function task(target: object, key: string | symbol, descriptor: PropertyDescriptor): void;
export function task(...args: unknown[]): MethodDecorator | undefined {
  if (args.length === 0 || typeof args[0] === "number") {
    const w = checkWeight((args[0] as number | undefined) ?? 1);
    return ((...inner: unknown[]) =>
      applyToMethod(inner, (fn) => (metaFor(fn).weight = w))) as MethodDecorator;
  }
  applyToMethod(args, (fn) => (metaFor(fn).weight = 1));
  return undefined;
}

/** Tags a task so `--tags` / `--exclude-tags` can select it. */
export function tag(...tags: string[]): MethodDecorator {
  return ((...inner: unknown[]) =>
    applyToMethod(inner, (fn) => {
      const m = metaFor(fn);
      for (const t of tags) m.tags.add(t);
    })) as MethodDecorator;
}

/** A task function given in a `static tasks` list; receives the user (or task set) as argument. */
export type TaskFunction<O = any> = (this: O, owner: O) => unknown;

/** Entry of a `static tasks` list: a function, a TaskSet class, or either with weight and tags. */
export type TaskSpec =
  | TaskFunction
  | TaskSetClass
  | { task: TaskFunction | TaskSetClass; weight?: number; tags?: string[]; name?: string };

/** Static side shared by users and task sets. */
export interface TaskHolderClass {
  readonly name: string;
  readonly prototype: object;
  tasks?: TaskSpec[];
  tags?: string[];
  waitTime?: WaitTime;
}

export interface TaskSetClass extends TaskHolderClass {
  new (parent: TaskOwner): TaskSetBase;
  readonly sequential?: boolean;
}

/** Anything that runs tasks: a user or a task set. */
export interface TaskOwner {
  /** Interruptible sleep, in seconds. */
  sleep(seconds: number): Promise<void>;
}

/** Marker base, so `instanceof` can tell task set classes apart from plain functions. */
export abstract class TaskSetBase {}

export function isTaskSetClass(x: unknown): x is TaskSetClass {
  return typeof x === "function" && x.prototype instanceof TaskSetBase;
}

function collectDecorated(cls: TaskHolderClass, stopAt: object): TaskDef[] {
  const chain: object[] = [];
  for (let p: object | null = cls.prototype; p && p !== stopAt; p = Object.getPrototypeOf(p))
    chain.unshift(p);
  const byName = new Map<string, TaskDef>();
  for (const proto of chain) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === "constructor") continue;
      const desc = Object.getOwnPropertyDescriptor(proto, key);
      const fn = desc?.value;
      if (typeof fn !== "function") continue;
      const meta = taskMeta.get(fn);
      // A subclass overriding a task without @task turns it off, like Python's MRO.
      if (!meta) {
        byName.delete(key);
        continue;
      }
      byName.delete(key); // re-insert so declaration order follows the most derived class
      byName.set(key, { name: key, weight: meta.weight, tags: meta.tags, fn: fn as TaskDef["fn"] });
    }
  }
  return [...byName.values()];
}

function fromSpec(spec: TaskSpec, index: number): TaskDef {
  if (typeof spec === "function") {
    if (isTaskSetClass(spec)) {
      return { name: spec.name, weight: 1, tags: new Set(spec.tags ?? []), taskSet: spec };
    }
    const meta = taskMeta.get(spec);
    return {
      name: spec.name || `task#${index}`,
      weight: meta?.weight || 1,
      tags: meta?.tags ?? new Set(),
      fn: function (this: unknown) {
        return (spec as TaskFunction).call(this, this);
      },
    };
  }
  const inner = fromSpec(spec.task, index);
  const tags = new Set(inner.tags);
  for (const t of spec.tags ?? []) tags.add(t);
  return { ...inner, name: spec.name ?? inner.name, weight: checkWeight(spec.weight ?? 1), tags };
}

/** Every task of a user or task set class, before tag filtering. */
export function collectTasks(cls: TaskHolderClass, stopAt: object): TaskDef[] {
  const own = (cls.tasks ?? []).map(fromSpec);
  const classTags = cls.tags ?? [];
  const all = [...collectDecorated(cls, stopAt), ...own];
  if (classTags.length === 0) return all;
  return all.map((t) => ({ ...t, tags: new Set([...classTags, ...t.tags]) }));
}

export interface TagFilter {
  readonly include?: readonly string[] | undefined;
  readonly exclude?: readonly string[] | undefined;
}

/**
 * Applies `--tags`/`--exclude-tags` like Locust: a task set that has a selected tag keeps
 * all its tasks; exclusion always wins; a task set left without tasks disappears.
 */
export function filterTasks(tasks: readonly TaskDef[], filter: TagFilter, inherited = false): TaskDef[] {
  const include = filter.include && filter.include.length > 0 ? filter.include : undefined;
  const exclude = filter.exclude ?? [];
  const out: TaskDef[] = [];
  for (const t of tasks) {
    if (exclude.some((x) => t.tags.has(x))) continue;
    const selected = !include || inherited || include.some((x) => t.tags.has(x));
    if (t.taskSet) {
      const inner = filterTasks(taskSetTasks(t.taskSet), filter, selected && include !== undefined);
      if (inner.length > 0) out.push({ ...t, children: inner });
      continue;
    }
    if (selected) out.push(t);
  }
  return out.filter((t) => t.weight > 0);
}

const setTaskCache = new WeakMap<TaskSetClass, TaskDef[]>();

export function taskSetTasks(cls: TaskSetClass): TaskDef[] {
  let tasks = setTaskCache.get(cls);
  if (!tasks) {
    tasks = collectTasks(cls, TaskSetBase.prototype);
    setTaskCache.set(cls, tasks);
  }
  return tasks;
}
