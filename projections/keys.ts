/**
 * Run-time API keys folded from the log: the KeyIssued events (first issue of an id wins) and the
 * revocations (first revocation of an id wins). The gateway's key store loads this state at start
 * and applies the same events live; config keys are the key store's business (a config key of
 * the same id takes precedence there).
 */
import type { AttestEvent, EventDraft, EventOfType } from '#schemas';

export type IssuedKey = EventOfType<'KeyIssued'>['data'] & { readonly issuedAt: string };

export interface KeyRevocation {
  readonly at: string;
  readonly reason?: string;
}

export interface KeysState {
  /** In issue order. */
  readonly issued: Map<string, IssuedKey>;
  readonly revoked: Map<string, KeyRevocation>;
}

export function emptyKeysState(): KeysState {
  return { issued: new Map(), revoked: new Map() };
}

/** Applies a KeyIssued / KeyRevoked (a draft just recorded, or an event read back); anything else is ignored. Idempotent. */
export function evolveKeys(state: KeysState, event: AttestEvent | EventDraft): void {
  if (event.type === 'KeyIssued') {
    if (!state.issued.has(event.data.keyId)) state.issued.set(event.data.keyId, { ...event.data, issuedAt: event.occurredAt });
  } else if (event.type === 'KeyRevoked') {
    for (const id of event.data.keyIds) {
      if (!state.revoked.has(id)) state.revoked.set(id, { at: event.occurredAt, ...(event.data.reason !== undefined && { reason: event.data.reason }) });
    }
  }
}
