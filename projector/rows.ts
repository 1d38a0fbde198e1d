/**
 * What one log entry becomes in the read model's tables: pure functions, no I/O, shared by every
 * adapter (the embedded one will write the same rows). Column names are those of the ClickHouse
 * tables (schemas/clickhouse/); times are epoch milliseconds plus a `DateTime` in whole seconds.
 */
import type { AttestEvent, EventOfType } from '#schemas';
import { cursorOf } from '#eventlog';
import type { LogEntry, StoredEvent, UnreadableEvent } from '#eventlog';

/** The W3C trace context of an event (`00-<trace id>-<parent span id>-<flags>`), empty strings when absent or malformed. */
export function traceOf(traceparent: string | undefined): { readonly traceId: string; readonly spanId: string } {
  const match = traceparent === undefined ? null : /^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}/.exec(traceparent);
  return { traceId: match?.[1] ?? '', spanId: match?.[2] ?? '' };
}

/** Who acted, as the `events` and `tool_calls` tables name it. */
export function principalColumns(event: AttestEvent): { readonly principal_kind: string; readonly principal: string; readonly team: string; readonly agent: string } {
  return { principal_kind: event.actor.kind, principal: event.actor.id, team: event.actor.team ?? '', agent: event.actor.agent ?? '' };
}

/** Seconds since the epoch, what a `DateTime` column takes in JSONEachRow. */
export const dateTimeOf = (ms: number): number => Math.floor(ms / 1000);

export interface EventRow {
  readonly log_index: number;
  readonly cursor: string;
  readonly event_id: string;
  readonly type: string;
  readonly schema_version: string;
  readonly stream: string;
  readonly seq: number;
  readonly tenant: string;
  readonly principal_kind: string;
  readonly principal: string;
  readonly team: string;
  readonly agent: string;
  readonly call_id: string;
  readonly trace_id: string;
  readonly span_id: string;
  readonly occurred_at: number;
  readonly occurred_at_ms: number;
  readonly hash: string;
  readonly body: string;
}

/** Where a readable event is and what it is: the columns `events` and `quarantine` share. */
function placeOf(stored: StoredEvent): Pick<EventRow, 'log_index' | 'cursor' | 'event_id' | 'type' | 'schema_version' | 'stream' | 'body'> {
  const { event } = stored;
  // The event as written (what its hash covers), not the upcast view.
  return { log_index: stored.position.index, cursor: cursorOf(stored), event_id: event.id, type: event.type, schema_version: String(event.schemaVersion), stream: event.stream, body: JSON.stringify(stored.written ?? event) };
}

export function eventRow(stored: StoredEvent): EventRow {
  const { event } = stored;
  const at = Date.parse(event.occurredAt);
  const { traceId, spanId } = traceOf(event.traceparent);
  return {
    ...placeOf(stored),
    seq: event.seq,
    tenant: event.tenant,
    ...principalColumns(event),
    call_id: event.callId ?? '',
    trace_id: traceId,
    span_id: spanId,
    occurred_at: dateTimeOf(at),
    occurred_at_ms: at,
    hash: event.hash,
  };
}

export interface QuarantineRow {
  readonly log_index: number;
  readonly cursor: string;
  readonly event_id: string;
  readonly type: string;
  readonly schema_version: string;
  readonly stream: string;
  /** `version`, `type` or `shape` (the log's verdict), or `projection` (readable, but not projectable). */
  readonly problem: string;
  readonly reason: string;
  readonly body: string;
  readonly quarantined_at_ms: number;
}

export function quarantineRow(entry: UnreadableEvent, now: number): QuarantineRow {
  return {
    log_index: entry.position.index,
    cursor: cursorOf(entry),
    event_id: entry.envelope.id,
    type: entry.envelope.type,
    schema_version: JSON.stringify(entry.envelope.schemaVersion) ?? '',
    stream: entry.envelope.stream,
    problem: entry.problem,
    reason: entry.reason,
    body: JSON.stringify(entry.written),
    quarantined_at_ms: now,
  };
}

/** A readable event the projection cannot place (e.g. a call event without a call id): kept in the quarantine as well as in `events`. */
export function unprojectableRow(stored: StoredEvent, reason: string, now: number): QuarantineRow {
  return { ...placeOf(stored), problem: 'projection', reason, quarantined_at_ms: now };
}

const common = (stored: StoredEvent): { event_id: string; log_index: number; tenant: string; occurred_at: number; occurred_at_ms: number } => {
  const at = Date.parse(stored.event.occurredAt);
  return { event_id: stored.event.id, log_index: stored.position.index, tenant: stored.event.tenant, occurred_at: dateTimeOf(at), occurred_at_ms: at };
};

