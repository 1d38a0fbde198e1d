import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCheckpoint, openCheckpoint, parseCheckpoint, signCheckpoint } from './checkpoint.ts';
import type { Checkpoint, CheckpointTrust } from './checkpoint.ts';
import { CheckpointError, NoteError, ProofError } from './errors.ts';
import type { CheckpointFailure, NoteFailure } from './errors.ts';
import { emptyRoot, hashLeaf } from './hash.ts';
import { MemoryTree } from './memory-tree.ts';
import { generateNoteKey, parseSignerKey, parseVerifierKey } from './note-keys.ts';
import { C2SP, GO_SUMDB, GO_TLOG_TREE } from './note-vectors.ts';
import { openNote } from './signed-note.ts';
import { verifyCheckpointChain, verifyInclusionInCheckpoint } from './offline-verifier.ts';
import { verifyConsistency } from './verify-proof.ts';

const rejectsWith = (reason: CheckpointFailure, line?: number, pattern?: RegExp) => (error: unknown) =>
  error instanceof CheckpointError && error.code === 'ATTEST_CHECKPOINT_INVALID' && error.reason === reason && (line === undefined || error.line === line) && (pattern === undefined || pattern.test(error.message));
const noteRejects = (reason: NoteFailure) => (error: unknown) => error instanceof NoteError && error.reason === reason;
const b64 = (text: string): Buffer => Buffer.from(text, 'base64');

