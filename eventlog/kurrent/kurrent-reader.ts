/**
 * Reading a KurrentDB log: `$all` from a position with a server-side filter on the log's stream
 * prefix (or on one stream), every record validated as an Attest event of this log, re-deliveries
 * dropped by event id. `follow` is a catch-up subscription to `$all` with the same filter.
 *
 * Resuming: a cursor (cursor.ts) holds the `$all` commit/prepare position of the event it was
 * taken at; a read checks that event is still there with the cursor's hash, then yields what
 * follows it.
 */
import { ErrorType, FORWARDS, START } from '@kurrent/kurrentdb-client';
import type { AllStreamResolvedEvent, Position, ReadPosition } from '@kurrent/kurrentdb-client';
import type { AttestEvent } from '#schemas';
import { invalidCursor, matchesCursor, parseCursor } from '../cursor.ts';
import { LogUnavailableError } from '../port.ts';
import type { FollowOptions, KurrentPosition, LogCursor, LogEntry, ReadOptions, StoredEvent } from '../port.ts';
import { positioned, readable } from '../record-decode.ts';
import type { AllSubscription, KurrentClient } from './kurrent-client.ts';
import { corruptRecordError, decodeRecord, isSystemRecord, kurrentPosition, logFilter, streamFilter } from './kurrent-records.ts';

/** How many recent event ids a reader remembers to drop re-deliveries (a subscription resent after a reconnect). */
const RECENT_IDS = 10_000;

/**
 * Drops an event delivered again: same id and same hash as one seen recently. A different event
 * under an id already seen is not dropped — it is not a re-delivery, and `attest verify` must see it.
 */
export class RecentIds {
  readonly #hashes = new Map<string, string>();
  readonly #capacity: number;

  constructor(capacity = RECENT_IDS) {
    this.#capacity = capacity;
  }

