import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { emptyRoot, hashChildren, hashLeaf } from './hash.ts';
import { HASHER_VECTORS } from './merkle-vectors.ts';

void describe('RFC 9162 §2.1.1 hashing (transparency-dev rfc6962 hasher vectors)', () => {
  void it('MTH of the empty tree is SHA-256 of the empty string', () => {
    assert.equal(emptyRoot().toString('hex'), HASHER_VECTORS.emptyRoot);
  });

  void it('leaf = SHA-256(0x00 ‖ bytes): the empty leaf, "L123456"', () => {
    assert.equal(hashLeaf(Buffer.alloc(0)).toString('hex'), HASHER_VECTORS.emptyLeaf);
    assert.notEqual(HASHER_VECTORS.emptyLeaf, HASHER_VECTORS.emptyRoot, 'an empty leaf is not an empty tree');
    assert.equal(hashLeaf(Buffer.from('L123456')).toString('hex'), HASHER_VECTORS.leafL123456);
  });

  void it('interior = SHA-256(0x01 ‖ left ‖ right): "N123", "N456" (inputs of any length are hashed as given)', () => {
    assert.equal(hashChildren(Buffer.from('N123'), Buffer.from('N456')).toString('hex'), HASHER_VECTORS.nodeN123N456);
  });

  void it('gives the same hashes on the scratch-buffer path and the streaming path (leaves up to and beyond 64 KiB), and never aliases its output', () => {
    for (const size of [0, 1, 600, 1025, 65_536, 65_537, 1_000_000]) {
      const leaf = Buffer.alloc(size, size % 251);
      const expected = createHash('sha256').update(Buffer.from([0])).update(leaf).digest('hex');
      assert.equal(hashLeaf(leaf).toString('hex'), expected, `${size} bytes`);
      assert.equal(hashLeaf(new Uint8Array(leaf)).toString('hex'), expected, `${size} bytes as a Uint8Array`);
    }
    const a = hashLeaf(Buffer.from('a'));
    const b = hashLeaf(Buffer.from('b'));
    assert.notEqual(a.toString('hex'), b.toString('hex'));
    const ab = hashChildren(a, b);
    assert.equal(ab.toString('hex'), createHash('sha256').update(Buffer.from([1])).update(a).update(b).digest('hex'));
    assert.notEqual(hashChildren(b, a).toString('hex'), ab.toString('hex'), 'order matters');
    assert.notEqual(hashLeaf(Buffer.concat([a, b])).toString('hex'), ab.toString('hex'), 'a leaf never hashes like an interior node');
  });
});
