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

describe('batches, left early', () => {
  it('does not wait for the next record of a quiet source when the consumer stops', async () => {
    let release: (() => void) | undefined;
    async function* quiet(): AsyncGenerator<number> {
      yield 1;
      // Nothing more until released: a followed log at its head.
      await new Promise<void>((resolve) => (release = resolve));
      yield 2;
    }
    const started = Date.now();
    for await (const batch of batches(quiet(), 10, 20)) {
      assert.deepEqual(batch, [1]);
      break;
    }
    assert.ok(Date.now() - started < 1_000, 'left without waiting for the quiet source');
    release?.();
  });
});
