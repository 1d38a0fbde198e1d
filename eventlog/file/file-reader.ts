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
import type { EventLogReader, ReadOptions, FilePosition, StoredEvent } from '../port.ts';
import { scanLog } from './log-scanner.ts';
import type { ScanSource } from './log-scanner.ts';
import { corruptionError, readError } from './read-errors.ts';
import { listSegments } from './segments.ts';

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
    return this.#scan(options, false);
  }

  follow(options: ReadOptions & { readonly signal: AbortSignal }): AsyncIterable<StoredEvent<FilePosition>> {
    return this.#scan(options, true);
  }

  async close(): Promise<void> {
    this.#closed.abort();
  }

  async *#scan(options: ReadOptions, follow: boolean): AsyncGenerator<StoredEvent<FilePosition>, void, undefined> {
    const signal = options.signal === undefined ? this.#closed.signal : AbortSignal.any([options.signal, this.#closed.signal]);
    try {
      for await (const item of scanLog(this.#source, { ...options, signal, follow, tail: 'wait' })) {
        if (item.kind === 'defect') throw corruptionError(this.#dir, item.defect);
        yield item.stored;
      }
    } catch (error) {
      throw readError(this.#dir, error);
    }
  }
}
