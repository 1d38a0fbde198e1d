/**
 * One gateway's writer on a Kafka event log: group commit (ARCHITECTURE.md "Group commit"), as in
 * the file adapter (file/group-commit.ts). Appends queue their records; one loop sends everything
 * queued as one produce request (one record batch on the topic's one partition, acks=all,
 * idempotent producer), then resolves every caller of that batch with the offsets the broker
 * acknowledged. While a batch is in flight new appends queue for the next one.
 *
 * Several writers share the partition (ARCHITECTURE.md "Several replicas"): each gateway replica
 * seals only the streams it owns (its sessions, its `system-<instance>` stream), so another
 * producer's records are normal. A batch acknowledged *beyond* the known end means others wrote in
 * between: the end advances over them and they never touch this writer's chains. Only a batch
 * acknowledged *behind* the known end is damage (the topic deleted and recreated, or truncated).
 *
 * Timeouts are the file adapter's: a caller not confirmed within appendTimeoutMs is told
 * ATTEST_LOG_TIMEOUT, and its batch stays in flight (it may still land; if it does, the chain
 * continues through it).
 *
 * Failure policy. A batch whose send fails (retries exhausted, broker gone, request rejected) may
 * still have landed: the broker can append it and lose only the response. So the batch and
 * everything queued behind it are rejected (their chain links run through it), the pending heads
 * roll back, and the writer *recovers* before it accepts another append:
 *   1. the producer is disconnected and discarded — a new one gets a new producer id, so the
 *      broker can never take a later batch for a retry of the failed one (a client that rewinds
 *      its sequence numbers after a failure — kafkajs did — gets the *old* batch's offset back for
 *      a batch with a known sequence: an acknowledgement without a write);
 *   2. the partition's tail past the last acknowledged offset is read back, and whatever of the
 *      failed batch did land becomes part of the chains (found by event id: other producers'
 *      records in the tail are stepped over);
 *   3. a new producer connects.
 * Until then appends are refused at once with ATTEST_LOG_UNAVAILABLE, naming the cause; recovery
 * retries with backoff until the broker answers, so the log recovers by itself.
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AttestEvent, EventDraft } from '#schemas';
import { AppendDeadlines } from '../append-deadlines.ts';
import { BatchQueue, settleRejected, settleResolved } from '../batch-queue.ts';
import type { Batch as QueuedBatch } from '../batch-queue.ts';
import type { ChainHead, ChainHeads } from '../chain.ts';
import { deferred } from '../file/deferred.ts';
import type { EventLogLogger } from '../logger.ts';
import { InvalidEventError, LogUnavailableError, refuseWhenQueueFull } from '../port.ts';
import type { KafkaPosition, StoredEvent } from '../port.ts';
import { describeKafkaError } from './kafka-client.ts';
import { BATCH_OVERHEAD_BYTES, decodeChainRecord, encodeRecords, headerEventId, RecentIds } from './record-codec.ts';
import type { ChainRecord, EncodedRecords, OutgoingRecord, RawRecord } from './record-codec.ts';

interface PendingAppend {
  readonly events: readonly AttestEvent[];
  /** One record per event, in order: a call is never split across batches. */
  readonly messages: readonly OutgoingRecord[];
  /** Estimated bytes in a record batch. */
  readonly bytes: number;
  /** performance.now() after which the caller is told ATTEST_LOG_TIMEOUT. */
  readonly deadline: number;
  readonly resolve: (stored: readonly StoredEvent<KafkaPosition>[]) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

/** A connected idempotent producer for the topic's partition 0. */
export interface PartitionProducer {
  /** Sends one record batch with acks=all; resolves with the offset of its first record. */
  send(messages: readonly OutgoingRecord[]): Promise<number>;
  disconnect(): Promise<void>;
}

/** What the writer needs from Kafka: the adapter passes @platformatic/kafka, unit tests a double. */
export interface KafkaWriterIo {
  connectProducer(): Promise<PartitionProducer>;
  /** Log start offset and high watermark of partition 0. */
  offsets(): Promise<{ readonly low: number; readonly high: number }>;
  /** Records of partition 0 in [from, end). */
  scan(from: number, end: number): AsyncIterable<readonly RawRecord[]>;
}

export interface KafkaWriterOptions {
  readonly topic: string;
  readonly maxBatchEvents: number;
  /** The largest record batch the topic accepts (its `max.message.bytes`). */
  readonly maxBatchBytes: number;
  readonly appendTimeoutMs: number;
  /** Admission control: appends are refused at once (ATTEST_LOG_BUSY) while this many bytes wait for Kafka. */
  readonly maxQueuedBytes: number;
  readonly logger: EventLogLogger;
}

