/**
 * A real ClickHouse server for tests: `ATTEST_CLICKHOUSE_URL` (its HTTP interface), else a
 * container, else `deploy/local/clickhouse.sh` (Debian's clickhouse-server).
 */
import { resolveEndpoint } from './resolve.ts';
import type { ServiceSpec, StartedEndpoint } from './resolve.ts';
import { withDispose } from './service.ts';
import type { RunningService } from './service.ts';

export interface ClickHouseService extends RunningService {
  /** The HTTP interface, e.g. `http://127.0.0.1:8123`. */
  readonly url: string;
}

/** Override with ATTEST_CLICKHOUSE_IMAGE. */
const DEFAULT_IMAGE = 'clickhouse/clickhouse-server:25.8';
const HTTP_PORT = 8123;

export const CLICKHOUSE: ServiceSpec = {
  name: 'ClickHouse',
  variable: 'ATTEST_CLICKHOUSE_URL',
  launcher: 'clickhouse',
  startContainer: startClickHouseContainer,
};

export async function clickhouseUrl(): Promise<ClickHouseService> {
  const { endpoint, source, stop } = await resolveEndpoint(CLICKHOUSE);
  return withDispose({ url: endpoint.replace(/\/+$/, ''), source, stop });
}

async function startClickHouseContainer(host: string): Promise<StartedEndpoint> {
  const { GenericContainer, Wait } = await import('testcontainers');
  const container = await new GenericContainer(process.env.ATTEST_CLICKHOUSE_IMAGE ?? DEFAULT_IMAGE)
    // Keeps the passwordless `default` user reachable from outside the container, as deploy/local does.
    .withEnvironment({ CLICKHOUSE_SKIP_USER_SETUP: '1' })
    .withExposedPorts(HTTP_PORT)
    .withWaitStrategy(Wait.forHttp('/ping', HTTP_PORT).forStatusCode(200))
    .withStartupTimeout(120_000)
    .start();
  return {
    endpoint: `http://${host}:${container.getMappedPort(HTTP_PORT)}`,
    stop: async () => {
      await container.stop();
    },
  };
}
