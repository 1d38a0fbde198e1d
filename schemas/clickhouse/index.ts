/** The ClickHouse read model's migrations, in the order they apply (migration.ts). */
import { EVENTS_AND_TOOL_CALLS } from './001-events-tool-calls.ts';
import { DECISIONS_REJECTIONS_CONFIG } from './002-decisions-rejections-config.ts';
import type { ClickHouseMigration } from './migration.ts';

export type { ClickHouseMigration } from './migration.ts';

export const CLICKHOUSE_MIGRATIONS: readonly ClickHouseMigration[] = Object.freeze([EVENTS_AND_TOOL_CALLS, DECISIONS_REJECTIONS_CONFIG]);
