/**
 * The harness gives a real Kafka broker that acknowledges with acks=all and serves the records
 * back, in order per key, at the offsets it acknowledged.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Kafka, logLevel } from 'kafkajs';
import type { KafkaMessage } from 'kafkajs';
import { kafkaBrokers } from './index.ts';
import type { KafkaService } from './index.ts';

const RECEIVE_TIMEOUT_MS = 30_000;

describe('Kafka from the service harness', () => {
  let service: KafkaService | undefined;

  before(async () => {
    service = await kafkaBrokers();
  });

  after(async () => {
    await service?.stop();
  });

  it('names where the broker came from and at least one broker address', () => {
    assert.ok(service);
    assert.ok(['env', 'testcontainers', 'deploy/local'].includes(service.source), service.source);
    assert.ok(service.brokers.length > 0);
    for (const broker of service.brokers) assert.match(broker, /^[^\s:]+:\d+$/);
  });

  it('acknowledges records produced with acks=all and reads them back in order per key', { timeout: 90_000 }, async () => {
    assert.ok(service);
    const kafka = new Kafka({
      clientId: 'attest-harness-test',
      brokers: service.brokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 5_000,
      requestTimeout: 15_000,
      retry: { retries: 5 },
    });
    const topic = `attest-harness-${randomUUID()}`;
    const admin = kafka.admin();
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    // A short fetch wait: disconnecting waits for the fetch in flight (5 s by default).
    const consumer = kafka.consumer({ groupId: `attest-harness-${randomUUID()}`, allowAutoTopicCreation: false, maxWaitTimeInMs: 250 });
    try {
      await admin.connect();
      assert.equal(await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true }), true);

      const streams = ['session-a', 'session-b', 'session-c'];
      const sent = streams.flatMap((stream) => [1, 2, 3, 4].map((seq) => ({ key: stream, value: JSON.stringify({ stream, seq }) })));
      await producer.connect();
      const acks = await producer.send({ topic, acks: -1, messages: sent });
      assert.ok(acks.length > 0);
      for (const ack of acks) {
        assert.equal(ack.errorCode, 0);
        assert.equal(ack.topicName, topic);
        assert.match(ack.baseOffset ?? '', /^\d+$/);
      }

      const received: { partition: number; message: KafkaMessage }[] = [];
      let wake: () => void = () => undefined;
      const allReceived = new Promise<void>((resolve) => {
        wake = () => {
          if (received.length >= sent.length) resolve();
        };
      });
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ partition, message }) => {
          received.push({ partition, message });
          wake();
        },
      });
      const timedOut = AbortSignal.timeout(RECEIVE_TIMEOUT_MS);
      await Promise.race([
        allReceived,
        new Promise<never>((_, reject) => {
          timedOut.addEventListener('abort', () => reject(new Error(`received ${received.length} of ${sent.length} records within ${RECEIVE_TIMEOUT_MS} ms`)), { once: true });
        }),
      ]);

      assert.equal(received.length, sent.length);
      for (const stream of streams) {
        const ofStream = received.filter(({ message }) => message.key?.toString() === stream);
        assert.deepEqual(
          ofStream.map(({ message }) => JSON.parse(message.value?.toString() ?? 'null') as unknown),
          [1, 2, 3, 4].map((seq) => ({ stream, seq })),
          `records of ${stream} in the order produced`,
        );
        assert.equal(new Set(ofStream.map(({ partition }) => partition)).size, 1, `one key, one partition (${stream})`);
      }
      // Each partition's records start at the offset the broker acknowledged and have no gaps.
      for (const ack of acks) {
        const offsets = received.filter(({ partition }) => partition === ack.partition).map(({ message }) => Number(message.offset));
        assert.deepEqual(offsets, offsets.map((_, index) => Number(ack.baseOffset) + index));
      }
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await producer.disconnect().catch(() => undefined);
      await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
    }
  });
});
