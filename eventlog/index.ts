/**
 * The event log: the port every backend implements, the per-stream hash chain, verification, the
 * contract suite adapters must pass, and the adapters themselves (file now; Kafka and KurrentDB
 * later). Pick a backend from the config with `openEventLog`. The contract suite (`contract.ts`)
 * imports node:test, so adapters' specs import it directly; it is not part of this barrel.
 */
import type { LogConfig } from '#schemas';
import { openFileLog } from './file/file-log.ts';
import type { FileLogHooks } from './file/file-log.ts';
import type { EventLog, EventLogReader } from './port.ts';
import { openFileLogReader } from './file/file-reader.ts';
import { verifyFileLog } from './file/verify-file-log.ts';
import { ChainVerifier, verifyLog } from './verify.ts';
import type { VerifyResult } from './verify.ts';

export { InvalidEventError, LogUnavailableError } from './port.ts';
export type { BatchListener, EventEnvelope, LogReadable, EventLog, EventLogReader, FilePosition, FollowOptions, KafkaPosition, KurrentPosition, LogCursor, LogEntry, LogErrorCode, LogPosition, ReadOptions, ResumeFrom, StoredEvent, UnreadableEvent } from './port.ts';
export { cursorOf } from './cursor.ts';
export { chainOf } from './record-decode.ts';
export { ChainHeads, EMPTY_HEAD } from './chain.ts';
export type { ChainHead, HeadsSnapshot, SealedEvent } from './chain.ts';
export { silentLogger } from './logger.ts';
export type { EventLogLogger } from './logger.ts';
export { ChainVerifier, verifyLog };
export type { VerifyFailure, VerifyResult } from './verify.ts';
export { openFileLog } from './file/file-log.ts';
export type { FileEventLog, FileLogHooks, FileLogOptions } from './file/file-log.ts';
export type { FileLogStats } from './file/group-commit.ts';
export type { KurrentEventLog, KurrentLogHooks } from './kurrent/kurrent-log.ts';
export type { RecoveryReport } from './file/recovery.ts';
export type { StaleLock } from './file/dir-lock.ts';
export { openFileLogReader };
export type { FileLogReaderOptions } from './file/file-reader.ts';
export { verifyFileLog };
export type { VerifyFileLogOptions } from './file/verify-file-log.ts';
export { sampleDraft } from './sample-drafts.ts';

/** Options every backend accepts; a backend ignores what does not apply to it. */
export type OpenEventLogOptions = FileLogHooks;

/** Opens the backend the config names. */
export async function openEventLog(config: LogConfig, options: OpenEventLogOptions = {}): Promise<EventLog> {
  switch (config.backend) {
    case 'file': {
      const { backend: _backend, ...fileOptions } = config;
      return openFileLog(fileOptions, options);
    }
    // Production adapters load their client libraries only when configured.
    case 'kafka': {
      const { openKafkaLog } = await import('./kafka/kafka-log.ts');
      return openKafkaLog(config, options);
    }
    case 'kurrent': {
      const { openKurrentLog } = await import('./kurrent/kurrent-log.ts');
      return openKurrentLog(config, options);
    }
  }
}

/** A read-only view of the log the config names (`attest events`, `attest verify`, readers in other processes). */
export async function openEventLogReader(config: LogConfig): Promise<EventLogReader> {
  switch (config.backend) {
    case 'file':
      return openFileLogReader(config.dir);
    case 'kafka': {
      const { openKafkaLogReader } = await import('./kafka/kafka-log.ts');
      return openKafkaLogReader(config);
    }
    case 'kurrent': {
      const { openKurrentLogReader } = await import('./kurrent/kurrent-log.ts');
      return openKurrentLogReader(config);
    }
  }
}

/** Verifies every chain of the log the config names; the file backend also checks every frame on disk. */
export async function verifyEventLog(config: LogConfig): Promise<VerifyResult> {
  if (config.backend === 'file') return verifyFileLog(config.dir);
  const reader = await openEventLogReader(config);
  try {
    return await verifyLog(reader);
  } finally {
    await reader.close();
  }
}

// Tamper evidence (eventlog/merkle, COMPLIANCE.md §4): the Merkle tree and its node store, proofs,
// signed notes and checkpoints, the offline verifier.
export {
  CheckpointError,
  CompactRange,
  HASH_SIZE,
  MAX_NOTE_SIGNATURES,
  MemoryTree,
  MerkleError,
  MerkleStore,
  MerkleStoreReader,
  NoteError,
  NoteSigner,
  NoteVerifier,
  ProofError,
  consistencyProofLength,
  emptyRoot,
  formatCheckpoint,
  formatSignerKey,
  formatVerifierKey,
  generateNoteKey,
  hashChildren,
  hashLeaf,
  inclusionProofLength,
  isValidKeyName,
  noteKeyId,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  verifyCheckpointChain,
  verifyConsistency,
  verifyInclusion,
  verifyInclusionInCheckpoint,
} from './merkle/index.ts';
export type {
  Checkpoint,
  CheckpointFailure,
  CheckpointTrust,
  GeneratedNoteKey,
  MerkleErrorCode,
  MerkleStoreOptions,
  MerkleStoreRecovery,
  NodeSink,
  NoteFailure,
  NoteSignature,
  OpenedCheckpoint,
  OpenedNote,
  ProofFailure,
  StoreVerifyFailure,
  StoreVerifyResult,
} from './merkle/index.ts';
export { EvidenceFollower } from './evidence/follower.ts';
export type { EvidenceFollowerOptions, EvidenceResume } from './evidence/follower.ts';
export { leafContent, leafHashOf, storedCanonical, storedLeafHash } from './evidence/leaf.ts';
export { CHECKPOINTS_DIR, LATEST_CHECKPOINT_FILE, checkpointFile, checkpointFileSize, readCheckpointFile, readCheckpointFiles } from './evidence/checkpoint-files.ts';
export type { StoredCheckpoint } from './evidence/checkpoint-files.ts';
export { EvidenceError } from './evidence/evidence-error.ts';
export type { EvidenceErrorCode } from './evidence/evidence-error.ts';
export { exportBundle } from './evidence/export-bundle.ts';
export type { ExportOptions } from './evidence/export-bundle.ts';
export { PROOF_HASH_ENCODING, findEventLeaf, proveConsistency, proveInclusion } from './evidence/prove.ts';
export type { ConsistencyProofJson, InclusionProofJson, ProofTarget } from './evidence/prove.ts';
export { verifyEvidence } from './evidence/verify-evidence.ts';
export type { EvidenceFailure, EvidenceFailureKind, EvidenceVerifyOptions, EvidenceVerifyResult } from './evidence/verify-evidence.ts';
// Evidence bundles (eventlog/bundle): the format and the offline verifier.
export { BUNDLE_FORMAT, BundleError, parseBundle, verifyBundle } from './bundle/index.ts';
export type { BundleCheckpoint, BundleErrorWhere, BundleFailure, BundleLeaf, BundleReport, BundleTrust, EvidenceBundle } from './bundle/index.ts';
