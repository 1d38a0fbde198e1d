import assert from 'node:assert/strict';
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { cursorOf } from '../cursor.ts';
import { LogUnavailableError } from '../port.ts';
import type { StoredEvent } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { openFileLog } from './file-log.ts';
import { openFileLogReader } from './file-reader.ts';
import { segmentPath } from './segments.ts';
import { collect, recordsOf, spawnWriter, tempDir } from './spec-support.ts';

/** Collects from a follow until `count` events arrived, then aborts it and waits for it to end. */
async function followUntil(iterable: (signal: AbortSignal) => AsyncIterable<StoredEvent>, count: number, timeoutMs = 20_000): Promise<StoredEvent[]> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const seen: StoredEvent[] = [];
  try {
    for await (const stored of iterable(controller.signal)) {
      seen.push(stored);
      if (seen.length >= count) controller.abort();
    }
  } finally {
    clearTimeout(timer);
  }
  return seen;
}

void describe('file log reader (another process)', () => {
  void it('follows a writer running in another process, in order, as it writes', async (t) => {
    const dir = await tempDir(t);
    const reader = await openFileLogReader(dir, { pollMs: 20 });
    t.after(() => reader.close());
    const writer = spawnWriter(t, ['stream', dir, '40', '5']);
    const seen = await followUntil((signal) => reader.follow({ signal }), 40);
    await writer.waitFor('done');
    const acked = writer.lines.filter((l) => l.startsWith('ack ')).map((l) => l.split(' ')[2]);
    assert.equal(acked.length, 40);
    assert.deepEqual(
      seen.map((s) => s.event.id),
      acked,
    );
    assert.deepEqual(
      seen.map((s) => s.position.index),
      acked.map((_, i) => i),
    );
  });

  void it('stops before a record still being written, and follow yields it once complete', async (t) => {
    const source = await tempDir(t);
    const log = await openFileLog({ dir: source });
    for (let i = 0; i < 6; i++) await log.append([sampleDraft('partial', i)]);
    await log.close();
    const { bytes, records } = await recordsOf(source, 0);
    const last = records[5] as (typeof records)[number];
    const cut = last.start + 40;

    const dir = await tempDir(t);
    await writeFile(segmentPath(dir, 0), bytes.subarray(0, cut));
    const reader = await openFileLogReader(dir, { pollMs: 20 });
    t.after(() => reader.close());
    const complete = await collect(reader.read());
    assert.equal(complete.length, 5, 'read ends before the incomplete record');
    const controller = new AbortController();
    const seen: StoredEvent[] = [];
    const following = (async () => {
      for await (const stored of reader.follow({ signal: controller.signal, after: cursorOf(complete[2] as StoredEvent) })) {
        seen.push(stored);
        if (seen.length === 3) controller.abort();
      }
    })();
    while (seen.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(seen.length, 2, 'follow waits at the incomplete record');
    await appendFile(segmentPath(dir, 0), bytes.subarray(cut));
    await following;
    assert.deepEqual(
      seen.map((s) => s.position.index),
      [3, 4, 5],
    );
    assert.equal(seen[2]?.event.id, (JSON.parse(last.payload.toString()) as { id: string }).id);
  });

  void it('refuses to read past damage that has valid records after it (ATTEST_LOG_CORRUPT, with the position)', async (t) => {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir });
    for (let i = 0; i < 6; i++) await log.append([sampleDraft('damaged', i)]);
    await log.close();
    const { bytes, records } = await recordsOf(dir, 0);
    const victim = records[2] as (typeof records)[number];
    bytes[victim.start + 30] = (bytes[victim.start + 30] as number) ^ 0x04;
    await writeFile(segmentPath(dir, 0), bytes);
    const reader = await openFileLogReader(dir);
    t.after(() => reader.close());
    const seen: StoredEvent[] = [];
    await assert.rejects(
      (async () => {
        for await (const stored of reader.read()) seen.push(stored);
      })(),
      (error: unknown) => error instanceof LogUnavailableError && error.code === 'ATTEST_LOG_CORRUPT' && error.message.includes(`offset ${victim.start}`) && /valid records follow/.test(error.message),
    );
    assert.equal(seen.length, 2, 'the records before the damage were delivered');
    assert.deepEqual(await readFile(segmentPath(dir, 0)), bytes, 'a reader never repairs');
  });

  void it('ends a follow when the reader is closed, and refuses a directory that is not there', async (t) => {
    const dir = await tempDir(t);
    const reader = await openFileLogReader(dir, { pollMs: 20 });
    const controller = new AbortController();
    const following = collect(reader.follow({ signal: controller.signal }));
    await new Promise((resolve) => setTimeout(resolve, 50));
    await reader.close();
    assert.deepEqual(await following, []);
    await assert.rejects(openFileLogReader(join(dir, 'absent')), (error: unknown) => error instanceof LogUnavailableError && error.code === 'ATTEST_LOG_UNAVAILABLE' && /no event log at .*absent: ENOENT/.test(error.message));
  });
});
