/**
 * The checkpointer and the checkpoint files on a real MerkleStore in a temp dir: what it publishes
 * and records, the refusal to sign a tree that does not extend the latest checkpoint (the fork
 * guard), and readLatestCheckpoint's refusals at start (untrusted key, other origin, damage) and
 * its fallback to the numbered files.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { checkpointFile, generateNoteKey, hashLeaf, MerkleStore, openCheckpoint, signCheckpoint } from '#eventlog';
import type { GeneratedNoteKey, LogEntry } from '#eventlog';
import { ConfigError, SYSTEM_PRINCIPAL } from '#schemas';
import type { EventDraft } from '#schemas';
import { createLogger } from '../logger.ts';
import { publishCheckpoint, readLatestCheckpoint } from './checkpoint-files.ts';
import type { PublishedCheckpoint } from './checkpoint-files.ts';
import type { CheckpointKeys } from './checkpoint-keys.ts';
import { Checkpointer } from './checkpointer.ts';

const ORIGIN = 'example.com/attest/unit';
const context = { tenant: SYSTEM_PRINCIPAL.tenant, stream: 'system-gw-1', actor: SYSTEM_PRINCIPAL };

function keysOf(signer: GeneratedNoteKey, ...previous: GeneratedNoteKey[]): CheckpointKeys {
  return { signer: signer.signer, trust: { origin: ORIGIN, verifiers: [signer.signer.verifier, ...previous.map((k) => k.signer.verifier)] }, source: { kind: 'signingKey' } };
}

/** A record the follower would hand over: only its type and stream matter to the checkpointer. */
function entryOf(type: string, stream = 'session-1'): LogEntry {
  return { event: { type, stream }, position: { backend: 'file', index: 0 } } as unknown as LogEntry;
}

async function storeWith(dir: string, leaves: readonly string[]): Promise<MerkleStore> {
  await mkdir(dir, { recursive: true });
  const store = await MerkleStore.open(path.join(dir, 'merkle'));
  for (const leaf of leaves) store.appendLeafHash(hashLeaf(Buffer.from(leaf)));
  return store;
}

function checkpointerFor(store: MerkleStore, dir: string, keys: CheckpointKeys, latest: PublishedCheckpoint | undefined, recorded: EventDraft[][]): Checkpointer {
  return new Checkpointer({ store, keys, evidenceDir: dir, latest, everyEvents: 2, everySeconds: 3600, record: async (drafts) => void recorded.push([...drafts]), systemContext: context, instance: 'gw-1', logger: createLogger('silent') });
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-checkpointer-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ConfigError, String(error));
    return error.message;
  }
  assert.fail('accepted');
}

