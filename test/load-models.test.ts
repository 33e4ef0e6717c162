/**
 * The load models on their own: each is driven with a fake clock, tick by tick as the coordinator
 * drives it every 100 ms, and the load it asks for is checked over time. No workers, no network.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LoadShape, type ShapeTick } from "../src/api/shape.js";
import { ClosedRamp } from "../src/runner/models/closed-ramp.js";
import { LOAD_TICK_MS, type LoadModel, type LoadStep, loadModelFor } from "../src/runner/models/index.js";
import { OpenRate } from "../src/runner/models/open-rate.js";
import { RateStages } from "../src/runner/models/rate-stages.js";
import { ShapeModel } from "../src/runner/models/shape.js";
import { UserStages } from "../src/runner/models/user-stages.js";
import type { RunPlan } from "../src/runner/plan.js";
import { parseStages } from "../src/runner/stages.js";

/** A fake clock: ticks the model every LOAD_TICK_MS from `fromMs` up to `toMs` (inclusive). */
function drive(model: LoadModel, fromMs: number, toMs: number): Array<[number, LoadStep]> {
  const out: Array<[number, LoadStep]> = [];
  for (let ms = fromMs; ms <= toMs; ms += LOAD_TICK_MS) out.push([ms, model.tick(ms)]);
  return out;
}

/** The users asked for at each tick; fails on any step that is not a users step. */
function usersOf(steps: Array<[number, LoadStep]>): number[] {
  return steps.map(([ms, s]) => {
    assert.equal(s.kind, "users", `at ${ms} ms: ${JSON.stringify(s)}`);
    return (s as Extract<LoadStep, { kind: "users" }>).users;
  });
}

function ratesOf(steps: Array<[number, LoadStep]>): number[] {
  return steps.map(([ms, s]) => {
    assert.equal(s.kind, "rate", `at ${ms} ms: ${JSON.stringify(s)}`);
    return (s as Extract<LoadStep, { kind: "rate" }>).rate;
  });
}

/** The first time (ms) the users count reaches `n`. */
function firstAt(steps: Array<[number, LoadStep]>, n: number): number | undefined {
  return steps.find(([, s]) => s.kind === "users" && s.users === n)?.[0];
}

describe("load model: closed ramp (-u/-r)", () => {
  it("starts one user at once, then adds spawnRate users a second, and holds the count", () => {
    const steps = drive(new ClosedRamp(10, 5), 0, 5000);
    const users = usersOf(steps);
    assert.equal(users[0], 1, "one user at the first tick");
    assert.equal(users[10], 6, "1 + 5 users after 1 s");
    // floor(5 × t) + 1 = 10 first at t = 1.8 s.
    assert.equal(firstAt(steps, 10), 1800);
    assert.ok(
      users.every((u) => u <= 10),
      "never more than -u",
    );
    for (let i = 1; i < users.length; i++) assert.ok(users[i]! >= users[i - 1]!, "never goes down");
    assert.deepEqual(new Set(users.slice(18)), new Set([10]), "holds -u once reached");
  });

  it("says it is ramping until the count is reached, and not after", () => {
    const steps = drive(new ClosedRamp(10, 5), 0, 3000);
    for (const [ms, s] of steps) {
      assert.equal(s.kind === "users" && s.ramping, ms < 1800, `ramping at ${ms} ms`);
    }
  });

  it("starts every user at once when the spawn rate covers them", () => {
    assert.deepEqual(usersOf(drive(new ClosedRamp(8, 8), 0, 500)), [8, 8, 8, 8, 8, 8]);
    assert.deepEqual(usersOf(drive(new ClosedRamp(3, 100), 0, 200)), [3, 3, 3]);
  });

  it("ramps a live edit from the users of now, down as well as up", () => {
    const m = new ClosedRamp(10, 100);
    assert.deepEqual(usersOf(drive(m, 0, 2000)).slice(-1), [10]);
    m.setUsers(4, 2, 3000);
    const down = drive(m, 3000, 7000);
    // 10 − (floor(2 × t) + 1): 9 at once, then 2 fewer a second, 4 at t = 2.5 s.
    assert.equal(usersOf(down)[0], 9);
    assert.equal(firstAt(down, 4), 5500);
    assert.deepEqual(new Set(usersOf(down).slice(25)), new Set([4]));
    m.setUsers(20, undefined, 8000);
    // The spawn rate of the last edit stays: 2 a second, from 4.
    const up = drive(m, 8000, 16000);
    assert.equal(usersOf(up)[0], 5);
    assert.equal(firstAt(up, 20), 15500);
  });

  it("never ends the run by itself", () => {
    const last = new ClosedRamp(2, 1).tick(24 * 3600 * 1000);
    assert.deepEqual(last, { kind: "users", users: 2, ramping: false });
  });
});

