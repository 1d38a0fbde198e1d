/**
 * The projector (docs/projector.md): reads the log after its checkpoint, in batches, writes each
 * batch into the read model and only then advances the checkpoint, and follows the log live.
 * At-least-once reading, exactly-once effect: a crash between a batch's write and its checkpoint
 * replays the batch, which the read model's idempotent writes absorb. Records this version cannot
 * read are quarantined by the read model, counted, and the projector goes on. A failure of the
 * log or of the read model is recorded and retried from the last checkpoint, with backoff.
 */
import { cursorOf } from '#eventlog';
import type { EventLogReader, LogEntry } from '#eventlog';
import { batches } from './batches.ts';
import type { AppliedBatch, Checkpoint, ReadModel } from './port.ts';

export interface ProjectorLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export interface ProjectorOptions {
  readonly batchEvents: number;
  readonly flushMs: number;
  readonly logger: ProjectorLogger;
  /** First retry delay after a failure; doubles up to 30 s. Default 500 ms. */
  readonly retryDelayMs?: number;
  /** Told after each batch and its checkpoint are written (tests, metrics). */
  readonly onBatch?: (applied: AppliedBatch, checkpoint: Checkpoint) => void;
}

export interface ProjectorStats {
  readonly batches: number;
  readonly events: number;
  readonly quarantined: number;
  readonly errors: number;
  /** `errors` by the failure's code (ATTEST_READMODEL_UNAVAILABLE, …; ATTEST_PROJECTOR_FAILED when it has none). */
  readonly errorsByCode: Readonly<Record<string, number>>;
  readonly checkpoint: Checkpoint;
}

const MAX_RETRY_DELAY_MS = 30_000;

function checkpointAfter(previous: Checkpoint, batch: readonly LogEntry[]): Checkpoint {
  const last = batch.at(-1);
  if (last === undefined) return previous;
  let lastOccurredAtMs = previous.lastOccurredAtMs;
  for (let i = batch.length - 1; i >= 0; i--) {
    const event = batch[i]?.event;
    if (event !== undefined) {
      lastOccurredAtMs = Date.parse(event.occurredAt);
      break;
    }
  }
  return { cursor: cursorOf(last), index: last.position.index, processed: previous.processed + batch.length, lastOccurredAtMs, updatedAtMs: Date.now() };
}

export class Projector {
  readonly #reader: EventLogReader;
  readonly #model: ReadModel;
  readonly #options: ProjectorOptions;
  #stats: ProjectorStats = { batches: 0, events: 0, quarantined: 0, errors: 0, errorsByCode: {}, checkpoint: { cursor: undefined, index: -1, processed: 0, lastOccurredAtMs: 0, updatedAtMs: 0 } };
  /** occurredAt (epoch ms) of the events read from the log and not written yet, in log order (at most a batch and the read ahead). */
  #unwritten: { index: number; ms: number }[] = [];

  constructor(reader: EventLogReader, model: ReadModel, options: ProjectorOptions) {
    this.#reader = reader;
    this.#model = model;
    this.#options = options;
  }

  get stats(): ProjectorStats {
    return this.#stats;
  }

  /** occurredAt (epoch ms) of the oldest event read from the log and not written yet; undefined when none is waiting. */
  get oldestUnwrittenMs(): number | undefined {
    return this.#unwritten[0]?.ms;
  }

  /** Projects everything the log holds now, then resolves (no following). */
  async catchUp(signal?: AbortSignal): Promise<ProjectorStats> {
    await this.#pass(false, signal);
    return this.#stats;
  }

  /** Projects and follows the log until `signal` aborts; failures are recorded and retried from the checkpoint. */
  async run(signal: AbortSignal): Promise<ProjectorStats> {
    let delay = this.#options.retryDelayMs ?? 500;
    while (!signal.aborted) {
      try {
        await this.#pass(true, signal);
        delay = this.#options.retryDelayMs ?? 500;
      } catch (error) {
        if (signal.aborted) break;
        const raw = (error as { code?: unknown }).code;
        const code = typeof raw === 'string' ? raw : 'ATTEST_PROJECTOR_FAILED';
        const message = (error as Error).message;
        const s = this.#stats;
        this.#stats = { ...s, errors: s.errors + 1, errorsByCode: { ...s.errorsByCode, [code]: (s.errorsByCode[code] ?? 0) + 1 } };
        this.#options.logger.error({ err: error, retryInMs: delay }, 'projection failed; retrying from the last checkpoint');
        await this.#model.recordError(code, message);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve();
          }, { once: true });
        });
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
    return this.#stats;
  }

  async #pass(follow: boolean, outer: AbortSignal | undefined): Promise<void> {
    let checkpoint = await this.#model.checkpoint();
    this.#stats = { ...this.#stats, checkpoint };
    this.#unwritten = [];
    // Its own signal, so that leaving the loop (an error, the end) stops the log's follower too.
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    outer?.addEventListener('abort', abort, { once: true });
    try {
      const entries = this.#noted(this.#reader.entries({ ...(checkpoint.cursor !== undefined && { after: checkpoint.cursor }), follow, signal: controller.signal }));
      for await (const batch of batches(entries, this.#options.batchEvents, this.#options.flushMs)) {
        let applied: AppliedBatch;
        try {
          applied = await this.#model.apply(batch);
          checkpoint = checkpointAfter(checkpoint, batch);
          await this.#model.advance(checkpoint);
        } catch (error) {
          // Ends the log's follower first, so leaving the loop does not wait for the next event.
          controller.abort();
          throw error;
        }
        const s = this.#stats;
        this.#stats = { ...s, batches: s.batches + 1, events: s.events + applied.events, quarantined: s.quarantined + applied.quarantined, checkpoint };
        const written = checkpoint.index;
        this.#unwritten = this.#unwritten.filter((u) => u.index > written);
        if (applied.quarantined > 0) this.#options.logger.warn({ quarantined: applied.quarantined, index: checkpoint.index }, 'records quarantined (attest projector status lists them)');
        this.#options.onBatch?.(applied, checkpoint);
        if (outer?.aborted === true) return;
      }
    } catch (error) {
      // A follow ended by the caller's signal is a clean stop, not a failure.
      if (outer?.aborted === true) return;
      throw error;
    } finally {
      outer?.removeEventListener('abort', abort);
      controller.abort();
    }
  }

  /** Notes when each event read occurred, for the lag in seconds (the read ahead of the next batch included). */
  async *#noted(entries: AsyncIterable<LogEntry>): AsyncGenerator<LogEntry> {
    for await (const entry of entries) {
      if (entry.event !== undefined) this.#unwritten.push({ index: entry.position.index, ms: Date.parse(entry.event.occurredAt) });
      yield entry;
    }
  }
}
