/**
 * Which sessions a gateway instance owns, folded from the log in log order. The owner of a session
 * is the instance that opened it, and it alone appends to the session's stream (ARCHITECTURE.md
 * "Several replicas"): another replica appending there, even an OutcomeUnknown, would chain onto a
 * head the owner may already have moved past and fork the chain. SessionOpened names the owner in
 * `data.instance`; logs written before that field existed had one writer, so such a session
 * belongs to the instance named by the latest GatewayStarted before its SessionOpened.
 */
import type { AttestEvent } from '#schemas';

export class OwnSessions {
  readonly instance: string;
  /** The instance of the latest GatewayStarted so far: the owner of a SessionOpened without `instance`. */
  #started: string | undefined;
  readonly #streams = new Set<string>();

  constructor(instance: string) {
    this.instance = instance;
  }

  evolve(event: AttestEvent): void {
    if (event.type === 'GatewayStarted') this.#started = event.data.instance;
    else if (event.type === 'SessionOpened' && (event.data.instance ?? this.#started) === this.instance) this.#streams.add(event.stream);
  }

  /** False for another instance's session, and for a stream whose SessionOpened the log does not hold (its owner is unknown). */
  owns(stream: string): boolean {
    return this.#streams.has(stream);
  }
}
