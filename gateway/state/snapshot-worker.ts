/**
 * The snapshotter's thread (snapshotter.ts starts it): folds the log's tail and writes snapshots
 * (snapshot-folder.ts) off the gateway's event loop — the decoding runs on the other core. It
 * opens its own reader of the log and never writes to it.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { AttestConfig } from '#schemas';
import { openEventLogReader } from '#eventlog';
import type { EventLogReader } from '#eventlog';
import { SnapshotFolder } from './snapshot-folder.ts';
import type { Written } from './snapshot-folder.ts';

export interface SnapshotWorkerData {
  readonly config: AttestConfig;
  readonly gatewayVersion: string;
}

/** From the gateway: fold up to `bound` records, and write a snapshot if due (or if anything is new, with `final`). */
export type ToWorker = { readonly type: 'tick' | 'final'; readonly bound: number | undefined };
export type FromWorker = ({ readonly type: 'written' } & Written) | { readonly type: 'problem'; readonly message: string } | { readonly type: 'done' };

const port = parentPort;
if (port === null) throw new Error('snapshot-worker.ts runs as a worker thread');
const { config, gatewayVersion } = workerData as SnapshotWorkerData;
const folder = new SnapshotFolder(config, gatewayVersion);
const send = (message: FromWorker): void => port.postMessage(message);
let reader: EventLogReader | undefined;
let queue: Promise<void> = Promise.resolve();

port.on('message', (message: ToWorker) => {
  queue = queue
    .then(async () => {
      reader ??= await openEventLogReader(config.log);
      const written = await folder.run(reader, message.bound, message.type === 'final');
      if (written !== undefined) send({ type: 'written', ...written });
    })
    .catch((error: unknown) => send({ type: 'problem', message: (error as Error).message ?? String(error) }))
    .then(async () => {
      if (message.type !== 'final') return;
      await reader?.close().catch(() => undefined);
      send({ type: 'done' });
    });
});
