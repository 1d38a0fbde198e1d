/**
 * Start-up recovery of a file log (the writer only). Scans every segment, rebuilds the chain heads
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
import { LogUnavailableError } from '../port.ts';
import { decodeChainFields } from './event-codec.ts';
import { describeFrameDefect } from './framing.ts';
import { SegmentReader } from './segment-reader.ts';
import { listSegments, segmentFileName, segmentPath } from './segments.ts';

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

export async function recoverLog(dir: string, fsync: boolean, report: (truncation: RecoveryReport) => void): Promise<RecoveredLog> {
  const bases = await listSegments(dir);
  const segments: SegmentState[] = [];
  const heads = new Map<string, ChainHead>();
  let index = 0;
  for (let i = 0; i < bases.length; i++) {
    const base = bases[i] as number;
    const isLast = i === bases.length - 1;
    if (base !== index) {
      throw corrupt(dir, `segment ${segmentFileName(base)} should start at index ${index}, where the log before it ends (${base > index ? 'records or segments are missing' : 'records are duplicated'})`);
    }
    const path = segmentPath(dir, base);
    // A FIFO or device here would block or lie; only regular files hold records.
    if (!(await stat(path)).isFile()) throw corrupt(dir, `${segmentFileName(base)} is not a regular file`);
    const reader = await SegmentReader.open(path);
    let offset = 0;
    try {
      const size = await reader.size();
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
