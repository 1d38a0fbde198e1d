/**
 * Approvals left pending in the log by a gateway that stopped without settling them (a crash:
 * a clean shutdown withdraws every held call). The agent's connection died with that process,
 * so nobody waits for them any more; each is recorded as expired — ApprovalExpired, a deny
 * DecisionMade and an ErrorReturned on the call's own session stream — so the log keeps no
 * request without an outcome.
 *
 * Several replicas may share one log (Kafka, KurrentDB): only approvals held by this same instance
 * are expired (it restarted, so they are dead). Another instance's are never touched, not even past
 * their deadline: their events belong in that instance's session stream, which only it appends to
 * (appending there would fork the chain). A live holder expires them itself when they time out;
 * a stopped one settles them when it restarts under its name.
 */
import { SYSTEM_PRINCIPAL } from '#schemas';
import type { EventDraft } from '#schemas';
import { danglingApprovals } from '#projections';
import type { CallsState } from '#projections';
import { draft } from '../recorder.ts';
import type { Recorder } from '../recorder.ts';

export async function expireDanglingApprovals(calls: CallsState, recorder: Recorder, instance: string, now = Date.now()): Promise<number> {
  const dead = danglingApprovals(calls, instance);
  if (dead.length === 0) return 0;
  const drafts: EventDraft[] = [];
  for (const requested of dead) {
    const context = { tenant: requested.tenant, stream: requested.stream, actor: SYSTEM_PRINCIPAL };
    const extras = { callId: requested.callId };
    const reason = `gateway instance "${instance}" restarted while the call waited for approval`;
    const message = `Approval for rule "${requested.ruleId}" expired: ${reason}; denied (fail closed)`;
    drafts.push(
      draft(context, 'ApprovalExpired', { reason, expiresAt: requested.expiresAt }, extras),
      draft(context, 'DecisionMade', { decision: 'deny', stage: 'approval', ruleId: requested.ruleId, reason: message, route: 'local' }, extras),
      draft(context, 'ErrorReturned', { from: 'gateway', upstream: requested.upstream, jsonrpcCode: -32025, errorCode: 'ATTEST_APPROVAL_EXPIRED', message, durationMs: Math.max(0, now - Date.parse(requested.requestedAt)) }, extras),
    );
  }
  await recorder.record(drafts);
  return dead.length;
}
