import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AttestEventSchema, eventHash } from '#schemas';
import { ChainHeads } from '../chain.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { decodeChainFields, decodeEvent, encodeEvents } from './event-codec.ts';
import { checkFrame, encodeFrame, findNextFrame, FRAME_BAD_CRC, FRAME_BAD_LENGTH, FRAME_HEADER_BYTES, FRAME_SHORT_HEADER, FRAME_SHORT_PAYLOAD } from './framing.ts';
import { segmentFileName, segmentHolding } from './segments.ts';

void describe('framing', () => {
  const frame = encodeFrame(Buffer.from('{"hello":"world"}'));

  void it('writes [u32 BE length][u32 BE crc32][payload]', () => {
    assert.equal(frame.readUInt32BE(0), 17);
    assert.equal(frame.readUInt32BE(4), 0xd80941d1, 'CRC-32 (IEEE) of the payload, as zlib computes it');
    assert.equal(frame.subarray(FRAME_HEADER_BYTES).toString(), '{"hello":"world"}');
    assert.equal(checkFrame(frame, 0, frame.length), frame.length);
  });

  void it('names each kind of damage', () => {
    assert.equal(checkFrame(frame, 0, 7), FRAME_SHORT_HEADER);
    assert.equal(checkFrame(frame, 0, frame.length - 1), FRAME_SHORT_PAYLOAD);
    assert.equal(checkFrame(Buffer.alloc(16), 0, 16), FRAME_BAD_LENGTH, 'zeros are not a record');
    const flipped = Buffer.from(frame);
    flipped[FRAME_HEADER_BYTES + 3] = (flipped[FRAME_HEADER_BYTES + 3] as number) ^ 1;
    assert.equal(checkFrame(flipped, 0, flipped.length), FRAME_BAD_CRC);
  });

  void it('finds the next valid record after damage, or none', () => {
    const damaged = Buffer.concat([Buffer.from([9, 9, 9]), frame, Buffer.alloc(5)]);
    assert.equal(findNextFrame(damaged, 0), 3);
    assert.equal(findNextFrame(damaged, 4), -1);
  });
});

void describe('event codec', () => {
  void it('encodes sealed events as frames whose payload is their JSON, hashing correctly when parsed back (also beyond ASCII)', () => {
    const heads = new ChainHeads();
    const base = sampleDraft('ü-stream', 1);
    assert.equal(base.type, 'DecisionMade');
    const unicode = { ...base, type: 'DecisionMade', data: { decision: 'deny', stage: 'policy', ruleId: 'r-ü', reason: 'Zugriff verweigert — 🚫 „nein“', route: 'local' } } as const;
    const sealed = heads.seal([sampleDraft('ü-stream', 0), unicode, sampleDraft('other', 0)]);
    const { bytes, frameOffsets } = encodeEvents(sealed);
    assert.equal(frameOffsets[0], 0);
    let at = 0;
    for (const [i, { event }] of sealed.entries()) {
      assert.equal(frameOffsets[i], at);
      const length = checkFrame(bytes, at, bytes.length);
      assert.ok(length > 0, `frame ${i} is valid`);
      const payload = bytes.subarray(at + FRAME_HEADER_BYTES, at + length);
      const parsed = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      assert.deepEqual(parsed, JSON.parse(JSON.stringify(event)));
      assert.equal(eventHash(parsed), event.hash);
      const decoded = decodeEvent(payload);
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.entry.event, AttestEventSchema.parse(parsed));
      assert.deepEqual(decodeChainFields(payload), { stream: event.stream, seq: event.seq, hash: event.hash });
      at += length;
    }
    assert.equal(at, bytes.length);
  });

  void it('reports payloads that are not events, naming what they claim to be', () => {
    assert.deepEqual(decodeEvent(Buffer.from('{nope')), { ok: false, skipped: false, reason: 'the record is not valid JSON', claimed: {} });
    const notAnEvent = decodeEvent(Buffer.from(JSON.stringify({ id: 'x-1', stream: 's', seq: 2, type: 'Nonsense' })));
    assert.equal(notAnEvent.ok, false);
    assert.ok(!notAnEvent.ok && !notAnEvent.skipped);
    assert.deepEqual(!notAnEvent.ok && !notAnEvent.skipped && notAnEvent.claimed, { eventId: 'x-1', stream: 's', seq: 2 });
    assert.match(!notAnEvent.ok && !notAnEvent.skipped ? notAnEvent.reason : '', /not an Attest event/);
    assert.deepEqual(decodeEvent(Buffer.from(JSON.stringify({ stream: 'a' })), 'b'), { ok: false, skipped: true });
    assert.equal(decodeChainFields(Buffer.from('[1]')), null);
  });
});

void describe('segments', () => {
  void it('names segments by base index, 20 digits', () => {
    assert.equal(segmentFileName(0), '00000000000000000000.seg');
    assert.equal(segmentFileName(1234), '00000000000000001234.seg');
  });

  void it('finds the segment holding an index', () => {
    const bases = [0, 10, 25, 40];
    assert.deepEqual(
      [0, 9, 10, 24, 25, 39, 40, 1000].map((i) => segmentHolding(bases, i)),
      [0, 0, 1, 1, 2, 2, 3, 3],
    );
    assert.equal(segmentHolding([], 5), 0);
    assert.equal(segmentHolding([10, 20], 3), 0);
  });
});
