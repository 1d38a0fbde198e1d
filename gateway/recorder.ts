/**
 * Builds event drafts for one stream and appends them: the only path from the gateway to the
 * log. A log failure becomes ATTEST_LOG_UNAVAILABLE, which callers turn into a refusal: no
 * record, no call.
 */
import { performance } from 'node:perf_hooks';
import { GatewayError, canonicalize, newEventId, nowIso, rememberCanonical, sha256Hex, SCHEMA_VERSION } from '#schemas';
import type { EventData, EventDraft, EventType, Principal, RecordedPayload } from '#schemas';
import { InvalidEventError, LogUnavailableError } from '#eventlog';
import type { EventLog, StoredEvent } from '#eventlog';
import { redactString, redactValue } from './redaction/redact.ts';

/** Sees every append after it settled (metrics, trace spans): synchronous, cheap, never throws. */
export interface RecordObserver {
  /** `startedAt` is the `performance.now()` at which the append began. */
  appended(drafts: readonly EventDraft[], startedAt: number): void;
  appendFailed(drafts: readonly EventDraft[], startedAt: number): void;
}

export type Recording = 'full' | 'redacted' | 'digest';

/** What the log keeps of a payload; the digest of the original is always kept. */
export function recordPayload(value: unknown, recording: Recording): RecordedPayload {
  const body = value ?? null;
  // One canonical serialisation gives both the digest and the size.
  const canonical = canonicalize(body);
  // The event that carries the body is canonicalised again to be hashed: it splices this form in
  // instead of walking the body twice (schemas/canonical.ts). Bodies are not mutated once recorded.
  if (recording === 'full' && typeof body === 'object' && body !== null) rememberCanonical(body, canonical);
  const base = { recording, digest: `sha256:${sha256Hex(canonical)}` as const, bytes: Buffer.byteLength(canonical) };
  if (recording === 'full') return { ...base, body };
  if (recording === 'digest') return base;
  const redacted = redactValue(body);
  return { ...base, body: redacted.value, redactions: redacted.counts };
}

/** A free-text field (an error message) under a data policy: kept as is with `full`, masked otherwise (a digest policy still needs a readable message). */
export function recordText(text: string, recording: Recording): string {
  return recording === 'full' ? text : redactString(text).value;
}

export interface StreamContext {
  readonly tenant: string;
  readonly stream: string;
  readonly actor: Principal;
}

export interface DraftExtras {
  readonly callId?: string | undefined;
  readonly traceparent?: string | undefined;
}

export function draft<T extends EventType>(context: StreamContext, type: T, data: EventData<T>, extras: DraftExtras = {}): EventDraft {
  const event = {
    id: newEventId(),
    schemaVersion: SCHEMA_VERSION,
    type,
    occurredAt: nowIso(),
    tenant: context.tenant,
    stream: context.stream,
    actor: context.actor,
    ...(extras.callId !== undefined && { callId: extras.callId }),
    ...(extras.traceparent !== undefined && { traceparent: extras.traceparent }),
    data,
  };
  return event as unknown as EventDraft; // the generic T ties `type` to `data`; TS cannot see through the mapped union
}

/**
 * What the latest append said about the log (GET /readyz): from a failed append until one
 * succeeds, the log is taken to refuse appends. It is what the log last answered, not a probe.
 */
export type AppendHealth =
  | { readonly appendsFailing: false; readonly lastAppendAt?: string }
  | { readonly appendsFailing: true; readonly failingSince: string; readonly lastError: string; readonly lastAppendAt?: string };

export class Recorder {
  readonly log: EventLog;
  readonly #observers: readonly RecordObserver[];
  #lastAppendAt: number | undefined;
  #failing: { readonly since: number; lastError: string } | undefined;
  constructor(log: EventLog, observers: readonly RecordObserver[] = []) {
    this.log = log;
    this.#observers = observers;
  }

  health(): AppendHealth {
    const lastAppendAt = this.#lastAppendAt === undefined ? {} : { lastAppendAt: new Date(this.#lastAppendAt).toISOString() };
    if (this.#failing === undefined) return { appendsFailing: false, ...lastAppendAt };
    return { appendsFailing: true, failingSince: new Date(this.#failing.since).toISOString(), lastError: this.#failing.lastError, ...lastAppendAt };
  }

  #failed(error: unknown): void {
    // A draft the gateway built wrong says nothing about the log.
    if (error instanceof InvalidEventError) return;
    const lastError = error instanceof LogUnavailableError ? error.code : 'unexpected';
    if (this.#failing === undefined) this.#failing = { since: Date.now(), lastError };
    else this.#failing.lastError = lastError;
  }

  /** Appends and awaits durability. Rejects with GatewayError('ATTEST_LOG_UNAVAILABLE') on any log failure. */
  async record(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    const startedAt = this.#observers.length === 0 ? 0 : performance.now();
    let stored: readonly StoredEvent[];
    try {
      stored = await this.log.append(drafts);
    } catch (error) {
      this.#failed(error);
      for (const observer of this.#observers) observer.appendFailed(drafts, startedAt);
      if (error instanceof InvalidEventError) {
        // Nothing was written (a call too large for the backend's record size, or a draft the gateway built wrong).
        throw new GatewayError('ATTEST_LOG_UNAVAILABLE', `The audit log refused to record this message (${error.message}); nothing was forwarded (fail closed)`, { logError: 'ATTEST_EVENT_INVALID' }, { cause: error });
      }
      if (error instanceof LogUnavailableError) {
        throw new GatewayError('ATTEST_LOG_UNAVAILABLE', `The audit log could not record this message (${error.code}: ${error.message}); nothing was forwarded (fail closed)`, { logError: error.code }, { cause: error });
      }
      throw new GatewayError('ATTEST_LOG_UNAVAILABLE', `The audit log failed unexpectedly (${String(error)}); nothing was forwarded (fail closed)`, undefined, { cause: error });
    }
    this.#lastAppendAt = Date.now();
    this.#failing = undefined;
    for (const observer of this.#observers) observer.appended(drafts, startedAt);
    return stored;
  }
}
