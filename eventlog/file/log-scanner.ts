/**
 * Walks the segments of a file log in order and turns frames into StoredEvents. One engine for
 * every reader: the writer's own read/follow (bounded by what is durable), the read-only reader
 * of another process (bounded by what is on disk, waiting at a tail still being written) and the
 * verifier (every byte must be a valid record). Damage ends the scan with a `defect` item that
 * names its position; it never throws for it, so the verifier can report instead of crash.
 */
import { invalidCursor, matchesCursor, parseCursor } from '../cursor.ts';
import type { ParsedCursor } from '../cursor.ts';
import type { FilePosition, LogEntry } from '../port.ts';
import { positioned } from '../record-decode.ts';
import type { ClaimedIdentity } from './event-codec.ts';
import { claimedIdentityOf, decodeEvent } from './event-codec.ts';
import { describeFrameDefect, FRAME_BAD_CRC, FRAME_HEADER_BYTES, MAX_PAYLOAD_BYTES } from './framing.ts';
import type { FrameDefect } from './framing.ts';
import { SegmentReader } from './segment-reader.ts';
import { segmentPath } from './segments.ts';

export interface ScanSegment {
  readonly base: number;
  /** Bytes known durable; null when unknown (another process writes): read what is valid on disk. */
  readonly durableBytes: number | null;
}

export interface ScanSource {
  readonly dir: string;
  /** Segments in log order, listed before the files are read. */
  segments(): Promise<readonly ScanSegment[]>;
  /** Taken before a read pass; resolves true once more may be readable, false when following must stop. */
  nextChange(signal: AbortSignal | undefined): Promise<boolean>;
}

/**
 * What an invalid tail of the last segment means, when the source cannot know what is durable:
 * `wait` — a write in progress (or a torn tail the writer will truncate): stop before it, and in
 * follow mode look again later; `strict` — it is a failure (the verifier: every byte counts).
 */
export type TailPolicy = 'wait' | 'strict';

/** Resume right after the event a cursor was taken at; `cursor` is the text, for error messages. */
export interface ScanStart {
  readonly cursor: string;
  readonly at: Extract<ParsedCursor, { readonly backend: 'file' }>;
}

/** A file cursor as the scanner takes it (ATTEST_CURSOR_INVALID when it is not one). */
export function scanStart(cursor: string): ScanStart {
  return { cursor, at: parseCursor(cursor, 'file') };
}

export interface ScanOptions {
  readonly after?: ScanStart;
  readonly stream?: string;
  readonly trusted?: boolean;
  readonly signal?: AbortSignal;
  readonly follow: boolean;
  readonly tail: TailPolicy;
  /** strict only: look once more after this delay before failing a bad tail (a live writer may be mid-write). */
  readonly tailGraceMs?: number;
}

export interface LogDefect {
  readonly segment: number;
  readonly offset: number;
  /** Global index the damaged record would have. */
  readonly index: number;
  /** A sentence without the position (the caller adds it in its own words). */
  readonly reason: string;
  readonly claimed: ClaimedIdentity;
}

export type ScanItem = { readonly kind: 'event'; readonly stored: LogEntry<FilePosition> } | { readonly kind: 'defect'; readonly defect: LogDefect };

