/**
 * The topic check at start (issue 3, docs/backends.md "Topic settings"): the event topic must
 * exist (or be created, when `createTopic`), have exactly one partition (the total order the
 * index and the Merkle tree rely on), never be compacted, and accept acks=all. Anything weaker than
 * the production settings is listed in one loud warning — or refused with `requireProductionTopic`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigResourceTypes } from '@platformatic/kafka';
import type { Admin, ClusterPartitionMetadata } from '@platformatic/kafka';
import type { KafkaLogConfig } from '#schemas';
import type { EventLogLogger } from '../logger.ts';
import { describeKafkaError } from './kafka-client.ts';

/** `max.message.bytes` of a topic the gateway creates: the largest record batch, so the largest call, it accepts. */
export const CREATED_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;

/** How long a topic just created may take to elect its partition's leader before the check gives up. */
const LEADER_WAIT_MS = 10_000;

/** docs/backends.md: 184 days, so that "six months" holds whatever months the period spans. */
export const PRODUCTION_RETENTION_MS = 184 * 24 * 3600 * 1000;
export const PRODUCTION_REPLICATION_FACTOR = 3;
export const PRODUCTION_MIN_INSYNC_REPLICAS = 2;

const CHECKED_CONFIGS = ['cleanup.policy', 'min.insync.replicas', 'retention.ms', 'retention.bytes', 'unclean.leader.election.enable', 'max.message.bytes'] as const;

export type TopicSettings = Pick<KafkaLogConfig, 'topic' | 'createTopic' | 'partitions' | 'replicationFactor' | 'minInsyncReplicas' | 'retentionMs' | 'requireProductionTopic'>;

export interface TopicFacts {
  readonly topic: string;
  readonly created: boolean;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number;
  readonly retentionMs: number;
  readonly retentionBytes: number;
  readonly uncleanLeaderElection: boolean;
  readonly cleanupPolicy: readonly string[];
  /** The largest record batch the topic accepts (`max.message.bytes`). */
  readonly maxMessageBytes: number;
  /** Each way the topic is weaker than the production settings (warned, or refused when required). */
  readonly weaknesses: readonly string[];
}

/** The topic cannot hold an audit log safely, or could not be checked. Nothing was written. */
export class KafkaTopicError extends Error {
  readonly code = 'ATTEST_LOG_TOPIC_REFUSED';
  readonly problems: readonly string[];
  constructor(topic: string, problems: readonly string[], options?: ErrorOptions) {
    super(`the Kafka topic "${topic}" cannot hold the audit log: ${problems.join('; ')}`, options);
    this.name = 'KafkaTopicError';
    this.problems = problems;
  }
}

/** Creates the topic when allowed and missing, then checks it; warns or throws as configured. */
export async function prepareTopic(admin: Admin, settings: TopicSettings, logger: EventLogLogger): Promise<TopicFacts> {
  const { topic } = settings;
  let created = false;
  const existing = await admin.listTopics();
  if (!existing.includes(topic)) {
    if (!settings.createTopic) {
      throw new KafkaTopicError(topic, ['it does not exist; create it with the settings in docs/backends.md, or set log.createTopic: true to let the gateway create it']);
    }
    created = await createTopic(admin, settings);
    if (created) logger.info({ topic, replicationFactor: settings.replicationFactor, minInsyncReplicas: settings.minInsyncReplicas, retentionMs: settings.retentionMs }, 'event log: Kafka topic created');
  }
  const facts = await describeTopic(admin, settings, created);
  const refusals = refusalsOf(facts);
  if (refusals.length > 0) throw new KafkaTopicError(topic, refusals);
  if (facts.weaknesses.length > 0) {
    if (settings.requireProductionTopic) throw new KafkaTopicError(topic, [...facts.weaknesses, 'log.requireProductionTopic is set, so a weaker topic is refused']);
    logger.warn(
      { topic, weaknesses: facts.weaknesses },
      `event log: the Kafka topic "${topic}" is WEAKER THAN THE PRODUCTION SETTINGS, acknowledged events can be lost or deleted early: ${facts.weaknesses.join('; ')}. Fix the topic (docs/backends.md) or set log.requireProductionTopic: true to refuse to start.`,
    );
  }
  return facts;
}

async function createTopic(admin: Admin, settings: TopicSettings): Promise<boolean> {
  const configs = [
    { name: 'cleanup.policy', value: 'delete' },
    { name: 'min.insync.replicas', value: String(settings.minInsyncReplicas) },
    { name: 'retention.ms', value: String(settings.retentionMs) },
    { name: 'retention.bytes', value: '-1' },
    { name: 'unclean.leader.election.enable', value: 'false' },
    // The shipped settings' 10 MiB (compose, Helm): the broker default (1 MiB) refuses a call carrying a 1 MB payload.
    { name: 'max.message.bytes', value: String(CREATED_MAX_MESSAGE_BYTES) },
  ];
  try {
    await admin.createTopics({ topics: [settings.topic], partitions: 1, replicas: settings.replicationFactor, configs });
    return true;
  } catch (error) {
    // Someone else created it meanwhile: it is checked like any existing topic.
    if (describeKafkaError(error).includes('already exists')) return false;
    throw new KafkaTopicError(settings.topic, [`it does not exist and could not be created (replication factor ${settings.replicationFactor}): ${describeKafkaError(error)}`], { cause: error });
  }
}

