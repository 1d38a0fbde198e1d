import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventHash } from '#schemas';
import type { AttestEvent } from '#schemas';
import { ChainHeads } from './chain.ts';
import { LogUnavailableError } from './port.ts';
import type { EventLogReader, StoredEvent } from './port.ts';
import { sampleDraft } from './sample-drafts.ts';
import { verifyLog } from './verify.ts';

/** 30 events over 3 streams, in log order with file positions. */
function intactLog(): StoredEvent[] {
  const heads = new ChainHeads();
  const drafts = Array.from({ length: 30 }, (_, i) => sampleDraft(`s-${i % 3}`, Math.floor(i / 3)));
  return reindex(heads.seal(drafts).map((s) => ({ event: s.event, position: { backend: 'file', index: 0, segment: 0, offset: 0 } })));
}

/** Positions as a reader would report them after records were moved: index = order. */
function reindex(events: readonly StoredEvent[]): StoredEvent[] {
  return events.map((stored, index) => ({ event: stored.event, position: { backend: 'file', index, segment: 0, offset: index * 700 } }));
}

async function* iterate(events: readonly StoredEvent[]): AsyncGenerator<StoredEvent> {
  for (const stored of events) yield stored;
}

const verify = (events: readonly StoredEvent[]): ReturnType<typeof verifyLog> => verifyLog(iterate(events));

function named(event: AttestEvent): string {
  return `event ${event.id} \\(stream ${event.stream}, seq ${event.seq}\\)`;
}

void describe('verifyLog', () => {
  void it('passes an intact log, counting events and streams', async () => {
    assert.deepEqual(await verify(intactLog()), { ok: true, eventsChecked: 30, streams: 3 });
    assert.deepEqual(await verify([]), { ok: true, eventsChecked: 0, streams: 0 });
  });

  void it('names an event whose content was altered: its hash does not match', async () => {
    const log = intactLog();
    const victim = log[7] as StoredEvent;
    log[7] = { ...victim, event: { ...victim.event, tenant: 'someone-else' } };
    const { ok, firstFailure } = await verify(log);
    assert.equal(ok, false);
    assert.equal(firstFailure?.index, 7);
    assert.equal(firstFailure?.eventId, victim.event.id);
    assert.match(firstFailure?.reason ?? '', new RegExp(`^${named(victim.event)}: hash does not match its content`));
  });

  void it('names the next event of the stream when an altered event was also re-hashed: the chain breaks', async () => {
    const log = intactLog();
    const victim = log[7] as StoredEvent;
    const altered = { ...victim.event, tenant: 'someone-else' };
    log[7] = { ...victim, event: { ...altered, hash: eventHash(altered) } };
    const { firstFailure } = await verify(log);
    assert.equal(firstFailure?.index, 10, 'the next event of the same stream');
    assert.match(firstFailure?.reason ?? '', new RegExp(`${named((log[10] as StoredEvent).event)}: its prevHash does not match the hash of seq 3 at index 7`));
  });

  void it('names a gap where events were removed', async () => {
    const log = intactLog();
    const removedOne = reindex(log.filter((_, i) => i !== 13));
    const one = (await verify(removedOne)).firstFailure;
    assert.equal(one?.index, 15, 'the event that follows the hole');
    assert.match(one?.reason ?? '', /: seq 5 of its stream is missing: it follows seq 4 at index 10 \(events were removed\)/);
    const removedTwo = reindex(log.filter((_, i) => i !== 13 && i !== 16));
    assert.match((await verify(removedTwo)).firstFailure?.reason ?? '', /seqs 5–6 of its stream are missing/);
    const removedFirst = reindex(log.slice(1));
    assert.match((await verify(removedFirst)).firstFailure?.reason ?? '', /seq 1 of its stream is missing: it follows the start of the stream/);
  });

  void it('names events that were reordered within their stream', async () => {
    const log = intactLog();
    const swapped = reindex([...log.slice(0, 13), log[16] as StoredEvent, log[14] as StoredEvent, log[15] as StoredEvent, log[13] as StoredEvent, ...log.slice(17)]);
    const { firstFailure } = await verify(swapped);
    assert.equal(firstFailure?.index, 13);
    assert.equal(firstFailure?.seq, 6);
    assert.match(firstFailure?.reason ?? '', /seq 6\): out of order: it comes before seq 5 of its stream, which follows later at index 16 \(events were reordered\)/);
  });

  void it('names duplicated events', async () => {
    const log = intactLog();
    const copied = reindex([...log.slice(0, 14), log[13] as StoredEvent, ...log.slice(14)]);
    const { firstFailure } = await verify(copied);
    assert.equal(firstFailure?.index, 14);
    assert.match(firstFailure?.reason ?? '', /it duplicates seq 5 at index 13/);
    const copiedLater = reindex([...log, log[13] as StoredEvent]);
    assert.match((await verify(copiedLater)).firstFailure?.reason ?? '', /out of order: it comes after seq 10 .* reordered or duplicated/);
  });

  void it('names holes in the global log order', async () => {
    const log = intactLog();
    const skipped = log.map((stored, i) => (i < 20 ? stored : { ...stored, position: { ...stored.position, index: i + 1 } }));
    const { firstFailure } = await verify(skipped);
    assert.equal(firstFailure?.index, 21);
    assert.match(firstFailure?.reason ?? '', /sits at log index 21 where index 20 was expected/);
  });

  void it('turns damage the reader reports into the failure, and reads from a reader', async () => {
    async function* damaged(): AsyncGenerator<StoredEvent> {
      yield* iterate(intactLog().slice(0, 4));
      throw new LogUnavailableError('ATTEST_LOG_CORRUPT', 'record at index 4 is damaged');
    }
    assert.deepEqual((await verifyLog(damaged())).firstFailure, { index: 4, reason: 'record at index 4 is damaged' });
    const reader: EventLogReader = { backend: 'file', read: () => iterate(intactLog()), follow: () => iterate([]), entries: () => iterate(intactLog()), size: () => 30, close: async () => undefined };
    assert.equal((await verifyLog(reader)).eventsChecked, 30);
    async function* broken(): AsyncGenerator<StoredEvent> {
      yield* iterate([]);
      throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', 'disk gone');
    }
    await assert.rejects(verifyLog(broken()), /disk gone/, 'an unavailable log is an error, not a verdict');
  });
});
