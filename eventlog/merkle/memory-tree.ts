/**
 * A Merkle tree held in memory: every complete node, by level, plus the right edge. The same
 * proofs as the file store (both follow proof-plan.ts), synchronously; for tests, for trees small
 * enough to hold (an export bundle's leaves), and as the store's in-memory double.
 */
import { CompactRange } from './compact-range.ts';
import type { NodeSink } from './compact-range.ts';
import { HASH_SIZE, emptyRoot, hashLeaf } from './hash.ts';
import { MerkleError } from './errors.ts';
import { assembleProof, planConsistency, planInclusion, planRoot } from './proof-plan.ts';
import type { NodeId, ProofPlan } from './proof-plan.ts';

export class MemoryTree {
  readonly #levels: Buffer[][] = [];
  readonly #range = new CompactRange();
  readonly #sink: NodeSink = { completed: (level, _index, hash) => this.#record(level, hash) };

  get size(): number {
    return this.#range.size;
  }

  /** Appends a leaf by its bytes; returns its index. */
  append(leaf: Uint8Array): number {
    return this.#appendHash(hashLeaf(leaf));
  }

  /** Appends a leaf by its hash (SHA-256(0x00 ‖ bytes)); returns its index. */
  appendLeafHash(leafHash: Uint8Array): number {
    if (leafHash.length !== HASH_SIZE) throw new MerkleError('ATTEST_MERKLE_RANGE', `a leaf hash is ${HASH_SIZE} bytes, not ${leafHash.length}`);
    return this.#appendHash(Buffer.from(leafHash));
  }

  #appendHash(hash: Buffer): number {
    const index = this.#range.size;
    this.#range.append(hash, this.#sink);
    return index;
  }

  #record(level: number, hash: Buffer): void {
    let nodes = this.#levels[level];
    if (nodes === undefined) {
      nodes = [];
      this.#levels[level] = nodes;
    }
    nodes.push(hash);
  }

  /** MTH of the current tree. */
  root(): Buffer {
    return this.#range.root();
  }

  /** MTH of the first `size` leaves. */
  rootAt(size: number): Buffer {
    if (size === this.size) return this.root();
    const [root] = this.#resolve(planRoot(size, this.size));
    return root ?? emptyRoot();
  }

  leafHash(index: number): Buffer {
    return Buffer.from(this.#node({ level: 0, index }));
  }

  /** RFC 9162 §2.1.3.1 inclusion proof for leaf `index` in the tree of `size` leaves (default: the current size). */
  inclusionProof(index: number, size = this.size): Buffer[] {
    return this.#resolve(planInclusion(index, size, this.size));
  }

  /** RFC 9162 §2.1.4.1 consistency proof from size m to size n (default: the current size), 0 < m ≤ n. */
  consistencyProof(m: number, n = this.size): Buffer[] {
    return this.#resolve(planConsistency(m, n, this.size));
  }

  #node(id: NodeId): Buffer {
    const hash = this.#levels[id.level]?.[id.index];
    if (hash === undefined) throw new MerkleError('ATTEST_MERKLE_RANGE', `no complete node at level ${id.level}, index ${id.index} in a tree of size ${this.size}`);
    return hash;
  }

  #resolve(plan: ProofPlan): Buffer[] {
    return assembleProof(plan, plan.nodes.map((id) => this.#node(id)));
  }
}
