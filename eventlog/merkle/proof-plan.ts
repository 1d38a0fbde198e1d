/**
 * Which hashes a proof holds, and which stored nodes each is made of — no hashing, no I/O, so the
 * in-memory tree and the file store share it and differ only in how they fetch nodes.
 *
 * A proof (RFC 9162 §2.1.3.1 PATH, §2.1.4.1 PROOF/SUBPROOF) is a list of subtree hashes
 * MTH(D[start:end]). In the recursion every such subtree starts at a multiple of the power of two
 * at or above its width, so it splits, left to right, into complete subtrees whose sizes are the set
 * bits of its width, largest first — nodes that are stored once complete. At most one subtree of a
 * proof is not complete itself (the one at the right edge of the tree), so a proof needs O(log n)
 * stored nodes, for any past size n.
 */
import { isTreeInteger, largestPowerOfTwoAtMost, largestPowerOfTwoBelow, log2Exact } from './bits.ts';
import { hashChildren } from './hash.ts';
import { MerkleError } from './errors.ts';

/** The complete subtree at `level` (2^level leaves) covering leaves [index·2^level, (index+1)·2^level). */
export interface NodeId {
  readonly level: number;
  readonly index: number;
}

/** The leaves [start, end) of the tree; its hash is MTH(D[start:end]). */
export interface Subtree {
  readonly start: number;
  readonly end: number;
}

export interface ProofPlan {
  /** The subtrees whose hashes make the proof, in proof order. */
  readonly subtrees: readonly Subtree[];
  /** The stored nodes to fetch: each subtree's nodes in turn. */
  readonly nodes: readonly NodeId[];
  /** How many of `nodes` each subtree takes. */
  readonly counts: readonly number[];
}

/** RFC 9162 §2.1.3.1 PATH(m, D[0:n]), unrolled: siblings from the root down, then reversed (the deepest comes first). */
export function inclusionSubtrees(index: number, size: number): Subtree[] {
  const path: Subtree[] = [];
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = largestPowerOfTwoBelow(end - start);
    if (index - start < k) {
      path.push({ start: start + k, end });
      end = start + k;
    } else {
      path.push({ start, end: start + k });
      start += k;
    }
  }
  return path.reverse();
}

/** RFC 9162 §2.1.4.1 PROOF(m, D[0:n]) = SUBPROOF(m, D[0:n], true), unrolled, for 0 < m ≤ n. */
export function consistencySubtrees(m: number, n: number): Subtree[] {
  const proof: Subtree[] = [];
  let start = 0;
  let end = n;
  let first = m;
  let whole = true;
  for (;;) {
    if (first === end - start) {
      if (!whole) proof.push({ start, end });
      break;
    }
    const k = largestPowerOfTwoBelow(end - start);
    if (first <= k) {
      proof.push({ start: start + k, end });
      end = start + k;
    } else {
      proof.push({ start, end: start + k });
      start += k;
      first -= k;
      whole = false;
    }
  }
  return proof.reverse();
}

/** The complete subtrees [start, end) splits into, left to right (largest first). */
export function subtreeNodes(subtree: Subtree): NodeId[] {
  const nodes: NodeId[] = [];
  let at = subtree.start;
  while (at < subtree.end) {
    const width = largestPowerOfTwoAtMost(subtree.end - at);
    nodes.push({ level: log2Exact(width), index: at / width });
    at += width;
  }
  return nodes;
}

/** MTH of a subtree from its complete parts (left to right): folded from the right, as RFC 9162's recursion nests them. */
export function foldNodes(hashes: readonly Buffer[], from = 0, count = hashes.length): Buffer {
  let root = hashes[from + count - 1] as Buffer;
  for (let i = from + count - 2; i >= from; i--) root = hashChildren(hashes[i] as Buffer, root);
  return root;
}

function planOf(subtrees: readonly Subtree[]): ProofPlan {
  const nodes: NodeId[] = [];
  const counts: number[] = [];
  for (const subtree of subtrees) {
    const parts = subtreeNodes(subtree);
    counts.push(parts.length);
    for (const part of parts) nodes.push(part);
  }
  return { subtrees, nodes, counts };
}

function checkSize(what: string, size: number, available: number): void {
  if (!isTreeInteger(size)) throw new MerkleError('ATTEST_MERKLE_RANGE', `${what} must be a non-negative safe integer, not ${String(size)}`);
  if (size > available) throw new MerkleError('ATTEST_MERKLE_RANGE', `${what} ${size} is beyond the tree, which has ${available} leaves`);
}

/** The plan of the inclusion proof for leaf `index` in the tree of `size` leaves, for a tree that has `available` leaves. */
export function planInclusion(index: number, size: number, available: number): ProofPlan {
  checkSize('tree size', size, available);
  if (!isTreeInteger(index) || index >= size) throw new MerkleError('ATTEST_MERKLE_RANGE', `leaf index ${String(index)} is not in a tree of size ${size}`);
  return planOf(inclusionSubtrees(index, size));
}

/** The plan of the consistency proof from size m to n (0 < m ≤ n ≤ available). */
export function planConsistency(m: number, n: number, available: number): ProofPlan {
  checkSize('second size', n, available);
  checkSize('first size', m, n);
  if (m === 0) throw new MerkleError('ATTEST_MERKLE_RANGE', 'a consistency proof from the empty tree proves nothing (RFC 9162 defines them for 0 < m)');
  return planOf(consistencySubtrees(m, n));
}

/** The plan of MTH of the first `size` ≥ 1 leaves (its one "proof hash" is the root). */
export function planRoot(size: number, available: number): ProofPlan {
  checkSize('tree size', size, available);
  return planOf(size === 0 ? [] : [{ start: 0, end: size }]);
}

/** The proof's hashes from the fetched nodes (`hashes[i]` is the hash of `plan.nodes[i]`); never the fetched buffers themselves. */
export function assembleProof(plan: ProofPlan, hashes: readonly Buffer[]): Buffer[] {
  const proof: Buffer[] = [];
  let at = 0;
  for (const count of plan.counts) {
    proof.push(count === 1 ? Buffer.from(hashes[at] as Buffer) : foldNodes(hashes, at, count));
    at += count;
  }
  return proof;
}
