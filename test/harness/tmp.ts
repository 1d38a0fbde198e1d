/**
 * Temporary directories for tests. Each one is tracked and removed by `removeAllTempDirs()`
 * (call it from an `after()` hook), so runs leave nothing behind in the OS temp dir.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const created = new Set<string>();

/** Creates a fresh, empty directory under the OS temp dir. */
export async function makeTempDir(prefix = 'attest-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  created.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  created.delete(dir);
}

/** Removes every directory `makeTempDir` created that still exists. */
export async function removeAllTempDirs(): Promise<void> {
  await Promise.all([...created].map((dir) => removeTempDir(dir)));
}
