/**
 * Spec support for the evidence specs: one tamper suite run on every backend the suite has (file,
 * Kafka). A backend only has to make a real log that holds exactly the given records, in order
 * (file: framed segment bytes; Kafka: records produced to a fresh topic), so the tampered logs are
 * what an attacker who knows the format would leave: every checksum valid, only the content changed.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { EventDraft } from '#schemas';
import { openFileLog } from '../file/file-log.ts';
import { recordsOf, tempDir } from '../file/spec-support.ts';
import { MerkleStoreReader, generateNoteKey, signCheckpoint } from '../merkle/index.ts';
import type { CheckpointTrust, GeneratedNoteKey } from '../merkle/index.ts';
import type { EventLogReader } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { CHECKPOINTS_DIR, readCheckpointFile, readCheckpointFiles } from './checkpoint-files.ts';
import { EvidenceFollower } from './follower.ts';
import { verifyEvidence } from './verify-evidence.ts';
import type { EvidenceVerifyResult } from './verify-evidence.ts';

export type LogRecord = Readonly<Record<string, unknown>>;

/** A backend: a real log holding exactly `records`, in order, and a way to open readers of it. */
export type MaterializeLog = (t: TestContext, records: readonly LogRecord[]) => Promise<() => Promise<EventLogReader>>;

export const ORIGIN = 'example.com/attest/tamper-test';
export const BASE_TIME = Date.parse('2026-03-01T10:00:00.000Z');

/** Draft i of the test logs: 5 streams (the fifth of tenant globex), one second apart. */
export function testDraft(i: number): EventDraft {
  const draft = sampleDraft(`s-${i % 5}`, Math.floor(i / 5));
  return { ...draft, occurredAt: new Date(BASE_TIME + i * 1000).toISOString(), ...(i % 5 === 4 && { tenant: 'globex' }) };
}

/** Sealed records as a real file log wrote them: the first `keep` records of `base` (when given), then `count` new events from draft `from` on. */
export async function sealedRecords(t: TestContext, count: number, base: readonly LogRecord[] = [], from = base.length): Promise<LogRecord[]> {
  const dir = await tempDir(t, 'attest-evidence-seal-');
  if (base.length > 0) await materializeFile(dir, base);
  const log = await openFileLog({ dir });
  for (let i = from; i < from + count; i++) await log.append([testDraft(i)]);
  await log.close();
  return (await recordsOf(dir, 0)).records.map((record) => JSON.parse(record.payload.toString('utf8')) as LogRecord);
}

/** Writes segment 0 of a file log holding exactly `records`, each framed with a valid checksum. */
export async function materializeFile(dir: string, records: readonly LogRecord[]): Promise<void> {
  const { encodeFrame } = await import('../file/framing.ts');
  const { segmentPath } = await import('../file/segments.ts');
  await mkdir(dir, { recursive: true });
  await writeFile(segmentPath(dir, 0), Buffer.concat(records.map((record) => encodeFrame(Buffer.from(JSON.stringify(record))))));
}

export interface Evidence {
  readonly dir: string;
  readonly key: GeneratedNoteKey;
  readonly trust: CheckpointTrust;
  readonly signCheckpoints: (sizes: readonly number[]) => Promise<void>;
}

/** Builds the tree of a log with the follower (as the gateway does) and signs checkpoints at `sizes` into `<dir>/checkpoints`. */
export async function buildEvidence(t: TestContext, openReader: () => Promise<EventLogReader>, sizes: readonly number[], key = generateNoteKey(ORIGIN), dir?: string): Promise<Evidence> {
  const evidenceDir = dir ?? join(await tempDir(t, 'attest-evidence-'), 'merkle');
  const evidence = { dir: evidenceDir, key, trust: { origin: ORIGIN, verifiers: [key.signer.verifier] } };
  const reader = await openReader();
  const follower = await EvidenceFollower.open(reader, evidenceDir);
  await follower.run();
  await follower.close();
  await reader.close();
  const signCheckpoints = async (at: readonly number[]): Promise<void> => {
    const tree = await MerkleStoreReader.open(evidenceDir);
    await mkdir(join(evidenceDir, CHECKPOINTS_DIR), { recursive: true });
    for (const size of at) await writeFile(join(evidenceDir, CHECKPOINTS_DIR, `${size}.ckpt`), signCheckpoint({ origin: ORIGIN, size, root: await tree.rootAt(size), extensions: [] }, key.signer));
    await tree.close();
  };
  await signCheckpoints(sizes);
  return { ...evidence, signCheckpoints };
}