describe("load model: user stages", () => {
  const stages = parseStages("2s:10,1s:10,2s:0");

  it("follows the stages linearly in users, rounded, then ends the run", () => {
    const steps = drive(new UserStages(stages), 0, 4900);
    const users = usersOf(steps);
    assert.equal(users[0], 0);
    assert.equal(users[5], 3, "2.5 rounds to 3 at 0.5 s");
    assert.equal(users[10], 5, "halfway up at 1 s");
    assert.equal(users[20], 10, "at the target at 2 s");
    assert.equal(users[25], 10, "held");
    assert.equal(users[40], 5, "halfway down at 4 s");
    assert.ok(
      steps.every(([, s]) => s.kind === "users" && !s.ramping),
      "stages set the count; they never wait for a ramp",
    );
    assert.deepEqual(new UserStages(stages).tick(5000), { kind: "end", reason: "stages" });
    assert.deepEqual(new UserStages(stages).tick(60_000), { kind: "end", reason: "stages" });
  });

  it("jumps on a zero-length stage", () => {
    const m = new UserStages(parseStages("0s:7,1s:7"));
    assert.deepEqual(usersOf(drive(m, 0, 900)), Array(10).fill(7));
  });
});

describe("load model: open rate (--rate)", () => {
  it("asks for the same arrivals per second at every tick until the rate is edited", () => {
    const m = new OpenRate(20);
    assert.deepEqual(new Set(ratesOf(drive(m, 0, 3000))), new Set([20]));
    m.setRate(2.5);
    assert.deepEqual(new Set(ratesOf(drive(m, 3100, 5000))), new Set([2.5]));
    assert.deepEqual(m.tick(24 * 3600 * 1000), { kind: "rate", rate: 2.5 }, "never ends by itself");
  });
});

describe("load model: rate stages (--rate with --stages)", () => {
  it("follows the stages linearly in arrivals per second, not rounded, then ends the run", () => {
    const steps = drive(new RateStages(parseStages("1s:10,1s:10,1s:1")), 0, 2900);
    const rates = ratesOf(steps);
    assert.equal(rates[0], 0);
    assert.ok(Math.abs(rates[3]! - 3) < 1e-9, `0.3 s: ${rates[3]}`);
    assert.ok(Math.abs(rates[25]! - 5.5) < 1e-9, `2.5 s: ${rates[25]}`);
    assert.equal(rates[15], 10);
    assert.deepEqual(new RateStages(parseStages("1s:10")).tick(1000), { kind: "end", reason: "stages" });
  });
});

/** A shape whose ticks come from a function of elapsed seconds. */
function shapeOf(fn: (t: number) => ShapeTick | null): LoadShape {
  return new (class extends LoadShape {
    tick(t: number): ShapeTick | null {
      return fn(t);
    }
  })();
}

