import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { inspect } from 'node:util';
import { NoteError } from './errors.ts';
import type { NoteFailure } from './errors.ts';
import { NoteSigner, formatSignerKey, formatVerifierKey, generateNoteKey, noteKeyId, parseSignerKey, parseVerifierKey } from './note-keys.ts';
import { C2SP, GO_NOTE } from './note-vectors.ts';
import { MAX_NOTE_SIGNATURES, openNote, signNote } from './signed-note.ts';

const rejectsWith = (reason: NoteFailure, line?: number, pattern?: RegExp) => (error: unknown) =>
  error instanceof NoteError && error.code === 'ATTEST_NOTE_INVALID' && error.reason === reason && (line === undefined || error.line === line) && (pattern === undefined || pattern.test(error.message));

const peter = parseVerifierKey(GO_NOTE.peterVerifierKey);
const enoch = parseVerifierKey(GO_NOTE.enochVerifierKey);
const { text, peterSignature, enochSignature } = GO_NOTE;

void describe('signed-note keys (golang.org/x/mod sumdb/note vectors)', () => {
  void it('parses the published verifier and signer keys: name, key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)[:4], the same public key', () => {
    assert.equal(peter.name, 'PeterNeumann');
    assert.equal(peter.keyId, 0xc74f20a3);
    assert.equal(peter.key, GO_NOTE.peterVerifierKey, 'formats back to the same text');
    assert.equal(noteKeyId('PeterNeumann', peter.publicKey), 0xc74f20a3);
    const signer = parseSignerKey(GO_NOTE.peterSignerKey);
    assert.equal(signer.name, 'PeterNeumann');
    assert.equal(signer.keyId, 0xc74f20a3);
    assert.equal(signer.verifier.key, GO_NOTE.peterVerifierKey, 'the public key derived from the seed is the published one');
    assert.equal(enoch.keyId, 0xaf0cfe78);
    assert.equal(parseVerifierKey(C2SP.exampleVerifierKey).keyId, 0x530d903a);
  });

  void it('refuses every substring and every one-byte change of the published verifier key, and the two published bad keys', () => {
    const key = GO_NOTE.peterVerifierKey;
    let refused = 0;
    for (let i = 0; i <= key.length; i++) {
      for (let j = i + 1; j <= key.length; j++) {
        if (i === 0 && j === key.length) continue;
        assert.throws(() => parseVerifierKey(key.slice(i, j)), NoteError, key.slice(i, j));
        refused++;
      }
    }
    for (let i = 0; i < key.length; i++) {
      const mangled = key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1);
      assert.throws(() => parseVerifierKey(mangled), NoteError, mangled);
      refused++;
    }
    assert.throws(() => parseVerifierKey(GO_NOTE.badVerifierKeys[0]), rejectsWith('malformed-key', undefined, /32|base64/));
    assert.throws(() => parseVerifierKey(GO_NOTE.badVerifierKeys[1]), rejectsWith('malformed-key', undefined, /signature type 0x65/));
    assert.ok(refused > 2000);
  });

  void it('refuses every substring and every one-byte change of the published signer key, without printing the key', () => {
    const key = GO_NOTE.peterSignerKey;
    // The key data (after PRIVATE+KEY+<name>+<id>+; base64 may itself contain '+'): no 8 characters of it in any message.
    const secret = key.split('+').slice(4).join('+');
    const windows = Array.from({ length: secret.length - 7 }, (_, i) => secret.slice(i, i + 8));
    const quiet = (error: unknown) => error instanceof NoteError && windows.every((window) => !error.message.includes(window));
    for (let i = 0; i <= key.length; i++) {
      for (let j = i + 1; j <= key.length; j += 3) {
        if (i === 0 && j === key.length) continue;
        assert.throws(() => parseSignerKey(key.slice(i, j)), quiet, key.slice(i, j));
      }
    }
    for (let i = 0; i < key.length; i++) {
      const mangled = key.slice(0, i) + String.fromCharCode(key.charCodeAt(i) + 1) + key.slice(i + 1);
      assert.throws(() => parseSignerKey(mangled), quiet, mangled);
    }
    assert.throws(() => parseSignerKey(GO_NOTE.peterSignerKey.replace('c74f20a3', 'c74f20a4')), rejectsWith('key-id-mismatch'));
  });

  void it('generates key pairs that round-trip through both text forms; the seed never shows in the signer object', () => {
    const generated = generateNoteKey('example.com/attest/test');
    assert.match(generated.signerKey, /^PRIVATE\+KEY\+example\.com\/attest\/test\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$/);
    assert.match(generated.verifierKey, /^example\.com\/attest\/test\+[0-9a-f]{8}\+A[A-Za-z0-9+/]{43}$/);
    const signer = parseSignerKey(generated.signerKey);
    assert.equal(signer.verifier.key, generated.verifierKey);
    assert.equal(parseVerifierKey(generated.verifierKey).keyId, generated.signer.keyId);
    const seed = Buffer.from(generated.signerKey.split('+').slice(4).join('+'), 'base64').subarray(1);
    assert.equal(formatSignerKey('example.com/attest/test', seed), generated.signerKey);
    assert.equal(formatVerifierKey('example.com/attest/test', signer.verifier.publicKey), generated.verifierKey);
    const shown = `${JSON.stringify(signer)} ${String(Object.keys(signer))} ${inspect(signer, { depth: 5, showHidden: true })}`;
    assert.ok(!shown.includes(seed.toString('base64')) && !shown.includes(seed.toString('hex')), shown);
    assert.throws(() => generateNoteKey('bad name'), rejectsWith('malformed-key'));
    assert.throws(() => generateNoteKey('a+b'), rejectsWith('malformed-key'));
    assert.throws(() => generateNoteKey(''), rejectsWith('malformed-key'));
    assert.throws(() => new NoteSigner('x', Buffer.alloc(31)), rejectsWith('malformed-key'));
  });
});