void describe('Checkpointer', () => {
  void it('publishes and records a checkpoint once enough other events grew the tree; a rotation goes in the same append', async (t) => {
    const dir = await tempDir(t);
    const old = generateNoteKey(ORIGIN);
    const key = generateNoteKey(ORIGIN);
    const store = await storeWith(dir, ['a', 'b', 'c']);
    const earlier = signCheckpoint({ origin: ORIGIN, size: 2, root: await store.rootAt(2), extensions: [] }, old.signer);
    await publishCheckpoint(dir, 2, earlier);
    const latest = await readLatestCheckpoint(dir, keysOf(key, old));
    assert.equal(latest?.signedBy.key, old.verifierKey);
    const recorded: EventDraft[][] = [];
    const checkpointer = checkpointerFor(store, dir, keysOf(key, old), latest, recorded);
    checkpointer.onLeaf(entryOf('CheckpointSigned', context.stream));
    checkpointer.onLeaf(entryOf('CheckpointSigned', context.stream));
    checkpointer.onLeaf(entryOf('RequestReceived'));
    await checkpointer.stop();
    // One event of growth is below everyEvents, but the stop signs it.
    assert.deepEqual(recorded.map((drafts) => drafts.map((d) => d.type)), [['CheckpointKeyRotated', 'CheckpointSigned']]);
    const [rotated, signed] = recorded[0] ?? [];
    assert.ok(rotated?.type === 'CheckpointKeyRotated' && signed?.type === 'CheckpointSigned');
    assert.equal(rotated.data.lastTreeSize, 2);
    assert.equal(rotated.data.previousKey.verifierKey, old.verifierKey);
    assert.equal(signed.data.treeSize, 3);
    assert.equal(signed.data.rootHash, store.root().toString('hex'));
    assert.equal(await readFile(checkpointFile(dir, 3), 'utf8'), signed.data.note);
    assert.equal(await readFile(path.join(dir, 'checkpoint'), 'utf8'), signed.data.note);
    assert.equal(openCheckpoint(signed.data.note, { origin: ORIGIN, verifiers: [key.signer.verifier] }).checkpoint.size, 3);
    assert.equal(checkpointer.latest?.note, signed.data.note);
    await store.close();
  });

  void it('signs nothing once the tree does not extend the latest checkpoint (the log was rewritten)', async (t) => {
    const dir = await tempDir(t);
    const key = generateNoteKey(ORIGIN);
    const other = await storeWith(path.join(dir, 'other'), ['a', 'b', 'X']);
    const forked = signCheckpoint({ origin: ORIGIN, size: 3, root: other.root(), extensions: [] }, key.signer);
    await other.close();
    await publishCheckpoint(dir, 3, forked);
    const store = await storeWith(dir, ['a', 'b', 'c', 'd', 'e']);
    const recorded: EventDraft[][] = [];
    const checkpointer = checkpointerFor(store, dir, keysOf(key), await readLatestCheckpoint(dir, keysOf(key)), recorded);
    for (let i = 0; i < 4; i++) checkpointer.onLeaf(entryOf('RequestReceived'));
    await checkpointer.stop();
    assert.deepEqual(recorded, []);
    assert.match(checkpointer.refused ?? '', /the tree's root at size 3 is .*, but the latest checkpoint of that size says .*: the log was rewritten or cut since, or the tree is damaged/);
    assert.deepEqual(await readdir(path.join(dir, 'checkpoints')), ['3.ckpt']);
    assert.equal(checkpointer.latest?.note, forked, 'the route keeps serving the last one signed');
    await store.close();
  });
});

void describe('readLatestCheckpoint', () => {
  void it('is undefined before any; takes the largest numbered file when `checkpoint` is lost', async (t) => {
    const dir = await tempDir(t);
    const key = generateNoteKey(ORIGIN);
    assert.equal(await readLatestCheckpoint(dir, keysOf(key)), undefined);
    for (const size of [9, 10, 100]) await publishCheckpoint(dir, size, signCheckpoint({ origin: ORIGIN, size, root: Buffer.alloc(32, size), extensions: [] }, key.signer));
    await rm(path.join(dir, 'checkpoint'));
    assert.equal((await readLatestCheckpoint(dir, keysOf(key)))?.checkpoint.size, 100);
  });

  void it('refuses a latest checkpoint by an untrusted key, of another origin, or damaged, naming what to do', async (t) => {
    const dir = await tempDir(t);
    const old = generateNoteKey(ORIGIN);
    const key = generateNoteKey(ORIGIN);
    const note = signCheckpoint({ origin: ORIGIN, size: 5, root: Buffer.alloc(32, 1), extensions: [] }, old.signer);
    await publishCheckpoint(dir, 5, note);
    assert.match(await refusal(readLatestCheckpoint(dir, keysOf(key))), /evidence\.previousVerifierKeys: the latest checkpoint .*checkpoint is not signed by a trusted key \(no signature is by a known key: signed by example\.com\/attest\/unit\+[0-9a-f]{8}; known: example\.com\/attest\/unit\+[0-9a-f]{8}\)\. The signing key changed: to rotate keys, add the verifier key that signed it/);
    assert.equal((await readLatestCheckpoint(dir, keysOf(key, old)))?.signedBy.key, old.verifierKey);
    const elsewhere = { ...keysOf(key, old), trust: { ...keysOf(key, old).trust, origin: 'example.com/attest/other' } };
    assert.match(await refusal(readLatestCheckpoint(dir, elsewhere)), /evidence\.origin: the latest checkpoint .*checkpoint is of log "example\.com\/attest\/unit", not "example\.com\/attest\/other"\. The origin names the log/);
    await writeFile(path.join(dir, 'checkpoint'), note.replace('\n5\n', '\n6\n'));
    assert.match(await refusal(readLatestCheckpoint(dir, keysOf(key, old))), /evidence\.dir: the latest checkpoint .*checkpoint does not open \(line \d+: the signature by .* does not verify: the note was altered or not signed by that key\): restore it from .*checkpoints\/, or remove it/);
  });
});
