/**
 * The leaf from the stored canonical bytes (storedLeafHash) equals the leaf from canonicalising the
 * event again (leafHashOf), byte for byte, on a real file log and a real Kafka topic (the shared
 * test broker): for every record of a few hundred of varied types, with non-ASCII strings, escapes
 * and numbers whose JSON form RFC 8785 fixes (1e21, -0, 0.1). Records the writer did not lay out
 * (another key order, a tampered value) fall back to canonicalising.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { digestOf } from '#schemas';
import type { EventDraft } from '#schemas';
import { openFileLog } from '../file/file-log.ts';
import { openFileLogReader } from '../file/file-reader.ts';
import { collect, tempDir } from '../file/spec-support.ts';
import { openKafkaLog, openKafkaLogReader } from '../kafka/kafka-log.ts';
import { sharedBrokers, testLogOptions, topicAdmin, uniqueTopic } from '../kafka/spec-support.ts';
import type { EventLog, EventLogReader, LogEntry } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { leafContent, leafHashOf, storedCanonical, storedLeafHash } from './leaf.ts';
import { materializeFile } from './spec-support.ts';

const EVENTS = 300;

/** Draft i: the sample request / decision / result cycle, every fourth request carrying awkward JSON. */
function variedDraft(i: number): EventDraft {
  const draft = sampleDraft(`lf-${i % 4}`, Math.floor(i / 4));
  if (draft.type !== 'RequestReceived' || i % 4 !== 0) return draft;
  const body = { 'zeta': 1e21, 'émoji 😀': 'grüße, 東京, \u20ac', 'a': -0, 'B': [0.1, 1e-7, 123456789012345680000, -1.5, true, null], 'ctl': 'tab\there "quoted" \\ \u0001 \u007f \u2028', '\u00e9': { y: 'ÿ', x: 'x' }, 'n': i };
  return { ...draft, data: { ...draft.data, params: { recording: 'full', digest: digestOf(body), bytes: 200, body } } };
}

async function appendVaried(log: EventLog): Promise<void> {
  for (let i = 0; i < EVENTS; i += 10) await log.append(Array.from({ length: 10 }, (_, k) => variedDraft(i + k)));
}

async function assertSameLeaves(reader: EventLogReader): Promise<LogEntry[]> {
  const entries = await collect(reader.entries());
  assert.equal(entries.length, EVENTS);
  for (const entry of entries) {
    const stored = storedCanonical(entry);
    assert.ok(stored !== undefined, `record ${entry.position.index}: the stored bytes are taken`);
    assert.equal(stored.toString('utf8'), leafContent(entry), `record ${entry.position.index}: the stored bytes are the canonical form`);
    assert.deepEqual(storedLeafHash(entry), leafHashOf(entry), `record ${entry.position.index}: the same leaf`);
  }
  return entries;
}

void describe('storedLeafHash', () => {
  void it('equals leafHashOf for every record of a file log, and falls back for records laid out otherwise', async (t) => {
    const dir = await tempDir(t);
    const log = await openFileLog({ dir });
    await appendVaried(log);
    await log.close();
    const reader = await openFileLogReader(dir);
    const entries = await assertSameLeaves(reader);
    await reader.close();

    // Rewritten by hand: hash last (another layout) and a tampered value under the old hash.
    const records = entries.map((entry) => JSON.parse((entry.event === undefined ? undefined : entry.storedText) ?? '') as Record<string, unknown>);
    const [first, second] = records as [Record<string, unknown>, Record<string, unknown>];
    const { hash, ...rest } = first;
    const moved = { ...rest, hash };
    const tampered = { ...second, tenant: 'ácme' };
    const rewritten = await tempDir(t);
    await materializeFile(rewritten, [moved, tampered, ...records.slice(2)]);
    const again = await openFileLogReader(rewritten);
    const reread = await collect(again.entries());
    await again.close();
    for (const entry of reread.slice(0, 2)) {
      assert.equal(storedCanonical(entry), undefined, `record ${entry.position.index}: not taken`);
      assert.deepEqual(storedLeafHash(entry), leafHashOf(entry));
    }
    assert.notDeepEqual(storedLeafHash(reread[1] as LogEntry), leafHashOf(entries[1] as LogEntry), 'the tampered record has its own leaf');
    for (const entry of reread.slice(2)) assert.ok(storedCanonical(entry) !== undefined, 'records in the writer\'s layout are taken');
  });

  void it('equals leafHashOf for every record of a Kafka topic', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic('attest-leaf'));
    const options = testLogOptions(brokers, topic);
    const log = await openKafkaLog(options);
    t.after(() => log.close());
    await appendVaried(log);
    const reader = await openKafkaLogReader(options);
    t.after(() => reader.close());
    await assertSameLeaves(reader);
  });
});
