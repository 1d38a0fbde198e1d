/**
 * Offline verification of the per-stream hash chains (COMPLIANCE.md §4): every event's hash is
 * recomputed from its content, every stream must run seq 1, 2, 3 … with each prevHash equal to the
 * previous event's hash, and the global log order must have no holes. The first event that does
 * not match is named — id, stream, seq and where it sits — in a sentence a person can act on.
 *
 * What chains cannot show: events cut off the end of a stream (with nothing after them). The file
 * verifier also checks segment boundaries; signed Merkle checkpoints close the rest.
 */
import { eventHash } from '#schemas';
import type { AttestEvent } from '#schemas';
import { LogUnavailableError } from './port.ts';
import type { EventLogReader, LogEntry } from './port.ts';
import { chainOf } from './record-decode.ts';

export interface VerifyFailure {
  /** Global index of the first event (or record) that does not verify. */
  readonly index: number;
  readonly eventId?: string;
  readonly stream?: string;
  readonly seq?: number;
  /** File backend: segment (base index) and byte offset of its record. */
  readonly segment?: number;
  readonly offset?: number;
  readonly reason: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly eventsChecked: number;
  /** Streams seen. */
  readonly streams: number;
  readonly firstFailure?: VerifyFailure;
}

interface StreamState {
  readonly seq: number;
  readonly hash: string;
  readonly id: string;
  readonly index: number;
}

/** A seq jump, held open to tell removal (the missing seqs never come) from reordering (they come later). */
interface OpenGap {
  readonly at: LogEntry;
  readonly from: number;
  readonly to: number;
  readonly previous: StreamState | undefined;
}

/** Checks events fed in log order; stops judging at the first failure. */
export class ChainVerifier {
  readonly #streams = new Map<string, StreamState>();
  #nextIndex = 0;
  #checked = 0;
  #failure: VerifyFailure | undefined;
  #gap: OpenGap | undefined;

  /** True once the verdict is final: feeding more events changes nothing. */
  get settled(): boolean {
    return this.#failure !== undefined;
  }

  /** Index the next event should have. */
  get nextIndex(): number {
    return this.#nextIndex;
  }

  check(stored: LogEntry): void {
    if (this.#failure !== undefined) return;
    const { position } = stored;
    const event = chainOf(stored);
    const gap = this.#gap;
    if (gap !== undefined) {
      if (event.stream === chainOf(gap.at).stream && event.seq >= gap.from && event.seq < gap.to) {
        this.#fail(gap.at, `out of order: it comes before seq ${event.seq} of its stream, which follows later at index ${position.index} (events were reordered)`);
      }
      return;
    }
    this.#checked++;
    // File and Kafka indexes are contiguous, so a gap is a missing record; KurrentDB's are $all
    // commit positions (increasing, with gaps), where only the order can be checked.
    const contiguous = position.backend !== 'kurrent';
    if (contiguous ? position.index !== this.#nextIndex : position.index < this.#nextIndex) {
      this.#fail(stored, contiguous
        ? `it sits at log index ${position.index} where index ${this.#nextIndex} was expected (records are missing from or added to the log order)`
        : `it sits at log position ${position.index}, before the previous event's (the log order went backwards)`);
      return;
    }
    this.#nextIndex = position.index + 1;
    if (eventHash(event.written as AttestEvent) !== event.hash) {
      this.#fail(stored, 'hash does not match its content (the event was altered after it was sealed)');
      return;
    }
    const previous = this.#streams.get(event.stream);
    const previousSeq = previous?.seq ?? 0;
    if (event.seq === previousSeq + 1) {
      if (event.prevHash !== (previous?.hash ?? null)) {
        this.#fail(
          stored,
          previous === undefined
            ? 'it is the first event of its stream but its prevHash is not null (earlier events were removed)'
            : `its prevHash does not match the hash of seq ${previous.seq} at index ${previous.index}: the chain is broken (an event was replaced or re-hashed)`,
        );
        return;
      }
      this.#streams.set(event.stream, { seq: event.seq, hash: event.hash, id: event.id, index: position.index });
      return;
    }
    if (event.seq > previousSeq + 1) {
      this.#gap = { at: stored, from: previousSeq + 1, to: event.seq, previous };
      return;
    }
    if (previous !== undefined && (event.id === previous.id || event.hash === previous.hash) && event.seq === previous.seq) {
      this.#fail(stored, `it duplicates seq ${previous.seq} at index ${previous.index} (a record was copied)`);
    } else {
      this.#fail(stored, `out of order: it comes after seq ${previousSeq} of its stream (index ${previous?.index ?? '?'}) — events were reordered or duplicated`);
    }
  }

  /** Records damage found below the event level (a bad record, a missing segment). */
  damaged(failure: VerifyFailure): void {
    this.#closeGap();
    this.#failure ??= failure;
  }

  result(): VerifyResult {
    this.#closeGap();
    const result = { ok: this.#failure === undefined, eventsChecked: this.#checked, streams: this.#streams.size };
    return this.#failure === undefined ? result : { ...result, firstFailure: this.#failure };
  }

  #closeGap(): void {
    const gap = this.#gap;
    if (gap === undefined || this.#failure !== undefined) return;
    this.#gap = undefined;
    const missing = gap.to - 1 > gap.from ? `seqs ${gap.from}–${gap.to - 1}` : `seq ${gap.from}`;
    const after = gap.previous === undefined ? 'the start of the stream' : `seq ${gap.previous.seq} at index ${gap.previous.index}`;
    this.#fail(gap.at, `${missing} of its stream ${gap.to - 1 > gap.from ? 'are' : 'is'} missing: it follows ${after} (events were removed)`);
  }

  #fail(stored: LogEntry, why: string): void {
    const { position } = stored;
    const event = chainOf(stored);
    this.#failure = {
      index: position.index,
      eventId: event.id,
      stream: event.stream,
      seq: event.seq,
      ...(position.backend === 'file' && { segment: position.segment, offset: position.offset }),
      reason: `${nameOf(event)}: ${why}`,
    };
  }
}

export function nameOf(event: Pick<AttestEvent, 'id' | 'stream' | 'seq'>): string {
  return `event ${event.id} (stream ${event.stream}, seq ${event.seq})`;
}

/**
 * Verifies every record in log order, from the start: a backend's `entries()` or a reader (events
 * this version cannot read are checked all the same: their chains cover them as written). Damage
 * the reader reports (ATTEST_LOG_CORRUPT) becomes the failure; other errors are thrown.
 */
export async function verifyLog(source: AsyncIterable<LogEntry> | EventLogReader): Promise<VerifyResult> {
  const events = Symbol.asyncIterator in source ? source : source.entries();
  const verifier = new ChainVerifier();
  try {
    for await (const stored of events) {
      verifier.check(stored);
      if (verifier.settled) break;
    }
  } catch (error) {
    if (!(error instanceof LogUnavailableError) || error.code !== 'ATTEST_LOG_CORRUPT') throw error;
    verifier.damaged({ index: verifier.nextIndex, reason: error.message });
  }
  return verifier.result();
}
