/**
 * Producer cost of the two Kafka clients in the writer's shape (issue 3's client decision): one
 * idempotent producer, acks=all, one partition, one batch in flight at a time, each batch the
 * records of 64 appenders' calls (the gateway's group commit at c64: ~96 events of ~700 bytes).
 * Closed loop for SECONDS per client; reports batches/s, events/s and this process's CPU per event.
 *
 *   ATTEST_KAFKA_BROKERS=127.0.0.1:PORT node --conditions=attest-source bench/kafka-clients.ts [seconds] [events per batch]
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import kafkajs from 'kafkajs';
import { Admin, Producer } from '@platformatic/kafka';

const brokers = (process.env['ATTEST_KAFKA_BROKERS'] ?? '').split(',').filter(Boolean);
if (brokers.length === 0) throw new Error('set ATTEST_KAFKA_BROKERS');
const SECONDS = Number(process.argv[2] ?? 5);
const PER_BATCH = Number(process.argv[3] ?? 96);
const MAX_BATCHES = 100_000;
const HEADER = Buffer.from('attest-event-id');
const value = Buffer.from(JSON.stringify({ hash: 'sha256:' + 'a'.repeat(64), body: 'x'.repeat(600) }));

interface Result { readonly client: string; readonly batches: number; readonly events: number; readonly seconds: number; readonly cpuUsPerEvent: number; readonly p50Ms: number }

async function createTopic(topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'bench-admin', bootstrapBrokers: brokers });
  await admin.createTopics({ topics: [topic], partitions: 1, replicas: 1 });
  await admin.close();
}

async function loop(client: string, send: (n: number) => Promise<void>): Promise<Result> {
  for (let i = 0; i < 50; i++) await send(i); // warm-up
  const cpu = process.cpuUsage();
  const started = performance.now();
  const latencies: number[] = [];
  let batches = 0;
  while (performance.now() - started < SECONDS * 1000 && batches < MAX_BATCHES) {
    const t = performance.now();
    await send(batches);
    latencies.push(performance.now() - t);
    batches++;
  }
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  latencies.sort((a, b) => a - b);
  return { client, batches, events: batches * PER_BATCH, seconds, cpuUsPerEvent: (used.user + used.system) / (batches * PER_BATCH), p50Ms: latencies[Math.floor(latencies.length / 2)] ?? NaN };
}

async function runKafkajs(): Promise<Result> {
  const topic = `bench-kjs-${randomUUID()}`;
  await createTopic(topic);
  const kafka = new kafkajs.Kafka({ clientId: 'bench-kjs', brokers, logLevel: kafkajs.logLevel.NOTHING });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 5, allowAutoTopicCreation: false });
  await producer.connect();
  const result = await loop('kafkajs 2.2.4', async (n) => {
    const messages = Array.from({ length: PER_BATCH }, (_, i) => ({ key: `s-${i}`, value, partition: 0, headers: { 'attest-event-id': `${n}-${i}` } }));
    await producer.sendBatch({ acks: -1, timeout: 5000, topicMessages: [{ topic, messages }] });
  });
  await producer.disconnect();
  return result;
}

async function runPlatformatic(): Promise<Result> {
  const topic = `bench-pk-${randomUUID()}`;
  await createTopic(topic);
  const producer = new Producer({ clientId: 'bench-pk', bootstrapBrokers: brokers, idempotent: true, acks: -1, timeout: 6000, retries: 3 });
  const result = await loop('@platformatic/kafka 2.12.1', async (n) => {
    const messages = Array.from({ length: PER_BATCH }, (_, i) => ({ topic, partition: 0, key: Buffer.from(`s-${i}`), value, headers: new Map([[HEADER, Buffer.from(`${n}-${i}`)]]) }));
    await producer.send({ messages });
  });
  await producer.close();
  return result;
}

const order = process.argv[4] === 'pk-first' ? [runPlatformatic, runKafkajs] : [runKafkajs, runPlatformatic];
for (let round = 0; round < 2; round++) {
  for (const run of order) {
    const r = await run();
    console.log(`${r.client.padEnd(28)} ${PER_BATCH} ev/batch: ${(r.batches / r.seconds).toFixed(0)} batches/s, ${(r.events / r.seconds).toFixed(0)} events/s, p50 ${r.p50Ms.toFixed(2)} ms, CPU ${r.cpuUsPerEvent.toFixed(1)} µs/event`);
  }
}
