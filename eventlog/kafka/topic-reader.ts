/**
 * Reads the event topic's one partition from an offset, in batches, as an async iterable. kafkajs
 * has no assign-style consumer, so each scan joins a throwaway consumer group of its own
 * (`attest-reader-<uuid>`), seeks to its offset at every group join and never commits an offset:
 * no state is left on the broker beyond an empty group, which the broker forgets.
 *
 * `end` bounds a read (exclusive; the high watermark or the writer's durable end when the scan
 * starts); without it the scan follows the topic until the signal aborts.
 */
import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { deferred } from '../file/deferred.ts';
import type { Deferred } from '../file/deferred.ts';
import { LogUnavailableError } from '../port.ts';
import { describeKafkaError } from './kafka-client.ts';
import type { RawRecord } from './record-codec.ts';

export interface ScanOptions {
  /** First offset to yield. */
  readonly from: number;
  /** Offset to stop before (a read); omitted: follow until aborted. */
  readonly end?: number;
  readonly signal?: AbortSignal;
}

/** How long a fetch waits on the broker for new records; closing a scan waits for the fetch in flight. */
const FETCH_WAIT_MS = 250;
/** How long a read keeps restarting its consumer after retriable failures before it gives up. */
const READ_RESTART_BUDGET_MS = 30_000;

export async function* scanTopic(kafka: Kafka, topic: string, options: ScanOptions): AsyncGenerator<readonly RawRecord[], void, undefined> {
  const { from, end, signal } = options;
  if (end !== undefined && from >= end) return;
  if (signal?.aborted) return;
  const follow = end === undefined;
  const startedAt = performance.now();
  // Next offset to hand out: batches from before a seek took effect, or re-read after a
  // consumer restart, are skipped below it.
  let next = from;
  const queue: RawRecord[][] = [];
  let failure: Error | undefined;
  let stopped = false;
  /** A read has seen its last offset (by the batch's own last offset: control records take offsets too). */
  let finished = false;
  let wake: Deferred<void> | null = null;
  let drained: Deferred<void> | null = null;
  const notify = (): void => {
    wake?.resolve();
    wake = null;
  };
  const release = (): void => {
    drained?.resolve();
    drained = null;
  };
  const stop = (): void => {
    stopped = true;
    release();
    notify();
  };

  const consumer = kafka.consumer({
    groupId: `attest-reader-${randomUUID()}`,
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: FETCH_WAIT_MS,
    // kafkajs restarts a consumer after a retriable failure (a broker restarting, its group
    // coordinator still loading). A follow waits for the broker as long as it takes; a read gives
    // it READ_RESTART_BUDGET_MS, then ends with the error.
    retry: { retries: 5, restartOnFailure: async () => follow || performance.now() - startedAt < READ_RESTART_BUDGET_MS },
  });
  consumer.on(consumer.events.GROUP_JOIN, () => {
    if (!stopped) consumer.seek({ topic, partition: 0, offset: String(next) });
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (payload.restart) return;
    failure = new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `reading the Kafka topic "${topic}" failed: ${describeKafkaError(payload.error)}`, { cause: payload.error });
    stop();
  });
  const onAbort = (): void => stop();
  signal?.addEventListener('abort', onAbort, { once: true });

  try {
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async (payload) => {
          const { batch } = payload;
          if (stopped || !payload.isRunning() || payload.isStale() || batch.partition !== 0) return;
          const records: RawRecord[] = [];
          for (const message of batch.messages) {
            const offset = Number(message.offset);
            if (offset < next || (end !== undefined && offset >= end)) continue;
            records.push(message);
            next = offset + 1;
          }
          if (end !== undefined && Number(batch.lastOffset()) >= end - 1) finished = true;
          if (records.length > 0) queue.push(records);
          notify();
          if (records.length === 0) return;
          // Back-pressure: the next fetch waits until the reader has taken this batch.
          drained = deferred<void>();
          await drained.promise;
        },
      });
    } catch (error) {
      throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `the Kafka topic "${topic}" could not be read: ${describeKafkaError(error)}`, { cause: error });
    }
    for (;;) {
      const records = queue.shift();
      if (records !== undefined) {
        yield records;
        if (queue.length === 0) release();
        continue;
      }
      if (failure !== undefined) throw failure;
      if (stopped || finished) return;
      wake = deferred<void>();
      await wake.promise;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    stop();
    await consumer.disconnect().catch(() => undefined);
  }
}
