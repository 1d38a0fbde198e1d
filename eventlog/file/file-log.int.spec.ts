import assert from 'node:assert/strict';
import { appendFile, mkdtemp, open, readdir, readFile, rm, stat, truncate, unlink, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { spawnSync } from 'node:child_process';
import { digestOf, eventHash } from '#schemas';
import { testEventLog } from '../contract.ts';
import { cursorOf } from '../cursor.ts';
import { ChainHeads } from '../chain.ts';
import type { EventLogLogger } from '../logger.ts';
import { LogUnavailableError } from '../port.ts';
import type { FilePosition, StoredEvent } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { encodeEvents } from './event-codec.ts';
import { openFileLog } from './file-log.ts';
import type { RecoveryReport } from './recovery.ts';
import { listSegments, segmentFileName, segmentPath } from './segments.ts';
import { appendFrames, collect, recordsOf, spawnWriter, tempDir } from './spec-support.ts';
import { openFileLogReader } from './file-reader.ts';
import { verifyFileLog } from './verify-file-log.ts';

// Small segments, so the contract also runs across segment boundaries.
testEventLog('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'attest-contract-'));
  return {
    open: () => openFileLog({ dir, segmentBytes: 16 * 1024 }),
    openReader: () => openFileLogReader(dir),
    appendWritten: (records) => appendFrames(dir, records),
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
});

const isLogError =
  (code: string, pattern?: RegExp) =>
  (error: unknown): boolean =>
    error instanceof LogUnavailableError && error.code === code && (pattern === undefined || pattern.test(error.message));

function recordingLogger(): EventLogLogger & { readonly warnings: string[] } {
  const warnings: string[] = [];
  return { warnings, info: () => undefined, warn: (_details, message) => void warnings.push(message), error: (_details, message) => void warnings.push(message) };
}

void describe('file log: group commit', () => {
  void it('shares one writev + fdatasync among concurrent appends', async (t) => {
    const log = await openFileLog({ dir: await tempDir(t) });
    t.after(() => log.close());
    const burst = await Promise.all(Array.from({ length: 400 }, (_, i) => log.append([sampleDraft(`burst-${i % 10}`, i)])));
    assert.equal(burst.length, 400);
    const afterBurst = log.stats();
    assert.equal(afterBurst.events, 400);
    assert.ok(afterBurst.batches < 10, `400 appends in one tick took ${afterBurst.batches} batches`);

    // Callers that each wait for their previous append: while one batch syncs, the others queue for the next.
    const workers = Array.from({ length: 40 }, async (_, w) => {
      for (let k = 0; k < 25; k++) await log.append([sampleDraft(`worker-${w}`, k)]);
    });
    await Promise.all(workers);
    const stats = log.stats();
    const batches = stats.batches - afterBurst.batches;
    assert.equal(stats.events, 1400);
    assert.ok(batches < 1000 / 4, `1,000 appends from 40 callers took ${batches} batches`);
    assert.ok(stats.meanBatchEvents > 4, `mean batch ${stats.meanBatchEvents}`);
    assert.ok(stats.lastFsyncMs > 0, 'fdatasync ran and was timed');
    assert.equal(stats.failedBatches, 0);
    assert.equal(stats.queuedAppends, 0);
  });

  void it('refuses at once (ATTEST_LOG_BUSY) while maxQueuedBytes wait for the disk, moving no chain head, and admits again once they are durable', async (t) => {
    const log = await openFileLog({ dir: await tempDir(t), maxQueuedBytes: 1024 * 1024 });
    t.after(() => log.close());
    // A request event whose recorded arguments take ~400 KB: three of them, in one tick, pass the 1 MiB bound.
    const big = (stream: string, n: number) => {
      const draft = sampleDraft(stream, 0);
      if (draft.type !== 'RequestReceived') throw new Error('sampleDraft(_, 0) is a request');
      const body = { text: 'x'.repeat(400_000), n };
      return { ...draft, data: { ...draft.data, params: { recording: 'full' as const, digest: digestOf(body), bytes: 400_020, body } } };
    };
    const settled = await Promise.allSettled([0, 1, 2, 3].map((n) => log.append([big('busy', n)])));
    assert.deepEqual(settled.map((r) => r.status), ['fulfilled', 'fulfilled', 'fulfilled', 'rejected'], 'the fourth append found ~1.2 MB waiting');
    const refused = settled[3] as PromiseRejectedResult;
    assert.ok(isLogError('ATTEST_LOG_BUSY', /MiB waiting for the disk \(log\.maxQueuedBytes: 1\.0 MiB\): refused at once, nothing was written/)(refused.reason), String(refused.reason));
    assert.equal(log.stats().pendingBytes, 0, 'nothing waits once the batches are durable');
    // Admitted again, and the chain runs on from the last admitted event: the refusal sealed nothing.
    const [next] = await log.append([big('busy', 4)]);
    assert.equal(next?.event.seq, 4);
    const events = (await collect(log.read())).map((s) => s.event);
    assert.deepEqual(events.map((e) => e.seq), [1, 2, 3, 4]);
    assert.equal((await verifyFileLog(log.dir)).ok, true);
  });

  void it('bounds a batch by maxBatchEvents, never splitting one append', async (t) => {
    const log = await openFileLog({ dir: await tempDir(t), maxBatchEvents: 10 });
    t.after(() => log.close());
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => log.append([sampleDraft(`bound-${i}`, 0), sampleDraft(`bound-${i}`, 1), sampleDraft(`bound-${i}`, 2)])));
    assert.equal(log.stats().events, 120);
    assert.ok(log.stats().batches >= 40 / 3, `${log.stats().batches} batches of at most 10 events`);
    for (const stored of results) {
      const [a, b, c] = stored.map((s) => s.position.index);
      assert.deepEqual([b, c], [(a as number) + 1, (a as number) + 2]);
    }
    const oversized = await log.append(Array.from({ length: 25 }, (_, i) => sampleDraft('oversized', i)));
    assert.equal(oversized.length, 25, 'an append larger than maxBatchEvents is written whole');
  });

  void it('with fsync off, acknowledges once written (no fdatasync), and stats say so', async (t) => {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir, fsync: false });
    t.after(() => log.close());
    const [stored] = await log.append([sampleDraft('nosync', 0)]);
    assert.equal(log.stats().lastFsyncMs, 0);
    assert.ok((await stat(segmentPath(dir, 0))).size > (stored?.position.offset ?? Infinity));
  });
});

