/**
 * C2SP signed-note (https://c2sp.org/signed-note): a UTF-8 text ending in a newline, a blank line,
 * then one or more signature lines `— <key name> <base64(4-byte key id ‖ signature)>\n` (em dash
 * U+2014). No ASCII control character but the newline anywhere. The text is what is signed; it
 * ends at the last blank line of the note.
 *
 * Opening follows the spec's rules: signatures by unknown keys (name and key id not both known) are
 * ignored; every signature by a known key must verify, or the whole note is refused; at least one
 * must. Every refusal is a NoteError naming the reason and, where there is one, the line.
 */
import { NoteError } from './errors.ts';
import { isValidKeyName } from './note-keys.ts';
import type { NoteSigner, NoteVerifier } from './note-keys.ts';
import { decodeBase64 } from './strict-base64.ts';

/** Signatures a note may carry (golang.org/x/mod/sumdb/note's bound; the spec asks for at least 16). */
export const MAX_NOTE_SIGNATURES = 100;

const SIGNATURE_PREFIX = '\u2014 ';

export interface NoteSignature {
  readonly name: string;
  readonly keyId: number;
  /** The base64 of the line: key id ‖ signature. */
  readonly base64: string;
}

export interface OpenedNote {
  /** The signed text, final newline included. */
  readonly text: string;
  /** Signatures by known keys, all verified (one per line, duplicates dropped). */
  readonly verified: readonly NoteSignature[];
  /** Signatures by keys not known to the caller (ignored, as the spec requires). */
  readonly unverified: readonly NoteSignature[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeNote(note: string | Uint8Array): string {
  if (typeof note === 'string') {
    if (!note.isWellFormed()) throw new NoteError('not-utf8', 'the note is not valid UTF-8 (it has a lone surrogate)');
    return note;
  }
  try {
    return utf8.decode(note);
  } catch {
    throw new NoteError('not-utf8', 'the note is not valid UTF-8');
  }
}

/** Refuses ASCII control characters other than newline, naming the line. */
function checkCharacters(text: string, firstLine = 1): void {
  let line = firstLine;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === 0x0a) line++;
    else if (code < 0x20) throw new NoteError('control-character', `control character U+${code.toString(16).padStart(4, '0').toUpperCase()} (only newline is allowed)`, line);
  }
}

/** Checks that `text` can be a note's text: non-empty, newline-terminated, no control character. */
function checkText(text: string): void {
  if (!text.isWellFormed()) throw new NoteError('not-utf8', 'the note text is not valid UTF-8 (it has a lone surrogate)');
  if (text.length === 0) throw new NoteError('empty-text', 'the note text is empty');
  checkCharacters(text);
  if (!text.endsWith('\n')) throw new NoteError('unterminated-line', 'the note text must end with a newline', text.split('\n').length);
}

function signatureLine(signer: NoteSigner, text: string): string {
  const id = Buffer.alloc(4);
  id.writeUInt32BE(signer.keyId);
  return `${SIGNATURE_PREFIX}${signer.name} ${Buffer.concat([id, signer.sign(Buffer.from(text, 'utf8'))]).toString('base64')}\n`;
}

/** Signs `text` (non-empty, newline-terminated) with each signer: the note, ready to publish. */
export function signNote(text: string, signers: NoteSigner | readonly NoteSigner[]): string {
  checkText(text);
  const all: readonly NoteSigner[] = Array.isArray(signers) ? signers : [signers as NoteSigner];
  if (all.length === 0) throw new NoteError('no-signatures', 'a note needs at least one signer');
  if (all.length > MAX_NOTE_SIGNATURES) throw new NoteError('too-many-signatures', `a note carries at most ${MAX_NOTE_SIGNATURES} signatures, not ${all.length}`);
  return `${text}\n${all.map((signer) => signatureLine(signer, text)).join('')}`;
}

