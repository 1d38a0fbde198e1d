/**
 * Export and offline verification of evidence bundles on a real file log and its tree: a period's
 * bundle verifies with only its text; every kind of bad input is a precise BundleError, never a pass.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { eventHash } from '#schemas';
import { openFileLogReader } from '../file/file-reader.ts';
import { tempDir } from '../file/spec-support.ts';
import { readCheckpointFiles } from '../evidence/checkpoint-files.ts';
import { exportBundle } from '../evidence/export-bundle.ts';
import { BASE_TIME, ORIGIN, buildEvidence, materializeFile, sealedRecords } from '../evidence/spec-support.ts';
import type { Evidence } from '../evidence/spec-support.ts';
import { MerkleStoreReader, generateNoteKey, signCheckpoint } from '../merkle/index.ts';
import { BundleError } from './bundle-error.ts';
import type { EvidenceBundle } from './bundle-format.ts';
import { verifyBundle } from './verify-bundle.ts';

const at = (second: number): string => new Date(BASE_TIME + second * 1000).toISOString();

async function setUp(t: TestContext): Promise<{ logDir: string; evidence: Evidence }> {
  const logDir = join(await tempDir(t, 'attest-bundle-'), 'log');
  await materializeFile(logDir, await sealedRecords(t, 60));
  const evidence = await buildEvidence(t, () => openFileLogReader(logDir), [20, 40, 60]);
  return { logDir, evidence };
}

async function exported(logDir: string, evidence: Evidence, from: number, to: number, tenant?: string): Promise<EvidenceBundle> {
  const reader = await openFileLogReader(logDir);
  const tree = await MerkleStoreReader.open(evidence.dir);
  try {
    const checkpoints = await readCheckpointFiles(evidence.dir, evidence.trust);
    return await exportBundle({ reader, tree, checkpoints, origin: ORIGIN, verifierKeys: [evidence.key.verifierKey], from: at(from), to: at(to), ...(tenant !== undefined && { tenant }) });
  } finally {
    await tree.close();
    await reader.close();
  }
}

const refused = (reason: string, pattern: RegExp, where: Partial<BundleError['where']> = {}) => (error: unknown): boolean => {
  assert.ok(error instanceof BundleError, String(error));
  assert.equal(error.reason, reason, error.message);
  assert.match(error.message, pattern);
  for (const [key, value] of Object.entries(where)) assert.equal(error.where[key as keyof BundleError['where']], value, `${key} of ${error.message}`);
  return true;
};

type Mutable = { -readonly [K in keyof EvidenceBundle]: EvidenceBundle[K] };
const edit = (bundle: EvidenceBundle, change: (copy: Mutable & Record<string, unknown>) => void): string => {
  const copy = JSON.parse(JSON.stringify(bundle)) as Mutable & Record<string, unknown>;
  change(copy);
  return JSON.stringify(copy);
};

void describe('evidence bundles', () => {
  void it('a period scoped to a tenant: its events, the others as leaf hashes, proven in a signed checkpoint; verifies from the text alone', async (t) => {
    const { logDir, evidence } = await setUp(t);
    const bundle = await exported(logDir, evidence, 10, 35, 'acme');
    assert.deepEqual(bundle.range, { start: 10, end: 35 });
    assert.equal(bundle.leaves.filter((leaf) => 'withheld' in leaf).length, 5, 'one leaf in five is of tenant globex');
    assert.deepEqual(bundle.checkpoints.map((c) => Number(c.note.split('\n')[1])), [20, 40]);
    assert.equal(bundle.coverage.size, 40);
    assert.ok(bundle.coverage.consistency.length > 0);
    const report = verifyBundle(JSON.stringify(bundle));
    assert.equal(report.keysFrom, 'bundle');
    assert.deepEqual({ events: report.events, withheld: report.withheld, checkpoints: report.checkpoints, coveredBy: report.coveredBy }, { events: 20, withheld: 5, checkpoints: [20, 40], coveredBy: 40 });
    assert.equal(verifyBundle(JSON.stringify(bundle), { origin: ORIGIN, verifierKeys: [evidence.key.verifierKey] }).keysFrom, 'pinned');
    // Whole log, no tenant: start 0 (empty right edge), end at the last checkpoint.
    const whole = verifyBundle(JSON.stringify(await exported(logDir, evidence, -5, 100)));
    assert.deepEqual([whole.range.start, whole.range.end, whole.events, whole.coveredBy], [0, 60, 60, 60]);
  });

  void it('consecutive bundles: the next holds the checkpoint the previous ended on, with its root', async (t) => {
    const { logDir, evidence } = await setUp(t);
    const first = verifyBundle(JSON.stringify(await exported(logDir, evidence, 10, 25)));
    assert.equal(Number(first.latestCheckpoint.split('\n')[1]), 40);
    const next = JSON.stringify(await exported(logDir, evidence, 25, 50));
    assert.deepEqual(verifyBundle(next, { previous: first.latestCheckpoint }).checkpoints, [20, 40, 60]);
    const forged = signCheckpoint({ origin: ORIGIN, size: 40, root: Buffer.alloc(32, 1), extensions: [] }, evidence.key.signer);
    assert.throws(() => verifyBundle(next, { previous: forged }), refused('checkpoint', /size 40 has another root than the one kept from before: fork/, { checkpointSize: 40 }));
    const kept60 = signCheckpoint({ origin: ORIGIN, size: 60, root: Buffer.alloc(32, 1), extensions: [] }, evidence.key.signer);
    const earlierText = JSON.stringify(await exported(logDir, evidence, 10, 25));
    assert.throws(() => verifyBundle(earlierText, { previous: kept60 }), refused('checkpoint', /end at size 40, smaller than the one kept from before \(size 60\): size-regressed/));
    assert.throws(() => verifyBundle(next, { previous: signCheckpoint({ origin: ORIGIN, size: 40, root: Buffer.alloc(32, 1), extensions: [] }, generateNoteKey(ORIGIN).signer) }), refused('checkpoint', /kept from before is refused: unknown-key/));
  });

  void it('refuses to export a period no checkpoint covers yet', async (t) => {
    const { logDir, evidence } = await setUp(t);
    const { rm } = await import('node:fs/promises');
    await rm(join(evidence.dir, 'checkpoints', '60.ckpt'));
    await assert.rejects(exported(logDir, evidence, 30, 50), /at leaf 40 is in the period, but the latest checkpoint covers 40 leaves/);
    // A checkpoint file signed by a key the log's trust does not hold, or named for another size: refused by name.
    const { writeFile } = await import('node:fs/promises');
    const stranger = generateNoteKey(ORIGIN);
    await writeFile(join(evidence.dir, 'checkpoints', '50.ckpt'), signCheckpoint({ origin: ORIGIN, size: 50, root: Buffer.alloc(32), extensions: [] }, stranger.signer));
    await assert.rejects(readCheckpointFiles(evidence.dir, evidence.trust), /the checkpoint .*50\.ckpt is refused: unknown-key/);
    await writeFile(join(evidence.dir, 'checkpoints', '50.ckpt'), signCheckpoint({ origin: ORIGIN, size: 51, root: Buffer.alloc(32), extensions: [] }, evidence.key.signer));
    await assert.rejects(readCheckpointFiles(evidence.dir, evidence.trust), /50\.ckpt is named for size 50 but signs size 51/);
  });

  void it('bad input is a precise error, never a pass', async (t) => {
    const { logDir, evidence } = await setUp(t);
    const bundle = await exported(logDir, evidence, 10, 35, 'acme');
    const text = JSON.stringify(bundle);
    assert.throws(() => verifyBundle(text.slice(0, text.length - 40)), refused('not-json', /not complete JSON/));
    assert.throws(() => verifyBundle(edit(bundle, (b) => { b.leaves = b.leaves.slice(0, -1); })), refused('malformed', /holds 24 entries, the range \[10, 35\) has 25/, { path: '$.leaves' }));
    assert.throws(() => verifyBundle(edit(bundle, (b) => { b.format = 'attest-evidence-bundle/v9' as never; })), refused('unsupported-format', /v9/));
    assert.throws(() => verifyBundle(text, { origin: 'example.com/other' }), refused('origin-mismatch', /not of the trusted origin "example.com\/other"/));
    const stranger = generateNoteKey(ORIGIN);
    assert.throws(() => verifyBundle(text, { verifierKeys: [stranger.verifierKey] }), refused('checkpoint', /checkpoint 1 of the bundle \(size 20\) is refused: unknown-key/, { checkpointSize: 20 }));
    assert.throws(() => verifyBundle(edit(bundle, (b) => { b.checkpoints = [{ note: b.checkpoints[1]?.note ?? '', consistency: [] }, { note: b.checkpoints[0]?.note ?? '', consistency: [] }]; })), refused('checkpoint', /\(size 20\) is refused: size-regressed/));
    assert.throws(() => verifyBundle(edit(bundle, (b) => { b.origin = 'example.com/forged'; })), refused('checkpoint', /origin-mismatch/));

    // Leaf 12 (index 2 of the bundle) altered: its own hash no longer matches.
    assert.throws(() => verifyBundle(edit(bundle, (b) => { ((b.leaves[2] as { event: Record<string, unknown> }).event)['occurredAt'] = at(99); })), refused('event-altered', /at leaf 12: its hash does not match/, { leafIndex: 12 }));
    // Altered and re-hashed (the attacker recomputes `hash`; the next event of its stream still links to the old one).
    assert.throws(() => verifyBundle(edit(bundle, (b) => {
      const event = (b.leaves[2] as { event: Record<string, unknown> }).event;
      event['occurredAt'] = at(99);
      event['hash'] = eventHash(event);
    })), refused('chain-broken', /at leaf 17: its prevHash is not the hash of seq 3 at leaf 12/, { leafIndex: 17 }));
    // A withheld leaf hash altered: the root of the checkpoint of size 20 no longer comes out.
    assert.throws(() => verifyBundle(edit(bundle, (b) => { (b.leaves[4] as { leafHash: string }).leafHash = Buffer.alloc(32, 7).toString('base64'); })), refused('root-mismatch', /do not give the root the checkpoint of size 20 signed: an event among leaves 10–19/, { checkpointSize: 20 }));
    // A leaf after the last checkpoint inside the range altered: the coverage proof fails.
    assert.throws(() => verifyBundle(edit(bundle, (b) => { (b.leaves[24] as { leafHash: string }).leafHash = Buffer.alloc(32, 7).toString('base64'); })), refused('not-covered', /not proven in the checkpoint of size 40/, { checkpointSize: 40 }));
    assert.throws(() => verifyBundle(edit(bundle, (b) => { b.rightEdge = [Buffer.alloc(31).toString('base64'), ...b.rightEdge.slice(1)]; })), refused('bad-hash', /rightEdge\[0\] is not the base64 of a 32-byte hash/));
    assert.throws(() => verifyBundle(edit(bundle, (b) => { b.checkpoints = []; })), refused('not-covered', /holds no checkpoint/));
  });
});
