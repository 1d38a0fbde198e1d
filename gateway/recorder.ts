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

/**
 * Why the log did not take an append, as the gateway records it and tells the agent: a code and a
 * short cause (a system error such as ENOSPC), never the log's own message — it names the log's
 * directory or brokers, which are the operator's (the cause travels in `cause` to the operator's log).
 */
export class LogRefusal extends GatewayError {
  /** `refused`: the log would not take these events (too large for a record, no canonical form); `unavailable`: it could not write (full disk, timeout, brokers down). */
  readonly kind: 'refused' | 'unavailable';
  readonly logError: string;
  /** The log error's code with its system cause, e.g. `ATTEST_LOG_UNAVAILABLE, ENOSPC`. */
  readonly reason: string;
  constructor(kind: 'refused' | 'unavailable', logError: string, cause: unknown) {
    const system = systemCause(cause);
    const reason = system === undefined ? logError : `${logError}, ${system}`;
    super('ATTEST_LOG_UNAVAILABLE', `The audit log ${kind === 'refused' ? 'refused to record' : 'could not record'} this message (${reason}); nothing was forwarded (fail closed)`, { logError }, { cause });
    this.name = 'LogRefusal';
    this.kind = kind;
    this.logError = logError;
    this.reason = reason;
  }
}

/** The first system error code (`ENOSPC`, `EIO` …) down an error's cause chain. */
function systemCause(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Error; depth++) {
    for (const key of ['errno', 'code'] as const) {
      const value: unknown = Reflect.get(current, key);
      if (typeof value === 'string' && /^E[A-Z0-9]+$/.test(value)) return value;
    }
    current = current.cause;
  }
  return undefined;
}

/** How often outcomes the log could not take are offered to it again (also after every append it takes). */
const BACKLOG_RETRY_MS = 1000;
/** Beyond this many, the oldest is dropped (and logged): the next start records it as OutcomeUnknown. */
const MAX_BACKLOG = 10_000;

export class Recorder {
  readonly log: EventLog;
  readonly #observers: readonly RecordObserver[];
  #lastAppendAt: number | undefined;
  #failing: { readonly since: number; lastError: string } | undefined;
  /** Appends the log refused that must still be recorded, oldest first (#recordEventually). */
  readonly #backlog: (readonly EventDraft[])[] = [];
  #retry: NodeJS.Timeout | undefined;
  #draining: Promise<void> | undefined;
  #onDropped: ((drafts: readonly EventDraft[]) => void) | undefined;
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

  /** Appends and awaits durability. Rejects with a LogRefusal (ATTEST_LOG_UNAVAILABLE) on any log failure. */
  async record(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[]> {
    const startedAt = this.#observers.length === 0 ? 0 : performance.now();
    let stored: readonly StoredEvent[];
    try {
      stored = await this.log.append(drafts);
    } catch (error) {
      this.#failed(error);
      for (const observer of this.#observers) observer.appendFailed(drafts, startedAt);
      // InvalidEventError: nothing was written (a call too large for the backend's record size, or a draft the gateway built wrong).
      if (error instanceof InvalidEventError) throw new LogRefusal('refused', error.code, error);
      if (error instanceof LogUnavailableError) throw new LogRefusal('unavailable', error.code, error);
      throw new LogRefusal('unavailable', 'ATTEST_LOG_FAILED', error);
    }
    this.#lastAppendAt = Date.now();
    this.#failing = undefined;
    for (const observer of this.#observers) observer.appended(drafts, startedAt);
    if (this.#backlog.length > 0) this.#scheduleDrain(0);
    return stored;
  }

  /**
   * Appends an outcome that must reach the log even though the log just refused one (a withheld
   * result): now if it can, else as soon as it takes appends again — retried every second and after
   * every append it takes, until the gateway stops (`drainBacklog`). Resolves with the stored
   * events when durable now, else undefined. What never gets in is the next start's OutcomeUnknown.
   */
  async recordEventually(drafts: readonly EventDraft[]): Promise<readonly StoredEvent[] | undefined> {
    if (this.#backlog.length === 0) {
      try {
        return await this.record(drafts);
      } catch {
        // Kept below.
      }
    }
    this.#backlog.push(drafts);
    if (this.#backlog.length > MAX_BACKLOG) {
      const dropped = this.#backlog.shift();
      if (dropped !== undefined) this.#onDropped?.(dropped);
    }
    this.#scheduleDrain(BACKLOG_RETRY_MS);
    return undefined;
  }

  /** Told of an outcome dropped from a full backlog (the gateway logs it). */
  onBacklogDropped(listener: (drafts: readonly EventDraft[]) => void): void {
    this.#onDropped = listener;
  }

  get backlogSize(): number {
    return this.#backlog.length;
  }

  /** Offers the backlog to the log once more and stops retrying (at a clean stop, before GatewayStopped). Resolves with what is left. */
  async drainBacklog(): Promise<number> {
    clearTimeout(this.#retry);
    this.#retry = undefined;
    await this.#draining;
    await this.#drain();
    clearTimeout(this.#retry);
    this.#retry = undefined;
    return this.#backlog.length;
  }

  #scheduleDrain(ms: number): void {
    if (this.#retry !== undefined || this.#draining !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#draining = this.#drain().finally(() => {
        this.#draining = undefined;
        if (this.#backlog.length > 0) this.#scheduleDrain(BACKLOG_RETRY_MS);
      });
    }, ms);
    this.#retry.unref();
  }

  /** In order, oldest first; stops at the first the log still refuses. */
  async #drain(): Promise<void> {
    while (this.#backlog.length > 0) {
      const next = this.#backlog[0] as readonly EventDraft[];
      try {
        await this.record(next);
      } catch {
        return;
      }
      if (this.#backlog[0] === next) this.#backlog.shift();
    }
  }
}
