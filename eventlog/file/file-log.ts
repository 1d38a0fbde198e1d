/**
 * The embedded file adapter of the EventLog port: segmented append-only files, length + CRC
 * framing, fdatasync group commit, torn-tail recovery, one writer per directory. See README.md
 * in this folder's parent for the format and the durability, recovery and failure policies.
 */
import { mkdir, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { z } from 'zod';
import { FileLogSchema, formatConfigIssues } from '#schemas';
import type { AttestEvent, EventDraft } from '#schemas';
import { ChainHeads } from '../chain.ts';
import type { ChainHead } from '../chain.ts';
import type { EventLogLogger } from '../logger.ts';
import { silentLogger } from '../logger.ts';
import { LogUnavailableError, refuseWhenQueueFull } from '../port.ts';
import type { BatchListener, EventLog, FilePosition, FollowOptions, LogEntry, ReadOptions, StoredEvent } from '../port.ts';
import { acquireDirLock } from './dir-lock.ts';
import type { DirLock, StaleLock } from './dir-lock.ts';
import { deferred } from './deferred.ts';
import { fsyncDir } from './durable-fs.ts';
import { encodeEvents } from './event-codec.ts';
import { GroupCommitWriter } from './group-commit.ts';
import type { FileLogStats } from './group-commit.ts';
import { readableOnly, scanEntries } from './file-reader.ts';
import { changeOrAbort } from './log-scanner.ts';
import type { ScanSource } from './log-scanner.ts';
import { recoverLog } from './recovery.ts';
import type { RecoveryReport, ResumeFrom } from './recovery.ts';
import { segmentPath } from './segments.ts';

/** The `log` section of the config for `backend: file`, without the discriminator; defaults as in the config reference. */
export type FileLogOptions = Omit<z.input<typeof FileLogSchema>, 'backend'>;

export interface FileLogHooks {
  readonly logger?: EventLogLogger;
  /** Called for every torn tail truncated at start-up (also logged as a warning). */
  readonly onRecovery?: (report: RecoveryReport) => void;
  /** Called when a stale lock (its owner no longer runs) is taken over at open (also logged as a warning). */
  readonly onStaleLock?: (taken: StaleLock) => void;
  /** Resume from a snapshot: scan only from its cursor on (recovery.ts); ATTEST_CURSOR_INVALID when it does not match the log. */
  readonly resume?: ResumeFrom;
}

export interface FileEventLog extends EventLog<FilePosition> {
  readonly backend: 'file';
  readonly dir: string;
  /** Group-commit counters, for benchmarks and health endpoints. */
  stats(): FileLogStats;
}

const NOTHING: readonly StoredEvent<FilePosition>[] = Object.freeze([]);

export async function openFileLog(options: FileLogOptions, hooks: FileLogHooks = {}): Promise<FileEventLog> {
  const parsed = FileLogSchema.safeParse({ backend: 'file', ...options });
  if (!parsed.success) throw new TypeError(`invalid file event log options:\n${formatConfigIssues(parsed.error)}`);
  const config = parsed.data;
  const dir = resolve(config.dir);
  const logger = hooks.logger ?? silentLogger;

  const created = await mkdir(dir, { recursive: true });
  if (created !== undefined && config.fsync) await fsyncDir(dirname(created));
  const lock = await acquireDirLock(dir, logger, hooks.onStaleLock);
  try {
    const recovered = await recoverLog(dir, config.fsync, (report) => {
      logger.warn({ ...report }, 'event log: torn tail truncated at start-up (a write cut short by a crash; it was never acknowledged)');
      hooks.onRecovery?.(report);
    }, hooks.resume);
    const segments = recovered.segments;
    if (segments.length === 0) {
      const first = await open(segmentPath(dir, 0), 'wx');
      await first.close();
      if (config.fsync) await fsyncDir(dir);
      segments.push({ base: 0, durableBytes: 0 });
    }
    const heads = new ChainHeads(recovered.heads, { knownStreamsOnly: hooks.resume !== undefined });
    const writer = new GroupCommitWriter(
      { dir, segmentBytes: config.segmentBytes, maxBatchEvents: config.maxBatchEvents, appendTimeoutMs: config.appendTimeoutMs, fsync: config.fsync, logger },
      heads,
      segments,
      recovered.size,
    );
    logger.info({ dir, events: recovered.size, segments: segments.length, streams: heads.streamCount, fsync: config.fsync, ...(hooks.resume !== undefined && { resumedAfter: hooks.resume.cursor }) }, 'event log opened');
    return new FileLog(dir, { appendTimeoutMs: config.appendTimeoutMs, maxQueuedBytes: config.maxQueuedBytes }, heads, writer, lock, logger);
  } catch (error) {
    await lock.release();
    throw error;
  }
}

class FileLog implements FileEventLog {
  readonly backend = 'file' as const;
  readonly dir: string;
  readonly #appendTimeoutMs: number;
  readonly #maxQueuedBytes: number;
  readonly #heads: ChainHeads;
  readonly #writer: GroupCommitWriter;
  readonly #lock: DirLock;
  readonly #logger: EventLogLogger;
  readonly #source: ScanSource;
  #closing: Promise<void> | null = null;

  constructor(dir: string, limits: { readonly appendTimeoutMs: number; readonly maxQueuedBytes: number }, heads: ChainHeads, writer: GroupCommitWriter, lock: DirLock, logger: EventLogLogger) {
    this.dir = dir;
    this.#appendTimeoutMs = limits.appendTimeoutMs;
    this.#maxQueuedBytes = limits.maxQueuedBytes;
    this.#heads = heads;
    this.#writer = writer;
    this.#lock = lock;
    this.#logger = logger;
    this.#source = {
      dir,
      segments: () => Promise.resolve(writer.segments),
      nextChange: (signal) => changeOrAbort(writer.nextCommit(), signal),
    };
  }

  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent<FilePosition>[]> {
    if (this.#closing !== null) return Promise.reject(new LogUnavailableError('ATTEST_LOG_CLOSED', `the event log in ${this.dir} is closed; nothing was written`));
    if (drafts.length === 0) return Promise.resolve(NOTHING);
    // Checked before sealing, so a refused append moves no chain head. One append may take the queue past the limit.
    const full = refuseWhenQueueFull('the event log', 'the disk', this.#writer.pendingBytes, this.#maxQueuedBytes);
    if (full !== undefined) return Promise.reject(full);
    let events: AttestEvent[];
    let encoded: ReturnType<typeof encodeEvents>;
    try {
      const sealed = this.#heads.seal(drafts);
      encoded = encodeEvents(sealed);
      events = sealed.map((s) => s.event);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const { promise, resolve, reject } = deferred<readonly StoredEvent<FilePosition>[]>();
    this.#writer.enqueue({
      events,
      bytes: encoded.bytes,
      frameOffsets: encoded.frameOffsets,
      deadline: performance.now() + this.#appendTimeoutMs,
      resolve,
      reject,
      settled: false,
    });
    return promise;
  }

  read(options: ReadOptions = {}): AsyncIterable<StoredEvent<FilePosition>> {
    return readableOnly(this.entries(options), this.dir);
  }

  follow(options: FollowOptions): AsyncIterable<StoredEvent<FilePosition>> {
    return readableOnly(this.entries({ ...options, follow: true }), this.dir);
  }

  /** Every byte below the durable end was synced by this process: damage there is corruption (tail policy strict). */
  entries(options: ReadOptions & { readonly follow?: boolean } = {}): AsyncIterable<LogEntry<FilePosition>> {
    return scanEntries(this.dir, this.#source, options, 'strict');
  }

  head(stream: string): ChainHead {
    return this.#heads.durableHead(stream);
  }

  size(): number {
    return this.#writer.size;
  }

  stats(): FileLogStats {
    return this.#writer.stats();
  }

  onBatch(listener: BatchListener): void {
    this.#writer.onBatch(listener);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#writer.close();
      await this.#lock.release();
      this.#logger.info({ dir: this.dir, ...this.#writer.stats(), events: this.#writer.size }, 'event log closed');
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
