/**
 * The reconciler on hand-built logs (given / when / then): a restarted instance records
 * OutcomeUnknown for the forwarded calls without an outcome in the sessions it owns, and for no
 * other replica's session; sessions of logs written before SessionOpened named its instance belong
 * to the instance of the latest GatewayStarted before them.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf, SYSTEM_PRINCIPAL } from '#schemas';
import type { AttestEvent, EventDraft, Principal } from '#schemas';
import { InMemoryLog } from './given-log.ts';
import { ProjectionsFold } from '#projections';
import { reconcileOutcomes } from './reconciler.ts';
import { draft, Recorder } from './recorder.ts';

const agent: Principal = { kind: 'apiKey', id: 'bot', tenant: 't1', roles: [] };
const session = (stream: string) => ({ tenant: 't1', stream, actor: agent });

const started = (instance: string): EventDraft => draft({ tenant: 'system', stream: `system-${instance}`, actor: SYSTEM_PRINCIPAL }, 'GatewayStarted', { instance, version: '0.0.0', configHash: digestOf({ instance }), upstreams: ['files'] });
/** Without `instance`: as written before SessionOpened recorded it. */
const opened = (stream: string, instance?: string): EventDraft => draft(session(stream), 'SessionOpened', { transport: 'streamable-http', endpoint: '/mcp', upstreams: ['files'], ...(instance !== undefined && { instance }) });
const requested = (stream: string, callId: string): EventDraft =>
  draft(session(stream), 'RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 2, upstream: 'files', target: 'read', params: { recording: 'digest', digest: digestOf({ callId }), bytes: 2 } }, { callId });
const forwarded = (stream: string, callId: string): EventDraft => draft(session(stream), 'DecisionMade', { decision: 'allow', stage: 'tool-access', ruleId: 'key:allowTools', reason: 'allowed', route: 'forward' }, { callId });
const denied = (stream: string, callId: string): EventDraft => draft(session(stream), 'DecisionMade', { decision: 'deny', stage: 'policy', ruleId: 'no', reason: 'denied', route: 'local' }, { callId });
const answered = (stream: string, callId: string): EventDraft => draft(session(stream), 'ResultReturned', { from: 'upstream', upstream: 'files', isError: false, durationMs: 1, result: { recording: 'digest', digest: digestOf({ callId }), bytes: 2 } }, { callId });

/** When `instance` reconciles the given log: what it appended. */
async function whenReconciled(given: readonly EventDraft[], instance: string): Promise<{ count: number; appended: readonly AttestEvent[] }> {
  const log = new InMemoryLog(given);
  const fold = new ProjectionsFold(undefined);
  for await (const { event } of log.read()) fold.push(event);
  const count = await reconcileOutcomes(fold.state.calls, new Recorder(log), instance);
  return { count, appended: log.appended };
}

const unknownFor = (appended: readonly AttestEvent[]): string[] => appended.map((e) => `${e.type} ${e.stream} ${e.callId ?? ''}`);

describe('reconciler: OutcomeUnknown only in the sessions this instance owns', () => {
  // Two replicas on one log, each with a session whose call was forwarded and has no outcome yet:
  // gw-a crashed mid-call; gw-b is live, its call in flight.
  const twoReplicas = [
    started('gw-a'),
    started('gw-b'),
    opened('sa', 'gw-a'),
    opened('sb', 'gw-b'),
    requested('sa', 'a-1'),
    forwarded('sa', 'a-1'),
    answered('sa', 'a-1'),
    requested('sb', 'b-1'),
    forwarded('sb', 'b-1'),
    requested('sa', 'a-2'),
    forwarded('sa', 'a-2'),
  ];

  it('given a crashed replica’s open call and a live replica’s call in flight, when the crashed one restarts, then only its own call gets OutcomeUnknown, in its own session', async () => {
    const { count, appended } = await whenReconciled(twoReplicas, 'gw-a');
    assert.equal(count, 1);
    assert.deepEqual(unknownFor(appended), ['OutcomeUnknown sa a-2']);
    assert.equal(appended[0]?.seq, 7, 'chained onto its own session’s head');
  });

  it('given the same log, when the other replica restarts, then only its call', async () => {
    const { appended } = await whenReconciled(twoReplicas, 'gw-b');
    assert.deepEqual(unknownFor(appended), ['OutcomeUnknown sb b-1']);
  });

  it('given a log of neither instance’s sessions, when a third instance starts, then it appends nothing', async () => {
    assert.deepEqual(await whenReconciled(twoReplicas, 'gw-c'), { count: 0, appended: [] });
  });

  it('given calls answered, denied or never decided, then none of them is a gap', async () => {
    const { appended } = await whenReconciled([started('gw-a'), opened('s', 'gw-a'), requested('s', 'ok'), forwarded('s', 'ok'), answered('s', 'ok'), requested('s', 'no'), denied('s', 'no'), requested('s', 'held')], 'gw-a');
    assert.deepEqual(appended, []);
  });

  it('given a call whose result was withheld (contract 2.1: ErrorReturned.withheld, recorded after the log refused the result), then it has its outcome and is not a gap', async () => {
    const withheld = draft(session('s'), 'ErrorReturned', {
      from: 'gateway',
      upstream: 'files',
      jsonrpcCode: -32014,
      errorCode: 'ATTEST_RESULT_NOT_RECORDED',
      message: 'withheld',
      durationMs: 3,
      withheld: { reason: 'log-unavailable', logError: 'ATTEST_LOG_UNAVAILABLE, ENOSPC', digest: digestOf({ big: true }), bytes: 12 },
    }, { callId: 'w' });
    assert.deepEqual((await whenReconciled([started('gw-a'), opened('s', 'gw-a'), requested('s', 'w'), forwarded('s', 'w'), withheld], 'gw-a')).appended, []);
    assert.deepEqual(unknownFor((await whenReconciled([started('gw-a'), opened('s', 'gw-a'), requested('s', 'w'), forwarded('s', 'w')], 'gw-a')).appended), ['OutcomeUnknown s w'], 'without it, the call is a gap');
  });

  it('given a call in a stream whose SessionOpened the log does not hold, then it is left alone (its owner is unknown)', async () => {
    const { appended } = await whenReconciled([started('gw-a'), requested('orphan', 'o-1'), forwarded('orphan', 'o-1')], 'gw-a');
    assert.deepEqual(appended, []);
  });
});

describe('reconciler: sessions opened before SessionOpened named its instance', () => {
  // A log with one writer at a time: gw-1 ran, then the same log was run as gw-2.
  const legacy = [
    started('gw-1'),
    opened('s1'),
    requested('s1', 'c1'),
    forwarded('s1', 'c1'),
    started('gw-2'),
    opened('s2'),
    requested('s2', 'c2'),
    forwarded('s2', 'c2'),
    // Recorded by a newer gateway: its own instance wins over the latest GatewayStarted.
    opened('s3', 'gw-1'),
    requested('s3', 'c3'),
    forwarded('s3', 'c3'),
  ];

  it('given sessions without an instance, then each belongs to the instance of the latest GatewayStarted before its SessionOpened', async () => {
    assert.deepEqual(unknownFor((await whenReconciled(legacy, 'gw-1')).appended), ['OutcomeUnknown s1 c1', 'OutcomeUnknown s3 c3']);
    assert.deepEqual(unknownFor((await whenReconciled(legacy, 'gw-2')).appended), ['OutcomeUnknown s2 c2']);
  });

  it('given a session opened before any GatewayStarted and without an instance, then nobody owns it', async () => {
    assert.deepEqual((await whenReconciled([opened('s0'), requested('s0', 'c0'), forwarded('s0', 'c0'), started('gw-1')], 'gw-1')).appended, []);
  });
});