void describe('file log: segments', () => {
  void it('rolls over at segmentBytes, names segments by base index, reads across them, continues after reopen', async (t) => {
    const dir = await tempDir(t);
    const segmentBytes = 4096;
    let log = await openFileLog({ dir, segmentBytes });
    const acked: StoredEvent<FilePosition>[] = [];
    for (let i = 0; i < 60; i++) acked.push(...(await log.append([sampleDraft(`seg-${i % 4}`, i)])));
    const bases = await listSegments(dir);
    assert.ok(bases.length >= 6, `${bases.length} segments`);
    assert.deepEqual(
      (await readdir(dir)).filter((n) => n.endsWith('.seg')).sort(),
      bases.map(segmentFileName),
    );
    for (const [i, base] of bases.entries()) {
      const size = (await stat(segmentPath(dir, base))).size;
      assert.ok(size <= segmentBytes, `segment ${base} is ${size} bytes`);
      const first = acked.find((s) => s.position.segment === base);
      assert.equal(first?.position.index, base, 'a segment is named after the index of its first record');
      assert.equal(first?.position.offset, 0);
      if (i > 0) assert.ok(base > (bases[i - 1] as number));
    }
    const read = await collect(log.read());
    assert.deepEqual(read, acked);
    const middle = bases[3] as number;
    const fromMiddle = await collect(log.read({ after: cursorOf(read[middle] as StoredEvent) }));
    assert.equal(fromMiddle[0]?.position.index, middle + 1);
    assert.equal(fromMiddle.length, 60 - middle - 1);

    await log.close();
    log = await openFileLog({ dir, segmentBytes });
    t.after(() => log.close());
    assert.equal(log.size(), 60);
    const last = acked.filter((s) => s.event.stream === 'seg-1').at(-1);
    const [next] = await log.append([sampleDraft('seg-1', 60)]);
    assert.equal(next?.event.seq, (last?.event.seq ?? 0) + 1);
    assert.equal(next?.event.prevHash, last?.event.hash);
    const verdict = await verifyFileLog(dir);
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    assert.equal(verdict.eventsChecked, 61);
  });
});

