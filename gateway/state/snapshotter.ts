/**
 * Keeps the gateway's snapshots current while it runs. Every second it looks at how far the log
 * is durable; once a snapshot is due (state.snapshotEveryEvents new events, or snapshotIntervalMs
 * with anything new) it starts the snapshot worker (snapshot-worker.ts), a thread that folds the
 * tail on the other core, and keeps it ticking. A short run never starts the worker: at close the
 * gateway folds its small tail itself and writes the last snapshot, so the next start reads
 * (almost) nothing.
 */
import { extname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AttestConfig } from '#schemas';
import type { EventLog } from '#eventlog';
import type { Logger } from '../logger.ts';
import { SnapshotFolder } from './snapshot-folder.ts';
import type { FromWorker, SnapshotWorkerData, ToWorker } from './snapshot-worker.ts';

const TICK_MS = 1_000;
const FINAL_SNAPSHOT_TIMEOUT_MS = 15_000;

export class Snapshotter {
  readonly #config: AttestConfig;
  readonly #log: EventLog;
  readonly #logger: Logger;
  readonly #gatewayVersion: string;
  readonly #timer: NodeJS.Timeout;
  readonly #startedAt = Date.now();
  /** The log's size when the newest snapshot was taken (at start). */
  readonly #snapshotSize: number;
  #worker: Worker | undefined;
  #stopping: Promise<void> | undefined;

  /** `snapshotSize`: the log's size up to the newest snapshot (start-up writes one). */
  constructor(config: AttestConfig, log: EventLog, logger: Logger, gatewayVersion: string, snapshotSize: number) {
    this.#config = config;
    this.#log = log;
    this.#logger = logger;
    this.#gatewayVersion = gatewayVersion;
    this.#snapshotSize = snapshotSize;
    this.#timer = setInterval(() => this.#tick(), TICK_MS).unref();
  }

  /** File and Kafka: fold only what is durable (their indexes count records); KurrentDB reads only committed events. */
  #bound(): number | undefined {
    return this.#log.backend === 'kurrent' ? undefined : this.#log.size();
  }

  #tick(): void {
    if (this.#worker === undefined) {
      const added = this.#log.size() - this.#snapshotSize;
      const due = added >= this.#config.state.snapshotEveryEvents / 2 || (added > 0 && Date.now() - this.#startedAt >= this.#config.state.snapshotIntervalMs);
      if (!due) return;
      this.#worker = this.#startWorker();
    }
    this.#worker.postMessage({ type: 'tick', bound: this.#bound() } satisfies ToWorker);
  }

  #startWorker(): Worker {
    // The worker runs the same kind of file as this one: .ts from source, .js from dist/.
    const url = new URL(`./snapshot-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);
    const data: SnapshotWorkerData = { config: this.#config, gatewayVersion: this.#gatewayVersion };
    const worker = new Worker(url, { workerData: data });
    worker.unref();
    worker.on('message', (message: FromWorker) => {
      if (message.type === 'written') this.#logger.debug({ ...message }, 'gateway state snapshot written');
      else if (message.type === 'problem') this.#logger.warn({ reason: message.message }, 'gateway state snapshot failed; the next one starts again from the newest snapshot (start-up reads a longer tail meanwhile)');
    });
    worker.on('error', (error) => this.#logger.warn({ err: error }, 'the snapshot worker failed; no more snapshots until restart (start-up reads a longer tail)'));
    return worker;
  }

  /** A last snapshot at the log's end (bounded in time), then the worker ends. Call before the log closes. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      clearInterval(this.#timer);
      const worker = this.#worker;
      if (worker === undefined) {
        if (this.#log.size() === this.#snapshotSize) return;
        await new SnapshotFolder(this.#config, this.#gatewayVersion).run(this.#log, this.#bound(), true).catch((error: unknown) => this.#logger.warn({ err: error }, 'the last gateway state snapshot could not be written; the next start reads the log from the newest one'));
        return;
      }
      const done = new Promise<void>((resolve) => {
        worker.on('message', (message: FromWorker) => {
          if (message.type === 'done') resolve();
        });
        worker.once('exit', () => resolve());
      });
      worker.postMessage({ type: 'final', bound: this.#bound() } satisfies ToWorker);
      await Promise.race([done, sleep(FINAL_SNAPSHOT_TIMEOUT_MS, undefined, { ref: false })]);
      await worker.terminate();
    })();
    return this.#stopping;
  }
}
