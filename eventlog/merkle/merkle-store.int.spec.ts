import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { formatCheckpoint } from './checkpoint.ts';
import { MerkleError } from './errors.ts';
import { MemoryTree } from './memory-tree.ts';
import { MerkleStore } from './merkle-store.ts';
import type { MerkleStoreOptions } from './merkle-store.ts';
import { randomInt, seededRandom, syntheticLeaf } from './spec-support.ts';
import { testMerkleTree } from './tree-contract.ts';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'attest-merkle-'));
}

type Open = (options?: MerkleStoreOptions) => Promise<MerkleStore>;

/** A temp dir and a way to open stores in it; every store opened is closed and the dir removed, pass or fail. */
async function withDir(test: (dir: string, open: Open) => Promise<void>): Promise<void> {
  const dir = await tempDir();
  const opened: MerkleStore[] = [];
  const open: Open = async (options) => {
    const store = await MerkleStore.open(dir, options);
    opened.push(store);
    return store;
  };
  try {
    await test(dir, open);
  } finally {
    for (const store of opened) await store.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

testMerkleTree('MerkleStore (files)', async () => {
  const dir = await tempDir();
  // A small batch: nodes are read from the files and from the unwritten queue within one test.
  const store = await MerkleStore.open(dir, { flushLeaves: 5 });
  return {
    tree: store,
    settle: () => store.flush(),
    close: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

function memoryTree(size: number): MemoryTree {
  const tree = new MemoryTree();
  for (let i = 0; i < size; i++) tree.append(syntheticLeaf(i));
  return tree;
}

async function fill(store: MerkleStore, to: number): Promise<void> {
  while (store.size < to) store.append(syntheticLeaf(store.size));
  await store.flush();
}

/** Roots of every 37th size, random proofs and verify() agree with the in-memory tree. */
async function assertMatches(store: MerkleStore, reference: MemoryTree, seed: number): Promise<void> {
  assert.equal(store.size, reference.size);
  assert.equal(store.root().toString('hex'), reference.root().toString('hex'));
  for (let size = 0; size <= reference.size; size += 37) assert.equal((await store.rootAt(size)).toString('hex'), reference.rootAt(size).toString('hex'), `rootAt(${size})`);
  const random = seededRandom(seed);
  for (let k = 0; k < 20 && reference.size > 0; k++) {
    const n = randomInt(random, 1, reference.size);
    const i = randomInt(random, 0, n - 1);
    const m = randomInt(random, 1, n);
    assert.deepEqual(await store.inclusionProof(i, n), reference.inclusionProof(i, n), `inclusion ${i} in ${n}`);
    assert.deepEqual(await store.consistencyProof(m, n), reference.consistencyProof(m, n), `consistency ${m} → ${n}`);
  }
  const verified = await store.verify();
  assert.ok(verified.ok, JSON.stringify(verified.firstFailure));
}

const corrupt = (pattern: RegExp) => (error: unknown) => error instanceof MerkleError && error.code === 'ATTEST_MERKLE_CORRUPT' && pattern.test(error.message);

/** Writes HEAD as sync() does, for a size whose root the test knows (a sync that happened before a crash). */
async function writeHead(dir: string, size: number, root: Buffer): Promise<void> {
  await writeFile(join(dir, 'HEAD'), formatCheckpoint({ origin: 'attest merkle store v1', size, root, extensions: [] }));
}

void describe('MerkleStore on real files', () => {
  void it('writes one 32-byte record per complete node, floor(n / 2^k) in level k, and HEAD at sync', () =>
    withDir(async (dir, open) => {
      const store = await open();
      await fill(store, 1000);
      await store.sync();
      const files = (await readdir(dir)).sort();
      assert.deepEqual(files, ['HEAD', ...Array.from({ length: 10 }, (_, k) => `level-${String(k).padStart(2, '0')}`)]);
      for (let k = 0; k < 10; k++) assert.equal((await stat(join(dir, `level-${String(k).padStart(2, '0')}`))).size, Math.floor(1000 / 2 ** k) * 32);
      const reference = memoryTree(1000);
      assert.equal(await readFile(join(dir, 'HEAD'), 'utf8'), `attest merkle store v1\n1000\n${reference.root().toString('base64')}\n`);
      const leaves = await readFile(join(dir, 'level-00'));
      assert.deepEqual(leaves.subarray(32 * 999), reference.leafHash(999), 'level-00 holds the leaf hashes in order');
      await store.close();
    }));

  void it('reopens at its size without re-hashing the log: the same root and proofs as the in-memory tree, and appends continue', () =>
    withDir(async (dir, open) => {
      const first = await open({ flushLeaves: 100 });
      await fill(first, 1234);
      await first.close();
      const reopened = await open();
      assert.deepEqual(reopened.recovery, { size: 1234, syncedSize: 1234, tornBytes: 0, droppedNodes: 0, rebuiltNodes: 0 });
      await assertMatches(reopened, memoryTree(1234), 1);
      await fill(reopened, 2048 + 3);
      await assertMatches(reopened, memoryTree(2051), 2);
      await reopened.close();
      const again = await open();
      await assertMatches(again, memoryTree(2051), 3);
      await again.close();
    }));

  void it('a store shorter than the log catches up when fed the missing leaves (and the overlap can be checked against the log)', () =>
    withDir(async (dir, open) => {
      const log = Array.from({ length: 800 }, (_, i) => syntheticLeaf(i));
      const store = await open();
      for (const leaf of log.slice(0, 500)) store.append(leaf);
      await store.close();
      const behind = await open();
      assert.equal(behind.size, 500);
      assert.deepEqual(await behind.leafHash(behind.size - 1), memoryTree(500).leafHash(499), 'its last leaf is the log’s event 499');
      for (const leaf of log.slice(behind.size)) behind.append(leaf);
      await assertMatches(behind, memoryTree(800), 4);
      await behind.close();
    }));

  void it('repairs what a crash between writes leaves, and says so: a partial record, nodes above the leaves on disk, missing upper nodes', () =>
    withDir(async (dir, open) => {
      const store = await open();
      await fill(store, 1000);
      await store.close();
      // As if the last synced state were size 900 and the crash cut level-00 inside leaf 990.
      await writeHead(dir, 900, memoryTree(900).root());
      await truncate(join(dir, 'level-00'), 990 * 32 + 16);
      await truncate(join(dir, 'level-03'), 50 * 32);
      await rm(join(dir, 'level-05'));
      await appendFile(join(dir, 'level-02'), Buffer.alloc(64, 7));
      const repaired = await open();
      // Levels cut or deleted above are rebuilt, not dropped; the 64 junk bytes of level-02 are 2 records.
      const dropped = [1, 2, 4, 6, 7, 8, 9].reduce((sum, k) => sum + Math.floor(1000 / 2 ** k) - Math.floor(990 / 2 ** k), 0) + 2;
      const rebuilt = Math.floor(990 / 8) - 50 + Math.floor(990 / 32);
      assert.deepEqual(repaired.recovery, { size: 990, syncedSize: 900, tornBytes: 16, droppedNodes: dropped, rebuiltNodes: rebuilt });
      await assertMatches(repaired, memoryTree(990), 5);
      await fill(repaired, 1000);
      await assertMatches(repaired, memoryTree(1000), 6);
      await repaired.close();
    }));

  void it('refuses to open a store whose nodes contradict its last sync, names the size and both roots; reset rebuilds it from the log', () =>
    withDir(async (dir, open) => {
      const store = await open();
      await fill(store, 1024 + 512 + 3);
      await store.close();
      // Node 0 of level 10 is the left half of every root from size 1024 on.
      const level10 = join(dir, 'level-10');
      const bytes = await readFile(level10);
      bytes[5] = (bytes[5] as number) ^ 0x20;
      await writeFile(level10, bytes);
      await assert.rejects(open(), corrupt(/has root .* at size 1539, but its last sync recorded .*rebuild it from the log/));
      const rebuilt = await open({ reset: true });
      assert.equal(rebuilt.size, 0);
      await fill(rebuilt, 1539);
      await assertMatches(rebuilt, memoryTree(1539), 7);
      await rebuilt.close();
    }));

  void it('verify() names the first node that is not the hash of its children; truncate() to its first leaf and re-feeding repairs the store', () =>
    withDir(async (dir, open) => {
      const store = await open();
      await fill(store, 700);
      await store.close();
      // Leaf 321's hash altered: no root at the synced size reads it, so open() cannot see it; verify() can.
      const level0 = join(dir, 'level-00');
      const bytes = await readFile(level0);
      bytes[321 * 32] = (bytes[321 * 32] as number) ^ 1;
      await writeFile(level0, bytes);
      const opened = await open();
      const result = await opened.verify();
      assert.equal(result.ok, false);
      assert.deepEqual({ ...result.firstFailure, reason: undefined }, { level: 1, index: 160, start: 320, end: 322, reason: undefined });
      assert.match(result.firstFailure?.reason ?? '', /node 160 of level 1 is not the hash of its two children/);
      await opened.truncate(result.firstFailure?.start ?? 0);
      assert.equal(opened.size, 320);
      await fill(opened, 700);
      await assertMatches(opened, memoryTree(700), 8);
      await opened.checkRoot(700, memoryTree(700).root());
      await assert.rejects(opened.checkRoot(699, memoryTree(700).root()), corrupt(/at size 699/));
      await opened.close();
    }));

  void it('refuses a store that lost synced leaves (shorter than its HEAD), and a HEAD that is not a store head', () =>
    withDir(async (dir, open) => {
      const store = await open();
      await fill(store, 300);
      await store.close();
      await truncate(join(dir, 'level-00'), 200 * 32);
      await assert.rejects(open(), corrupt(/holds 200 leaves but its last sync recorded 300: synced nodes were lost/));
      await writeFile(join(dir, 'HEAD'), 'not a head\n');
      await assert.rejects(open(), corrupt(/HEAD is not a Merkle store head \(a checkpoint has at least 3 lines/));
      await writeFile(join(dir, 'HEAD'), formatCheckpoint({ origin: 'someone else', size: 1, root: memoryTree(1).root(), extensions: [] }));
      await assert.rejects(open(), corrupt(/origin "someone else"/));
    }));

  void it('writes in the background once flushLeaves are pending, and refuses use after close (ATTEST_MERKLE_CLOSED)', () =>
    withDir(async (dir, open) => {
      const store = await open({ flushLeaves: 10 });
      for (let i = 0; i < 9; i++) store.append(syntheticLeaf(i));
      assert.equal(store.pendingLeaves, 9);
      store.append(syntheticLeaf(9));
      await store.flush();
      assert.equal(store.pendingLeaves, 0);
      assert.equal((await stat(join(dir, 'level-00'))).size, 320);
      assert.equal(store.syncedSize, undefined);
      await store.sync();
      assert.equal(store.syncedSize, 10);
      const head = await stat(join(dir, 'HEAD'), { bigint: true });
      await store.sync();
      assert.equal((await stat(join(dir, 'HEAD'), { bigint: true })).mtimeNs, head.mtimeNs, 'a sync with nothing new writes nothing');
      await store.close();
      await store.close();
      const closed = (error: unknown) => error instanceof MerkleError && error.code === 'ATTEST_MERKLE_CLOSED';
      assert.throws(() => store.append(Buffer.from('x')), closed);
      await assert.rejects(store.inclusionProof(0), closed);
      await assert.rejects(store.sync(), closed);
    }));

  void it('survives a writer killed -9 mid-write, three times over: each reopen is a consistent prefix at least as long as the last sync', { timeout: 120_000 }, () =>
    withDir(async (dir, open) => {
      const fixture = join(import.meta.dirname, 'merkle-writer.fixture.ts');
      let size = 0;
      for (let round = 0; round < 3; round++) {
        const child = spawn(process.execPath, ['--conditions=attest-source', fixture, dir, '3000'], { stdio: ['ignore', 'pipe', 'inherit'] });
        let synced = 0;
        let output = '';
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`the writer synced only up to ${synced} in 60 s`)), 60_000);
          child.stdout.on('data', (chunk: Buffer) => {
            output += chunk.toString();
            const sizes = [...output.matchAll(/synced (\d+)/g)].map((match) => Number(match[1]));
            synced = sizes.at(-1) ?? 0;
            // Killed between syncs, with background writes in flight.
            if (sizes.length >= 2) {
              clearTimeout(timer);
              child.kill('SIGKILL');
              resolve();
            }
          });
          child.on('error', reject);
        });
        await new Promise((resolve) => child.once('exit', resolve));
        assert.match(output, new RegExp(`^opened ${size}\\n`));
        const reopened = await open();
        assert.ok(reopened.size >= synced, `size ${reopened.size} after a sync at ${synced}`);
        await assertMatches(reopened, memoryTree(reopened.size), 10 + round);
        size = reopened.size;
        await reopened.close();
      }
    }));
});
