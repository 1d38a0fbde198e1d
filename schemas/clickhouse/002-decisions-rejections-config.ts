/**
 * Version 2: one row per decision, per refused input (RequestRejected) and per governance change
 * (gateway starts and stops, config reloads applied or rejected, keys issued or revoked). Filled
 * by projecting the log again from zero once applied (`reproject`).
 */
import type { ClickHouseMigration } from './migration.ts';

export const DECISIONS_REJECTIONS_CONFIG: ClickHouseMigration = {
  version: 2,
  name: 'decisions-rejections-config-history',
  reproject: true,
  tables: ['decisions', 'rejections', 'config_history'],
  statements: [
    `CREATE TABLE IF NOT EXISTS decisions (
      event_id String,
      log_index UInt64,
      call_id String,
      tenant String,
      stream String,
      principal String,
      team String,
      agent String,
      decision String,
      stage String,
      rule_id String,
      reason String,
      route String,
      policy_hash String,
      cost Float64,
      limits Array(String),
      limit_trip String,
      limit_trip_id String,
      trace_id String,
      occurred_at DateTime('UTC'),
      occurred_at_ms Int64
    ) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY (occurred_at, event_id)`,
    `CREATE TABLE IF NOT EXISTS rejections (
      event_id String,
      log_index UInt64,
      tenant String,
      stream String,
      principal String,
      error_code String,
      http_status Nullable(Int64),
      jsonrpc_code Nullable(Int64),
      message String,
      method String,
      path String,
      session_id String,
      remote_address String,
      body_bytes Nullable(Int64),
      occurred_at DateTime('UTC'),
      occurred_at_ms Int64
    ) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY (occurred_at, event_id)`,
    `CREATE TABLE IF NOT EXISTS config_history (
      event_id String,
      log_index UInt64,
      type String,
      tenant String,
      actor String,
      instance String,
      gateway_version String,
      trigger String,
      config_hash String,
      previous_config_hash String,
      policy_hash String,
      previous_policy_hash String,
      changed Array(String),
      upstreams Array(String),
      upstreams_added Array(String),
      upstreams_removed Array(String),
      issues Array(String),
      key_id String,
      key_ids Array(String),
      scope String,
      reason String,
      occurred_at DateTime('UTC'),
      occurred_at_ms Int64
    ) ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(occurred_at) ORDER BY (occurred_at, event_id)`,
  ],
};
