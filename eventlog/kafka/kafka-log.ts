/**
 * The Kafka adapter of the EventLog port (issue 3; see README.md beside this file): one topic,
 * one partition (the log's total order), acks=all with the idempotent producer, record key = the
 * event's stream, value = the sealed event's canonical JSON with its hash, group commit. The chain
 * heads are rebuilt from the topic itself at every start: nothing local is trusted.
 *
 * Positions: `index` is the record's Kafka offset on partition 0 (the topic has exactly one
 * partition), so it is contiguous as long as every record of the topic is a distinct event —
 * which this writer guarantees for what it writes (README.md, "Repeats").
 */
import { Admin, Producer } from '@platformatic/kafka';
import type { z } from 'zod';
import { KafkaLogSchema, formatConfigIssues } from '#schemas';
import type { EventDraft, KafkaLogConfig } from '#schemas';
import { ChainHeads } from '../chain.ts';
import type { ChainHead } from '../chain.ts';
import type { EventLogLogger } from '../logger.ts';
import { silentLogger } from '../logger.ts';
import { LogUnavailableError } from '../port.ts';
import type { EventLog, EventLogReader, FollowOptions, KafkaPosition, LogCursor, LogEntry, ReadOptions, ResumeFrom, StoredEvent } from '../port.ts';
import { invalidCursor, matchesCursor, parseCursor } from '../cursor.ts';
import type { ParsedCursor } from '../cursor.ts';
import { positioned, readable } from '../record-decode.ts';
import { clientOptions, describeKafkaError } from './kafka-client.ts';
import type { KafkaConnection } from './kafka-client.ts';
import { KafkaGroupCommit } from './kafka-writer.ts';
import type { KafkaLogStats, KafkaWriterIo, PartitionProducer } from './kafka-writer.ts';
import { decodeChainRecord, decodeRecord, RecentIds } from './record-codec.ts';
import type { OutgoingRecord, RawRecord } from './record-codec.ts';
import { KafkaTopicError, prepareTopic } from './topic-check.ts';
import type { TopicFacts } from './topic-check.ts';
import { scanTopic } from './topic-reader.ts';

export { KafkaTopicError } from './topic-check.ts';
export type { TopicFacts } from './topic-check.ts';
export type { KafkaLogStats } from './kafka-writer.ts';

/** The `log` section of the config for `backend: kafka`; defaults as in the config reference (docs/backends.md). */
export type KafkaLogOptions = z.input<typeof KafkaLogSchema>;

export interface KafkaLogHooks {
  readonly logger?: EventLogLogger;
  /** Resume from a snapshot: read the topic only after its cursor for the heads; ATTEST_CURSOR_INVALID when it does not match. */
  readonly resume?: ResumeFrom;
}

export interface KafkaEventLog extends EventLog<KafkaPosition> {
  readonly backend: 'kafka';
  readonly topic: string;
  /** What the start-up check found (settings, weaknesses warned about). */
  readonly topicFacts: TopicFacts;
  /** Group-commit counters, for benchmarks and health endpoints. */
  stats(): KafkaLogStats;
}

export interface KafkaEventLogReader extends EventLogReader<KafkaPosition> {
  readonly backend: 'kafka';
  readonly topic: string;
}

const NOTHING: readonly StoredEvent<KafkaPosition>[] = Object.freeze([]);

/**
 * Opens the log for writing: checks (or creates) the topic, reads it from the start to rebuild
 * every stream's chain head, and connects an idempotent producer. Throws KafkaTopicError when the
 * topic is unfit, LogUnavailableError('ATTEST_LOG_UNAVAILABLE') when the brokers cannot be reached,
 * LogUnavailableError('ATTEST_LOG_CORRUPT') when a record of the topic is not an event.
 */
