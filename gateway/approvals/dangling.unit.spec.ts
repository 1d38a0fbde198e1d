/**
 * Approval expiry at start on hand-built logs (given / when / then): a restarted instance expires
 * the approvals it left pending, and never another replica's, not even past their deadline (their
 * events belong in that replica's session stream; it settles them itself).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { digestOf } from '#schemas';
import type { AttestEvent, EventDraft, Principal } from '#schemas';
import { InMemoryLog } from '../given-log.ts';
import { ProjectionsFold } from '#projections';
import { draft, Recorder } from '../recorder.ts';
import { expireDanglingApprovals } from './dangling.ts';

const NOW = Date.parse('2030-06-01T12:00:00Z');
const agent: Principal = { kind: 'apiKey', id: 'bot', tenant: 't1', roles: [] };
const approver: Principal = { kind: 'apiKey', id: 'lead', tenant: 't1', roles: ['lead'] };
const session = (stream: string, actor = agent) => ({ tenant: 't1', stream, actor });

const opened = (stream: string, instance: string): EventDraft => draft(session(stream), 'SessionOpened', { transport: 'streamable-http', endpoint: '/mcp', upstreams: ['pay'], instance });
const held = (stream: string, callId: string, instance: string, expiresAt: number): EventDraft =>
  draft(session(stream), 'ApprovalRequested', { upstream: 'pay', target: 'transfer', argumentsDigest: digestOf({ callId }), ruleId: 'big-payments', reason: 'over 1000', approverRoles: ['lead'], timeoutMs: 60_000, expiresAt: new Date(expiresAt).toISOString(), instance }, { callId });
const granted = (stream: string, callId: string): EventDraft => draft(session(stream, approver), 'ApprovalGranted', { reason: 'ok' }, { callId });

async function whenExpired(given: readonly EventDraft[], instance: string): Promise<{ count: number; appended: readonly AttestEvent[] }> {
  const log = new InMemoryLog(given);
  const fold = new ProjectionsFold(undefined);
  for await (const { event } of log.read()) fold.push(event);
  const count = await expireDanglingApprovals(fold.state.calls, new Recorder(log), instance, NOW);
  return { count, appended: log.appended };
}

describe('approval expiry at start: only this instance’s approvals', () => {
  it('given its own pending approval and another replica’s past its deadline, when it restarts, then it expires only its own, in its own session', async () => {
    const { count, appended } = await whenExpired(
      [opened('sa', 'gw-a'), opened('sb', 'gw-b'), held('sa', 'a-1', 'gw-a', NOW + 60_000), held('sb', 'b-1', 'gw-b', NOW - 60_000), held('sb', 'b-2', 'gw-b', NOW + 60_000)],
      'gw-a',
    );
    assert.equal(count, 1);
    assert.deepEqual(
      appended.map((e) => `${e.type} ${e.stream} ${e.callId ?? ''}`),
      ['ApprovalExpired sa a-1', 'DecisionMade sa a-1', 'ErrorReturned sa a-1'],
    );
    assert.match(JSON.stringify(appended[0]?.data), /gateway instance \\"gw-a\\" restarted while the call waited for approval/);
  });

  it('given approvals already settled, then nothing is expired', async () => {
    assert.deepEqual(await whenExpired([opened('sa', 'gw-a'), held('sa', 'a-1', 'gw-a', NOW - 1), granted('sa', 'a-1')], 'gw-a'), { count: 0, appended: [] });
  });

  it('given only another replica’s approvals, long past their deadline, then nothing is appended (the owner settles them when it restarts)', async () => {
    assert.deepEqual(await whenExpired([opened('sb', 'gw-b'), held('sb', 'b-1', 'gw-b', NOW - 3_600_000)], 'gw-a'), { count: 0, appended: [] });
  });
});
