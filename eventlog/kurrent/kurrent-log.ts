/**
 * The KurrentDB (EventStoreDB) adapter of the EventLog port: a stream per session (plus the
 * `system-<instance>` streams), each named `${streamPrefix}${stream}`; every append with the exact
 * expected revision and Attest's event id as KurrentDB's; reads and follows over `$all` with a
 * server-side filter on the prefix. README.md in this folder has the guarantees and the settings.
 */
import { formatConfigIssues, KurrentLogSchema } from '#schemas';
import type { EventDraft, KurrentLogConfig } from '#schemas';
import type { z } from 'zod';
import { ChainHeads } from '../chain.ts';
import type { ChainHead } from '../chain.ts';
import type { EventLogLogger } from '../logger.ts';
import { silentLogger } from '../logger.ts';
import { LogUnavailableError } from '../port.ts';
import type { EventLog, EventLogReader, FollowOptions, KurrentPosition, LogEntry, ReadOptions, ResumeFrom, StoredEvent } from '../port.ts';
import { chainOf } from '../record-decode.ts';
import { connectKurrent, redactConnectionString } from './kurrent-client.ts';
import type { KurrentClient } from './kurrent-client.ts';
import { countEntries, followEntries, readableEntries, readEntries } from './kurrent-reader.ts';
import { KurrentWriter } from './kurrent-writer.ts';
import type { KurrentWriterStats } from './kurrent-writer.ts';

export type { KurrentClient } from './kurrent-client.ts';
export type { KurrentWriterStats } from './kurrent-writer.ts';

export interface KurrentLogHooks {
  readonly logger?: EventLogLogger;
  /** Makes the client; default: `@kurrent/kurrentdb-client` on `config.connectionString`. Unit specs pass an in-memory fake. */
  readonly connect?: (connectionString: string) => KurrentClient;
  /** Resume from a snapshot: read `$all` only after its cursor for the heads and the size. */
  readonly resume?: ResumeFrom;
}

export interface KurrentEventLog extends EventLog<KurrentPosition> {
  readonly backend: 'kurrent';
  readonly streamPrefix: string;
  /** Group-commit counters, for benchmarks and health endpoints. */
  stats(): KurrentWriterStats;
}

/** Most events in one batch (one append per stream of the batch). */
const MAX_BATCH_EVENTS = 1024;
/** Most canonical-JSON bytes in one batch: half of KurrentDB's default MaxAppendSize (1 MiB), so no stream's append reaches it. */
const MAX_BATCH_BYTES = 512 * 1024;

const NOTHING: readonly StoredEvent<KurrentPosition>[] = Object.freeze([]);

/** The `log` section for `backend: kurrent` as written (defaults not yet applied). */
export type KurrentLogOptions = z.input<typeof KurrentLogSchema>;

function parseConfig(config: KurrentLogOptions): KurrentLogConfig {
  const parsed = KurrentLogSchema.safeParse(config);
  if (!parsed.success) throw new TypeError(`invalid kurrent event log options:\n${formatConfigIssues(parsed.error)}`);
  return parsed.data;
}

/**
 * Opens the log for writing. Counts the log's events and notes each stream's last event with one
 * filtered pass over `$all` (so `size()` and `head()` hold from the start; the cost grows with the
 * log, like the file backend's start-up scan); each stream's head is confirmed against the server
 * again before this process first appends to it.
 */
export async function openKurrentLog(config: KurrentLogOptions, hooks: KurrentLogHooks = {}): Promise<KurrentEventLog> {
  const { connectionString, streamPrefix, appendTimeoutMs, maxQueuedBytes } = parseConfig(config);
  const logger = hooks.logger ?? silentLogger;
  const client = (hooks.connect ?? connectKurrent)(connectionString);
  try {
    const heads = new Map<string, ChainHead>(hooks.resume?.heads);
    let size = hooks.resume?.size ?? 0;
    for await (const entry of readEntries(client, streamPrefix, hooks.resume === undefined ? {} : { after: hooks.resume.cursor })) {
      size++;
      const { stream, seq, hash } = chainOf(entry);
      heads.set(stream, { seq, hash });
    }
    const chains = new ChainHeads(heads, { knownStreamsOnly: hooks.resume !== undefined });
    const writer = new KurrentWriter(client, { prefix: streamPrefix, appendTimeoutMs, maxBatchEvents: MAX_BATCH_EVENTS, maxBatchBytes: MAX_BATCH_BYTES, maxQueuedBytes, logger }, chains, size);
    logger.info({ kurrentdb: redactConnectionString(connectionString), streamPrefix, events: size, streams: heads.size }, 'event log opened (KurrentDB)');
    return new KurrentLog(client, streamPrefix, writer, chains, logger);
  } catch (error) {
    await disposeQuietly(client);
    throw openFailure(error, connectionString);
  }
}

