// A seeded random generator, shared by arrival gaps and dataset shuffles (Math.random cannot be seeded).

/**
 * Mulberry32: a 32-bit generator, small and fast, statistically good enough for spacing
 * arrivals and shuffling rows, and the same in every Node version.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
