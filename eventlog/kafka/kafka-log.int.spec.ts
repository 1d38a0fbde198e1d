/**
 * The Kafka adapter on a real broker (test/services: the environment, else testcontainers, else
 * deploy/local; no broker → these tests fail saying what was tried): the EventLog contract, the
 * topic check at start, chain heads rebuilt from the topic after a restart, readers in other
 * processes, damage, and group commit. Each test gets a topic of its own, deleted after.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import type { EventDraft } from '#schemas';
import { ChainHeads } from '../chain.ts';
import { testEventLog } from '../contract.ts';
import { cursorOf } from '../cursor.ts';
import { InvalidEventError, LogUnavailableError } from '../port.ts';
import type { StoredEvent } from '../port.ts';
import { sampleDraft } from '../sample-drafts.ts';
import { appendFromTwoWriters, streamsOf, WRITER_NAMES } from '../several-writers.ts';
import { verifyLog } from '../verify.ts';
import { KafkaTopicError, openKafkaLog, openKafkaLogReader } from './kafka-log.ts';
import type { KafkaEventLog } from './kafka-log.ts';
import { encodeRecords } from './record-codec.ts';
import { collect, recordingLogger, sharedBrokers, testLogOptions, topicAdmin, uniqueTopic, withTimeout } from './spec-support.ts';

testEventLog('kafka', async () => {
  const brokers = await sharedBrokers();
  const topics = await topicAdmin(null, brokers);
  const topic = topics.track(uniqueTopic('attest-contract'));
  return {
    open: () => openKafkaLog(testLogOptions(brokers, topic)),
    openReader: () => openKafkaLogReader(testLogOptions(brokers, topic)),
    appendWritten: (records) => topics.produce(topic, records.map((record) => ({ key: String(record['stream']), value: JSON.stringify(record), headers: { 'attest-event-id': String(record['id']) } })), brokers),
    dispose: () => topics.dispose(),
  };
});

const DAY_MS = 86_400_000;

const isLogError =
  (code: string, pattern?: RegExp) =>
  (error: unknown): boolean =>
    error instanceof LogUnavailableError && error.code === code && (pattern === undefined || pattern.test(error.message));

const isTopicRefusal =
  (...patterns: RegExp[]) =>
  (error: unknown): boolean =>
    error instanceof KafkaTopicError && error.code === 'ATTEST_LOG_TOPIC_REFUSED' && patterns.every((p) => p.test(error.message));

async function closeAfter(t: { after(fn: () => Promise<void>): void }, log: KafkaEventLog): Promise<KafkaEventLog> {
  t.after(() => log.close());
  return log;
}

/** Seals drafts onto a copy of the log's heads, as a batch the log sent but never heard back about. */
function sealedBehindTheLogsBack(log: KafkaEventLog, drafts: readonly EventDraft[]): ReturnType<typeof encodeRecords> & { ids: string[] } {
  const heads = new ChainHeads(new Map(drafts.map((d) => [d.stream, log.head(d.stream)])));
  const sealed = heads.seal(drafts);
  return { ...encodeRecords(sealed), ids: sealed.map((s) => s.event.id) };
}

