/**
 * The auditor's verifier: pure functions over what it is given (checkpoints as signed notes,
 * proofs, leaf hashes, the trusted origin and keys) — no files, no network, no clock — so that an
 * offline tool can run them on an export and trust nothing else.
 *
 * Trusted: the origin and the verifier keys passed in, and SHA-256/Ed25519. Checked: every
 * checkpoint's signature (by a known key) and origin; that a newer checkpoint is never smaller than
 * one seen before, that two of the same size have the same root, and that a larger one extends the
 * older (RFC 9162 consistency); that a leaf is in the tree a checkpoint commits to (inclusion).
 */
import { CheckpointError, ProofError } from './errors.ts';
import { openCheckpoint } from './checkpoint.ts';
import type { Checkpoint, CheckpointTrust, OpenedCheckpoint } from './checkpoint.ts';
import { base64Of, emptyRoot, equalBytes } from './hash.ts';
import { verifyConsistency, verifyInclusion } from './verify-proof.ts';

function opened(checkpoint: string | Uint8Array | Checkpoint, trust: CheckpointTrust): Checkpoint {
  return typeof checkpoint === 'string' || checkpoint instanceof Uint8Array ? openCheckpoint(checkpoint, trust).checkpoint : checkpoint;
}

/**
 * Checks that `next` may follow `previous` — a signed checkpoint, or one the caller verified and
 * kept earlier (a Checkpoint object is taken as trusted and not re-checked) — given the
 * consistency proof between them. Returns the opened `next`, the new latest checkpoint to keep.
 * Throws NoteError / CheckpointError: 'size-regressed', 'fork', 'bad-empty-root', 'inconsistent'.
 */
export function verifyCheckpointChain(previous: string | Uint8Array | Checkpoint, next: string | Uint8Array, proof: readonly Uint8Array[], trust: CheckpointTrust): OpenedCheckpoint {
  const older = opened(previous, trust);
  const newer = openCheckpoint(next, trust);
  const { size, root } = newer.checkpoint;
  if (older.origin !== newer.checkpoint.origin) throw new CheckpointError('origin-mismatch', `the checkpoints are of two logs: ${JSON.stringify(older.origin)} and ${JSON.stringify(newer.checkpoint.origin)}`);
  if (size < older.size) {
    throw new CheckpointError('size-regressed', `the checkpoint of size ${size} is smaller than one seen before (size ${older.size}): the log was cut short, or is being shown as it was`);
  }
  if (size === older.size) {
    if (!equalBytes(root, older.root)) throw new CheckpointError('fork', `two checkpoints of size ${size} with different roots (${base64Of(older.root)} and ${base64Of(root)}): the log was forked or rewritten`);
    if (proof.length !== 0) throw new CheckpointError('inconsistent', `checkpoints of equal size (${size}) take an empty consistency proof, not ${proof.length} hashes`);
    return newer;
  }
  if (older.size === 0) {
    if (!equalBytes(older.root, emptyRoot())) throw new CheckpointError('bad-empty-root', `a checkpoint of size 0 has root ${base64Of(older.root)}, not SHA-256("")`);
    if (proof.length !== 0) throw new CheckpointError('inconsistent', `every tree extends the empty one: the proof must be empty, not ${proof.length} hashes`);
    return newer;
  }
  try {
    verifyConsistency(older.size, size, older.root, root, proof);
  } catch (error) {
    if (!(error instanceof ProofError)) throw error;
    throw new CheckpointError('inconsistent', `the checkpoint of size ${size} is not a consistent extension of the one of size ${older.size} (${error.reason}: ${error.message}): the log was rewritten, or the proof is wrong`, { cause: error });
  }
  return newer;
}

/**
 * Checks that the leaf with hash `leafHash` (SHA-256(0x00 ‖ canonical event bytes)) is leaf
 * `index` of the tree `checkpoint` commits to. Size and root come from the verified checkpoint,
 * never from the caller, since a proof alone does not bind the size. Returns the opened checkpoint.
 */
export function verifyInclusionInCheckpoint(leafHash: Uint8Array, index: number, checkpoint: string | Uint8Array, proof: readonly Uint8Array[], trust: CheckpointTrust): OpenedCheckpoint {
  const verified = openCheckpoint(checkpoint, trust);
  try {
    verifyInclusion(leafHash, index, verified.checkpoint.size, proof, verified.checkpoint.root);
  } catch (error) {
    if (!(error instanceof ProofError)) throw error;
    throw new CheckpointError('not-included', `leaf ${index} is not proven in the checkpoint of size ${verified.checkpoint.size} (${error.reason}: ${error.message})`, { cause: error });
  }
  return verified;
}
