/**
 * The single writer of a file log: group commit (ARCHITECTURE.md "Group commit"). Appends queue
 * their encoded frames; one loop writes everything queued with one writev and one fdatasync per
 * batch, then resolves every caller of that batch. While a batch is in flight new appends queue
 * for the next one, so under load batches grow and fsyncs per event shrink.
 *
 * Failure policy: a failed write or fdatasync rejects the batch and everything queued behind it
 * (their chain links run through the failed events), rolls the chain heads back to the last durable
 * state, and truncates the segment back to its last durable offset through a fresh descriptor.
 * After a failed fsync the old descriptor is never trusted again ("fsyncgate": the kernel may have
 * dropped the dirty pages and cleared the error). Later appends try the disk again, so the log
 * recovers by itself once space is freed or the device is back.
 */
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import type { AttestEvent } from '#schemas';
import { AppendDeadlines } from '../append-deadlines.ts';
import type { ChainHeads } from '../chain.ts';
import type { EventLogLogger } from '../logger.ts';
import { BatchQueue, settleRejected, settleResolved } from '../batch-queue.ts';
import { LogUnavailableError } from '../port.ts';
import type { BatchListener, FilePosition, StoredEvent } from '../port.ts';
import { deferred } from './deferred.ts';
import { closeQuietly, fsyncDir, writeFully } from './durable-fs.ts';
import type { SegmentState } from './recovery.ts';
import { segmentPath } from './segments.ts';

