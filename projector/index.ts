/**
 * The projector: turns the event log into read models (docs/projector.md). The ReadModel port, its
 * ClickHouse adapter, the projector loop and its status. Depends on #schemas, #eventlog, #projections.
 */
import type { ReadModelConfig } from '#schemas';
import { ClickHouseReadModel } from './clickhouse/read-model.ts';
import type { ClickHouseReadModelOptions } from './clickhouse/read-model.ts';
import type { ReadModel } from './port.ts';

export { ClickHouseReadModel } from './clickhouse/read-model.ts';
export type { ClickHouseReadModelOptions } from './clickhouse/read-model.ts';
export { ReadModelError } from './errors.ts';
export type { ReadModelErrorCode } from './errors.ts';
export { NO_CHECKPOINT } from './port.ts';
export type { AppliedBatch, CallFilter, Checkpoint, MigrationReport, ProjectorErrorRecord, QuarantinedRecord, ReadModel, ReadModelTotals, ToolCallRecord, ToolDayCount } from './port.ts';
export { Projector } from './projector.ts';
export type { ProjectorLogger, ProjectorOptions, ProjectorStats } from './projector.ts';
export { formatStatus, projectorStatus } from './status.ts';
export type { ProjectorStatus } from './status.ts';
export { sqlIdentifier, sqlNumber, sqlString, sqlStringList } from './sql.ts';

/** The read model the config names (the config refuses `embedded` until it exists). */
export function openReadModel(config: ReadModelConfig, options: ClickHouseReadModelOptions = {}): ReadModel {
  if (config.backend !== 'clickhouse') throw new TypeError(`readModel.backend "${config.backend}" is not implemented yet`);
  return new ClickHouseReadModel(config, options);
}
