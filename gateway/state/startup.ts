/**
 * Start-up that does not grow with the log: the newest valid snapshot of the gateway's state
 * (snapshot-store.ts), the log opened to resume after its cursor (the writer reads only the tail
 * for its chain heads), then the tail folded on top. Whatever does not check out — no snapshot, a
 * damaged one, one taken under another policy (the limits fold depends on it), a cursor the log no
 * longer holds — falls back to folding the whole log, and says why.
 */
import type { LogConfig } from '#schemas';
import { LogUnavailableError, openEventLog } from '#eventlog';
import type { EventLog, OpenEventLogOptions } from '#eventlog';
import type { LimitsConfig } from '#projections';
import type { Logger } from '../logger.ts';
import { GatewayStateFold } from './gateway-state.ts';
import type { SnapshotStore } from './snapshot-store.ts';

export interface StartupState {
  readonly log: EventLog;
  readonly fold: GatewayStateFold;
  /** The snapshot file the start resumed from, when it did. */
  readonly resumedFrom: string | undefined;
  /** Records read from the log at start (the tail, or all of it). */
  readonly read: number;
  /** Why no snapshot was used, when none was. */
  readonly fullReadBecause: string | undefined;
}

export interface StartupOptions {
  readonly log: LogConfig;
  readonly logger: Logger;
  readonly limits: LimitsConfig | undefined;
  readonly policyHash: string | undefined;
  /** Absent: snapshots are off (state.snapshots: false). */
  readonly store: SnapshotStore | undefined;
  readonly openOptions?: OpenEventLogOptions;
  readonly wrapLog?: ((log: EventLog) => EventLog) | undefined;
}

export async function openWithState(options: StartupOptions): Promise<StartupState> {
  const { logger, limits, policyHash } = options;
  let fold: GatewayStateFold | undefined;
  let resumedFrom: string | undefined;
  let fullReadBecause: string | undefined = options.store === undefined ? 'snapshots are off (state.snapshots: false)' : undefined;
  if (options.store !== undefined) {
    const { snapshot, skipped } = await options.store.latest();
    for (const reason of skipped) logger.warn({ reason }, 'gateway start-up: a snapshot was skipped');
    if (snapshot === undefined) fullReadBecause = skipped.length === 0 ? 'no snapshot yet' : 'no snapshot passed its checks';
    else if ((snapshot.body.policyHash ?? undefined) !== policyHash) fullReadBecause = `the newest snapshot was taken under policy ${snapshot.body.policyHash ?? 'none'}, the policy now is ${policyHash ?? 'none'} (the limits depend on it)`;
    else {
      try {
        fold = GatewayStateFold.fromJson(snapshot.body, limits);
        resumedFrom = snapshot.file;
      } catch (error) {
        fullReadBecause = `the newest snapshot could not be read (${(error as Error).message})`;
      }
    }
  }
  let log: EventLog;
  const resume = fold?.resume();
  try {
    log = await openEventLog(options.log, { ...options.openOptions, ...(resume !== undefined && { resume }) });
  } catch (error) {
    if (!(error instanceof LogUnavailableError) || error.code !== 'ATTEST_CURSOR_INVALID' || resume === undefined) throw error;
    logger.warn({ err: error, snapshot: resumedFrom }, 'gateway start-up: the snapshot does not match the log; reading the whole log');
    fullReadBecause = `the snapshot ${resumedFrom ?? ''} does not match the log: ${error.message}`;
    fold = undefined;
    resumedFrom = undefined;
    log = await openEventLog(options.log, options.openOptions);
  }
  log = options.wrapLog?.(log) ?? log;
  const state = fold ?? new GatewayStateFold(limits, policyHash);
  let read = 0;
  const after = state.cursor;
  for await (const entry of log.entries(after === undefined ? {} : { after })) {
    // As read() would: a record of a type this version does not know is skipped; one it cannot read at all stops the start (fail closed).
    if (entry.event === undefined && entry.problem !== 'type') {
      const { id, stream, seq } = entry.envelope;
      throw new LogUnavailableError('ATTEST_EVENT_UNREADABLE', `the log holds event ${id} (stream ${stream}, seq ${seq}) at index ${entry.position.index}, which this version cannot read: ${entry.reason}`);
    }
    state.push(entry);
    read++;
  }
  return { log, fold: state, resumedFrom, read, fullReadBecause };
}