export async function openKafkaLog(options: KafkaLogOptions, hooks: KafkaLogHooks = {}): Promise<KafkaEventLog> {
  const config = parseConfig(options);
  const logger = hooks.logger ?? silentLogger;
  const admin = new Admin(clientOptions(config, 'admin'));
  const started = performance.now();
  await connect(admin, config);
  let producer: PartitionProducer | null = null;
  try {
    const facts = await prepareTopic(admin, config, logger).catch((error: unknown) => {
      throw error instanceof KafkaTopicError ? error : unavailable(config, 'checking the topic', error);
    });
    const io = writerIo(admin, config);
    const recent = new RecentIds();
    const { heads, end, events } = await rebuildHeads(io, config.topic, recent, hooks.resume).catch((error: unknown) => {
      throw error instanceof LogUnavailableError && error.code === 'ATTEST_CURSOR_INVALID' ? error : unavailable(config, 'reading the topic to rebuild the chain heads', error);
    });
    producer = await io.connectProducer().catch((error: unknown) => {
      throw unavailable(config, 'connecting the producer', error);
    });
    const chainHeads = new ChainHeads(heads, { knownStreamsOnly: hooks.resume !== undefined });
    const writer = new KafkaGroupCommit(
      { topic: config.topic, maxBatchEvents: config.maxBatchEvents, maxBatchBytes: facts.maxMessageBytes, appendTimeoutMs: config.appendTimeoutMs, maxQueuedBytes: config.maxQueuedBytes, logger },
      io,
      chainHeads,
      recent,
      producer,
      end,
    );
    logger.info({ topic: config.topic, brokers: config.brokers, size: end, events, streams: heads.size, ms: Math.round(performance.now() - started) }, 'event log opened (Kafka)');
    return new KafkaLog(config, admin, facts, chainHeads, writer, logger);
  } catch (error) {
    await producer?.disconnect().catch(() => undefined);
    await admin.close().catch(() => undefined);
    throw error;
  }
}

/** A read-only view of the topic for other processes (`attest events`, `attest verify`, the projector): no checks, no writes. */
export async function openKafkaLogReader(options: KafkaLogOptions, hooks: KafkaLogHooks = {}): Promise<KafkaEventLogReader> {
  const config = parseConfig(options);
  const logger = hooks.logger ?? silentLogger;
  const admin = new Admin(clientOptions(config, 'admin'));
  await connect(admin, config);
  logger.info({ topic: config.topic, brokers: config.brokers }, 'event log reader connected (Kafka)');
  return new KafkaReader(config, admin);
}

function parseConfig(options: KafkaLogOptions): KafkaLogConfig {
  const parsed = KafkaLogSchema.safeParse(options);
  if (!parsed.success) throw new TypeError(`invalid Kafka event log options:\n${formatConfigIssues(parsed.error)}`);
  return parsed.data;
}

/** The client connects lazily; a metadata request proves the brokers answer. */
async function connect(admin: Admin, config: KafkaConnection & { topic: string }): Promise<void> {
  try {
    await admin.metadata({ topics: [] });
  } catch (error) {
    await admin.close().catch(() => undefined);
    throw unavailable(config, 'connecting', error);
  }
}

function unavailable(config: KafkaConnection & { topic: string }, step: string, error: unknown): LogUnavailableError {
  if (error instanceof LogUnavailableError) return error;
  return new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `the Kafka event log (topic "${config.topic}" on ${config.brokers.join(',')}) is unavailable: ${step} failed: ${describeKafkaError(error)}`, { cause: error });
}

function writerIo(admin: Admin, config: KafkaLogConfig): KafkaWriterIo {
  return {
    async connectProducer() {
      // Idempotent (a new producer id per instance; the client numbers each batch's records so
      // the broker drops a retried duplicate), acks=all, no topic auto-creation.
      const producer = new Producer({ ...clientOptions(config, 'writer'), idempotent: true, acks: -1, autocreateTopics: false });
      try {
        // Eagerly: a producer id now, so a broker that is not there fails the connect, not the first append.
        await producer.initIdempotentProducer({});
      } catch (error) {
        await producer.close().catch(() => undefined);
        throw error;
      }
      return partitionProducer(producer, config.topic);
    },
    offsets: () => partitionOffsets(admin, config.topic),
    scan: (from, end) => scanTopic(config, config.topic, { from, end }),
  };
}

