/**
 * Errors of the tamper-evidence library. Each class has one stable `code` and a `reason` naming
 * exactly what failed, so a caller (the CLI, an HTTP route, an auditor's script) can branch on it
 * and a person reading the message knows what to look at.
 */

/** Why a proof did not verify (RFC 9162 §2.1.3.2 / §2.1.4.2, plus the checks around them). */
export type ProofFailure =
  /** An index or size that is not a non-negative safe integer (≤ 2^53 − 1). */
  | 'invalid-number'
  /** Inclusion: leaf index ≥ tree size. */
  | 'index-out-of-range'
  /** Consistency: the first size is larger than the second. */
  | 'first-exceeds-second'
  /** Consistency from the empty tree: RFC 9162 defines proofs for 0 < m only; every tree extends the empty one. */
  | 'first-size-zero'
  /** A leaf hash, root or proof element that is not 32 bytes. */
  | 'hash-length'
  /** The proof does not have the number of hashes the sizes call for. */
  | 'wrong-proof-length'
  /** Inclusion (or consistency between equal sizes): the recomputed root is not the root given. */
  | 'root-mismatch'
  /** Consistency: the proof does not lead to the first root. */
  | 'first-root-mismatch'
  /** Consistency: the proof does not lead to the second root. */
  | 'second-root-mismatch';

export class ProofError extends Error {
  readonly code = 'ATTEST_PROOF_INVALID';
  readonly reason: ProofFailure;
  constructor(reason: ProofFailure, message: string) {
    super(message);
    this.name = 'ProofError';
    this.reason = reason;
  }
}

/** Why a signed note or a key did not parse or verify (C2SP signed-note). */
export type NoteFailure =
  | 'not-utf8'
  | 'control-character'
  | 'empty-text'
  | 'unterminated-line'
  | 'missing-blank-line'
  | 'no-signatures'
  | 'malformed-signature-line'
  | 'bad-base64'
  | 'too-many-signatures'
  /** No signature is by a known key (name and key id both matching). */
  | 'unknown-key'
  /** A signature by a known key does not verify: the whole note is refused. */
  | 'bad-signature'
  /** Two known keys share a name and key id. */
  | 'ambiguous-key'
  | 'malformed-key'
  | 'key-id-mismatch';

export class NoteError extends Error {
  readonly code = 'ATTEST_NOTE_INVALID';
  readonly reason: NoteFailure;
  /** 1-based line of the note the failure is on, where there is one. */
  readonly line: number | undefined;
  constructor(reason: NoteFailure, message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.name = 'NoteError';
    this.reason = reason;
    this.line = line;
  }
}

/** Why a checkpoint (C2SP tlog-checkpoint) did not parse, or does not follow one seen before. */
export type CheckpointFailure =
  | 'too-few-lines'
  | 'unterminated-line'
  | 'empty-origin'
  | 'origin-mismatch'
  | 'size-not-decimal'
  | 'size-too-large'
  | 'root-not-base64'
  | 'root-wrong-length'
  | 'empty-extension-line'
  /** A checkpoint smaller than one seen before: the log was cut short or is being shown rolled back. */
  | 'size-regressed'
  /** Two checkpoints of the same size with different roots: the log was forked (shown differently to two parties). */
  | 'fork'
  /** The consistency proof between the two checkpoints does not verify: `cause` is the ProofError. */
  | 'inconsistent'
  /** A checkpoint of size 0 whose root is not SHA-256(""). */
  | 'bad-empty-root'
  /** An inclusion proof against the checkpoint does not verify: `cause` is the ProofError. */
  | 'not-included';

export class CheckpointError extends Error {
  readonly code = 'ATTEST_CHECKPOINT_INVALID';
  readonly reason: CheckpointFailure;
  /** 1-based line of the checkpoint text, where there is one. */
  readonly line: number | undefined;
  constructor(reason: CheckpointFailure, message: string, options?: ErrorOptions & { readonly line?: number }) {
    super(options?.line === undefined ? message : `line ${options.line}: ${message}`, options);
    this.name = 'CheckpointError';
    this.reason = reason;
    this.line = options?.line;
  }
}

/**
 * `ATTEST_MERKLE_RANGE`: a proof or root was asked for an index or size the tree does not have.
 * `ATTEST_MERKLE_CORRUPT`: the node store on disk contradicts itself or its last synced head.
 * `ATTEST_MERKLE_CLOSED`: the store was used after close().
 * `ATTEST_MERKLE_NOT_FOUND`: a read-only open found no store (no directory, not a directory, or no synced HEAD).
 */
export type MerkleErrorCode = 'ATTEST_MERKLE_RANGE' | 'ATTEST_MERKLE_CORRUPT' | 'ATTEST_MERKLE_CLOSED' | 'ATTEST_MERKLE_NOT_FOUND';

export class MerkleError extends Error {
  readonly code: MerkleErrorCode;
  constructor(code: MerkleErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'MerkleError';
    this.code = code;
  }
}