/** The topic's partitions once each has a leader (a topic just created takes a moment to elect one). */
async function partitionsOf(admin: Admin, topic: string): Promise<readonly ClusterPartitionMetadata[]> {
  const deadline = performance.now() + LEADER_WAIT_MS;
  for (;;) {
    const metadata = await admin.metadata({ topics: [topic], forceUpdate: true });
    const partitions = metadata.topics.get(topic)?.partitions ?? [];
    if ((partitions.length > 0 && partitions.every((p) => p.leader >= 0)) || performance.now() > deadline) return partitions;
    await sleep(100);
  }
}

async function describeTopic(admin: Admin, settings: TopicSettings, created: boolean): Promise<TopicFacts> {
  const { topic } = settings;
  const partitions = await partitionsOf(admin, topic);
  const described = await admin.describeConfigs({ includeSynonyms: false, resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: [...CHECKED_CONFIGS] }] });
  const entries = new Map((described[0]?.configs ?? []).map((entry) => [entry.name, entry.value]));
  const number = (name: (typeof CHECKED_CONFIGS)[number], fallback: number): number => {
    const raw = entries.get(name);
    const value = raw === null || raw === undefined ? Number.NaN : Number(raw);
    return Number.isFinite(value) ? value : fallback;
  };
  const facts = {
    topic,
    created,
    partitions: partitions.length,
    replicationFactor: partitions.length === 0 ? 0 : Math.min(...partitions.map((p) => p.replicas.length)),
    minInsyncReplicas: number('min.insync.replicas', 1),
    retentionMs: number('retention.ms', 7 * 24 * 3600 * 1000),
    retentionBytes: number('retention.bytes', -1),
    uncleanLeaderElection: entries.get('unclean.leader.election.enable') === 'true',
    cleanupPolicy: (entries.get('cleanup.policy') ?? 'delete').split(',').map((p) => p.trim()),
    maxMessageBytes: number('max.message.bytes', 1_048_588),
  };
  return { ...facts, weaknesses: weaknessesOf(facts, settings) };
}

function refusalsOf(facts: Omit<TopicFacts, 'weaknesses'>): string[] {
  const refusals: string[] = [];
  if (facts.partitions !== 1) refusals.push(`it has ${facts.partitions} partitions; Attest needs exactly one (the single total order of the log)`);
  if (facts.cleanupPolicy.includes('compact')) refusals.push(`cleanup.policy is "${facts.cleanupPolicy.join(',')}": compaction keeps only the last record per key, deleting all but one event of every session; it must be "delete"`);
  if (facts.minInsyncReplicas > facts.replicationFactor) refusals.push(`min.insync.replicas (${facts.minInsyncReplicas}) exceeds the replication factor (${facts.replicationFactor}): the broker would refuse every acks=all append`);
  return refusals;
}

function weaknessesOf(facts: Omit<TopicFacts, 'weaknesses'>, settings: TopicSettings): string[] {
  const weak: string[] = [];
  const days = (ms: number): string => `${Math.round((ms / 86_400_000) * 10) / 10} days`;
  if (facts.replicationFactor < PRODUCTION_REPLICATION_FACTOR) weak.push(`replication factor ${facts.replicationFactor} < ${PRODUCTION_REPLICATION_FACTOR}`);
  else if (facts.replicationFactor < settings.replicationFactor) weak.push(`replication factor ${facts.replicationFactor} < log.replicationFactor ${settings.replicationFactor}`);
  if (facts.minInsyncReplicas < PRODUCTION_MIN_INSYNC_REPLICAS) weak.push(`min.insync.replicas ${facts.minInsyncReplicas} < ${PRODUCTION_MIN_INSYNC_REPLICAS}: one broker's failure can lose acknowledged events`);
  else if (facts.minInsyncReplicas < settings.minInsyncReplicas) weak.push(`min.insync.replicas ${facts.minInsyncReplicas} < log.minInsyncReplicas ${settings.minInsyncReplicas}`);
  if (facts.replicationFactor > 1 && facts.minInsyncReplicas === facts.replicationFactor) weak.push(`min.insync.replicas equals the replication factor (${facts.replicationFactor}): one broker down refuses every call`);
  if (facts.uncleanLeaderElection) weak.push('unclean.leader.election.enable is true: an out-of-sync replica elected leader truncates acknowledged events');
  if (facts.retentionMs !== -1) {
    if (facts.retentionMs < PRODUCTION_RETENTION_MS) weak.push(`retention.ms ${facts.retentionMs} (${days(facts.retentionMs)}) < ${PRODUCTION_RETENTION_MS} (184 days, EU AI Act Art. 19/26(6): at least six months)`);
    else if (settings.retentionMs === -1 || facts.retentionMs < settings.retentionMs) weak.push(`retention.ms ${facts.retentionMs} (${days(facts.retentionMs)}) is shorter than log.retentionMs ${settings.retentionMs}`);
  }
  if (facts.retentionBytes >= 0) weak.push(`retention.bytes ${facts.retentionBytes}: a size limit deletes the oldest events when the topic is full, whatever their age (must be -1)`);
  return weak;
}
