/**
 * Writes a file so that a crash leaves the old content or the new, never a mix: a temporary file
 * beside it, fdatasync, rename over the name, fsync of the directory (so the rename survives too).
 */
import { open, rename } from 'node:fs/promises';
import path from 'node:path';

export async function writeFileDurably(file: string, content: string | Uint8Array): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(content);
    await handle.datasync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
  const dir = await open(path.dirname(file), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
