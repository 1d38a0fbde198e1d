/**
 * A read-only view of a file log for another process (`attest events --follow`, `attest verify`,
 * an out-of-process projector): no lock, no recovery, never writes. It reads what is valid on disk;
 * an incomplete record at the very end is a write in progress (or a torn tail the writer will
 * truncate) — `read` stops before it and `follow` polls until it completes.
 *
 * Caveat (README "Readers in other processes"): records become visible to such a reader once
 * written, slightly before the writer's fdatasync returns. If that fdatasync then fails, the writer
 * truncates them and the reader reports the segment shrank instead of silently re-reading.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { LogUnavailableError } from '../port.ts';
import type { EventLogReader, FilePosition, FollowOptions, LogEntry, ReadOptions, StoredEvent } from '../port.ts';
import { readable } from '../record-decode.ts';
import { scanLog, scanStart } from './log-scanner.ts';
import type { ScanSource, TailPolicy } from './log-scanner.ts';
import { corruptionError, readError } from './read-errors.ts';
import { SegmentReader } from './segment-reader.ts';
import { listSegments, segmentPath } from './segments.ts';

export interface FileLogReaderOptions {
  /** How often `follow` looks for new records (default 100 ms). */
  readonly pollMs?: number;
}

export async function openFileLogReader(dir: string, options: FileLogReaderOptions = {}): Promise<EventLogReader<FilePosition>> {
  const path = resolve(dir);
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(path)).isDirectory();
  } catch (error) {
    throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `no event log at ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`, { cause: error });
  }
  if (!isDirectory) throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `no event log at ${path}: not a directory`);
  return new FileLogReader(path, options.pollMs ?? 100);
}

/** A source over the files alone: nothing is known durable, so every segment is read to its valid end. */
export function diskSource(dir: string, pollMs: number): ScanSource {
  return {
    dir,
    segments: async () => (await listSegments(dir)).map((base) => ({ base, durableBytes: null })),
    nextChange: (signal) => setTimeout(pollMs, true, { signal }).catch(() => false),
  };
}

class FileLogReader implements EventLogReader<FilePosition> {
  readonly backend = 'file' as const;
  readonly #dir: string;
  readonly #source: ScanSource;
  readonly #closed = new AbortController();

  constructor(dir: string, pollMs: number) {
    this.#dir = dir;
    this.#source = diskSource(dir, pollMs);
  }

  read(options: ReadOptions = {}): AsyncIterable<StoredEvent<FilePosition>> {
    return readableOnly(this.entries(options), this.#dir);
  }

  follow(options: FollowOptions): AsyncIterable<StoredEvent<FilePosition>> {
    return readableOnly(this.entries({ ...options, follow: true }), this.#dir);
  }

  entries(options: ReadOptions & { readonly follow?: boolean } = {}): AsyncIterable<LogEntry<FilePosition>> {
    const signal = options.signal === undefined ? this.#closed.signal : AbortSignal.any([options.signal, this.#closed.signal]);
    return scanEntries(this.#dir, this.#source, { ...options, signal }, 'wait');
  }

  /** Records on disk: the last segment's base index plus the valid records in it (a write in progress is not counted). */
  async size(): Promise<number> {
    const bases = await listSegments(this.#dir);
    const last = bases.at(-1);
    if (last === undefined) return 0;
    const reader = await SegmentReader.open(segmentPath(this.#dir, last));
    try {
      const limit = await reader.size();
      let count = 0;
      let offset = 0;
      for (let read = await reader.next(offset, limit); read.status === 'ok'; read = await reader.next(offset, limit)) {
        count++;
        offset = read.frameEnd;
      }
      return last + count;
    } finally {
      await reader.close();
    }
  }

  async close(): Promise<void> {
    this.#closed.abort();
  }
}

/** The entries of a file log: damage becomes ATTEST_LOG_CORRUPT, file-system errors ATTEST_LOG_UNAVAILABLE. */
export async function* scanEntries(dir: string, source: ScanSource, options: ReadOptions & { readonly follow?: boolean }, tail: TailPolicy): AsyncGenerator<LogEntry<FilePosition>, void, undefined> {
  try {
    const { after, follow = false, ...rest } = options;
    for await (const item of scanLog(source, { ...rest, ...(after !== undefined && { after: scanStart(after) }), follow, tail })) {
      if (item.kind === 'defect') throw corruptionError(dir, item.defect);
      yield item.stored;
    }
  } catch (error) {
    throw readError(dir, error);
  }
}

/** What read() and follow() yield of the entries (record-decode.ts `readable`). */
export async function* readableOnly<P extends FilePosition>(entries: AsyncIterable<LogEntry<P>>, dir: string): AsyncGenerator<StoredEvent<P>, void, undefined> {
  for await (const entry of entries) {
    const stored = readable(entry, `the event log in ${dir}`);
    if (stored !== null) yield stored;
  }
}