void describe('file log: following across segments', () => {
  void it('a follower keeps up with concurrent appends across many segment rollovers', async (t) => {
    // fsync off: batches and rollovers come as fast as they can, racing the follower's reads.
    const log = await openFileLog({ dir: await tempDir(t), segmentBytes: 4096, fsync: false });
    t.after(() => log.close());
    const controller = new AbortController();
    const seen: number[] = [];
    const following = (async () => {
      for await (const stored of log.follow({ signal: controller.signal })) {
        seen.push(stored.position.index);
        if (seen.length === 600) controller.abort();
      }
    })();
    await Promise.all(
      Array.from({ length: 20 }, async (_, c) => {
        for (let k = 0; k < 30; k++) await log.append([sampleDraft(`race-${c}`, k)]);
      }),
    );
    const timer = setTimeout(() => controller.abort(), 20_000);
    await following;
    clearTimeout(timer);
    assert.deepEqual(
      seen,
      Array.from({ length: 600 }, (_, i) => i),
    );
    assert.ok((await listSegments(log.dir)).length > 50);
  });
});

void describe('file log: start-up recovery', () => {
  /** A log of 10 events, closed; returns its dir, last segment path and size, and a valid next frame. */
  async function closedLog(t: Parameters<typeof tempDir>[0]): Promise<{ dir: string; path: string; size: number; nextFrame: Buffer }> {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir });
    for (let i = 0; i < 10; i++) await log.append([sampleDraft('torn', i)]);
    const heads = new ChainHeads(new Map([['torn', log.head('torn')]]));
    await log.close();
    const nextFrame = encodeEvents(heads.seal([sampleDraft('torn', 10)])).bytes;
    const path = segmentPath(dir, 0);
    return { dir, path, size: (await stat(path)).size, nextFrame };
  }

  const tornTails: readonly [string, (frame: Buffer) => Buffer][] = [
    ['a header cut short', (frame) => frame.subarray(0, 5)],
    ['a record cut short (declared length past the end)', (frame) => frame.subarray(0, frame.length - 40)],
    ['a complete last record with a bad checksum', (frame) => Buffer.concat([frame.subarray(0, 100), Buffer.from([frame[100] === 0x41 ? 0x42 : 0x41]), frame.subarray(101)])],
    ['zeros (pages allocated but never written)', () => Buffer.alloc(4096)],
    ['a bad record followed by a cut-short one', (frame) => Buffer.concat([Buffer.from([0, 0, 0, 20, 1, 2, 3, 4]), Buffer.alloc(20, 7), frame.subarray(0, 30)])],
  ];

  for (const [name, tail] of tornTails) {
    void it(`truncates a torn tail — ${name} — reports it, and the chain continues`, async (t) => {
      const { dir, path, size, nextFrame } = await closedLog(t);
      const garbage = tail(nextFrame);
      await appendFile(path, garbage);
      const reports: RecoveryReport[] = [];
      const logger = recordingLogger();
      const log = await openFileLog({ dir }, { logger, onRecovery: (r) => reports.push(r) });
      t.after(() => log.close());
      assert.equal(reports.length, 1);
      assert.equal(reports[0]?.segment, 0);
      assert.equal(reports[0]?.offset, size);
      assert.equal(reports[0]?.bytesDropped, garbage.length);
      assert.match(reports[0]?.reason ?? '', /torn tail/);
      assert.ok(logger.warnings.some((w) => /torn tail truncated/.test(w)), 'the truncation is logged, never silent');
      assert.equal((await stat(path)).size, size);
      assert.equal(log.size(), 10);
      const [next] = await log.append([sampleDraft('torn', 10)]);
      assert.equal(next?.event.seq, 11);
      assert.equal(next?.position.offset, size);
      const verdict = await verifyFileLog(dir);
      assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    });
  }

  void it('opens a clean log without reporting anything', async (t) => {
    const { dir } = await closedLog(t);
    const reports: RecoveryReport[] = [];
    const log = await openFileLog({ dir }, { onRecovery: (r) => reports.push(r) });
    t.after(() => log.close());
    assert.deepEqual(reports, []);
    assert.equal(log.size(), 10);
  });

  void it('refuses to open (ATTEST_LOG_CORRUPT) when a damaged record has valid records after it, and changes nothing', async (t) => {
    const { dir, path } = await closedLog(t);
    const { bytes, records } = await recordsOf(dir, 0);
    const victim = records[3] as (typeof records)[number];
    bytes[victim.start + 50] = (bytes[victim.start + 50] as number) ^ 0x20;
    await writeFile(path, bytes);
    await assert.rejects(openFileLog({ dir }), isLogError('ATTEST_LOG_CORRUPT', new RegExp(`${segmentFileName(0)} offset ${victim.start} \\(index 3\\).*valid records follow`)));
    assert.deepEqual(await readFile(path), bytes, 'nothing was truncated');
    // The refusal released the lock: once repaired, the log opens.
    bytes[victim.start + 50] = (bytes[victim.start + 50] as number) ^ 0x20;
    await writeFile(path, bytes);
    const log = await openFileLog({ dir });
    await log.close();
  });

  void it('refuses to open when a segment before the last is damaged, even at its end', async (t) => {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir, segmentBytes: 4096 });
    for (let i = 0; i < 20; i++) await log.append([sampleDraft('multi', i)]);
    await log.close();
    const bases = await listSegments(dir);
    assert.ok(bases.length >= 3);
    const first = segmentPath(dir, 0);
    const size = (await stat(first)).size;
    await truncate(first, size - 3);
    await assert.rejects(openFileLog({ dir, segmentBytes: 4096 }), isLogError('ATTEST_LOG_CORRUPT', /not the last/));
    assert.equal((await stat(first)).size, size - 3);
  });

  void it('refuses to open when a segment is missing', async (t) => {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir, segmentBytes: 4096 });
    for (let i = 0; i < 20; i++) await log.append([sampleDraft('gap', i)]);
    await log.close();
    const bases = await listSegments(dir);
    await unlink(segmentPath(dir, bases[1] as number));
    await assert.rejects(openFileLog({ dir, segmentBytes: 4096 }), isLogError('ATTEST_LOG_CORRUPT', /should start at index .* missing/));
  });
});

