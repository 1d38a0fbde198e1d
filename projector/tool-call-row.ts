/**
 * One `tool_calls` row per call (every request with a call id: an agent's tools/call, resources/
 * read …, or an upstream's sampling request), folded from the call's events: RequestReceived,
 * DecisionMade, the approval events, and its outcome (ResultReturned / ErrorReturned /
 * OutcomeUnknown). Pure.
 *
 * A call's events may fall into different batches. A row is always the fold of *all* the call's
 * events up to its `version` (the log index of the last one folded in): the projector folds a
 * batch's events onto the row already stored (read with FINAL) and skips those at or below its
 * version, which makes the fold of a replayed batch a no-op. ReplacingMergeTree(version) keeps
 * the row of the highest version; every version is a prefix of the same call, so the highest is
 * the most complete.
 */
import type { AttestEvent } from '#schemas';
import type { StoredEvent } from '#eventlog';
import { dateTimeOf, principalColumns, traceOf } from './rows.ts';

export interface ToolCallRow {
  readonly call_id: string;
  readonly version: number;
  readonly first_index: number;
  readonly tenant: string;
  readonly stream: string;
  readonly principal_kind: string;
  readonly principal: string;
  readonly team: string;
  readonly agent: string;
  /** Who made the request: `agent` (a call), `upstream` (sampling, elicitation, roots). */
  readonly direction: string;
  readonly method: string;
  readonly upstream: string;
  /** The tool or prompt name, or the resource URI (RequestReceived.target). */
  readonly tool: string;
  readonly requested_at: number;
  readonly requested_at_ms: number;
  readonly recording: string;
  readonly request_digest: string;
  readonly request_bytes: number;
  readonly decision: string;
  readonly stage: string;
  readonly rule_id: string;
  readonly decision_reason: string;
  readonly route: string;
  readonly policy_hash: string;
  readonly decided_at_ms: number | null;
  readonly cost: number;
  readonly limits: readonly string[];
  readonly limit_trip: string;
  readonly limit_trip_id: string;
  readonly arguments_digest: string;
  /** pending | held | denied | ok | tool_error | error | unknown (docs/projector.md). */
  readonly status: string;
  readonly outcome_type: string;
  readonly error_code: string;
  readonly jsonrpc_code: number | null;
  readonly latency_ms: number | null;
  readonly completed_at_ms: number | null;
  readonly result_recording: string;
  readonly result_digest: string;
  readonly result_bytes: number;
  /** '' (none) | requested | granted | denied | expired | withdrawn. */
  readonly approval: string;
  readonly approval_rule_id: string;
  readonly approval_requested_at_ms: number | null;
  readonly approval_decided_at_ms: number | null;
  readonly approver: string;
  readonly approval_wait_ms: number | null;
  readonly trace_id: string;
  readonly span_id: string;
  readonly request_event_id: string;
  readonly decision_event_id: string;
  readonly outcome_event_id: string;
}

/** The event types a call's row is folded from. */
export const CALL_EVENT_TYPES: ReadonlySet<AttestEvent['type']> = new Set([
  'RequestReceived',
  'DecisionMade',
  'ResultReturned',
  'ErrorReturned',
  'OutcomeUnknown',
  'ApprovalRequested',
  'ApprovalGranted',
  'ApprovalDenied',
  'ApprovalExpired',
  'ApprovalWithdrawn',
]);

function opened(stored: StoredEvent, event: Extract<AttestEvent, { type: 'RequestReceived' }>, callId: string): ToolCallRow {
  const at = Date.parse(event.occurredAt);
  const { traceId, spanId } = traceOf(event.traceparent);
  return {
    call_id: callId,
    version: stored.position.index,
    first_index: stored.position.index,
    tenant: event.tenant,
    stream: event.stream,
    ...principalColumns(event),
    direction: event.data.from,
    method: event.data.method,
    upstream: event.data.upstream ?? '',
    tool: event.data.target ?? '',
    requested_at: dateTimeOf(at),
    requested_at_ms: at,
    recording: event.data.params.recording,
    request_digest: event.data.params.digest,
    request_bytes: event.data.params.bytes,
    decision: '',
    stage: '',
    rule_id: '',
    decision_reason: '',
    route: '',
    policy_hash: '',
    decided_at_ms: null,
    cost: 0,
    limits: [],
    limit_trip: '',
    limit_trip_id: '',
    arguments_digest: '',
    status: 'pending',
    outcome_type: '',
    error_code: '',
    jsonrpc_code: null,
    latency_ms: null,
    completed_at_ms: null,
    result_recording: '',
    result_digest: '',
    result_bytes: 0,
    approval: '',
    approval_rule_id: '',
    approval_requested_at_ms: null,
    approval_decided_at_ms: null,
    approver: '',
    approval_wait_ms: null,
    trace_id: traceId,
    span_id: spanId,
    request_event_id: event.id,
    decision_event_id: '',
    outcome_event_id: '',
  };
}

