import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collectTasks, filterTasks, type TaskDef, tag, task } from "../src/api/tasks.js";
import { HttpUser, TaskSet, User } from "../src/api/user.js";
import { between, constant, constantPacing, constantThroughput } from "../src/api/wait.js";
import { CicadaError, ExitCode } from "../src/core/errors.js";
import { compileUserClasses, findUserClasses } from "../src/loadfile/inspect.js";

/** Applies a standard (TC39) method decorator by hand, as TypeScript 5 / esbuild emit it. */
function std(decorator: (value: any, ctx: any) => void, cls: { prototype: object }, name: string): void {
  const fn = (cls.prototype as Record<string, unknown>)[name];
  decorator(fn, { kind: "method", name, static: false, private: false } as any);
}

/** Applies a legacy (`experimentalDecorators`) method decorator by hand. */
function legacy(
  decorator: (target: object, key: string, d: PropertyDescriptor) => void,
  cls: { prototype: object },
  name: string,
): void {
  decorator(cls.prototype, name, Object.getOwnPropertyDescriptor(cls.prototype, name)!);
}

const summary = (tasks: readonly TaskDef[]) =>
  tasks.map((t) => `${t.name}:${t.weight}:${[...t.tags].sort().join(",")}`);

const names = (tasks: readonly TaskDef[]): unknown[] =>
  tasks.map((t) => (t.children ? { [t.name]: names(t.children) } : t.name));

const tasksOf = (cls: { prototype: object; name: string }) => collectTasks(cls as any, User.prototype);

describe("collecting tasks", () => {
  it("standard decorators: @task, @task(n), @tag", () => {
    class U extends User {
      a() {}
      b() {}
      c() {}
      notATask() {}
    }
    std(task(3), U, "a");
    std(task as any, U, "b"); // bare @task
    std(task(), U, "c");
    std(tag("slow", "api"), U, "c");
    assert.deepEqual(summary(tasksOf(U)), ["a:3:", "b:1:", "c:1:api,slow"]);
    assert.equal(tasksOf(U)[0]!.fn, U.prototype.a);
  });

  it("legacy decorators: @task, @task(n), @tag", () => {
    class U extends HttpUser {
      a() {}
      b() {}
      c() {}
      helper() {}
    }
    legacy(task(2), U, "a");
    legacy(task as any, U, "b");
    legacy(tag("x"), U, "b");
    legacy(task(0), U, "c");
    assert.deepEqual(summary(tasksOf(U)), ["a:2:", "b:1:x", "c:0:"]);
    // Weight 0 tasks are dropped by filtering.
    assert.deepEqual(names(filterTasks(tasksOf(U), {})), ["a", "b"]);
  });

  it("decorating something that is not a method, or with a bad weight, throws", () => {
    assert.throws(() => task(-1), RangeError);
    assert.throws(() => task(1.5), RangeError);
    assert.throws(() => task(2)(() => {}, { kind: "field", name: "x" } as any), TypeError);
    assert.throws(() => task(2)({}, "x", { value: 42 }), TypeError);
    assert.throws(() => tag("t")({}, "x", { get: () => 1 }), TypeError);
  });

  it("static tasks lists: functions, weights, tags, names; class tags apply to all tasks", () => {
    function browse() {}
    const anon = [() => {}][0]!;
    class Checkout extends TaskSet {
      pay() {}
    }
    std(task, Checkout, "pay");
    class U extends User {
      static override tags = ["shop"];
      static override tasks = [
        browse,
        { task: anon, weight: 4, tags: ["t1"], name: "custom" },
        { task: Checkout, weight: 2, tags: ["t2"] },
        anon,
      ];
      own() {}
    }
    std(task(5), U, "own");
    assert.deepEqual(summary(tasksOf(U)), [
      "own:5:shop",
      "browse:1:shop",
      "custom:4:shop,t1",
      "Checkout:2:shop,t2",
      "task#3:1:shop",
    ]);
    const set = tasksOf(U)[3]!;
    assert.equal(set.taskSet, Checkout);
    assert.equal(set.fn, undefined);
  });

  it("a static task function is called with the owner as this and as argument", () => {
    const seen: unknown[] = [];
    function t(this: unknown, owner: unknown) {
      seen.push(this, owner);
      return 7;
    }
    class U extends User {
      static override tasks = [t];
    }
    const owner = { me: 1 };
    const def = tasksOf(U)[0]!;
    assert.equal(def.fn!.call(owner, owner), 7);
    assert.deepEqual(seen, [owner, owner]);
  });

  it("a decorated function in a static list keeps its weight and tags", () => {
    const holder = { f() {} };
    task(6)(holder.f, { kind: "method", name: "f" } as any);
    tag("deco")(holder.f, { kind: "method", name: "f" } as any);
    class U extends User {
      static override tasks = [holder.f];
    }
    assert.deepEqual(summary(tasksOf(U)), ["f:6:deco"]);
  });

  it("subclasses inherit tasks; overriding without @task removes one, with @task replaces it", () => {
    class Base extends User {
      a() {}
      b() {}
      c() {}
    }
    std(task(1), Base, "a");
    std(task(2), Base, "b");
    std(task(3), Base, "c");
    class Sub extends Base {
      override b() {}
      override c() {}
      d() {}
    }
    std(task(9), Sub, "c");
    std(task(4), Sub, "d");
    assert.deepEqual(summary(tasksOf(Sub)), ["a:1:", "c:9:", "d:4:"]);
    assert.equal(tasksOf(Sub).find((t) => t.name === "c")!.fn, Sub.prototype.c);
    // The base class is unaffected.
    assert.deepEqual(summary(tasksOf(Base)), ["a:1:", "b:2:", "c:3:"]);
  });
});