void describe('kafka log: topic check at start', { timeout: 120_000 }, () => {
  void it('creates a missing topic with the audit settings, and warns loudly, naming each way it is weaker than production', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic());
    const logger = recordingLogger();
    const log = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic), { logger }));
    assert.equal(log.topicFacts.created, true);
    const config = await topics.config(topic);
    assert.equal(config.get('cleanup.policy'), 'delete');
    assert.equal(config.get('min.insync.replicas'), '1');
    assert.equal(config.get('retention.ms'), String(190 * DAY_MS));
    assert.equal(config.get('retention.bytes'), '-1');
    assert.equal(config.get('unclean.leader.election.enable'), 'false');
    assert.equal(config.get('max.message.bytes'), '10485760', 'room for a call carrying a 1 MB payload');
    assert.equal(log.topicFacts.maxMessageBytes, 10485760);
    const warning = logger.warnings.find((w) => /WEAKER THAN THE PRODUCTION SETTINGS/.test(w.message));
    assert.ok(warning, `a loud warning; got ${JSON.stringify(logger.warnings.map((w) => w.message))}`);
    const weaknesses = (warning.details as { weaknesses: string[] }).weaknesses;
    assert.deepEqual(weaknesses.length, 2, weaknesses.join('; '));
    assert.match(weaknesses[0] ?? '', /^replication factor 1 < 3/);
    assert.match(weaknesses[1] ?? '', /^min\.insync\.replicas 1 < 2/);
    assert.match(warning.message, /replication factor 1 < 3.*min\.insync\.replicas 1 < 2/);
  });

  void it('refuses a compacted topic (compaction would delete audit records), even when production settings are not required', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    for (const policy of ['compact', 'compact,delete']) {
      const topic = await topics.create(uniqueTopic(), { 'cleanup.policy': policy });
      await assert.rejects(openKafkaLog(testLogOptions(brokers, topic, { createTopic: false })), isTopicRefusal(/cleanup\.policy is "compact(,delete)?"/, /keeps only the last record per key/));
      const [offsets] = await topics.admin.fetchTopicOffsets(topic);
      assert.equal(offsets?.high, '0', 'nothing was written');
    }
  });

  void it('lists every weakness of an existing topic: a warning by default, a refusal with requireProductionTopic', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = await topics.create(uniqueTopic(), { 'retention.ms': String(7 * DAY_MS), 'retention.bytes': '1000000000', 'unclean.leader.election.enable': 'true', 'min.insync.replicas': '1' });
    const expected = [/^replication factor 1 < 3/, /^min\.insync\.replicas 1 < 2/, /^unclean\.leader\.election\.enable is true/, /^retention\.ms 604800000 \(7 days\) < 15897600000/, /^retention\.bytes 1000000000/];
    await assert.rejects(openKafkaLog(testLogOptions(brokers, topic, { createTopic: false, requireProductionTopic: true })), (error: unknown) => {
      assert.ok(error instanceof KafkaTopicError, String(error));
      assert.equal(error.problems.length, expected.length + 1, error.problems.join('; '));
      expected.forEach((pattern, i) => assert.match(error.problems[i] ?? '', pattern));
      assert.match(error.message, /requireProductionTopic/);
      return true;
    });
    const logger = recordingLogger();
    const log = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic, { createTopic: false }), { logger }));
    assert.equal(log.topicFacts.created, false);
    assert.equal(log.topicFacts.weaknesses.length, expected.length);
    const warning = logger.warnings.find((w) => /WEAKER THAN THE PRODUCTION SETTINGS/.test(w.message));
    assert.ok(warning);
    for (const pattern of expected) assert.ok((warning.details as { weaknesses: string[] }).weaknesses.some((w) => pattern.test(w)), String(pattern));
    await log.append([sampleDraft('weak-but-allowed', 0)]);
  });

  void it('refuses a missing topic without createTopic, and a topic with more than one partition', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const missing = uniqueTopic();
    await assert.rejects(openKafkaLog(testLogOptions(brokers, missing, { createTopic: false })), isTopicRefusal(/does not exist/, /createTopic/));
    assert.equal((await topics.admin.listTopics()).includes(missing), false, 'not created');
    const wide = await topics.create(uniqueTopic(), {}, 3);
    await assert.rejects(openKafkaLog(testLogOptions(brokers, wide, { createTopic: false })), isTopicRefusal(/has 3 partitions; Attest needs exactly one/));
  });

  void it('refuses to start when no broker answers: ATTEST_LOG_UNAVAILABLE, naming the brokers and the cause', async () => {
    const port = await closedPort();
    const started = performance.now();
    await assert.rejects(
      openKafkaLog(testLogOptions([`127.0.0.1:${port}`], uniqueTopic(), { appendTimeoutMs: 2_000 })),
      isLogError('ATTEST_LOG_UNAVAILABLE', new RegExp(`127\\.0\\.0\\.1:${port}.*(ECONNREFUSED|Connection error)`)),
    );
    assert.ok(performance.now() - started < 30_000, 'gives up within a bounded time');
  });
});

