/**
 * Where signed checkpoints are published on disk (the fixed layout of eventlog/evidence/checkpoint-files.ts,
 * which `attest prove`, `attest export` and witnesses read):
 *   <evidence dir>/checkpoints/<tree size>.ckpt   every checkpoint, the signed note as is
 *   <evidence dir>/checkpoint                     the latest one
 * Each written durably (temporary file, fdatasync, rename, directory fsync), the numbered file first.
 */
import { access, mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError } from '#schemas';
import { CHECKPOINTS_DIR, CheckpointError, LATEST_CHECKPOINT_FILE, NoteError, checkpointFile, checkpointFileSize, openCheckpoint } from '#eventlog';
import type { Checkpoint, NoteVerifier } from '#eventlog';
import { writeFileDurably } from '../durable-file.ts';
import type { CheckpointKeys } from './checkpoint-keys.ts';

/** A checkpoint this log published: its signed note, what it says, and the trusted key that signed it. */
export interface PublishedCheckpoint {
  readonly note: string;
  readonly checkpoint: Checkpoint;
  readonly signedBy: NoteVerifier;
}

export async function publishCheckpoint(evidenceDir: string, treeSize: number, note: string): Promise<void> {
  await mkdir(path.join(evidenceDir, CHECKPOINTS_DIR), { recursive: true });
  await writeFileDurably(checkpointFile(evidenceDir, treeSize), note);
  await writeFileDurably(path.join(evidenceDir, LATEST_CHECKPOINT_FILE), note);
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
}

/** `checkpoint`, or (it was lost) the numbered file of the largest size; undefined when there is none. */
async function latestFile(evidenceDir: string): Promise<string | undefined> {
  const latest = path.join(evidenceDir, LATEST_CHECKPOINT_FILE);
  if (await exists(latest)) return latest;
  let names: string[];
  try {
    names = await readdir(path.join(evidenceDir, CHECKPOINTS_DIR));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const sizes = names.map(checkpointFileSize).filter((size) => size !== undefined);
  return sizes.length === 0 ? undefined : checkpointFile(evidenceDir, Math.max(...sizes));
}

/**
 * The latest checkpoint published in `evidenceDir`, opened against the log's trust; undefined when
 * none was. A ConfigError when it does not open: signed by a key the config no longer trusts (a
 * rotation without evidence.previousVerifierKeys), of another origin, or damaged — the gateway
 * then refuses to start rather than sign checkpoints an auditor could not chain to the old ones.
 */
export async function readLatestCheckpoint(evidenceDir: string, keys: CheckpointKeys): Promise<PublishedCheckpoint | undefined> {
  const file = await latestFile(evidenceDir);
  if (file === undefined) return undefined;
  const note = await readFile(file, 'utf8');
  try {
    const opened = openCheckpoint(note, keys.trust);
    const [first] = opened.note.verified;
    const signedBy = keys.trust.verifiers.find((v) => v.name === first?.name && v.keyId === first.keyId);
    if (signedBy === undefined) throw new Error('openCheckpoint verified a signature by no trusted key');
    return { note, checkpoint: opened.checkpoint, signedBy };
  } catch (error) {
    if (error instanceof NoteError && error.reason === 'unknown-key') {
      throw new ConfigError(
        `invalid config:\nevidence.previousVerifierKeys: the latest checkpoint ${file} is not signed by a trusted key (${error.message}). The signing key changed: to rotate keys, add the verifier key that signed it (printed by \`attest keys note\` when it was made, and recorded as signers[].verifierKey in the log's CheckpointSigned events) to evidence.previousVerifierKeys`,
      );
    }
    if (error instanceof CheckpointError && error.reason === 'origin-mismatch') {
      throw new ConfigError(`invalid config:\nevidence.origin: ${error.message.replace(/^line \d+: the checkpoint is/, `the latest checkpoint ${file} is`)}. The origin names the log for witnesses and does not change: set evidence.origin back, or keep a new log's evidence in another evidence.dir`);
    }
    if (error instanceof NoteError || error instanceof CheckpointError) {
      throw new ConfigError(`invalid config:\nevidence.dir: the latest checkpoint ${file} does not open (${error.message}): restore it from ${path.join(evidenceDir, CHECKPOINTS_DIR)}/, or remove it`);
    }
    throw error;
  }
}
