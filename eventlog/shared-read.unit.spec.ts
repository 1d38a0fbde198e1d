/** One underlying read shared by several readers (start-up's projections): order, once, early exits, errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { StoredEvent } from './port.ts';
import { shareRead } from './shared-read.ts';
import type { LogReadable } from './shared-read.ts';

/** A log of `count` stand-in events that counts how often it is read and how far. */
function fakeLog(count: number, failAt?: number): LogReadable & { reads: number; yielded: number; closed: boolean } {
  const log = {
    reads: 0,
    yielded: 0,
    closed: false,
    read(): AsyncIterable<StoredEvent> {
      log.reads++;
      return (async function* () {
        try {
          for (let i = 0; i < count; i++) {
            if (i === failAt) throw new Error(`damaged at ${i}`);
            log.yielded++;
            yield { event: { id: String(i) }, position: { backend: 'file', index: i, segment: 0, offset: i } } as unknown as StoredEvent;
          }
        } finally {
          log.closed = true;
        }
      })();
    },
  };
  return log;
}

async function ids(reader: LogReadable, delayEvery = 0): Promise<string[]> {
  const out: string[] = [];
  for await (const { event } of reader.read()) {
    out.push(event.id);
    if (delayEvery > 0 && out.length % delayEvery === 0) await sleep(1);
  }
  return out;
}

void describe('shareRead', () => {
  void it('gives every reader every event in order from one underlying read, readers at different speeds', async () => {
    const log = fakeLog(5_000);
    const readers = shareRead(log, 3, 64);
    const [a, b, c] = await Promise.all([ids(readers[0]!), ids(readers[1]!, 97), ids(readers[2]!, 500)]);
    const expected = Array.from({ length: 5_000 }, (_, i) => String(i));
    assert.deepEqual(a, expected);
    assert.deepEqual(b, expected);
    assert.deepEqual(c, expected);
    assert.equal(log.reads, 1);
    assert.equal(log.yielded, 5_000);
  });

  void it('keeps the readers within two chunks of each other (memory stays bounded)', async () => {
    const log = fakeLog(10_000);
    const [fast, slow] = shareRead(log, 2, 100);
    let maxLead = 0;
    let slowCount = 0;
    const fastRun = (async () => {
      for await (const _ of fast!.read()) maxLead = Math.max(maxLead, log.yielded - slowCount);
    })();
    for await (const _ of slow!.read()) {
      slowCount++;
      if (slowCount % 50 === 0) await sleep(1);
    }
    await fastRun;
    assert.ok(maxLead <= 300, `the underlying read ran ${maxLead} events ahead of the slowest reader`);
  });

  void it('lets a reader stop early without blocking the others, and closes the read when all are done', async () => {
    const log = fakeLog(3_000);
    const [quitter, stayer] = shareRead(log, 2, 50);
    const early = (async () => {
      let n = 0;
      for await (const _ of quitter!.read()) if (++n === 120) break;
      return n;
    })();
    const [n, all] = await Promise.all([early, ids(stayer!)]);
    assert.equal(n, 120);
    assert.equal(all.length, 3_000);
    assert.equal(log.closed, true);
  });

  void it('sends an error of the underlying read to every reader', async () => {
    const log = fakeLog(1_000, 700);
    const readers = shareRead(log, 3, 64);
    const results = await Promise.allSettled(readers.map((r) => ids(r)));
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      assert.match(String((result).reason), /damaged at 700/);
    }
  });
});
