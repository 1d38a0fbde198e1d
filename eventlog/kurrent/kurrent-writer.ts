/**
 * The writer of a KurrentDB log: seals in call order, appends with the exact expected revision,
 * groups concurrent appends (group commit), and keeps the chain heads honest.
 *
 * Heads. A stream's head is confirmed against the server the first time this process appends to
 * it (the stream read backwards by one event), and again after any failed write to it. Appends
 * that need an unconfirmed head wait for it, and every append behind them waits too, so sealing
 * stays in call order. The exact expected revision then makes any head that went stale since (a
 * second writer on the stream) fail loudly with WrongExpectedVersion instead of forking the chain.
 *
 * Group commit. One batch at a time: the calls queued while the previous batch was in flight,
 * grouped into one append per stream (KurrentDB appends are per stream), the streams written in
 * parallel. A call is acknowledged when every stream it touched was acknowledged.
 *
 * Atomicity. One append to one stream is atomic on the server. A call whose events span several
 * streams is several appends: it is acknowledged only if all of them were, and otherwise refused
 * — fail closed — while the streams that were written keep their events (a partial write, logged
 * as an error with the event ids for the reconciler). A failed batch rolls every head back to the
 * last acknowledged event and rejects everything queued behind it (their chain links run through
 * the failed events); the failed streams' heads are read again from the server before their next
 * append, since a write that failed or timed out may still have landed.
 */
import { performance } from 'node:perf_hooks';
import { END, BACKWARDS, ErrorType } from '@kurrent/kurrentdb-client';
import type { AppendResult, RecordedEvent } from '@kurrent/kurrentdb-client';
import type { AttestEvent, EventDraft } from '#schemas';
import { AppendDeadlines } from '../append-deadlines.ts';
import { BatchQueue, settleRejected, settleResolved } from '../batch-queue.ts';
import type { ChainHeads, SealedEvent } from '../chain.ts';
import type { EventLogLogger } from '../logger.ts';
import { LogUnavailableError, refuseWhenQueueFull } from '../port.ts';
import type { KurrentPosition, StoredEvent } from '../port.ts';
import { deferred } from '../file/deferred.ts';
import type { Deferred } from '../file/deferred.ts';
import type { KurrentClient } from './kurrent-client.ts';
import { corruptRecordError, decodeRecord, expectedStateFor, kurrentPosition, kurrentStreamName, revisionOfSeq, streamFilter, toEventData } from './kurrent-records.ts';
import { errorType } from './kurrent-reader.ts';

export interface KurrentWriterOptions {
  readonly prefix: string;
  readonly appendTimeoutMs: number;
  /** Most events per batch (a call is never split). */
  readonly maxBatchEvents: number;
  /** Most canonical-JSON bytes per batch, so that no stream's append nears the server's MaxAppendSize (1 MiB by default). */
  readonly maxBatchBytes: number;
  /** Admission control: appends are refused at once (ATTEST_LOG_BUSY) while this many sealed bytes wait for KurrentDB. */
  readonly maxQueuedBytes: number;
  readonly logger: EventLogLogger;
}

export type KurrentWriterStats = {
  readonly batches: number;
  readonly events: number;
  readonly appends: number;
  readonly failedBatches: number;
  readonly partialWrites: number;
  readonly timedOutAppends: number;
  readonly headReads: number;
  /** Sealed bytes not yet settled: queued, or in the batch being written. */
  readonly pendingBytes: number;
};