void describe('kafka log: chain heads come from the topic', { timeout: 120_000 }, () => {
  void it('a new writer rebuilds every stream’s head from Kafka and continues the chains; a reader elsewhere verifies them', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic());
    const first = await openKafkaLog(testLogOptions(brokers, topic));
    await Promise.all(Array.from({ length: 60 }, (_, i) => first.append([sampleDraft(`restart-${i % 6}`, i)])));
    const heads = Array.from({ length: 6 }, (_, s) => first.head(`restart-${s}`));
    await first.close();

    const second = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic, { createTopic: false })));
    assert.equal(second.size(), 60);
    heads.forEach((head, s) => assert.deepEqual(second.head(`restart-${s}`), head));
    const [next] = await second.append([sampleDraft('restart-3', 99)]);
    assert.equal(next?.event.seq, (heads[3]?.seq ?? 0) + 1);
    assert.equal(next?.event.prevHash, heads[3]?.hash);
    assert.equal(next?.position.index, 60);
    assert.equal(next?.position.offset, '60');

    const reader = await openKafkaLogReader(testLogOptions(brokers, topic));
    t.after(() => reader.close());
    const verdict = await verifyLog(reader);
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    assert.equal(verdict.eventsChecked, 61);
    assert.equal(verdict.streams, 6);
  });

  void it('adopts events that reached the topic without an acknowledgement (a batch whose answer was lost)', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic());
    const log = await openKafkaLog(testLogOptions(brokers, topic));
    await log.append([sampleDraft('landed', 0), sampleDraft('landed', 1)]);
    const landed = sealedBehindTheLogsBack(log, [sampleDraft('landed', 2), sampleDraft('other', 0)]);
    await log.close();
    await topics.produce(topic, [...landed.messages], brokers);

    const reopened = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic, { createTopic: false })));
    assert.equal(reopened.size(), 4);
    assert.equal(reopened.head('landed').seq, 3);
    assert.equal(reopened.head('other').seq, 1);
    const [next] = await reopened.append([sampleDraft('landed', 3)]);
    assert.equal(next?.event.seq, 4, 'the chain runs through the adopted events');
    const verdict = await verifyLog(reopened.read());
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    assert.deepEqual(
      (await collect(reopened.read())).map((s) => s.event.id).slice(2, 4),
      landed.ids,
    );
  });

  void it('skips a repeated event id (a producer restarted mid-batch) when reading and when rebuilding heads', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic());
    const log = await openKafkaLog(testLogOptions(brokers, topic));
    const [, second] = await log.append([sampleDraft('dup', 0), sampleDraft('dup', 1)]);
    const repeat = sealedBehindTheLogsBack(log, [sampleDraft('dup', 2)]);
    await log.close();
    // The same event twice, as a producer that restarts and resends would write it.
    await topics.produce(topic, [...repeat.messages, ...repeat.messages], brokers);

    const reopened = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic, { createTopic: false })));
    assert.equal(reopened.head('dup').seq, 3);
    const read = await collect(reopened.read());
    assert.deepEqual(
      read.map((s) => s.event.seq),
      [1, 2, 3],
      'each event once',
    );
    assert.deepEqual(
      read.map((s) => s.position.index),
      [0, 1, 2],
    );
    assert.equal(read[1]?.event.hash, second?.event.hash);
    const [next] = await reopened.append([sampleDraft('dup', 3)]);
    assert.equal(next?.event.seq, 4);
    assert.equal(next?.position.index, 4, 'the repeat still takes its offset');
    assert.deepEqual(
      (await collect(reopened.read({ stream: 'dup' }))).map((s) => s.event.seq),
      [1, 2, 3, 4],
    );
  });
});

void describe('kafka log: readers', { timeout: 120_000 }, () => {
  void it('a reader in another process reads what was acknowledged, follows new events, and stops when aborted', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic());
    const log = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic)));
    for (let i = 0; i < 5; i++) await log.append([sampleDraft(`reader-${i % 2}`, i)]);
    const reader = await openKafkaLogReader(testLogOptions(brokers, topic));
    t.after(() => reader.close());
    assert.equal(reader.backend, 'kafka');
    const all = await collect(reader.read());
    assert.deepEqual(
      all.map((s) => s.position.index),
      [0, 1, 2, 3, 4],
    );
    assert.deepEqual(
      (await collect(reader.read({ stream: 'reader-1', after: cursorOf(all[1] as StoredEvent) }))).map((s) => s.position.index),
      [3],
    );

    const controller = new AbortController();
    const seen: StoredEvent[] = [];
    const following = (async () => {
      for await (const stored of reader.follow({ after: cursorOf(all[3] as StoredEvent), signal: controller.signal })) seen.push(stored);
    })();
    const acked = await log.append([sampleDraft('reader-0', 5), sampleDraft('reader-1', 6)]);
    await withTimeout(
      (async () => {
        while (seen.length < 3) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      20_000,
      `follow saw ${seen.length} of 3 events`,
    );
    controller.abort();
    await withTimeout(following, 10_000, 'follow did not stop after abort');
    assert.deepEqual(
      seen.map((s) => s.position.index),
      [4, 5, 6],
    );
    assert.deepEqual(
      seen.slice(1).map((s) => s.event),
      acked.map((s) => s.event),
    );
  });

  void it('closing the log ends the follows on it', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const log = await openKafkaLog(testLogOptions(brokers, topics.track(uniqueTopic())));
    await log.append([sampleDraft('closing', 0)]);
    const seen: StoredEvent[] = [];
    const following = (async () => {
      for await (const stored of log.follow({ signal: new AbortController().signal })) seen.push(stored);
    })();
    await withTimeout(
      (async () => {
        while (seen.length < 1) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      20_000,
      'follow saw nothing',
    );
    await log.close();
    await withTimeout(following, 10_000, 'follow outlived the log');
  });

  void it('a record that is not an event: the writer refuses to open, readers and verify name its offset', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic());
    const log = await openKafkaLog(testLogOptions(brokers, topic));
    await log.append([sampleDraft('damaged', 0), sampleDraft('damaged', 1)]);
    await log.close();
    await topics.produce(topic, [{ key: 'damaged', value: '{"not":"an event"}' }], brokers);

    await assert.rejects(openKafkaLog(testLogOptions(brokers, topic, { createTopic: false })), isLogError('ATTEST_LOG_CORRUPT', /record at offset 2 of topic .* not an Attest event/));
    const reader = await openKafkaLogReader(testLogOptions(brokers, topic));
    t.after(() => reader.close());
    await assert.rejects(collect(reader.read()), isLogError('ATTEST_LOG_CORRUPT', /offset 2/));
    const verdict = await verifyLog(reader);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.eventsChecked, 2);
    assert.equal(verdict.firstFailure?.index, 2);
    assert.match(verdict.firstFailure?.reason ?? '', /offset 2.*not an Attest event/);
  });
});

