/**
 * Applies the read model's migrations (schemas/clickhouse/) in order and records each in
 * `schema_migrations` with the checksum of its statements. Idempotent: a re-run applies only
 * what is missing. Refuses a read model that is newer than this code, or whose recorded
 * migration no longer matches the one of the same version here (the DDL was edited after release).
 */
import type { ClickHouseClient } from '@clickhouse/client';
import { sha256Hex } from '#schemas';
import type { ClickHouseMigration } from '#schemas';
import { ReadModelError } from '../errors.ts';

const LEDGER = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version UInt32,
  name String,
  checksum String,
  applied_at_ms Int64
) ENGINE = ReplacingMergeTree ORDER BY version`;

export const checksumOf = (migration: ClickHouseMigration): string => `sha256:${sha256Hex(migration.statements.join('\n;\n'))}`;

export interface AppliedMigrations {
  readonly applied: readonly ClickHouseMigration[];
  readonly version: number;
}

export async function applyMigrations(client: ClickHouseClient, migrations: readonly ClickHouseMigration[], database: string): Promise<AppliedMigrations> {
  migrations.forEach((migration, i) => {
    if (migration.version !== i + 1) throw new ReadModelError('ATTEST_READMODEL_MIGRATION', `migration ${migration.name} has version ${migration.version}, expected ${i + 1}: versions run 1, 2, 3 … without gaps`);
  });
  await client.command({ query: LEDGER });
  const recorded = await (await client.query({ query: 'SELECT version, name, checksum FROM schema_migrations FINAL ORDER BY version', format: 'JSONEachRow' })).json<{ version: number; name: string; checksum: string }>();
  const done = new Set<number>();
  for (const row of recorded) {
    const version = Number(row.version);
    const known = migrations[version - 1];
    if (known === undefined) {
      throw new ReadModelError('ATTEST_READMODEL_MIGRATION', `database "${database}" is at read-model version ${version} (${row.name}), newer than this projector knows (${migrations.length}): run a newer attest, or project into another database`);
    }
    if (row.checksum !== checksumOf(known)) {
      throw new ReadModelError('ATTEST_READMODEL_MIGRATION', `migration ${version} (${known.name}) recorded in database "${database}" differs from this projector's (checksum ${row.checksum}, expected ${checksumOf(known)}): a released migration must not change; add a new one`);
    }
    done.add(version);
  }
  const applied: ClickHouseMigration[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    for (const statement of migration.statements) await client.command({ query: statement });
    await client.insert({ table: 'schema_migrations', format: 'JSONEachRow', values: [{ version: migration.version, name: migration.name, checksum: checksumOf(migration), applied_at_ms: Date.now() }] });
    applied.push(migration);
  }
  return { applied, version: migrations.length };
}