void describe('checkpoints (C2SP tlog-checkpoint; golang.org/x/mod and C2SP vectors)', () => {
  void it('formats and parses the published tree note: origin, decimal size, base64 root (golang.org/x/mod sumdb/tlog TestFormatTree/TestParseTree)', () => {
    const checkpoint: Checkpoint = { origin: 'go.sum database tree', size: GO_TLOG_TREE.size, root: hashLeaf(Buffer.from(GO_TLOG_TREE.rootLeaf)), extensions: [] };
    assert.equal(formatCheckpoint(checkpoint), GO_TLOG_TREE.text);
    assert.deepEqual(parseCheckpoint(GO_TLOG_TREE.text), checkpoint);
    assert.deepEqual(parseCheckpoint(`${GO_TLOG_TREE.text}JOE\n`).extensions, ['JOE'], 'lines after the root are extension lines');
    assert.throws(() => parseCheckpoint(`${GO_TLOG_TREE.text}JOE`), rejectsWith('unterminated-line', 4));
  });

  void it('refuses the published bad tree notes, each for its own reason', () => {
    const [wrongOrigin, hexSize, badRoot] = GO_TLOG_TREE.bad;
    assert.equal(parseCheckpoint(wrongOrigin).origin, 'not-go.sum database tree');
    const key = parseSignerKey(GO_SUMDB.signerKey);
    assert.throws(() => openCheckpoint(signCheckpoint(parseCheckpoint(wrongOrigin), key), { origin: GO_SUMDB.origin, verifiers: [key.verifier] }), rejectsWith('origin-mismatch', 1, /"not-go.sum database tree", not "go.sum database tree"/));
    assert.throws(() => parseCheckpoint(hexSize), rejectsWith('size-not-decimal', 2, /"0xabcdef"/));
    assert.throws(() => parseCheckpoint(badRoot), rejectsWith('root-not-base64', 3));
  });

  void it('parses the C2SP example checkpoint; without its key it cannot be opened (unknown key)', () => {
    const text = C2SP.checkpoint.slice(0, C2SP.checkpoint.lastIndexOf('\n\n') + 1);
    const parsed = parseCheckpoint(text);
    assert.deepEqual([parsed.origin, parsed.size, parsed.root.toString('base64'), parsed.extensions], ['example.com/behind-the-sofa', 20852163, C2SP.checkpointRoot, []]);
    assert.throws(() => openCheckpoint(C2SP.checkpoint, { origin: 'example.com/behind-the-sofa', verifiers: [generateNoteKey('example.com/behind-the-sofa').signer.verifier] }), noteRejects('unknown-key'));
  });

  void it("opens the Go checksum database's signed tree heads, and signs them to the same bytes", () => {
    const trust: CheckpointTrust = { origin: GO_SUMDB.origin, verifiers: [parseVerifierKey(GO_SUMDB.verifierKey)] };
    const opened = openCheckpoint(GO_SUMDB.newTree, trust);
    assert.equal(opened.checkpoint.size, 6);
    assert.equal(opened.checkpoint.root.toString('base64'), 'wc4SkQt52o5W2nQ8To2ARs+mWuUJjss+sdleoiqxMmM=');
    assert.deepEqual(opened.note.verified.map((s) => s.name), ['localhost.localdev/sumdb']);
    const signer = parseSignerKey(GO_SUMDB.signerKey);
    assert.equal(signCheckpoint(opened.checkpoint, signer), GO_SUMDB.newTree);
    assert.equal(signCheckpoint(openCheckpoint(GO_SUMDB.oldTree, trust).checkpoint, signer), GO_SUMDB.oldTree);
  });

  void it('refuses each malformed checkpoint text with its reason and line', () => {
    const root = emptyRoot().toString('base64');
    const cases: readonly [string, CheckpointFailure, number | undefined][] = [
      [`log\n5\n`, 'too-few-lines', undefined],
      [`\n5\n${root}\n`, 'empty-origin', 1],
      [`log\n05\n${root}\n`, 'size-not-decimal', 2],
      [`log\n-1\n${root}\n`, 'size-not-decimal', 2],
      [`log\n\n${root}\n`, 'size-not-decimal', 2],
      [`log\n1e3\n${root}\n`, 'size-not-decimal', 2],
      [`log\n 5\n${root}\n`, 'size-not-decimal', 2],
      [`log\n9007199254740992\n${root}\n`, 'size-too-large', 2],
      [`log\n5\n${root.slice(0, -1)}\n`, 'root-not-base64', 3],
      [`log\n5\n${root.replace('+', '-')}\n`, 'root-not-base64', 3],
      [`log\n5\n${Buffer.alloc(31).toString('base64')}\n`, 'root-wrong-length', 3],
      [`log\n5\n${root}\nextension\n\n`, 'empty-extension-line', 5],
      [`log\n5\n${root}`, 'unterminated-line', 3],
    ];
    for (const [text, reason, line] of cases) assert.throws(() => parseCheckpoint(text), rejectsWith(reason, line), JSON.stringify(text));
    assert.equal(parseCheckpoint(`log\n9007199254740991\n${root}\n`).size, Number.MAX_SAFE_INTEGER);
    assert.throws(() => formatCheckpoint({ origin: 'a\nb', size: 1, root: emptyRoot(), extensions: [] }), rejectsWith('empty-origin'));
    assert.throws(() => formatCheckpoint({ origin: 'a', size: -1, root: emptyRoot(), extensions: [] }), rejectsWith('size-too-large'));
    assert.throws(() => formatCheckpoint({ origin: 'a', size: 1, root: Buffer.alloc(3), extensions: [] }), rejectsWith('root-wrong-length'));
    assert.throws(() => formatCheckpoint({ origin: 'a', size: 1, root: emptyRoot(), extensions: [''] }), rejectsWith('empty-extension-line'));
  });
});

