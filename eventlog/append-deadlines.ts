/**
 * The append timeout every adapter shares (file, Kafka, KurrentDB): one timer for all pending
 * appends instead of one each. Appends share one timeout and are tracked in arrival order, so the
 * oldest unsettled one always has the earliest deadline. An expired append is rejected with
 * ATTEST_LOG_TIMEOUT; its events may still become durable later (the caller fails closed anyway).
 */
import { LogUnavailableError } from './port.ts';

export interface DeadlinedAppend {
  /** performance.now() after which the caller is told ATTEST_LOG_TIMEOUT. */
  readonly deadline: number;
  readonly reject: (error: Error) => void;
  settled: boolean;
}

export interface AppendDeadlinesOptions {
  /** The sentence the caller reads: what did not confirm, and what that means. */
  readonly timeoutMessage: string;
  /** Told once per sweep that expired appends, with how many. */
  readonly onExpired: (count: number) => void;
}

export class AppendDeadlines<T extends DeadlinedAppend> {
  readonly #options: AppendDeadlinesOptions;
  #tracked: T[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | null = null;
  #timedOut = 0;

  constructor(options: AppendDeadlinesOptions) {
    this.#options = options;
  }

  /** Appends rejected for their deadline so far. */
  get timedOut(): number {
    return this.#timedOut;
  }

  track(entry: T): void {
    this.#tracked.push(entry);
    if (this.#timer === null) this.#arm();
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#tracked = [];
    this.#head = 0;
  }

  #arm(): void {
    while (this.#head < this.#tracked.length && (this.#tracked[this.#head] as T).settled) this.#head++;
    if (this.#head > 1024 && this.#head * 2 > this.#tracked.length) {
      this.#tracked = this.#tracked.slice(this.#head);
      this.#head = 0;
    }
    const oldest = this.#tracked[this.#head];
    if (oldest === undefined) {
      this.#tracked = [];
      this.#head = 0;
      return;
    }
    this.#timer = setTimeout(this.#expire, Math.max(0, oldest.deadline - performance.now()) + 1);
    this.#timer.unref();
  }

  readonly #expire = (): void => {
    this.#timer = null;
    const now = performance.now();
    let timeout: LogUnavailableError | undefined;
    let expired = 0;
    for (; this.#head < this.#tracked.length; this.#head++) {
      const entry = this.#tracked[this.#head] as T;
      if (entry.settled) continue;
      if (entry.deadline > now) break;
      timeout ??= new LogUnavailableError('ATTEST_LOG_TIMEOUT', this.#options.timeoutMessage);
      entry.settled = true;
      expired++;
      entry.reject(timeout);
    }
    this.#timedOut += expired;
    if (expired > 0) this.#options.onExpired(expired);
    this.#arm();
  };
}
