/**
 * The EventLog port: the spine of Attest. Adapters (file now; Kafka and KurrentDB later) all
 * pass one contract suite (eventlog/contract.ts).
 *
 * Write-ahead contract (COMPLIANCE.md §1): `append` resolves only once every event of the call is
 * durable by the backend's definition (file: written and fdatasync returned). It rejects with
 * LogUnavailableError when that cannot be confirmed within the configured time; the caller then
 * fails closed and forwards nothing.
 */
import type { AttestEvent, EventDraft } from '#schemas';

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

/** An event and where its backend acknowledged it; adapters narrow `P` to their own position. */
export interface StoredEvent<P extends LogPosition = LogPosition> {
  readonly event: AttestEvent;
  readonly position: P;
}

export interface ReadOptions {
  /** First global index to return (default 0). */
  readonly fromIndex?: number;
  /** Only events of this stream. */
  readonly stream?: string;
  readonly signal?: AbortSignal;
}

/** The read side of a log, for processes that must not write (`attest events --follow`, `attest verify`). */
export interface EventLogReader<P extends LogPosition = LogPosition> {
  readonly backend: P['backend'];
  /** Every durable event from `fromIndex` in log order, then ends. */
  read(options?: ReadOptions): AsyncIterable<StoredEvent<P>>;
  /** Like read, then waits for and yields new events until the signal aborts or the log closes. */
  follow(options: ReadOptions & { readonly signal: AbortSignal }): AsyncIterable<StoredEvent<P>>;
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

/** `ATTEST_LOG_BUSY`: refused at once, before sealing, because too much already waits for the storage (admission control). */
export type LogErrorCode = 'ATTEST_LOG_UNAVAILABLE' | 'ATTEST_LOG_TIMEOUT' | 'ATTEST_LOG_BUSY' | 'ATTEST_LOG_CLOSED' | 'ATTEST_LOG_CORRUPT' | 'ATTEST_LOG_LOCKED';

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
