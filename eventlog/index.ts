/**
 * The event log: the port every backend implements, the per-stream hash chain, verification, the
 * contract suite adapters must pass, and the adapters themselves (file now; Kafka and KurrentDB
 * later). Pick a backend from the config with `openEventLog`.
 */
import type { LogConfig } from '#schemas';
import { openFileLog } from './file/file-log.ts';
import type { FileLogHooks } from './file/file-log.ts';
import type { EventLog } from './port.ts';

export { InvalidEventError, LogUnavailableError } from './port.ts';
export type { EventLog, EventLogReader, LogErrorCode, LogPosition, ReadOptions, StoredEvent } from './port.ts';
export { ChainHeads, EMPTY_HEAD } from './chain.ts';
export type { ChainHead, HeadsSnapshot, SealedEvent } from './chain.ts';
export { silentLogger } from './logger.ts';
export type { EventLogLogger } from './logger.ts';
export { ChainVerifier, verifyLog } from './verify.ts';
export type { VerifyFailure, VerifyResult } from './verify.ts';
export { openFileLog } from './file/file-log.ts';
export type { FileEventLog, FileLogHooks, FileLogOptions } from './file/file-log.ts';
export type { FileLogStats } from './file/group-commit.ts';
export type { RecoveryReport } from './file/recovery.ts';
export { openFileLogReader } from './file/file-reader.ts';
export type { FileLogReaderOptions } from './file/file-reader.ts';
export { verifyFileLog } from './file/verify-file-log.ts';
export type { VerifyFileLogOptions } from './file/verify-file-log.ts';
export { testEventLog } from './contract.ts';
export { sampleDraft } from './sample-drafts.ts';
export type { EventLogFactory, EventLogHarness } from './contract.ts';

/** Options every backend accepts; a backend ignores what does not apply to it. */
export type OpenEventLogOptions = FileLogHooks;

/** Opens the backend the config names. */
export async function openEventLog(config: LogConfig, options: OpenEventLogOptions = {}): Promise<EventLog> {
  switch (config.backend) {
    case 'file': {
      const { backend: _backend, ...fileOptions } = config;
      return openFileLog(fileOptions, options);
    }
  }
}
