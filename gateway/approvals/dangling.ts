/**
 * Approvals left pending in the log by a gateway that stopped without settling them (a crash:
 * a clean shutdown withdraws every held call). The agent's connection died with that process,
 * so nobody waits for them any more; each is recorded as expired — ApprovalExpired, a deny
 * DecisionMade and an ErrorReturned on the call's own session stream — so the log keeps no
 * request without an outcome.
 *
 * Several replicas may share one log (Kafka, KurrentDB): an approval another live replica holds
 * must not be expired. So only approvals requested by this same instance (it restarted, so they
 * are dead) are expired at once; another instance's only once past their deadline, which a live
 * holder would have recorded itself.
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
  const dead = [...open.values()].filter((e) => e.data.instance === instance || Date.parse(e.data.expiresAt) <= now);
  if (dead.length === 0) return 0;
  const drafts: EventDraft[] = [];
  for (const requested of dead) {
    const context = { tenant: requested.tenant, stream: requested.stream, actor: SYSTEM_PRINCIPAL };
    const extras = { callId: requested.callId };
    const reason = requested.data.instance === instance ? `gateway instance "${instance}" restarted while the call waited for approval` : `no decision by ${requested.data.expiresAt} (instance "${requested.data.instance}" did not settle it)`;
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
