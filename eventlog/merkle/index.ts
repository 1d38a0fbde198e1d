/**
 * Tamper evidence (COMPLIANCE.md §4, RFC 9162): Merkle tree hashing, the incremental tree and its
 * node store, inclusion and consistency proofs and their verification, C2SP signed notes and
 * checkpoints, and the auditor's offline verifier. Pure apart from MerkleStore (files). See README.md.
 */
export { HASH_SIZE, emptyRoot, hashChildren, hashLeaf } from './hash.ts';
export { CompactRange } from './compact-range.ts';
export type { NodeSink } from './compact-range.ts';
export { MemoryTree } from './memory-tree.ts';
export { MerkleStore } from './merkle-store.ts';
export { MerkleStoreReader } from './merkle-store-reader.ts';
export type { MerkleStoreOptions, MerkleStoreRecovery, StoreVerifyFailure, StoreVerifyResult } from './merkle-store.ts';
export { consistencyProofLength, inclusionProofLength, verifyConsistency, verifyInclusion } from './verify-proof.ts';
export { NoteSigner, NoteVerifier, formatSignerKey, formatVerifierKey, generateNoteKey, isValidKeyName, noteKeyId, parseSignerKey, parseVerifierKey } from './note-keys.ts';
export type { GeneratedNoteKey } from './note-keys.ts';
export { MAX_NOTE_SIGNATURES, openNote, signNote } from './signed-note.ts';
export type { NoteSignature, OpenedNote } from './signed-note.ts';
export { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint } from './checkpoint.ts';
export type { Checkpoint, CheckpointTrust, OpenedCheckpoint } from './checkpoint.ts';
export { verifyCheckpointChain, verifyInclusionInCheckpoint } from './offline-verifier.ts';
export { CheckpointError, MerkleError, NoteError, ProofError } from './errors.ts';
export { decodeBase64 } from './strict-base64.ts';
export { popCount } from './bits.ts';
export type { CheckpointFailure, MerkleErrorCode, NoteFailure, ProofFailure } from './errors.ts';
