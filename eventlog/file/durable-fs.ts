/** The few file-system steps durability depends on. */
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';

/**
 * Makes a directory entry durable (a new segment or lock): fsync of the file alone does not
 * persist its name (fsync(2), "Calling fsync() does not necessarily ensure that the entry in the
 * directory containing the file has also reached disk").
 */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** writev until every byte is written: a short write (a filling disk) is retried from where it stopped, so the next attempt reports the errno. */
export async function writeFully(handle: FileHandle, buffers: readonly Buffer[], position: number): Promise<void> {
  let pending = buffers;
  let at = position;
  for (;;) {
    const { bytesWritten } = await handle.writev(pending as Buffer[], at);
    at += bytesWritten;
    let skip = bytesWritten;
    let i = 0;
    while (i < pending.length && skip >= (pending[i] as Buffer).length) {
      skip -= (pending[i] as Buffer).length;
      i++;
    }
    if (i === pending.length) return;
    if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    pending = [(pending[i] as Buffer).subarray(skip), ...pending.slice(i + 1)];
  }
}

/** Closes a handle whose state no longer matters (after a failed write or fsync). */
export async function closeQuietly(handle: FileHandle | null): Promise<void> {
  if (handle === null) return;
  try {
    await handle.close();
  } catch {
    // The handle is being abandoned because it failed; its close error adds nothing.
  }
}