/** A type, not an interface: it must fit the port's `Readonly<Record<string, number>>`. */
export type KafkaLogStats = {
  /** Batches acknowledged (one produce request each). */
  readonly batches: number;
  /** Events acknowledged. */
  readonly events: number;
  readonly meanBatchEvents: number;
  /** Duration of the last acknowledged produce request, ms. */
  readonly lastSendMs: number;
  readonly maxSendMs: number;
  readonly failedBatches: number;
  readonly timedOutAppends: number;
  /** Appends waiting for the next batch. */
  readonly queuedAppends: number;
  /** Estimated record bytes not yet acknowledged: queued, or in the produce request in flight. */
  readonly pendingBytes: number;
  /** Completed recoveries (producer replaced, tail re-read). */
  readonly recoveries: number;
  /** Events found in the tail during recoveries that no caller had been told about (landed after a failure or timeout). */
  readonly adoptedEvents: number;
  /** Records of other producers (other replicas) this writer stepped over: between its batches, or in a tail it re-read. */
  readonly foreignRecords: number;
  /** 1 while appends are refused until the tail has been re-read, else 0. */
  readonly recovering: 0 | 1;
};

/** Its bytes: the entries' record bytes (without the batch overhead). */
type Batch = QueuedBatch<PendingAppend>;

const RECOVERY_BACKOFF_MS = { initial: 100, max: 2_000 };
const TAIL_SETTLE_MS = 500;
const TAIL_SETTLE_ROUNDS = 5;

