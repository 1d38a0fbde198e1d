/**
 * The group-commit skeleton every writer shares (file, Kafka, KurrentDB; ARCHITECTURE.md "Group
 * commit"): appends queue in call order; one drain loop, started on a microtask so that appends
 * made in the same tick join the first batch, takes as many whole appends as the batch limits
 * allow, hands them to the backend, and goes on while more are queued. While a batch is in flight
 * new appends queue for the next one, so batches grow with load.
 *
 * What differs per backend stays with the writer: how a batch is written (writev + fdatasync, a
 * produce request, one append per stream), what a failure does to the chain heads, and recovery.
 * The queue knows only counts: events and bytes per append, the bytes not yet durable (admission
 * control reads them), and whether its loop is running (close waits for it).
 */
import type { DeadlinedAppend } from './append-deadlines.ts';

/** A caller's append once it settles: resolved with its stored events or rejected, never both. */
export interface SettleableAppend<T> extends DeadlinedAppend {
  readonly resolve: (value: T) => void;
}

export function settleRejected(entry: DeadlinedAppend, error: Error): void {
  if (entry.settled) return;
  entry.settled = true;
  entry.reject(error);
}

export function settleResolved<T>(entry: SettleableAppend<T>, value: T): void {
  if (entry.settled) return;
  entry.settled = true;
  entry.resolve(value);
}

export interface BatchQueueOptions<E> {
  readonly eventsOf: (entry: E) => number;
  readonly bytesOf: (entry: E) => number;
  /** Takes the next batch, writes it and settles its appends; called while appends are queued and the writer accepts. */
  readonly writeNext: () => Promise<void>;
  /** False stops the loop with appends still queued (a writer that is recovering refuses them itself). */
  readonly accepting?: () => boolean;
  /** Told each time the loop stops (the writer may be waiting to close). */
  readonly onIdle?: () => void;
}

/** Limits of one batch; one append larger than them still makes a batch on its own (an append is never split). */
export interface BatchLimits {
  readonly maxEvents: number;
  readonly maxBytes: number;
}

export interface Batch<E> {
  readonly entries: E[];
  readonly events: number;
  readonly bytes: number;
}

export class BatchQueue<E> {
  readonly #options: BatchQueueOptions<E>;
  #queue: E[] = [];
  #head = 0;
  #pendingBytes = 0;
  #running = false;
  #idle: Array<() => void> = [];

  constructor(options: BatchQueueOptions<E>) {
    this.#options = options;
  }

  /** Bytes of the appends queued or in the batch being written, until the writer releases them. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /** Appends waiting for the next batch. */
  get queued(): number {
    return this.#queue.length - this.#head;
  }

  get hasNext(): boolean {
    return this.#head < this.#queue.length;
  }

  /** The drain loop is running, or appends are queued for it. */
  get busy(): boolean {
    return this.#running || this.hasNext;
  }

  /** The append at the head of the queue. */
  peek(): E | undefined {
    return this.#queue[this.#head];
  }

  push(entry: E): void {
    this.#pendingBytes += this.#options.bytesOf(entry);
    this.#queue.push(entry);
    if (!this.#running) {
      this.#running = true;
      // A microtask, not a direct call: appends made in the same tick join the first batch.
      queueMicrotask(() => void this.#run());
    }
  }

  /** Whole appends from the head, at least one, as many as fit the limits. Their bytes stay pending until `release`. */
  take(limits: BatchLimits): Batch<E> {
    const { eventsOf, bytesOf } = this.#options;
    const entries: E[] = [];
    let events = 0;
    let bytes = 0;
    while (this.#head < this.#queue.length) {
      const entry = this.#queue[this.#head] as E;
      const entryEvents = eventsOf(entry);
      const entryBytes = bytesOf(entry);
      if (entries.length > 0 && (events + entryEvents > limits.maxEvents || bytes + entryBytes > limits.maxBytes)) break;
      entries.push(entry);
      events += entryEvents;
      bytes += entryBytes;
      this.#head++;
    }
    this.#compact();
    return { entries, events, bytes };
  }

  /** Takes the head append alone (to refuse it) and releases its bytes. */
  shift(): E | undefined {
    const entry = this.#queue[this.#head];
    if (entry === undefined) return undefined;
    this.#head++;
    this.#pendingBytes -= this.#options.bytesOf(entry);
    this.#compact();
    return entry;
  }

  /** A taken batch is written or failed: its bytes are no longer pending. */
  release(bytes: number): void {
    this.#pendingBytes -= bytes;
  }

  /** Empties the queue (a failure: their chain links ran through what failed) and returns what was queued. */
  drop(): E[] {
    const dropped = this.#queue.slice(this.#head);
    for (const entry of dropped) this.#pendingBytes -= this.#options.bytesOf(entry);
    this.#queue = [];
    this.#head = 0;
    return dropped;
  }

  /** Resolves once the drain loop is not running. */
  whenIdle(): Promise<void> {
    if (!this.#running) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #run(): Promise<void> {
    const { writeNext, accepting } = this.#options;
    try {
      // The check and the stop below run in one go after the last write: an append queued in
      // between finds the loop still running and is taken by it.
      while (this.hasNext && (accepting === undefined || accepting())) await writeNext();
    } finally {
      this.#running = false;
      const waiting = this.#idle;
      this.#idle = [];
      for (const resolve of waiting) resolve();
      this.#options.onIdle?.();
    }
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