void describe('signed notes (golang.org/x/mod sumdb/note and C2SP vectors)', () => {
  void it('signs the published text to exactly the published note (Ed25519 is deterministic)', () => {
    assert.equal(signNote(text, parseSignerKey(GO_NOTE.peterSignerKey)), `${text}\n${peterSignature}`);
  });

  void it('opens the published notes: one known key of two, both known, the C2SP example', () => {
    const one = openNote(`${text}\n${peterSignature}${enochSignature}`, [peter]);
    assert.equal(one.text, text);
    assert.deepEqual(one.verified.map((s) => [s.name, s.keyId]), [['PeterNeumann', 0xc74f20a3]]);
    assert.deepEqual(one.unverified.map((s) => [s.name, s.keyId]), [['EnochRoot', 0xaf0cfe78]]);
    const both = openNote(`${text}\n${peterSignature}${enochSignature}`, [peter, enoch]);
    assert.deepEqual(both.verified.map((s) => s.name), ['PeterNeumann', 'EnochRoot']);
    assert.equal(both.unverified.length, 0);
    const example = openNote(C2SP.exampleNote, [parseVerifierKey(C2SP.exampleVerifierKey)]);
    assert.equal(example.text, 'This is an example message.\n');
    const bytes = openNote(Buffer.from(`${text}\n${peterSignature}`, 'utf8'), [peter]);
    assert.equal(bytes.text, text, 'bytes as well as strings');
  });

  void it('round-trips notes signed here with several keys, text with empty lines and non-ASCII, duplicates dropped', () => {
    const a = generateNoteKey('a.example/log');
    const b = generateNoteKey('b.example/witness');
    const body = 'Zeile eins — ü\n\nafter an empty line\n';
    const note = signNote(body, [a.signer, b.signer]);
    const opened = openNote(note, [a.signer.verifier, b.signer.verifier]);
    assert.equal(opened.text, body);
    assert.equal(opened.verified.length, 2);
    const repeated = note + note.slice(note.lastIndexOf('\u2014'));
    assert.equal(openNote(repeated, [a.signer.verifier, b.signer.verifier]).verified.length, 2);
    assert.equal(openNote(note, [b.signer.verifier]).unverified.length, 1);
  });

  void it('refuses a note with no signature by a known key, naming who signed it and which keys are known', () => {
    assert.throws(() => openNote(`${text}\n${peterSignature}${enochSignature}`, []), rejectsWith('unknown-key', undefined, /signed by PeterNeumann\+c74f20a3, EnochRoot\+af0cfe78; no keys are known/));
    assert.throws(() => openNote(`${text}\n${enochSignature}`, [peter]), rejectsWith('unknown-key', undefined, /known: PeterNeumann\+c74f20a3/));
    // Same name, other key id; other name, same key id: both unknown (the spec: ignore, then refuse for want of a known one).
    assert.throws(() => openNote(`${text}\n${peterSignature.replace('PeterNeumann', 'PeterNeuman')}`, [peter]), rejectsWith('unknown-key'));
  });

  void it('refuses a bad signature by a known key, even when another known key verifies', () => {
    const altered = peterSignature.slice(0, 60) + 'ABCD' + peterSignature.slice(60);
    assert.throws(() => openNote(`${text}\n${altered}`, [peter]), rejectsWith('bad-signature', 4, /PeterNeumann\+c74f20a3 does not verify/));
    // One signature byte changed (beyond the key id, which would make the key unknown instead).
    const enochAltered = `${enochSignature.slice(0, 40)}${enochSignature[40] === 'A' ? 'B' : 'A'}${enochSignature.slice(41)}`;
    assert.throws(() => openNote(`${text}\n${peterSignature}${enochAltered}`, [peter, enoch]), rejectsWith('bad-signature', 5, /EnochRoot/));
    assert.equal(openNote(`${text}\n${peterSignature}${enochAltered}`, [peter]).unverified.length, 1, 'by a key not known, it is ignored');
    assert.throws(() => openNote(`${text.replace('problem', 'Problem')}\n${peterSignature}`, [peter]), rejectsWith('bad-signature', 4), 'the text was altered');
    assert.throws(() => openNote(`${text}\n${enochSignature}`, [enoch, peter, enoch]), rejectsWith('ambiguous-key', 4, /2 known keys are named EnochRoot\+af0cfe78/));
  });

  void it('refuses malformed notes with the reason and the line (the golang.org/x/mod bad messages and more)', () => {
    const cases: readonly [string | Uint8Array, NoteFailure, number | undefined][] = [
      [text, 'missing-blank-line', undefined],
      [`${text}\n`, 'no-signatures', 4],
      [`${text}\n${peterSignature.slice(0, -1)}`, 'unterminated-line', 4],
      [`\x01${text}\n${peterSignature}`, 'control-character', 1],
      [Buffer.concat([Buffer.from([0xff]), Buffer.from(`${text}\n${peterSignature}`)]), 'not-utf8', undefined],
      [`${text}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`, 'bad-base64', 4],
      [`${text}\n\u2014 Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=`, 'unterminated-line', 4],
      [`${text}\n${peterSignature}Unexpected line.\n`, 'malformed-signature-line', 5],
      [`${text}\n${peterSignature}trailing garbage`, 'unterminated-line', 5],
      [`${text}\n- PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`, 'malformed-signature-line', 4],
      [`${text}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM\n`, 'bad-base64', 4],
      [`${text}\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n`.replace('x08go/', 'x08go_'), 'bad-base64', 4],
      [`${text}\n\u2014 PeterNeumann x08g\n`, 'malformed-signature-line', 4],
      [`${text}\n\u2014 PeterNeumann\n`, 'malformed-signature-line', 4],
      [`${text}\n${peterSignature.repeat(MAX_NOTE_SIGNATURES + 1)}`, 'too-many-signatures', 4 + MAX_NOTE_SIGNATURES],
      [`${text.replace('\n', '\t\n')}\n${peterSignature}`, 'control-character', 1],
      [`${text}\n${peterSignature}`.replace('then', '\ud800then'), 'not-utf8', undefined],
    ];
    for (const [note, reason, line] of cases) {
      assert.throws(() => openNote(note, [peter]), rejectsWith(reason, line), `${reason}: ${JSON.stringify(String(note).slice(-40))}`);
    }
    // Up to the bound, many signatures open.
    assert.equal(openNote(`${text}\n${peterSignature.repeat(MAX_NOTE_SIGNATURES)}`, [peter]).verified.length, 1);
  });

  void it('refuses to sign what cannot be a note text', () => {
    const signer = parseSignerKey(GO_NOTE.peterSignerKey);
    assert.throws(() => signNote('abc', signer), rejectsWith('unterminated-line', 1));
    assert.throws(() => signNote('', signer), rejectsWith('empty-text'));
    assert.throws(() => signNote('a\x00b\n', signer), rejectsWith('control-character', 1));
    assert.throws(() => signNote(text, []), rejectsWith('no-signatures'));
  });
});
