/**
 * `attest prove`: RFC 9162 inclusion and consistency proofs from a read-only view of the tree, as
 * JSON (docs/evidence.md "Proofs"). Each proof reads O(log n) nodes of the tree and none of the
 * log, and is verified before it is returned, so a damaged tree yields an error, never a proof
 * that will not verify. Finding an event by id is the exception: there is no index by id, so the
 * log is read from the start up to the event (receipts carry the leaf index: prefer --index).
 */
import { verifyConsistency, verifyInclusion } from '../merkle/index.ts';
import type { Checkpoint, MerkleStoreReader } from '../merkle/index.ts';
import type { EventLogReader } from '../port.ts';
import { chainOf } from '../record-decode.ts';
import { EvidenceError } from './evidence-error.ts';

/** All hashes in the proofs are the standard base64 of their 32 bytes. */
export const PROOF_HASH_ENCODING = 'base64';

export interface InclusionProofJson {
  readonly type: 'inclusion';
  readonly hashEncoding: typeof PROOF_HASH_ENCODING;
  readonly leafIndex: number;
  readonly leafHash: string;
  readonly treeSize: number;
  readonly rootHash: string;
  /** RFC 9162 §2.1.3.1 PATH, deepest sibling first. */
  readonly proof: readonly string[];
  readonly eventId?: string;
  /** The signed checkpoint the proof is against, when one was given. */
  readonly checkpoint?: string;
}

export interface ConsistencyProofJson {
  readonly type: 'consistency';
  readonly hashEncoding: typeof PROOF_HASH_ENCODING;
  readonly fromSize: number;
  readonly fromRoot: string;
  readonly toSize: number;
  readonly toRoot: string;
  /** RFC 9162 §2.1.4.1 PROOF(m, D[n]). */
  readonly proof: readonly string[];
}

const b64 = (hash: Uint8Array): string => Buffer.from(hash).toString('base64');

/** A tree size given directly or by a verified checkpoint, whose root the tree must have. */
export type ProofTarget = { readonly size: number } | { readonly checkpoint: Checkpoint; readonly note: string };

async function targetOf(tree: MerkleStoreReader, target: ProofTarget | undefined): Promise<{ size: number; root: Buffer; note?: string }> {
  if (target === undefined) return { size: tree.size, root: tree.root() };
  if ('size' in target) {
    if (!Number.isSafeInteger(target.size) || target.size < 0 || target.size > tree.size) throw new EvidenceError('ATTEST_EVIDENCE_NOT_FOUND', `tree size ${String(target.size)} is beyond the tree, whose last sync holds ${tree.size} leaves`);
    return { size: target.size, root: await tree.rootAt(target.size) };
  }
  const { size, root } = target.checkpoint;
  if (size > tree.size) throw new EvidenceError('ATTEST_EVIDENCE_NOT_FOUND', `the checkpoint is of size ${size}, beyond the tree's last sync (${tree.size} leaves): retry after the gateway's next sync`);
  const stored = await tree.rootAt(size);
  if (!stored.equals(root)) throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `the tree's root at size ${size} is ${b64(stored)}, not the checkpoint's ${b64(root)}: the tree or the log was rewritten after it was signed (run attest verify --checkpoint)`);
  return { size, root, note: target.note };
}

export async function proveInclusion(tree: MerkleStoreReader, leafIndex: number, target?: ProofTarget, eventId?: string): Promise<InclusionProofJson> {
  const { size, root, note } = await targetOf(tree, target);
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0 || leafIndex >= size) throw new EvidenceError('ATTEST_EVIDENCE_NOT_FOUND', `leaf ${String(leafIndex)} is not in the tree of size ${size}`);
  const leaf = await tree.leafHash(leafIndex);
  const proof = await tree.inclusionProof(leafIndex, size);
  verifyInclusion(leaf, leafIndex, size, proof, root);
  return { type: 'inclusion', hashEncoding: PROOF_HASH_ENCODING, leafIndex, leafHash: b64(leaf), treeSize: size, rootHash: b64(root), proof: proof.map(b64), ...(eventId !== undefined && { eventId }), ...(note !== undefined && { checkpoint: note }) };
}

export async function proveConsistency(tree: MerkleStoreReader, from: ProofTarget, to?: ProofTarget): Promise<ConsistencyProofJson> {
  const older = await targetOf(tree, from);
  const newer = await targetOf(tree, to);
  if (older.size > newer.size) throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `--from (size ${older.size}) is larger than --to (size ${newer.size})`);
  if (older.size === 0) throw new EvidenceError('ATTEST_EVIDENCE_INVALID', 'a consistency proof from the empty tree proves nothing (RFC 9162 defines them for 0 < m): every tree extends it');
  const proof = await tree.consistencyProof(older.size, newer.size);
  verifyConsistency(older.size, newer.size, older.root, newer.root, proof);
  return { type: 'consistency', hashEncoding: PROOF_HASH_ENCODING, fromSize: older.size, fromRoot: b64(older.root), toSize: newer.size, toRoot: b64(newer.root), proof: proof.map(b64) };
}

/** The leaf index of the event with this id: a read of the log from the start up to it. */
export async function findEventLeaf(reader: EventLogReader, eventId: string): Promise<number> {
  let index = 0;
  for await (const entry of reader.entries()) {
    if (chainOf(entry).id === eventId) return index;
    index++;
  }
  throw new EvidenceError('ATTEST_EVIDENCE_NOT_FOUND', `no event with id ${eventId} in the log (${index} events read)`);
}
