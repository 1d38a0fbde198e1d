/**
 * Real OS faults under the file log (we run as root, so permissions cannot fake them):
 * a segment that lands on /dev/full (ENOSPC on write), a tmpfs that fills up, and a segment path
 * that is a FIFO (open blocks: a stalled disk). Nothing unwritten may ever be acknowledged, and
 * the log must recover by itself once the fault is gone.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { lstat, mkdtemp, open, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { LogUnavailableError } from '../port.ts';
import type { StoredEvent } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { openFileLog } from './file-log.ts';
import type { FileEventLog } from './file-log.ts';
import { openFileLogReader } from './file-reader.ts';
import { segmentPath } from './segments.ts';
import { appendUntilRollIsNext, collect, recordsOf, tempDir } from './spec-support.ts';
import { verifyFileLog } from './verify-file-log.ts';

const isUnavailable =
  (pattern: RegExp) =>
  (error: unknown): boolean =>
    error instanceof LogUnavailableError && error.code === 'ATTEST_LOG_UNAVAILABLE' && pattern.test(error.message);

/** What is on disk, read by an independent reader: exactly the acknowledged events, in order. */
async function assertOnDiskExactly(dir: string, acked: readonly StoredEvent[]): Promise<void> {
  const reader = await openFileLogReader(dir);
  try {
    const onDisk = await collect(reader.read());
    assert.deepEqual(
      onDisk.map((s) => s.event.id),
      acked.map((s) => s.event.id),
      'on disk = acknowledged',
    );
  } finally {
    await reader.close();
  }
}

