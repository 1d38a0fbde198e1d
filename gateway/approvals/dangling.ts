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
import type { EventDraft, EventOfType } from '#schemas';
import type { LogReadable } from '#eventlog';
import { draft } from '../recorder.ts';
import type { Recorder } from '../recorder.ts';

const SETTLED = new Set(['ApprovalGranted', 'ApprovalDenied', 'ApprovalExpired', 'ApprovalWithdrawn']);

export async function expireDanglingApprovals(log: LogReadable, recorder: Recorder, instance: string, now = Date.now()): Promise<number> {
  const open = new Map<string, EventOfType<'ApprovalRequested'>>();
  for await (const { event } of log.read()) {
    if (event.callId === undefined) continue;
    if (event.type === 'ApprovalRequested') open.set(event.callId, event);
    else if (SETTLED.has(event.type)) open.delete(event.callId);
  }
  const dead = [...open.values()].filter((e) => e.data.instance === instance);
  if (dead.length === 0) return 0;
  const drafts: EventDraft[] = [];
  for (const requested of dead) {
    const context = { tenant: requested.tenant, stream: requested.stream, actor: SYSTEM_PRINCIPAL };
    const extras = { callId: requested.callId };
    const reason = `gateway instance "${instance}" restarted while the call waited for approval`;
    const message = `Approval for rule "${requested.data.ruleId}" expired: ${reason}; denied (fail closed)`;
    drafts.push(
      draft(context, 'ApprovalExpired', { reason, expiresAt: requested.data.expiresAt }, extras),
      draft(context, 'DecisionMade', { decision: 'deny', stage: 'approval', ruleId: requested.data.ruleId, reason: message, route: 'local' }, extras),
      draft(context, 'ErrorReturned', { from: 'gateway', upstream: requested.data.upstream, jsonrpcCode: -32025, errorCode: 'ATTEST_APPROVAL_EXPIRED', message, durationMs: Math.max(0, now - Date.parse(requested.occurredAt)) }, extras),
    );
  }
  await recorder.record(drafts);
  return dead.length;
}
