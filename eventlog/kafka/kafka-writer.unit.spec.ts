/**
 * The Kafka writer's group commit, failure and recovery policy against an in-memory partition,
 * for the cases a real broker cannot be made to produce on demand: a batch that lands although
 * its send failed, other producers (replicas) writing between batches and during a recovery, a
 * topic truncated behind the writer's back, a send that hangs past the timeout and then succeeds,
 * a broker that stays away through several recovery attempts, a stalled broker with calls still
 * arriving (admission control).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChainHeads } from '../chain.ts';
import { deferred } from '../file/deferred.ts';
import type { Deferred } from '../file/deferred.ts';
import { silentLogger } from '../logger.ts';
import { InvalidEventError, LogUnavailableError } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { KafkaGroupCommit } from './kafka-writer.ts';
import type { KafkaWriterIo, PartitionProducer } from './kafka-writer.ts';
import { verifyLog } from '../verify.ts';
import type { StoredEvent } from '../port.ts';
import { decodeRecord, encodeRecords, RecentIds } from './record-codec.ts';
import type { OutgoingRecord, RawRecord } from './record-codec.ts';

type SendBehaviour = 'ok' | 'fail' | 'land-then-fail' | 'hang';

/** One partition in memory and a producer whose next sends can be told to misbehave. */
class FakePartition implements KafkaWriterIo {
  readonly records: RawRecord[] = [];
  readonly sends: number[] = [];
  readonly behaviours: SendBehaviour[] = [];
  producersConnected = 0;
  producersDisconnected = 0;
  offsetsFailures = 0;
  offsetsCalls = 0;
  /** Runs before each answer to offsets(): another producer writing while the writer recovers. */
  beforeOffsets: (() => void) | null = null;
  hung: Deferred<void> | null = null;

  write(messages: readonly OutgoingRecord[]): number {
    const base = this.records.length;
    for (const m of messages) this.records.push({ offset: String(this.records.length), key: m.key, value: m.value, headers: Object.fromEntries([...m.headers].map(([k, v]) => [k.toString('utf8'), v])) });
    return base;
  }

  async connectProducer(): Promise<PartitionProducer> {
    this.producersConnected++;
    return {
      send: async (messages) => {
        this.sends.push(messages.length);
        const behaviour = this.behaviours.shift() ?? 'ok';
        if (behaviour === 'fail') throw new Error('produce failed 4 times.: connect ECONNREFUSED 127.0.0.1:9');
        if (behaviour === 'land-then-fail') {
          this.hung = deferred<void>();
          await this.hung.promise;
          this.write(messages);
          throw new Error('Request timed out after 6000ms');
        }
        if (behaviour === 'hang') {
          this.hung = deferred<void>();
          await this.hung.promise;
        }
        return this.write(messages);
      },
      disconnect: async () => {
        this.producersDisconnected++;
      },
    };
  }

  async offsets(): Promise<{ low: number; high: number }> {
    this.offsetsCalls++;
    this.beforeOffsets?.();
    if (this.offsetsFailures > 0) {
      this.offsetsFailures--;
      throw new Error('Connection to 127.0.0.1:9 failed: connect ECONNREFUSED 127.0.0.1:9');
    }
    return { low: 0, high: this.records.length };
  }

  /** Scans that deliver their records and then fail (the broker lost mid-read). */
  scanFailures = 0;

  async *scan(from: number, end: number): AsyncGenerator<readonly RawRecord[]> {
    yield this.records.slice(from, end);
    if (this.scanFailures > 0) {
      this.scanFailures--;
      throw new Error('Connection to 127.0.0.1:9 closed');
    }
  }

