// How open-model arrivals are spaced: constant gaps, Poisson (exponential gaps) or gamma gaps with
// a burstiness factor, drawn from a small seeded generator so that a seed repeats a schedule.
import { mulberry32 } from "../core/random.js";

/** The arrival processes `--arrivals` names. */
export type ArrivalProcess = "constant" | "poisson" | "gamma";

export interface ArrivalSpec {
  process: ArrivalProcess;
  /** Gamma shape: below 1 burstier than Poisson, 1 is Poisson, above 1 more even (vLLM's meaning). */
  burstiness: number;
  /** Seed of the gap generator; null draws one at random (the run then does not repeat). */
  seed: number | null;
}

/**
 * The seed of stream `index` derived from a run's seed (worker i of a run uses index i): one
 * round of splitmix32, so neighbouring indexes give unrelated streams.
 */
export function streamSeed(seed: number, index: number): number {
  let z = (seed + Math.imul(index + 1, 0x9e3779b9)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** A uniform draw in (0, 1): never 0, so its logarithm is finite. */
function open01(rand: () => number): number {
  let u = rand();
  while (u === 0) u = rand();
  return u;
}

function normal(rand: () => number): number {
  // Box–Muller; one of the pair is enough here.
  return Math.sqrt(-2 * Math.log(open01(rand))) * Math.cos(2 * Math.PI * rand());
}

/** A gamma(shape, 1) draw: Marsaglia and Tsang's method, boosted for shapes below 1. */
export function gammaDraw(shape: number, rand: () => number): number {
  if (shape < 1) return gammaDraw(shape + 1, rand) * open01(rand) ** (1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(rand);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = open01(rand);
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/**
 * Gaps between arrivals, in units of the mean gap (multiply by 1000/rate for milliseconds), so a
 * rate that changes mid-run keeps the process: constant gaps are all 1; Poisson gaps exponential
 * with mean 1; gamma gaps have shape B and scale 1/B (mean 1, variance 1/B).
 */
export function gapSource(spec: ArrivalSpec, streamIndex: number): () => number {
  if (spec.process === "constant") return () => 1;
  const seed = spec.seed ?? Math.floor(Math.random() * 2 ** 32);
  const rand = mulberry32(streamSeed(seed, streamIndex));
  if (spec.process === "poisson" || spec.burstiness === 1) return () => -Math.log(open01(rand));
  const b = spec.burstiness;
  return () => gammaDraw(b, rand) / b;
}

/** The first `n` arrival offsets (ms from the start) of one stream at `rate` per second. */
export function arrivalTimes(spec: ArrivalSpec, rate: number, n: number, streamIndex = 0): number[] {
  const gap = gapSource(spec, streamIndex);
  const out: number[] = [];
  let t = 0;
  for (let i = 0; i < n; i++) {
    t += (gap() * 1000) / rate;
    out.push(t);
  }
  return out;
}
