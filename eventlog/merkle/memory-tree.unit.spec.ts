import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CompactRange } from './compact-range.ts';
import { MerkleError } from './errors.ts';
import { hashLeaf } from './hash.ts';
import { MemoryTree } from './memory-tree.ts';
import { COMPACT_RANGES, LEAF_INPUTS_HEX, NODE_HASHES, ROOT_HASHES, SUBTREE_VECTORS } from './merkle-vectors.ts';
import { foldNodes, subtreeNodes } from './proof-plan.ts';
import { referenceRoot } from './reference-tree.ts';
import { testMerkleTree } from './tree-contract.ts';

testMerkleTree('MemoryTree', async () => ({ tree: new MemoryTree(), close: async () => undefined }));

const leafInputs = LEAF_INPUTS_HEX.map((leaf) => Buffer.from(leaf, 'hex'));

void describe('CompactRange', () => {
  void it('holds the published right edge of every size of the 8-leaf tree (transparency-dev CompactTrees) and reports each completed node', () => {
    const range = new CompactRange();
    const completed: string[] = [];
    const sink = { completed: (level: number, index: number, hash: Buffer) => completed.push(`${level}/${index}/${hash.toString('hex')}`) };
    for (const [size, leaf] of leafInputs.entries()) {
      assert.deepEqual(range.subtrees().map((h) => h.toString('hex')), COMPACT_RANGES[size]?.map(([level, index]) => NODE_HASHES[level]?.[index]));
      range.append(hashLeaf(leaf), sink);
      assert.equal(range.root().toString('hex'), ROOT_HASHES[size + 1]);
    }
    // Every complete node, exactly once, as it completes.
    const expected = NODE_HASHES.flatMap((nodes, level) => nodes.map((hash, index) => `${level}/${index}/${hash}`));
    assert.deepEqual([...completed].sort(), [...expected].sort());
    assert.equal(completed.length, 15);
  });

  void it('resumes from its subtrees and refuses a right edge of the wrong shape', () => {
    const full = new CompactRange();
    for (const leaf of leafInputs.slice(0, 7)) full.append(hashLeaf(leaf));
    const resumed = CompactRange.fromSubtrees(7, full.subtrees());
    resumed.append(hashLeaf(leafInputs[7] as Buffer));
    assert.equal(resumed.root().toString('hex'), ROOT_HASHES[8]);
    assert.throws(() => CompactRange.fromSubtrees(7, full.subtrees().slice(1)), (error: unknown) => error instanceof MerkleError && /3 complete subtrees/.test(error.message));
    assert.throws(() => CompactRange.fromSubtrees(1, [Buffer.alloc(31)]), MerkleError);
    assert.throws(() => new CompactRange().append(Buffer.alloc(33)), (error: unknown) => error instanceof MerkleError && /33/.test(error.message));
    assert.equal(new CompactRange().root().toString('hex'), ROOT_HASHES[0]);
  });

  void it('keeps one hash per set bit of the size', () => {
    const range = new CompactRange();
    for (let i = 0; i < 1000; i++) range.append(hashLeaf(Buffer.from([i & 0xff])));
    assert.equal(range.subtrees().length, 6, '1000 = 0b1111101000');
  });
});

void describe('MemoryTree against the draft-ietf-plants-merkle-tree-certs subtree vectors (transparency-dev testonly/vectors_test.go)', () => {
  const isValidSubtree = (start: number, end: number): boolean => {
    if (start === 0 || start === end) return true;
    let ceil = 1;
    while (ceil < end - start) ceil *= 2;
    return start % ceil === 0;
  };
  const leaves = Array.from({ length: SUBTREE_VECTORS.leaves }, (_, i) => Buffer.from([i]));

  void it('hashes every valid subtree [start, end) of the 130-leaf tree as published (rolling SHA-256)', () => {
    const tree = new MemoryTree();
    for (const leaf of leaves) tree.append(leaf);
    // Complete nodes by level: leaf hashes from the tree, higher ones as roots of trees of their leaves.
    const levels: Buffer[][] = [leaves.map((_, i) => tree.leafHash(i))];
    for (let level = 1; 2 ** level <= leaves.length; level++) {
      for (let index = 0; (index + 1) * 2 ** level <= leaves.length; index++) {
        const start = index * 2 ** level;
        const sub = new MemoryTree();
        for (const leaf of leaves.slice(start, start + 2 ** level)) sub.append(leaf);
        (levels[level] ??= []).push(sub.root());
      }
    }
    const rolling = createHash('sha256');
    for (let end = 0; end <= SUBTREE_VECTORS.leaves; end++) {
      for (let start = 0; start <= end; start++) {
        if (!isValidSubtree(start, end)) continue;
        const nodes = subtreeNodes({ start, end });
        const hash = nodes.length === 0 ? tree.rootAt(0) : foldNodes(nodes.map(({ level, index }) => levels[level]?.[index] as Buffer));
        rolling.update(`[${start}, ${end}) ${hash.toString('hex')}\n`);
      }
    }
    assert.equal(rolling.digest('hex'), SUBTREE_VECTORS.subtreeHashes);
  });

  void it('gives the published inclusion proofs within every valid subtree (rolling SHA-256)', () => {
    const rolling = createHash('sha256');
    for (let end = 0; end <= SUBTREE_VECTORS.leaves; end++) {
      for (let start = 0; start <= end; start++) {
        if (!isValidSubtree(start, end) || start === end) continue;
        const sub = new MemoryTree();
        for (const leaf of leaves.slice(start, end)) sub.append(leaf);
        for (let index = start; index < end; index++) {
          const proof = sub.inclusionProof(index - start);
          rolling.update(`${index} [${start}, ${end})${proof.map((hash) => ` ${hash.toString('hex')}`).join('')}\n`);
        }
      }
    }
    assert.equal(rolling.digest('hex'), SUBTREE_VECTORS.subtreeInclusionProofs);
  });

  void it('keeps the roots of every past size (130 sizes against the reference)', () => {
    const tree = new MemoryTree();
    for (const leaf of leaves) tree.append(leaf);
    const hashes = leaves.map((leaf) => hashLeaf(leaf));
    for (let size = 0; size <= leaves.length; size++) assert.equal(tree.rootAt(size).toString('hex'), referenceRoot(hashes.slice(0, size)).toString('hex'));
  });
});