void describe('the offline verifier: checkpoint chains and inclusion in a checkpoint', () => {
  const origin = 'example.com/attest/test-log';
  const key = generateNoteKey(origin);
  const trust: CheckpointTrust = { origin, verifiers: [key.signer.verifier] };
  const tree = new MemoryTree();
  for (let i = 0; i < 100; i++) tree.append(Buffer.from(`event ${i}`));
  const checkpointAt = (size: number, signer = key.signer, log = origin): string => signCheckpoint({ origin: log, size, root: tree.rootAt(size), extensions: [] }, signer);

  void it('accepts a larger checkpoint that consistently extends the previous one, and one of equal size and root; returns the newer', () => {
    const next = verifyCheckpointChain(checkpointAt(10), checkpointAt(50), tree.consistencyProof(10, 50), trust);
    assert.equal(next.checkpoint.size, 50);
    assert.equal(verifyCheckpointChain(next.checkpoint, checkpointAt(100), tree.consistencyProof(50, 100), trust).checkpoint.size, 100, 'a kept Checkpoint object as the previous one');
    assert.equal(verifyCheckpointChain(checkpointAt(50), checkpointAt(50), [], trust).checkpoint.size, 50);
    assert.equal(verifyCheckpointChain(checkpointAt(0), checkpointAt(7), [], trust).checkpoint.size, 7, 'every tree extends the empty one');
  });

  void it('refuses a checkpoint smaller than one seen before (size-regressed), even with a valid signature', () => {
    assert.throws(() => verifyCheckpointChain(checkpointAt(100), checkpointAt(90), [], trust), rejectsWith('size-regressed', undefined, /size 90 is smaller than one seen before \(size 100\)/));
  });

  void it('refuses two checkpoints of one size with different roots (fork), and a log rewritten after a point (inconsistent)', () => {
    // The log cut back to 90 events and grown again with other ones: a rewritten tail.
    const forked = new MemoryTree();
    for (let i = 0; i < 120; i++) forked.append(Buffer.from(i < 90 ? `event ${i}` : `forged ${i}`));
    const forkedAt = (size: number) => signCheckpoint({ origin, size, root: forked.rootAt(size), extensions: [] }, key.signer);
    assert.throws(() => verifyCheckpointChain(checkpointAt(100), forkedAt(100), [], trust), rejectsWith('fork', undefined, /two checkpoints of size 100 with different roots/));
    assert.throws(() => verifyCheckpointChain(checkpointAt(100), forkedAt(120), forked.consistencyProof(100, 120), trust), (error: unknown) => rejectsWith('inconsistent')(error) && (error as Error).cause instanceof ProofError);
    // Up to the fork point the rewritten log is consistent with the old one.
    verifyCheckpointChain(checkpointAt(90), forkedAt(120), forked.consistencyProof(90, 120), trust);
    assert.throws(() => verifyCheckpointChain(checkpointAt(50), checkpointAt(100), tree.consistencyProof(40, 100), trust), rejectsWith('inconsistent', undefined, /wrong-proof-length|root-mismatch/), 'a proof from the wrong size');
    assert.throws(() => verifyCheckpointChain(checkpointAt(50), checkpointAt(50), [tree.root()], trust), rejectsWith('inconsistent'));
  });

  void it("catches the fork in the Go checksum database's published security report (old head of size 5, new of 6)", () => {
    const sumdb: CheckpointTrust = { origin: GO_SUMDB.origin, verifiers: [parseVerifierKey(GO_SUMDB.verifierKey)] };
    const proof = GO_SUMDB.proof5to6.map(b64);
    assert.throws(() => verifyCheckpointChain(GO_SUMDB.oldTree, GO_SUMDB.newTree, proof, sumdb), (error: unknown) => rejectsWith('inconsistent')(error) && ((error as Error).cause as ProofError).reason === 'first-root-mismatch');
    const newRoot = openCheckpoint(GO_SUMDB.newTree, sumdb).checkpoint.root;
    verifyConsistency(5, 6, b64(GO_SUMDB.honestRootAt5), newRoot, proof);
    verifyCheckpointChain({ origin: GO_SUMDB.origin, size: 5, root: b64(GO_SUMDB.honestRootAt5), extensions: [] }, GO_SUMDB.newTree, proof, sumdb);
  });

  void it('checks signatures and origin of both checkpoints: unknown key, wrong origin, bad signature, malformed note, empty-tree root', () => {
    const stranger = generateNoteKey(origin);
    assert.throws(() => verifyCheckpointChain(checkpointAt(10), checkpointAt(50, stranger.signer), tree.consistencyProof(10, 50), trust), noteRejects('unknown-key'));
    assert.throws(() => verifyCheckpointChain(checkpointAt(10, stranger.signer), checkpointAt(50), tree.consistencyProof(10, 50), trust), noteRejects('unknown-key'));
    const otherLog = generateNoteKey('example.com/other');
    assert.throws(() => verifyCheckpointChain(checkpointAt(10), checkpointAt(50, otherLog.signer, 'example.com/other'), tree.consistencyProof(10, 50), { origin, verifiers: [key.signer.verifier, otherLog.signer.verifier] }), rejectsWith('origin-mismatch', 1));
    const tampered = checkpointAt(50).replace('\n50\n', '\n51\n');
    assert.throws(() => verifyCheckpointChain(checkpointAt(10), tampered, tree.consistencyProof(10, 50), trust), noteRejects('bad-signature'));
    assert.throws(() => verifyCheckpointChain(checkpointAt(10), checkpointAt(50).replace('\n\n', '\n'), [], trust), noteRejects('missing-blank-line'));
    assert.throws(() => verifyCheckpointChain(checkpointAt(10), `${checkpointAt(50)}garbage\n`, [], trust), noteRejects('malformed-signature-line'));
    const badEmpty = signCheckpoint({ origin, size: 0, root: tree.root(), extensions: [] }, key.signer);
    assert.throws(() => verifyCheckpointChain(badEmpty, checkpointAt(5), [], trust), rejectsWith('bad-empty-root'));
    assert.throws(() => verifyCheckpointChain(checkpointAt(0), checkpointAt(5), [tree.root()], trust), rejectsWith('inconsistent'));
  });

  void it('accepts key rotation: a checkpoint signed by the new key, both keys trusted; a cosigned checkpoint verifies by either known key', () => {
    const rotated = generateNoteKey(origin);
    const both: CheckpointTrust = { origin, verifiers: [key.signer.verifier, rotated.signer.verifier] };
    verifyCheckpointChain(checkpointAt(10), checkpointAt(50, rotated.signer), tree.consistencyProof(10, 50), both);
    const witness = generateNoteKey('witness.example/w1');
    const cosigned = signCheckpoint({ origin, size: 60, root: tree.rootAt(60), extensions: [] }, [key.signer, witness.signer]);
    assert.equal(openNote(cosigned, [witness.signer.verifier]).verified.length, 1);
    assert.deepEqual(openCheckpoint(cosigned, trust).note.unverified.map((s) => s.name), ['witness.example/w1']);
  });

  void it('proves a leaf in a checkpoint, taking size and root from the verified checkpoint only', () => {
    const checkpoint = checkpointAt(64);
    const leaf = hashLeaf(Buffer.from('event 17'));
    assert.equal(verifyInclusionInCheckpoint(leaf, 17, checkpoint, tree.inclusionProof(17, 64), trust).checkpoint.size, 64);
    assert.throws(() => verifyInclusionInCheckpoint(leaf, 18, checkpoint, tree.inclusionProof(17, 64), trust), (error: unknown) => rejectsWith('not-included', undefined, /leaf 18 is not proven in the checkpoint of size 64/)(error) && (error as Error).cause instanceof ProofError);
    assert.throws(() => verifyInclusionInCheckpoint(hashLeaf(Buffer.from('event 99')), 17, checkpoint, tree.inclusionProof(17, 64), trust), rejectsWith('not-included'));
    assert.throws(() => verifyInclusionInCheckpoint(leaf, 70, checkpoint, tree.inclusionProof(70, 100), trust), rejectsWith('not-included', undefined, /index-out-of-range/));
    assert.throws(() => verifyInclusionInCheckpoint(leaf, 17, checkpoint, tree.inclusionProof(17, 100), trust), rejectsWith('not-included'), 'a proof for another size');
    assert.throws(() => verifyInclusionInCheckpoint(leaf, 17, checkpointAt(64, generateNoteKey(origin).signer), tree.inclusionProof(17, 64), trust), noteRejects('unknown-key'));
  });
});
