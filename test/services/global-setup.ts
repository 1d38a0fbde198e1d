/**
 * Node test-runner global setup (`node --test --test-global-setup=test/services/global-setup.ts`):
 * starts Kafka and ClickHouse once per run, before any test file, when the environment names no
 * endpoint, and stops them after the last file. Test files run in child processes that inherit
 * this process's environment, so the endpoints reach them as ATTEST_KAFKA_BROKERS and
 * ATTEST_CLICKHOUSE_URL and the harness takes them from there.
 *
 * A service that cannot be started does not abort the run: its reason goes into
 * ATTEST_<SERVICE>_UNAVAILABLE, and every test that needs it fails with that reason while the
 * other tests still run.
 */
import { CLICKHOUSE } from './clickhouse.ts';
import { KAFKA } from './kafka.ts';
import { resolveEndpoint } from './resolve.ts';
import type { ResolvedEndpoint, ServiceSpec } from './resolve.ts';
import { errorMessage, unavailableVariable } from './service.ts';

const started: ResolvedEndpoint[] = [];

export async function globalSetup(): Promise<void> {
  await Promise.all([KAFKA, CLICKHOUSE].map((spec) => provide(spec)));
}

export async function globalTeardown(): Promise<void> {
  const stopping = started.splice(0).map((service) => service.stop());
  const results = await Promise.allSettled(stopping);
  for (const result of results) {
    if (result.status === 'rejected') process.stderr.write(`attest services: stopping failed: ${errorMessage(result.reason)}\n`);
  }
}

async function provide(spec: ServiceSpec): Promise<void> {
  const begun = performance.now();
  try {
    const service = await resolveEndpoint(spec);
    if (service.source === 'env') return;
    started.push(service);
    process.env[spec.variable] = service.endpoint;
    const seconds = ((performance.now() - begun) / 1000).toFixed(1);
    process.stderr.write(`attest services: ${spec.name} at ${service.endpoint} (${service.source}, ready in ${seconds} s)\n`);
  } catch (error) {
    const reason = errorMessage(error);
    process.env[unavailableVariable(spec.variable)] = reason;
    process.stderr.write(`attest services: ${reason}\n`);
  }
}