interface PendingAppend {
  readonly drafts: readonly EventDraft[];
  /** Distinct streams of the drafts, in order; empty when a draft names none (sealing then rejects it). */
  readonly streams: readonly string[];
  sealed: readonly SealedEvent[];
  bytes: number;
  /** performance.now() after which the caller is told ATTEST_LOG_TIMEOUT. */
  readonly deadline: number;
  readonly resolve: (stored: readonly StoredEvent<KurrentPosition>[]) => void;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

/** One append: the events of a batch for one stream, seq-contiguous. */
interface StreamWrite {
  readonly stream: string;
  readonly name: string;
  readonly events: readonly AttestEvent[];
}

type WriteOutcome =
  | { readonly written: true; readonly positions: readonly KurrentPosition[] }
  /** Acknowledged (durable) but its positions could not be established: its calls are refused all the same. */
  | { readonly written: true; readonly positions: null; readonly error: LogUnavailableError }
  | { readonly written: false; readonly error: LogUnavailableError };

const NO_SEALED: readonly SealedEvent[] = Object.freeze([]);

function distinctStreams(drafts: readonly EventDraft[]): string[] | null {
  const streams: string[] = [];
  for (const draft of drafts) {
    const stream = (draft as Partial<EventDraft> | undefined)?.stream;
    if (typeof stream !== 'string' || stream === '') return null;
    if (!streams.includes(stream)) streams.push(stream);
  }
  return streams;
}

/** Resolves with the promise's value, or rejects with `onTimeout()` after `ms` (the promise is left to settle on its own). */
async function within<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(onTimeout()), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

export class KurrentWriter {
  readonly #client: KurrentClient;
  readonly #options: KurrentWriterOptions;
  readonly #heads: ChainHeads;
  #size: number;
  /** Streams whose head was confirmed against the server by this process (and not failed since). */
  readonly #confirmed = new Set<string>();
  /** Head reads in flight: each resolves with the error that failed it, or null. */
  readonly #headReads = new Map<string, Promise<Error | null>>();
  /** Appends waiting for a head read, in call order; they seal once it is in. */
  #waiting: PendingAppend[] = [];
  #pumping = false;
  /** Sealed appends waiting for the next batch; its pending bytes are what admission control reads. */
  readonly #queue = new BatchQueue<PendingAppend>({
    eventsOf: (entry) => entry.sealed.length,
    bytesOf: (entry) => entry.bytes,
    writeNext: () => this.#writeNext(),
    onIdle: () => this.#idleCheck(),
  });
  /** Every append not yet known to be settled, in call order (= deadline order): the timer's list. */
  readonly #deadlines: AppendDeadlines<PendingAppend>;
  #idle: Deferred<void> | null = null;

  #batches = 0;
  #events = 0;
  #appends = 0;
  #failedBatches = 0;
  #partialWrites = 0;
  #headReadCount = 0;

  constructor(client: KurrentClient, options: KurrentWriterOptions, heads: ChainHeads, size: number) {
    this.#client = client;
    this.#options = options;
    this.#deadlines = new AppendDeadlines({
      timeoutMessage: `KurrentDB did not acknowledge the append within ${options.appendTimeoutMs} ms; treat the call as refused. Its events may still be written later.`,
      onExpired: (expired) => options.logger.warn({ appendTimeoutMs: options.appendTimeoutMs, expired }, 'event log: KurrentDB appends timed out'),
    });
    this.#heads = heads;
    this.#size = size;
  }

  /** Events counted at open plus those this process has appended since. */
  get size(): number {
    return this.#size;
  }

  stats(): KurrentWriterStats {
    return {
      batches: this.#batches,
      events: this.#events,
      appends: this.#appends,
      failedBatches: this.#failedBatches,
      partialWrites: this.#partialWrites,
      timedOutAppends: this.#deadlines.timedOut,
      headReads: this.#headReadCount,
      pendingBytes: this.#queue.pendingBytes,
    };
  }

  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent<KurrentPosition>[]> {
    // Checked before sealing, so a refused append moves no chain head. One append may take the queue past the limit.
    const full = refuseWhenQueueFull('the KurrentDB event log', 'the server', this.#queue.pendingBytes, this.#options.maxQueuedBytes);
    if (full !== undefined) return Promise.reject(full);
    const { promise, resolve, reject } = deferred<readonly StoredEvent<KurrentPosition>[]>();
    const streams = distinctStreams(drafts);
    const entry: PendingAppend = {
      drafts,
      streams: streams ?? [],
      sealed: NO_SEALED,
      bytes: 0,
      deadline: performance.now() + this.#options.appendTimeoutMs,
      resolve,
      reject,
      settled: false,
    };
    this.#deadlines.track(entry);
    if (streams === null || (this.#waiting.length === 0 && streams.every((stream) => this.#confirmed.has(stream)))) {
      // Sealed now, synchronously: the common case, and the one that rejects an invalid draft.
      if (this.#seal(entry)) this.#enqueue(entry);
      return promise;
    }
    this.#waiting.push(entry);
    for (const stream of streams) if (!this.#confirmed.has(stream)) void this.#readHead(stream);
    void this.#pump();
    return promise;
  }

  /** Waits for every accepted append to settle. Callers stop appending first. */
  async close(): Promise<void> {
    if (this.#busy()) {
      this.#idle ??= deferred<void>();
      await this.#idle.promise;
    }
    this.#deadlines.stop();
  }

  #busy(): boolean {
    return this.#pumping || this.#waiting.length > 0 || this.#queue.busy;
  }

  #idleCheck(): void {
    if (this.#idle !== null && !this.#busy()) {
      this.#idle.resolve();
      this.#idle = null;
    }
  }

  /** Seals in call order (ChainHeads validates; all or nothing). False when the drafts were rejected. */
  #seal(entry: PendingAppend): boolean {
    try {
      entry.sealed = this.#heads.seal(entry.drafts);
    } catch (error) {
      settleRejected(entry, error instanceof Error ? error : new Error(String(error)));
      return false;
    }
    let bytes = 0;
    for (const sealed of entry.sealed) bytes += Buffer.byteLength(sealed.canonical, 'utf8') + 80;
    entry.bytes = bytes;
    return true;
  }

  #enqueue(entry: PendingAppend): void {
    this.#queue.push(entry);
  }

  // ── heads ───────────────────────────────────────────────────────────────────

  /** Starts (or joins) the head read of a stream. */
  #readHead(stream: string): Promise<Error | null> {
    let reading = this.#headReads.get(stream);
    if (reading === undefined) {
      reading = within(this.#fetchHead(stream), this.#options.appendTimeoutMs, () => new LogUnavailableError('ATTEST_LOG_TIMEOUT', `KurrentDB did not return the head of stream ${kurrentStreamName(this.#options.prefix, stream)} within ${this.#options.appendTimeoutMs} ms`)).then(
        () => null,
        (error: unknown) => (error instanceof Error ? error : new Error(String(error))),
      );
      void reading.finally(() => this.#headReads.delete(stream));
      this.#headReads.set(stream, reading);
    }
    return reading;
  }

  /** Reads the last event of the stream and makes it the durable head; refuses a stream that went backwards. */
  async #fetchHead(stream: string): Promise<void> {
    const { prefix } = this.#options;
    const name = kurrentStreamName(prefix, stream);
    this.#headReadCount++;
    let record: RecordedEvent | undefined;
    try {
      for await (const resolved of this.#client.readStream(name, { direction: BACKWARDS, fromRevision: END, maxCount: 1, requiresLeader: true, deadline: this.#options.appendTimeoutMs })) {
        record = resolved.event;
        break;
      }
    } catch (error) {
      const type = errorType(error);
      if (type === ErrorType.STREAM_DELETED || type === ErrorType.STREAM_TOMBSTONED) {
        throw new LogUnavailableError('ATTEST_LOG_CORRUPT', `stream ${name} was deleted in KurrentDB; Attest's streams must never be deleted. Appends to it are refused.`, { cause: error });
      }
      if (type !== ErrorType.STREAM_NOT_FOUND) {
        throw new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `KurrentDB failed while reading the head of stream ${name}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    }
    const known = this.#heads.durableHead(stream);
    if (record === undefined) {
      if (known.seq > 0) {
        throw new LogUnavailableError('ATTEST_LOG_CORRUPT', `stream ${name} is empty or missing in KurrentDB, yet its chain had reached seq ${known.seq}: it was deleted or truncated. Appends to it are refused.`);
      }
    } else {
      const decoded = decodeRecord(record, prefix);
      if (!decoded.ok) throw corruptRecordError(record, `the last event of the stream is not a valid Attest event: ${decoded.reason}`);
      const last = decoded.entry.event ?? decoded.entry.envelope;
      if (last.seq < known.seq || (last.seq === known.seq && last.hash !== known.hash)) {
        throw new LogUnavailableError(
          'ATTEST_LOG_CORRUPT',
          `stream ${name} ends at seq ${last.seq} in KurrentDB but its chain had reached seq ${known.seq} (hash ${known.hash ?? 'none'}): it was truncated or rewritten. Appends to it are refused.`,
        );
      }
      // Further than we knew: another writer, or a write whose acknowledgement was lost, got there.
      if (last.seq > known.seq) this.#heads.commit([last]);
    }
    this.#confirmed.add(stream);
  }

  /** Seals waiting appends in call order as their heads come in. */
  async #pump(): Promise<void> {
    if (this.#pumping) return;
    this.#pumping = true;
    try {
      while (this.#waiting.length > 0) {
        const entry = this.#waiting[0] as PendingAppend;
        if (entry.settled) {
          // Timed out while waiting: never sealed, so nothing chains onto it.
          this.#waiting.shift();
          continue;
        }
        const missing = entry.streams.filter((stream) => !this.#confirmed.has(stream));
        if (missing.length > 0) {
          const errors = (await Promise.all(missing.map((stream) => this.#readHead(stream)))).filter((error) => error !== null);
          if (errors.length > 0) {
            this.#waiting.shift();
            settleRejected(entry, errors[0] as Error);
          }
          continue;
        }
        this.#waiting.shift();
        if (this.#seal(entry)) this.#enqueue(entry);
      }
    } finally {
      this.#pumping = false;
      this.#idleCheck();
    }
  }

  // ── batches ─────────────────────────────────────────────────────────────────

  async #writeNext(): Promise<void> {
    const { maxBatchEvents, maxBatchBytes, prefix } = this.#options;
    // At least one call per batch; a call is never split. Timed-out calls are written all the
    // same: what was sealed after them chains through their events.
    const { entries: batch, bytes } = this.#queue.take({ maxEvents: maxBatchEvents, maxBytes: maxBatchBytes });
    const writes = groupByStream(batch, prefix);
    const outcomes = await Promise.all(writes.map((write) => this.#write(write)));
    this.#queue.release(bytes);
    this.#settleBatch(batch, writes, outcomes);
  }

  /** Appends one stream's events with the exact expected revision and establishes each event's position. */
  async #write(write: StreamWrite): Promise<WriteOutcome> {
    const { appendTimeoutMs } = this.#options;
    const first = (write.events[0] as AttestEvent).seq;
    const last = (write.events[write.events.length - 1] as AttestEvent).seq;
    this.#appends++;
    let result: AppendResult;
    try {
      result = await within(
        this.#client.appendToStream(write.name, write.events.map(toEventData), { streamState: expectedStateFor(first), deadline: appendTimeoutMs }),
        appendTimeoutMs + 1_000,
        () => new LogUnavailableError('ATTEST_LOG_TIMEOUT', `KurrentDB did not answer the append to stream ${write.name} within ${appendTimeoutMs} ms`),
      );
    } catch (error) {
      return { written: false, error: appendError(write, first, error, appendTimeoutMs) };
    }
    if (!result.success) {
      return { written: false, error: wrongRevision(write.name, expectedStateFor(first), result.nextExpectedRevision) };
    }
    if (result.nextExpectedRevision !== revisionOfSeq(last)) {
      return {
        written: true,
        positions: null,
        error: new LogUnavailableError(
          'ATTEST_LOG_UNAVAILABLE',
          `KurrentDB acknowledged the append to stream ${write.name} at revision ${result.nextExpectedRevision}, not ${revisionOfSeq(last)} as seq ${last} requires; the call is refused`,
        ),
      };
    }
    if (write.events.length === 1 && result.position !== undefined) {
      // The acknowledgement carries the position of the append's last event: exact for one event.
      return { written: true, positions: [kurrentPosition(write.name, revisionOfSeq(first), result.position)] };
    }
    try {
      const positions = await within(this.#readBackPositions(write), appendTimeoutMs, () => new LogUnavailableError('ATTEST_LOG_TIMEOUT', `KurrentDB did not return the positions of stream ${write.name} within ${appendTimeoutMs} ms`));
      return { written: true, positions };
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      return {
        written: true,
        positions: null,
        error: new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `the append to stream ${write.name} was acknowledged, but the $all positions of its events could not be read back (${reason}); the call is refused`, {
          cause: error,
        }),
      };
    }
  }

  /**
   * The `$all` position of every event of a multi-event append. The acknowledgement names only one
   * position for the whole append, so they are read back: the stream's latest events, newest
   * first, from the leader (which has them once it acknowledged). Nobody else appends to the
   * stream meanwhile — the next append to it waits for this batch — so they are among the first.
   */
  async #readBackPositions(write: StreamWrite): Promise<KurrentPosition[]> {
    const { prefix, appendTimeoutMs } = this.#options;
    const wanted = new Map<string, number>();
    write.events.forEach((event, i) => wanted.set(event.id.toLowerCase(), i));
    const found: (KurrentPosition | undefined)[] = new Array<KurrentPosition | undefined>(write.events.length);
    let missing = write.events.length;
    const records = this.#client.readAll({
      fromPosition: END,
      direction: BACKWARDS,
      maxCount: write.events.length + 16,
      filter: streamFilter(prefix, write.stream),
      resolveLinkTos: false,
      requiresLeader: true,
      deadline: appendTimeoutMs,
    });
    for await (const resolved of records) {
      const record = resolved.event;
      if (record === undefined) continue;
      const i = wanted.get(record.id.toLowerCase());
      if (i === undefined || found[i] !== undefined) continue;
      const expected = revisionOfSeq((write.events[i] as AttestEvent).seq);
      if (record.revision !== expected) throw new Error(`event ${record.id} sits at revision ${record.revision}, not ${expected}`);
      found[i] = kurrentPosition(write.name, record.revision, record.position);
      if (--missing === 0) break;
    }
    if (missing > 0) throw new Error(`${missing} of its ${write.events.length} events were not found among the stream's latest events`);
    return found as KurrentPosition[];
  }

  #settleBatch(batch: readonly PendingAppend[], writes: readonly StreamWrite[], outcomes: readonly WriteOutcome[]): void {
    const outcomeOf = new Map<string, WriteOutcome>();
    const positionOf = new Map<string, KurrentPosition>();
    const durable: AttestEvent[] = [];
    let failed = false;
    writes.forEach((write, i) => {
      const outcome = outcomes[i] as WriteOutcome;
      outcomeOf.set(write.stream, outcome);
      if (outcome.written) {
        durable.push(...write.events);
        if (outcome.positions !== null) outcome.positions.forEach((position, k) => positionOf.set((write.events[k] as AttestEvent).id, position));
      } else {
        failed = true;
        // Not written — or not known to be: its head is read again before the next append to it.
        this.#confirmed.delete(write.stream);
      }
    });
    this.#heads.commit(durable);
    this.#size += durable.length;
    this.#events += durable.length;
    this.#batches++;

    if (failed) {
      this.#failedBatches++;
      // Synchronously, so no append made from here on chains onto events that were not written.
      this.#heads.rollback();
      const behind = this.#queue.drop();
      const failures = writes.filter((write) => outcomeOf.get(write.stream)?.written === false).map((write) => ({ stream: write.name, error: (outcomeOf.get(write.stream) as { error: Error }).error.message }));
      this.#options.logger.error(
        { failures, writtenStreams: writes.filter((write) => outcomeOf.get(write.stream)?.written === true).map((write) => write.name), rejectedAppends: batch.length + behind.length },
        'event log: KurrentDB append failed; calls refused, chain heads rolled back to the last acknowledged event',
      );
      const queued = new LogUnavailableError(
        'ATTEST_LOG_UNAVAILABLE',
        `an earlier append to KurrentDB failed (${failures.map((failure) => failure.stream).join(', ')}); this call, queued behind it, was not written`,
      );
      for (const entry of behind) settleRejected(entry, queued);
    }

    for (const entry of batch) {
      const streams = entry.streams;
      const notWritten = streams.filter((stream) => outcomeOf.get(stream)?.written !== true);
      const written = streams.filter((stream) => outcomeOf.get(stream)?.written === true);
      if (notWritten.length > 0 && written.length > 0) this.#partialWrite(entry, written, notWritten, outcomeOf);
      if (entry.settled) continue;
      if (notWritten.length > 0) {
        const cause = (outcomeOf.get(notWritten[0] as string) as { error: LogUnavailableError }).error;
        settleRejected(entry, written.length === 0 ? cause : partialError(this.#options.prefix, written, notWritten, cause));
        continue;
      }
      const unknown = streams.map((stream) => outcomeOf.get(stream) as WriteOutcome).find((outcome) => outcome.written && outcome.positions === null);
      if (unknown !== undefined && unknown.written && unknown.positions === null) {
        settleRejected(entry, unknown.error);
        continue;
      }
      settleResolved(entry, entry.sealed.map(({ event }) => ({ event, position: positionOf.get(event.id) as KurrentPosition })));
    }
  }

  #partialWrite(entry: PendingAppend, written: readonly string[], notWritten: readonly string[], outcomeOf: ReadonlyMap<string, WriteOutcome>): void {
    this.#partialWrites++;
    const { prefix } = this.#options;
    this.#options.logger.error(
      {
        writtenEvents: entry.sealed.filter(({ event }) => written.includes(event.stream)).map(({ event }) => ({ id: event.id, stream: kurrentStreamName(prefix, event.stream), seq: event.seq, type: event.type })),
        notWrittenEvents: entry.sealed.filter(({ event }) => notWritten.includes(event.stream)).map(({ event }) => ({ id: event.id, stream: kurrentStreamName(prefix, event.stream), seq: event.seq, type: event.type })),
        cause: (outcomeOf.get(notWritten[0] as string) as { error: Error }).error.message,
      },
      'event log: partial write — a call spanning several KurrentDB streams was written to some of them only; the call was refused (for the reconciler)',
    );
  }

  // ── timeouts ────────────────────────────────────────────────────────────────
}