export async function* scanLog(source: ScanSource, options: ScanOptions): AsyncGenerator<ScanItem, void, undefined> {
  const { after, stream, signal, follow, tail, tailGraceMs = 0, trusted = false } = options;
  let segments = await source.segments();
  let at = 0;
  let index = -1;
  let offset = 0;
  /** The cursor's own event, checked (its hash) before anything after it is yielded. */
  let unchecked = after;
  if (after !== undefined) {
    at = segments.findIndex((s) => s.base === after.at.segment);
    if (at < 0) throw invalidCursor(after.cursor, `names segment ${after.at.segment}, which this log does not hold (was the log replaced or truncated?)`);
    index = after.at.index;
    offset = after.at.offset;
  }
  let graced = false;
  let reader: SegmentReader | null = null;
  const defect = (segment: number, reason: string, claimed: ClaimedIdentity = {}): ScanItem => ({
    kind: 'defect',
    defect: { segment, offset, index, reason, claimed },
  });
  try {
    for (;;) {
      const change = follow ? source.nextChange(signal) : null;
      pass: for (;;) {
        if (isAborted(signal)) return;
        const segment = segments[at];
        if (segment === undefined) break pass;
        if (index < 0) index = segment.base;
        reader ??= await SegmentReader.open(segmentPath(source.dir, segment.base));
        const limit = segment.durableBytes ?? (await reader.size());
        if (limit < offset) {
          yield defect(segment.base, `the segment is now ${limit} bytes, shorter than the ${offset} already read: records were removed after they were read (an unacknowledged write rolled back, or the file was truncated)`);
          return;
        }
        let read = await reader.next(offset, limit);
        if (unchecked !== undefined) {
          if (read.status !== 'ok' || !matchesCursor(unchecked.at, hashField(read.payload))) {
            throw invalidCursor(unchecked.cursor, `does not match the log: the record at ${segment.base}+${offset} is ${read.status === 'ok' ? 'another event' : 'missing or damaged'} (was the log replaced, truncated or rewritten?)`);
          }
          unchecked = undefined;
          index++;
          offset = read.frameEnd;
          read = await reader.next(offset, limit);
        }
        while (read.status === 'ok') {
          const decoded = decodeEvent(read.payload, stream, trusted);
          if (decoded.ok) {
            yield { kind: 'event', stored: positioned(decoded.entry, { backend: 'file', index, segment: segment.base, offset }) };
            if (isAborted(signal)) return;
          } else if (!decoded.skipped) {
            yield defect(segment.base, decoded.reason, decoded.claimed);
            return;
          }
          index++;
          offset = read.frameEnd;
          read = await reader.next(offset, limit);
        }
        if (read.status === 'defect') {
          const isTail = segment.durableBytes === null && at === segments.length - 1;
          const followedByRecords = await reader.validRecordAfter(offset, limit);
          if (isTail && !followedByRecords) {
            if (tail === 'wait') break pass;
            if (tailGraceMs > 0 && !graced) {
              graced = true;
              await sleep(tailGraceMs);
              continue pass;
            }
          }
          const claimed = read.defect === FRAME_BAD_CRC ? await claimAt(reader, offset, limit) : {};
          yield defect(segment.base, damageReason(read.defect, followedByRecords, isTail, limit - offset), claimed);
          return;
        }
        // The writer may have made more of this segment durable while we read, then moved on.
        if (segment.durableBytes !== null && segment.durableBytes > offset) continue pass;
        const next = segments[at + 1];
        if (next === undefined) break pass;
        if (next.base !== index) {
          offset = 0;
          yield defect(next.base, `segment ${next.base} should start at index ${index}, where the previous segment ends: ${next.base > index ? `${next.base - index} record(s) are missing` : `${index - next.base} record(s) are duplicated`} at the segment boundary`);
          return;
        }
        await reader.close();
        reader = null;
        at++;
        offset = 0;
      }
      if (change === null || !(await change)) return;
      segments = await source.segments();
    }
  } finally {
    await reader?.close();
  }
}

function damageReason(defect: FrameDefect, followedByRecords: boolean, isTail: boolean, bytesLeft: number): string {
  const what = describeFrameDefect(defect);
  if (followedByRecords) return `${what}, and valid records follow it (the log was altered or damaged)`;
  if (isTail) return `${what}; it is the last ${bytesLeft} bytes of the log: a write cut short by a crash (truncated when the log is next opened for writing), a write still in progress, or altered bytes`;
  return `${what} (the log was altered or damaged)`;
}

/** Identity a record with a bad checksum claims (its JSON may still parse), to name it in reports. */
async function claimAt(reader: SegmentReader, offset: number, limit: number): Promise<ClaimedIdentity> {
  const header = await reader.region(offset, Math.min(limit, offset + FRAME_HEADER_BYTES));
  if (header.length < FRAME_HEADER_BYTES) return {};
  const length = header.readUInt32BE(0);
  if (length > MAX_PAYLOAD_BYTES) return {};
  return claimedIdentityOf(await reader.region(offset + FRAME_HEADER_BYTES, Math.min(limit, offset + FRAME_HEADER_BYTES + length)));
}

/** The `hash` of a stored payload, which the writer puts first (`{"hash":"…"`); parsed when another layout is met. */
function hashField(payload: Buffer): string {
  const prefix = '{"hash":"';
  if (payload.toString('latin1', 0, prefix.length) === prefix) return payload.toString('latin1', prefix.length, prefix.length + 64);
  try {
    const hash = (JSON.parse(payload.toString('utf8')) as { hash?: unknown }).hash;
    return typeof hash === 'string' ? hash : '';
  } catch {
    return '';
  }
}

// A function, not an inline check: the signal can abort while the generator is suspended at a yield.
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves true when `change` settles first, false when the signal aborts first; never rejects. */
export function changeOrAbort(change: Promise<boolean>, signal: AbortSignal | undefined): Promise<boolean> {
  if (signal === undefined) return change;
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = (): void => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
    void change.then((value) => {
      signal.removeEventListener('abort', onAbort);
      resolve(value);
    });
  });
}