void describe('kafka log: group commit', { timeout: 120_000 }, () => {
  void it('shares one produce request among concurrent appends', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const log = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topics.track(uniqueTopic()))));
    await Promise.all(Array.from({ length: 400 }, (_, i) => log.append([sampleDraft(`gc-${i % 16}`, i)])));
    const stats = log.stats();
    assert.equal(stats.events, 400);
    assert.ok(stats.batches <= 40, `400 concurrent appends took ${stats.batches} produce requests`);
    assert.ok(stats.meanBatchEvents >= 10, `mean batch ${stats.meanBatchEvents}`);
    assert.equal(stats.failedBatches, 0);
  });

  void it('refuses an append too large for the topic’s max.message.bytes, and those queued behind it; later appends go on', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = await topics.create(uniqueTopic(), { 'max.message.bytes': '16384' });
    const log = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic, { createTopic: false })));
    assert.equal(log.topicFacts.maxMessageBytes, 16_384);
    await log.append([sampleDraft('big', 0)]);
    const base = sampleDraft('big', 3);
    const big = { ...base, data: { ...base.data, params: { ...(base.data as { params: object }).params, body: { blob: 'x'.repeat(40_000) } } } } as EventDraft;
    const [bigAppend, behind] = [log.append([big]), log.append([sampleDraft('big', 1)])];
    await assert.rejects(bigAppend, (error: unknown) => error instanceof InvalidEventError && /max\.message\.bytes 16384/.test(error.message));
    await assert.rejects(behind, isLogError('ATTEST_LOG_UNAVAILABLE', /too large/));
    const [next] = await log.append([sampleDraft('big', 1)]);
    assert.equal(next?.event.seq, 2, 'the chain continues from the last acknowledged event');
    assert.equal(log.size(), 2);
    // Many small appends still fill batches up to the limit without one being refused.
    await Promise.all(Array.from({ length: 200 }, (_, i) => log.append([sampleDraft(`small-${i % 5}`, i)])));
    assert.ok(log.stats().batches > 3, 'split into batches under 16 KiB');
    const verdict = await verifyLog(log.read());
    assert.equal(verdict.ok, true, verdict.firstFailure?.reason);
    assert.equal(verdict.eventsChecked, 202);
  });
});

void describe('kafka log: several writers (gateway replicas) on one topic', { timeout: 120_000 }, () => {
  void it('two writers appending concurrently to their own streams: nothing refused, every acknowledged event read back once at its offset, the whole topic verifies', async (t) => {
    const brokers = await sharedBrokers();
    const topics = await topicAdmin(t, brokers);
    const topic = topics.track(uniqueTopic('attest-replicas'));
    const a = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic, { clientId: 'attest-gw-a' })));
    const b = await closeAfter(t, await openKafkaLog(testLogOptions(brokers, topic, { clientId: 'attest-gw-b', createTopic: false })));
    const reader = await openKafkaLogReader(testLogOptions(brokers, topic));
    t.after(() => reader.close());
    const { acked, events, seconds } = await appendFromTwoWriters([a, b], reader);
    WRITER_NAMES.forEach((name, w) => {
      const log = w === 0 ? a : b;
      const stats = log.stats();
      assert.equal(stats.failedBatches + stats.recoveries, 0, `${name}: no failure, no recovery`);
      assert.ok(stats.foreignRecords > 0, `${name}: the other writer's records really came between its batches`);
      const own = acked.get(name) ?? [];
      assert.equal(log.size(), Math.max(...own.map((s) => s.position.index)) + 1, `${name}: size() is the offset after its last acknowledged batch`);
      for (const stream of streamsOf(WRITER_NAMES[1 - w] ?? '')) assert.equal(log.head(stream).seq, 0, `${name}: the other writer's stream ${stream} is not in its chains`);
    });
    t.diagnostic(`${events} events in ${seconds.toFixed(1)} s by two writers (${Math.round(events / seconds)} events/s); foreign records stepped over: a ${a.stats().foreignRecords}, b ${b.stats().foreignRecords}; batches: a ${a.stats().batches}, b ${b.stats().batches}`);
  });
});

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