describe("filterTasks", () => {
  class Inner extends TaskSet {
    static override tags = ["set"];
    i1() {}
    i2() {}
  }
  std(task, Inner, "i1");
  std(task, Inner, "i2");
  std(tag("slow"), Inner, "i2");
  class Plain extends TaskSet {
    p1() {}
    p2() {}
  }
  std(task, Plain, "p1");
  std(task, Plain, "p2");
  std(tag("api"), Plain, "p2");
  class U extends User {
    static override tasks = [Inner, Plain];
    a() {}
    b() {}
    c() {}
  }
  std(task, U, "a");
  std(tag("api"), U, "a");
  std(task, U, "b");
  std(tag("api", "slow"), U, "b");
  std(task, U, "c");
  const all = tasksOf(U);

  it("no filter keeps everything, task sets with all their tasks", () => {
    assert.deepEqual(names(filterTasks(all, {})), [
      "a",
      "b",
      "c",
      { Inner: ["i1", "i2"] },
      { Plain: ["p1", "p2"] },
    ]);
    assert.deepEqual(names(filterTasks(all, { include: [], exclude: [] })), names(filterTasks(all, {})));
  });

  it("include keeps tagged tasks; a tagged task set keeps all its tasks", () => {
    assert.deepEqual(names(filterTasks(all, { include: ["api"] })), ["a", "b", { Plain: ["p2"] }]);
    assert.deepEqual(names(filterTasks(all, { include: ["set"] })), [{ Inner: ["i1", "i2"] }]);
    assert.deepEqual(names(filterTasks(all, { include: ["nope"] })), []);
  });

  it("exclude drops tagged tasks, inside task sets too", () => {
    assert.deepEqual(names(filterTasks(all, { exclude: ["slow"] })), [
      "a",
      "c",
      { Inner: ["i1"] },
      { Plain: ["p1", "p2"] },
    ]);
    assert.deepEqual(names(filterTasks(all, { exclude: ["set", "api"] })), ["c", { Plain: ["p1"] }]);
  });

  it("exclude wins over include, also within a selected task set", () => {
    assert.deepEqual(names(filterTasks(all, { include: ["api"], exclude: ["slow"] })), [
      "a",
      { Plain: ["p2"] },
    ]);
    assert.deepEqual(names(filterTasks(all, { include: ["set"], exclude: ["slow"] })), [{ Inner: ["i1"] }]);
    assert.deepEqual(names(filterTasks(all, { include: ["set"], exclude: ["set"] })), []);
  });
});