void describe('file log: one writer per directory', () => {
  void it('refuses a second writer in the same process, naming it', async (t) => {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir });
    t.after(() => log.close());
    await assert.rejects(openFileLog({ dir }), isLogError('ATTEST_LOG_LOCKED', /already open here/));
    await log.append([sampleDraft('one-writer', 0)]);
    assert.equal(log.size(), 1, 'the first writer is unaffected');
  });

  void it('refuses while another process holds the lock, and takes it over after that process is killed -9', async (t) => {
    const dir = await tempDir(t);
    const writer = spawnWriter(t, ['hold', dir, '25']);
    await writer.waitFor('ready');
    await assert.rejects(openFileLog({ dir }), isLogError('ATTEST_LOG_LOCKED', new RegExp(`process ${writer.child.pid}`)));
    writer.child.kill('SIGKILL');
    await writer.exited;
    const logger = recordingLogger();
    const log = await openFileLog({ dir }, { logger });
    t.after(() => log.close());
    assert.ok(logger.warnings.some((w) => /stale/.test(w)), 'the takeover is logged');
    assert.equal(log.size(), 25, 'everything the killed writer acknowledged is there');
    const [next] = await log.append([sampleDraft('held-1', 99)]);
    assert.equal(next?.event.seq, log.head('held-1').seq);
    assert.equal(next?.event.seq, 9);
  });

  void it('takes over a lock file whose pid is dead', async (t) => {
    const dir = await tempDir(t);
    const done = spawnSync(process.execPath, ['-e', 'process.exit(0)']);
    await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: done.pid, host: hostname(), since: '2020-01-01T00:00:00.000Z' }));
    const log = await openFileLog({ dir });
    await log.append([sampleDraft('stale', 0)]);
    const lock = JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')) as { pid: number };
    assert.equal(lock.pid, process.pid);
    await log.close();
    await assert.rejects(stat(join(dir, 'LOCK')), /ENOENT/, 'close releases the lock');
  });
});

