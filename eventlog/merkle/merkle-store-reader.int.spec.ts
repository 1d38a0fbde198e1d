import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { MerkleError } from './errors.ts';
import { MemoryTree } from './memory-tree.ts';
import { MerkleStore } from './merkle-store.ts';
import { MerkleStoreReader } from './merkle-store-reader.ts';
import { randomInt, seededRandom, syntheticLeaf } from './spec-support.ts';
import { CompactRange } from './compact-range.ts';

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'attest-merkle-reader-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const failsWith = (code: string, pattern: RegExp) => (error: unknown) => error instanceof MerkleError && error.code === code && pattern.test(error.message);

/** Every file's name, length and mtime: what a reader must leave as it found. */
async function snapshot(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async (name) => { const s = await stat(join(dir, name)); return `${name} ${s.size} ${s.mtimeMs}`; }));
}

void describe('MerkleStoreReader (read-only view of a store a writer owns)', () => {
  void it('sees the synced size while the writer runs ahead, gives the proofs of the in-memory tree, and writes nothing', async (t) => {
    const dir = await tempDir(t);
    const writer = await MerkleStore.open(dir, { flushLeaves: 64 });
    const reference = new MemoryTree();
    for (let i = 0; i < 3001; i++) { writer.append(syntheticLeaf(i)); reference.append(syntheticLeaf(i)); }
    await writer.sync();
    for (let i = 3001; i < 3500; i++) writer.append(syntheticLeaf(i));
    await writer.flush(); // written, not synced: beyond HEAD, invisible to the reader

    const before = await snapshot(dir);
    const reader = await MerkleStoreReader.open(dir);
    t.after(() => reader.close());
    assert.equal(reader.size, 3001);
    assert.deepEqual(reader.root(), reference.root());
    const random = seededRandom(7);
    for (let k = 0; k < 40; k++) {
      const n = randomInt(random, 1, 3001);
      const i = randomInt(random, 0, n - 1);
      const m = randomInt(random, 1, n);
      assert.deepEqual(await reader.inclusionProof(i, n), reference.inclusionProof(i, n), `inclusion ${i} in ${n}`);
      assert.deepEqual(await reader.consistencyProof(m, n), reference.consistencyProof(m, n), `consistency ${m} → ${n}`);
      assert.deepEqual(await reader.rootAt(n), reference.rootAt(n));
      assert.deepEqual(CompactRange.fromSubtrees(m, await reader.rightEdge(m)).root(), reference.rootAt(m), `right edge at ${m}`);
    }
    assert.deepEqual(await reader.leafHash(3000), reference.leafHash(3000));
    assert.deepEqual(await reader.leafHashes(10, 3), Buffer.concat([10, 11, 12].map((i) => reference.leafHash(i))));
    await assert.rejects(reader.leafHash(3001), failsWith('ATTEST_MERKLE_RANGE', /not in the tree of size 3001/));
    await assert.rejects(reader.inclusionProof(0, 3002), failsWith('ATTEST_MERKLE_RANGE', /beyond the tree/));
    const readsBefore = reader.nodesRead;
    await reader.inclusionProof(1234);
    assert.ok(reader.nodesRead - readsBefore <= 2 * 12, `an inclusion proof at 3,001 leaves read ${reader.nodesRead - readsBefore} nodes`);
    assert.deepEqual(await snapshot(dir), before, 'the reader changed nothing in the directory');
    await reader.close();
    await assert.rejects(reader.rootAt(1), failsWith('ATTEST_MERKLE_CLOSED', /closed/));
    await writer.close();
  });

  void it('names what is missing: no directory, not a directory, not a store, never synced', async (t) => {
    const dir = await tempDir(t);
    await assert.rejects(MerkleStoreReader.open(join(dir, 'absent')), failsWith('ATTEST_MERKLE_NOT_FOUND', /absent: the directory does not exist/));
    await writeFile(join(dir, 'file'), 'x');
    await assert.rejects(MerkleStoreReader.open(join(dir, 'file')), failsWith('ATTEST_MERKLE_NOT_FOUND', /not a directory/));
    await mkdir(join(dir, 'empty'));
    await assert.rejects(MerkleStoreReader.open(join(dir, 'empty')), failsWith('ATTEST_MERKLE_NOT_FOUND', /no HEAD and no level files/));
    const unsynced = await MerkleStore.open(join(dir, 'unsynced'), { flushLeaves: 1 });
    unsynced.append(syntheticLeaf(0));
    await unsynced.flush();
    await assert.rejects(MerkleStoreReader.open(join(dir, 'unsynced')), failsWith('ATTEST_MERKLE_NOT_FOUND', /never synced/));
    await unsynced.close();
    assert.ok(!(await readdir(dir)).includes('absent'), 'a read-only open creates no directory');
  });

  void it('refuses a store that contradicts its HEAD: lost synced leaves, an altered node', async (t) => {
    const dir = await tempDir(t);
    const writer = await MerkleStore.open(dir);
    for (let i = 0; i < 100; i++) writer.append(syntheticLeaf(i));
    await writer.close();
    const leaves = await readFile(join(dir, 'level-00'));
    await truncate(join(dir, 'level-00'), 99 * 32);
    await assert.rejects(MerkleStoreReader.open(dir), failsWith('ATTEST_MERKLE_CORRUPT', /level-00 holds 99 nodes but the store's HEAD \(size 100\) needs 100/));
    await writeFile(join(dir, 'level-00'), leaves);
    // Size 100 = 64 + 32 + 4: the root folds node 24 of level 2 (leaves 96–99).
    const level2 = await readFile(join(dir, 'level-02'));
    level2[24 * 32] = (level2[24 * 32] as number) ^ 1;
    await writeFile(join(dir, 'level-02'), level2);
    await assert.rejects(MerkleStoreReader.open(dir), failsWith('ATTEST_MERKLE_CORRUPT', /at size 100, but its HEAD recorded/));
  });
});
