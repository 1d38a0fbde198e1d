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

/** Where an event sits in a backend. `index` is the 0-based global log order (Merkle leaf index). */
export type LogPosition =
  | { readonly backend: 'file'; readonly index: number; readonly segment: number; readonly offset: number };

export interface StoredEvent {
  readonly event: AttestEvent;
  readonly position: LogPosition;
}

export interface ReadOptions {
  /** First global index to return (default 0). */
  readonly fromIndex?: number;
  /** Only events of this stream. */
  readonly stream?: string;
  readonly signal?: AbortSignal;
}

export interface EventLog {
  readonly backend: LogPosition['backend'];
  /**
   * Seals the drafts into their streams' hash chains (seq, prevHash, hash) synchronously, in call
   * order, then resolves once all of them are durable. Events of one call are committed together.
   * Rejects with LogUnavailableError (and leaves the chains as if the call never happened when
   * nothing was written).
   */
  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]>;
  /** Every durable event from `fromIndex` in log order, then ends. */
  read(options?: ReadOptions): AsyncIterable<StoredEvent>;
  /** Like read, then waits for and yields new events until the signal aborts. */
  follow(options: ReadOptions & { readonly signal: AbortSignal }): AsyncIterable<StoredEvent>;
  /** Chain head of a stream: its last seq and hash (seq 0 / null when empty). */
  head(stream: string): { readonly seq: number; readonly hash: string | null };
  /** Number of durable events in the log. */
  size(): number;
  close(): Promise<void>;
}

export type LogErrorCode = 'ATTEST_LOG_UNAVAILABLE' | 'ATTEST_LOG_TIMEOUT' | 'ATTEST_LOG_CLOSED' | 'ATTEST_LOG_CORRUPT' | 'ATTEST_LOG_LOCKED';

export class LogUnavailableError extends Error {
  readonly code: LogErrorCode;
  constructor(code: LogErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'LogUnavailableError';
    this.code = code;
  }
}
