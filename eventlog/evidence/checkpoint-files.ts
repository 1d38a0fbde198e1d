/**
 * The signed checkpoints the gateway writes beside its tree: `<evidence dir>/checkpoints/<size>.ckpt`
 * (the signed note text; the file name is the tree size in decimal) and `<evidence dir>/checkpoint`
 * (the latest). Read here for `attest export` and `attest verify`; every note is verified by the
 * caller (openCheckpoint): a file name is never trusted for the size.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openCheckpoint } from '../merkle/index.ts';
import type { Checkpoint, CheckpointTrust } from '../merkle/index.ts';
import { EvidenceError } from './evidence-error.ts';

export const CHECKPOINTS_DIR = 'checkpoints';
export const LATEST_CHECKPOINT_FILE = 'checkpoint';
const CHECKPOINT_FILE = /^(0|[1-9][0-9]*)\.ckpt$/;

/** `<evidenceDir>/checkpoints/<treeSize>.ckpt`. */
export function checkpointFile(evidenceDir: string, treeSize: number): string {
  return join(evidenceDir, CHECKPOINTS_DIR, `${treeSize}.ckpt`);
}

/** The tree size a file name `<size>.ckpt` stands for; undefined for any other name. */
export function checkpointFileSize(name: string): number | undefined {
  const match = CHECKPOINT_FILE.exec(name);
  return match === null ? undefined : Number(match[1]);
}

export interface StoredCheckpoint {
  readonly file: string;
  /** The signed note. */
  readonly note: string;
  readonly checkpoint: Checkpoint;
}

/**
 * Every `<size>.ckpt` of `<evidenceDir>/checkpoints`, opened with `trust`, ascending by size; none
 * when the directory does not exist. A note that does not verify, or whose size is not its file
 * name, throws (the error names the file).
 */
export async function readCheckpointFiles(evidenceDir: string, trust: CheckpointTrust): Promise<StoredCheckpoint[]> {
  const dir = join(evidenceDir, CHECKPOINTS_DIR);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const found: StoredCheckpoint[] = [];
  for (const name of names) {
    const size = checkpointFileSize(name);
    if (size === undefined) continue;
    found.push(await readCheckpointFile(join(dir, name), trust, size));
  }
  return found.sort((a, b) => a.checkpoint.size - b.checkpoint.size);
}

/** One signed checkpoint file, opened with `trust` (and, when given, checked to be of `size`). */
export async function readCheckpointFile(file: string, trust: CheckpointTrust, size?: number): Promise<StoredCheckpoint> {
  const note = await readFile(file, 'utf8');
  let checkpoint: Checkpoint;
  try {
    checkpoint = openCheckpoint(note, trust).checkpoint;
  } catch (error) {
    throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `the checkpoint ${file} is refused: ${(error as { reason?: string }).reason ?? 'unreadable'}: ${(error as Error).message}`, { cause: error });
  }
  if (size !== undefined && checkpoint.size !== size) throw new EvidenceError('ATTEST_EVIDENCE_INVALID', `the checkpoint ${file} is named for size ${size} but signs size ${checkpoint.size}`);
  return { file, note, checkpoint };
}
