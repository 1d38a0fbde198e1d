/**
 * The EventLog port: the spine of Attest. Adapters (file now; Kafka and KurrentDB later) all
 * pass one contract suite (eventlog/contract.ts).
 *
 * Write-ahead contract (COMPLIANCE.md §1): `append` resolves only once every event of the call is
 * durable by the backend's definition (file: written and fdatasync returned). It rejects with
 * LogUnavailableError when that cannot be confirmed within the configured time; the caller then
 * fails closed and forwards nothing.
 */
import type { AttestEvent, EventDraft, UnreadableProblem } from '#schemas';

/**
 * Where an event sits in a backend. `index` is the global log order: 0-based and contiguous for
 * file and Kafka (the Merkle leaf index), monotonic for KurrentDB (its $all commit position).
 * file: `segment` names the segment file by its base index (the global index of its first record,
 * Kafka-style: `00000000000000000042.seg`), `offset` is the byte offset of the record's frame in it.
 * kafka: the acknowledged topic/partition/offset (offset as a decimal string: Kafka offsets are int64).
 * kurrent: the session stream and its revision, and the $all commit/prepare positions.
 */
export type LogPosition =
  | { readonly backend: 'file'; readonly index: number; readonly segment: number; readonly offset: number }
  | { readonly backend: 'kafka'; readonly index: number; readonly topic: string; readonly partition: number; readonly offset: string }
  | { readonly backend: 'kurrent'; readonly index: number; readonly stream: string; readonly revision: string; readonly commit: string; readonly prepare: string };

export type FilePosition = Extract<LogPosition, { readonly backend: 'file' }>;
export type KafkaPosition = Extract<LogPosition, { readonly backend: 'kafka' }>;
export type KurrentPosition = Extract<LogPosition, { readonly backend: 'kurrent' }>;

/**
 * Where a reader resumes: taken from an event it read (`cursorOf(stored)`, eventlog/cursor.ts) and
 * passed back as `read({ after })` / `follow({ after })`, which yield the events strictly after
 * it. It means the same on every backend, names its log (a file log's cursor is refused by a Kafka
 * reader), and carries the event's hash, so a cursor that no longer matches the log (replaced,
 * truncated, rewritten) is an error (ATTEST_CURSOR_INVALID), never a silent skip. Opaque: store it
 * as a string, do not parse it.
 */
export type LogCursor = string & { readonly __logCursor: unique symbol };

/** An event and where its backend acknowledged it; adapters narrow `P` to their own position. */
export interface StoredEvent<P extends LogPosition = LogPosition> {
  /** In the current major version's shape (upcast when written by an older one). */
  readonly event: AttestEvent;
  readonly position: P;
  /** The event as written, when `event` is an upcast of it: the chain hash and the Merkle leaf cover this form. */
  readonly written?: Readonly<Record<string, unknown>>;
  /**
   * The record's JSON text as the backend stored it (file, Kafka; absent when upcast): the Merkle
   * leaf is hashed from its canonical part when that part is provably the canonical form
   * (evidence/leaf.ts), instead of canonicalising the event again. Not enumerable: not part of the
   * entry's JSON, of copies (`{ ...entry }`) or of deep equality.
   */
  readonly storedText?: string;
}

/** The envelope fields every record of a log carries, whatever its version or type. */
export interface EventEnvelope {
  readonly id: string;
  readonly type: string;
  readonly stream: string;
  readonly seq: number;
  readonly prevHash: string | null;
  readonly hash: string;
  readonly schemaVersion: unknown;
}

/**
 * A record that passed the backend's integrity checks and is an Attest event by its envelope, but
 * that this version cannot read (`problem`, as `readEvent` in #schemas says). It still belongs to
 * its chain and to the Merkle tree: `written` is what they cover.
 */
export interface UnreadableEvent<P extends LogPosition = LogPosition> {
  readonly event?: undefined;
  readonly position: P;
  readonly envelope: EventEnvelope;
  readonly written: Readonly<Record<string, unknown>>;
  readonly problem: UnreadableProblem;
  readonly reason: string;
}

/** One record of the log as `entries()` yields it: an event, or one this version cannot read. */
export type LogEntry<P extends LogPosition = LogPosition> = StoredEvent<P> | UnreadableEvent<P>;

export interface ReadOptions {
  /** Resume strictly after the event this cursor was taken at; omitted: from the start of the log. */
  readonly after?: LogCursor;
  /** Only events of this stream. */
  readonly stream?: string;
  /**
   * Skip the schema check of events of the current major version (their envelope and integrity are
   * still checked): for a process that folds events its own writer validated when it sealed them
   * (the gateway's snapshot worker), where the check is most of a read's cost. Default false.
   */
  readonly trusted?: boolean;
  readonly signal?: AbortSignal;
}

export interface FollowOptions extends ReadOptions {
  readonly signal: AbortSignal;
}

/**
 * Where a writer's start-up resumes instead of reading the whole log: a snapshot taken at a cursor
 * (the gateway's), the chain heads of the streams that can still be appended to, and how many
 * records the log held up to and including the cursor's. The writer reads only what follows the
 * cursor, refuses to begin a stream it does not know unless with an opener (chain.ts), and throws
 * ATTEST_CURSOR_INVALID when the cursor does not match the log (the caller opens without resume).
 */