function partitionProducer(producer: Producer, topic: string): PartitionProducer {
  return {
    async send(records: readonly OutgoingRecord[]): Promise<number> {
      // Every record names partition 0: partitions added behind the gateway's back cannot split the order.
      const result = await producer.send({ messages: records.map((record) => ({ topic, partition: 0, key: record.key, value: record.value, headers: record.headers })) });
      const ack = result.offsets?.find((o) => o.topic === topic && o.partition === 0);
      const base = ack === undefined ? Number.NaN : Number(ack.offset);
      if (!Number.isSafeInteger(base) || base < 0) {
        throw new Error(`the broker's acknowledgement names no offset on partition 0 of "${topic}" (${JSON.stringify(result, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value))})`);
      }
      return base;
    },
    disconnect: () => producer.close(),
  };
}

/** Log start offset (timestamp -2: earliest) and high watermark (-1: latest) of partition 0. */
async function partitionOffsets(admin: Admin, topic: string): Promise<{ low: number; high: number }> {
  const offsetAt = async (timestamp: bigint): Promise<number> => {
    const listed = await admin.listOffsets({ topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp }] }] });
    const partition = listed.find((t) => t.name === topic)?.partitions.find((p) => p.partitionIndex === 0);
    if (partition === undefined) throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `the Kafka topic "${topic}" has no partition 0`);
    return Number(partition.offset);
  };
  const [low, high] = await Promise.all([offsetAt(-2n), offsetAt(-1n)]);
  return { low, high };
}

/**
 * Reads the partition once: the last event of each stream is its head (repeats of an event id
 * skipped). With `resume`, from the snapshot's cursor on: its record must hold the cursor's event.
 */
async function rebuildHeads(io: KafkaWriterIo, topic: string, recent: RecentIds, resume: ResumeFrom | undefined): Promise<{ heads: Map<string, ChainHead>; end: number; events: number }> {
  const { low, high } = await io.offsets();
  const heads = new Map<string, ChainHead>(resume?.heads);
  const at = resume === undefined ? undefined : parseCursor(resume.cursor, 'kafka');
  if (at !== undefined && resume !== undefined) {
    if (at.topic !== topic || at.partition !== 0) throw invalidCursor(resume.cursor, `is a cursor of topic "${at.topic}" partition ${at.partition}, not of this log (topic "${topic}" partition 0)`);
    if (at.offset < low || at.offset >= high) throw invalidCursor(resume.cursor, `points at offset ${at.offset}, outside what topic "${topic}" holds (offsets ${low} to ${high - 1}): deleted by retention, or the topic was recreated`);
  }
  let unchecked = at;
  let events = 0;
  for await (const records of io.scan(at?.offset ?? low, high)) {
    for (const record of records) {
      const chain = decodeChainRecord(record);
      if (typeof chain === 'string') throw corrupt(topic, record, chain);
      if (unchecked !== undefined) {
        if (record.offset !== String(unchecked.offset) || !matchesCursor(unchecked, chain.hash)) throw invalidCursor(resume?.cursor ?? '', `does not match the log: the record at offset ${unchecked.offset} of topic "${topic}" is another event (was the topic recreated?)`);
        unchecked = undefined;
        recent.repeat(chain.id);
        continue;
      }
      if (recent.repeat(chain.id)) continue;
      heads.set(chain.stream, { seq: chain.seq, hash: chain.hash });
      events++;
    }
  }
  return { heads, end: high, events };
}

function corrupt(topic: string, record: RawRecord, reason: string): LogUnavailableError {
  return new LogUnavailableError('ATTEST_LOG_CORRUPT', `the Kafka event log is damaged: record at offset ${record.offset} of topic "${topic}" (partition 0): ${reason}. Run \`attest verify\` for a full report.`);
}

interface Resume {
  readonly cursor: LogCursor;
  readonly at: Extract<ParsedCursor, { readonly backend: 'kafka' }>;
}

