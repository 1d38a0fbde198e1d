/** Event ↔ Kafka record, and the window of recent event ids readers skip repeats with. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventHash } from '#schemas';
import { ChainHeads } from '../chain.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { decodeChainRecord, decodeRecord, encodeRecords, EVENT_ID_HEADER, RecentIds } from './record-codec.ts';
import type { OutgoingRecord, RawRecord } from './record-codec.ts';

function recordsOf(stream: string, count: number): RawRecord[] {
  const sealed = new ChainHeads().seal(Array.from({ length: count }, (_, i) => sampleDraft(stream, i)));
  return encodeRecords(sealed).messages.map((m, i) => ({ offset: String(i), key: m.key, value: m.value, headers: { [EVENT_ID_HEADER]: idHeader(m) } }));
}

function idHeader(record: OutgoingRecord): string | undefined {
  for (const [name, value] of record.headers) if (name.toString('utf8') === EVENT_ID_HEADER) return value.toString('utf8');
  return undefined;
}

void describe('kafka record codec', () => {
  void it('round-trips sealed events: key = stream, id header, value = the hashed canonical JSON', () => {
    const sealed = new ChainHeads().seal([sampleDraft('s-1', 0), sampleDraft('s-2', 1)]);
    const { messages, bytes } = encodeRecords(sealed);
    assert.equal(messages.length, 2);
    assert.ok(bytes > messages.reduce((n, m) => n + m.value.length, 0), 'the size estimate covers key, header and record overhead');
    for (const [i, message] of messages.entries()) {
      const event = sealed[i]?.event;
      assert.equal(message.key.toString('utf8'), event?.stream);
      assert.equal(idHeader(message), event?.id);
      const decoded = decodeRecord({ offset: String(i), key: message.key, value: message.value });
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.entry.event, event);
      assert.equal(eventHash(decoded.entry.event as unknown as Record<string, unknown>), event?.hash);
    }
  });

  void it('skips other streams by key without parsing, and names a record whose envelope disagrees with its value', () => {
    const [record] = recordsOf('s-1', 1) as [RawRecord];
    assert.deepEqual(decodeRecord({ ...record, value: Buffer.from('not even json') }, 'another'), { ok: false, skipped: true });
    const wrongKey = decodeRecord({ ...record, key: Buffer.from('s-2') });
    assert.ok(!wrongKey.ok && !wrongKey.skipped && /key "s-2" is not the stream/.test(wrongKey.reason));
    const wrongId = decodeRecord({ ...record, headers: { [EVENT_ID_HEADER]: 'someone-else' } });
    assert.ok(!wrongId.ok && !wrongId.skipped && /header does not match/.test(wrongId.reason));
    const tombstone = decodeRecord({ ...record, value: null });
    assert.ok(!tombstone.ok && !tombstone.skipped && /tombstone/.test(tombstone.reason));
    const notAnEvent = decodeChainRecord({ ...record, value: Buffer.from('{"id":"x"}') });
    assert.ok(typeof notAnEvent === 'string' && /not an Attest event/.test(notAnEvent));
    const chain = decodeChainRecord(record);
    assert.ok(typeof chain !== 'string');
    assert.equal(chain.seq, 1);
  });

  void it('remembers the last N event ids: a repeat within the window is reported, older ids are forgotten', () => {
    const recent = new RecentIds(3);
    assert.equal(recent.repeat('a'), false);
    assert.equal(recent.repeat('b'), false);
    assert.equal(recent.repeat('a'), true);
    assert.equal(recent.repeat('c'), false);
    assert.equal(recent.repeat('d'), false, 'evicts a');
    assert.equal(recent.repeat('a'), false, 'a was forgotten');
    assert.equal(recent.repeat('d'), true);
  });
});