/** A read-only view of a KurrentDB log, for processes that must not write (`attest events`, `attest verify`). */
export async function openKurrentLogReader(config: KurrentLogOptions, hooks: Pick<KurrentLogHooks, 'connect'> = {}): Promise<EventLogReader<KurrentPosition>> {
  const { connectionString, streamPrefix } = parseConfig(config);
  const client = (hooks.connect ?? connectKurrent)(connectionString);
  const closed = new AbortController();
  let closing: Promise<void> | null = null;
  return {
    backend: 'kurrent',
    read: (options?: ReadOptions) => readableEntries(readEntries(client, streamPrefix, options), streamPrefix),
    follow: (options) => readableEntries(followEntries(client, streamPrefix, { ...options, signal: AbortSignal.any([options.signal, closed.signal]) }), streamPrefix),
    entries: (options = {}) => (options.follow === true ? followEntries(client, streamPrefix, { ...options, signal: AbortSignal.any([options.signal ?? closed.signal, closed.signal]) }) : readEntries(client, streamPrefix, options)),
    size: () => countEntries(client, streamPrefix),
    close: () => {
      closing ??= (async () => {
        closed.abort();
        await disposeQuietly(client);
      })();
      return closing;
    },
  };
}

class KurrentLog implements KurrentEventLog {
  readonly backend = 'kurrent' as const;
  readonly streamPrefix: string;
  readonly #client: KurrentClient;
  readonly #writer: KurrentWriter;
  readonly #heads: ChainHeads;
  readonly #logger: EventLogLogger;
  readonly #closed = new AbortController();
  #closing: Promise<void> | null = null;

  constructor(client: KurrentClient, streamPrefix: string, writer: KurrentWriter, heads: ChainHeads, logger: EventLogLogger) {
    this.#client = client;
    this.streamPrefix = streamPrefix;
    this.#writer = writer;
    this.#heads = heads;
    this.#logger = logger;
  }

  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent<KurrentPosition>[]> {
    if (this.#closing !== null) return Promise.reject(new LogUnavailableError('ATTEST_LOG_CLOSED', `the KurrentDB event log (streams ${this.streamPrefix}*) is closed; nothing was written`));
    if (drafts.length === 0) return Promise.resolve(NOTHING);
    return this.#writer.append(drafts);
  }

  read(options: ReadOptions = {}): AsyncIterable<StoredEvent<KurrentPosition>> {
    return readableEntries(this.entries(options), this.streamPrefix);
  }

  follow(options: FollowOptions): AsyncIterable<StoredEvent<KurrentPosition>> {
    return readableEntries(this.entries({ ...options, follow: true }), this.streamPrefix);
  }

  entries(options: ReadOptions & { readonly follow?: boolean } = {}): AsyncIterable<LogEntry<KurrentPosition>> {
    if (options.follow !== true) return readEntries(this.#client, this.streamPrefix, options);
    return followEntries(this.#client, this.streamPrefix, { ...options, signal: AbortSignal.any([options.signal ?? this.#closed.signal, this.#closed.signal]) });
  }

  head(stream: string): ChainHead {
    return this.#heads.durableHead(stream);
  }

  /** Events in the log when it was opened plus those this process appended since (other writers' later events are not counted). */
  size(): number {
    return this.#writer.size;
  }

  stats(): KurrentWriterStats {
    return this.#writer.stats();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#writer.close();
      this.#closed.abort();
      await disposeQuietly(this.#client);
      this.#logger.info({ streamPrefix: this.streamPrefix, events: this.#writer.size }, 'event log closed (KurrentDB)');
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

async function disposeQuietly(client: KurrentClient): Promise<void> {
  try {
    await client.dispose();
  } catch {
    // The connection is going away either way.
  }
}

function openFailure(error: unknown, connectionString: string): Error {
  if (error instanceof TypeError) return error;
  const code = error instanceof LogUnavailableError ? error.code : 'ATTEST_LOG_UNAVAILABLE';
  const message = error instanceof Error ? error.message : String(error);
  return new LogUnavailableError(code, `the KurrentDB event log at ${redactConnectionString(connectionString)} could not be opened: ${message}`, { cause: error });
}
