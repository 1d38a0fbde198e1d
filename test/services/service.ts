/**
 * The shape every real service of the harness has, and the order in which one is found:
 * an endpoint from the environment, else a container when an engine answers, else a plain
 * process started by `deploy/local` (docs: ARCHITECTURE.md, "Real parts, also in tests").
 */

export type ServiceSource = 'env' | 'testcontainers' | 'deploy/local';

export interface RunningService extends AsyncDisposable {
  readonly source: ServiceSource;
  /** Stops what the harness started; an endpoint from the environment is left alone. */
  stop(): Promise<void>;
}

/** Thrown when no source could provide the service: the test fails and says why. */
export class ServiceUnavailableError extends Error {
  override readonly name = 'ServiceUnavailableError';

  static afterAttempts(service: string, attempts: readonly string[]): ServiceUnavailableError {
    return new ServiceUnavailableError(`${service} is unavailable for this test; tried:\n${attempts.map((line) => `  - ${line}`).join('\n')}`);
  }
}

/**
 * Set by the global setup when it could not start a service, so each test process fails at once
 * with the same reason instead of trying (and waiting) again.
 */
export function unavailableVariable(endpointVariable: string): string {
  return endpointVariable.replace(/_(BROKERS|URL)$/, '_UNAVAILABLE');
}

export function withDispose<T extends { stop(): Promise<void> }>(service: T): T & AsyncDisposable {
  return Object.assign(service, { [Symbol.asyncDispose]: () => service.stop() });
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