  /** The partition as a reader sees it, for verifyLog. */
  async *stored(): AsyncGenerator<StoredEvent> {
    for (const record of this.records) {
      const decoded = decodeRecord(record);
      if (!decoded.ok) throw new Error(`offset ${record.offset}: not an event`);
      const index = Number(record.offset);
      if (decoded.entry.event === undefined) throw new Error(`offset ${record.offset}: unreadable: ${decoded.entry.reason}`);
      yield { event: decoded.entry.event, position: { backend: 'kafka', index, topic: 't', partition: 0, offset: record.offset } };
    }
  }
}

/** Another gateway replica on the same partition: its own chains, its own streams, written straight in. */
class OtherReplica {
  readonly #heads = new ChainHeads();
  readonly #partition: FakePartition;
  #n = 0;

  constructor(partition: FakePartition) {
    this.#partition = partition;
  }

  write(events = 1): void {
    const drafts = Array.from({ length: events }, () => sampleDraft('other-replica', this.#n++));
    const sealed = this.#heads.seal(drafts);
    this.#heads.commit(sealed.map((s) => s.event));
    this.#partition.write(encodeRecords(sealed).messages);
  }
}

async function writerOn(partition: FakePartition, options: { appendTimeoutMs?: number; maxBatchBytes?: number; maxQueuedBytes?: number } = {}): Promise<{ writer: KafkaGroupCommit; heads: ChainHeads }> {
  const heads = new ChainHeads();
  const writer = new KafkaGroupCommit(
    { topic: 't', maxBatchEvents: 4096, maxBatchBytes: options.maxBatchBytes ?? 1_048_588, appendTimeoutMs: options.appendTimeoutMs ?? 5_000, maxQueuedBytes: options.maxQueuedBytes ?? 256 * 1024 * 1024, logger: silentLogger },
    partition,
    heads,
    new RecentIds(),
    await partition.connectProducer(),
    0,
  );
  return { writer, heads };
}

async function recovered(writer: KafkaGroupCommit, ms = 10_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (writer.refusal() !== null) {
    if (performance.now() > deadline) throw new Error('the writer did not recover');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const isLogError =
  (code: string, pattern?: RegExp) =>
  (error: unknown): boolean =>
    error instanceof LogUnavailableError && error.code === code && (pattern === undefined || pattern.test(error.message));

void describe('kafka writer (in-memory partition)', () => {
  void it('sends concurrent appends as one batch and acknowledges each with its offsets', async () => {
    const partition = new FakePartition();
    const { writer } = await writerOn(partition);
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => writer.append([sampleDraft(`s-${i % 3}`, 0), sampleDraft(`s-${i % 3}`, 1)])));
    assert.deepEqual(partition.sends, [40], 'one produce request');
    assert.deepEqual(
      results.flat().map((s) => s.position.offset),
      Array.from({ length: 40 }, (_, i) => String(i)),
    );
    assert.equal(writer.size, 40);
    await writer.close();
    assert.equal(partition.producersDisconnected, 1);
  });

  void it('a stalled send with calls still arriving: refused at once (ATTEST_LOG_BUSY) once maxQueuedBytes wait, timed-out appends included; accepted again once the broker answers', async () => {
    const partition = new FakePartition();
    const bound = 4_000;
    const { writer, heads } = await writerOn(partition, { appendTimeoutMs: 50, maxQueuedBytes: bound });
    partition.behaviours.push('hang');
    const first = writer.append([sampleDraft('stall', 0)]);
    // Calls keep arriving while the first send hangs: ~700 bytes each against a 4,000-byte bound.
    const attempts: Promise<unknown>[] = [first.catch((error: unknown) => error)];
    for (let n = 1; n <= 12; n++) {
      attempts.push(writer.append([sampleDraft('stall', n)]).catch((error: unknown) => error));
      await new Promise((resolve) => setImmediate(resolve));
    }
    const outcomes = await Promise.all(attempts);
    const busy = outcomes.filter(isLogError('ATTEST_LOG_BUSY', /MiB waiting for the brokers \(log\.maxQueuedBytes: 0\.0 MiB\): refused at once, nothing was written/));
    const timeouts = outcomes.filter(isLogError('ATTEST_LOG_TIMEOUT'));
    assert.ok(busy.length > 0, `some appends were refused at once: ${outcomes.map((o) => (o as Error).message ?? 'ok').join(' | ')}`);
    assert.ok(timeouts.length > 0, 'the admitted ones timed out while the send hung');
    assert.ok(writer.stats().pendingBytes >= bound, 'timed-out appends still hold their bytes: the queue does not shrink while the broker is stalled');
    await assert.rejects(writer.append([sampleDraft('stall', 99)]), isLogError('ATTEST_LOG_BUSY'), 'still refused after the timeouts');
    assert.equal(heads.head('stall').seq, timeouts.length, 'a refused append sealed nothing: the chain holds only the admitted ones');
    partition.hung?.resolve();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(writer.stats().pendingBytes, 0);
    const [next] = await writer.append([sampleDraft('stall', 100)]);
    assert.equal(next?.event.seq, timeouts.length + 1, 'accepted again, chained onto the last admitted event');
    await writer.close();
  });

  void it('a failed batch that landed anyway: callers refused, the producer replaced, the events adopted before the next append chains onto them', async () => {
    const partition = new FakePartition();
    const { writer, heads } = await writerOn(partition);
    await writer.append([sampleDraft('a', 0)]);
    partition.behaviours.push('land-then-fail');
    const lost = assert.rejects(writer.append([sampleDraft('a', 1)]), isLogError('ATTEST_LOG_UNAVAILABLE', /Kafka did not acknowledge the write \(Request timed out.*may still have reached the topic/));
    // The next call queues behind the batch in flight, which the fake broker then answers.
    await new Promise((resolve) => setImmediate(resolve));
    const behind = assert.rejects(writer.append([sampleDraft('a', 2)]), isLogError('ATTEST_LOG_UNAVAILABLE', /queued behind it, was not written/));
    partition.hung?.resolve();
    await lost;
    await behind;
    await assert.rejects(writer.append([sampleDraft('a', 3)]), isLogError('ATTEST_LOG_UNAVAILABLE', /recovering from a failed write.*Nothing of this append was written/), 'refused at once while recovering');
    await recovered(writer);
    assert.equal(partition.producersDisconnected, 1, 'the old producer was discarded');
    assert.equal(partition.producersConnected, 2, 'a new producer (a new producer id)');
    assert.equal(writer.size, 2, 'the landed batch counts');
    assert.equal(heads.durableHead('a').seq, 2, 'the chain head is the landed event');
    assert.equal(writer.stats().adoptedEvents, 1);
    const [next] = await writer.append([sampleDraft('a', 4)]);
    assert.equal(next?.event.seq, 3);
    assert.equal(next?.position.offset, '2');
    await writer.close();
  });

  void it('a failed batch that did not land: the heads roll back to the last acknowledged event', async () => {
    const partition = new FakePartition();
    const { writer } = await writerOn(partition);
    const [first] = await writer.append([sampleDraft('b', 0)]);
    partition.behaviours.push('fail');
    await assert.rejects(writer.append([sampleDraft('b', 1)]), isLogError('ATTEST_LOG_UNAVAILABLE', /ECONNREFUSED/));
    await recovered(writer);
    const [next] = await writer.append([sampleDraft('b', 2)]);
    assert.equal(next?.event.seq, 2);
    assert.equal(next?.event.prevHash, first?.event.hash);
    assert.equal(writer.stats().failedBatches, 1);
    await writer.close();
  });

  void it('keeps recovering while the broker stays away, and recovers by itself once it answers', async () => {
    const partition = new FakePartition();
    const { writer } = await writerOn(partition);
    partition.behaviours.push('fail');
    partition.offsetsFailures = 3;
    await assert.rejects(writer.append([sampleDraft('c', 0)]));
    await assert.rejects(writer.append([sampleDraft('c', 1)]), isLogError('ATTEST_LOG_UNAVAILABLE', /ECONNREFUSED/));
    await recovered(writer);
    assert.equal(partition.offsetsFailures, 0);
    const [next] = await writer.append([sampleDraft('c', 2)]);
    assert.equal(next?.event.seq, 1);
    assert.equal(writer.stats().recoveries, 1);
    await writer.close();
  });

  void it('a send that outlasts the timeout: the caller hears ATTEST_LOG_TIMEOUT; when it lands the chain runs through it', async () => {
    const partition = new FakePartition();
    const { writer, heads } = await writerOn(partition, { appendTimeoutMs: 50 });
    partition.behaviours.push('hang');
    const slow = writer.append([sampleDraft('d', 0)]);
    await assert.rejects(slow, isLogError('ATTEST_LOG_TIMEOUT', /within 50 ms.*may still be written later/));
    partition.hung?.resolve();
    const [next] = await writer.append([sampleDraft('d', 1)]);
    assert.equal(next?.event.seq, 2);
    assert.equal(heads.durableHead('d').seq, 2);
    assert.equal(writer.stats().timedOutAppends, 1);
    await writer.close();
  });

  void it('two writers on one partition: each accepts the other’s records between its batches, keeps its true offsets and its own chains, refuses nothing', async () => {
    const partition = new FakePartition();
    const a = await writerOn(partition);
    const b = await writerOn(partition);
    const acked: StoredEvent[] = [];
    for (let round = 0; round < 20; round++) {
      // Concurrent calls on both writers: their batches interleave in the partition.
      const calls = [...Array.from({ length: 3 }, (_, i) => a.writer.append([sampleDraft(`a-${i}`, 2 * round), sampleDraft(`a-${i}`, 2 * round + 1)])), ...Array.from({ length: 2 }, (_, i) => b.writer.append([sampleDraft(`b-${i}`, round)]))];
      for (const stored of await Promise.all(calls)) acked.push(...stored);
    }
    assert.equal(acked.length, 20 * (3 * 2 + 2));
    for (const { event, position } of acked) assert.equal(partition.records[position.index]?.headers?.['attest-event-id']?.toString(), event.id, `event ${event.stream}/${event.seq} is at the offset it was acknowledged at`);
    const sides: readonly { writer: KafkaGroupCommit; heads: ChainHeads; streams: readonly string[]; perStream: number }[] = [
      { writer: a.writer, heads: a.heads, streams: ['a-0', 'a-1', 'a-2'], perStream: 40 },
      { writer: b.writer, heads: b.heads, streams: ['b-0', 'b-1'], perStream: 20 },
    ];
    for (const { writer, heads, streams, perStream } of sides) {
      assert.equal(writer.stats().recoveries, 0, 'no recovery: the other writer’s records are normal');
      assert.equal(writer.refusal(), null);
      for (const stream of streams) assert.equal(heads.durableHead(stream).seq, perStream, `${stream} chains on through the other writer's records`);
      for (const stream of ['a-0', 'b-0'].filter((s) => !streams.includes(s))) assert.equal(heads.durableHead(stream).seq, 0, `the other writer's stream ${stream} never moves this writer's heads`);
      assert.ok(writer.size <= partition.records.length);
      assert.ok(writer.stats().foreignRecords > 0, 'it stepped over the other writer’s records');
    }
    assert.equal(a.writer.stats().events + a.writer.stats().foreignRecords, a.writer.size, 'size: this writer’s events and the records it stepped over');
    assert.equal(partition.producersConnected, 2, 'no producer replaced');
    const verdict = await verifyLog(partition.stored());
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    assert.equal(verdict.eventsChecked, partition.records.length);
    await a.writer.close();
    await b.writer.close();
  });

  void it('a batch acknowledged behind the known end (topic truncated or recreated): callers get their true offsets, the queue is refused, every head is rebuilt from what the topic holds', async () => {
    const partition = new FakePartition();
    const { writer, heads } = await writerOn(partition);
    const [a1] = await writer.append([sampleDraft('a', 0)]);
    await writer.append([sampleDraft('b', 0)]);
    await writer.append([sampleDraft('a', 1)]);
    await writer.append([sampleDraft('a', 2)]);
    assert.equal(writer.size, 4);
    // Truncated behind the writer's back: a's seq 2 and 3 are gone, b's seq 1 and a's seq 1 remain.
    partition.records.length = 2;
    partition.behaviours.push('hang');
    const landed = writer.append([sampleDraft('b', 1), sampleDraft('b', 2), sampleDraft('b', 3)]);
    await new Promise((resolve) => setImmediate(resolve));
    const behind = assert.rejects(writer.append([sampleDraft('a', 3)]), isLogError('ATTEST_LOG_UNAVAILABLE', /behind offset 4.*recreated, or truncated.*queued behind it, was not written/));
    partition.hung?.resolve();
    const stored = await landed;
    assert.deepEqual(
      stored.map((s) => s.position.offset),
      ['2', '3', '4'],
      'acknowledged where the broker put them',
    );
    await behind;
    await recovered(writer);
    assert.equal(writer.size, 5);
    assert.deepEqual(heads.durableHead('a'), { seq: 1, hash: a1?.event.hash ?? null }, 'a’s head is its last event the topic still holds (not the lost seq 3, not empty)');
    assert.equal(heads.durableHead('b').seq, 4);
    const [next] = await writer.append([sampleDraft('a', 4)]);
    assert.equal(next?.event.seq, 2);
    assert.equal(next?.position.offset, '5');
    const verdict = await verifyLog(partition.stored());
    assert.equal(verdict.ok, true, `the chains continue from what the topic holds: ${verdict.firstFailure?.reason}`);
    await writer.close();
  });

  void it('recovery while another replica keeps writing: the landed failed batch adopted at once, the other replica’s records stepped over, its heads untouched', async () => {
    const partition = new FakePartition();
    const other = new OtherReplica(partition);
    const { writer, heads } = await writerOn(partition);
    await writer.append([sampleDraft('mine', 0)]);
    other.write(3);
    partition.behaviours.push('land-then-fail');
    const lost = assert.rejects(writer.append([sampleDraft('mine', 1)]), isLogError('ATTEST_LOG_UNAVAILABLE', /may still have reached the topic/));
    await new Promise((resolve) => setImmediate(resolve));
    other.write(2);
    // The high watermark never holds still: every look at it finds more of the other replica's records.
    partition.beforeOffsets = () => other.write(5);
    const failedAt = performance.now();
    partition.hung?.resolve();
    await lost;
    await recovered(writer);
    const took = performance.now() - failedAt;
    assert.equal(partition.offsetsCalls, 1, 'one look at the tail: everything sent without an answer was found there');
    assert.ok(took < 400, `recovered without waiting for a quiet partition (${Math.round(took)} ms)`);
    assert.equal(writer.stats().adoptedEvents, 1, 'only this writer’s own landed event adopted');
    assert.equal(heads.durableHead('mine').seq, 2);
    assert.equal(heads.durableHead('other-replica').seq, 0, 'the other replica’s stream never enters this writer’s chains');
    assert.equal(writer.size, partition.records.length);
    partition.beforeOffsets = null;
    const [next] = await writer.append([sampleDraft('mine', 2)]);
    assert.equal(next?.event.seq, 3);
    assert.equal(next?.position.index, partition.records.length - 1);
    const verdict = await verifyLog(partition.stored());
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    await writer.close();
  });

  void it('a tail read that fails part-way during recovery is read again in full: the landed batch is still adopted', async () => {
    const partition = new FakePartition();
    const other = new OtherReplica(partition);
    const { writer, heads } = await writerOn(partition);
    await writer.append([sampleDraft('mine', 0)]);
    partition.behaviours.push('land-then-fail');
    const lost = assert.rejects(writer.append([sampleDraft('mine', 1)]), isLogError('ATTEST_LOG_UNAVAILABLE'));
    await new Promise((resolve) => setImmediate(resolve));
    other.write(2);
    partition.scanFailures = 1;
    partition.hung?.resolve();
    await lost;
    await recovered(writer);
    assert.equal(partition.scanFailures, 0, 'the first tail read failed after delivering its records');
    assert.equal(writer.stats().adoptedEvents, 1);
    assert.equal(heads.durableHead('mine').seq, 2, 'the landed event is the head, although the first read of it failed');
    const [next] = await writer.append([sampleDraft('mine', 2)]);
    assert.equal(next?.event.seq, 3);
    const verdict = await verifyLog(partition.stored());
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    await writer.close();
  });

  void it('recovery while another replica keeps writing, the failed batch never landing: settles after one quiet round of its own, though the high watermark never holds still', async () => {
    const partition = new FakePartition();
    const other = new OtherReplica(partition);
    const { writer, heads } = await writerOn(partition);
    const [first] = await writer.append([sampleDraft('mine', 0)]);
    partition.behaviours.push('fail');
    partition.beforeOffsets = () => other.write(5);
    const failedAt = performance.now();
    await assert.rejects(writer.append([sampleDraft('mine', 1)]), isLogError('ATTEST_LOG_UNAVAILABLE', /ECONNREFUSED/));
    await recovered(writer);
    const took = performance.now() - failedAt;
    assert.equal(partition.offsetsCalls, 2, 'the tail read, then once more after one settle interval');
    assert.ok(took < 2_000, `recovered in one settle interval, not after every round (${Math.round(took)} ms)`);
    assert.equal(writer.stats().adoptedEvents, 0);
    assert.equal(heads.durableHead('other-replica').seq, 0);
    partition.beforeOffsets = null;
    const [next] = await writer.append([sampleDraft('mine', 2)]);
    assert.equal(next?.event.seq, 2);
    assert.equal(next?.event.prevHash, first?.event.hash);
    assert.equal(next?.position.index, partition.records.length - 1);
    assert.equal(writer.stats().foreignRecords, 10);
    const verdict = await verifyLog(partition.stored());
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    await writer.close();
  });

  void it('refuses a call too large for a record batch, and the calls queued behind it, without a recovery', async () => {
    const partition = new FakePartition();
    const { writer } = await writerOn(partition, { maxBatchBytes: 4_096 });
    await writer.append([sampleDraft('f', 0)]);
    const big = writer.append(Array.from({ length: 20 }, (_, i) => sampleDraft('f', i + 1)));
    const behind = writer.append([sampleDraft('f', 30)]);
    await assert.rejects(big, (error: unknown) => error instanceof InvalidEventError && /max\.message\.bytes 4096/.test(error.message));
    await assert.rejects(behind, isLogError('ATTEST_LOG_UNAVAILABLE', /too large/));
    assert.equal(writer.refusal(), null, 'no recovery needed: nothing was sent');
    const [next] = await writer.append([sampleDraft('f', 31)]);
    assert.equal(next?.event.seq, 2);
    await writer.close();
  });

  void it('splits a large queue into batches under the byte limit, never splitting a call', async () => {
    const partition = new FakePartition();
    const { writer } = await writerOn(partition, { maxBatchBytes: 8_192 });
    const calls = await Promise.all(Array.from({ length: 60 }, (_, i) => writer.append([sampleDraft(`g-${i % 4}`, 0), sampleDraft(`g-${i % 4}`, 1)])));
    assert.ok(partition.sends.length > 3, `${partition.sends.length} batches`);
    assert.ok(
      partition.sends.every((n) => n % 2 === 0),
      'whole calls only',
    );
    for (const stored of calls) assert.equal(Number(stored[1]?.position.offset), Number(stored[0]?.position.offset) + 1);
    await writer.close();
  });
});