describe("findUserClasses / compileUserClasses", () => {
  class Base extends HttpUser {
    static override abstract = true;
    a() {}
  }
  std(task, Base, "a");
  class Web extends Base {
    static override weight = 3;
    static override host = "http://127.0.0.1:1";
    static override waitTime = constant(1);
  }
  class Api extends User {
    static override fixedCount = 2;
    b() {}
  }
  std(task, Api, "b");
  std(tag("api"), Api, "b");
  class Idle extends User {}

  it("finds exported user classes in export order, skipping abstract ones and non-classes", () => {
    const mod = { Base, helper: () => 1, Web, value: 3, Api, Again: Web, Plain: class {} };
    assert.deepEqual(findUserClasses(mod), [Web, Api]);
    // `abstract` is not inherited: a subclass of an abstract base runs.
    assert.equal(Web.abstract, true);
  });

  it("compiles classes with their settings and filtered tasks", () => {
    const out = compileUserClasses({ Base, Web, Api }, { loadfile: "lf.ts" });
    assert.deepEqual(
      out.map((c) => [c.name, c.weight, c.fixedCount, c.host, names(c.tasks)]),
      [
        ["Web", 3, 0, "http://127.0.0.1:1", ["a"]],
        ["Api", 1, 2, undefined, ["b"]],
      ],
    );
    assert.equal(out[0]!.waitTime, Web.waitTime);
    assert.equal(out[0]!.cls, Web);
    // Picked classes come in the order asked for.
    const picked = compileUserClasses({ Web, Api }, { loadfile: "lf.ts", userClasses: ["Api", "Web"] });
    assert.deepEqual(
      picked.map((c) => c.name),
      ["Api", "Web"],
    );
    // A class left without tasks by the tag filter does not run.
    const tagged = compileUserClasses({ Web, Api }, { loadfile: "lf.ts", include: ["api"] });
    assert.deepEqual(
      tagged.map((c) => c.name),
      ["Api"],
    );
  });

  const usageError = (re: RegExp) => (err: unknown) => {
    assert.ok(err instanceof CicadaError, `not a CicadaError: ${err}`);
    assert.equal(err.exitCode, 2);
    assert.equal(err.exitCode, ExitCode.Usage);
    assert.match(err.message, re);
    return true;
  };

  it("no user class exported is a usage error naming the loadfile", () => {
    assert.throws(
      () => compileUserClasses({ Base, x: 1 }, { loadfile: "my-loadfile.ts" }),
      usageError(/my-loadfile\.ts.*no user class/),
    );
    assert.throws(() => compileUserClasses({}, { loadfile: "e.ts" }), usageError(/no user class/));
  });

  it("an unknown class name is a usage error listing the exported classes", () => {
    assert.throws(
      () => compileUserClasses({ Web, Api }, { loadfile: "lf.ts", userClasses: ["Web", "Nope"] }),
      usageError(/"Nope".*lf\.ts.*Web, Api/),
    );
  });

  it("classes without tasks are a usage error", () => {
    assert.throws(() => compileUserClasses({ Idle }, { loadfile: "lf.ts" }), usageError(/Idle has no tasks/));
    assert.throws(
      () => compileUserClasses({ Web, Api }, { loadfile: "lf.ts", include: ["nothing"] }),
      usageError(/--tags/),
    );
  });

  it("invalid weight, fixedCount or waitTime is a usage error", () => {
    class W extends Api {
      static override weight = 1.5;
    }
    class F extends Api {
      static override fixedCount = -1;
    }
    class T extends Api {
      static override waitTime = 3 as any;
    }
    assert.throws(() => compileUserClasses({ W }, { loadfile: "lf.ts" }), usageError(/W\.weight/));
    assert.throws(() => compileUserClasses({ F }, { loadfile: "lf.ts" }), usageError(/F\.fixedCount/));
    assert.throws(() => compileUserClasses({ T }, { loadfile: "lf.ts" }), usageError(/T\.waitTime/));
  });
});

describe("wait time helpers", () => {
  const ctx = (taskMs: number) => ({ taskStartedAt: 1000, taskEndedAt: 1000 + taskMs });

  it("between(min, max) stays within bounds and varies", () => {
    const w = between(1, 3);
    const seen = Array.from({ length: 2000 }, () => w(ctx(0)));
    for (const s of seen) assert.ok(s >= 1 && s <= 3, `${s}`);
    assert.ok(Math.min(...seen) < 1.1 && Math.max(...seen) > 2.9, "covers the range");
    const mean = seen.reduce((a, b) => a + b, 0) / seen.length;
    assert.ok(Math.abs(mean - 2) < 0.1, `mean ${mean}`);
    assert.equal(between(2, 2)(ctx(0)), 2);
    assert.equal(between(0, 0)(ctx(0)), 0);
  });

  it("constant(s) is always s, whatever the task took", () => {
    assert.equal(constant(0.5)(ctx(0)), 0.5);
    assert.equal(constant(0.5)(ctx(10_000)), 0.5);
    assert.equal(constant(0)(ctx(0)), 0);
  });

  it("constantPacing subtracts the task's own time, never below 0", () => {
    const w = constantPacing(2);
    assert.equal(w(ctx(0)), 2);
    assert.equal(w(ctx(500)), 1.5);
    assert.equal(w(ctx(2000)), 0);
    assert.equal(w(ctx(3000)), 0);
  });

  it("constantThroughput(n) paces at 1/n seconds per task", () => {
    const w = constantThroughput(4);
    assert.equal(w(ctx(0)), 0.25);
    assert.ok(Math.abs(w(ctx(100)) - 0.15) < 1e-12);
    assert.equal(w(ctx(400)), 0);
    assert.ok(Math.abs(constantThroughput(0.5)(ctx(500)) - 1.5) < 1e-12);
  });

  it("invalid arguments throw RangeError", () => {
    assert.throws(() => between(3, 1), RangeError);
    assert.throws(() => between(-1, 2), RangeError);
    assert.throws(() => between(0, Number.POSITIVE_INFINITY), RangeError);
    assert.throws(() => between(Number.NaN, 1), RangeError);
    assert.throws(() => constant(-0.1), RangeError);
    assert.throws(() => constant(Number.NaN), RangeError);
    assert.throws(() => constantPacing(-1), RangeError);
    assert.throws(() => constantPacing(Number.POSITIVE_INFINITY), RangeError);
    assert.throws(() => constantThroughput(0), RangeError);
    assert.throws(() => constantThroughput(-2), RangeError);
    assert.throws(() => constantThroughput(Number.NaN), RangeError);
    assert.throws(() => constantThroughput(Number.POSITIVE_INFINITY), RangeError);
  });
});
