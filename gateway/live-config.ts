/**
 * The settings a running gateway may swap without a restart (hot reload, gateway/reload.ts): the
 * config, its hash, the API keys and the governance. Everything that decides per request reads
 * them through this one holder at decision time, so a swap is one assignment: decisions made
 * before it finish under the old version, every decision after it uses the new one.
 */
import type { AttestConfig } from '#schemas';
import type { ApiKeyStore } from './auth/api-keys.ts';
import type { Governance } from './governance.ts';

export interface LiveState {
  readonly config: AttestConfig;
  readonly configHash: string;
  readonly keys: ApiKeyStore;
  readonly governance: Governance | undefined;
}

export class LiveConfig {
  #state: LiveState;
  constructor(initial: LiveState) {
    this.#state = initial;
  }
  get current(): LiveState {
    return this.#state;
  }
  swap(next: LiveState): void {
    this.#state = next;
  }
}