export class KafkaGroupCommit {
  readonly #options: KafkaWriterOptions;
  readonly #io: KafkaWriterIo;
  readonly #heads: ChainHeads;
  #recent: RecentIds;
  #producer: PartitionProducer | null;
  /**
   * Offset after the last record known to be in the partition: after this writer's last
   * acknowledged batch (every record before it, anyone's, is in the partition), or the high
   * watermark read at start or by a recovery. Other producers may have written past it since.
   */
  #end: number;
  /** Appends waiting for the next produce request; its pending bytes are what admission control reads. */
  readonly #queue = new BatchQueue<PendingAppend>({
    eventsOf: (entry) => entry.events.length,
    bytesOf: (entry) => entry.bytes,
    writeNext: () => this.#writeNext(),
    accepting: () => this.#recovering === null,
  });
  readonly #deadlines: AppendDeadlines<PendingAppend>;
  /** Why appends are refused until recovery completes; null when accepting. */
  #recovering: Error | null = null;
  #recovery: Promise<void> | null = null;
  /** Ids of events sent in a failed batch that the recovery has not found in the partition yet: they may still land. */
  readonly #unanswered = new Set<string>();
  /** Set when a batch landed behind the known end: the next tail read rebuilds every head from the topic's start. */
  #rebuild = false;
  readonly #closed = new AbortController();
  #closing: Promise<void> | null = null;

  #batches = 0;
  #events = 0;
  #lastSendMs = 0;
  #maxSendMs = 0;
  #failedBatches = 0;
  #recoveries = 0;
  #adopted = 0;
  #foreign = 0;

  constructor(options: KafkaWriterOptions, io: KafkaWriterIo, heads: ChainHeads, recent: RecentIds, producer: PartitionProducer, end: number) {
    this.#options = options;
    this.#deadlines = new AppendDeadlines({ timeoutMessage: `Kafka did not acknowledge the append within ${options.appendTimeoutMs} ms (brokers slow or unreachable, or not enough in-sync replicas); treat the call as refused. The events may still be written later.`, onExpired: (expired) => options.logger.warn({ appendTimeoutMs: options.appendTimeoutMs, topic: options.topic, expired }, 'event log: Kafka appends timed out') });
    this.#io = io;
    this.#heads = heads;
    this.#recent = recent;
    this.#producer = producer;
    this.#end = end;
  }

  /**
   * The offset after the last record this writer knows to be in the partition (see #end): every
   * event below it is readable, and the writer's own next event lands at or after it. With other
   * writers on the topic it is a lower bound of the partition's end, not a count of this writer's
   * events; readers that want the whole partition ask the broker (its high watermark).
   */
  get size(): number {
    return this.#end;
  }

  /** Non-null while recovering: the error to refuse appends with (nothing is sealed meanwhile). */
  refusal(): LogUnavailableError | null {
    const cause = this.#recovering;
    if (cause === null) return null;
    return new LogUnavailableError(
      'ATTEST_LOG_UNAVAILABLE',
      `the Kafka event log is recovering from a failed write (${cause.message}); it re-reads the topic's tail before it accepts appends again. Nothing of this append was written.`,
      { cause },
    );
  }

  /** Seals the drafts (synchronously, in call order) and queues them for the next batch; refused at once while recovering. */
  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent<KafkaPosition>[]> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    // Checked before sealing, so a refused append moves no chain head. One append may take the queue past the limit.
    const full = refuseWhenQueueFull('the Kafka event log', 'the brokers', this.#queue.pendingBytes, this.#options.maxQueuedBytes);
    if (full !== undefined) return Promise.reject(full);
    let events: AttestEvent[];
    let encoded: EncodedRecords;
    try {
      const sealed = this.#heads.seal(drafts);
      encoded = encodeRecords(sealed);
      events = sealed.map((s) => s.event);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const { promise, resolve, reject } = deferred<readonly StoredEvent<KafkaPosition>[]>();
    const entry: PendingAppend = { events, messages: encoded.messages, bytes: encoded.bytes, deadline: performance.now() + this.#options.appendTimeoutMs, resolve, reject, settled: false };
    this.#queue.push(entry);
    this.#deadlines.track(entry);
    return promise;
  }

  stats(): KafkaLogStats {
    return {
      batches: this.#batches,
      events: this.#events,
      meanBatchEvents: this.#batches === 0 ? 0 : this.#events / this.#batches,
      lastSendMs: this.#lastSendMs,
      maxSendMs: this.#maxSendMs,
      failedBatches: this.#failedBatches,
      timedOutAppends: this.#deadlines.timedOut,
      queuedAppends: this.#queue.queued,
      pendingBytes: this.#queue.pendingBytes,
      recoveries: this.#recoveries,
      adoptedEvents: this.#adopted,
      foreignRecords: this.#foreign,
      recovering: this.#recovering === null ? 0 : 1,
    };
  }

  /** Waits for every queued append to settle, stops a recovery, disconnects. Callers stop enqueueing first. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#queue.whenIdle();
      this.#closed.abort();
      await this.#recovery;
      this.#deadlines.stop();
      const producer = this.#producer;
      this.#producer = null;
      await producer?.disconnect().catch((error: unknown) => this.#options.logger.warn({ err: error }, 'event log: disconnecting the Kafka producer failed (every acknowledged event was already in Kafka)'));
    })();
    return this.#closing;
  }

  async #writeNext(): Promise<void> {
    const producer = this.#producer as PartitionProducer;
    const batch = this.#takeBatch();
    if (batch === null) return;
    const messages: OutgoingRecord[] = [];
    for (const entry of batch.entries) for (const message of entry.messages) messages.push(message);
    const started = performance.now();
    let base: number;
    try {
      base = await producer.send(messages);
    } catch (error) {
      this.#queue.release(batch.bytes);
      this.#failed(batch, error);
      return;
    }
    this.#queue.release(batch.bytes);
    const took = performance.now() - started;
    this.#lastSendMs = took;
    if (took > this.#maxSendMs) this.#maxSendMs = took;
    if (base < this.#end) {
      this.#landedBehind(batch, base);
      return;
    }
    this.#committed(batch, base);
  }

  /** The next batch, or null when the call at the head of the queue can never fit a record batch (it is refused). */
  #takeBatch(): Batch | null {
    const { maxBatchEvents, maxBatchBytes } = this.#options;
    const first = this.#queue.peek() as PendingAppend;
    if (BATCH_OVERHEAD_BYTES + first.bytes > maxBatchBytes) {
      this.#refuseOversized();
      return null;
    }
    return this.#queue.take({ maxEvents: maxBatchEvents, maxBytes: maxBatchBytes - BATCH_OVERHEAD_BYTES });
  }

  /** `base` beyond the known end is normal: other producers (replicas) wrote in between, into streams of their own. */
  #committed(batch: Batch, base: number): void {
    this.#foreign += base - this.#end;
    let offset = base;
    const { topic } = this.#options;
    for (const entry of batch.entries) {
      this.#heads.commit(entry.events);
      const stored: StoredEvent<KafkaPosition>[] = new Array<StoredEvent<KafkaPosition>>(entry.events.length);
      for (let i = 0; i < entry.events.length; i++) {
        const event = entry.events[i] as AttestEvent;
        this.#recent.repeat(event.id);
        stored[i] = { event, position: { backend: 'kafka', index: offset, topic, partition: 0, offset: String(offset) } };
        offset++;
      }
      settleResolved(entry, stored);
    }
    this.#end = offset;
    this.#batches++;
    this.#events += batch.events;
  }

  /**
   * The broker put the batch *behind* the last record known to be in the partition: the topic
   * holds fewer records than were acknowledged — it was deleted and recreated, or truncated. The
   * batch is in Kafka, so its callers get their true positions; the chains behind it cannot be
   * trusted, so everything queued is refused and every head is rebuilt from what the topic holds.
   */
  #landedBehind(batch: Batch, base: number): void {
    const expected = this.#end;
    let offset = base;
    for (const entry of batch.entries) {
      const stored = entry.events.map((event, i): StoredEvent<KafkaPosition> => ({ event, position: { backend: 'kafka', index: offset + i, topic: this.#options.topic, partition: 0, offset: String(offset + i) } }));
      offset += entry.events.length;
      settleResolved(entry, stored);
    }
    const cause = new Error(`the broker acknowledged a batch at offset ${base}, behind offset ${expected} that earlier acknowledgements reached: the topic was deleted and recreated, or truncated`);
    this.#options.logger.error(
      { topic: this.#options.topic, knownEnd: expected, acknowledgedOffset: base },
      'event log: the Kafka topic holds fewer records than were acknowledged (deleted and recreated? truncated?); appends refused until the chain heads are rebuilt from the topic',
    );
    this.#rejectQueued(new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `${cause.message}; this append, queued behind it, was not written.`, { cause }));
    this.#heads.rollback();
    this.#rebuild = true;
    this.#startRecovery(cause);
  }

  #failed(batch: Batch, error: unknown): void {
    this.#failedBatches++;
    const reason = describeKafkaError(error);
    const behind = this.#queue.queued;
    this.#options.logger.error(
      { err: error, topic: this.#options.topic, rejectedAppends: batch.entries.length + behind },
      'event log: a Kafka produce request failed; appends rejected, chain heads rolled back, re-reading the topic tail before accepting appends',
    );
    const failure = new LogUnavailableError(
      'ATTEST_LOG_UNAVAILABLE',
      `Kafka did not acknowledge the write (${reason}). The events were not acknowledged; they may still have reached the topic, in which case the log adopts them when it recovers.`,
      { cause: error },
    );
    for (const entry of batch.entries) {
      settleRejected(entry, failure);
      for (const event of entry.events) this.#unanswered.add(event.id);
    }
    this.#rejectQueued(new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `an earlier write to Kafka failed (${reason}); this append, queued behind it, was not written.`, { cause: error }));
    this.#heads.rollback();
    this.#startRecovery(error instanceof Error ? new Error(reason, { cause: error }) : new Error(reason));
  }

  /**
   * A call too large for any record batch the topic accepts. Everything queued behind it is refused
   * too — their chain links run through it — as for a failed write; nothing was sent, and nothing
   * is in flight (batches go one at a time), so the durable heads are exact and no recovery is needed.
   */
  #refuseOversized(): void {
    const entry = this.#queue.shift() as PendingAppend;
    const { maxBatchBytes, topic } = this.#options;
    const error = new InvalidEventError(
      `the append's ${entry.events.length} event(s) take about ${entry.bytes} bytes in Kafka, more than the topic "${topic}" accepts in one record batch (max.message.bytes ${maxBatchBytes}); nothing was written. Raise max.message.bytes or record less of the payload.`,
    );
    settleRejected(entry, error);
    this.#rejectQueued(new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', 'an append ahead of this one was too large for the Kafka topic and was refused; this append, whose chain ran through it, was not written.', { cause: error }));
    this.#heads.rollback();
  }

  #rejectQueued(error: Error): void {
    for (const entry of this.#queue.drop()) settleRejected(entry, error);
  }

  #startRecovery(cause: Error): void {
    this.#recovering = cause;
    this.#recovery = this.#recover();
  }

  async #recover(): Promise<void> {
    const { logger, topic } = this.#options;
    const previous = this.#producer;
    this.#producer = null;
    await previous?.disconnect().catch(() => undefined);
    const signal = this.#closed.signal;
    let delay = RECOVERY_BACKOFF_MS.initial;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        const adopted = await this.#reReadTail();
        // What did not land by now is taken as never written (README.md, "Left / risky": a stalled broker).
        const notLanded = this.#unanswered.size;
        this.#unanswered.clear();
        this.#producer = await this.#io.connectProducer();
        if (signal.aborted) return;
        this.#recoveries++;
        this.#recovering = null;
        logger.info({ topic, attempt, adoptedEvents: adopted, notLanded, size: this.#end }, 'event log: Kafka writer recovered; appends accepted again');
        return;
      } catch (error) {
        this.#recovering = new Error(describeKafkaError(error), { cause: error });
        if (attempt === 1 || attempt % 10 === 0) logger.warn({ err: error, topic, attempt }, 'event log: Kafka writer still recovering (broker unreachable?); appends are refused meanwhile');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        delay = Math.min(delay * 2, RECOVERY_BACKOFF_MS.max);
      }
    }
  }

  /**
   * Makes whatever of the failed batch landed part of the chains; returns how many events that was.
   * Then the broker must show TAIL_SETTLE_MS in which none of it landed: a broker that was stalled
   * (not dead) may still append requests the old producer sent before it was discarded, on a
   * connection other than the one this check uses; those land within moments of the broker
   * resuming, and are adopted here rather than forking a chain later. Other producers' records do
   * not count: the high watermark never holds still while other replicas write. Done at once when
   * all of the failed batch is found (nothing more of this writer's can land), and after at most
   * TAIL_SETTLE_ROUNDS rounds whatever the broker does.
   */
  async #reReadTail(): Promise<number> {
    const signal = this.#closed.signal;
    let adopted = 0;
    for (let round = 0; ; round++) {
      const { low, high } = await this.#io.offsets();
      const landed = await this.#adoptTail(low, high);
      adopted += landed;
      if (this.#unanswered.size === 0 || (round > 0 && landed === 0) || round === TAIL_SETTLE_ROUNDS || signal.aborted) return adopted;
      await sleep(TAIL_SETTLE_MS, undefined, { signal }).catch(() => undefined);
    }
  }

  /**
   * Reads the partition from the known end to `high`. Only this writer's unanswered events (by
   * event id) move its chains; other producers' records are stepped over unparsed (they belong to
   * streams this writer never seals; `attest verify` checks them). After a batch landed behind the
   * end, or when the partition is shorter than the end, every head is rebuilt from the topic's
   * start instead, as at start-up.
   */
  async #adoptTail(low: number, high: number): Promise<number> {
    const { logger, topic } = this.#options;
    if (this.#rebuild || high < this.#end) return this.#rebuildHeads(low, high);
    let foreign = 0;
    const landed: ChainRecord[] = [];
    for await (const records of this.#io.scan(this.#end, high)) {
      for (const record of records) {
        const id = headerEventId(record);
        if (id === undefined || !this.#unanswered.has(id)) {
          foreign++;
          continue;
        }
        const chain = decodeChainRecord(record);
        if (typeof chain === 'string') throw new LogUnavailableError('ATTEST_LOG_CORRUPT', `record at offset ${record.offset} of topic "${topic}": ${chain}`);
        landed.push(chain);
      }
    }
    // Applied once the whole tail was read: a scan that fails part-way is read again from the same end.
    let adopted = 0;
    let heads: Map<string, ChainHead> | null = null;
    for (const chain of landed) {
      this.#unanswered.delete(chain.id);
      if (this.#recent.repeat(chain.id)) continue;
      heads ??= new Map<string, ChainHead>(this.#heads.snapshot());
      heads.set(chain.stream, { seq: chain.seq, hash: chain.hash });
      adopted++;
    }
    if (heads !== null) this.#heads.restore(heads);
    if (adopted > 0) logger.warn({ topic, adoptedEvents: adopted }, 'event log: events of a failed Kafka write landed after all; the chains continue through them');
    this.#end = high;
    this.#foreign += foreign;
    this.#adopted += adopted;
    return adopted;
  }

  async #rebuildHeads(low: number, high: number): Promise<number> {
    const { logger, topic } = this.#options;
    logger.error({ topic, knownEnd: this.#end, highWatermark: high }, 'event log: the Kafka topic holds fewer records than were acknowledged (deleted and recreated? truncated?); rebuilding the chain heads from what it holds');
    const heads = new Map<string, ChainHead>();
    // Fresh: ids seen before the damage may be exactly the records that are still there.
    const recent = new RecentIds();
    let adopted = 0;
    for await (const records of this.#io.scan(low, high)) {
      for (const record of records) {
        const chain = decodeChainRecord(record);
        if (typeof chain === 'string') throw new LogUnavailableError('ATTEST_LOG_CORRUPT', `record at offset ${record.offset} of topic "${topic}": ${chain}`);
        if (recent.repeat(chain.id)) continue;
        heads.set(chain.stream, { seq: chain.seq, hash: chain.hash });
        adopted++;
      }
    }
    this.#heads.restore(heads);
    this.#recent = recent;
    this.#unanswered.clear();
    this.#rebuild = false;
    this.#end = high;
    this.#adopted += adopted;
    return adopted;
  }
}
