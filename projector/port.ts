/**
 * The ReadModel port (docs/projector.md): what the projector writes into and what readers
 * (`attest projector status`, reporting) ask. Adapters: ClickHouse now (clickhouse/), the embedded
 * one later; both pass one contract suite.
 *
 * Exactly-once effect: `apply` is idempotent on event ids (a batch applied twice, or a prefix of it
 * applied before a crash and then the whole of it, leaves the same tables as applying it once), and
 * `advance` is called only once `apply` of the batch resolved.
 */
import type { LogCursor, LogEntry } from '#eventlog';

/** Where the projector is in the log. */
export interface Checkpoint {
  /** After the last record projected; undefined: nothing yet (start from the beginning). */
  readonly cursor: LogCursor | undefined;
  /** Log index of that record; -1 when none. */
  readonly index: number;
  /** Records projected since position zero (events and quarantined ones): compared with the log's size for the lag. */
  readonly processed: number;
  /** occurredAt (epoch ms) of the last event projected; 0 when none. */
  readonly lastOccurredAtMs: number;
  /** When the checkpoint was written (epoch ms); 0 when none. */
  readonly updatedAtMs: number;
}

export const NO_CHECKPOINT: Checkpoint = Object.freeze({ cursor: undefined, index: -1, processed: 0, lastOccurredAtMs: 0, updatedAtMs: 0 });

/** What applying one batch wrote. */
export interface AppliedBatch {
  readonly events: number;
  readonly toolCalls: number;
  /** Records kept in the quarantine instead of (or, for `projection` problems, beside) the tables. */
  readonly quarantined: number;
}

export interface MigrationReport {
  /** Versions applied by this call, in order. */
  readonly applied: readonly number[];
  /** The version the read model is at now. */
  readonly version: number;
  /** An applied migration asks for the log to be projected again from position zero. */
  readonly reproject: boolean;
}

/** Counts over the final state of the tables (duplicates from replays never counted twice). */
export interface ReadModelTotals {
  readonly events: number;
  readonly eventsByType: Readonly<Record<string, number>>;
  readonly toolCalls: number;
  readonly toolCallsByStatus: Readonly<Record<string, number>>;
  /** Sum of `cost` over every call. */
  readonly cost: number;
  readonly decisions: number;
  readonly rejections: number;
  readonly configChanges: number;
  readonly quarantined: number;
}

export interface QuarantinedRecord {
  readonly index: number;
  readonly eventId: string;
  readonly type: string;
  readonly problem: string;
  readonly reason: string;
}

export interface ProjectorErrorRecord {
  readonly atMs: number;
  readonly code: string;
  readonly message: string;
}

/** A reporting filter; every field optional, all given ones must hold. Values are data, never SQL. */
export interface CallFilter {
  /** Inclusive, epoch ms. */
  readonly fromMs?: number;
  /** Exclusive, epoch ms. */
  readonly toMs?: number;
  readonly tenant?: string;
  readonly principal?: string;
  readonly upstream?: string;
  readonly tool?: string;
}

export interface ToolDayCount {
  /** `YYYY-MM-DD` (UTC). */
  readonly day: string;
  readonly upstream: string;
  readonly tool: string;
  readonly calls: number;
  readonly denied: number;
  readonly errors: number;
}

/** One call as the read model holds it (`tool_calls` columns, docs/projector.md). */
export type ToolCallRecord = Readonly<Record<string, unknown>> & { readonly call_id: string; readonly status: string };

export interface ReadModel extends AsyncDisposable {
  /** Creates the database when missing and applies the migrations not applied yet. */
  migrate(): Promise<MigrationReport>;
  checkpoint(): Promise<Checkpoint>;
  /** Writes a batch (in log order) into every table; idempotent. */
  apply(entries: readonly LogEntry[]): Promise<AppliedBatch>;
  /** Records where the projector is; only after `apply` of everything up to it resolved. */
  advance(checkpoint: Checkpoint): Promise<void>;
  /** Keeps an error of the projector (a failed read or write) for `status`. Best effort: never throws. */
  recordError(code: string, message: string): Promise<void>;
  totals(): Promise<ReadModelTotals>;
  toolCall(callId: string): Promise<ToolCallRecord | undefined>;
  /** Calls per upstream tool per UTC day (the reports' first question). */
  callsPerToolPerDay(filter: CallFilter): Promise<ToolDayCount[]>;
  /** How many records are quarantined, and the first `limit` of them in log order. */
  quarantined(limit: number): Promise<{ readonly count: number; readonly recent: QuarantinedRecord[] }>;
  errors(limit: number): Promise<{ readonly count: number; readonly recent: ProjectorErrorRecord[] }>;
  /** Server name and version, for status. */
  describe(): Promise<string>;
  close(): Promise<void>;
}