  repeated(event: Pick<AttestEvent, 'id' | 'hash'>): boolean {
    if (this.#hashes.get(event.id) === event.hash) return true;
    this.#hashes.set(event.id, event.hash);
    if (this.#hashes.size > this.#capacity) {
      const oldest = this.#hashes.keys().next();
      if (oldest.done !== true) this.#hashes.delete(oldest.value);
    }
    return false;
  }
}

/** The stored entry of a resolved `$all` record of this log, or null for what is not this log's (or not this stream's). */
export function entryOf(resolved: AllStreamResolvedEvent, prefix: string, stream: string | undefined): LogEntry<KurrentPosition> | null {
  const record = resolved.event;
  // The server filter already keeps to the prefix; system records and links are never Attest events.
  if (record === undefined || isSystemRecord(record) || !record.streamId.startsWith(prefix)) return null;
  const decoded = decodeRecord(record, prefix);
  if (!decoded.ok) throw corruptRecordError(record, decoded.reason);
  if (stream !== undefined && (decoded.entry.event ?? decoded.entry.envelope).stream !== stream) return null;
  return positioned(decoded.entry, kurrentPosition(record.streamId, record.revision, record.position));
}

const chainHash = (entry: LogEntry): Pick<AttestEvent, 'id' | 'hash'> => entry.event ?? entry.envelope;

/**
 * The `$all` position right after which a read resumes: the cursor's own event, checked to be
 * there with the hash the cursor holds (one forward read of one record of this log).
 */
async function resumePosition(client: KurrentClient, prefix: string, cursor: LogCursor): Promise<Position> {
  const parsed = parseCursor(cursor, 'kurrent');
  const position: Position = { commit: parsed.commit, prepare: parsed.prepare };
  const mismatch = `does not match the log: no event with its hash at $all position ${parsed.commit}/${parsed.prepare} (was the log replaced or scavenged?)`;
  try {
    for await (const resolved of client.readAll({ fromPosition: position, direction: FORWARDS, maxCount: 1, filter: logFilter(prefix), resolveLinkTos: false })) {
      const entry = entryOf(resolved, prefix, undefined);
      if (entry !== null && BigInt(entry.position.commit) === parsed.commit && BigInt(entry.position.prepare) === parsed.prepare && matchesCursor(parsed, chainHash(entry).hash)) return position;
      break;
    }
  } catch (error) {
    // The server refuses to read from a position that is not a record boundary of its transaction log.
    if (error instanceof LogUnavailableError) throw error;
    throw invalidCursor(cursor, `${mismatch}: ${error instanceof Error ? error.message : String(error)}`);
  }
  throw invalidCursor(cursor, mismatch);
}

const after = (entry: LogEntry<KurrentPosition>, position: Position | undefined): boolean =>
  position === undefined || BigInt(entry.position.commit) > position.commit || (BigInt(entry.position.commit) === position.commit && BigInt(entry.position.prepare) > position.prepare);

export async function* readEntries(client: KurrentClient, prefix: string, options: ReadOptions = {}): AsyncGenerator<LogEntry<KurrentPosition>, void, undefined> {
  const { stream, signal } = options;
  const from = options.after === undefined ? undefined : await resumePosition(client, prefix, options.after);
  const seen = new RecentIds();
  try {
    const records = client.readAll({
      fromPosition: from ?? START,
      direction: FORWARDS,
      filter: stream === undefined ? logFilter(prefix) : streamFilter(prefix, stream),
      resolveLinkTos: false,
    });
    for await (const resolved of records) {
      if (signal?.aborted === true) return;
      const entry = entryOf(resolved, prefix, stream);
      if (entry === null || !after(entry, from) || seen.repeated(chainHash(entry))) continue;
      yield entry;
    }
  } catch (error) {
    throw readFailure(error, from === undefined ? 'reading $all from the start' : `reading $all after position ${from.commit}/${from.prepare}`);
  }
}

/** Like `readEntries`, then live events, until the signal aborts or the subscription ends (the log closed). */
export async function* followEntries(client: KurrentClient, prefix: string, options: FollowOptions): AsyncGenerator<LogEntry<KurrentPosition>, void, undefined> {
  const { stream, signal } = options;
  if (signal.aborted) return;
  let subscription: AllSubscription | undefined;
  let stop: (() => void) | undefined;
  const aborted = new Promise<null>((resolve) => {
    stop = () => resolve(null);
    signal.addEventListener('abort', stop, { once: true });
  });
  const from = options.after === undefined ? undefined : await resumePosition(client, prefix, options.after);
  try {
    // A subscription starts *after* its position: exactly what a cursor asks for.
    const anchor: ReadPosition = from ?? START;
    if (signal.aborted) return;
    subscription = client.subscribeToAll({
      fromPosition: anchor,
      filter: stream === undefined ? logFilter(prefix) : streamFilter(prefix, stream),
      resolveLinkTos: false,
    });
    const records = subscription[Symbol.asyncIterator]();
    const seen = new RecentIds();
    for (;;) {
      const next = records.next();
      const result = await Promise.race([next, aborted]);
      if (result === null) {
        // The pending read settles when the subscription is torn down below; nobody waits for it.
        next.catch(() => undefined);
        return;
      }
      if (result.done === true) return;
      const entry = entryOf(result.value, prefix, stream);
      if (entry === null || !after(entry, from) || seen.repeated(chainHash(entry))) continue;
      yield entry;
      if (signal.aborted) return;
    }
  } catch (error) {
    throw readFailure(error, from === undefined ? 'following $all from the start' : `following $all after position ${from.commit}/${from.prepare}`);
  } finally {
    if (stop !== undefined) signal.removeEventListener('abort', stop);
    if (subscription !== undefined) await endSubscription(subscription);
  }
}

/** What read() and follow() yield of the entries (record-decode.ts `readable`). */
export async function* readableEntries(entries: AsyncIterable<LogEntry<KurrentPosition>>, prefix: string): AsyncGenerator<StoredEvent<KurrentPosition>, void, undefined> {
  for await (const entry of entries) {
    const stored = readable(entry, `the KurrentDB event log (streams ${prefix}*)`);
    if (stored !== null) yield stored;
  }
}

/** The log's events in `$all`: counted by a filtered read (there is no cheaper count). */
export async function countEntries(client: KurrentClient, prefix: string): Promise<number> {
  let count = 0;
  for await (const _entry of readEntries(client, prefix)) count++;
  return count;
}

async function endSubscription(subscription: AllSubscription): Promise<void> {
  try {
    await subscription.unsubscribe();
  } catch {
    // Already gone with the connection: nothing left to cancel.
  }
  subscription.destroy();
}

/** Client errors as LogUnavailableError naming what was being read; RangeError and our own errors pass as they are. */
export function readFailure(error: unknown, doing: string): Error {
  if (error instanceof LogUnavailableError || error instanceof RangeError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (errorType(error) === ErrorType.ACCESS_DENIED) {
    return new LogUnavailableError(
      'ATTEST_LOG_UNAVAILABLE',
      `KurrentDB refused access while ${doing}: the connection's user needs read access to $all (a member of $ops or $admins, or an $all ACL that grants it). ${message}`,
      { cause: error },
    );
  }
  return new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `KurrentDB failed while ${doing}: ${message}`, { cause: error });
}

/** The client's error type (`ErrorType`), when the error is one of its command errors. */
export function errorType(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('type' in error)) return undefined;
  return typeof error.type === 'string' ? error.type : undefined;
}
