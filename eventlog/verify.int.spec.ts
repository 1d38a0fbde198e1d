/**
 * Tampering with real segment files: every change must fail verification, named at the right
 * event and position. The attacker here knows the format (rewrites frames with valid checksums).
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { AttestEvent } from '#schemas';
import { openFileLog } from './file/file-log.ts';
import { openFileLogReader } from './file/file-reader.ts';
import { encodeFrame } from './file/framing.ts';
import { listSegments, segmentFileName, segmentPath } from './file/segments.ts';
import { recordsOf, tempDir } from './file/spec-support.ts';
import type { RecordSpan } from './file/spec-support.ts';
import { verifyFileLog } from './file/verify-file-log.ts';
import { sampleDraft } from './sample-drafts.ts';
import { verifyLog } from './verify.ts';

/** A closed log of `events` events over 5 streams. */
async function writtenLog(t: TestContext, events: number, segmentBytes = 64 * 1024 * 1024): Promise<string> {
  const dir = await tempDir(t);
  const log = await openFileLog({ dir, segmentBytes });
  for (let i = 0; i < events; i++) await log.append([sampleDraft(`v-${i % 5}`, Math.floor(i / 5))]);
  const verdict = await verifyLog(log.read());
  assert.equal(verdict.ok, true, 'the in-process view verifies before any tampering');
  await log.close();
  return dir;
}

const parse = (record: RecordSpan): AttestEvent => JSON.parse(record.payload.toString('utf8')) as AttestEvent;

/** Rewrites segment 0 from payloads, each framed with a valid checksum. */
async function rewrite(dir: string, payloads: readonly Buffer[]): Promise<void> {
  await writeFile(segmentPath(dir, 0), Buffer.concat(payloads.map((p) => encodeFrame(p))));
}