void describe('file log: crash', () => {
  void it('keeps every acknowledged event when the writer is killed -9 mid-flood', async (t) => {
    const dir = await tempDir(t);
    const writer = spawnWriter(t, ['flood', dir]);
    await writer.waitFor('ready');
    while (writer.lines.length < 300) await new Promise((resolve) => setTimeout(resolve, 10));
    writer.child.kill('SIGKILL');
    await writer.exited;
    const acked = writer.lines.filter((l) => l.startsWith('ack ')).map((l) => l.split(' '));
    assert.ok(acked.length >= 299);
    const log = await openFileLog({ dir });
    t.after(() => log.close());
    const byIndex = new Map((await collect(log.read())).map((s) => [s.position.index, s.event.id]));
    for (const [, index, id] of acked) assert.equal(byIndex.get(Number(index)), id, `acknowledged event ${id} at index ${index}`);
    const verdict = await verifyFileLog(dir);
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
  });
});

void describe('file log: options', () => {
  void it('rejects invalid options naming the key', async (t) => {
    await assert.rejects(openFileLog({ dir: await tempDir(t), segmentBytes: 10 }), /segmentBytes/);
  });

  void it('creates the directory and its first segment', async (t) => {
    const dir = join(await tempDir(t), 'nested', 'log');
    const log = await openFileLog({ dir });
    t.after(() => log.close());
    assert.deepEqual(await listSegments(dir), [0]);
    const handle = await open(segmentPath(dir, 0), 'r');
    assert.equal((await handle.stat()).size, 0);
    await handle.close();
  });
});

void describe('file log: trusted reads', () => {
  void it('skip the schema check of current-major events only: a broken shape is yielded as an event, a newer major still unreadable', async (t) => {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir });
    const [stored] = await log.append([sampleDraft('trusted', 0)]);
    await log.close();
    const written = stored?.event as unknown as Record<string, unknown>;
    const seal = (fields: Record<string, unknown>): Record<string, unknown> => {
      const unsealed: Record<string, unknown> = { ...written, id: crypto.randomUUID(), ...fields };
      delete unsealed['hash'];
      return { ...unsealed, hash: eventHash(unsealed) };
    };
    const broken = seal({ seq: 2, prevHash: written['hash'], data: { not: 'a request' } });
    const future = seal({ stream: 'future', seq: 1, prevHash: null, schemaVersion: '3.0' });
    await appendFrames(dir, [broken, future]);
    const reader = await openFileLogReader(dir);
    t.after(() => reader.close());
    const checked = await collect(reader.entries());
    assert.deepEqual(checked.map((e) => (e.event === undefined ? e.problem : 'ok')), ['ok', 'shape', 'version']);
    const trusted = await collect(reader.entries({ trusted: true }));
    assert.deepEqual(trusted.map((e) => (e.event === undefined ? e.problem : 'ok')), ['ok', 'ok', 'version']);
  });
});