function resumeOf(topic: string, options: ReadOptions): Resume | undefined {
  if (options.after === undefined) return undefined;
  const at = parseCursor(options.after, 'kafka');
  if (at.topic !== topic || at.partition !== 0) throw invalidCursor(options.after, `is a cursor of topic "${at.topic}" partition ${at.partition}, not of this log (topic "${topic}" partition 0)`);
  return { cursor: options.after, at };
}

/**
 * Entries from a scan of the partition: decoded (record-decode.ts), repeats of an event id skipped,
 * one stream only when asked. Damage ends the iteration with ATTEST_LOG_CORRUPT. With `resume`, the
 * scan starts at the cursor's own record, which must hold the cursor's event (ATTEST_CURSOR_INVALID
 * otherwise), and yields what follows it.
 */
async function* decodeScan(topic: string, batches: AsyncIterable<readonly RawRecord[]>, stream: string | undefined, resume: Resume | undefined, trusted = false): AsyncGenerator<LogEntry<KafkaPosition>, void, undefined> {
  const recent = new RecentIds();
  let unchecked = resume;
  for await (const records of batches) {
    for (const record of records) {
      if (unchecked !== undefined) {
        const chain = decodeChainRecord(record);
        if (record.offset !== String(unchecked.at.offset) || typeof chain === 'string' || !matchesCursor(unchecked.at, chain.hash)) {
          throw invalidCursor(unchecked.cursor, `does not match the log: the record at offset ${unchecked.at.offset} of topic "${topic}" is ${record.offset === String(unchecked.at.offset) ? 'another event' : 'missing'} (was the topic recreated?)`);
        }
        recent.repeat(chain.id);
        unchecked = undefined;
        continue;
      }
      const decoded = decodeRecord(record, stream, trusted);
      if (!decoded.ok) {
        if (decoded.skipped) continue;
        throw corrupt(topic, record, decoded.reason);
      }
      if (recent.repeat((decoded.entry.event ?? decoded.entry.envelope).id)) continue;
      yield positioned(decoded.entry, { backend: 'kafka', index: Number(record.offset), topic, partition: 0, offset: record.offset });
    }
  }
  if (unchecked !== undefined) throw invalidCursor(unchecked.cursor, `does not match the log: topic "${topic}" holds no record at offset ${unchecked.at.offset} (was it recreated or truncated?)`);
}

/** The read side shared by the writer's log and stand-alone readers; `end()` says where a read stops. */
abstract class KafkaReadSide {
  readonly backend = 'kafka' as const;
  readonly topic: string;
  protected readonly connection: KafkaLogConfig;
  protected readonly admin: Admin;
  readonly #follows = new Set<AbortController>();

  constructor(config: KafkaLogConfig, admin: Admin) {
    this.topic = config.topic;
    this.connection = config;
    this.admin = admin;
  }

  /** Where a read started now stops (exclusive), given the partition's high watermark. */
  protected abstract end(highWatermark: number): number;

  read(options: ReadOptions = {}): AsyncIterable<StoredEvent<KafkaPosition>> {
    return this.#readable(this.entries(options));
  }

  follow(options: FollowOptions): AsyncIterable<StoredEvent<KafkaPosition>> {
    return this.#readable(this.entries({ ...options, follow: true }));
  }

  entries(options: ReadOptions & { readonly follow?: boolean } = {}): AsyncIterable<LogEntry<KafkaPosition>> {
    return options.follow === true ? this.#follow(options) : this.#read(options);
  }

  /** Ends every follow in progress (the log closes). */
  protected endFollows(): void {
    for (const controller of this.#follows) controller.abort();
    this.#follows.clear();
  }

  protected async offsets(): Promise<{ low: number; high: number }> {
    try {
      return await partitionOffsets(this.admin, this.topic);
    } catch (error) {
      throw unavailable(this.connection, 'reading the partition offsets', error);
    }
  }

  async *#readable(entries: AsyncIterable<LogEntry<KafkaPosition>>): AsyncGenerator<StoredEvent<KafkaPosition>, void, undefined> {
    for await (const entry of entries) {
      const stored = readable(entry, `the Kafka event log (topic "${this.topic}")`);
      if (stored !== null) yield stored;
    }
  }

