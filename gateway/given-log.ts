/**
 * An event log in memory for given/when/then specs of code that folds the log and records into it
 * (the reconciler, approval expiry): the `given` drafts are sealed into their chains and validated
 * like any append; `appended` is what the code under test recorded after them. Not a backend: it
 * keeps nothing, and its positions borrow the file backend's shape (index = offset, one segment).
 */
import { eventHash, readEvent } from '#schemas';
import type { AttestEvent, EventDraft } from '#schemas';
import { ChainHeads, cursorOf } from '#eventlog';
import type { ChainHead, EventLog, FilePosition, ReadOptions, StoredEvent } from '#eventlog';

export class InMemoryLog implements EventLog<FilePosition> {
  readonly backend = 'file' as const;
  readonly #heads = new ChainHeads();
  readonly #events: StoredEvent<FilePosition>[] = [];
  readonly #given: number;

  /** `given`: events already in the log, written by any version (read strength: a SessionOpened without `instance` is fine). */
  constructor(given: readonly EventDraft[]) {
    for (const draft of given) {
      const prev = this.#heads.head(draft.stream);
      const unsealed = { ...draft, seq: prev.seq + 1, prevHash: prev.hash };
      const written = { ...unsealed, hash: eventHash(unsealed) };
      const reading = readEvent(written);
      if (!reading.ok) throw new Error(`InMemoryLog: a given ${draft.type} is not an event: ${reading.reason}`);
      this.#heads.commit([written]);
      this.#events.push({ event: reading.event, position: { backend: 'file', index: this.#events.length, segment: 0, offset: this.#events.length } });
    }
    this.#given = this.#events.length;
  }

  /** The events appended after the given ones, in log order. */
  get appended(): readonly AttestEvent[] {
    return this.#events.slice(this.#given).map((stored) => stored.event);
  }

  append(drafts: readonly EventDraft[]): Promise<readonly StoredEvent<FilePosition>[]> {
    return Promise.resolve(this.#write(drafts));
  }

  head(stream: string): ChainHead {
    return this.#heads.durableHead(stream);
  }

  size(): number {
    return this.#events.length;
  }

  async *read(options: ReadOptions = {}): AsyncGenerator<StoredEvent<FilePosition>> {
    const from = options.after === undefined ? 0 : this.#events.findIndex((stored) => cursorOf(stored) === options.after) + 1;
    if (from === 0 && options.after !== undefined) throw new Error(`InMemoryLog: no event has cursor ${options.after}`);
    for (const stored of this.#events.slice(from)) if (options.stream === undefined || stored.event.stream === options.stream) yield stored;
  }

  entries(options: ReadOptions = {}): AsyncGenerator<StoredEvent<FilePosition>> {
    return this.read(options);
  }

  follow(): never {
    throw new Error('InMemoryLog does not follow: the specs using it fold a log that is given in full');
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  #write(drafts: readonly EventDraft[]): StoredEvent<FilePosition>[] {
    const sealed = this.#heads.seal(drafts);
    this.#heads.commit(sealed.map((s) => s.event));
    return sealed.map(({ event }) => {
      const index = this.#events.length;
      const stored = { event, position: { backend: 'file' as const, index, segment: 0, offset: index } };
      this.#events.push(stored);
      return stored;
    });
  }
}
