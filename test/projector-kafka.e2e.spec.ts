/**
 * The projector on a Kafka log written by a real gateway (the run's real broker, real MCP clients):
 * it follows the topic live while calls are made, reaches lag 0, and a new projector resumes from
 * the checkpoint's Kafka cursor, projecting only what came after it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import kafkajs from 'kafkajs';
import { KafkaLogSchema } from '#schemas';
import { openEventLogReader } from '#eventlog';
import type { EventLogReader } from '#eventlog';
import { hashApiKey } from '#gateway';
import { ClickHouseReadModel, Projector, projectorStatus } from '#projector';
import { testDatabase, until } from '../projector/spec-support.ts';
import { connectClient } from './harness/client.ts';
import { kafkaBrokers } from './services/index.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';

const KEY = 'atk_projector_kafka_0123456789';
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('projector on a Kafka log', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  });

  it('follows a real gateway on Kafka live to lag 0, and a restart resumes from its Kafka cursor', { timeout: 240_000 }, async (t) => {
    const kafka = await kafkaBrokers();
    cleanup.push(() => kafka.stop());
    const log = KafkaLogSchema.parse({ backend: 'kafka', brokers: [...kafka.brokers], topic: `attest-test-${randomUUID()}`, createTopic: true, replicationFactor: 1, minInsyncReplicas: 1 });
    cleanup.push(async () => {
      const admin = new kafkajs.Kafka({ clientId: 'attest-projector-cleanup', brokers: [...kafka.brokers], logLevel: kafkajs.logLevel.NOTHING }).admin();
      await admin.connect();
      await admin.deleteTopics({ topics: [log.topic], timeout: 10_000 }).finally(() => admin.disconnect());
    });
    const gw = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, keys: [{ id: 'kafka-agent', hash: hashApiKey(KEY), tenant: 't-kafka' }], log });
    cleanup.push(() => gw.close());
    const agent = await connectClient({ transport: 'streamable-http', url: `${gw.url}/mcp`, headers: { authorization: `Bearer ${KEY}` } });
    cleanup.push(() => agent.close());
    const calls = async (n: number, from: number): Promise<void> => {
      for (let i = from; i < from + n; i++) await agent.client.callTool({ name: 'fixture__add', arguments: { a: i, b: 1 } });
    };

    const config = await testDatabase(t, { batchEvents: 25, flushMs: 20 });
    const model = new ClickHouseReadModel(config);
    t.after(() => model.close());
    await model.migrate();
    const reader: EventLogReader = await openEventLogReader(log);
    t.after(() => reader.close());

    await calls(10, 0);
    const controller = new AbortController();
    t.after(() => controller.abort());
    const running = new Projector(reader, model, { batchEvents: 25, flushMs: 20, logger: silent }).run(controller.signal);
    await until('the projector reaches the head', async () => (await model.checkpoint()).processed === (await reader.size()));
    // New calls while it follows: projected without a restart.
    await calls(15, 10);
    const addCalls = async (): Promise<number> => (await model.callsPerToolPerDay({ tool: 'add' })).reduce((n, r) => n + r.calls, 0);
    await until('the live calls are projected', async () => (await addCalls()) === 25);
    await until('lag 0', async () => (await projectorStatus(model, reader)).lagEvents === 0);
    const status = await projectorStatus(model, reader);
    assert.equal(status.lagSeconds, 0);
    controller.abort();
    const firstRun = await running;
    assert.equal(firstRun.errors, 0);

    await calls(5, 25);
    const size = await reader.size();
    const before = await model.checkpoint();
    assert.ok(before.cursor?.startsWith(`kafka:${log.topic}:0:`), before.cursor);
    const resumed = await new Projector(reader, model, { batchEvents: 25, flushMs: 20, logger: silent }).catchUp();
    assert.equal(resumed.checkpoint.processed, size);
    assert.equal(resumed.events, size - before.processed, 'the second projector read only what followed its checkpoint');

    const events = [];
    for await (const { event } of reader.read()) events.push(event);
    const totals = await model.totals();
    assert.equal(totals.events, events.length);
    assert.equal(await addCalls(), 30);
    assert.equal(totals.toolCallsByStatus['ok'], events.filter((e) => e.type === 'ResultReturned' && !e.data.isError).length);
    assert.equal(totals.toolCalls, events.filter((e) => e.type === 'RequestReceived' && e.callId !== undefined).length);
  });
});
