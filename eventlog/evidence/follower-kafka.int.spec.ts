/**
 * The evidence follower on a real Kafka topic (the shared test broker): the tree equals one built
 * independently from the topic's records, and a restart resumes at the stored size reading only
 * the records appended since.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { AttestEvent } from '#schemas';
import { canonicalize } from '#schemas';
import { tempDir } from '../file/spec-support.ts';
import { openKafkaLog, openKafkaLogReader } from '../kafka/kafka-log.ts';
import { collect, sharedBrokers, testLogOptions, topicAdmin, uniqueTopic } from '../kafka/spec-support.ts';
import { MemoryTree } from '../merkle/index.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { EvidenceFollower } from './follower.ts';

function independentLeaf(event: AttestEvent): Buffer {
  const { hash: _hash, ...rest } = event as unknown as Record<string, unknown>;
  return createHash('sha256').update(Buffer.from([0])).update(canonicalize(rest), 'utf8').digest();
}

void describe('EvidenceFollower on a Kafka log', () => {
  void it('builds the tree of the topic and resumes from the stored size', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic('attest-evidence'));
    const options = testLogOptions(brokers, topic);
    const storeDir = join(await tempDir(t), 'merkle');
    const log = await openKafkaLog(options);
    t.after(() => log.close());
    for (let i = 0; i < 20; i++) await log.append([sampleDraft(`k-${i % 2}`, Math.floor(i / 2))]);

    const run = async (): Promise<{ follower: EvidenceFollower; seen: number[] }> => {
      const reader = await openKafkaLogReader(options);
      t.after(() => reader.close());
      const seen: number[] = [];
      const follower = await EvidenceFollower.open(reader, storeDir, { onLeaf: (index) => seen.push(index) });
      await follower.run();
      return { follower, seen };
    };
    const expected = async (): Promise<Buffer> => {
      const reader = await openKafkaLogReader(options);
      const tree = new MemoryTree();
      for (const stored of await collect(reader.read())) tree.appendLeafHash(independentLeaf(stored.event));
      await reader.close();
      return tree.root();
    };

    const first = await run();
    assert.equal(first.follower.size, 20);
    assert.deepEqual(first.follower.store.root(), await expected());
    await first.follower.close();

    for (let i = 20; i < 26; i++) await log.append([sampleDraft(`k-${i % 2}`, Math.floor(i / 2))]);
    const second = await run();
    assert.deepEqual(second.follower.resume, { size: 20 });
    assert.deepEqual(second.seen, [20, 21, 22, 23, 24, 25]);
    assert.deepEqual(second.follower.store.root(), await expected());
    await second.follower.close();
  });
});
