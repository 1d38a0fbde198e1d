/**
 * Start-up recovery of a file log (the writer only). Scans every segment (or, resuming from a
 * snapshot, the segments from its cursor on), rebuilds the chain heads
 * and the size from the records, and deals with damage:
 * - a torn tail — invalid bytes at the end of the last segment with no valid record after them —
 *   is what a crash during a write leaves; none of it was acknowledged (fdatasync had not
 *   returned), so it is truncated and reported, never silently;
 * - anything else invalid (followed by valid records, or in an earlier segment, or a gap in the
 *   segment numbering) may be acknowledged data: the log refuses to open (ATTEST_LOG_CORRUPT).
 * Framing and checksums are checked here; hashes and chains are `attest verify`'s job.
 */
import { open, stat } from 'node:fs/promises';
import type { ChainHead } from '../chain.ts';
import { invalidCursor, parseCursor } from '../cursor.ts';
import type { ParsedCursor } from '../cursor.ts';
import { LogUnavailableError } from '../port.ts';
import type { ResumeFrom } from '../port.ts';
import { decodeChainFields } from './event-codec.ts';
import { describeFrameDefect } from './framing.ts';
import { SegmentReader } from './segment-reader.ts';
import { listSegments, segmentFileName, segmentPath } from './segments.ts';

export type { ResumeFrom } from '../port.ts';

export interface RecoveryReport {
  readonly dir: string;
  readonly segment: number;
  readonly path: string;
  /** Where the segment now ends. */
  readonly offset: number;
  readonly bytesDropped: number;
  readonly reason: string;
}

export interface SegmentState {
  readonly base: number;
  durableBytes: number;
}

export interface RecoveredLog {
  readonly segments: SegmentState[];
  readonly heads: Map<string, ChainHead>;
  readonly size: number;
}

/**
 * Scans the segments and rebuilds heads and size. With `resume`, the segments before the cursor's
 * are trusted as they are (their records were checked when they were written and at earlier
 * starts; `attest verify` checks every byte): the scan starts at the cursor's own record, which
 * must hold the cursor's event (ATTEST_CURSOR_INVALID otherwise: the caller opens without resume),
 * and goes on from there, so a start reads the tail after the snapshot, not the log.
 */
export async function recoverLog(dir: string, fsync: boolean, report: (truncation: RecoveryReport) => void, resume?: ResumeFrom): Promise<RecoveredLog> {
  const bases = await listSegments(dir);
  const segments: SegmentState[] = [];
  const heads = new Map<string, ChainHead>(resume?.heads);
  let first = 0;
  let index = 0;
  let startOffset = 0;
  let unchecked: Extract<ParsedCursor, { readonly backend: 'file' }> | undefined;
  if (resume !== undefined) {
    const at = parseCursor(resume.cursor, 'file');
    first = bases.indexOf(at.segment);
    if (first < 0) throw invalidCursor(resume.cursor, `names segment ${at.segment}, which this log does not hold (was the log replaced or truncated?)`);
    for (const base of bases.slice(0, first)) segments.push({ base, durableBytes: (await stat(segmentPath(dir, base))).size });
    index = at.index;
    startOffset = at.offset;
    unchecked = at;
  }
  for (let i = first; i < bases.length; i++) {
    const base = bases[i] as number;
    const isLast = i === bases.length - 1;
    if (i > first || resume === undefined) {
      if (base !== index) {
        throw corrupt(dir, `segment ${segmentFileName(base)} should start at index ${index}, where the log before it ends (${base > index ? 'records or segments are missing' : 'records are duplicated'})`);
      }
    }
    const path = segmentPath(dir, base);
    // A FIFO or device here would block or lie; only regular files hold records.
    if (!(await stat(path)).isFile()) throw corrupt(dir, `${segmentFileName(base)} is not a regular file`);
    const reader = await SegmentReader.open(path);
    let offset = i === first ? startOffset : 0;
    try {
      const size = await reader.size();
      if (unchecked !== undefined && resume !== undefined) {
        const read = await reader.next(offset, size);
        if (read.status !== 'ok' || decodeChainFields(read.payload)?.hash.slice(0, 16) !== unchecked.hash) {
          throw invalidCursor(resume.cursor, `does not match the log: the record at ${segmentFileName(base)} offset ${offset} is ${read.status === 'ok' ? 'another event' : 'missing or damaged'}`);
        }
        unchecked = undefined;
        index++;
        offset = read.frameEnd;
      }
      for (;;) {
        const read = await reader.next(offset, size);
        if (read.status === 'end') break;
        if (read.status === 'ok') {
          const fields = decodeChainFields(read.payload);
          if (fields === null) throw corrupt(dir, `${segmentFileName(base)} offset ${offset} (index ${index}): the record passes its checksum but is not an event`);
          heads.set(fields.stream, { seq: fields.seq, hash: fields.hash });
          index++;
          offset = read.frameEnd;
          continue;
        }
        const what = describeFrameDefect(read.defect);
        if (!isLast) throw corrupt(dir, `${segmentFileName(base)} offset ${offset} (index ${index}): ${what}, in a segment that is not the last`);
        if (await reader.validRecordAfter(offset, size)) throw corrupt(dir, `${segmentFileName(base)} offset ${offset} (index ${index}): ${what}, and valid records follow it`);
        await truncateSegment(path, offset, fsync);
        report({ dir, segment: base, path, offset, bytesDropped: size - offset, reason: `torn tail: ${what}` });
        break;
      }
    } finally {
      await reader.close();
    }
    segments.push({ base, durableBytes: offset });
  }
  return { segments, heads, size: index };
}

async function truncateSegment(path: string, length: number, fsync: boolean): Promise<void> {
  const handle = await open(path, 'r+');
  try {
    await handle.truncate(length);
    if (fsync) await handle.datasync();
  } finally {
    await handle.close();
  }
}

function corrupt(dir: string, detail: string): LogUnavailableError {
  return new LogUnavailableError(
    'ATTEST_LOG_CORRUPT',
    `the event log in ${dir} is damaged: ${detail}. Refusing to open it: repairing would drop events that may have been acknowledged. Run \`attest verify\` for a full report and restore the directory from a copy.`,
  );
}