export type DecisionRow = ReturnType<typeof decisionRow>;

export function decisionRow(stored: StoredEvent, event: EventOfType<'DecisionMade'>) {
  const { data } = event;
  return {
    ...common(stored),
    call_id: event.callId ?? '',
    stream: event.stream,
    principal: event.actor.id,
    team: event.actor.team ?? '',
    agent: event.actor.agent ?? '',
    decision: data.decision,
    stage: data.stage,
    rule_id: data.ruleId,
    reason: data.reason,
    route: data.route,
    policy_hash: data.policyHash ?? '',
    cost: data.enforcement?.cost ?? 0,
    limits: [...(data.enforcement?.limits ?? [])],
    limit_trip: data.enforcement?.trip?.kind ?? '',
    limit_trip_id: data.enforcement?.trip?.limitId ?? '',
    trace_id: traceOf(event.traceparent).traceId,
  };
}

export type RejectionRow = ReturnType<typeof rejectionRow>;

export function rejectionRow(stored: StoredEvent, event: EventOfType<'RequestRejected'>) {
  const { data } = event;
  return {
    ...common(stored),
    stream: event.stream,
    principal: event.actor.id,
    error_code: data.errorCode,
    http_status: data.httpStatus ?? null,
    jsonrpc_code: data.jsonrpcCode ?? null,
    message: data.message,
    method: data.method ?? '',
    path: data.path ?? '',
    session_id: data.sessionId ?? '',
    remote_address: data.remoteAddress ?? '',
    body_bytes: data.bodyBytes ?? null,
  };
}

export type ConfigHistoryRow = ReturnType<typeof configHistoryRow>;

const CONFIG_EMPTY = {
  instance: '',
  gateway_version: '',
  trigger: '',
  config_hash: '',
  previous_config_hash: '',
  policy_hash: '',
  previous_policy_hash: '',
  changed: [] as string[],
  upstreams: [] as string[],
  upstreams_added: [] as string[],
  upstreams_removed: [] as string[],
  issues: [] as string[],
  key_id: '',
  key_ids: [] as string[],
  scope: '',
  reason: '',
};

type GovernanceEvent = EventOfType<'GatewayStarted' | 'GatewayStopped' | 'ConfigApplied' | 'ConfigRejected' | 'KeyIssued' | 'KeyRevoked'>;

export function configHistoryRow(stored: StoredEvent, event: GovernanceEvent) {
  const base = { ...common(stored), type: event.type, actor: event.actor.id, ...CONFIG_EMPTY };
  switch (event.type) {
    case 'GatewayStarted': {
      const { instance, version, configHash, policyHash, upstreams } = event.data;
      return { ...base, instance, gateway_version: version, config_hash: configHash, policy_hash: policyHash ?? '', upstreams: [...upstreams] };
    }
    case 'GatewayStopped':
      return { ...base, instance: event.data.instance, reason: event.data.reason };
    case 'ConfigApplied': {
      const d = event.data;
      return { ...base, instance: d.instance, trigger: d.trigger, config_hash: d.configHash, previous_config_hash: d.previousConfigHash, policy_hash: d.policyHash ?? '', previous_policy_hash: d.previousPolicyHash ?? '', changed: [...d.changed], upstreams_added: [...d.upstreamsAdded], upstreams_removed: [...d.upstreamsRemoved] };
    }
    case 'ConfigRejected': {
      const d = event.data;
      return { ...base, instance: d.instance, trigger: d.trigger, config_hash: d.configHash ?? '', previous_config_hash: d.currentConfigHash, issues: [...d.issues] };
    }
    case 'KeyIssued':
      return { ...base, key_id: event.data.keyId, key_ids: [event.data.keyId], scope: 'key' };
    case 'KeyRevoked':
      return { ...base, key_id: event.data.keyId ?? '', key_ids: [...event.data.keyIds], scope: event.data.scope, reason: event.data.reason ?? '' };
  }
}

const GOVERNANCE_TYPES: ReadonlySet<AttestEvent['type']> = new Set(['GatewayStarted', 'GatewayStopped', 'ConfigApplied', 'ConfigRejected', 'KeyIssued', 'KeyRevoked']);

export function isGovernanceEvent(event: AttestEvent): event is GovernanceEvent {
  return GOVERNANCE_TYPES.has(event.type);
}

/** An entry the log could not read: the projector quarantines it. */
export function isUnreadable(entry: LogEntry): entry is UnreadableEvent {
  return entry.event === undefined;
}
