/**
 * One read of the log shared by several readers. At start the gateway rebuilds five projections
 * from the whole log (interrupted calls, dangling approvals, run-time keys, limits, tool pins);
 * reading and validating every event once per projection made a start on a 1M-event log take
 * 38 s instead of 12 s (BENCHMARKS.md "Start-up, rebuild, verify"). `shareRead(log, n)` gives n
 * readers whose `read()` all walk one underlying `log.read()`: events are fetched in chunks, and
 * the next chunk is fetched only when every reader has taken the current one, so memory stays at
 * about two chunks whatever the log's size. A reader that stops early (break, or an error in its
 * loop) leaves the group and the others go on; an error of the underlying read reaches them all.
 */
import type { LogPosition, ReadOptions, StoredEvent } from './port.ts';

/** What a projection needs of a log to rebuild from it. */
export interface LogReadable<P extends LogPosition = LogPosition> {
  read(options?: ReadOptions): AsyncIterable<StoredEvent<P>>;
}

interface Chunk<P extends LogPosition> {
  readonly events: Promise<readonly StoredEvent<P>[]>;
  /** Readers that have not taken this chunk yet. */
  waiting: number;
  /** Resolves when every reader still in the group has taken it: the next chunk may be fetched. */
  readonly taken: Promise<void>;
  readonly release: () => void;
}

export function shareRead<P extends LogPosition>(log: LogReadable<P>, readers: number, chunkSize = 1_024): LogReadable<P>[] {
  if (!Number.isInteger(readers) || readers < 1) throw new RangeError(`readers must be a positive integer, not ${readers}`);
  let source: AsyncIterator<StoredEvent<P>> | undefined;
  let members = readers;
  const chunks = new Map<number, Chunk<P>>();

  function fetchAfter(previous: Chunk<P> | undefined): Promise<readonly StoredEvent<P>[]> {
    // After the previous chunk has been read from the source (one reader of the iterator at a
    // time) and taken by everyone (so at most two chunks are alive).
    const ready = previous === undefined ? Promise.resolve() : Promise.all([previous.events, previous.taken]).then(() => undefined);
    return ready.then(async () => {
      source ??= log.read()[Symbol.asyncIterator]();
      const out: StoredEvent<P>[] = [];
      while (out.length < chunkSize) {
        const next = await source.next();
        if (next.done === true) break;
        out.push(next.value);
      }
      return out;
    });
  }

  function chunk(index: number): Chunk<P> {
    let entry = chunks.get(index);
    if (entry === undefined) {
      let release!: () => void;
      const taken = new Promise<void>((resolve) => (release = resolve));
      entry = { events: fetchAfter(chunks.get(index - 1)), waiting: members, taken, release };
      // A chunk fetch that fails is seen by every reader that takes it; nobody else awaits it unobserved.
      entry.events.catch(() => undefined);
      chunks.set(index, entry);
      chunks.delete(index - 2);
    }
    return entry;
  }

  function take(entry: Chunk<P>): void {
    entry.waiting--;
    if (entry.waiting <= 0) entry.release();
  }

  function reader(): LogReadable<P> {
    let used = false;
    return {
      read(options?: ReadOptions): AsyncIterable<StoredEvent<P>> {
        if (options !== undefined && Object.keys(options).length > 0) throw new TypeError('a shared read covers the whole log: no options');
        if (used) throw new Error('each shared reader reads once');
        used = true;
        let index = 0;
        let left = false;
        const leave = (): void => {
          if (left) return;
          left = true;
          members--;
          // Chunks this reader will never take stop waiting for it.
          for (const [i, entry] of chunks) if (i >= index) take(entry);
          // The last reader out closes the underlying read (a file handle, a fetch session).
          if (members === 0) void source?.return?.()?.catch(() => undefined);
        };
        return {
          [Symbol.asyncIterator]: () => {
            let current: readonly StoredEvent<P>[] = [];
            let position = 0;
            let finished = false;
            return {
              async next(): Promise<IteratorResult<StoredEvent<P>>> {
                while (position >= current.length) {
                  if (finished || left) return { done: true, value: undefined };
                  const entry = chunk(index);
                  index++;
                  take(entry);
                  try {
                    current = await entry.events;
                  } catch (error) {
                    leave();
                    throw error;
                  }
                  position = 0;
                  if (current.length === 0) {
                    finished = true;
                    leave();
                  }
                }
                return { done: false, value: current[position++] as StoredEvent<P> };
              },
              async return(): Promise<IteratorResult<StoredEvent<P>>> {
                leave();
                return { done: true, value: undefined };
              },
            };
          },
        };
      },
    };
  }

  return Array.from({ length: readers }, reader);
}