void describe('file log under real faults', () => {
  void it('/dev/full as the next segment: ENOSPC rejects, nothing unwritten is acknowledged, and appends succeed once the file is replaced', async (t) => {
    const dir = await tempDir(t);
    const segmentBytes = 4096;
    const log = await openFileLog({ dir, segmentBytes, appendTimeoutMs: 5_000 });
    t.after(() => log.close());
    const acked = await appendUntilRollIsNext(log, dir, segmentBytes);
    const headBefore = log.head('roll');
    const sizeBefore = log.size();
    const next = segmentPath(dir, sizeBefore);
    await symlink('/dev/full', next);

    const attempts = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => log.append([sampleDraft('roll', 9_000 + 3 * i + 1)])));
    for (const attempt of attempts) {
      assert.equal(attempt.status, 'rejected');
      assert.ok(isUnavailable(new RegExp(`ENOSPC.*${next.replaceAll('.', '\\.')}`))(attempt.reason), String(attempt.reason));
    }
    assert.equal(log.size(), sizeBefore);
    assert.deepEqual(log.head('roll'), headBefore, 'the chain head rolled back');
    assert.equal(log.stats().failedBatches >= 1, true);

    // Still /dev/full: the next append tries the disk again, and fails again.
    await assert.rejects(log.append([sampleDraft('roll', 9_100)]), isUnavailable(/ENOSPC/));
    await assertOnDiskExactly(dir, acked);

    await rm(next);
    await writeFile(next, '');
    const [recovered] = await log.append([sampleDraft('roll', 9_201)]);
    assert.equal(recovered?.event.seq, headBefore.seq + 1, 'the chain continues from the last durable event');
    assert.equal(recovered?.event.prevHash, headBefore.hash);
    assert.equal(recovered?.position.segment, sizeBefore);
    assert.equal((await lstat(next)).isFile(), true);
    await assertOnDiskExactly(dir, [...acked, recovered]);
    await log.close();
    const verdict = await verifyFileLog(dir);
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    assert.equal(verdict.eventsChecked, acked.length + 1);
  });

  void it('a full tmpfs: ENOSPC rejects, the segment is trimmed back to its durable end, and the log recovers once space is freed', async (t) => {
    const mountPoint = await mkdtemp(join(tmpdir(), 'attest-tmpfs-'));
    const skip = mountTmpfs(t, mountPoint, '256k');
    if (skip !== undefined) {
      t.skip(skip);
      return;
    }
    const dir = join(mountPoint, 'log');
    const log = await openFileLog({ dir, segmentBytes: 16 * 1024 * 1024, appendTimeoutMs: 5_000 });
    t.after(() => log.close());
    const acked: StoredEvent[] = [];
    for (let i = 0; i < 5; i++) acked.push(...(await log.append([sampleDraft('tmpfs', i)])));

    const filler = join(mountPoint, 'filler');
    await fill(filler);
    // The segment's last page may still have room: append until the disk says no.
    let failure: unknown;
    for (let i = 5; i < 500 && failure === undefined; i++) {
      const results = await Promise.allSettled([log.append([sampleDraft('tmpfs', 2 * i)]), log.append([sampleDraft('tmpfs-b', 2 * i + 1)])]);
      for (const result of results) {
        if (result.status === 'fulfilled') acked.push(...result.value);
        else failure ??= result.reason;
      }
    }
    assert.ok(isUnavailable(/ENOSPC/)(failure), String(failure));
    // Trimmed: the segment holds exactly the acknowledged records, no partial write after them.
    const { bytes, records } = await recordsOf(dir, 0);
    assert.equal(records.length, acked.length);
    assert.equal(records.at(-1)?.end, bytes.length);
    assert.equal((await stat(segmentPath(dir, 0))).size, bytes.length);
    await assertOnDiskExactly(dir, acked);
    assert.equal(log.size(), acked.length);

    // Still full: once the slack in the segment's last page is used up, every append is refused.
    await fill(filler);
    let refusal: unknown;
    for (let i = 0; i < 20 && refusal === undefined; i++) {
      await log.append([sampleDraft('tmpfs', 4_000 + i)]).then((stored) => acked.push(...stored), (error: unknown) => (refusal = error));
    }
    assert.ok(isUnavailable(/ENOSPC/)(refusal), `still full, still refused: ${String(refusal)}`);
    await assert.rejects(log.append([sampleDraft('tmpfs', 5_000)]), isUnavailable(/ENOSPC/));
    await rm(filler);
    const after = await log.append([sampleDraft('tmpfs', 5_001), sampleDraft('tmpfs-b', 5_001)]);
    assert.equal(after.length, 2);
    assert.equal(after[0]?.position.index, acked.length);
    await assertOnDiskExactly(dir, [...acked, ...after]);
    await log.close();
    const verdict = await verifyFileLog(dir);
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
  });

  void it('a stalled disk (a FIFO where the next segment goes: open blocks): appends time out with ATTEST_LOG_TIMEOUT, and the log recovers', async (t) => {
    const dir = await tempDir(t);
    const segmentBytes = 4096;
    const log: FileEventLog = await openFileLog({ dir, segmentBytes, appendTimeoutMs: 300 });
    const acked = await appendUntilRollIsNext(log, dir, segmentBytes);
    const headBefore = log.head('roll');
    const next = segmentPath(dir, log.size());
    execFileSync('mkfifo', [next]);
    // Opening the FIFO's read end lets the writer's blocked open complete: the disk "comes back".
    let fifoReader: FileHandle | undefined;
    const unblock = async (): Promise<void> => {
      fifoReader ??= await open(next, constants.O_RDONLY | constants.O_NONBLOCK);
    };
    t.after(async () => {
      if ((await lstat(next).catch(() => undefined))?.isFIFO() === true) await unblock();
      await log.close();
      await fifoReader?.close();
    });

    const started = performance.now();
    await assert.rejects(log.append([sampleDraft('roll', 9_001)]), (error: unknown) => error instanceof LogUnavailableError && error.code === 'ATTEST_LOG_TIMEOUT' && /300 ms/.test(error.message));
    const waited = performance.now() - started;
    assert.ok(waited >= 290 && waited < 3_000, `timed out after ${waited} ms`);
    assert.equal(log.stats().timedOutAppends, 1);
    assert.equal(log.size(), acked.length);
    assert.deepEqual(log.head('roll'), headBefore, 'a timed-out append is not durable');

    // The disk comes back: the blocked open completes onto the pipe, whose fdatasync fails (EINVAL);
    // then the FIFO is replaced by a real file and appends succeed again.
    await unblock();
    while (log.stats().failedBatches === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await rm(next);
    const [recovered] = await log.append([sampleDraft('roll', 9_004)]);
    assert.equal(recovered?.event.seq, headBefore.seq + 1);
    assert.equal(recovered?.event.prevHash, headBefore.hash);
    await assertOnDiskExactly(dir, [...acked, recovered]);
    await log.close();
    const verdict = await verifyFileLog(dir);
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
  });
});

/**
 * Mounts a tmpfs of `size` on `mountPoint`; when the test ends it is unmounted, then the mount point
 * removed. Returns why not when mounting is impossible here.
 */
function mountTmpfs(t: TestContext, mountPoint: string, size: string): string | undefined {
  let mounted = false;
  t.after(async () => {
    if (mounted) execFileSync('umount', ['-l', mountPoint], { stdio: 'pipe' });
    await rm(mountPoint, { recursive: true, force: true });
  });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', mountPoint], { stdio: 'pipe' });
    mounted = true;
    return undefined;
  } catch (error) {
    return `cannot mount a tmpfs here (needs root): ${(error as Error).message.split('\n')[0]}`;
  }
}

/** Appends to `file` until the filesystem is full. */
async function fill(file: string): Promise<void> {
  const handle = await open(file, 'a');
  const chunk = Buffer.alloc(4096, 1);
  try {
    for (let i = 0; i < 1024; i++) await handle.write(chunk);
    assert.fail('a 256 KiB tmpfs took 4 MiB');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await handle.close();
  }
  assert.ok((await readFile(file)).length > 0);
}
