/** Realistic drafts for tests and benchmarks of event log adapters. */
import { digestOf, newEventId, nowIso, SCHEMA_VERSION } from '#schemas';
import type { EventDraft, Principal } from '#schemas';

const AGENT: Principal = Object.freeze({ kind: 'apiKey', id: 'key-ops', tenant: 'acme', team: 'platform', agent: 'release-bot', roles: Object.freeze(['deployer']) });

/** The n-th draft of a stream: a request, its decision and its result in turn. */
export function sampleDraft(stream: string, n: number): EventDraft {
  const envelope = { id: newEventId(), schemaVersion: SCHEMA_VERSION, occurredAt: nowIso(), tenant: 'acme', stream, callId: `${stream}-call-${Math.floor(n / 3)}`, actor: AGENT } as const;
  const args = { path: `/srv/app/${stream}/${n}.txt`, mode: 'read' };
  switch (n % 3) {
    case 0:
      return { ...envelope, type: 'RequestReceived', data: { from: 'agent', method: 'tools/call', jsonrpcId: n, upstream: 'files', target: 'read_file', params: { recording: 'full', digest: digestOf(args), bytes: 48, body: args } } };
    case 1:
      return { ...envelope, type: 'DecisionMade', data: { decision: 'allow', stage: 'tool-access', ruleId: 'allow-files', reason: 'key may call files__*', route: 'forward' } };
    default:
      return { ...envelope, type: 'ResultReturned', data: { from: 'upstream', upstream: 'files', isError: false, durationMs: 3.5, result: { recording: 'digest', digest: digestOf({ n }), bytes: 120 } } };
  }
}
