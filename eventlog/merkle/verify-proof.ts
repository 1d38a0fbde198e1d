/**
 * Proof verification, exactly as RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) write
 * it, with the checks around the algorithms done first so that every failure has a precise reason:
 * sizes and indexes are non-negative safe integers, every hash is 32 bytes, and the proof has the
 * number of hashes the sizes call for (counted by running the algorithm's index arithmetic alone).
 *
 * Both functions throw a ProofError and return nothing: a verification that returned false could
 * be ignored by a caller, one that throws fails closed.
 *
 * What a proof does not bind: the tree size. A proof for leaf 0 of a tree of 3 leaves also verifies
 * as a proof for a tree of 4 against the same root (both run the same two steps), because the root
 * commits to the size only through the signed checkpoint that carries both. Take size and root
 * together from a verified checkpoint (offline-verifier.ts does).
 */
import { half, isOdd, isPowerOfTwo, isTreeInteger } from './bits.ts';
import { HASH_SIZE, base64Of, equalBytes, hashChildren } from './hash.ts';
import { ProofError } from './errors.ts';

function checkNumber(name: string, value: number): void {
  if (!isTreeInteger(value)) throw new ProofError('invalid-number', `${name} must be a non-negative safe integer, not ${String(value)}`);
}

function checkHash(name: string, hash: Uint8Array): void {
  if (hash.length !== HASH_SIZE) throw new ProofError('hash-length', `${name} is ${hash.length} bytes, not ${HASH_SIZE}`);
}

function checkProofHashes(proof: readonly Uint8Array[]): void {
  for (let i = 0; i < proof.length; i++) checkHash(`proof[${i}]`, proof[i] as Uint8Array);
}

/** Hashes in an inclusion proof for `index` in a tree of `size`: the iterations of §2.1.3.2 step 4 until sn reaches 0. */
export function inclusionProofLength(index: number, size: number): number {
  let fn = index;
  let sn = size - 1;
  let length = 0;
  while (sn > 0) {
    if (isOdd(fn) || fn === sn) {
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    }
    fn = half(fn);
    sn = half(sn);
    length++;
  }
  return length;
}

/** Hashes in a consistency proof from m to n (0 < m < n): the values §2.1.4.2 consumes, less first_hash when it is prepended. */
export function consistencyProofLength(m: number, n: number): number {
  let fn = m - 1;
  let sn = n - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let consumed = 0;
  while (sn > 0) {
    if (isOdd(fn) || fn === sn) {
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    }
    fn = half(fn);
    sn = half(sn);
    consumed++;
  }
  // The first path value (fr = sr = path[0]) is the proof's first hash, or first_hash itself when m is a power of two.
  return isPowerOfTwo(m) ? consumed : consumed + 1;
}

/**
 * RFC 9162 §2.1.3.2: checks that `leafHash` (SHA-256(0x00 ‖ bytes)) is leaf `index` of the tree of
 * `size` leaves whose root is `root`. Throws ProofError.
 */
export function verifyInclusion(leafHash: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): void {
  checkNumber('leaf index', index);
  checkNumber('tree size', size);
  // Step 1.
  if (index >= size) throw new ProofError('index-out-of-range', `leaf index ${index} is not in a tree of size ${size}`);
  checkHash('leaf hash', leafHash);
  checkHash('root', root);
  checkProofHashes(proof);
  const expected = inclusionProofLength(index, size);
  if (proof.length !== expected) throw new ProofError('wrong-proof-length', `an inclusion proof for leaf ${index} in a tree of size ${size} has ${expected} hashes, this one has ${proof.length}`);
  // Steps 2–3.
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array = leafHash;
  // Step 4.
  for (const p of proof) {
    if (sn === 0) throw new ProofError('wrong-proof-length', `the proof has hashes left after reaching the root (leaf ${index}, size ${size})`);
    if (isOdd(fn) || fn === sn) {
      r = hashChildren(p, r);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      r = hashChildren(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5.
  if (sn !== 0) throw new ProofError('wrong-proof-length', `the proof ends before reaching the root (leaf ${index}, size ${size})`);
  if (!equalBytes(r, root)) {
    throw new ProofError('root-mismatch', `the proof for leaf ${index} leads to root ${base64Of(r)}, not to ${base64Of(root)} (tree size ${size})`);
  }
}

/**
 * RFC 9162 §2.1.4.2: checks that the tree of size `n` with root `rootN` extends the tree of size
 * `m` with root `rootM` (its first m leaves are the same). m = n needs an empty proof and equal
 * roots; m = 0 is refused ('first-size-zero': the empty tree is a prefix of every tree, so a proof
 * from it proves nothing — compare the root with SHA-256("") instead). Throws ProofError.
 */
export function verifyConsistency(m: number, n: number, rootM: Uint8Array, rootN: Uint8Array, proof: readonly Uint8Array[]): void {
  checkNumber('first size', m);
  checkNumber('second size', n);
  if (m > n) throw new ProofError('first-exceeds-second', `the first tree (size ${m}) is larger than the second (size ${n})`);
  if (m === 0) throw new ProofError('first-size-zero', `a consistency proof from the empty tree proves nothing (RFC 9162 defines them for 0 < m); every tree of size ${n} extends it`);
  checkHash('first root', rootM);
  checkHash('second root', rootN);
  checkProofHashes(proof);
  if (m === n) {
    if (proof.length !== 0) throw new ProofError('wrong-proof-length', `a consistency proof between equal sizes (${m}) is empty, this one has ${proof.length} hashes`);
    if (!equalBytes(rootM, rootN)) throw new ProofError('root-mismatch', `two trees of size ${m} with different roots: ${base64Of(rootM)} and ${base64Of(rootN)}`);
    return;
  }
  const expected = consistencyProofLength(m, n);
  // Step 1 (an empty proof fails) is covered: the expected length is at least 1 when m < n.
  if (proof.length !== expected) throw new ProofError('wrong-proof-length', `a consistency proof from size ${m} to ${n} has ${expected} hashes, this one has ${proof.length}`);
  // Step 2.
  const path: readonly Uint8Array[] = isPowerOfTwo(m) ? [rootM, ...proof] : proof;
  // Step 3.
  let fn = m - 1;
  let sn = n - 1;
  // Step 4.
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  // Step 5.
  let fr: Uint8Array = path[0] as Uint8Array;
  let sr: Uint8Array = path[0] as Uint8Array;
  // Step 6.
  for (let i = 1; i < path.length; i++) {
    const c = path[i] as Uint8Array;
    if (sn === 0) throw new ProofError('wrong-proof-length', `the proof has hashes left after reaching the second root (sizes ${m} → ${n})`);
    if (isOdd(fn) || fn === sn) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
      if (!isOdd(fn)) {
        while (!isOdd(fn) && fn !== 0) {
          fn = half(fn);
          sn = half(sn);
        }
      }
    } else {
      sr = hashChildren(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  // Step 7.
  if (!equalBytes(fr, rootM)) throw new ProofError('first-root-mismatch', `the proof leads to ${base64Of(fr)} for size ${m}, not to the first root ${base64Of(rootM)}`);
  if (!equalBytes(sr, rootN)) throw new ProofError('second-root-mismatch', `the proof leads to ${base64Of(sr)} for size ${n}, not to the second root ${base64Of(rootN)}`);
  if (sn !== 0) throw new ProofError('wrong-proof-length', `the proof ends before reaching the second root (sizes ${m} → ${n})`);
}
