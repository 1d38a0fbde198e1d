/**
 * What a restarted instance finds of its previous life in the log, and records so that the log
 * keeps no call without an outcome and no session without an end (projections/calls.ts folds
 * what is open; this records it):
 *   - calls forwarded but never answered (the gateway died in between): an OutcomeUnknown each,
 *     in the session's own stream, so the gap is part of the chain and every report lists it;
 *   - sessions never closed: a SessionClosed each, after their calls' outcomes.
 * Runs at start, before the gateway serves, and touches only sessions this instance owns: having
 * restarted, none of them can still be running. Several replicas may share the log (Kafka,
 * KurrentDB), and another replica's session may be live, its call merely in flight; appending into
 * its stream would fork its chain. Another instance's are settled by that instance when it
 * restarts under its name.
 */
import { SYSTEM_PRINCIPAL, nowIso } from '#schemas';
import { interruptedCalls, openSessionsOf } from '#projections';
import type { CallsState } from '#projections';
import { draft } from './recorder.ts';
import type { Recorder } from './recorder.ts';

export async function reconcileOutcomes(calls: CallsState, recorder: Recorder, instance: string): Promise<number> {
  const gaps = interruptedCalls(calls, instance);
  if (gaps.length === 0) return 0;
  const detectedAt = nowIso();
  await recorder.record(
    gaps.map((call) =>
      draft({ tenant: call.tenant, stream: call.stream, actor: SYSTEM_PRINCIPAL }, 'OutcomeUnknown', {
        requestEventId: call.requestEventId,
        method: call.method,
        ...(call.upstream !== undefined && { upstream: call.upstream }),
        detectedAt,
      }, { callId: call.callId }),
    ),
  );
  return gaps.length;
}

/** Sessions of this instance a crash left open: each gets its SessionClosed (call after the calls and approvals are settled). */
export async function closeLeftoverSessions(calls: CallsState, recorder: Recorder, instance: string): Promise<number> {
  const open = openSessionsOf(calls, instance);
  if (open.length === 0) return 0;
  const reason = `gateway instance "${instance}" restarted: the session ended with the previous process`;
  await recorder.record(open.map(({ stream, tenant }) => draft({ tenant, stream, actor: SYSTEM_PRINCIPAL }, 'SessionClosed', { reason })));
  return open.length;
}
