/** Spec support for the Merkle specs: a seeded PRNG so property tests replay exactly, synthetic leaves. Not part of the barrel. */

/** mulberry32: a small seeded 32-bit generator (deterministic across runs and machines). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** An integer in [low, high]. */
export function randomInt(random: () => number, low: number, high: number): number {
  return low + Math.floor(random() * (high - low + 1));
}

/** A copy of `bytes` with bit `bit` (0 = the lowest bit of byte 0) flipped. */
export function flipBit(bytes: Uint8Array, bit: number): Buffer {
  const copy = Buffer.from(bytes);
  const byte = Math.floor(bit / 8);
  copy[byte] = (copy[byte] as number) ^ (1 << (bit % 8));
  return copy;
}

/** Leaf i of the test trees: deterministic bytes, up to a few hundred, like an event's canonical JSON. */
export function syntheticLeaf(i: number): Buffer {
  return Buffer.from(`{"i":${i},"pad":"${'x'.repeat(i % 300)}"}`);
}
