import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setImmediate as tick } from 'node:timers/promises';
import { BatchQueue, settleRejected, settleResolved } from './batch-queue.ts';

interface Entry {
  readonly name: string;
  readonly events: number;
  readonly bytes: number;
  readonly deadline: number;
  readonly resolve: (value: string) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

function entry(name: string, events = 1, bytes = 10): Entry {
  return { name, events, bytes, deadline: Infinity, resolve: () => undefined, reject: () => undefined, settled: false };
}

/** A writer whose batches are written when the test says so. */
function harness(limits = { maxEvents: 100, maxBytes: 1_000 }) {
  const batches: string[][] = [];
  const pending: { release: (() => void) | null } = { release: null };
  const queue: BatchQueue<Entry> = new BatchQueue<Entry>({
    eventsOf: (e) => e.events,
    bytesOf: (e) => e.bytes,
    writeNext: async () => {
      const batch = queue.take(limits);
      batches.push(batch.entries.map((e) => e.name));
      await new Promise<void>((resolve) => (pending.release = resolve));
      queue.release(batch.bytes);
    },
  });
  const finish = async (): Promise<void> => {
    for (let i = 0; i < 100 && pending.release === null; i++) await tick();
    const go = pending.release;
    pending.release = null;
    go?.();
    await tick();
  };
  return { queue, batches, finish };
}

describe('BatchQueue: the group-commit skeleton of every writer', () => {
  it('appends made in one tick make one batch; those made while it is written make the next', async () => {
    const { queue, batches, finish } = harness();
    queue.push(entry('a'));
    queue.push(entry('b'));
    assert.equal(queue.pendingBytes, 20);
    await tick();
    queue.push(entry('c'));
    queue.push(entry('d'));
    await finish();
    await finish();
    await queue.whenIdle();
    assert.deepEqual(batches, [['a', 'b'], ['c', 'd']]);
    assert.equal(queue.pendingBytes, 0);
    assert.equal(queue.busy, false);
  });

  it('takes whole appends up to the limits, and one append larger than them alone', async () => {
    const { queue, batches, finish } = harness({ maxEvents: 3, maxBytes: 25 });
    queue.push(entry('a', 2));
    queue.push(entry('b', 2));
    queue.push(entry('c', 1, 100));
    queue.push(entry('d', 1, 5));
    queue.push(entry('e', 1, 5));
    for (let i = 0; i < 4; i++) await finish();
    await queue.whenIdle();
    assert.deepEqual(batches, [['a'], ['b'], ['c'], ['d', 'e']]);
  });

  it('an append queued after the last write and before the loop stops is still written', async () => {
    const { queue, batches, finish } = harness();
    queue.push(entry('a'));
    await finish();
    // The write of 'a' has resolved; the loop has not looked at the queue again yet.
    queue.push(entry('b'));
    await finish();
    await queue.whenIdle();
    assert.deepEqual(batches, [['a'], ['b']]);
  });

  it('drop empties the queue and releases the dropped bytes; shift takes the head alone', () => {
    const queue = new BatchQueue<Entry>({ eventsOf: (e) => e.events, bytesOf: (e) => e.bytes, writeNext: () => new Promise(() => undefined) });
    queue.push(entry('a'));
    queue.push(entry('b'));
    queue.push(entry('c'));
    assert.equal(queue.shift()?.name, 'a');
    assert.equal(queue.pendingBytes, 20);
    assert.deepEqual(
      queue.drop().map((e) => e.name),
      ['b', 'c'],
    );
    assert.equal(queue.pendingBytes, 0);
    assert.equal(queue.queued, 0);
  });

  it('settles an append once: the first outcome wins', () => {
    const outcomes: string[] = [];
    const e: Entry = { ...entry('a'), resolve: (value) => outcomes.push(`resolved ${value}`), reject: (error) => outcomes.push(`rejected ${error.message}`) };
    settleRejected(e, new Error('timeout'));
    settleResolved(e, 'stored');
    settleRejected(e, new Error('again'));
    assert.deepEqual(outcomes, ['rejected timeout']);
  });
});
