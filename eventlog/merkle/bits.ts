/**
 * Integer helpers for tree sizes and leaf indexes. Sizes go up to 2^53 − 1 (Number.MAX_SAFE_INTEGER);
 * JavaScript's bitwise operators work on 32 bits, so everything here uses exact arithmetic on
 * doubles instead (halving and parity are exact on safe integers).
 */

/** True for a non-negative safe integer: the only values accepted as sizes and indexes. */
export function isTreeInteger(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

export function isOdd(value: number): boolean {
  return value % 2 === 1;
}

/** floor(value / 2): a right shift by one. */
export function half(value: number): number {
  return Math.floor(value / 2);
}

export function isPowerOfTwo(value: number): boolean {
  if (value < 1) return false;
  let v = value;
  while (v > 1) {
    if (isOdd(v)) return false;
    v = half(v);
  }
  return true;
}

/** The largest power of two strictly smaller than n (RFC 9162 §2.1.1's k), for n ≥ 2. */
export function largestPowerOfTwoBelow(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The largest power of two ≤ n, for n ≥ 1. */
export function largestPowerOfTwoAtMost(n: number): number {
  let k = 1;
  while (k * 2 <= n) k *= 2;
  return k;
}

/** Number of set bits. */
export function popCount(value: number): number {
  let v = value;
  let count = 0;
  while (v > 0) {
    if (isOdd(v)) count++;
    v = half(v);
  }
  return count;
}

/** log2 of a power of two. */
export function log2Exact(powerOfTwo: number): number {
  let level = 0;
  let v = powerOfTwo;
  while (v > 1) {
    v = half(v);
    level++;
  }
  return level;
}
