import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProofError } from './errors.ts';
import type { ProofFailure } from './errors.ts';
import { emptyRoot, hashLeaf } from './hash.ts';
import { MemoryTree } from './memory-tree.ts';
import { ARGON2020, LEAF_INPUTS_HEX, ROOT_HASHES } from './merkle-vectors.ts';
import { flipBit, randomInt, seededRandom, syntheticLeaf } from './spec-support.ts';
import { consistencyProofLength, inclusionProofLength, verifyConsistency, verifyInclusion } from './verify-proof.ts';
import probes from './testdata/transparency-dev-proof-probes.json' with { type: 'json' };

const b64 = (text: string | null): Buffer => Buffer.from(text ?? '', 'base64');

function failure(run: () => void): ProofFailure | 'passed' {
  try {
    run();
    return 'passed';
  } catch (error) {
    if (error instanceof ProofError) return error.reason;
    throw error;
  }
}

const rejectsWith = (reason: ProofFailure) => (error: unknown) => error instanceof ProofError && error.code === 'ATTEST_PROOF_INVALID' && error.reason === reason;

/**
 * The reason a probe must fail with, from what is wrong with it, checked in the verifier's order:
 * numbers, index, hash lengths, proof length, then the roots.
 */
function expectedInclusionFailure(index: number, size: number, leaf: Buffer, proof: readonly Buffer[], root: Buffer): ProofFailure {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || size < 0) return 'invalid-number';
  if (index >= size) return 'index-out-of-range';
  if ([leaf, root, ...proof].some((hash) => hash.length !== 32)) return 'hash-length';
  if (proof.length !== inclusionProofLength(index, size)) return 'wrong-proof-length';
  return 'root-mismatch';
}

function expectedConsistencyFailures(m: number, n: number, roots: readonly Buffer[], proof: readonly Buffer[]): readonly ProofFailure[] {
  if (m > n) return ['first-exceeds-second'];
  if (m === 0) return ['first-size-zero'];
  if ([...roots, ...proof].some((hash) => hash.length !== 32)) return ['hash-length'];
  if (m === n) return proof.length > 0 ? ['wrong-proof-length'] : ['root-mismatch'];
  if (proof.length !== consistencyProofLength(m, n)) return ['wrong-proof-length'];
  return ['first-root-mismatch', 'second-root-mismatch'];
}

void describe('verifyInclusion / verifyConsistency against published probes (transparency-dev/merkle testdata)', () => {
  void it(`decides all ${probes.inclusion.length} inclusion probes as published, each failure with a precise reason`, () => {
    const reasons = new Map<string, number>();
    for (const probe of probes.inclusion) {
      const [leaf, root, proof] = [b64(probe.leafHash), b64(probe.root), (probe.proof ?? []).map(b64)];
      const outcome = failure(() => verifyInclusion(leaf, probe.leafIdx, probe.treeSize, proof, root));
      if (!probe.wantErr) {
        assert.equal(outcome, 'passed', probe.file);
        continue;
      }
      assert.equal(outcome, expectedInclusionFailure(probe.leafIdx, probe.treeSize, leaf, proof, root), probe.file);
      reasons.set(outcome, (reasons.get(outcome) ?? 0) + 1);
    }
    for (const reason of ['invalid-number', 'index-out-of-range', 'hash-length', 'wrong-proof-length', 'root-mismatch']) assert.ok(reasons.has(reason), `some probe fails with ${reason}: ${JSON.stringify([...reasons])}`);
  });

  void it(`decides all ${probes.consistency.length} consistency probes as published (one deviation: roots that are not 32 bytes are refused)`, () => {
    for (const probe of probes.consistency) {
      const roots = [b64(probe.root1), b64(probe.root2)];
      const outcome = failure(() => verifyConsistency(probe.size1, probe.size2, roots[0] as Buffer, roots[1] as Buffer, (probe.proof ?? []).map(b64)));
      if (!probe.wantErr) {
        if (roots.some((root) => root.length !== 32)) {
          // sizes-are-equal-one-and-proof-is-empty: 12-byte placeholder roots ("don't care 2") pass
          // there; a root that is not a SHA-256 hash cannot be a tree head, so this verifier refuses it.
          assert.equal(outcome, 'hash-length', probe.file);
        } else {
          assert.equal(outcome, 'passed', probe.file);
        }
        continue;
      }
      const proof = (probe.proof ?? []).map(b64);
      assert.ok(expectedConsistencyFailures(probe.size1, probe.size2, roots, proof).includes(outcome as ProofFailure), `${probe.file}: ${outcome}`);
    }
  });

  void it('verifies a real Certificate Transparency log: leaf 10,000 of Argon 2020 at 961,984,013 leaves, and consistency from 3,654,490 (golang/mod sumdb/tlog testdata)', () => {
    const leaf = hashLeaf(b64(ARGON2020.leafInput));
    const path = ARGON2020.auditPath.map(b64);
    verifyInclusion(leaf, ARGON2020.leafIndex, ARGON2020.treeSize, path, b64(ARGON2020.root));
    const consistency = ARGON2020.consistency.map(b64);
    verifyConsistency(ARGON2020.firstSize, ARGON2020.treeSize, b64(ARGON2020.firstRoot), b64(ARGON2020.root), consistency);
    assert.equal(inclusionProofLength(ARGON2020.leafIndex, ARGON2020.treeSize), path.length);
    assert.equal(consistencyProofLength(ARGON2020.firstSize, ARGON2020.treeSize), consistency.length);
    // Every single bit flipped in either proof fails.
    for (const [k, hash] of path.entries()) {
      for (let bit = 0; bit < 256; bit++) {
        const mutated = path.with(k, flipBit(hash, bit));
        assert.throws(() => verifyInclusion(leaf, ARGON2020.leafIndex, ARGON2020.treeSize, mutated, b64(ARGON2020.root)), rejectsWith('root-mismatch'));
      }
    }
    for (const [k, hash] of consistency.entries()) {
      for (let bit = 0; bit < 256; bit += 7) {
        const mutated = consistency.with(k, flipBit(hash, bit));
        assert.notEqual(failure(() => verifyConsistency(ARGON2020.firstSize, ARGON2020.treeSize, b64(ARGON2020.firstRoot), b64(ARGON2020.root), mutated)), 'passed', `consistency[${k}] bit ${bit}`);
      }
    }
  });
});