export interface ResumeFrom {
  readonly cursor: LogCursor;
  readonly heads: ReadonlyMap<string, { readonly seq: number; readonly hash: string | null }>;
  readonly size: number;
}

/** What a fold needs of a log to read it from the start or after a cursor. */
export interface LogReadable<P extends LogPosition = LogPosition> {
  read(options?: ReadOptions): AsyncIterable<StoredEvent<P>>;
}

/** The read side of a log, for processes that must not write (`attest events --follow`, `attest verify`, the projector). */
export interface EventLogReader<P extends LogPosition = LogPosition> {
  readonly backend: P['backend'];
  /**
   * Every durable event after `after` in log order, then ends. Events of a type this version does
   * not know (a newer minor version added it) are skipped; an event it cannot read at all (a newer
   * major version, or a shape that breaks its schema) ends the read with ATTEST_EVENT_UNREADABLE.
   */
  read(options?: ReadOptions): AsyncIterable<StoredEvent<P>>;
  /** Like read, then waits for and yields new events until the signal aborts or the log closes. */
  follow(options: FollowOptions): AsyncIterable<StoredEvent<P>>;
  /** Every record after `after`, readable or not (the verifier, a projector's quarantine); follows with `follow: true`. */
  entries(options?: ReadOptions & { readonly follow?: boolean }): AsyncIterable<LogEntry<P>>;
  /**
   * How many records the log holds: the index the next one takes (file, Kafka: every record ever
   * appended, those removed by retention included), or the number of this log's events in `$all`
   * (KurrentDB, counted by a read). A writer knows it without I/O.
   */
  size(): number | Promise<number>;
  close(): Promise<void>;
}

export interface EventLog<P extends LogPosition = LogPosition> extends EventLogReader<P> {
  /**
   * Seals the drafts into their streams' hash chains (seq, prevHash, hash) synchronously, in call
   * order, then resolves once all of them are durable. Events of one call are contiguous in the
   * log and acknowledged together (a crash mid-write can leave a prefix of an unacknowledged call:
   * the reconciler's business, like any unacknowledged write).
   * Rejects with LogUnavailableError (and leaves the chains as if the call never happened when
   * nothing was written), or with InvalidEventError when a draft breaks the event contract.
   */
  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent<P>[]>;
  /** Durable chain head of a stream: its last durable seq and hash (seq 0 / null when empty). */
  head(stream: string): { readonly seq: number; readonly hash: string | null };
  /** Number of durable events in the log. */
  size(): number;
  /** Backend counters (batches, mean batch size, flush times …) for /healthz and benchmarks. */
  stats?(): Readonly<Record<string, number>>;
  /**
   * Registers the one listener told of every durable batch (group commit): its event count and the
   * time its write and sync took, ms. Called synchronously on the writer's path: it must be cheap and
   * must not throw. Optional: only backends that batch implement it (today: file).
   */
  onBatch?(listener: BatchListener): void;
  /** Stops accepting appends, waits for those already accepted, releases the storage. Idempotent. */
  close(): Promise<void>;
}

export type BatchListener = (events: number, durationMs: number) => void;

/**
 * `ATTEST_LOG_BUSY`: refused at once, before sealing, because too much already waits for the storage (admission control).
 * `ATTEST_EVENT_UNREADABLE`: an intact event this version cannot read (a newer major version; a shape that breaks its schema).
 * `ATTEST_CURSOR_INVALID`: a cursor of another log, or one whose event is no longer where it was (replaced, truncated, rewritten).
 */
export type LogErrorCode = 'ATTEST_LOG_UNAVAILABLE' | 'ATTEST_LOG_TIMEOUT' | 'ATTEST_LOG_BUSY' | 'ATTEST_LOG_CLOSED' | 'ATTEST_LOG_CORRUPT' | 'ATTEST_LOG_LOCKED' | 'ATTEST_EVENT_UNREADABLE' | 'ATTEST_CURSOR_INVALID';

export class LogUnavailableError extends Error {
  readonly code: LogErrorCode;
  constructor(code: LogErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LogUnavailableError';
    this.code = code;
  }
}

const mebibytes = (bytes: number): string => (bytes / (1024 * 1024)).toFixed(1);

/**
 * Admission control, the same for every backend: refuse an append at once, before sealing, while
 * `maxQueuedBytes` or more wait for the storage. `log` names the log ("the Kafka event log"),
 * `storage` what it waits for ("the brokers").
 */
export function refuseWhenQueueFull(log: string, storage: string, pendingBytes: number, maxQueuedBytes: number): LogUnavailableError | undefined {
  if (pendingBytes < maxQueuedBytes) return undefined;
  return new LogUnavailableError('ATTEST_LOG_BUSY', `${log} has ${mebibytes(pendingBytes)} MiB waiting for ${storage} (log.maxQueuedBytes: ${mebibytes(maxQueuedBytes)} MiB): refused at once, nothing was written; the storage is slower than the load`);
}

/**
 * A draft that breaks the event contract (zod) or has no canonical JSON form. Nothing was sealed or
 * written; the caller has a bug, and fails closed like for an unavailable log.
 */
export class InvalidEventError extends Error {
  readonly code = 'ATTEST_EVENT_INVALID';
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InvalidEventError';
  }
}
