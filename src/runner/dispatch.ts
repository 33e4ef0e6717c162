export interface DispatchClass {
  readonly name: string;
  readonly weight: number;
  readonly fixedCount: number;
}

/**
 * How many users of each class make up `total` users. Classes with `fixedCount` are filled
 * first, in order; the rest is shared by weight along a smooth weighted round-robin order, so
 * that counts only grow as `total` grows and every prefix of a ramp is as close to the weights
 * as whole users allow.
 */
export function dispatchUsers(classes: readonly DispatchClass[], total: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of classes) out.set(c.name, 0);
  let left = Math.max(0, Math.floor(total));
  for (const c of classes) {
    if (c.fixedCount > 0) {
      const n = Math.min(c.fixedCount, left);
      out.set(c.name, n);
      left -= n;
    }
  }
  const weighted = classes.filter((c) => c.fixedCount <= 0 && c.weight > 0);
  const sum = weighted.reduce((s, c) => s + c.weight, 0);
  if (left === 0 || sum === 0) return out;
  // A full round of `sum` picks gives each class exactly its weight.
  const rounds = Math.floor(left / sum);
  for (const c of weighted) out.set(c.name, rounds * c.weight);
  const current = weighted.map(() => 0);
  for (let pick = 0; pick < left % sum; pick++) {
    let best = 0;
    for (let i = 0; i < weighted.length; i++) {
      current[i]! += weighted[i]!.weight;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= sum;
    const c = weighted[best]!;
    out.set(c.name, out.get(c.name)! + 1);
  }
  return out;
}

/** Splits `n` into `parts` near-equal integer shares (the first ones get the remainder). */
export function splitEvenly(n: number, parts: number): number[] {
  const base = Math.floor(n / parts);
  const extra = n % parts;
  return Array.from({ length: parts }, (_, i) => base + (i < extra ? 1 : 0));
}
