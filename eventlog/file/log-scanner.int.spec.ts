import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sampleDraft } from '../sample-drafts.ts';
import { openFileLog } from './file-log.ts';
import { scanLog } from './log-scanner.ts';
import type { ScanItem, ScanSource } from './log-scanner.ts';
import { listSegments } from './segments.ts';
import { recordsOf, tempDir } from './spec-support.ts';

void describe('scanLog over a live writer', () => {
  void it('reads what became durable in a segment while it was reading, before moving to the next one', async (t) => {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir, segmentBytes: 4096 });
    for (let i = 0; i < 12; i++) await log.append([sampleDraft('live', i)]);
    await log.close();
    const [first, second] = await listSegments(dir);
    assert.ok(first !== undefined && second !== undefined);
    const { records: firstRecords, bytes: firstBytes } = await recordsOf(dir, first);
    const { bytes: secondBytes } = await recordsOf(dir, second);

    // The writer's view when the scan starts: the last record of the first segment not yet durable, no second segment.
    const current: { base: number; durableBytes: number | null } = { base: first, durableBytes: firstRecords.at(-2)?.end ?? 0 };
    const segments = [current];
    const source: ScanSource = { dir, segments: () => Promise.resolve(segments), nextChange: () => Promise.resolve(false) };
    const items: ScanItem[] = [];
    for await (const item of scanLog(source, { follow: false, tail: 'strict' })) {
      items.push(item);
      if (items.length === 1) {
        // …meanwhile that record commits and the writer rolls to the next segment.
        current.durableBytes = firstBytes.length;
        segments.push({ base: second, durableBytes: secondBytes.length });
      }
    }
    assert.deepEqual(
      items.map((item) => (item.kind === 'event' ? item.stored.position.index : item.defect.reason)),
      Array.from({ length: 12 }, (_, i) => i),
    );
  });
});
