/**
 * The live sessions of a front door, and the bound on how many there may be: per credential, per
 * tenant and in all (`gateway.sessionLimits`). A slot is taken synchronously before a session opens,
 * so concurrent `initialize` requests cannot overshoot a limit while their SessionOpened is recorded;
 * it is given back when the session leaves the registry, whatever ended it.
 */
import { GatewayError } from '#schemas';
import type { AttestConfig } from '#schemas';
import type { GatewaySession } from './session.ts';

export type SessionLimits = AttestConfig['gateway']['sessionLimits'];

/** Who holds a slot: the credential that opened the session (`key:<id>`, `jwt:<iss>#<sub>`) and its tenant. */
export interface SessionHolder {
  readonly credentialId: string;
  readonly tenant: string;
}

export interface RegisteredSession {
  readonly session: GatewaySession;
  readonly credentialId: string;
}

export class SessionRegistry<E extends RegisteredSession = RegisteredSession> {
  readonly #entries = new Map<string, E>();
  readonly #holders = new Map<string, SessionHolder>();
  readonly #perKey = new Map<string, number>();
  readonly #perTenant = new Map<string, number>();

  /**
   * Takes a slot for session `id`, or throws ATTEST_SESSION_LIMIT naming the limit that is reached.
   * Every slot taken must be given back with `delete(id)` (also when the session then fails to open).
   */
  reserve(id: string, holder: SessionHolder, limits: SessionLimits): void {
    const byKey = this.#perKey.get(holder.credentialId) ?? 0;
    const byTenant = this.#perTenant.get(holder.tenant) ?? 0;
    let reached: { readonly limit: keyof SessionLimits; readonly who: string } | undefined;
    if (this.#holders.size >= limits.total) reached = { limit: 'total', who: 'on this gateway' };
    else if (byTenant >= limits.perTenant) reached = { limit: 'perTenant', who: `for tenant "${holder.tenant}"` };
    else if (byKey >= limits.perKey) reached = { limit: 'perKey', who: 'for this credential' };
    if (reached !== undefined) {
      const max = limits[reached.limit];
      throw new GatewayError(
        'ATTEST_SESSION_LIMIT',
        `Too many open sessions ${reached.who}: ${max} of ${max} (gateway.sessionLimits.${reached.limit}); close one (HTTP DELETE) or wait for idle ones to expire`,
        { limit: reached.limit, max },
      );
    }
    this.#holders.set(id, holder);
    this.#perKey.set(holder.credentialId, byKey + 1);
    this.#perTenant.set(holder.tenant, byTenant + 1);
  }

  add(entry: E): void {
    this.#entries.set(entry.session.id, entry);
  }

  get(id: string): E | undefined {
    return this.#entries.get(id);
  }

  /** Forgets the session and gives its slot back; idempotent. */
  delete(id: string): void {
    this.#entries.delete(id);
    const holder = this.#holders.get(id);
    if (holder === undefined) return;
    this.#holders.delete(id);
    decrement(this.#perKey, holder.credentialId);
    decrement(this.#perTenant, holder.tenant);
  }

  /** Sessions open (registered). */
  get size(): number {
    return this.#entries.size;
  }

  /** Slots taken: open sessions and those still opening. */
  get reserved(): number {
    return this.#holders.size;
  }

  values(): IterableIterator<E> {
    return this.#entries.values();
  }
}

function decrement(counts: Map<string, number>, key: string): void {
  const left = (counts.get(key) ?? 1) - 1;
  if (left <= 0) counts.delete(key);
  else counts.set(key, left);
}
