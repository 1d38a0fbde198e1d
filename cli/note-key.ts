/**
 * `attest keys note NAME --out FILE`: a new Ed25519 note key pair for signing checkpoints (C2SP
 * signed-note, eventlog/merkle/note-keys.ts). The signer key is written only to FILE (mode 0600,
 * never over an existing file) and never printed; the verifier key — what witnesses and auditors
 * are given — goes to stdout.
 */
import { writeFile } from 'node:fs/promises';
import { generateNoteKey, isValidKeyName } from '#eventlog';

/** Thrown for bad arguments: the CLI prints the usage and exits 2. */
export class NoteKeyUsageError extends Error {}

export async function runNoteKey(name: string | undefined, out: string | undefined): Promise<number> {
  if (name === undefined) throw new NoteKeyUsageError('keys note needs the key name (e.g. the log origin, example.com/attest)');
  if (!isValidKeyName(name)) throw new NoteKeyUsageError(`"${name}" is not a note key name: it must be non-empty, with no space, no "+" and no control character`);
  if (out === undefined) throw new NoteKeyUsageError('keys note needs --out FILE: the signer key is written only there, never printed');
  const key = generateNoteKey(name);
  try {
    await writeFile(out, `${key.signerKey}\n`, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new NoteKeyUsageError(`${out} already exists: keys note never overwrites a key file`);
    throw error;
  }
  process.stdout.write(`verifier key: ${key.verifierKey}\n(signer key written to ${out}, mode 0600; give the verifier key to witnesses and auditors)\n`);
  return 0;
}
