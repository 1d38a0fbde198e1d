/**
 * From a parsed record to a log entry, the same for every backend. Two checks kept apart:
 *   integrity  the record is an Attest event by its envelope (id, type, stream, seq, prevHash,
 *              hash) — what chains and the Merkle tree need; a record that is not is damage
 *              (ATTEST_LOG_CORRUPT), whatever reads it;
 *   shape      the event is one this version can read (`readEvent` in #schemas: upcast, then the
 *              read-strength schema) — a record that is not is still part of the log, yielded as
 *              an UnreadableEvent by `entries()`.
 */
import { EVENT_TYPES, readEvent, SCHEMA_MAJOR, schemaVersionOf } from '#schemas';

const KNOWN_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);
import { LogUnavailableError } from './port.ts';
import type { EventEnvelope, LogEntry, LogPosition, StoredEvent, UnreadableEvent } from './port.ts';

/** What a damaged payload says about itself, when it still parses: for naming it in reports. */
export interface ClaimedIdentity {
  readonly eventId?: string;
  readonly stream?: string;
  readonly seq?: number;
}

/** An entry before its backend adds the position. */
export type DecodedEntry =
  | { readonly event: StoredEvent['event']; readonly written?: Readonly<Record<string, unknown>>; readonly storedText?: string }
  | Omit<UnreadableEvent, 'position'>;

export type RecordDecodeResult =
  | { readonly ok: true; readonly entry: DecodedEntry }
  | { readonly ok: false; readonly skipped: true }
  | { readonly ok: false; readonly skipped: false; readonly reason: string; readonly claimed: ClaimedIdentity };

const SKIPPED: RecordDecodeResult = Object.freeze({ ok: false, skipped: true });

/** Identity fields of a parsed payload, whatever else is wrong with it. */
export function claimedIdentity(raw: unknown): ClaimedIdentity {
  if (typeof raw !== 'object' || raw === null) return {};
  const { id, stream, seq } = raw as Record<string, unknown>;
  return {
    ...(typeof id === 'string' ? { eventId: id } : {}),
    ...(typeof stream === 'string' ? { stream } : {}),
    ...(typeof seq === 'number' ? { seq } : {}),
  };
}

/** The envelope of a parsed record, or undefined when it is not an Attest event at all. */
export function envelopeOf(raw: unknown): EventEnvelope | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const { id, type, stream, seq, prevHash, hash, schemaVersion } = raw as Record<string, unknown>;
  if (typeof id !== 'string' || typeof type !== 'string' || typeof stream !== 'string' || typeof hash !== 'string') return undefined;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 1) return undefined;
  if (prevHash !== null && typeof prevHash !== 'string') return undefined;
  return { id, type, stream, seq, prevHash, hash, schemaVersion };
}

export const NOT_AN_EVENT = 'the record is not an Attest event (no id, type, stream, seq, prevHash and hash)';

/**
 * Decodes a parsed record. With `stream`, records of other streams are skipped before the shape is
 * checked. Never throws.
 */
export function decodeWritten(raw: unknown, stream?: string, trusted = false, storedText?: string): RecordDecodeResult {
  if (stream !== undefined && typeof raw === 'object' && raw !== null && (raw as { stream?: unknown }).stream !== stream) return SKIPPED;
  const envelope = envelopeOf(raw);
  if (envelope === undefined) return { ok: false, skipped: false, reason: NOT_AN_EVENT, claimed: claimedIdentity(raw) };
  // Trusted: an event of the current major version and a known type is taken as written (ReadOptions.trusted).
  if (trusted && schemaVersionOf(envelope.schemaVersion)?.major === SCHEMA_MAJOR && KNOWN_TYPES.has(envelope.type)) return { ok: true, entry: asWritten(raw as StoredEvent['event'], storedText) };
  const reading = readEvent(raw);
  // An upcast event keeps no stored text: its leaf is built from `written` (leaf.ts).
  if (reading.ok) return { ok: true, entry: reading.written === undefined ? asWritten(reading.event, storedText) : { event: reading.event, written: reading.written } };
  return { ok: true, entry: { envelope, written: raw as Readonly<Record<string, unknown>>, problem: reading.problem, reason: reading.reason } };
}

function asWritten(event: StoredEvent['event'], storedText: string | undefined): DecodedEntry {
  return storedText === undefined ? { event } : { event, storedText };
}

/** The entry at its position. */
export function positioned<P extends LogPosition>(entry: DecodedEntry, position: P): LogEntry<P> {
  if (entry.event === undefined) return { ...entry, position };
  if (entry.written !== undefined) return { event: entry.event, position, written: entry.written };
  const stored: StoredEvent<P> = { event: entry.event, position };
  // Not enumerable: kept out of the entry's JSON, of copies and of deep equality (port.ts).
  if (entry.storedText !== undefined) Object.defineProperty(stored, 'storedText', { value: entry.storedText });
  return stored;
}

/**
 * What `read()` / `follow()` make of an entry: an event is yielded, an event of a type this version
 * does not know is skipped (null: a newer minor version added it), anything else it cannot read
 * ends the read (fail closed: a newer major version must not be half-understood).
 */
export function readable<P extends LogPosition>(entry: LogEntry<P>, where: string): StoredEvent<P> | null {
  if (entry.event !== undefined) return entry;
  if (entry.problem === 'type') return null;
  const { id, stream, seq } = entry.envelope;
  throw new LogUnavailableError('ATTEST_EVENT_UNREADABLE', `${where}: event ${id} (stream ${stream}, seq ${seq}) at index ${entry.position.index} cannot be read by this version: ${entry.reason}`);
}

/** The chain fields of an entry, readable or not, and the form its hash covers. */
export function chainOf(entry: LogEntry): { readonly id: string; readonly stream: string; readonly seq: number; readonly prevHash: string | null; readonly hash: string; readonly written: object } {
  if (entry.event === undefined) return { ...entry.envelope, written: entry.written };
  const { id, stream, seq, prevHash, hash } = entry.event;
  return { id, stream, seq, prevHash, hash, written: entry.written ?? entry.event };
}
