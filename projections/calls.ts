/**
 * Calls, approvals and sessions folded from the log: what is still open, and who owns it. The
 * gateway's start-up asks it which of its own calls were forwarded and never got an outcome
 * (OutcomeUnknown), which of its approvals nobody settled (ApprovalExpired), and which of its
 * sessions were left open by a crash; the projector's read models use the same classification.
 *
 * Bounded: a call leaves the state when it ends or when its session closes (nothing more can
 * happen in a closed session), a session when it closes, an approval when it is settled.
 *
 * Ownership (docs/architecture.md "Several replicas"): the instance that opened a session alone
 * appends to its stream. SessionOpened names it in `data.instance`; logs written before that field
 * had one writer, so such a session belongs to the instance of the latest GatewayStarted before it.
 */
import type { AttestEvent, EventOfType } from '#schemas';

/** An agent call with no outcome yet. */
export interface OpenCall {
  readonly callId: string;
  readonly stream: string;
  readonly tenant: string;
  readonly requestEventId: string;
  readonly method: string;
  readonly upstream: string | undefined;
  /** The instance owning the call's session when the request was recorded (undefined: unknown). */
  readonly owner: string | undefined;
  /** An allow DecisionMade routed it to an upstream. */
  forwarded: boolean;
}

export interface OpenSession {
  /** The owning instance (undefined: opened before any GatewayStarted, and written without an instance). */
  readonly owner: string | undefined;
  readonly tenant: string;
}

/** A held call nobody has decided yet. */
export interface PendingApproval {
  readonly callId: string;
  readonly stream: string;
  readonly tenant: string;
  readonly requestedAt: string;
  readonly upstream: string;
  readonly ruleId: string;
  readonly expiresAt: string;
  /** The instance holding the call (ApprovalRequested.data.instance). */
  readonly instance: string;
}

export interface CallsState {
  readonly calls: Map<string, OpenCall>;
  readonly approvals: Map<string, PendingApproval>;
  /** Open session streams. */
  readonly sessions: Map<string, OpenSession>;
  /** Instance of the latest GatewayStarted: the owner of a SessionOpened without `instance`. */
  lastStarted: string | undefined;
  /** Instances whose latest GatewayStarted has no GatewayStopped after it: running, or ended uncleanly. */
  readonly running: Map<string, RunningInstance>;
}

/** An instance's GatewayStarted not followed by its GatewayStopped. */
export interface RunningInstance {
  readonly startedEventId: string;
  readonly startedAt: string;
}

export function emptyCallsState(): CallsState {
  return { calls: new Map(), approvals: new Map(), sessions: new Map(), lastStarted: undefined, running: new Map() };
}

/** The event types that end a call (its outcome), whoever recorded it. */
export const OUTCOME_TYPES: ReadonlySet<AttestEvent['type']> = new Set(['ResultReturned', 'ErrorReturned', 'OutcomeUnknown']);
const SETTLED_TYPES: ReadonlySet<AttestEvent['type']> = new Set(['ApprovalGranted', 'ApprovalDenied', 'ApprovalExpired', 'ApprovalWithdrawn']);

export function evolveCalls(state: CallsState, event: AttestEvent): void {
  switch (event.type) {
    case 'GatewayStarted':
      state.lastStarted = event.data.instance;
      state.running.set(event.data.instance, { startedEventId: event.id, startedAt: event.occurredAt });
      return;
    case 'GatewayStopped':
      state.running.delete(event.data.instance);
      return;
    case 'SessionOpened':
      state.sessions.set(event.stream, { owner: event.data.instance ?? state.lastStarted, tenant: event.tenant });
      return;
    case 'SessionClosed':
      state.sessions.delete(event.stream);
      for (const [callId, call] of state.calls) if (call.stream === event.stream) state.calls.delete(callId);
      return;
    case 'RequestReceived':
      if (event.callId === undefined || event.data.from !== 'agent') return;
      state.calls.set(event.callId, {
        callId: event.callId,
        stream: event.stream,
        tenant: event.tenant,
        requestEventId: event.id,
        method: event.data.method,
        upstream: event.data.upstream,
        owner: state.sessions.get(event.stream)?.owner,
        forwarded: false,
      });
      return;
    case 'DecisionMade': {
      const call = event.callId === undefined ? undefined : state.calls.get(event.callId);
      if (call !== undefined && event.data.decision === 'allow' && event.data.route === 'forward') call.forwarded = true;
      return;
    }
    case 'ApprovalRequested':
      if (event.callId !== undefined) state.approvals.set(event.callId, approvalOf(event, event.callId));
      return;
    default:
      if (event.callId === undefined) return;
      if (OUTCOME_TYPES.has(event.type)) state.calls.delete(event.callId);
      else if (SETTLED_TYPES.has(event.type)) state.approvals.delete(event.callId);
  }
}

function approvalOf(event: EventOfType<'ApprovalRequested'>, callId: string): PendingApproval {
  const { upstream, ruleId, expiresAt, instance } = event.data;
  return { callId, stream: event.stream, tenant: event.tenant, requestedAt: event.occurredAt, upstream, ruleId, expiresAt, instance };
}

/** Calls of `instance`'s sessions forwarded without an outcome: a restarted instance records OutcomeUnknown for each. */
export function interruptedCalls(state: CallsState, instance: string): OpenCall[] {
  return [...state.calls.values()].filter((call) => call.forwarded && call.owner === instance);
}

/** Approvals `instance` held and nobody settled: a restarted instance records them expired. */
export function danglingApprovals(state: CallsState, instance: string): PendingApproval[] {
  return [...state.approvals.values()].filter((approval) => approval.instance === instance);
}

/** Sessions `instance` opened and never closed: after a restart, none of them can still be running. */
export function openSessionsOf(state: CallsState, instance: string): { readonly stream: string; readonly tenant: string }[] {
  return [...state.sessions].filter(([, session]) => session.owner === instance).map(([stream, session]) => ({ stream, tenant: session.tenant }));
}
