/**
 * Real services for tests (ARCHITECTURE.md, "Real parts, also in tests"): each comes from the
 * environment, else testcontainers, else the `deploy/local` launchers. `global-setup.ts` starts
 * them once per `npm test` run.
 */
export { kafkaBrokers } from './kafka.ts';
export type { KafkaService } from './kafka.ts';
export { clickhouseUrl } from './clickhouse.ts';
export type { ClickHouseService } from './clickhouse.ts';
export { startLocalService, LauncherError } from './local-launcher.ts';
export type { LauncherName, LocalService, LocalServiceOptions } from './local-launcher.ts';
export { ServiceUnavailableError } from './service.ts';
export type { RunningService, ServiceSource } from './service.ts';
