import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type DispatchClass, dispatchUsers, splitEvenly } from "../src/runner/dispatch.js";

const cls = (name: string, weight: number, fixedCount = 0): DispatchClass => ({ name, weight, fixedCount });

const counts = (classes: readonly DispatchClass[], total: number) =>
  Object.fromEntries(dispatchUsers(classes, total));

const WEIGHT_SETS: Record<string, DispatchClass[]> = {
  "1": [cls("A", 1)],
  "1:1": [cls("A", 1), cls("B", 1)],
  "3:1": [cls("A", 3), cls("B", 1)],
  "1:2:3": [cls("A", 1), cls("B", 2), cls("C", 3)],
  "5:3:2:1": [cls("A", 5), cls("B", 3), cls("C", 2), cls("D", 1)],
  "7:1:1": [cls("A", 7), cls("B", 1), cls("C", 1)],
  "10:1": [cls("A", 10), cls("B", 1)],
  "1:100": [cls("A", 1), cls("B", 100)],
  "2:0:3 (zero weight)": [cls("A", 2), cls("Z", 0), cls("B", 3)],
};

describe("dispatchUsers", () => {
  it("returns every class, with 0 for no users", () => {
    assert.deepEqual(counts(WEIGHT_SETS["1:2:3"]!, 0), { A: 0, B: 0, C: 0 });
    assert.deepEqual(counts(WEIGHT_SETS["1:2:3"]!, -5), { A: 0, B: 0, C: 0 });
    assert.deepEqual(counts([], 10), {});
  });

  it("fills fixedCount classes first, in order, then shares the rest by weight", () => {
    const classes = [cls("F1", 100, 2), cls("A", 3), cls("F2", 1, 3), cls("B", 1)];
    assert.deepEqual(counts(classes, 1), { F1: 1, A: 0, F2: 0, B: 0 });
    assert.deepEqual(counts(classes, 2), { F1: 2, A: 0, F2: 0, B: 0 });
    assert.deepEqual(counts(classes, 4), { F1: 2, A: 0, F2: 2, B: 0 });
    assert.deepEqual(counts(classes, 5), { F1: 2, A: 0, F2: 3, B: 0 });
    // The fixed classes' weights play no part in the weighted share.
    assert.deepEqual(counts(classes, 5 + 8), { F1: 2, A: 6, F2: 3, B: 2 });
    assert.deepEqual(counts(classes, 5 + 400), { F1: 2, A: 300, F2: 3, B: 100 });
  });

  it("gives fixed classes no more than fixedCount when only fixed classes exist", () => {
    const classes = [cls("F1", 1, 2), cls("F2", 1, 1)];
    assert.deepEqual(counts(classes, 100), { F1: 2, F2: 1 });
  });

  it("floors a fractional total", () => {
    assert.deepEqual(counts(WEIGHT_SETS["1:1"]!, 3.9), counts(WEIGHT_SETS["1:1"]!, 3));
  });

  for (const [label, classes] of Object.entries(WEIGHT_SETS)) {
    it(`weights ${label}: exact at multiples of the sum, monotonic, within 1 of proportional (0..200)`, () => {
      const sum = classes.reduce((s, c) => s + c.weight, 0);
      let prev = new Map(classes.map((c) => [c.name, 0]));
      for (let total = 0; total <= 200; total++) {
        const out = dispatchUsers(classes, total);
        assert.deepEqual(
          [...out.keys()],
          classes.map((c) => c.name),
        );
        const got = [...out.values()].reduce((s, n) => s + n, 0);
        assert.equal(got, total, `total ${total}: ${JSON.stringify([...out])}`);
        for (const c of classes) {
          const n = out.get(c.name)!;
          assert.ok(Number.isInteger(n) && n >= 0);
          const ideal = (total * c.weight) / sum;
          assert.ok(
            Math.abs(n - ideal) <= 1,
            `total ${total}: ${c.name} has ${n}, proportional share is ${ideal.toFixed(2)}`,
          );
          if (total % sum === 0) assert.equal(n, (total / sum) * c.weight, `total ${total}: ${c.name}`);
          assert.ok(
            n >= prev.get(c.name)!,
            `${c.name} went from ${prev.get(c.name)} to ${n} when total grew to ${total}`,
          );
          if (c.weight === 0) assert.equal(n, 0);
        }
        // Growing by one user adds exactly one user to one class.
        if (total > 0) {
          const diff = classes.map((c) => out.get(c.name)! - prev.get(c.name)!);
          assert.deepEqual(
            diff.filter((d) => d !== 0),
            [1],
          );
        }
        prev = out;
      }
    });
  }

  it("fixed and weighted classes together stay monotonic", () => {
    const classes = [cls("A", 2), cls("F", 1, 5), cls("B", 1)];
    let prev = dispatchUsers(classes, 0);
    for (let total = 1; total <= 200; total++) {
      const out = dispatchUsers(classes, total);
      for (const c of classes) assert.ok(out.get(c.name)! >= prev.get(c.name)!, `total ${total} ${c.name}`);
      assert.equal(out.get("F"), Math.min(5, total));
      const left = Math.max(0, total - 5);
      assert.ok(Math.abs(out.get("A")! - (left * 2) / 3) <= 1);
      assert.ok(Math.abs(out.get("B")! - left / 3) <= 1);
      prev = out;
    }
  });
});

describe("splitEvenly", () => {
  it("splits into near-equal shares that sum to n, remainder first", () => {
    assert.deepEqual(splitEvenly(10, 3), [4, 3, 3]);
    assert.deepEqual(splitEvenly(11, 3), [4, 4, 3]);
    assert.deepEqual(splitEvenly(2, 4), [1, 1, 0, 0]);
    assert.deepEqual(splitEvenly(0, 2), [0, 0]);
    assert.deepEqual(splitEvenly(7, 1), [7]);
  });

  it("always sums to n with shares differing by at most 1 (n 0..300, parts 1..16)", () => {
    for (let parts = 1; parts <= 16; parts++) {
      for (let n = 0; n <= 300; n++) {
        const s = splitEvenly(n, parts);
        assert.equal(s.length, parts);
        assert.equal(
          s.reduce((a, b) => a + b, 0),
          n,
          `splitEvenly(${n}, ${parts})`,
        );
        assert.ok(Math.max(...s) - Math.min(...s) <= 1, `splitEvenly(${n}, ${parts}) = ${s}`);
        for (let i = 1; i < s.length; i++)
          assert.ok(s[i]! <= s[i - 1]!, "remainder goes to the first shares");
      }
    }
  });
});