function parseSignatureLine(line: string, lineNumber: number): NoteSignature {
  if (!line.startsWith(SIGNATURE_PREFIX)) throw new NoteError('malformed-signature-line', `not a signature line (they start with "— ", an em dash and a space): ${JSON.stringify(line.slice(0, 60))}`, lineNumber);
  const rest = line.slice(SIGNATURE_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) throw new NoteError('malformed-signature-line', 'a signature line is "— <key name> <base64 signature>"', lineNumber);
  const name = rest.slice(0, space);
  const base64 = rest.slice(space + 1);
  if (!isValidKeyName(name)) throw new NoteError('malformed-signature-line', `invalid key name ${JSON.stringify(name)}`, lineNumber);
  const bytes = decodeBase64(base64);
  if (bytes === undefined) throw new NoteError('bad-base64', `the signature of ${name} is not canonical base64`, lineNumber);
  if (bytes.length < 5) throw new NoteError('malformed-signature-line', `the signature of ${name} has ${bytes.length} bytes: a 4-byte key id and a signature are needed`, lineNumber);
  return { name, keyId: bytes.readUInt32BE(0), base64 };
}

function label(name: string, keyId: number): string {
  return `${name}+${keyId.toString(16).padStart(8, '0')}`;
}

/**
 * Opens a signed note against the keys the caller trusts: returns its text and signatures, or
 * throws a NoteError (malformed, a known key's signature that does not verify, no signature by a
 * known key, two known keys with one name and key id).
 */
export function openNote(note: string | Uint8Array, verifiers: readonly NoteVerifier[]): OpenedNote {
  const message = decodeNote(note);
  checkCharacters(message);
  const split = message.lastIndexOf('\n\n');
  if (split < 0) throw new NoteError('missing-blank-line', 'no blank line separates the text from the signatures');
  const text = message.slice(0, split + 1);
  const signatures = message.slice(split + 2);
  // Line numbers: the text has one line per newline, then the blank line.
  const firstSignatureLine = text.split('\n').length + 1;
  if (signatures.length === 0) throw new NoteError('no-signatures', 'the note has no signature lines after its blank line', firstSignatureLine);
  const lines = signatures.split('\n');
  const last = lines.pop();
  if (last !== '') throw new NoteError('unterminated-line', 'the last signature line does not end with a newline', firstSignatureLine + lines.length);
  if (lines.length > MAX_NOTE_SIGNATURES) throw new NoteError('too-many-signatures', `the note has ${lines.length} signature lines, at most ${MAX_NOTE_SIGNATURES} are accepted`, firstSignatureLine + MAX_NOTE_SIGNATURES);
  const textBytes = Buffer.from(text, 'utf8');
  const verified: NoteSignature[] = [];
  const unverified: NoteSignature[] = [];
  const seen = new Set<string>();
  const signedBy = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const lineNumber = firstSignatureLine + i;
    const signature = parseSignatureLine(lines[i] as string, lineNumber);
    signedBy.add(label(signature.name, signature.keyId));
    const known = verifiers.filter((v) => v.name === signature.name && v.keyId === signature.keyId);
    if (known.length > 1) throw new NoteError('ambiguous-key', `${known.length} known keys are named ${label(signature.name, signature.keyId)}`, lineNumber);
    const key = known[0];
    if (key === undefined) {
      if (!seen.has(lines[i] as string)) unverified.push(signature);
    } else {
      const bytes = decodeBase64(signature.base64) as Buffer;
      if (!key.verify(textBytes, bytes.subarray(4))) throw new NoteError('bad-signature', `the signature by ${key.label} does not verify: the note was altered or not signed by that key`, lineNumber);
      if (!seen.has(lines[i] as string)) verified.push(signature);
    }
    seen.add(lines[i] as string);
  }
  if (verified.length === 0) {
    const by = [...signedBy].join(', ');
    const knownKeys = verifiers.length === 0 ? 'no keys are known' : `known: ${verifiers.map((v) => v.label).join(', ')}`;
    throw new NoteError('unknown-key', `no signature is by a known key: signed by ${by}; ${knownKeys}`);
  }
  return { text, verified, unverified };
}
