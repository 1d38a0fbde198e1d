/**
 * One writer per log directory (COMPLIANCE.md §1): a `LOCK` file created with O_EXCL holding the
 * owner's pid. A lock whose pid no longer runs on this host is stale — left by a crash or kill -9 —
 * and is taken over (and logged). A lock from another host cannot be checked and is respected.
 *
 * Known limit: two processes taking over the same stale lock at the same instant can race between
 * the re-check and the unlink; starting two writers at once on one directory is an operator error
 * this file does not fully defend against. A reused pid makes a stale lock look live (refused,
 * with a message naming the pid and the file to delete).
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { open, readFile, unlink } from 'node:fs/promises';
import { setTimeout } from 'node:timers/promises';
import { LogUnavailableError } from '../port.ts';
import type { EventLogLogger } from '../logger.ts';

export const LOCK_FILE = 'LOCK';

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly since: string;
}

export interface StaleLock {
  readonly path: string;
  readonly pid: number | null;
}

export interface DirLock {
  readonly path: string;
  release(): Promise<void>;
}

/** `onStale`: told of a stale lock taken over (the pid it named, null when it named none). */
export async function acquireDirLock(dir: string, logger: EventLogLogger, onStale?: (taken: StaleLock) => void): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), since: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(`${JSON.stringify(me)}\n`);
      } finally {
        await handle.close();
      }
      return { path, release: () => releaseLock(path, me) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const text = await readLockText(path);
    if (text === null) continue; // released in between: try again
    const owner = parseOwner(text);
    if (owner !== null && (owner.host !== me.host || isAlive(owner.pid))) {
      const who = owner.pid === process.pid && owner.host === me.host ? 'this process (the log is already open here)' : `process ${owner.pid} on ${owner.host}`;
      throw new LogUnavailableError(
        'ATTEST_LOG_LOCKED',
        `the event log in ${dir} is locked by ${who} since ${owner.since}: only one writer per directory. Stop that writer, or read with openFileLogReader / \`attest events\`. If no such process exists, delete ${path}.`,
      );
    }
    // Stale: the owner is gone, or the file is empty/partial — left by a crash right after creating
    // it, or a live writer between creating and writing it: give that one a moment first.
    if (owner === null) await setTimeout(200);
    if ((await readLockText(path)) !== text) continue; // someone else got there first
    logger.warn({ lock: path, stalePid: owner?.pid ?? null }, 'taking over a stale event log lock (its owner is no longer running)');
    await unlink(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    onStale?.({ path, pid: owner?.pid ?? null });
  }
  throw new LogUnavailableError('ATTEST_LOG_LOCKED', `the event log in ${dir}: could not take the lock ${path}; another writer keeps taking it`);
}

async function releaseLock(path: string, me: LockOwner): Promise<void> {
  const text = await readLockText(path);
  const owner = text === null ? null : parseOwner(text);
  // Only our own lock: never remove one a later writer took over.
  if (owner !== null && owner.pid === me.pid && owner.since === me.since) await unlink(path);
}

async function readLockText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

function parseOwner(text: string): LockOwner | null {
  try {
    const raw = JSON.parse(text) as Partial<LockOwner>;
    if (typeof raw.pid === 'number' && Number.isSafeInteger(raw.pid) && raw.pid > 0 && typeof raw.host === 'string' && typeof raw.since === 'string') {
      return { pid: raw.pid, host: raw.host, since: raw.since };
    }
  } catch {
    // An empty or partial lock file: its creator died between creating and writing it.
  }
  return null;
}

/** Signal 0 checks for existence without signalling (kill(2)); EPERM means it exists under another user. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