describe("load model: LoadShape", () => {
  it("hands the shape the elapsed seconds, and sets its users at once without a spawn rate", () => {
    const seen: number[] = [];
    const m = new ShapeModel(
      shapeOf((t) => {
        seen.push(t);
        return { users: t < 1 ? 4 : 9 };
      }),
    );
    const users = usersOf(drive(m, 0, 1500));
    assert.deepEqual(seen.slice(0, 3), [0, 0.1, 0.2]);
    assert.deepEqual(users, [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 9, 9, 9, 9, 9, 9]);
  });

  it("ramps toward its users at its spawn rate, down as well as up", () => {
    const m = new ShapeModel(
      shapeOf((t) => (t < 2 ? { users: 10, spawnRate: 10 } : { users: 0, spawnRate: 5 })),
    );
    const steps = drive(m, 0, 4000);
    const users = usersOf(steps);
    // One tick is worth 10 × 0.1 s = 1 user, the first one too.
    assert.deepEqual(users.slice(0, 11), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10]);
    // Down at 5 a second: half a user per tick, floored.
    assert.equal(users[20], 9);
    assert.equal(users[21], 9);
    assert.equal(users[22], 8);
    // Below one user 1.8 s after the switch (give or take a tick: the ticks' times are floats).
    const zero = firstAt(steps, 0);
    assert.ok(zero !== undefined && zero >= 3700 && zero <= 3800, `0 users first at ${zero} ms`);
    assert.deepEqual(new Set(users.slice(38)), new Set([0]));
  });

  it("rounds and clamps what it asks for, and passes the classes on", () => {
    const m = new ShapeModel(
      shapeOf((t) => (t < 0.5 ? { users: 2.6, userClasses: ["A"] } : t < 1 ? { users: -3 } : { rate: -1 })),
    );
    assert.deepEqual(m.tick(0), { kind: "users", users: 3, userClasses: ["A"], ramping: false });
    assert.deepEqual(m.tick(600), { kind: "users", users: 0, ramping: false });
    assert.deepEqual(m.tick(1000), { kind: "rate", rate: 0 });
  });

  it("switches between users, rates and bursts, and ends when tick() returns null", () => {
    const m = new ShapeModel(
      shapeOf((t) => {
        if (t < 1) return { users: 5 };
        if (t < 2) return { rate: 12.5 };
        if (t < 2.05) return { burst: 30.9 };
        if (t < 3) return { burst: 0 };
        return null;
      }),
    );
    const steps = drive(m, 0, 3000);
    const kinds = steps.map(([, s]) => s.kind);
    assert.deepEqual(kinds.slice(0, 10), Array(10).fill("users"));
    assert.deepEqual(kinds.slice(10, 20), Array(10).fill("rate"));
    assert.deepEqual(steps[20]![1], { kind: "burst", count: 30 }, "a burst is whole arrivals");
    assert.deepEqual(kinds.slice(21, 30), Array(9).fill("hold"), "an empty burst changes nothing");
    assert.deepEqual(steps[30]![1], { kind: "end", reason: "shape" });
  });

  it("forgets its users when it switches to arrivals, and ramps from 0 when it comes back", () => {
    const m = new ShapeModel(
      shapeOf((t) => (t < 1 ? { users: 6 } : t < 1.5 ? { rate: 3 } : { users: 6, spawnRate: 10 })),
    );
    const steps = drive(m, 0, 2000);
    assert.equal(usersOf(steps.slice(0, 10)).at(-1), 6);
    assert.deepEqual(steps[12]![1], { kind: "rate", rate: 3 });
    assert.deepEqual(usersOf(steps.slice(15, 18)), [1, 2, 3]);
  });

  it("fails the run with the shape's own message when tick() throws", () => {
    const m = new ShapeModel(
      shapeOf((t) => {
        if (t > 0.25) throw new Error("no such phase");
        return { users: 1 };
      }),
    );
    const steps = drive(m, 0, 300);
    assert.deepEqual(steps[3]![1], {
      kind: "fail",
      fatal: "load shape failed: no such phase",
      notice: "the load shape's tick() threw: no such phase",
    });
  });
});

describe("which load model drives a plan", () => {
  const plan = (p: Partial<RunPlan>) => ({ users: 5, spawnRate: 1, rate: null, stages: null, ...p });
  const shape = shapeOf(() => ({ users: 1 }));

  it("a LoadShape first, then --rate, then --stages, then -u/-r", () => {
    assert.ok(loadModelFor(plan({ rate: 3, stages: parseStages("1s:1") }), shape) instanceof ShapeModel);
    assert.ok(loadModelFor(plan({ rate: 3, stages: parseStages("1s:1") })) instanceof RateStages);
    assert.ok(loadModelFor(plan({ rate: 3 })) instanceof OpenRate);
    assert.ok(loadModelFor(plan({ stages: parseStages("1s:1") })) instanceof UserStages);
    assert.ok(loadModelFor(plan({})) instanceof ClosedRamp);
  });

  it("only the models with a knob for it take live edits", () => {
    const knobs = (m: LoadModel) => [typeof m.setUsers === "function", typeof m.setRate === "function"];
    assert.deepEqual(knobs(loadModelFor(plan({}))), [true, false]);
    assert.deepEqual(knobs(loadModelFor(plan({ rate: 3 }))), [false, true]);
    assert.deepEqual(knobs(loadModelFor(plan({ stages: parseStages("1s:1") }))), [false, false]);
    assert.deepEqual(knobs(loadModelFor(plan({ rate: 3, stages: parseStages("1s:1") }))), [false, false]);
    assert.deepEqual(knobs(loadModelFor(plan({}), shape)), [false, false]);
  });
});
