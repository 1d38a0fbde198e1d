/**
 * Reading a KurrentDB log: `$all` from a position with a server-side filter on the log's stream
 * prefix (or on one stream), every record validated as an Attest event of this log, re-deliveries
 * dropped by event id. `follow` is a catch-up subscription to `$all` with the same filter.
 *
 * Positions: `fromIndex` is 0 (the start) or an index this log handed out — a `$all` commit
 * position. Reads include the event at `fromIndex`. Any other number is not a record boundary in
 * the server's transaction log, and the server refuses to read from it (an error, not an empty log).
 */
import { BACKWARDS, ErrorType, FORWARDS, START } from '@kurrent/kurrentdb-client';
import type { AllStreamResolvedEvent, Position, ReadPosition } from '@kurrent/kurrentdb-client';
import type { AttestEvent } from '#schemas';
import { LogUnavailableError } from '../port.ts';
import type { KurrentPosition, ReadOptions, StoredEvent } from '../port.ts';
import type { AllSubscription, KurrentClient } from './kurrent-client.ts';
import { corruptRecordError, decodeRecord, isSystemRecord, kurrentPosition, logFilter, positionOfIndex, streamFilter } from './kurrent-records.ts';

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

export function checkFromIndex(fromIndex: number | undefined): number {
  const index = fromIndex ?? 0;
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new RangeError(`fromIndex must be 0 or an index of this KurrentDB log (a $all commit position), not ${String(fromIndex)}`);
  }
  return index;
}

/** The stored event of a resolved `$all` record of this log, or null for what is not this log's (or not this stream's). */
export function storedOf(resolved: AllStreamResolvedEvent, prefix: string, stream: string | undefined): StoredEvent<KurrentPosition> | null {
  const record = resolved.event;
  // The server filter already keeps to the prefix; system records and links are never Attest events.
  if (record === undefined || isSystemRecord(record) || !record.streamId.startsWith(prefix)) return null;
  const decoded = decodeRecord(record, prefix);
  if (!decoded.ok) throw corruptRecordError(record, decoded.reason);
  if (stream !== undefined && decoded.event.stream !== stream) return null;
  return { event: decoded.event, position: kurrentPosition(record.streamId, record.revision, record.position) };
}

export async function* readLog(client: KurrentClient, prefix: string, options: ReadOptions = {}): AsyncGenerator<StoredEvent<KurrentPosition>, void, undefined> {
  const fromIndex = checkFromIndex(options.fromIndex);
  const { stream, signal } = options;
  const seen = new RecentIds();
  try {
    const records = client.readAll({
      fromPosition: fromIndex === 0 ? START : positionOfIndex(fromIndex),
      direction: FORWARDS,
      filter: stream === undefined ? logFilter(prefix) : streamFilter(prefix, stream),
      resolveLinkTos: false,
    });
    for await (const resolved of records) {
      if (signal?.aborted === true) return;
      const stored = storedOf(resolved, prefix, stream);
      if (stored === null || stored.position.index < fromIndex || seen.repeated(stored.event)) continue;
      yield stored;
    }
  } catch (error) {
    throw readFailure(error, fromIndex === 0 ? 'reading $all from the start' : `reading $all from position ${fromIndex}`);
  }
}

/** Like `readLog`, then live events, until the signal aborts or the subscription ends (the log closed). */
export async function* followLog(
  client: KurrentClient,
  prefix: string,
  options: ReadOptions & { readonly signal: AbortSignal },
): AsyncGenerator<StoredEvent<KurrentPosition>, void, undefined> {
  const fromIndex = checkFromIndex(options.fromIndex);
  const { stream, signal } = options;
  if (signal.aborted) return;
  let subscription: AllSubscription | undefined;
  let stop: (() => void) | undefined;
  const aborted = new Promise<null>((resolve) => {
    stop = () => resolve(null);
    signal.addEventListener('abort', stop, { once: true });
  });
  try {
    // A subscription starts *after* its position, so it is anchored on the record before fromIndex.
    const anchor: ReadPosition = fromIndex === 0 ? START : ((await positionBefore(client, fromIndex)) ?? START);
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
      const stored = storedOf(result.value, prefix, stream);
      if (stored === null || stored.position.index < fromIndex || seen.repeated(stored.event)) continue;
      yield stored;
      if (signal.aborted) return;
    }
  } catch (error) {
    throw readFailure(error, `following $all from position ${fromIndex}`);
  } finally {
    if (stop !== undefined) signal.removeEventListener('abort', stop);
    if (subscription !== undefined) await endSubscription(subscription);
  }
}

/** The position of the last record of `$all` (any stream) before `index`, or undefined at the start of the log. */
async function positionBefore(client: KurrentClient, index: number): Promise<Position | undefined> {
  const limit = BigInt(index);
  // Two records: whether a backwards read includes its start position or not, one of them is before it.
  for await (const resolved of client.readAll({ fromPosition: positionOfIndex(index), direction: BACKWARDS, maxCount: 2, resolveLinkTos: false })) {
    const position = resolved.event?.position;
    if (position !== undefined && position.commit < limit) return position;
  }
  return undefined;
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
