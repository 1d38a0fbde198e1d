/**
 * The gateway on a real Kafka broker (issue 3's fault tests), each bounded in time and count:
 *   - kill -9 of the gateway under load and a restart against Kafka: chains verify, every call
 *     the upstream received has its request and decision in Kafka (support/crash-under-load.ts);
 *   - two gateway processes (two instances, as the Helm chart runs them) on one topic under load
 *     from agents split across both, one killed -9 and restarted while the other serves: the whole
 *     topic verifies, every answered call is recorded, every forwarded call has its request and
 *     decision first, OutcomeUnknown only in the killed instance's sessions (issue 11);
 *   - the broker stopped under concurrent load: calls fail closed with a clear error and none is
 *     forwarded without an acknowledged request event; the broker restarted: the gateway recovers
 *     by itself; no acknowledged event is lost and duplicates, if any, carry the same event id.
 * The crash run uses the run's shared broker (test/services); the outage run stops a broker of
 * its own so it cannot disturb other tests.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import kafkajs from 'kafkajs';
import { openEventLogReader, verifyEventLog } from '#eventlog';
import { canonicalize, digestOf, parseConfig } from '#schemas';
import type { AttestEvent } from '#schemas';
import { kafkaBrokers, startLocalService } from './services/index.ts';
import type { LocalService } from './services/index.ts';
import { crashUnderLoad } from './support/crash-under-load.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';
import { rawInitialize, rawPost } from './support/raw-mcp.ts';
import { answerJson, startRawUpstream } from './support/raw-upstream.ts';

/** A topic of its own per test; the local broker has one node, so RF 1 (the gateway warns loudly). */
function kafkaLog(brokers: readonly string[]): Record<string, unknown> {
  return { backend: 'kafka', brokers: [...brokers], topic: `attest-test-${randomUUID()}`, createTopic: true, replicationFactor: 1, minInsyncReplicas: 1, appendTimeoutMs: 3000 };
}

/** Deletes the test's topic on the shared broker (a second client, kafkajs, behind the gateway's back). */
async function deleteTopic(brokers: readonly string[], topic: string): Promise<void> {
  const admin = new kafkajs.Kafka({ clientId: 'attest-e2e-cleanup', brokers: [...brokers], logLevel: kafkajs.logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 });
  } finally {
    await admin.disconnect();
  }
}

