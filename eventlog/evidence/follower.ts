/**
 * The evidence follower: reads the log through the reader port, after the writer made each record
 * durable (never on the forwarding path), and appends each record's leaf to a persisted
 * MerkleStore. A restart resumes at the store's size from the cursor recorded with its last sync,
 * so the log is not re-read or re-hashed; a store without a matching cursor is rebuilt from the log.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cursorOf } from '../cursor.ts';
import { MerkleStore } from '../merkle/index.ts';
import type { EventLogReader, LogCursor, LogEntry } from '../port.ts';
import { storedLeafHash } from './leaf.ts';

const CURSOR_FILE = 'CURSOR';

export interface EvidenceFollowerOptions {
  /** Leaves appended between syncs of the store and its cursor (default 1024). */
  readonly syncEveryLeaves?: number;
  /** Called after each leaf is appended (index, leaf hash, the record): checkpointing hooks in here. */
  readonly onLeaf?: (index: number, leafHash: Buffer, entry: LogEntry) => void;
}

/** What the follower found on open: resumed at a synced size, or rebuilt (and why). */
export interface EvidenceResume {
  readonly size: number;
  readonly rebuilt?: string;
}

interface StoredCursor { readonly size: number; readonly cursor: LogCursor }

async function readCursor(dir: string): Promise<StoredCursor | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, CURSOR_FILE), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parsed = JSON.parse(text) as Partial<StoredCursor>;
  if (!Number.isSafeInteger(parsed.size) || typeof parsed.cursor !== 'string') return undefined;
  return parsed as StoredCursor;
}

export class EvidenceFollower {
  readonly store: MerkleStore;
  readonly resume: EvidenceResume;
  readonly #reader: EventLogReader;
  readonly #syncEvery: number;
  readonly #onLeaf: EvidenceFollowerOptions['onLeaf'];
  #after: LogCursor | undefined;
  #unsynced = 0;

  private constructor(reader: EventLogReader, store: MerkleStore, after: LogCursor | undefined, resume: EvidenceResume, options: EvidenceFollowerOptions) {
    this.#reader = reader;
    this.store = store;
    this.#after = after;
    this.resume = resume;
    this.#syncEvery = options.syncEveryLeaves ?? 1024;
    this.#onLeaf = options.onLeaf;
  }

  static async open(reader: EventLogReader, dir: string, options: EvidenceFollowerOptions = {}): Promise<EvidenceFollower> {
    let store = await MerkleStore.open(dir);
    const stored = await readCursor(dir);
    let rebuilt: string | undefined;
    if (stored === undefined) {
      if (store.size > 0) rebuilt = `the store holds ${store.size} leaves but no cursor recorded where they end in the log`;
    } else if (stored.size > store.size) {
      rebuilt = `the cursor was recorded at size ${stored.size} but the store holds only ${store.size} leaves`;
    } else if (stored.size < store.size) {
      await store.truncate(stored.size);
    }
    if (rebuilt !== undefined) {
      await store.close();
      store = await MerkleStore.open(dir, { reset: true });
      return new EvidenceFollower(reader, store, undefined, { size: 0, rebuilt }, options);
    }
    return new EvidenceFollower(reader, store, stored?.cursor, { size: store.size }, options);
  }

  get size(): number {
    return this.store.size;
  }

  /**
   * Appends the leaf of every record after the resume point, then (with `follow`) waits for new
   * ones until the signal aborts. Throws ATTEST_CURSOR_INVALID when the log no longer holds the
   * record the cursor names (the log was replaced or cut: the store must be rebuilt), and
   * ATTEST_EVIDENCE_ORDER when a record's index is not the next leaf's.
   */
  async run(options: { readonly follow?: boolean; readonly signal?: AbortSignal } = {}): Promise<void> {
    const entries = this.#reader.entries({ ...(this.#after === undefined ? {} : { after: this.#after }), follow: options.follow ?? false, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    try {
      for await (const entry of entries) {
        const expected = this.store.size;
        if (entry.position.backend !== 'kurrent' && entry.position.index !== expected) {
          throw Object.assign(new Error(`log record at index ${entry.position.index} where leaf ${expected} was expected: the log and the evidence store disagree`), { code: 'ATTEST_EVIDENCE_ORDER' });
        }
        const leaf = storedLeafHash(entry);
        this.store.appendLeafHash(leaf);
        this.#after = cursorOf(entry);
        this.#onLeaf?.(expected, leaf, entry);
        if (++this.#unsynced >= this.#syncEvery) await this.sync();
      }
    } catch (error) {
      if (!(options.signal?.aborted ?? false)) throw error;
    }
    await this.sync();
  }

  /** Makes the store durable, then records the cursor its size ends at. */
  async sync(): Promise<void> {
    await this.store.sync();
    this.#unsynced = 0;
    if (this.#after === undefined) return;
    const dir = this.store.directory;
    const temporary = join(dir, `${CURSOR_FILE}.tmp`);
    await writeFile(temporary, `${JSON.stringify({ size: this.store.size, cursor: this.#after })}\n`, { flush: true });
    await rename(temporary, join(dir, CURSOR_FILE));
  }

  async close(): Promise<void> {
    await this.sync();
    await this.store.close();
  }
}
