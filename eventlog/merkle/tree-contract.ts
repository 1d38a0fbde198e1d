/**
 * The contract every Merkle tree implementation passes — MemoryTree (memory-tree.unit.spec.ts) and
 * MerkleStore on real files (merkle-store.int.spec.ts): published vectors for roots, nodes and
 * proofs, the RFC 9162 reference on seeded random trees, and refusals. Imports node:test, so it is
 * not part of the barrel (as eventlog/contract.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashLeaf } from './hash.ts';
import { MerkleError } from './errors.ts';
import { LEAF_INPUTS_HEX, NODE_HASHES, ROOT_HASHES } from './merkle-vectors.ts';
import { referenceConsistencyProof, referenceInclusionProof, referenceRoot } from './reference-tree.ts';
import { randomInt, seededRandom, syntheticLeaf } from './spec-support.ts';
import { verifyConsistency, verifyInclusion } from './verify-proof.ts';
import probes from './testdata/transparency-dev-proof-probes.json' with { type: 'json' };

type MaybePromise<T> = T | Promise<T>;

/** What the contract needs of a tree; sync or async reads alike. */
export interface TreeUnderTest {
  readonly size: number;
  append(leaf: Uint8Array): number;
  appendLeafHash(leafHash: Uint8Array): number;
  root(): Buffer;
  rootAt(size: number): MaybePromise<Buffer>;
  leafHash(index: number): MaybePromise<Buffer>;
  inclusionProof(index: number, size?: number): MaybePromise<Buffer[]>;
  consistencyProof(m: number, n?: number): MaybePromise<Buffer[]>;
}

export interface OpenedTree {
  readonly tree: TreeUnderTest;
  /** Lets an adapter move appended nodes to its storage mid-test (the store flushes); optional. */
  readonly settle?: () => Promise<void>;
  close(): Promise<void>;
}

const hex = (hashes: readonly Buffer[]): string[] => hashes.map((hash) => hash.toString('hex'));
const b64 = (text: string | null): Buffer => Buffer.from(text ?? '', 'base64');

async function withTree(open: () => Promise<OpenedTree>, test: (opened: OpenedTree) => Promise<void>): Promise<void> {
  const opened = await open();
  try {
    await test(opened);
  } finally {
    await opened.close();
  }
}

