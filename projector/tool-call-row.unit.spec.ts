/** The `tool_calls` fold: a row completed across batches, replays that change nothing, approvals and their wait. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { AttestEvent } from '#schemas';
import type { StoredEvent } from '#eventlog';
import { foldToolCall } from './tool-call-row.ts';
import type { ToolCallRow } from './tool-call-row.ts';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const actor = { kind: 'apiKey', id: 'k1', tenant: 't1', team: 'ops', agent: 'bot', roles: [] } as const;
const approver = { kind: 'apiKey', id: 'alice', tenant: 't1', roles: ['attest:approver'] } as const;

function stored(index: number, type: AttestEvent['type'], data: Record<string, unknown>, at: number, who: AttestEvent['actor'] = actor): StoredEvent {
  const event = { id: `00000000-0000-4000-8000-${String(index).padStart(12, '0')}`, type, schemaVersion: '2.0', occurredAt: new Date(at).toISOString(), tenant: 't1', stream: 's1', callId: 'call-1', traceparent: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`, actor: who, seq: index + 1, prevHash: null, hash: 'f'.repeat(64), data };
  return { event: event as unknown as AttestEvent, position: { backend: 'file', index, segment: 0, offset: index * 100 } };
}

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const request = stored(3, 'RequestReceived', { from: 'agent', method: 'tools/call', jsonrpcId: 1, upstream: 'fs', target: 'read', params: { recording: 'digest', digest: DIGEST, bytes: 42 } }, T0);
const allow = stored(5, 'DecisionMade', { decision: 'allow', stage: 'policy', ruleId: 'r1', reason: 'ok', route: 'forward', policyHash: DIGEST, enforcement: { cost: 2, limits: ['b1'], argumentsDigest: DIGEST } }, T0 + 1);
const result = stored(9, 'ResultReturned', { from: 'upstream', upstream: 'fs', isError: false, durationMs: 12.5, result: { recording: 'full', digest: DIGEST, bytes: 7 } }, T0 + 14);

const fold = (row: ToolCallRow | undefined, ...events: StoredEvent[]): ToolCallRow | undefined => events.reduce<ToolCallRow | undefined>((r, e) => foldToolCall(r, e), row);

describe('tool_calls fold', () => {
  it('completes a row whose events come in different batches, as one batch would', () => {
    const whole = fold(undefined, request, allow, result);
    const firstBatch = fold(undefined, request);
    assert.equal(firstBatch?.status, 'pending');
    assert.equal(firstBatch?.version, 3);
    const split = fold(fold(firstBatch, allow), result);
    assert.deepEqual(split, whole);
    assert.equal(whole?.status, 'ok');
    assert.equal(whole?.version, 9);
    assert.deepEqual([whole?.principal, whole?.team, whole?.agent, whole?.tool, whole?.cost, whole?.latency_ms, whole?.trace_id, whole?.span_id], ['k1', 'ops', 'bot', 'read', 2, 12.5, '1'.repeat(32), '2'.repeat(16)]);
  });

  it('ignores events already folded in: a replayed batch leaves the row as it was', () => {
    const whole = fold(undefined, request, allow, result);
    assert.deepEqual(fold(whole, request, allow, result), whole);
    // An older event replayed alone (its batch began after the RequestReceived) changes nothing either, version included.
    assert.deepEqual(fold(whole, allow), whole);
    const deny = stored(5, 'DecisionMade', { decision: 'deny', stage: 'policy', ruleId: 'no', reason: 'no', route: 'local' }, T0 + 1);
    assert.deepEqual(fold(whole, deny), whole);
  });

  it('has no row to fold into without the RequestReceived', () => {
    assert.equal(foldToolCall(undefined, allow), undefined);
  });

  it('records a denial, an error outcome after it, and an approval with who granted it and how long the call waited', () => {
    const deny = stored(5, 'DecisionMade', { decision: 'deny', stage: 'policy', ruleId: 'no', reason: 'no', route: 'local' }, T0 + 1);
    const error = stored(6, 'ErrorReturned', { from: 'gateway', jsonrpcCode: -32010, errorCode: 'ATTEST_DENIED', message: 'no', durationMs: 1 }, T0 + 2);
    assert.equal(fold(undefined, request, deny)?.status, 'denied');
    assert.deepEqual([fold(undefined, request, deny, error)?.status, fold(undefined, request, deny, error)?.error_code], ['denied', 'ATTEST_DENIED']);
    const held = stored(4, 'ApprovalRequested', { upstream: 'fs', target: 'read', argumentsDigest: DIGEST, ruleId: 'hold-it', reason: 'r', approverRoles: ['attest:approver'], timeoutMs: 60_000, expiresAt: new Date(T0 + 60_000).toISOString(), instance: 'gw-1' }, T0 + 1);
    const granted = stored(7, 'ApprovalGranted', { reason: 'fine' }, T0 + 5_001, approver);
    const allowed = stored(8, 'DecisionMade', { decision: 'allow', stage: 'approval', ruleId: 'hold-it', reason: 'approved', route: 'forward' }, T0 + 5_001);
    assert.equal(fold(undefined, request, held)?.status, 'held');
    const row = fold(undefined, request, held, granted, allowed, result);
    assert.deepEqual([row?.status, row?.approval, row?.approver, row?.approval_wait_ms, row?.approval_rule_id], ['ok', 'granted', 'alice', 5_000, 'hold-it']);
  });
});
