/**
 * The right edge of the tree (a compact range [0, n), as transparency-dev/merkle calls it): one hash
 * per set bit of n — the complete subtrees the n leaves split into, largest first. Appending a leaf
 * merges equal-sized subtrees from the right (one hash per trailing one bit of n, one on average),
 * and the root of size n folds at most log2(n) of them. Enough to know the root of every size as
 * the log grows, in O(log n) memory; the store keeps the rest for proofs.
 */
import { isOdd, half, popCount } from './bits.ts';
import { HASH_SIZE, emptyRoot, hashChildren } from './hash.ts';
import { foldNodes } from './proof-plan.ts';
import { MerkleError } from './errors.ts';

/** Told of each node a leaf completes: the leaf itself (level 0), then every parent it closes. */
export interface NodeSink {
  completed(level: number, index: number, hash: Buffer): void;
}

export class CompactRange {
  #size = 0;
  /** Complete subtrees of [0, size), left to right. */
  readonly #hashes: Buffer[] = [];
  #root: Buffer | undefined;

  /** Resumes at `size` from its complete subtrees, left to right (one per set bit of size). */
  static fromSubtrees(size: number, hashes: readonly Uint8Array[]): CompactRange {
    if (!Number.isSafeInteger(size) || size < 0) throw new MerkleError('ATTEST_MERKLE_RANGE', `a tree size must be a non-negative safe integer, not ${size}`);
    if (hashes.length !== popCount(size)) throw new MerkleError('ATTEST_MERKLE_RANGE', `a tree of size ${size} has ${popCount(size)} complete subtrees on its right edge, not ${hashes.length}`);
    const range = new CompactRange();
    for (const hash of hashes) {
      if (hash.length !== HASH_SIZE) throw new MerkleError('ATTEST_MERKLE_RANGE', `subtree hashes are ${HASH_SIZE} bytes, not ${hash.length}`);
      range.#hashes.push(Buffer.from(hash));
    }
    range.#size = size;
    return range;
  }

  get size(): number {
    return this.#size;
  }

  /** Appends a leaf hash (SHA-256(0x00 ‖ bytes)); `sink` hears of every node that becomes complete. */
  append(leafHash: Buffer, sink?: NodeSink): void {
    if (leafHash.length !== HASH_SIZE) throw new MerkleError('ATTEST_MERKLE_RANGE', `a leaf hash is ${HASH_SIZE} bytes, not ${leafHash.length}`);
    let index = this.#size;
    let level = 0;
    let hash = leafHash;
    sink?.completed(0, index, hash);
    while (isOdd(index)) {
      hash = hashChildren(this.#hashes.pop() as Buffer, hash);
      index = half(index);
      level++;
      sink?.completed(level, index, hash);
    }
    this.#hashes.push(hash);
    this.#size++;
    this.#root = undefined;
  }

  /** MTH of the leaves appended so far (cached until the next append). */
  root(): Buffer {
    if (this.#size === 0) return emptyRoot();
    this.#root ??= foldNodes(this.#hashes);
    return Buffer.from(this.#root);
  }

  /** The complete subtrees of the right edge, left to right (copies). */
  subtrees(): Buffer[] {
    return this.#hashes.map((hash) => Buffer.from(hash));
  }
}