void describe('verifyInclusion / verifyConsistency: each refusal names its reason', () => {
  const tree = new MemoryTree();
  for (const leaf of LEAF_INPUTS_HEX) tree.append(Buffer.from(leaf, 'hex'));
  const root = (size: number) => Buffer.from(ROOT_HASHES[size] as string, 'hex');
  const leaf2 = tree.leafHash(2);
  const proof = tree.inclusionProof(2, 8);

  void it('inclusion', () => {
    verifyInclusion(leaf2, 2, 8, proof, root(8));
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 53, Number.POSITIVE_INFINITY]) {
      assert.throws(() => verifyInclusion(leaf2, bad, 8, proof, root(8)), rejectsWith('invalid-number'), String(bad));
      assert.throws(() => verifyInclusion(leaf2, 2, bad, proof, root(8)), rejectsWith('invalid-number'), String(bad));
    }
    assert.throws(() => verifyInclusion(leaf2, 8, 8, proof, root(8)), (error: unknown) => rejectsWith('index-out-of-range')(error) && /leaf index 8 is not in a tree of size 8/.test((error as Error).message));
    assert.throws(() => verifyInclusion(leaf2, 0, 0, [], emptyRoot()), rejectsWith('index-out-of-range'));
    assert.throws(() => verifyInclusion(leaf2.subarray(1), 2, 8, proof, root(8)), (error: unknown) => rejectsWith('hash-length')(error) && /leaf hash is 31 bytes/.test((error as Error).message));
    assert.throws(() => verifyInclusion(leaf2, 2, 8, proof, root(8).subarray(0, 16)), rejectsWith('hash-length'));
    assert.throws(() => verifyInclusion(leaf2, 2, 8, [...proof, Buffer.alloc(31)], root(8)), (error: unknown) => rejectsWith('hash-length')(error) && /proof\[3\]/.test((error as Error).message));
    assert.throws(() => verifyInclusion(leaf2, 2, 8, proof.slice(1), root(8)), (error: unknown) => rejectsWith('wrong-proof-length')(error) && /has 3 hashes, this one has 2/.test((error as Error).message));
    assert.throws(() => verifyInclusion(leaf2, 2, 8, [...proof, root(8)], root(8)), rejectsWith('wrong-proof-length'));
    assert.throws(() => verifyInclusion(leaf2, 2, 8, proof, root(7)), (error: unknown) => rejectsWith('root-mismatch')(error) && /leads to root/.test((error as Error).message));
    assert.throws(() => verifyInclusion(tree.leafHash(3), 2, 8, proof, root(8)), rejectsWith('root-mismatch'));
  });

  void it('consistency', () => {
    const p = tree.consistencyProof(3, 8);
    verifyConsistency(3, 8, root(3), root(8), p);
    verifyConsistency(8, 8, root(8), root(8), []);
    assert.throws(() => verifyConsistency(9, 8, root(8), root(8), []), (error: unknown) => rejectsWith('first-exceeds-second')(error) && /size 9.*size 8/.test((error as Error).message));
    assert.throws(() => verifyConsistency(0, 8, emptyRoot(), root(8), []), rejectsWith('first-size-zero'));
    assert.throws(() => verifyConsistency(-3, 8, root(3), root(8), p), rejectsWith('invalid-number'));
    assert.throws(() => verifyConsistency(8, 8, root(8), root(8), [root(8)]), rejectsWith('wrong-proof-length'));
    assert.throws(() => verifyConsistency(8, 8, root(8), root(7), []), rejectsWith('root-mismatch'));
    assert.throws(() => verifyConsistency(3, 8, root(3), root(8), []), (error: unknown) => rejectsWith('wrong-proof-length')(error) && /from size 3 to 8 has 4 hashes, this one has 0/.test((error as Error).message));
    assert.throws(() => verifyConsistency(3, 8, root(3), root(8), [...p, p[0] as Buffer]), rejectsWith('wrong-proof-length'));
    assert.throws(() => verifyConsistency(3, 8, root(4), root(8), p), rejectsWith('first-root-mismatch'));
    assert.throws(() => verifyConsistency(3, 8, root(3), root(7), p), rejectsWith('second-root-mismatch'));
    assert.throws(() => verifyConsistency(3, 8, root(3), root(8), p.with(0, Buffer.alloc(33))), rejectsWith('hash-length'));
  });

  void it('a proof does not bind the tree size: the root does, through the signed checkpoint (leaf 0 of 3 also verifies for size 4 against the same root)', () => {
    const three = tree.inclusionProof(0, 3);
    verifyInclusion(tree.leafHash(0), 0, 3, three, root(3));
    verifyInclusion(tree.leafHash(0), 0, 4, three, root(3));
    assert.throws(() => verifyInclusion(tree.leafHash(0), 0, 4, three, root(4)), rejectsWith('root-mismatch'), 'the real root of size 4 refuses it');
  });
});