/** verifyEvidence on a log, a tree directory and (optionally) an earlier checkpoint file. */
export async function verifyWith(openReader: () => Promise<EventLogReader>, evidence: Pick<Evidence, 'dir' | 'trust'>, earlierFile?: string): Promise<EvidenceVerifyResult> {
  const reader = await openReader();
  const tree = await MerkleStoreReader.open(evidence.dir);
  try {
    const checkpoints = await readCheckpointFiles(evidence.dir, evidence.trust);
    const earlier = earlierFile === undefined ? undefined : await readCheckpointFile(earlierFile, evidence.trust);
    return await verifyEvidence({ reader, tree, checkpoints, trust: evidence.trust, ...(earlier !== undefined && { earlier }) });
  } finally {
    await tree.close();
    await reader.close();
  }
}

const idOf = (record: LogRecord | undefined): string => String(record?.['id']);

/**
 * The tamper suite: a 60-event log with checkpoints at 20, 40 and 60; each change to the log fails
 * `verifyEvidence` at the event or checkpoint where it was made; the clean log passes.
 */
export function testEvidenceTampering(backend: string, materialize: MaterializeLog): void {
  void describe(`tamper evidence on a ${backend} log`, () => {
    const setUp = async (t: TestContext): Promise<{ records: LogRecord[]; evidence: Evidence }> => {
      const records = await sealedRecords(t, 60);
      const evidence = await buildEvidence(t, await materialize(t, records), [20, 40, 60]);
      return { records, evidence };
    };

    void it('a clean log passes: chains, every leaf, every checkpoint', async (t) => {
      const { records, evidence } = await setUp(t);
      const result = await verifyWith(await materialize(t, records), evidence, join(evidence.dir, CHECKPOINTS_DIR, '40.ckpt'));
      assert.equal(result.ok, true, JSON.stringify(result.firstFailure));
      assert.deepEqual(result.checkpoints, [20, 40, 60]);
      assert.equal(result.logSize, 60);
    });

    void it('one byte flipped in an event (checksum recomputed): fails at that event', async (t) => {
      const { records, evidence } = await setUp(t);
      const victim = records[27] as LogRecord;
      const text = JSON.stringify(victim);
      const flipped = JSON.parse(text.replace('.000Z"', '.001Z"')) as LogRecord;
      assert.equal(JSON.stringify(flipped).length, text.length);
      assert.notDeepEqual(flipped, victim);
      const result = await verifyWith(await materialize(t, records.map((r, i) => (i === 27 ? flipped : r))), evidence);
      assert.equal(result.ok, false);
      assert.equal(result.firstFailure?.index, 27);
      assert.equal(result.firstFailure?.eventId, idOf(victim));
      assert.match(result.firstFailure?.reason ?? '', /hash does not match its content/);
      assert.ok(result.failures.some((f) => f.kind === 'leaf' && f.index === 27), 'the tree names the same leaf');
      assert.ok(result.failures.some((f) => f.kind === 'checkpoint' && f.checkpointSize === 40 && f.index === 20), 'the checkpoint of size 40 no longer matches, from leaf 20 on');
    });

    void it('one event removed: fails at its leaf', async (t) => {
      const { records, evidence } = await setUp(t);
      const result = await verifyWith(await materialize(t, records.filter((_, i) => i !== 33)), evidence);
      assert.equal(result.ok, false);
      assert.equal(result.firstFailure?.index, 33);
      assert.equal(result.firstFailure?.kind, 'leaf');
      assert.equal(result.firstFailure?.eventId, idOf(records[34]), 'the event now at leaf 33 is named');
      assert.ok(result.failures.some((f) => f.kind === 'chain' && /seq \d+ of its stream is missing/.test(f.reason)));
    });

    void it('two events swapped: fails at the first of them', async (t) => {
      const { records, evidence } = await setUp(t);
      const swapped = [...records];
      [swapped[12], swapped[13]] = [records[13] as LogRecord, records[12] as LogRecord];
      const result = await verifyWith(await materialize(t, swapped), evidence);
      assert.equal(result.ok, false);
      assert.equal(result.firstFailure?.index, 12);
      assert.equal(result.firstFailure?.eventId, idOf(records[13]));
      assert.ok(result.failures.some((f) => f.kind === 'checkpoint' && f.checkpointSize === 20 && f.index === 0));
    });

    void it('the tail cut after a checkpoint: fails at the first missing event, naming the checkpoint; also when the tree was cut too', async (t) => {
      const { records, evidence } = await setUp(t);
      const cut = await materialize(t, records.slice(0, 45));
      const result = await verifyWith(cut, evidence);
      assert.equal(result.ok, false);
      assert.equal(result.firstFailure?.kind, 'truncated');
      assert.equal(result.firstFailure?.index, 45);
      assert.ok(result.failures.some((f) => f.kind === 'truncated' && f.checkpointSize === 60 && /signed over 60 events but the log holds 45/.test(f.reason)));
      // The attacker also rebuilds the tree from the cut log and keeps only the checkpoints it still matches; the auditor kept the one of size 60.
      const kept = join(await tempDir(t, 'attest-auditor-'), '60.ckpt');
      await copyFile(join(evidence.dir, CHECKPOINTS_DIR, '60.ckpt'), kept);
      const rebuilt = await buildEvidence(t, cut, [20, 40], evidence.key);
      const second = await verifyWith(cut, rebuilt, kept);
      assert.equal(second.ok, false);
      assert.ok(second.failures.some((f) => f.kind === 'truncated' && f.index === 45 && f.checkpointFile === kept), JSON.stringify(second.failures));
      assert.ok(second.failures.some((f) => f.kind === 'checkpoint' && /size-regressed/.test(f.reason)), 'the latest checkpoint is smaller than the one kept');
    });

    void it('the log forked from a past point (rewritten after leaf 30, tree rebuilt, checkpoints re-signed): the earlier checkpoint names the fork', async (t) => {
      const { records, evidence } = await setUp(t);
      const forked = await sealedRecords(t, 30, records.slice(0, 30), 1000);
      assert.equal(forked.length, 60);
      const kept = join(await tempDir(t, 'attest-auditor-'), '40.ckpt');
      await copyFile(join(evidence.dir, CHECKPOINTS_DIR, '40.ckpt'), kept);
      const openForked = await materialize(t, forked);
      // With the original tree and checkpoints: the first leaf rewritten is named.
      const first = await verifyWith(openForked, evidence);
      assert.equal(first.firstFailure?.kind, 'leaf');
      assert.equal(first.firstFailure?.index, 30);
      // An attacker who holds the signing key rebuilds the tree and re-signs; the auditor's checkpoint of size 40 disagrees.
      const resigned = await buildEvidence(t, openForked, [20, 40, 60], evidence.key);
      const second = await verifyWith(openForked, resigned, kept);
      assert.equal(second.ok, false, 'the re-signed log does not pass against the checkpoint kept from before');
      assert.equal(second.firstFailure?.kind, 'checkpoint');
      assert.equal(second.firstFailure?.checkpointSize, 40);
      assert.equal(second.firstFailure?.checkpointFile, kept);
      assert.equal(second.firstFailure?.index, 20, 'the fork lies after the last checkpoint that still matches (size 20)');
    });
  });
}