/** The batch's events per stream, in seal order; each group is seq-contiguous by construction. */
function groupByStream(batch: readonly PendingAppend[], prefix: string): StreamWrite[] {
  const groups = new Map<string, AttestEvent[]>();
  for (const entry of batch) {
    for (const { event } of entry.sealed) {
      const group = groups.get(event.stream);
      if (group === undefined) groups.set(event.stream, [event]);
      else {
        const previous = group[group.length - 1] as AttestEvent;
        if (event.seq !== previous.seq + 1) throw new Error(`internal: stream ${event.stream} seq ${event.seq} follows seq ${previous.seq} in one batch`);
        group.push(event);
      }
    }
  }
  return [...groups].map(([stream, events]) => ({ stream, name: kurrentStreamName(prefix, stream), events }));
}

function wrongRevision(name: string, expected: unknown, actual: unknown): LogUnavailableError {
  return new LogUnavailableError(
    'ATTEST_LOG_UNAVAILABLE',
    `KurrentDB refused the append to stream ${name}: it was to be at ${describeState(expected)} but is at ${describeState(actual)}. Another writer appended to the stream, or this gateway's chain head was stale; nothing of the append was written, and the head will be read again from KurrentDB before the next append.`,
  );
}

function describeState(state: unknown): string {
  if (typeof state === 'bigint') return state < 0n ? 'no stream' : `revision ${state}`;
  if (state === 'no_stream') return 'no stream (a new stream)';
  return String(state);
}

