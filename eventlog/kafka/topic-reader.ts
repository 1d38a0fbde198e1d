/**
 * Reads the event topic's one partition from an offset, in batches, as an async iterable. Each
 * scan sends its own Fetch requests for partition 0 from its own offset (@platformatic/kafka's
 * `Consumer.fetch`): no consumer group is joined, no offset committed, nothing is left on the
 * broker, and a scan starts in one round trip instead of a group rebalance.
 *
 * `end` bounds a read (exclusive; the high watermark or the writer's durable end when the scan
 * starts); without it the scan follows the topic until the signal aborts.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Consumer } from '@platformatic/kafka';
import type { RecordsBatch } from '@platformatic/kafka';
import { LogUnavailableError } from '../port.ts';
import { clientOptions, describeKafkaError } from './kafka-client.ts';
import type { KafkaConnection } from './kafka-client.ts';
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
/** Bytes a fetch may return (a record batch larger than this is still returned whole by the broker). */
const FETCH_MAX_BYTES = 8 * 1024 * 1024;
/** How long a read keeps retrying after failures before it gives up; a follow retries until aborted. */
const READ_RETRY_BUDGET_MS = 30_000;
const RETRY_DELAY_MS = { initial: 100, max: 1_000 };
/** A control batch (transaction markers) takes offsets but holds no records. */
const CONTROL_BATCH = 0x20;

export async function* scanTopic(connection: KafkaConnection, topic: string, options: ScanOptions): AsyncGenerator<readonly RawRecord[], void, undefined> {
  const { from, end, signal } = options;
  if (end !== undefined && from >= end) return;
  if (signal?.aborted) return;
  const consumer = new Consumer({ ...clientOptions(connection, 'reader'), retries: 1, groupId: `attest-reader-${randomUUID()}`, autocommit: false });
  let next = BigInt(from);
  const stop = end === undefined ? undefined : BigInt(end);
  let target: { readonly topicId: string; readonly leader: number } | undefined;
  let failingSince: number | undefined;
  let delay = RETRY_DELAY_MS.initial;
  try {
    while (signal?.aborted !== true && (stop === undefined || next < stop)) {
      let batches: RecordsBatch[];
      try {
        target ??= await locate(consumer, topic);
        const response = await consumer.fetch({
          node: target.leader,
          topics: [{ topicId: target.topicId, partitions: [{ partition: 0, currentLeaderEpoch: -1, fetchOffset: next, lastFetchedEpoch: -1, partitionMaxBytes: FETCH_MAX_BYTES }] }],
          maxWaitTime: FETCH_WAIT_MS,
          minBytes: 1,
          maxBytes: FETCH_MAX_BYTES,
        });
        const partition = response.responses[0]?.partitions.find((p) => p.partitionIndex === 0);
        if (partition === undefined) throw new Error(`the broker's fetch response names no partition 0 of "${topic}"`);
        if (partition.errorCode !== 0) throw new Error(`the broker answered the fetch of "${topic}" partition 0 at offset ${next} with error code ${partition.errorCode}`);
        batches = partition.records ?? [];
        failingSince = undefined;
        delay = RETRY_DELAY_MS.initial;
      } catch (error) {
        // A broker restarting, a leader moving: look the leader up again and retry. A follow waits
        // for the broker as long as it takes; a read gives it READ_RETRY_BUDGET_MS.
        target = undefined;
        failingSince ??= performance.now();
        if (stop !== undefined && performance.now() - failingSince > READ_RETRY_BUDGET_MS) {
          throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `reading the Kafka topic "${topic}" failed: ${describeKafkaError(error)}`, { cause: error });
        }
        await sleep(delay, undefined, signal === undefined ? undefined : { signal }).catch(() => undefined);
        delay = Math.min(RETRY_DELAY_MS.max, delay * 2);
        continue;
      }
      const records: RawRecord[] = [];
      for (const batch of batches) {
        const after = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
        if ((batch.attributes & CONTROL_BATCH) === 0) {
          for (const record of batch.records) {
            const offset = batch.firstOffset + BigInt(record.offsetDelta);
            // A fetch returns whole batches: records before the offset asked for, or past the end, are not ours.
            if (offset < next || (stop !== undefined && offset >= stop)) continue;
            records.push({ offset: offset.toString(), key: record.key, value: record.value, headers: headersOf(record.headers) });
          }
        }
        if (after > next) next = after;
      }
      if (records.length > 0) yield records;
    }
  } finally {
    await consumer.close(true).catch(() => undefined);
  }
}

/** The topic's id and its partition 0 leader, from fresh metadata. */
async function locate(consumer: Consumer, topic: string): Promise<{ readonly topicId: string; readonly leader: number }> {
  const metadata = await consumer.metadata({ topics: [topic], forceUpdate: true });
  const found = metadata.topics.get(topic);
  const leader = found?.partitions[0]?.leader;
  if (found === undefined || leader === undefined || leader < 0) throw new Error(`the topic "${topic}" has no partition 0 with a leader`);
  return { topicId: found.id, leader };
}

function headersOf(headers: readonly [Buffer | null, Buffer | null][]): Record<string, Buffer> | undefined {
  if (headers.length === 0) return undefined;
  const result: Record<string, Buffer> = {};
  for (const [name, value] of headers) if (name !== null && value !== null) result[name.toString('utf8')] = value;
  return result;
}