  /** Where a scan starts: the log start offset, or the cursor's own record (which retention must not have deleted). */
  async #start(resume: Resume | undefined): Promise<{ from: number; high: number }> {
    const { low, high } = await this.offsets();
    if (resume === undefined) return { from: low, high };
    if (resume.at.offset < low) throw invalidCursor(resume.cursor, `points at offset ${resume.at.offset} of topic "${this.topic}", deleted by retention (the log now starts at offset ${low}): events after it may be gone too`);
    return { from: resume.at.offset, high };
  }

  async *#read(options: ReadOptions): AsyncGenerator<LogEntry<KafkaPosition>, void, undefined> {
    const resume = resumeOf(this.topic, options);
    const { from, high } = await this.#start(resume);
    const scan = scanTopic(this.connection, this.topic, { from, end: Math.max(this.end(high), resume === undefined ? 0 : resume.at.offset + 1), ...(options.signal === undefined ? {} : { signal: options.signal }) });
    yield* decodeScan(this.topic, scan, options.stream, resume, options.trusted);
  }

  async *#follow(options: ReadOptions): AsyncGenerator<LogEntry<KafkaPosition>, void, undefined> {
    const resume = resumeOf(this.topic, options);
    const { from } = await this.#start(resume);
    const controller = new AbortController();
    this.#follows.add(controller);
    try {
      const signal = options.signal === undefined ? controller.signal : AbortSignal.any([options.signal, controller.signal]);
      yield* decodeScan(this.topic, scanTopic(this.connection, this.topic, { from, signal }), options.stream, resume, options.trusted);
    } finally {
      this.#follows.delete(controller);
    }
  }
}

class KafkaLog extends KafkaReadSide implements KafkaEventLog {
  readonly topicFacts: TopicFacts;
  readonly #heads: ChainHeads;
  readonly #writer: KafkaGroupCommit;
  readonly #logger: EventLogLogger;
  #closing: Promise<void> | null = null;

  constructor(config: KafkaLogConfig, admin: Admin, facts: TopicFacts, heads: ChainHeads, writer: KafkaGroupCommit, logger: EventLogLogger) {
    super(config, admin);
    this.topicFacts = facts;
    this.#heads = heads;
    this.#writer = writer;
    this.#logger = logger;
  }

  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent<KafkaPosition>[]> {
    if (this.#closing !== null) return Promise.reject(new LogUnavailableError('ATTEST_LOG_CLOSED', `the Kafka event log (topic "${this.topic}") is closed; nothing was written`));
    if (drafts.length === 0) return Promise.resolve(NOTHING);
    return this.#writer.append(drafts);
  }

  head(stream: string): ChainHead {
    return this.#heads.durableHead(stream);
  }

  size(): number {
    return this.#writer.size;
  }

  stats(): KafkaLogStats {
    return this.#writer.stats();
  }

  /** In-process reads see what this writer knows to be in the partition, like the file adapter's. */
  protected end(highWatermark: number): number {
    return Math.min(this.#writer.size, highWatermark);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#writer.close();
      this.endFollows();
      await this.admin.close().catch(() => undefined);
      this.#logger.info({ topic: this.topic, size: this.#writer.size }, 'event log closed (Kafka)');
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

class KafkaReader extends KafkaReadSide implements KafkaEventLogReader {
  #closing: Promise<void> | null = null;

  /** The high watermark: every record acknowledged to acks=all producers. */
  protected end(highWatermark: number): number {
    return highWatermark;
  }

  /** The partition's high watermark: the offset the next record takes. */
  async size(): Promise<number> {
    return (await this.offsets()).high;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.endFollows();
      await this.admin.close().catch(() => undefined);
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
