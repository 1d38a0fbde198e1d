/**
 * Finds calls that were forwarded but never got an outcome — the gateway died between
 * forwarding and recording the result — and records an OutcomeUnknown for each, in the
 * session's own stream, so the gap is part of the chain and every report lists it.
 *
 * Runs at start, before the gateway serves, and touches only sessions this instance owns
 * (session-owners.ts): having restarted, none of them can still be running. Several replicas may
 * share the log (Kafka, KurrentDB), and another replica's session may be live, its call merely in
 * flight; appending into its stream would fork its chain. Another instance's interrupted calls are
 * settled by that instance when it restarts under its name.
 */
import { SYSTEM_PRINCIPAL, nowIso } from '#schemas';
import type { AttestEvent } from '#schemas';
import type { LogReadable } from '#eventlog';
import { draft } from './recorder.ts';
import type { Recorder } from './recorder.ts';
import { OwnSessions } from './session-owners.ts';

interface OpenCall {
  readonly request: AttestEvent & { type: 'RequestReceived' };
  forwarded: boolean;
}

export async function reconcileOutcomes(log: LogReadable, recorder: Recorder, instance: string): Promise<number> {
  const open = new Map<string, OpenCall>();
  const own = new OwnSessions(instance);
  for await (const { event } of log.read()) {
    own.evolve(event);
    const callId = event.callId;
    if (callId === undefined) continue;
    switch (event.type) {
      case 'RequestReceived':
        if (event.data.from === 'agent') open.set(callId, { request: event, forwarded: false });
        break;
      case 'DecisionMade': {
        const call = open.get(callId);
        if (call !== undefined && event.data.decision === 'allow' && event.data.route === 'forward') call.forwarded = true;
        break;
      }
      case 'ResultReturned':
      case 'ErrorReturned':
      case 'OutcomeUnknown':
        open.delete(callId);
        break;
      default:
        break;
    }
  }
  const gaps = [...open.values()].filter((call) => call.forwarded && own.owns(call.request.stream));
  if (gaps.length === 0) return 0;
  const detectedAt = nowIso();
  await recorder.record(
    gaps.map(({ request }) =>
      draft({ tenant: request.tenant, stream: request.stream, actor: SYSTEM_PRINCIPAL }, 'OutcomeUnknown', {
        requestEventId: request.id,
        method: request.data.method,
        ...(request.data.upstream !== undefined && { upstream: request.data.upstream }),
        detectedAt,
      }, { callId: request.callId }),
    ),
  );
  return gaps.length;
}
