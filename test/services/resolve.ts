/**
 * Finds one service for a test, in the order of ARCHITECTURE.md: the environment, then
 * testcontainers where an engine answers, then `deploy/local`. Every attempt that fails is kept
 * for the error, so a test without its service fails saying what was tried and why.
 */
import { detectContainerEngine } from './container-engine.ts';
import { startLocalService } from './local-launcher.ts';
import type { LauncherName } from './local-launcher.ts';
import { errorMessage, ServiceUnavailableError, unavailableVariable } from './service.ts';
import type { ServiceSource } from './service.ts';

export interface ServiceSpec {
  /** For messages: `Kafka`, `ClickHouse`. */
  readonly name: string;
  /** `ATTEST_KAFKA_BROKERS`, `ATTEST_CLICKHOUSE_URL`. */
  readonly variable: string;
  readonly launcher: LauncherName;
  /** Starts a container on the engine at `host`; resolves with the endpoint once it answers. */
  startContainer(host: string): Promise<StartedEndpoint>;
}

export interface StartedEndpoint {
  readonly endpoint: string;
  readonly stop: () => Promise<void>;
}

export interface ResolvedEndpoint extends StartedEndpoint {
  readonly source: ServiceSource;
}

export async function resolveEndpoint(spec: ServiceSpec): Promise<ResolvedEndpoint> {
  const fromEnv = process.env[spec.variable];
  if (fromEnv !== undefined && fromEnv.trim() !== '') {
    return { endpoint: fromEnv.trim(), source: 'env', stop: async () => undefined };
  }
  const globalFailure = process.env[unavailableVariable(spec.variable)];
  if (globalFailure !== undefined) {
    throw new ServiceUnavailableError(`${globalFailure}\n(found by the test run's global setup, test/services/global-setup.ts)`);
  }
  const attempts = [`${spec.variable}: not set`];

  const engine = await detectContainerEngine();
  if (engine.available) {
    try {
      return { ...(await spec.startContainer(engine.host)), source: 'testcontainers' };
    } catch (error) {
      attempts.push(`testcontainers (engine at ${engine.host}): ${errorMessage(error)}`);
    }
  } else {
    attempts.push(`testcontainers: no container engine (${engine.reason})`);
  }

  try {
    const local = await startLocalService(spec.launcher);
    return { endpoint: local.endpoint, source: 'deploy/local', stop: () => local.dispose() };
  } catch (error) {
    attempts.push(errorMessage(error));
  }
  throw ServiceUnavailableError.afterAttempts(spec.name, attempts);
}
