/**
 * Segment files. Each is named after its base index — the global index of its first record —
 * zero-padded to 20 digits (`00000000000000000042.seg`, as Kafka names its segments), so a reader
 * finds the segment holding any index from the directory listing alone, and a missing segment
 * shows as a break in the numbering.
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

const SEGMENT_NAME = /^(\d{20})\.seg$/;

export function segmentFileName(base: number): string {
  return `${String(base).padStart(20, '0')}.seg`;
}

export function segmentPath(dir: string, base: number): string {
  return join(dir, segmentFileName(base));
}

/** Base indexes of the segments in `dir`, ascending. */
export async function listSegments(dir: string): Promise<number[]> {
  const bases: number[] = [];
  for (const name of await readdir(dir)) {
    const match = SEGMENT_NAME.exec(name);
    if (match !== null) bases.push(Number(match[1]));
  }
  return bases.sort((a, b) => a - b);
}

/** Position of the last segment whose base is ≤ index (0 when the index precedes them all). */
export function segmentHolding(bases: readonly number[], index: number): number {
  let lo = 0;
  let hi = bases.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((bases[mid] as number) <= index) {
      found = mid;
      lo = mid + 1;
    } else {
      hi = mid - 1;
    }
  }
  return found;
}