export interface PendingAppend {
  readonly events: readonly AttestEvent[];
  /** The frames of all events of the call, back to back: a call is never split across batches or segments. */
  readonly bytes: Buffer;
  readonly frameOffsets: readonly number[];
  /** performance.now() after which the caller is told ATTEST_LOG_TIMEOUT. */
  readonly deadline: number;
  readonly resolve: (stored: readonly StoredEvent<FilePosition>[]) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

export interface GroupCommitOptions {
  readonly dir: string;
  readonly segmentBytes: number;
  readonly maxBatchEvents: number;
  readonly appendTimeoutMs: number;
  readonly fsync: boolean;
  readonly logger: EventLogLogger;
}

export type FileLogStats = {
  /** Batches made durable (one writev + one fdatasync each). */
  readonly batches: number;
  /** Events made durable. */
  readonly events: number;
  readonly meanBatchEvents: number;
  /** Duration of the last fdatasync, ms (0 with fsync off). */
  readonly lastFsyncMs: number;
  readonly maxFsyncMs: number;
  readonly failedBatches: number;
  readonly timedOutAppends: number;
  /** Appends waiting for the next batch. */
  readonly queuedAppends: number;
  /** Encoded bytes not yet durable: queued, or in the batch being written. */
  readonly pendingBytes: number;
};

interface Batch {
  readonly entries: PendingAppend[];
  readonly events: number;
  readonly bytes: number;
  /** The batch starts a new segment. */
  readonly roll: boolean;
}

const WRITE_FLAGS = constants.O_WRONLY;
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT;

/** A failed file-system step, with what the operator needs: the step, the path, the errno. */
class StorageFault extends Error {
  readonly step: string;
  readonly path: string;
  readonly errno: string;
  constructor(step: string, path: string, cause: unknown) {
    const errno = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
    super(`${errno} during ${step} of ${path}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.step = step;
    this.path = path;
    this.errno = errno;
  }
}

export class GroupCommitWriter {
  readonly #options: GroupCommitOptions;
  readonly #heads: ChainHeads;
  readonly #segments: SegmentState[];
  #size: number;
  #handle: FileHandle | null = null;
  /** Open (and trim) the current segment afresh before the next write. */
  #reopen = true;
  /** A segment was created whose directory entry is not yet durable. */
  #dirDirty = false;
  /** Appends waiting for the next batch; its pending bytes are what admission control reads. */
  readonly #queue = new BatchQueue<PendingAppend>({ eventsOf: (entry) => entry.events.length, bytesOf: (entry) => entry.bytes.length, writeNext: () => this.#writeNext() });
  readonly #deadlines: AppendDeadlines<PendingAppend>;
  #commit = deferred<boolean>();
  #closing: Promise<void> | null = null;

  #batchListener: BatchListener | undefined;
  #batches = 0;
  #events = 0;
  #lastFsyncMs = 0;
  #maxFsyncMs = 0;
  #failedBatches = 0;

  constructor(options: GroupCommitOptions, heads: ChainHeads, segments: SegmentState[], size: number) {
    if (segments.length === 0) throw new Error('GroupCommitWriter needs at least one segment');
    this.#options = options;
    this.#deadlines = new AppendDeadlines({ timeoutMessage: `the event log did not confirm the append within ${options.appendTimeoutMs} ms (the disk is slow or stalled); treat the call as refused. The events may still be written later.`, onExpired: (expired) => options.logger.warn({ appendTimeoutMs: options.appendTimeoutMs, expired }, 'event log: appends timed out') });
    this.#heads = heads;
    this.#segments = segments;
    this.#size = size;
  }

  /** Durable events. */
  get size(): number {
    return this.#size;
  }

  /** Segments with their durable lengths (live: the last one grows). */
  get segments(): readonly SegmentState[] {
    return this.#segments;
  }

  /** Resolves true at the next durable batch, false when the log closes. */
  nextCommit(): Promise<boolean> {
    return this.#commit.promise;
  }

  /** Encoded bytes not yet durable: queued, or in the batch being written. */
  get pendingBytes(): number {
    return this.#queue.pendingBytes;
  }

  enqueue(entry: PendingAppend): void {
    this.#queue.push(entry);
    this.#deadlines.track(entry);
  }

  onBatch(listener: BatchListener): void {
    this.#batchListener = listener;
  }

  stats(): FileLogStats {
    return {
      batches: this.#batches,
      events: this.#events,
      meanBatchEvents: this.#batches === 0 ? 0 : this.#events / this.#batches,
      lastFsyncMs: this.#lastFsyncMs,
      maxFsyncMs: this.#maxFsyncMs,
      failedBatches: this.#failedBatches,
      timedOutAppends: this.#deadlines.timedOut,
      queuedAppends: this.#queue.queued,
      pendingBytes: this.#queue.pendingBytes,
    };
  }

  /** Waits for every queued append to settle, then releases the segment. Callers stop enqueueing first. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#queue.whenIdle();
      this.#deadlines.stop();
      const handle = this.#handle;
      this.#handle = null;
      if (handle !== null) {
        try {
          await handle.close();
        } catch (error) {
          this.#options.logger.warn({ err: error }, 'event log: closing the segment failed (all acknowledged data was already synced)');
        }
      }
      this.#commit.resolve(false);
    })();
    return this.#closing;
  }

  async #writeNext(): Promise<void> {
    const batch = this.#takeBatch();
    try {
      const started = this.#batchListener === undefined ? 0 : performance.now();
      const at = await this.#write(batch);
      this.#queue.release(batch.bytes);
      this.#committed(batch, at);
      this.#batchListener?.(batch.events, performance.now() - started);
    } catch (error) {
      // Synchronously, so no append made from here on chains onto the failed events.
      this.#queue.release(batch.bytes);
      const failed = this.#failed(batch, error);
      // Callers learn of the failure only once the segment is back at its durable end; the
      // timer still covers them meanwhile (they stay in flight).
      await this.#trimAfterFailure();
      failed.reject();
    }
  }

  #takeBatch(): Batch {
    const { segmentBytes, maxBatchEvents } = this.#options;
    const current = this.#current();
    const first = this.#queue.peek() as PendingAppend;
    const roll = current.durableBytes > 0 && current.durableBytes + first.bytes.length > segmentBytes;
    const start = roll ? 0 : current.durableBytes;
    // At least one call per batch, even one larger than a segment: a call is never split.
    return { ...this.#queue.take({ maxEvents: maxBatchEvents, maxBytes: segmentBytes - start }), roll };
  }

  /** Writes and syncs a batch; returns the offset it starts at in the current segment. */
  async #write(batch: Batch): Promise<number> {
    const { dir, fsync } = this.#options;
    let step = 'creation';
    let path = segmentPath(dir, this.#size);
    try {
      if (batch.roll) await this.#roll();
      const segment = this.#current();
      path = segmentPath(dir, segment.base);
      if (this.#reopen || this.#handle === null) {
        step = 'opening';
        await this.#openCurrent();
      }
      const handle = this.#handle as FileHandle;
      const at = segment.durableBytes;
      step = 'write';
      await writeFully(
        handle,
        batch.entries.map((entry) => entry.bytes),
        at,
      );
      if (fsync) {
        step = 'fdatasync';
        const started = performance.now();
        await handle.datasync();
        const took = performance.now() - started;
        this.#lastFsyncMs = took;
        if (took > this.#maxFsyncMs) this.#maxFsyncMs = took;
        if (this.#dirDirty) {
          step = 'fsync of the directory';
          path = dir;
          await fsyncDir(dir);
          this.#dirDirty = false;
        }
      }
      return at;
    } catch (error) {
      throw new StorageFault(step, path, error);
    }
  }

  /** Starts the next segment, named after the index of its first record. The old one is complete and synced. */
  async #roll(): Promise<void> {
    const previous = this.#handle;
    this.#handle = null;
    await closeQuietly(previous);
    const segment: SegmentState = { base: this.#size, durableBytes: 0 };
    const handle = await this.#openTrimmed(segment);
    // Published to readers only once the file exists.
    this.#segments.push(segment);
    this.#handle = handle;
    this.#reopen = false;
  }

  /** (Re)opens the current segment on a fresh descriptor and trims it to its durable length. */
  async #openCurrent(): Promise<void> {
    const previous = this.#handle;
    this.#handle = null;
    await closeQuietly(previous);
    this.#handle = await this.#openTrimmed(this.#current());
    this.#reopen = false;
  }

  async #openTrimmed(segment: SegmentState): Promise<FileHandle> {
    const path = segmentPath(this.#options.dir, segment.base);
    // Durable bytes must already be there; only an empty segment may be (re)created.
    const handle = await open(path, segment.durableBytes === 0 ? CREATE_FLAGS : WRITE_FLAGS);
    try {
      const { size } = await handle.stat();
      if (size < segment.durableBytes) {
        throw Object.assign(new Error(`the segment holds ${size} bytes but ${segment.durableBytes} were acknowledged: it was truncated or replaced by someone else`), { code: 'EDATALOST' });
      }
      if (size > segment.durableBytes) {
        await handle.truncate(segment.durableBytes);
        if (this.#options.fsync) await handle.datasync();
      }
      if (segment.durableBytes === 0) this.#dirDirty = true;
      return handle;
    } catch (error) {
      await closeQuietly(handle);
      throw error;
    }
  }

  #committed(batch: Batch, at: number): void {
    const segment = this.#current();
    let index = this.#size;
    let offset = at;
    segment.durableBytes = at + batch.bytes;
    this.#size += batch.events;
    this.#batches++;
    this.#events += batch.events;
    for (const entry of batch.entries) {
      this.#heads.commit(entry.events);
      const stored: StoredEvent<FilePosition>[] = new Array<StoredEvent<FilePosition>>(entry.events.length);
      for (let i = 0; i < entry.events.length; i++) {
        stored[i] = {
          event: entry.events[i] as AttestEvent,
          position: { backend: 'file', index: index + i, segment: segment.base, offset: offset + (entry.frameOffsets[i] as number) },
        };
      }
      index += entry.events.length;
      offset += entry.bytes.length;
      settleResolved(entry, stored);
    }
    const commit = this.#commit;
    this.#commit = deferred<boolean>();
    commit.resolve(true);
  }

  /** Takes the failed batch and everything queued behind it out of the queue and rolls the heads back; `reject` tells their callers. */
  #failed(batch: Batch, error: unknown): { readonly entries: PendingAppend[]; reject(): void } {
    this.#reopen = true;
    this.#failedBatches++;
    this.#heads.rollback();
    const behind = this.#queue.drop();
    const fault = error instanceof StorageFault ? error : new StorageFault('write', this.#options.dir, error);
    this.#options.logger.error(
      { err: error, errno: fault.errno, step: fault.step, path: fault.path, rejectedAppends: batch.entries.length + behind.length },
      'event log write failed: appends rejected, chain heads rolled back to the last durable event',
    );
    const failure = new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `the event log could not be written: ${fault.message}. Nothing of this append was acknowledged.`, { cause: error });
    const queued = new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `an earlier write to the event log failed (${fault.errno} during ${fault.step} of ${fault.path}); this append, queued behind it, was not written.`, { cause: error });
    return {
      entries: [...batch.entries, ...behind],
      reject: () => {
        for (const entry of batch.entries) settleRejected(entry, failure);
        for (const entry of behind) settleRejected(entry, queued);
      },
    };
  }

  /** Cuts what the failed batch may have left past the durable end, through a fresh descriptor. */
  async #trimAfterFailure(): Promise<void> {
    const previous = this.#handle;
    this.#handle = null;
    await closeQuietly(previous);
    try {
      const handle = await this.#openTrimmed(this.#current());
      await handle.close();
    } catch (error) {
      // Not fatal: the next batch opens and trims again before it writes, and fails if it cannot.
      this.#options.logger.warn({ err: error }, 'event log: could not trim the segment after a failed write; will retry before the next write');
    }
  }

  #current(): SegmentState {
    return this.#segments[this.#segments.length - 1] as SegmentState;
  }
}
