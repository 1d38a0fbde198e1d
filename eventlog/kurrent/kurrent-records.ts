/**
 * How Attest events live in KurrentDB: stream names, the record written for each event, the exact
 * expected revision of each append, `$all` positions, the server-side filters, and the decoding
 * (zod-validated) of what comes back. Pure functions: no I/O.
 */
import { NO_STREAM, jsonEvent, streamNameFilter } from '@kurrent/kurrentdb-client';
import type { AppendStreamState, EventData, Filter, Position, RecordedEvent } from '@kurrent/kurrentdb-client';
import type { AttestEvent } from '#schemas';
import { decodeEvent } from '../file/event-codec.ts';
import { decodeWritten } from '../record-decode.ts';
import type { ClaimedIdentity, DecodedEntry } from '../record-decode.ts';
import { LogUnavailableError } from '../port.ts';
import type { KurrentPosition } from '../port.ts';

/** The KurrentDB stream of an Attest stream (a session, or `system-<instance>`). */
export function kurrentStreamName(prefix: string, stream: string): string {
  return prefix + stream;
}

/** Seq n of an Attest stream is revision n − 1 of its KurrentDB stream: both count from the first event. */
export function revisionOfSeq(seq: number): bigint {
  return BigInt(seq - 1);
}

/**
 * The state the stream must be in for events from `firstSeq` on to be appended: no stream before
 * seq 1, else exactly the revision of seq `firstSeq − 1`. Never `any`: a stale head must fail
 * (WrongExpectedVersion), not fork the chain, and only an exact state makes a retried append
 * idempotent on the server.
 */
export function expectedStateFor(firstSeq: number): AppendStreamState {
  if (!Number.isSafeInteger(firstSeq) || firstSeq < 1) throw new RangeError(`seq ${firstSeq} is not a chain position`);
  return firstSeq === 1 ? NO_STREAM : BigInt(firstSeq - 2);
}

/** The record for one sealed event: our event id is KurrentDB's event id, so a retried append is recognised. */
export function toEventData(event: AttestEvent): EventData {
  return jsonEvent({ id: event.id, type: event.type, data: event });
}

/**
 * `index` of a KurrentDB position: the `$all` commit position, a byte offset in the server's
 * transaction log (unique per event and increasing in log order for everything KurrentDB writes
 * today: commit = prepare). A JS number holds it exactly up to 2^53 bytes (8 PiB of log); beyond
 * that the index would be rounded, so it is refused. The exact value is always in `commit`.
 */
export function indexOfCommit(commit: bigint): number {
  if (commit < 0n || commit > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `the KurrentDB $all position ${commit} cannot be an exact log index (beyond 2^53); read it from the position's commit string`);
  }
  return Number(commit);
}

export function kurrentPosition(streamName: string, revision: bigint, position: Position): KurrentPosition {
  return {
    backend: 'kurrent',
    index: indexOfCommit(position.commit),
    stream: streamName,
    revision: revision.toString(),
    commit: position.commit.toString(),
    prepare: position.prepare.toString(),
  };
}

/** Every stream of this log: a server-side prefix filter (system streams start with `$`, never with the prefix). */
export function logFilter(prefix: string): Filter {
  return streamNameFilter({ prefixes: [prefix] });
}

/** One stream of this log, matched exactly on the server (a prefix would also match `s-10` for `s-1`). */
export function streamFilter(prefix: string, stream: string): Filter {
  return streamNameFilter({ regex: `^${escapeRegex(kurrentStreamName(prefix, stream))}$` });
}

/** Escapes everything but [A-Za-z0-9_] as \uXXXX, which .NET (server) and JS regexes read alike. */
export function escapeRegex(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    const char = text[i] as string;
    out += /[A-Za-z0-9_]/.test(char) ? char : `\\u${unit.toString(16).padStart(4, '0')}`;
  }
  return out;
}

/** Records KurrentDB writes itself (`$`-typed events, `$`-streams: metadata, stats, tombstones); never Attest events. */
export function isSystemRecord(record: Pick<RecordedEvent, 'type' | 'streamId'>): boolean {
  return record.type.startsWith('$') || record.streamId.startsWith('$');
}

export type RecordDecode = { readonly ok: true; readonly entry: DecodedEntry } | { readonly ok: false; readonly reason: string; readonly claimed: ClaimedIdentity };

/**
 * Decodes a record of this log (record-decode.ts: the server is a boundary) and checks it sits
 * where Attest put it: in the stream it names, under its own id and type, at revision seq − 1.
 */
export function decodeRecord(record: RecordedEvent, prefix: string): RecordDecode {
  const { data } = record;
  let decoded;
  if (data instanceof Uint8Array) decoded = decodeEvent(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
  // The client hands back the raw text when a JSON record does not parse.
  else if (typeof data === 'string') return { ok: false, reason: 'the record is not valid JSON', claimed: {} };
  else decoded = decodeWritten(data);
  if (!decoded.ok) return { ok: false, reason: decoded.skipped ? 'the record is not an event' : decoded.reason, claimed: decoded.skipped ? {} : decoded.claimed };
  const { id, stream, seq, type } = decoded.entry.event ?? decoded.entry.envelope;
  const claimed: ClaimedIdentity = { eventId: id, stream, seq };
  if (!record.streamId.startsWith(prefix) || record.streamId.slice(prefix.length) !== stream) {
    return { ok: false, reason: `it is stored in KurrentDB stream ${record.streamId} but names stream ${stream} (expected ${kurrentStreamName(prefix, stream)})`, claimed };
  }
  if (record.id.toLowerCase() !== id.toLowerCase()) {
    return { ok: false, reason: `its KurrentDB event id ${record.id} is not its own id ${id}`, claimed };
  }
  if (record.revision !== revisionOfSeq(seq)) {
    return { ok: false, reason: `it sits at revision ${record.revision} of its stream but has seq ${seq} (seq n belongs at revision n − 1: events were removed, inserted or written around Attest)`, claimed };
  }
  if (record.type !== type) {
    return { ok: false, reason: `its KurrentDB event type ${record.type} is not its own type ${type}`, claimed };
  }
  return { ok: true, entry: decoded.entry };
}

/** ATTEST_LOG_CORRUPT for a record of this log that is not the Attest event it should be. */
export function corruptRecordError(record: RecordedEvent, reason: string): LogUnavailableError {
  const where = record.position === undefined ? '' : ` ($all position ${record.position.commit}/${record.position.prepare})`;
  return new LogUnavailableError('ATTEST_LOG_CORRUPT', `KurrentDB record ${record.id} at revision ${record.revision} of stream ${record.streamId}${where}: ${reason}`);
}