describe('gateway on Kafka', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => undefined);
  });

  it('kill -9 under load and restart: chains verify and no forwarded call is unrecorded', { timeout: 240_000 }, async (t) => {
    const kafka = await kafkaBrokers();
    cleanup.push(() => kafka.stop());
    const log = kafkaLog(kafka.brokers);
    cleanup.push(() => deleteTopic(kafka.brokers, String(log['topic'])));
    const outcome = await crashUnderLoad(log);
    t.diagnostic(`answered before the crash: ${outcome.answeredBeforeCrash}; received by the upstream: ${outcome.receivedByUpstream}; OutcomeUnknown recorded: ${outcome.outcomeUnknown}; ${outcome.eventsVerified}`);
  });

  it('two gateway replicas on one topic, one killed -9 under load and restarted: the topic verifies, no call unrecorded, OutcomeUnknown only in its own sessions', { timeout: 300_000 }, async (t) => {
    const kafka = await kafkaBrokers();
    cleanup.push(() => kafka.stop());
    const log = kafkaLog(kafka.brokers);
    cleanup.push(() => deleteTopic(kafka.brokers, String(log['topic'])));
    const outcome = await crashUnderLoad(log, { replicas: 2 });
    t.diagnostic(
      `answered before the crash: ${outcome.answeredBeforeCrash}; ${outcome.replicas.map((r) => `${r.instance}: ${r.answered} answered, ${r.received} received by its upstream`).join('; ')}; OutcomeUnknown in the killed instance's sessions: ${outcome.outcomeUnknown}; writer switches in log order: ${outcome.writerSwitches}; ${outcome.eventsVerified}`,
    );
    assert.ok(outcome.writerSwitches >= 20, `the two replicas' events interleave in the topic (${outcome.writerSwitches} switches)`);
  });

  it('a result larger than the topic takes (max.message.bytes): withheld with -32014 saying it ran, its outcome recorded as withheld at once, and the topic holds no ResultReturned for it', { timeout: 120_000 }, async () => {
    const kafka = await kafkaBrokers();
    cleanup.push(() => kafka.stop());
    const log = kafkaLog(kafka.brokers);
    cleanup.push(() => deleteTopic(kafka.brokers, String(log['topic'])));
    // 11 MiB of text: more than the 10 MiB record batch of a topic the gateway creates.
    let answered: unknown;
    const upstream = await startRawUpstream((message, _request, response) => {
      if (message.method === 'initialize') return answerJson(response, message.id, { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'big', version: '1' } });
      if (message.method === 'tools/list') return answerJson(response, message.id, { tools: [{ name: 'big', inputSchema: { type: 'object' } }] });
      answered = { content: [{ type: 'text', text: 'x'.repeat(11 * 1024 * 1024) }] };
      answerJson(response, message.id, answered);
    });
    cleanup.push(() => upstream.close());
    const upstreams = { big: { transport: 'streamable-http' as const, url: upstream.url, pinTools: false } };
    const gw = await startTestGateway({ upstreams, log, gateway: { instance: 'kafka-withheld' } });
    let callId: string;
    try {
      const mcp = `${gw.url}/mcp`;
      const { sessionId, result } = await rawInitialize(mcp, gw.headers);
      const headers = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
      const answer = await rawPost(mcp, { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'big__big', arguments: {} } }, headers);
      const error = answer.messages.find((m) => m['id'] === 7)?.['error'] as { code: number; message: string; data: { callId: string; receipt?: unknown } } | undefined;
      assert.equal(error?.code, -32014, answer.text.slice(0, 300));
      assert.match(error.message, /ran tools\/call and answered, but the audit log could not record the answer \(ATTEST_EVENT_INVALID\), so it is withheld; the call took effect upstream/);
      assert.doesNotMatch(error.message, /127\.0\.0\.1|attest-test-/, 'no broker address or topic');
      assert.ok(error.data.receipt !== undefined, 'the withheld outcome was durable at once: the error carries its receipt');
      callId = error.data.callId;
      const outcome = (await gw.events()).find((e) => e.callId === callId && e.type === 'ErrorReturned');
      assert.ok(outcome?.type === 'ErrorReturned');
      assert.deepEqual(outcome.data.withheld, { reason: 'log-refused', logError: 'ATTEST_EVENT_INVALID', digest: digestOf(answered), bytes: Buffer.byteLength(canonicalize(answered)), isError: false });
    } finally {
      await gw.close();
    }
    const reader = await openEventLogReader(parseConfig({ log, upstreams: { x: { transport: 'stdio', command: 'node' } } }).config.log);
    const types: string[] = [];
    for await (const { event } of reader.read()) if (event.callId === callId) types.push(event.type);
    await reader.close();
    assert.deepEqual(types, ['RequestReceived', 'DecisionMade', 'ErrorReturned'], 'request, decision, the withheld outcome: the record the topic refused is not in it');
  });

  it('broker stopped under load: fails closed; restarted: recovers by itself; nothing acknowledged is lost', { timeout: 300_000 }, async (t) => {
    let broker: LocalService;
    try {
      broker = await startLocalService('kafka');
    } catch (error) {
      assert.fail(`a dedicated Kafka broker could not be started for the outage test: ${(error as Error).message}`);
    }
    cleanup.push(() => broker.dispose());
    const journal = path.join(os.tmpdir(), `attest-kafka-outage-${process.pid}.ndjson`);
    cleanup.push(() => rm(journal, { force: true }));
    const log = kafkaLog([broker.endpoint]);
    const gw: TestGateway = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream({ env: { FIXTURE_JOURNAL: journal } }) }, log });
    cleanup.push(() => gw.close());
    const mcp = `${gw.url}/mcp`;

    const phase = { current: 'before' as 'before' | 'outage' | 'after', stop: false };
    const tally = { before: 0, outage: 0, after: 0, refusedClosed: 0, otherErrors: [] as string[] };
    /** Calls answered -32014: the upstream ran them; each must end with its withheld outcome in the topic. */
    const withheld: string[] = [];
    const deadline = Date.now() + 150_000;
    const agents = Array.from({ length: 6 }, async (_, agent) => {
      const { sessionId, result } = await rawInitialize(mcp, gw.headers);
      const headers = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
      for (let n = 0; n < 2000 && !phase.stop && Date.now() < deadline; n++) {
        const r = await rawPost(mcp, { jsonrpc: '2.0', id: n + 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: `k${agent}-${n}` } } }, headers);
        const message = r.messages.find((m) => m['id'] === n + 2);
        if (message?.['result'] !== undefined) tally[phase.current]++;
        else {
          const error = message?.['error'] as { code: number; data?: { errorCode?: string; callId?: string } } | undefined;
          // Fail closed: the request not recorded (-32011), or the result not recorded (-32014).
          if (error?.code === -32014 && error.data?.callId !== undefined) withheld.push(error.data.callId);
          if (error?.code === -32011 || error?.code === -32014) tally.refusedClosed++;
          else tally.otherErrors.push(`HTTP ${r.status}: ${r.text.slice(0, 200)}`);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    });

    const waitFor = async (what: string, ok: () => boolean, ms: number): Promise<void> => {
      const until = Date.now() + ms;
      while (!ok()) {
        assert.ok(Date.now() < until, `timed out waiting for ${what} (${JSON.stringify({ ...tally, otherErrors: tally.otherErrors.length })})`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    await waitFor('calls before the outage', () => tally.before >= 60, 60_000);
    phase.current = 'outage';
    await broker.stop();
    await waitFor('calls refused while the broker is down', () => tally.refusedClosed >= 6, 60_000);
    await broker.start();
    phase.current = 'after';
    await waitFor('the gateway to recover by itself', () => tally.after >= 30, 120_000);
    phase.stop = true;
    await Promise.all(agents);
    await gw.close();
    t.diagnostic(`answered before: ${tally.before}, during the outage: ${tally.outage}, after: ${tally.after}; refused closed: ${tally.refusedClosed} (${withheld.length} of them -32014); other errors: ${tally.otherErrors.length}`);
    assert.deepEqual(tally.otherErrors, [], 'every failed call failed closed with a log error');

    const config = parseConfig({ log, upstreams: { x: { transport: 'stdio', command: 'node' } } }).config.log;
    const report = await verifyEventLog(config);
    assert.equal(report.ok, true, JSON.stringify(report.firstFailure));
    const events: AttestEvent[] = [];
    const ids = new Set<string>();
    const reader = await openEventLogReader(config);
    for await (const { event } of reader.read()) {
      assert.ok(!ids.has(event.id), `event ${event.id} read twice (readers deduplicate on id)`);
      ids.add(event.id);
      events.push(event);
    }
    await reader.close();
    // A result the brokers did not acknowledge may still be in the topic (the writer adopts it): then
    // the call has its ResultReturned and, after it, the withheld outcome that says what the agent got.
    let adopted = 0;
    for (const callId of withheld) {
      const outcomes = events.filter((e) => e.callId === callId && (e.type === 'ResultReturned' || e.type === 'ErrorReturned' || e.type === 'OutcomeUnknown'));
      const last = outcomes.at(-1);
      assert.ok(last?.type === 'ErrorReturned' && last.data.withheld !== undefined, `call ${callId}, answered -32014, ends with its withheld outcome (${outcomes.map((e) => e.type).join(', ')})`);
      if (outcomes.some((e) => e.type === 'ResultReturned')) adopted++;
    }
    t.diagnostic(`calls answered -32014: ${withheld.length}, each ending with its withheld outcome; ${adopted} of them also have the ResultReturned the brokers had not acknowledged`);
    const recorded = new Map<string, string>();
    const allowed = new Set<string>();
    for (const e of events) {
      if (e.type === 'RequestReceived' && e.data.method === 'tools/call' && e.callId !== undefined) {
        const text = (e.data.params.body as { arguments?: { text?: string } } | undefined)?.arguments?.text;
        if (text !== undefined) recorded.set(text, e.callId);
      }
      if (e.type === 'DecisionMade' && e.data.decision === 'allow' && e.callId !== undefined) allowed.add(e.callId);
    }
    const received = (await readFile(journal, 'utf8'))
      .split('\n')
      .filter((line) => line.length > 0)
      .map((line) => JSON.parse(line) as { method: string; tool?: string; arguments?: { text?: string } })
      .filter((entry) => entry.method === 'tools/call' && entry.tool === 'echo');
    assert.ok(received.length >= tally.before + tally.after, `the upstream received ${received.length} calls`);
    for (const entry of received) {
      const callId = recorded.get(entry.arguments?.text ?? '');
      assert.ok(callId !== undefined && allowed.has(callId), `call ${entry.arguments?.text} reached the upstream without an acknowledged request and decision in Kafka`);
    }
  });
});