function appendError(write: StreamWrite, firstSeq: number, error: unknown, appendTimeoutMs: number): LogUnavailableError {
  if (error instanceof LogUnavailableError) return error;
  const message = error instanceof Error ? error.message : String(error);
  switch (errorType(error)) {
    case ErrorType.WRONG_EXPECTED_VERSION: {
      const { expectedState, actualState } = error as { expectedState?: unknown; actualState?: unknown };
      return wrongRevision(write.name, expectedState ?? expectedStateFor(firstSeq), actualState ?? 'unknown');
    }
    case ErrorType.DEADLINE_EXCEEDED:
    case ErrorType.TIMEOUT:
      return new LogUnavailableError('ATTEST_LOG_TIMEOUT', `KurrentDB did not acknowledge the append to stream ${write.name} within ${appendTimeoutMs} ms; it may still be written later`, { cause: error });
    case ErrorType.ACCESS_DENIED:
      return new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `KurrentDB refused the append to stream ${write.name}: the connection's user may not write it (${message})`, { cause: error });
    case ErrorType.MAXIMUM_APPEND_SIZE_EXCEEDED:
      return new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `the append to stream ${write.name} is larger than KurrentDB's MaxAppendSize; raise the server's limit to record events this large (${message})`, { cause: error });
    case ErrorType.STREAM_DELETED:
    case ErrorType.STREAM_TOMBSTONED:
      return new LogUnavailableError('ATTEST_LOG_CORRUPT', `stream ${write.name} was deleted in KurrentDB; Attest's streams must never be deleted (${message})`, { cause: error });
    default:
      return new LogUnavailableError('ATTEST_LOG_UNAVAILABLE', `KurrentDB did not take the append to stream ${write.name}: ${message}`, { cause: error });
  }
}

function partialError(prefix: string, written: readonly string[], notWritten: readonly string[], cause: LogUnavailableError): LogUnavailableError {
  const names = (streams: readonly string[]): string => streams.map((stream) => kurrentStreamName(prefix, stream)).join(', ');
  return new LogUnavailableError(
    cause.code,
    `the call was written only in part: its events in ${names(written)} were acknowledged, those in ${names(notWritten)} were not (${cause.message}). The call is refused; the written part stays in the log for the reconciler.`,
    { cause },
  );
}

