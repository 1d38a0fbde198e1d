/** How readers of a file log put damage into words. */
import { LogUnavailableError } from '../port.ts';
import type { LogDefect } from './log-scanner.ts';
import { segmentFileName } from './segments.ts';

/** `record at index 7 (00000000000000000000.seg, offset 4113), claiming to be event … (stream s-1, seq 4): <reason>` */
export function describeDefect(defect: LogDefect): string {
  const { eventId, stream, seq } = defect.claimed;
  const claim = eventId === undefined ? '' : `, claiming to be event ${eventId} (stream ${stream ?? '?'}, seq ${seq ?? '?'})`;
  return `record at index ${defect.index} (${segmentFileName(defect.segment)}, offset ${defect.offset})${claim}: ${defect.reason}`;
}

export function corruptionError(dir: string, defect: LogDefect): LogUnavailableError {
  return new LogUnavailableError('ATTEST_LOG_CORRUPT', `the event log in ${dir} is damaged: ${describeDefect(defect)}. Run \`attest verify\` for a full report.`);
}

/** A file-system error while reading, as the port's error; anything else (a bad argument) as it is. */
export function readError(dir: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (error instanceof LogUnavailableError || typeof code !== 'string') return error;
  return new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `the event log in ${dir} could not be read: ${code}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
}
