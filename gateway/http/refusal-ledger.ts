/**
 * The recording budget of refusals (issue 15): a client that can reach the port must not be able
 * to fill the log by being refused. Each source (remote address) has a token bucket, and all
 * sources together another; a refusal that finds a token in both is recorded as its own
 * RequestRejected, any other is counted, and the counts are recorded once per window as one
 * RequestsRejectedCounted (by source and reason). Every refusal is in exactly one of the two.
 * Memory is bounded too: at most `maxSourcesTracked` buckets and count rows; sources beyond share
 * one bucket and are counted under the address `*`.
 */
import type { EventData, FrontDoorConfig } from '#schemas';

type Settings = FrontDoorConfig['refusals'];
type Summary = EventData<'RequestsRejectedCounted'>;

/** Where counts of sources beyond the tracked ones go. */
export const OTHER_SOURCES = '*';

interface Bucket {
  tokens: number;
  at: number;
}

interface Row {
  readonly remoteAddress: string;
  readonly errorCode: string;
  readonly httpStatus: number | undefined;
  count: number;
}

export interface RefusalLedgerDeps {
  /** Appends the summary; a rejection keeps the counts for the next window. */
  readonly write: (summary: Omit<Summary, 'instance'>) => Promise<void>;
  readonly onWriteFailed: (error: unknown) => void;
  readonly now?: () => number;
}

export class RefusalLedger {
  readonly #settings: Settings;
  readonly #deps: RefusalLedgerDeps;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #total: Bucket;
  readonly #shared: Bucket;
  #rows = new Map<string, Row>();
  #windowStart: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();

  constructor(settings: Settings, deps: RefusalLedgerDeps) {
    this.#settings = settings;
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    const now = this.#now();
    this.#total = { tokens: settings.totalBurst, at: now };
    this.#shared = { tokens: settings.perSourceBurst, at: now };
  }

  start(): void {
    this.#timer ??= setInterval(() => void this.flush(), this.#settings.summaryIntervalMs).unref();
  }

  /** True: record this refusal as its own event (a token was taken). False: it was counted. */
  admit(remoteAddress: string, errorCode: string, httpStatus: number | undefined): boolean {
    const now = this.#now();
    const { perSourceBurst, perSourcePerSecond, totalBurst, totalPerSecond } = this.#settings;
    const source = this.#bucketOf(remoteAddress, now);
    refill(source, now, perSourceBurst, perSourcePerSecond);
    refill(this.#total, now, totalBurst, totalPerSecond);
    if (source.tokens >= 1 && this.#total.tokens >= 1) {
      source.tokens -= 1;
      this.#total.tokens -= 1;
      return true;
    }
    this.count(remoteAddress, errorCode, httpStatus);
    return false;
  }

  /** Counts a refusal without recording it one by one (over budget, or its own record failed). */
  count(remoteAddress: string, errorCode: string, httpStatus: number | undefined, n = 1): void {
    this.#windowStart ??= this.#now();
    const key = `${remoteAddress}\n${errorCode}\n${httpStatus ?? ''}`;
    const row = this.#rows.get(key);
    if (row !== undefined) {
      row.count += n;
      return;
    }
    if (this.#rows.size >= this.#settings.maxSourcesTracked && remoteAddress !== OTHER_SOURCES) {
      this.count(OTHER_SOURCES, errorCode, httpStatus, n);
      return;
    }
    this.#rows.set(key, { remoteAddress, errorCode, httpStatus, count: n });
  }

  /** Records the counts of the window so far, if any (one event); waits for a flush already under way. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(() => this.#flush());
    return this.#flushing;
  }

  /** Stops the window timer and records what is counted. */
  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }

  async #flush(): Promise<void> {
    this.#prune();
    const windowStart = this.#windowStart;
    if (windowStart === undefined || this.#rows.size === 0) return;
    const rows = this.#rows;
    this.#rows = new Map();
    this.#windowStart = undefined;
    const sorted = [...rows.values()].sort((a, b) => b.count - a.count);
    const kept = sorted.slice(0, this.#settings.maxRowsPerSummary);
    const folded = sorted.slice(this.#settings.maxRowsPerSummary);
    const summary: Omit<Summary, 'instance'> = {
      windowStart: new Date(windowStart).toISOString(),
      windowEnd: new Date(this.#now()).toISOString(),
      total: sorted.reduce((sum, row) => sum + row.count, 0),
      counts: kept.map((row) => ({ remoteAddress: row.remoteAddress, errorCode: row.errorCode, ...(row.httpStatus !== undefined && { httpStatus: row.httpStatus }), count: row.count })),
      ...(folded.length > 0 && { otherSources: { sources: new Set(folded.map((row) => row.remoteAddress)).size, count: folded.reduce((sum, row) => sum + row.count, 0) } }),
    };
    try {
      await this.#deps.write(summary);
    } catch (error) {
      this.#deps.onWriteFailed(error);
      // Kept for the next window, which then starts where this one did.
      for (const row of rows.values()) this.count(row.remoteAddress, row.errorCode, row.httpStatus, row.count);
      this.#windowStart = Math.min(windowStart, this.#windowStart ?? windowStart);
    }
  }

  #bucketOf(remoteAddress: string, now: number): Bucket {
    let bucket = this.#buckets.get(remoteAddress);
    if (bucket !== undefined) return bucket;
    if (this.#buckets.size >= this.#settings.maxSourcesTracked) return this.#shared;
    this.#buckets.set(remoteAddress, (bucket = { tokens: this.#settings.perSourceBurst, at: now }));
    return bucket;
  }

  /** A bucket that has refilled is the same as none: forgetting it keeps the map to active sources. */
  #prune(): void {
    const now = this.#now();
    const { perSourceBurst, perSourcePerSecond } = this.#settings;
    for (const [address, bucket] of this.#buckets) {
      refill(bucket, now, perSourceBurst, perSourcePerSecond);
      if (bucket.tokens >= perSourceBurst) this.#buckets.delete(address);
    }
  }
}

function refill(bucket: Bucket, now: number, burst: number, perSecond: number): void {
  if (now > bucket.at) bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perSecond);
  bucket.at = now;
}