export function testMerkleTree(name: string, open: () => Promise<OpenedTree>): void {
  void describe(`Merkle tree contract: ${name}`, () => {
    void it('builds the reference 8-leaf tree one leaf at a time: the published root of every size and every node (transparency-dev testonly/constants.go)', () =>
      withTree(open, async ({ tree, settle }) => {
        assert.equal(tree.root().toString('hex'), ROOT_HASHES[0]);
        for (const [i, leaf] of LEAF_INPUTS_HEX.entries()) {
          assert.equal(tree.append(Buffer.from(leaf, 'hex')), i);
          assert.equal(tree.size, i + 1);
          assert.equal(tree.root().toString('hex'), ROOT_HASHES[i + 1], `root of size ${i + 1}`);
          if (i === 4) await settle?.();
        }
        for (let size = 0; size <= 8; size++) assert.equal((await tree.rootAt(size)).toString('hex'), ROOT_HASHES[size], `rootAt(${size})`);
        for (let i = 0; i < 8; i++) assert.equal((await tree.leafHash(i)).toString('hex'), NODE_HASHES[0][i]);
      }));

    void it('gives the published inclusion and consistency proofs of the 8-leaf tree (transparency-dev testdata happy paths), for every past size', () =>
      withTree(open, async ({ tree }) => {
        for (const leaf of LEAF_INPUTS_HEX) tree.append(Buffer.from(leaf, 'hex'));
        let inclusion = 0;
        for (const probe of probes.inclusion) {
          if (probe.wantErr || probe.treeSize > 8 || !b64(probe.root).equals(Buffer.from(ROOT_HASHES[probe.treeSize] as string, 'hex'))) continue;
          assert.deepEqual(hex(await tree.inclusionProof(probe.leafIdx, probe.treeSize)), hex((probe.proof ?? []).map(b64)), probe.file);
          inclusion++;
        }
        let consistency = 0;
        for (const probe of probes.consistency) {
          if (probe.wantErr || probe.size1 === 0 || probe.size2 > 8 || !b64(probe.root2).equals(Buffer.from(ROOT_HASHES[probe.size2] as string, 'hex'))) continue;
          assert.deepEqual(hex(await tree.consistencyProof(probe.size1, probe.size2)), hex((probe.proof ?? []).map(b64)), probe.file);
          consistency++;
        }
        assert.ok(inclusion >= 5 && consistency >= 4, `published proofs compared: ${inclusion} inclusion, ${consistency} consistency`);
      }));

    void it('gives the RFC 9162 reference proofs for every index and every pair of sizes up to 33 leaves', () =>
      withTree(open, async ({ tree, settle }) => {
        const leaves: Buffer[] = [];
        for (let i = 0; i < 33; i++) {
          tree.append(syntheticLeaf(i));
          leaves.push(hashLeaf(syntheticLeaf(i)));
          if (i % 10 === 9) await settle?.();
        }
        for (let n = 1; n <= 33; n++) {
          const prefix = leaves.slice(0, n);
          assert.deepEqual((await tree.rootAt(n)).toString('hex'), referenceRoot(prefix).toString('hex'));
          for (let i = 0; i < n; i++) assert.deepEqual(hex(await tree.inclusionProof(i, n)), hex(referenceInclusionProof(i, prefix)), `inclusion ${i} in ${n}`);
          for (let m = 1; m <= n; m++) assert.deepEqual(hex(await tree.consistencyProof(m, n)), hex(referenceConsistencyProof(m, prefix)), `consistency ${m} → ${n}`);
        }
      }));

    void it('on a seeded random tree of 3,000 leaves, roots and proofs of random past sizes equal the reference and verify', () =>
      withTree(open, async ({ tree, settle }) => {
        const random = seededRandom(9162);
        const leaves: Buffer[] = [];
        for (let i = 0; i < 3000; i++) {
          tree.append(syntheticLeaf(i));
          leaves.push(hashLeaf(syntheticLeaf(i)));
          if (random() < 0.002) await settle?.();
        }
        assert.equal(tree.root().toString('hex'), referenceRoot(leaves).toString('hex'));
        for (let k = 0; k < 30; k++) {
          const n = randomInt(random, 1, 3000);
          const prefix = leaves.slice(0, n);
          const root = referenceRoot(prefix);
          assert.equal((await tree.rootAt(n)).toString('hex'), root.toString('hex'), `rootAt(${n})`);
          const i = randomInt(random, 0, n - 1);
          const inclusion = await tree.inclusionProof(i, n);
          assert.deepEqual(hex(inclusion), hex(referenceInclusionProof(i, prefix)), `inclusion ${i} in ${n}`);
          verifyInclusion(leaves[i] as Buffer, i, n, inclusion, root);
          const m = randomInt(random, 1, n);
          const consistency = await tree.consistencyProof(m, n);
          assert.deepEqual(hex(consistency), hex(referenceConsistencyProof(m, prefix)), `consistency ${m} → ${n}`);
          verifyConsistency(m, n, referenceRoot(leaves.slice(0, m)), root, consistency);
        }
        // Defaults: the current size.
        assert.deepEqual(hex(await tree.inclusionProof(2999)), hex(referenceInclusionProof(2999, leaves)));
        assert.deepEqual(hex(await tree.consistencyProof(1234)), hex(referenceConsistencyProof(1234, leaves)));
      }));

    void it('takes leaves by hash exactly as by bytes, and refuses a hash that is not 32 bytes', () =>
      withTree(open, async ({ tree }) => {
        tree.appendLeafHash(hashLeaf(Buffer.from('a')));
        const byHash = tree.root();
        assert.equal(byHash.toString('hex'), hashLeaf(Buffer.from('a')).toString('hex'));
        assert.throws(() => tree.appendLeafHash(Buffer.alloc(31)), (error: unknown) => error instanceof MerkleError && error.code === 'ATTEST_MERKLE_RANGE');
        assert.equal(tree.size, 1);
      }));

    void it('refuses proofs and roots the tree does not have (ATTEST_MERKLE_RANGE, naming the numbers)', () =>
      withTree(open, async ({ tree }) => {
        for (let i = 0; i < 5; i++) tree.append(syntheticLeaf(i));
        const range = (pattern: RegExp) => (error: unknown) => error instanceof MerkleError && error.code === 'ATTEST_MERKLE_RANGE' && pattern.test(error.message);
        await assert.rejects(async () => tree.inclusionProof(5, 5), range(/leaf index 5 is not in a tree of size 5/));
        await assert.rejects(async () => tree.inclusionProof(0, 6), range(/tree size 6 is beyond the tree, which has 5 leaves/));
        await assert.rejects(async () => tree.inclusionProof(-1, 5), range(/leaf index -1/));
        await assert.rejects(async () => tree.consistencyProof(0, 5), range(/empty tree/));
        await assert.rejects(async () => tree.consistencyProof(4, 3), range(/first size 4 is beyond the tree, which has 3 leaves/));
        await assert.rejects(async () => tree.consistencyProof(1, 6), range(/second size 6/));
        await assert.rejects(async () => tree.rootAt(6), range(/tree size 6/));
        await assert.rejects(async () => tree.rootAt(1.5), range(/non-negative safe integer/));
        await assert.rejects(async () => tree.leafHash(5), range(/5/));
      }));
  });
}
