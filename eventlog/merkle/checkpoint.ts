/**
 * C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint): the text of a signed note that states a
 * log's tree head —
 *   <origin>\n<tree size, decimal, no leading zero>\n<base64 root hash>\n[<extension line>\n …]
 * — so witnesses and tools written for Go's sumdb, Trillian Tessera or Sigstore read it as is.
 * Sizes are limited to 2^53 − 1 (a JavaScript safe integer); a larger one is refused by name.
 */
import { isTreeInteger } from './bits.ts';
import { CheckpointError } from './errors.ts';
import { HASH_SIZE } from './hash.ts';
import type { NoteSigner, NoteVerifier } from './note-keys.ts';
import { openNote, signNote } from './signed-note.ts';
import type { OpenedNote } from './signed-note.ts';
import { decodeBase64 } from './strict-base64.ts';

export interface Checkpoint {
  /** The log's identity, e.g. `example.com/attest/prod`. */
  readonly origin: string;
  readonly size: number;
  /** MTH of the first `size` leaves (32 bytes). */
  readonly root: Buffer;
  /** Opaque extra lines (NOT RECOMMENDED by the spec: monitors cannot audit them). */
  readonly extensions: readonly string[];
}

export interface OpenedCheckpoint {
  readonly checkpoint: Checkpoint;
  /** The note it came in: its text and which keys signed it. */
  readonly note: OpenedNote;
}

/** What an auditor trusts: the log's origin line and the keys allowed to sign its checkpoints. */
export interface CheckpointTrust {
  readonly origin: string;
  readonly verifiers: readonly NoteVerifier[];
}

const DECIMAL = /^(?:0|[1-9][0-9]*)$/;

/** The checkpoint's note text. */
export function formatCheckpoint(checkpoint: Checkpoint): string {
  const { origin, size, root, extensions } = checkpoint;
  if (origin.length === 0 || origin.includes('\n')) throw new CheckpointError('empty-origin', 'the origin must be one non-empty line');
  if (!isTreeInteger(size)) throw new CheckpointError('size-too-large', `the tree size must be a non-negative safe integer, not ${String(size)}`);
  if (root.length !== HASH_SIZE) throw new CheckpointError('root-wrong-length', `the root hash is ${root.length} bytes, not ${HASH_SIZE}`);
  for (const line of extensions) {
    if (line.length === 0 || line.includes('\n')) throw new CheckpointError('empty-extension-line', 'extension lines must be single non-empty lines');
  }
  return `${origin}\n${size}\n${Buffer.from(root).toString('base64')}\n${extensions.map((line) => `${line}\n`).join('')}`;
}

/** Parses a checkpoint's note text (not the signed note: see openCheckpoint). */
export function parseCheckpoint(text: string): Checkpoint {
  if (!text.endsWith('\n')) throw new CheckpointError('unterminated-line', 'a checkpoint ends with a newline', { line: text.split('\n').length });
  const lines = text.slice(0, -1).split('\n');
  if (lines.length < 3) throw new CheckpointError('too-few-lines', `a checkpoint has at least 3 lines (origin, size, root), this one has ${lines.length}`);
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (origin.length === 0) throw new CheckpointError('empty-origin', 'the origin line is empty', { line: 1 });
  if (!DECIMAL.test(sizeText)) throw new CheckpointError('size-not-decimal', `the tree size ${JSON.stringify(sizeText)} is not a decimal number without leading zeros`, { line: 2 });
  const size = Number(sizeText);
  if (!Number.isSafeInteger(size)) throw new CheckpointError('size-too-large', `the tree size ${sizeText} is beyond 2^53 − 1`, { line: 2 });
  const root = decodeBase64(rootText);
  if (root === undefined) throw new CheckpointError('root-not-base64', `the root hash ${JSON.stringify(rootText)} is not canonical base64`, { line: 3 });
  if (root.length !== HASH_SIZE) throw new CheckpointError('root-wrong-length', `the root hash is ${root.length} bytes, not ${HASH_SIZE}`, { line: 3 });
  const extensions = lines.slice(3);
  const empty = extensions.indexOf('');
  if (empty >= 0) throw new CheckpointError('empty-extension-line', 'extension lines must be non-empty', { line: 4 + empty });
  return { origin, size, root, extensions };
}

/** The signed note of a checkpoint. */
export function signCheckpoint(checkpoint: Checkpoint, signers: NoteSigner | readonly NoteSigner[]): string {
  return signNote(formatCheckpoint(checkpoint), signers);
}

/**
 * Opens a signed checkpoint: the note's signatures first (NoteError), then its text
 * (CheckpointError), then its origin against the one trusted ('origin-mismatch').
 */
export function openCheckpoint(signed: string | Uint8Array, trust: CheckpointTrust): OpenedCheckpoint {
  const note = openNote(signed, trust.verifiers);
  const checkpoint = parseCheckpoint(note.text);
  if (checkpoint.origin !== trust.origin) {
    throw new CheckpointError('origin-mismatch', `the checkpoint is of log ${JSON.stringify(checkpoint.origin)}, not ${JSON.stringify(trust.origin)}`, { line: 1 });
  }
  return { checkpoint, note };
}