const settledApproval = (row: ToolCallRow, approval: string, at: number, approver: string): ToolCallRow => ({
  ...row,
  approval,
  approval_decided_at_ms: at,
  approver,
  approval_wait_ms: row.approval_requested_at_ms === null ? null : at - row.approval_requested_at_ms,
});

/**
 * The row with one more of the call's events folded in. `undefined` when there is no row to fold
 * into: the call's RequestReceived is not in the read model (the caller quarantines the event).
 * An event at or below the row's version is already in it: the row comes back unchanged.
 */
export function foldToolCall(row: ToolCallRow | undefined, stored: StoredEvent): ToolCallRow | undefined {
  const { event } = stored;
  const callId = event.callId;
  if (callId === undefined) return row;
  if (event.type === 'RequestReceived') return row ?? opened(stored, event, callId);
  if (row === undefined) return undefined;
  const index = stored.position.index;
  if (index <= row.version) return row;
  const at = Date.parse(event.occurredAt);
  const next = ((): ToolCallRow => {
    switch (event.type) {
      case 'DecisionMade': {
        const { data } = event;
        const denied = data.decision === 'deny';
        return {
          ...row,
          decision: data.decision,
          stage: data.stage,
          rule_id: data.ruleId,
          decision_reason: data.reason,
          route: data.route,
          policy_hash: data.policyHash ?? '',
          decided_at_ms: at,
          cost: data.enforcement?.cost ?? 0,
          limits: [...(data.enforcement?.limits ?? [])],
          limit_trip: data.enforcement?.trip?.kind ?? '',
          limit_trip_id: data.enforcement?.trip?.limitId ?? '',
          arguments_digest: data.enforcement?.argumentsDigest ?? row.arguments_digest,
          // An outcome already folded in stays the status; a denial without one is `denied`.
          status: row.outcome_type === '' ? (denied ? 'denied' : 'pending') : row.status,
          decision_event_id: event.id,
        };
      }
      case 'ResultReturned':
        return { ...row, status: event.data.isError ? 'tool_error' : 'ok', outcome_type: event.type, error_code: '', jsonrpc_code: null, latency_ms: event.data.durationMs, completed_at_ms: at, result_recording: event.data.result.recording, result_digest: event.data.result.digest, result_bytes: event.data.result.bytes, outcome_event_id: event.id };
      case 'ErrorReturned':
        return {
          ...row,
          status: row.decision === 'deny' ? 'denied' : 'error',
          outcome_type: event.type,
          error_code: event.data.errorCode ?? '',
          jsonrpc_code: event.data.jsonrpcCode,
          latency_ms: event.data.durationMs,
          completed_at_ms: at,
          result_recording: event.data.data?.recording ?? '',
          result_digest: event.data.data?.digest ?? '',
          result_bytes: event.data.data?.bytes ?? 0,
          outcome_event_id: event.id,
        };
      case 'OutcomeUnknown':
        return { ...row, status: 'unknown', outcome_type: event.type, completed_at_ms: at, outcome_event_id: event.id };
      case 'ApprovalRequested':
        return { ...row, status: row.outcome_type === '' && row.decision === '' ? 'held' : row.status, approval: 'requested', approval_rule_id: event.data.ruleId, approval_requested_at_ms: at, arguments_digest: event.data.argumentsDigest };
      case 'ApprovalGranted':
        return settledApproval(row, 'granted', at, event.actor.id);
      case 'ApprovalDenied':
        return settledApproval(row, 'denied', at, event.actor.id);
      case 'ApprovalExpired':
        return settledApproval(row, 'expired', at, event.actor.id);
      case 'ApprovalWithdrawn':
        return settledApproval(row, 'withdrawn', at, event.actor.id);
      default:
        return row;
    }
  })();
  return { ...next, version: index };
}