void describe('verifyFileLog on tampered files', () => {
  void it('passes an untampered log, read raw, in-process or through a reader', async (t) => {
    const dir = await writtenLog(t, 50);
    assert.deepEqual(await verifyFileLog(dir), { ok: true, eventsChecked: 50, streams: 5 });
    const reader = await openFileLogReader(dir);
    assert.deepEqual(await verifyLog(reader), { ok: true, eventsChecked: 50, streams: 5 });
    await reader.close();
  });

  void it('a flipped byte: the checksum fails at that record, reported with its position', async (t) => {
    const dir = await writtenLog(t, 50);
    const { bytes, records } = await recordsOf(dir, 0);
    const victim = records[17] as RecordSpan;
    const event = parse(victim);
    const at = victim.start + 8 + victim.payload.indexOf('"occurredAt"') + 20;
    bytes[at] = (bytes[at] as number) ^ 0x01;
    await writeFile(segmentPath(dir, 0), bytes);
    const { ok, eventsChecked, firstFailure } = await verifyFileLog(dir);
    assert.equal(ok, false);
    assert.equal(eventsChecked, 17);
    assert.equal(firstFailure?.index, 17);
    assert.equal(firstFailure?.segment, 0);
    assert.equal(firstFailure?.offset, victim.start);
    assert.equal(firstFailure?.eventId, event.id, 'the damaged record is named by the id it claims');
    assert.match(firstFailure?.reason ?? '', new RegExp(`record at index 17 \\(${segmentFileName(0)}, offset ${victim.start}\\), claiming to be event ${event.id} \\(stream ${event.stream}, seq ${event.seq}\\): the record checksum does not match`));
  });

  void it('an altered field with a recomputed checksum: the hash no longer matches the content', async (t) => {
    const dir = await writtenLog(t, 50);
    const { records } = await recordsOf(dir, 0);
    const event = parse(records[17] as RecordSpan);
    const altered = { ...event, actor: { ...event.actor, id: 'someone-else' } };
    await rewrite(
      dir,
      records.map((r, i) => (i === 17 ? Buffer.from(JSON.stringify(altered)) : r.payload)),
    );
    const { firstFailure } = await verifyFileLog(dir);
    assert.equal(firstFailure?.index, 17);
    assert.equal(firstFailure?.eventId, event.id);
    assert.equal(firstFailure?.offset, (records[17] as RecordSpan).start);
    assert.equal(firstFailure?.reason, `event ${event.id} (stream ${event.stream}, seq ${event.seq}): hash does not match its content (the event was altered after it was sealed)`);
  });

  void it('a removed record: the gap in its stream is named', async (t) => {
    const dir = await writtenLog(t, 50);
    const { records } = await recordsOf(dir, 0);
    const removed = parse(records[17] as RecordSpan);
    await rewrite(
      dir,
      records.filter((_, i) => i !== 17).map((r) => r.payload),
    );
    const { firstFailure } = await verifyFileLog(dir);
    assert.equal(firstFailure?.stream, removed.stream);
    assert.equal(firstFailure?.seq, removed.seq + 1);
    assert.match(firstFailure?.reason ?? '', new RegExp(`seq ${removed.seq} of its stream is missing`));
  });

  void it('a record removed from an earlier segment: the broken segment boundary is named', async (t) => {
    const dir = await writtenLog(t, 50, 8 * 1024);
    const bases = await listSegments(dir);
    assert.ok(bases.length >= 3);
    const { records } = await recordsOf(dir, 0);
    await rewrite(
      dir,
      records.slice(0, -1).map((r) => r.payload),
    );
    const { firstFailure } = await verifyFileLog(dir);
    assert.equal(firstFailure?.segment, bases[1]);
    assert.match(firstFailure?.reason ?? '', /should start at index \d+, where the previous segment ends: 1 record\(s\) are missing/);
  });

  void it('two records of one stream swapped: the order failure is named', async (t) => {
    const dir = await writtenLog(t, 50);
    const { records } = await recordsOf(dir, 0);
    const first = parse(records[17] as RecordSpan);
    const next = records.findIndex((r, i) => i > 17 && parse(r).stream === first.stream);
    const payloads = records.map((r) => r.payload);
    [payloads[17], payloads[next]] = [payloads[next] as Buffer, payloads[17] as Buffer];
    await rewrite(dir, payloads);
    const { firstFailure } = await verifyFileLog(dir);
    assert.equal(firstFailure?.index, 17);
    assert.equal(firstFailure?.seq, first.seq + 1);
    assert.match(firstFailure?.reason ?? '', new RegExp(`out of order: it comes before seq ${first.seq} of its stream, which follows later at index ${next}`));
  });

  void it('a duplicated record is named', async (t) => {
    const dir = await writtenLog(t, 50);
    const { records } = await recordsOf(dir, 0);
    const payloads = records.map((r) => r.payload);
    payloads.splice(18, 0, payloads[17] as Buffer);
    await rewrite(dir, payloads);
    const { firstFailure } = await verifyFileLog(dir);
    assert.equal(firstFailure?.index, 18);
    assert.match(firstFailure?.reason ?? '', /it duplicates seq \d+ at index 17/);
  });

  void it('a record cut short at the end fails (after a grace look for a write in progress)', async (t) => {
    const dir = await writtenLog(t, 10);
    const bytes = await readFile(segmentPath(dir, 0));
    await writeFile(segmentPath(dir, 0), bytes.subarray(0, bytes.length - 10));
    const started = performance.now();
    const { firstFailure } = await verifyFileLog(dir, { tailGraceMs: 100 });
    assert.ok(performance.now() - started >= 100, 'looked again after the grace delay');
    assert.equal(firstFailure?.index, 9);
    assert.match(firstFailure?.reason ?? '', /shorter than its declared length; it is the last \d+ bytes of the log/);
  });

  void it('mutation: a flipped byte anywhere in any segment fails verification at the record holding it', async (t) => {
    const dir = await writtenLog(t, 50, 8 * 1024);
    const segments = await Promise.all((await listSegments(dir)).map((base) => recordsOf(dir, base)));
    assert.ok(segments.length >= 3);
    let index = 0;
    const owners: { path: string; bytes: Buffer; record: RecordSpan; index: number }[] = [];
    for (const { bytes, records } of segments) {
      for (const record of records) owners.push({ path: segmentPath(dir, record.segment), bytes, record, index: index++ });
    }
    assert.equal(owners.length, 50);
    let seed = 0x5eed;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const trials = 300;
    for (let trial = 0; trial < trials; trial++) {
      const owner = owners[random(owners.length)] as (typeof owners)[number];
      // Bias a third of the trials towards the 8 header bytes, where length and checksum live.
      const at = owner.record.start + (trial % 3 === 0 ? random(8) : random(owner.record.end - owner.record.start));
      const mutated = Buffer.from(owner.bytes);
      mutated[at] = (mutated[at] as number) ^ (1 + random(255));
      await writeFile(owner.path, mutated);
      const verdict = await verifyFileLog(dir, { tailGraceMs: 0 });
      await writeFile(owner.path, owner.bytes);
      assert.equal(verdict.ok, false, `flipping byte ${at} of ${owner.path} went unnoticed`);
      assert.equal(verdict.firstFailure?.index, owner.index, `byte ${at} of record ${owner.index}: ${verdict.firstFailure?.reason}`);
    }
    assert.equal((await verifyFileLog(dir)).ok, true, 'restored');
  });
});
