/**
 * Per-stream hash chains (ARCHITECTURE.md "Events", COMPLIANCE.md §4): within a stream, seq runs
 * 1, 2, 3 …, prevHash is the previous event's hash (null at seq 1) and hash is SHA-256 over the
 * RFC 8785 canonical JSON of the event without `hash` — the definition of `eventHash()` in #schemas.
 *
 * Heads live in two layers so a failed write can be undone without copying every stream's head:
 * `durable` holds what the backend has confirmed, `pending` what was sealed since. A failure
 * rejects everything not yet durable, so `rollback()` just drops the pending layer.
 */
import { canonicalize, EventDraftSchema, sha256Hex } from '#schemas';
import type { AttestEvent, EventDraft } from '#schemas';
import { InvalidEventError } from './port.ts';

export interface ChainHead {
  readonly seq: number;
  readonly hash: string | null;
}

export const EMPTY_HEAD: ChainHead = Object.freeze({ seq: 0, hash: null });

/** A sealed event and the canonical JSON its hash commits to (also the Merkle leaf content). */
export interface SealedEvent {
  readonly event: AttestEvent;
  /** RFC 8785 JSON of the event without `hash`. */
  readonly canonical: string;
}

export type HeadsSnapshot = ReadonlyMap<string, ChainHead>;

/** The event types a stream begins with: a session's, and a gateway instance's system stream. */
const STREAM_OPENERS: ReadonlySet<string> = new Set(['SessionOpened', 'GatewayStarted']);

export interface ChainHeadsOptions {
  /**
   * The heads are not every stream's, only those that can still be appended to (a writer resumed
   * from a snapshot, which leaves out closed sessions): a stream it does not know may only begin
   * with an opener (SessionOpened, GatewayStarted). Anything else would restart a pruned chain at
   * seq 1 and fork it, so it is refused (InvalidEventError).
   */
  readonly knownStreamsOnly?: boolean;
}

export class ChainHeads {
  #durable: Map<string, ChainHead>;
  readonly #pending = new Map<string, ChainHead>();
  readonly #knownStreamsOnly: boolean;

  constructor(initial?: HeadsSnapshot, options: ChainHeadsOptions = {}) {
    this.#durable = new Map(initial);
    this.#knownStreamsOnly = options.knownStreamsOnly ?? false;
  }

  /** The head new events chain onto: the last sealed event, durable or not. */
  head(stream: string): ChainHead {
    return this.#pending.get(stream) ?? this.#durable.get(stream) ?? EMPTY_HEAD;
  }

  /** The last event of the stream the backend has confirmed. */
  durableHead(stream: string): ChainHead {
    return this.#durable.get(stream) ?? EMPTY_HEAD;
  }

  /** Number of streams with at least one durable event. */
  get streamCount(): number {
    return this.#durable.size;
  }

  /**
   * Validates and seals the drafts in order, advancing the pending heads. All or nothing: when a
   * draft is invalid, no head moves and InvalidEventError is thrown.
   */
  seal(drafts: readonly EventDraft[]): SealedEvent[] {
    const sealed: SealedEvent[] = [];
    // Heads within this call, applied only once every draft has sealed.
    const local = new Map<string, ChainHead>();
    for (let i = 0; i < drafts.length; i++) {
      const draft = drafts[i] as EventDraft;
      const parsed = EventDraftSchema.safeParse(draft);
      if (!parsed.success) {
        const issues = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.message}`).join('; ');
        throw new InvalidEventError(`draft ${i} (type ${String(draft?.type)}) breaks the event contract: ${issues}`);
      }
      const prev = local.get(draft.stream) ?? this.head(draft.stream);
      if (this.#knownStreamsOnly && prev.seq === 0 && !STREAM_OPENERS.has(draft.type)) {
        throw new InvalidEventError(`draft ${i} (type ${draft.type}) would begin stream ${draft.stream}, which this writer does not know: it resumed from a snapshot holding only the streams that can still be appended to, and a ${draft.type} does not open a stream (appending it would fork a closed chain)`);
      }
      const unsealed = { ...draft, seq: prev.seq + 1, prevHash: prev.hash };
      let canonical: string;
      try {
        canonical = canonicalize(unsealed);
      } catch (cause) {
        throw new InvalidEventError(`draft ${i} (type ${draft.type}) has no canonical JSON form: ${(cause as Error).message}`, { cause });
      }
      const hash = sha256Hex(canonical);
      local.set(draft.stream, { seq: unsealed.seq, hash });
      sealed.push({ event: { ...unsealed, hash }, canonical });
    }
    for (const [stream, head] of local) this.#pending.set(stream, head);
    return sealed;
  }

  /** Marks events durable, in log order. */
  commit(events: readonly Pick<AttestEvent, 'stream' | 'seq' | 'hash'>[]): void {
    for (const event of events) {
      const pending = this.#pending.get(event.stream);
      if (pending !== undefined && pending.seq === event.seq) {
        this.#pending.delete(event.stream);
        this.#durable.set(event.stream, pending);
      } else {
        this.#durable.set(event.stream, { seq: event.seq, hash: event.hash });
      }
    }
  }

  /** Forgets everything sealed but not durable: the heads return to the last durable state. */
  rollback(): void {
    this.#pending.clear();
  }

  /** A copy of the durable heads. */
  snapshot(): HeadsSnapshot {
    return new Map(this.#durable);
  }

  /** Replaces the durable heads and drops anything pending. */
  restore(snapshot: HeadsSnapshot): void {
    this.#durable = new Map(snapshot);
    this.#pending.clear();
  }
}
