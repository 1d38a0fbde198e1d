/**
 * What the Kafka adapter's specs share: the broker from the service harness (environment, then
 * testcontainers, then deploy/local — a test without a broker fails saying what was tried),
 * topics that are deleted after the test, and a logger that keeps what it was told.
 */
import { randomUUID } from 'node:crypto';
import { after } from 'node:test';
import type { TestContext } from 'node:test';
import kafkajs from 'kafkajs';
import type { Admin, IResourceConfigEntry, Kafka, Message } from 'kafkajs';
import { kafkaBrokers } from '../../test/services/index.ts';
import type { KafkaService } from '../../test/services/index.ts';
import type { EventLogLogger } from '../logger.ts';
import type { KafkaLogOptions } from './kafka-log.ts';
import type { OutgoingRecord } from './record-codec.ts';

const { Kafka: KafkaClient, logLevel } = kafkajs;

let service: Promise<KafkaService> | undefined;

// Registered when a spec file imports this module, so it runs after that file's last test.
after(async () => {
  const started = await service?.catch(() => undefined);
  await started?.stop();
});

/** The run's broker, found once per spec file (and stopped after it when this file started it). */
export function sharedBrokers(): Promise<readonly string[]> {
  service ??= kafkaBrokers();
  return service.then((s) => s.brokers);
}

/**
 * A plain kafkajs client for setting up and inspecting topics behind the adapter's back: a second,
 * independent Kafka client (the adapter itself runs on @platformatic/kafka), so what the specs
 * check on the broker is not seen through the adapter's own client.
 */
export function testClient(brokers: readonly string[]): Kafka {
  return new KafkaClient({ clientId: 'attest-kafka-spec', brokers: [...brokers], logLevel: logLevel.NOTHING, connectionTimeout: 3_000, retry: { retries: 3 } });
}

export function uniqueTopic(prefix = 'attest-test'): string {
  return `${prefix}-${randomUUID()}`;
}

/** Options for a log on a fresh topic the adapter creates; RF 1 on the one-node test broker. */
export function testLogOptions(brokers: readonly string[], topic: string, overrides: Partial<KafkaLogOptions> = {}): KafkaLogOptions {
  return { backend: 'kafka', brokers: [...brokers], topic, clientId: 'attest-test', createTopic: true, replicationFactor: 1, minInsyncReplicas: 1, appendTimeoutMs: 10_000, ...overrides };
}

/** Deletes the topic when the test ends (and any the test creates through `create`). */
export async function topicAdmin(t: TestContext | null, brokers: readonly string[]): Promise<TopicAdmin> {
  const admin = testClient(brokers).admin();
  await admin.connect();
  const topics = new Set<string>();
  const handle = new TopicAdmin(admin, topics);
  if (t !== null) t.after(() => handle.dispose());
  return handle;
}

export class TopicAdmin {
  readonly admin: Admin;
  readonly #topics: Set<string>;

  constructor(admin: Admin, topics: Set<string>) {
    this.admin = admin;
    this.#topics = topics;
  }

  /** Marks a topic the adapter creates for deletion at the end. */
  track(topic: string): string {
    this.#topics.add(topic);
    return topic;
  }

  async create(topic: string, config: Readonly<Record<string, string>> = {}, numPartitions = 1): Promise<string> {
    this.track(topic);
    const configEntries: IResourceConfigEntry[] = Object.entries(config).map(([name, value]) => ({ name, value }));
    await this.admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }] });
    return topic;
  }

  async config(topic: string): Promise<Map<string, string>> {
    const described = await this.admin.describeConfigs({ includeSynonyms: false, resources: [{ type: kafkajs.ConfigResourceTypes.TOPIC, name: topic }] });
    return new Map((described.resources[0]?.configEntries ?? []).map((e) => [e.configName, e.configValue]));
  }

  /** Writes raw records to partition 0, as another producer would. */
  async produce(topic: string, records: readonly (Message | OutgoingRecord)[], brokers: readonly string[]): Promise<void> {
    const messages: Message[] = records.map((r) => (r.headers instanceof Map ? { key: r.key, value: r.value, headers: Object.fromEntries([...r.headers].map(([k, v]) => [k.toString('utf8'), v])) } : (r as Message)));
    const producer = testClient(brokers).producer({ allowAutoTopicCreation: false, createPartitioner: kafkajs.Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      await producer.send({ topic, acks: -1, messages: messages.map((m) => ({ ...m, partition: 0 })) });
    } finally {
      await producer.disconnect();
    }
  }

  async dispose(): Promise<void> {
    try {
      if (this.#topics.size > 0) await this.admin.deleteTopics({ topics: [...this.#topics], timeout: 10_000 }).catch(() => undefined);
    } finally {
      await this.admin.disconnect();
    }
  }
}

export interface RecordingLogger extends EventLogLogger {
  readonly warnings: { readonly details: object; readonly message: string }[];
  readonly errors: { readonly details: object; readonly message: string }[];
  readonly infos: string[];
}

export function recordingLogger(): RecordingLogger {
  const warnings: { details: object; message: string }[] = [];
  const errors: { details: object; message: string }[] = [];
  const infos: string[] = [];
  return {
    warnings,
    errors,
    infos,
    info: (_details, message) => void infos.push(message),
    warn: (details, message) => void warnings.push({ details, message }),
    error: (details, message) => void errors.push({ details, message }),
  };
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
