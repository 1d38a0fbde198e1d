/** Batching: bounded size, a flush when the source pauses, nothing lost or reordered across batches. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { batches } from './batches.ts';

async function* paced(items: readonly (number | 'pause')[]): AsyncGenerator<number> {
  for (const item of items) {
    if (item === 'pause') await new Promise((resolve) => setTimeout(resolve, 80));
    else yield item;
  }
}

async function collect(source: AsyncIterable<number>, max: number, waitMs: number): Promise<number[][]> {
  const out: number[][] = [];
  for await (const batch of batches(source, max, waitMs)) out.push(batch);
  return out;
}

describe('batches', () => {
  it('cuts at the size bound', async () => {
    assert.deepEqual(await collect(paced([1, 2, 3, 4, 5, 6, 7]), 3, 1_000), [[1, 2, 3], [4, 5, 6], [7]]);
  });

  it('writes what arrived when the source pauses, and keeps the read that was pending for the next batch', async () => {
    assert.deepEqual(await collect(paced([1, 2, 'pause', 3, 4, 'pause', 5]), 100, 20), [[1, 2], [3, 4], [5]]);
  });

  it('ends with the source, including an empty one', async () => {
    assert.deepEqual(await collect(paced([]), 10, 10), []);
  });
});
