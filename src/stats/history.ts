// Each closed second's total latency histogram, kept sparse and bounded, for exact percentiles over any span of the run.
import { addSparse, createHistogram, type Histogram, toSparse } from "./histogram.js";

/** Consecutive seconds of the run merged into one sparse histogram. */
interface Block {
  /** `t` of its first and last second (seconds since the start, at the end of the interval). */
  t0: number;
  t1: number;
  minUs: number;
  maxUs: number;
  /** [value, count, ...] in ascending value order, as toSparse writes it. */
  data: Float64Array;
}

/** A span's latencies merged: exact over the seconds it covers (`fromT`..`toT`). */
export interface MergedSpan {
  histogram: Histogram;
  minUs: number;
  maxUs: number;
  fromT: number;
  toT: number;
}

/** Numbers held before blocks are merged in pairs: 4 M numbers (32 MB) by default. */
export const HISTORY_BUDGET = 4_000_000;
/** The newest seconds are never merged: the last window and recent bursts stay per second. */
const KEEP_RECENT = 300;

/** Merges two sparse histograms of the same precision (equal values are the same bucket). */
function mergeSparse(a: Float64Array, b: Float64Array): Float64Array {
  const out = new Float64Array(a.length + b.length);
  let i = 0;
  let j = 0;
  let n = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i]! < b[j]!)) {
      out[n++] = a[i]!;
      out[n++] = a[i + 1]!;
      i += 2;
    } else if (i >= a.length || b[j]! < a[i]!) {
      out[n++] = b[j]!;
      out[n++] = b[j + 1]!;
      j += 2;
    } else {
      out[n++] = a[i]!;
      out[n++] = a[i + 1]! + b[j + 1]!;
      i += 2;
      j += 2;
    }
  }
  return out.slice(0, n);
}

/**
 * The run's latency second by second. A second costs two numbers per non-empty bucket (a few
 * hundred to a few thousand). Past the budget, neighbouring blocks older than the last five
 * minutes are merged in pairs: the memory stays bounded however long the run, and a span's
 * percentiles stay exact over the seconds it covers, its edges snapping to the (then longer)
 * blocks.
 */
export class LatencyHistory {
  private blocks: Block[] = [];
  private held = 0;

  constructor(
    private readonly budget = HISTORY_BUDGET,
    private readonly keepRecent = KEEP_RECENT,
  ) {}

  /** Called once per closed second, off the per-snapshot path. */
  add(t: number, h: Histogram, minUs: number, maxUs: number): void {
    if (h.totalCount === 0) return;
    const data = Float64Array.from(toSparse(h));
    this.blocks.push({ t0: t, t1: t, minUs, maxUs, data });
    this.held += data.length;
    if (this.held > this.budget && this.blocks.length > 1) this.halve();
  }

  /** Seconds each block covers at most (1 until the budget was first reached). */
  get resolution(): number {
    let r = 1;
    for (const b of this.blocks) r = Math.max(r, Math.round(b.t1 - b.t0) + 1);
    return r;
  }

  get length(): number {
    return this.blocks.length;
  }

  /**
   * Merges neighbouring blocks in pairs among all but the newest `keepRecent`, the shortest first
   * (so the resolution stays even over the run rather than coarsest at its start).
   */
  private halve(): void {
    const older = Math.max(0, this.blocks.length - this.keepRecent);
    if (older < 2) return;
    const len = (b: Block) => Math.round(b.t1 - b.t0);
    let shortest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < older; i++) shortest = Math.min(shortest, len(this.blocks[i]!));
    const merge = (a: Block, b: Block): Block => ({
      t0: a.t0,
      t1: b.t1,
      minUs: Math.min(a.minUs, b.minUs),
      maxUs: Math.max(a.maxUs, b.maxUs),
      data: mergeSparse(a.data, b.data),
    });
    const pass = (only: number | null): Block[] => {
      const next: Block[] = [];
      for (let i = 0; i < older; ) {
        const a = this.blocks[i]!;
        const b = i + 1 < older ? this.blocks[i + 1]! : undefined;
        if (b && (only === null || (len(a) === only && len(b) === only))) {
          next.push(merge(a, b));
          i += 2;
        } else {
          next.push(a);
          i += 1;
        }
      }
      return next;
    };
    let next = pass(shortest);
    // The shortest blocks may all sit alone between longer ones: then every pair merges.
    if (next.length === older) next = pass(null);
    this.blocks = next.concat(this.blocks.slice(older));
    this.held = 0;
    for (const b of this.blocks) this.held += b.data.length;
  }

  /**
   * The latencies of the seconds whose `t` lies in [fromT, toT], with every block that overlaps
   * the span; null when none had requests.
   */
  span(fromT: number, toT: number): MergedSpan | null {
    const h = createHistogram();
    let minUs = Number.POSITIVE_INFINITY;
    let maxUs = 0;
    let first = Number.POSITIVE_INFINITY;
    let last = Number.NEGATIVE_INFINITY;
    for (const b of this.blocks) {
      if (b.t1 < fromT || b.t0 > toT) continue;
      addSparse(h, b.data);
      if (b.minUs < minUs) minUs = b.minUs;
      if (b.maxUs > maxUs) maxUs = b.maxUs;
      if (b.t0 < first) first = b.t0;
      if (b.t1 > last) last = b.t1;
    }
    if (h.totalCount === 0) return null;
    return { histogram: h, minUs, maxUs, fromT: first, toT: last };
  }
}
