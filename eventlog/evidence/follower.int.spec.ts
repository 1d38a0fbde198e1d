/**
 * The evidence follower on a real file log: the tree it builds equals one built independently from
 * the log's records, a restart resumes from the stored size without re-reading, a store whose
 * cursor is gone is rebuilt, and it follows appends as they become durable.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { AttestEvent } from '#schemas';
import { canonicalize } from '#schemas';
import { openFileLog } from '../file/file-log.ts';
import { openFileLogReader } from '../file/file-reader.ts';
import { collect, tempDir } from '../file/spec-support.ts';
import { MemoryTree } from '../merkle/index.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { EvidenceFollower } from './follower.ts';

/** The leaf computed here from the record as stored, not through leaf.ts. */
function independentLeaf(event: AttestEvent): Buffer {
  const { hash: _hash, ...rest } = event as unknown as Record<string, unknown>;
  return createHash('sha256').update(Buffer.from([0])).update(canonicalize(rest), 'utf8').digest();
}

async function expectedRoot(logDir: string): Promise<{ root: Buffer; size: number }> {
  const reader = await openFileLogReader(logDir);
  const tree = new MemoryTree();
  for (const stored of await collect(reader.read())) tree.appendLeafHash(independentLeaf(stored.event));
  await reader.close();
  return { root: tree.root(), size: tree.size };
}

async function appendEvents(logDir: string, from: number, count: number): Promise<void> {
  const log = await openFileLog({ dir: logDir });
  for (let i = from; i < from + count; i++) await log.append([sampleDraft(`e-${i % 3}`, Math.floor(i / 3))]);
  await log.close();
}

async function follow(t: TestContext, logDir: string, storeDir: string): Promise<{ follower: EvidenceFollower; seen: number[] }> {
  const reader = await openFileLogReader(logDir);
  t.after(() => reader.close());
  const seen: number[] = [];
  const follower = await EvidenceFollower.open(reader, storeDir, { syncEveryLeaves: 7, onLeaf: (index) => seen.push(index) });
  await follower.run();
  return { follower, seen };
}

void describe('EvidenceFollower on a file log', () => {
  void it('builds the tree of the log and resumes from the stored size after a restart', async (t) => {
    const root = await tempDir(t);
    const logDir = join(root, 'log');
    const storeDir = join(root, 'merkle');
    await appendEvents(logDir, 0, 30);
    const first = await follow(t, logDir, storeDir);
    assert.deepEqual(first.follower.resume, { size: 0 });
    const want30 = await expectedRoot(logDir);
    assert.equal(first.follower.size, 30);
    assert.deepEqual(first.follower.store.root(), want30.root);
    await first.follower.close();

    await appendEvents(logDir, 30, 12);
    const second = await follow(t, logDir, storeDir);
    assert.deepEqual(second.follower.resume, { size: 30 });
    assert.deepEqual(second.seen, Array.from({ length: 12 }, (_, i) => 30 + i), 'only the new records are read and hashed');
    const want42 = await expectedRoot(logDir);
    assert.deepEqual(second.follower.store.root(), want42.root);
    assert.deepEqual(await second.follower.store.rootAt(30), want30.root, 'the past root is unchanged');
    await second.follower.close();
  });

  void it('rebuilds a store whose cursor is missing, and refuses a log that no longer holds the cursor', async (t) => {
    const root = await tempDir(t);
    const logDir = join(root, 'log');
    const storeDir = join(root, 'merkle');
    await appendEvents(logDir, 0, 10);
    await (await follow(t, logDir, storeDir)).follower.close();
    await rm(join(storeDir, 'CURSOR'));
    const rebuilt = await follow(t, logDir, storeDir);
    assert.match(rebuilt.follower.resume.rebuilt ?? '', /holds 10 leaves but no cursor/);
    assert.equal(rebuilt.seen.length, 10);
    assert.deepEqual(rebuilt.follower.store.root(), (await expectedRoot(logDir)).root);
    await rebuilt.follower.close();

    // The log replaced by a different one: the stored cursor names a record it does not hold.
    await rm(logDir, { recursive: true });
    await appendEvents(logDir, 100, 12);
    const reader = await openFileLogReader(logDir);
    t.after(() => reader.close());
    const follower = await EvidenceFollower.open(reader, storeDir);
    await assert.rejects(follower.run(), { code: 'ATTEST_CURSOR_INVALID' });
    await follower.store.close();
  });

  void it('follows appends as the writer makes them durable', async (t) => {
    const root = await tempDir(t);
    const logDir = join(root, 'log');
    const log = await openFileLog({ dir: logDir });
    t.after(() => log.close());
    await log.append([sampleDraft('f-0', 0)]);
    const reader = await openFileLogReader(logDir);
    t.after(() => reader.close());
    const reached = Promise.withResolvers<void>();
    const follower = await EvidenceFollower.open(reader, join(root, 'merkle'), { onLeaf: (index) => { if (index === 4) reached.resolve(); } });
    const controller = new AbortController();
    const running = follower.run({ follow: true, signal: controller.signal });
    for (let i = 1; i < 5; i++) await log.append([sampleDraft('f-0', i)]);
    const timer = setTimeout(() => reached.reject(new Error('the follower did not reach leaf 4 within 10 s')), 10_000);
    await reached.promise;
    clearTimeout(timer);
    controller.abort();
    await running;
    assert.equal(follower.size, 5);
    assert.deepEqual(follower.store.root(), (await expectedRoot(logDir)).root);
    await follower.close();
  });
});
