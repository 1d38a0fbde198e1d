/**
 * Cursors (port.ts `LogCursor`): where a reader resumes. A cursor names its backend and log, the
 * position of one event, and the first 16 hex digits of that event's chain hash:
 *   file     file:<index>:<segment base>:<byte offset of the frame>:<hash16>
 *   kafka    kafka:<topic>:<partition>:<offset>:<hash16>
 *   kurrent  kurrent:<$all commit>:<$all prepare>:<hash16>
 * A reader resumes by finding that event where the cursor says (one seek, not a scan from the
 * start), checking its hash, and yielding what follows it. Callers treat cursors as opaque.
 */
import { LogUnavailableError } from './port.ts';
import type { LogCursor, LogEntry, LogPosition } from './port.ts';

const HASH_DIGITS = 16;

export type ParsedCursor =
  | { readonly backend: 'file'; readonly index: number; readonly segment: number; readonly offset: number; readonly hash: string }
  | { readonly backend: 'kafka'; readonly topic: string; readonly partition: number; readonly offset: number; readonly hash: string }
  | { readonly backend: 'kurrent'; readonly commit: bigint; readonly prepare: bigint; readonly hash: string };

function hashOf(entry: LogEntry): string {
  return (entry.event === undefined ? entry.envelope.hash : entry.event.hash).slice(0, HASH_DIGITS);
}

/** The cursor of an event (or of a record this version cannot read): pass it as `after` to resume right after it. */
export function cursorOf(entry: LogEntry): LogCursor {
  const position: LogPosition = entry.position;
  const hash = hashOf(entry);
  switch (position.backend) {
    case 'file':
      return `file:${position.index}:${position.segment}:${position.offset}:${hash}` as LogCursor;
    case 'kafka':
      return `kafka:${position.topic}:${position.partition}:${position.offset}:${hash}` as LogCursor;
    case 'kurrent':
      return `kurrent:${position.commit}:${position.prepare}:${hash}` as LogCursor;
  }
}

export function invalidCursor(cursor: string, why: string): LogUnavailableError {
  return new LogUnavailableError('ATTEST_CURSOR_INVALID', `cursor "${cursor}" ${why}`);
}

const natural = (text: string | undefined): number | undefined => (text !== undefined && /^(0|[1-9][0-9]{0,15})$/.test(text) && Number.isSafeInteger(Number(text)) ? Number(text) : undefined);
const big = (text: string | undefined): bigint | undefined => (text !== undefined && /^(0|[1-9][0-9]{0,19})$/.test(text) ? BigInt(text) : undefined);
const hex = (text: string | undefined): string | undefined => (text !== undefined && new RegExp(`^[0-9a-f]{${HASH_DIGITS}}$`).test(text) ? text : undefined);

/** Parses a cursor for the backend that reads it; a malformed cursor, or one of another backend, is ATTEST_CURSOR_INVALID. */
export function parseCursor<B extends ParsedCursor['backend']>(cursor: string, backend: B): Extract<ParsedCursor, { backend: B }> {
  const parts = cursor.split(':');
  if (parts[0] !== backend) throw invalidCursor(cursor, `is not a cursor of this ${backend} log${parts.length > 1 ? ` (it is a ${parts[0] ?? '?'} cursor)` : ''}`);
  let parsed: ParsedCursor | undefined;
  if (backend === 'file' && parts.length === 5) {
    const [index, segment, offset, hash] = [natural(parts[1]), natural(parts[2]), natural(parts[3]), hex(parts[4])];
    if (index !== undefined && segment !== undefined && offset !== undefined && hash !== undefined && segment <= index) parsed = { backend, index, segment, offset, hash };
  } else if (backend === 'kafka' && parts.length === 5) {
    const [topic, partition, offset, hash] = [parts[1], natural(parts[2]), natural(parts[3]), hex(parts[4])];
    if (topic !== undefined && topic.length > 0 && partition !== undefined && offset !== undefined && hash !== undefined) parsed = { backend, topic, partition, offset, hash };
  } else if (backend === 'kurrent' && parts.length === 4) {
    const [commit, prepare, hash] = [big(parts[1]), big(parts[2]), hex(parts[3])];
    if (commit !== undefined && prepare !== undefined && hash !== undefined) parsed = { backend, commit, prepare, hash };
  }
  if (parsed === undefined) throw invalidCursor(cursor, `is malformed (a ${backend} cursor comes from cursorOf() of an event this log returned)`);
  return parsed as Extract<ParsedCursor, { backend: B }>;
}

/** Whether the event found where a cursor points is the one it was taken at. */
export function matchesCursor(parsed: ParsedCursor, hash: string): boolean {
  return hash.slice(0, HASH_DIGITS) === parsed.hash;
}