void describe('property: on seeded random trees up to 4,000 leaves every proof verifies and every mutation fails', () => {
  const random = seededRandom(6962);
  const tree = new MemoryTree();
  const roots: Buffer[] = [tree.root()];
  for (let i = 0; i < 4000; i++) {
    tree.append(syntheticLeaf(i));
    roots.push(tree.root());
  }
  const rootOf = (size: number) => roots[size] as Buffer;
  const sizes = [...Array.from({ length: 20 }, (_, i) => i + 1), ...Array.from({ length: 40 }, () => randomInt(random, 21, 4000))];

  void it(`inclusion: ${sizes.length} sizes × 3 leaves; one flipped bit in any proof hash, the leaf or the root, another index, another size (with its root), a hash removed or added — all fail`, () => {
    let checked = 0;
    for (const n of sizes) {
      for (let k = 0; k < 3; k++) {
        const i = randomInt(random, 0, n - 1);
        const leaf = tree.leafHash(i);
        const proof = tree.inclusionProof(i, n);
        verifyInclusion(leaf, i, n, proof, rootOf(n));
        for (const [j, hash] of proof.entries()) assert.equal(failure(() => verifyInclusion(leaf, i, n, proof.with(j, flipBit(hash, randomInt(random, 0, 255))), rootOf(n))), 'root-mismatch');
        assert.equal(failure(() => verifyInclusion(flipBit(leaf, randomInt(random, 0, 255)), i, n, proof, rootOf(n))), 'root-mismatch');
        assert.equal(failure(() => verifyInclusion(leaf, i, n, proof, flipBit(rootOf(n), randomInt(random, 0, 255)))), 'root-mismatch');
        for (const other of new Set([i - 1, i + 1, i ^ 1, randomInt(random, 0, n - 1)])) {
          if (other !== i && other >= 0) assert.notEqual(failure(() => verifyInclusion(leaf, other, n, proof, rootOf(n))), 'passed', `leaf ${i} of ${n} claimed as ${other}`);
        }
        for (const size of new Set([n - 1, n + 1, 2 * n, Math.floor(n / 2), randomInt(random, 1, 4000)])) {
          if (size === n || size <= i || size > 4000) continue;
          assert.notEqual(failure(() => verifyInclusion(leaf, i, size, proof, rootOf(size))), 'passed', `leaf ${i} of ${n} claimed in size ${size} with its root`);
          if (size === 2 * n || size === Math.floor(n / 2)) assert.notEqual(failure(() => verifyInclusion(leaf, i, size, proof, rootOf(n))), 'passed', `size ${n} claimed as ${size}`);
        }
        if (proof.length > 0) assert.equal(failure(() => verifyInclusion(leaf, i, n, proof.slice(0, -1), rootOf(n))), 'wrong-proof-length');
        assert.equal(failure(() => verifyInclusion(leaf, i, n, [...proof, rootOf(n)], rootOf(n))), 'wrong-proof-length');
        assert.equal(failure(() => verifyInclusion(leaf, i, n, [rootOf(n), ...proof], rootOf(n))), 'wrong-proof-length');
        checked++;
      }
    }
    assert.equal(checked, sizes.length * 3);
  });

  void it(`consistency: ${sizes.length} sizes × 3 older sizes; one flipped bit in any proof hash or either root, another size (with its root), swapped roots, a hash removed or added — all fail`, () => {
    for (const n of sizes) {
      for (let k = 0; k < 3; k++) {
        const m = randomInt(random, 1, n);
        const proof = tree.consistencyProof(m, n);
        verifyConsistency(m, n, rootOf(m), rootOf(n), proof);
        if (m === n) {
          assert.equal(failure(() => verifyConsistency(m, n, rootOf(m), flipBit(rootOf(n), 3), proof)), 'root-mismatch');
          continue;
        }
        for (const [j, hash] of proof.entries()) {
          const outcome = failure(() => verifyConsistency(m, n, rootOf(m), rootOf(n), proof.with(j, flipBit(hash, randomInt(random, 0, 255)))));
          assert.ok(outcome === 'first-root-mismatch' || outcome === 'second-root-mismatch', `${m} → ${n}, proof[${j}]: ${outcome}`);
        }
        assert.notEqual(failure(() => verifyConsistency(m, n, flipBit(rootOf(m), randomInt(random, 0, 255)), rootOf(n), proof)), 'passed');
        assert.equal(failure(() => verifyConsistency(m, n, rootOf(m), flipBit(rootOf(n), randomInt(random, 0, 255)), proof)), 'second-root-mismatch');
        assert.notEqual(failure(() => verifyConsistency(m, n, rootOf(n), rootOf(m), proof)), 'passed');
        for (const first of new Set([m - 1, m + 1, randomInt(random, 1, n)])) {
          if (first !== m && first >= 1 && first <= n) assert.notEqual(failure(() => verifyConsistency(first, n, rootOf(first), rootOf(n), proof)), 'passed', `${m} → ${n} claimed from ${first}`);
        }
        for (const second of new Set([n - 1, n + 1, randomInt(random, m, 4000)])) {
          if (second !== n && second >= m && second <= 4000 && second !== m) assert.notEqual(failure(() => verifyConsistency(m, second, rootOf(m), rootOf(second), proof)), 'passed', `${m} → ${n} claimed to ${second}`);
        }
        assert.equal(failure(() => verifyConsistency(m, n, rootOf(m), rootOf(n), proof.slice(0, -1))), 'wrong-proof-length');
        assert.equal(failure(() => verifyConsistency(m, n, rootOf(m), rootOf(n), [...proof, rootOf(m)])), 'wrong-proof-length');
      }
    }
  });

  void it('every bit of every hash, exhaustively, on two proofs of the 4,000-leaf tree', () => {
    const i = 2718;
    const inclusion = tree.inclusionProof(i, 3999);
    const leaf = tree.leafHash(i);
    for (const [j, hash] of inclusion.entries()) for (let bit = 0; bit < 256; bit++) assert.equal(failure(() => verifyInclusion(leaf, i, 3999, inclusion.with(j, flipBit(hash, bit)), rootOf(3999))), 'root-mismatch');
    for (let bit = 0; bit < 256; bit++) {
      assert.equal(failure(() => verifyInclusion(flipBit(leaf, bit), i, 3999, inclusion, rootOf(3999))), 'root-mismatch');
      assert.equal(failure(() => verifyInclusion(leaf, i, 3999, inclusion, flipBit(rootOf(3999), bit))), 'root-mismatch');
    }
    const consistency = tree.consistencyProof(1337, 3999);
    for (const [j, hash] of consistency.entries()) for (let bit = 0; bit < 256; bit++) assert.notEqual(failure(() => verifyConsistency(1337, 3999, rootOf(1337), rootOf(3999), consistency.with(j, flipBit(hash, bit)))), 'passed');
    for (let bit = 0; bit < 256; bit++) {
      assert.notEqual(failure(() => verifyConsistency(1337, 3999, flipBit(rootOf(1337), bit), rootOf(3999), consistency)), 'passed');
      assert.notEqual(failure(() => verifyConsistency(1337, 3999, rootOf(1337), flipBit(rootOf(3999), bit), consistency)), 'passed');
    }
  });
});
