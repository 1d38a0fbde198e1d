/**
 * The ClickHouse read model (docs/projector.md): the ReadModel port on `@clickhouse/client` over
 * HTTP. The SQL runs on ClickHouse 18.16 and on current releases (schemas/clickhouse/migration.ts);
 * rows travel as JSONEachRow data, literals of queries through projector/sql.ts only.
 */
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { CLICKHOUSE_MIGRATIONS } from '#schemas';
import type { AttestEvent, ClickHouseMigration, ClickHouseReadModelConfig } from '#schemas';
import type { LogCursor, LogEntry, StoredEvent } from '#eventlog';
import { ReadModelError } from '../errors.ts';
import { NO_CHECKPOINT } from '../port.ts';
import type { AppliedBatch, CallFilter, Checkpoint, MigrationReport, ProjectorErrorRecord, QuarantinedRecord, ReadModel, ReadModelTotals, ToolCallRecord, ToolDayCount } from '../port.ts';
import { configHistoryRow, decisionRow, eventRow, isGovernanceEvent, quarantineRow, rejectionRow, unprojectableRow } from '../rows.ts';
import type { ConfigHistoryRow, DecisionRow, EventRow, QuarantineRow, RejectionRow } from '../rows.ts';
import { sqlIdentifier, sqlNumber, sqlString, sqlStringList } from '../sql.ts';
import { CALL_EVENT_TYPES, foldToolCall } from '../tool-call-row.ts';
import type { ToolCallRow } from '../tool-call-row.ts';
import { applyMigrations } from './migrate.ts';

export interface ClickHouseReadModelOptions {
  /** The migrations to bring the database to; default all of schemas/clickhouse (a test passes a prefix). */
  readonly migrations?: readonly ClickHouseMigration[];
  /** The checkpoint's key: one projector per database today. */
  readonly projector?: string;
}

/** Columns of `tool_calls` that JSON output quotes (64-bit integers) or that may be null: decoded back to numbers. */
const TOOL_CALL_NUMBERS = ['version', 'first_index', 'requested_at_ms', 'request_bytes', 'cost', 'result_bytes'] as const;
const TOOL_CALL_NULLABLE_NUMBERS = ['decided_at_ms', 'jsonrpc_code', 'latency_ms', 'completed_at_ms', 'approval_requested_at_ms', 'approval_decided_at_ms', 'approval_wait_ms'] as const;

function decodeToolCall(raw: Record<string, unknown>): ToolCallRow {
  const row: Record<string, unknown> = { ...raw };
  for (const column of TOOL_CALL_NUMBERS) row[column] = Number(raw[column]);
  for (const column of TOOL_CALL_NULLABLE_NUMBERS) row[column] = raw[column] === null || raw[column] === undefined ? null : Number(raw[column]);
  row['requested_at'] = Math.floor(Number(raw['requested_at_ms']) / 1000);
  return row as unknown as ToolCallRow;
}

/** Call ids per `IN` list: about 40 bytes each, well inside max_query_size. */
const CALL_IDS_PER_QUERY = 2_000;

const unavailable = (what: string, error: unknown): ReadModelError =>
  new ReadModelError('ATTEST_READMODEL_UNAVAILABLE', `ClickHouse read model: ${what} failed: ${(error as Error).message}`, { cause: error });

/** ClickHouse's codes for a database or table that does not exist (stable since long before 18.16). */
const UNKNOWN_DATABASE = '81';
const UNKNOWN_TABLE = '60';

/** The server's error code: the client parses current servers' messages; 18.16's (`Code: 81, e.displayText() = …`) it does not. */
function serverCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  return /^Code: (\d+)[.,]/.exec((error as Error).message)?.[1];
}

interface BatchRows {
  readonly events: EventRow[];
  readonly quarantine: QuarantineRow[];
  readonly decisions: DecisionRow[];
  readonly rejections: RejectionRow[];
  readonly config: ConfigHistoryRow[];
  /** Call events by call id, in log order. */
  readonly calls: Map<string, StoredEvent[]>;
}

function rowsOf(entries: readonly LogEntry[], now: number): BatchRows {
  const rows: BatchRows = { events: [], quarantine: [], decisions: [], rejections: [], config: [], calls: new Map() };
  for (const entry of entries) {
    if (entry.event === undefined) {
      rows.quarantine.push(quarantineRow(entry, now));
      continue;
    }
    const event: AttestEvent = entry.event;
    rows.events.push(eventRow(entry));
    if (event.type === 'DecisionMade') rows.decisions.push(decisionRow(entry, event));
    else if (event.type === 'RequestRejected') rows.rejections.push(rejectionRow(entry, event));
    else if (isGovernanceEvent(event)) rows.config.push(configHistoryRow(entry, event));
    if (!CALL_EVENT_TYPES.has(event.type)) continue;
    if (event.callId === undefined) {
      rows.quarantine.push(unprojectableRow(entry, `a ${event.type} without a callId cannot be placed in tool_calls`, now));
      continue;
    }
    const events = rows.calls.get(event.callId);
    if (events === undefined) rows.calls.set(event.callId, [entry]);
    else events.push(entry);
  }
  return rows;
}

export class ClickHouseReadModel implements ReadModel {
  readonly #client: ClickHouseClient;
  readonly #config: ClickHouseReadModelConfig;
  readonly #migrations: readonly ClickHouseMigration[];
  readonly #projector: string;
  /** Tables of the version it migrates to; a batch writes only into these. */
  readonly #tables: ReadonlySet<string>;
  #checkpointVersion = 0;

  constructor(config: ClickHouseReadModelConfig, options: ClickHouseReadModelOptions = {}) {
    this.#config = config;
    this.#migrations = options.migrations ?? CLICKHOUSE_MIGRATIONS;
    this.#projector = options.projector ?? 'projector';
    this.#tables = new Set(this.#migrations.flatMap((m) => m.tables));
    this.#client = this.#clientFor(config.database);
  }

  #clientFor(database: string): ClickHouseClient {
    const { url, user, password, requestTimeoutMs } = this.#config;
    return createClient({ url, username: user, password, database, request_timeout: requestTimeoutMs, log: { level: ClickHouseLogLevel.OFF } });
  }

  async migrate(): Promise<MigrationReport> {
    // The database may not exist yet: create it through the server's default database.
    const bootstrap = this.#clientFor('default');
    try {
      await bootstrap.command({ query: `CREATE DATABASE IF NOT EXISTS ${sqlIdentifier(this.#config.database)}` });
    } catch (error) {
      throw unavailable(`creating database "${this.#config.database}"`, error);
    } finally {
      await bootstrap.close();
    }
    const { applied, version } = await applyMigrations(this.#client, this.#migrations, this.#config.database);
    const before = await this.checkpoint();
    const reproject = applied.some((m) => m.reproject) && before.processed > 0;
    // New tables are filled by projecting from zero again; what is there already is rewritten as a no-op.
    if (reproject) await this.advance(NO_CHECKPOINT);
    return { applied: applied.map((m) => m.version), version, reproject };
  }

  async checkpoint(): Promise<Checkpoint> {
    const rows = await this.#select<{ version: string; cursor: string; log_index: string; processed: string; last_occurred_at_ms: string; updated_at_ms: string }>(
      `SELECT version, cursor, log_index, processed, last_occurred_at_ms, updated_at_ms FROM projector_checkpoint WHERE projector = ${sqlString(this.#projector)} ORDER BY version DESC LIMIT 1`,
      'reading the checkpoint',
    );
    const row = rows[0];
    if (row === undefined) return NO_CHECKPOINT;
    this.#checkpointVersion = Math.max(this.#checkpointVersion, Number(row.version));
    return {
      cursor: row.cursor === '' ? undefined : (row.cursor as LogCursor),
      index: Number(row.log_index),
      processed: Number(row.processed),
      lastOccurredAtMs: Number(row.last_occurred_at_ms),
      updatedAtMs: Number(row.updated_at_ms),
    };
  }

  async advance(checkpoint: Checkpoint): Promise<void> {
    if (this.#checkpointVersion === 0) await this.checkpoint();
    this.#checkpointVersion += 1;
    await this.#insert('projector_checkpoint', [{
      projector: this.#projector,
      version: this.#checkpointVersion,
      cursor: checkpoint.cursor ?? '',
      log_index: checkpoint.index,
      processed: checkpoint.processed,
      last_occurred_at_ms: checkpoint.lastOccurredAtMs,
      updated_at_ms: Date.now(),
    }]);
  }

  async apply(entries: readonly LogEntry[]): Promise<AppliedBatch> {
    const rows = rowsOf(entries, Date.now());
    const toolCalls = await this.#foldCalls(rows);
    await Promise.all([
      this.#insert('events', rows.events),
      this.#insert('tool_calls', toolCalls),
      this.#insert('decisions', rows.decisions),
      this.#insert('rejections', rows.rejections),
      this.#insert('config_history', rows.config),
      this.#insert('quarantine', rows.quarantine),
    ]);
    return { events: rows.events.length, toolCalls: toolCalls.length, quarantined: rows.quarantine.length };
  }

  /** The rows of every call the batch touches, folded onto the stored ones; call events with no row go to the quarantine. */
  async #foldCalls(rows: BatchRows): Promise<ToolCallRow[]> {
    // A call whose RequestReceived is in the batch starts here: nothing stored can be missing from it.
    const continued = [...rows.calls].filter(([, events]) => events[0]?.event.type !== 'RequestReceived').map(([callId]) => callId);
    const stored = new Map<string, ToolCallRow>();
    // In slices: a query's text is bounded by the server's max_query_size (256 KiB by default).
    for (let at = 0; at < continued.length; at += CALL_IDS_PER_QUERY) {
      const slice = continued.slice(at, at + CALL_IDS_PER_QUERY);
      const found = await this.#select<Record<string, unknown>>(`SELECT * FROM tool_calls FINAL WHERE call_id IN ${sqlStringList(slice)}`, 'reading the calls a batch continues');
      for (const raw of found) {
        const row = decodeToolCall(raw);
        stored.set(row.call_id, row);
      }
    }
    const out: ToolCallRow[] = [];
    const now = Date.now();
    for (const [callId, events] of rows.calls) {
      let row = stored.get(callId);
      for (const event of events) {
        const next = foldToolCall(row, event);
        if (next === undefined) rows.quarantine.push(unprojectableRow(event, `${event.event.type} of call ${callId}, whose RequestReceived is not in the read model`, now));
        row = next;
      }
      if (row !== undefined && row !== stored.get(callId)) out.push(row);
    }
    return out;
  }

  async recordError(code: string, message: string): Promise<void> {
    await this.#insert('projector_errors', [{ projector: this.#projector, at_ms: Date.now(), code, message }]).catch(() => undefined);
  }

  async totals(): Promise<ReadModelTotals> {
    const [types, statuses, decisions, rejections, config, quarantine] = await Promise.all([
      this.#select<{ type: string; n: string }>('SELECT type, count() AS n FROM events FINAL GROUP BY type', 'counting events'),
      this.#select<{ status: string; n: string; cost: number }>('SELECT status, count() AS n, sum(cost) AS cost FROM tool_calls FINAL GROUP BY status', 'counting calls'),
      this.#count('decisions'),
      this.#count('rejections'),
      this.#count('config_history'),
      this.#count('quarantine'),
    ]);
    const eventsByType = Object.fromEntries(types.map((r) => [r.type, Number(r.n)]));
    const toolCallsByStatus = Object.fromEntries(statuses.map((r) => [r.status, Number(r.n)]));
    const sum = (values: Iterable<number>): number => [...values].reduce((a, b) => a + b, 0);
    return {
      events: sum(Object.values(eventsByType)),
      eventsByType,
      toolCalls: sum(Object.values(toolCallsByStatus)),
      toolCallsByStatus,
      cost: sum(statuses.map((r) => Number(r.cost))),
      decisions,
      rejections,
      configChanges: config,
      quarantined: quarantine,
    };
  }

  async toolCall(callId: string): Promise<ToolCallRecord | undefined> {
    const rows = await this.#select<Record<string, unknown>>(`SELECT * FROM tool_calls FINAL WHERE call_id = ${sqlString(callId)}`, 'reading a call');
    return rows[0] === undefined ? undefined : (decodeToolCall(rows[0]) as unknown as ToolCallRecord);
  }

  async callsPerToolPerDay(filter: CallFilter): Promise<ToolDayCount[]> {
    const where = [`method = 'tools/call'`];
    if (filter.fromMs !== undefined) where.push(`requested_at_ms >= ${sqlNumber(filter.fromMs)}`);
    if (filter.toMs !== undefined) where.push(`requested_at_ms < ${sqlNumber(filter.toMs)}`);
    if (filter.tenant !== undefined) where.push(`tenant = ${sqlString(filter.tenant)}`);
    if (filter.principal !== undefined) where.push(`principal = ${sqlString(filter.principal)}`);
    if (filter.upstream !== undefined) where.push(`upstream = ${sqlString(filter.upstream)}`);
    if (filter.tool !== undefined) where.push(`tool = ${sqlString(filter.tool)}`);
    const rows = await this.#select<{ day: string; upstream: string; tool: string; calls: string; denied: string; errors: string }>(
      `SELECT toString(toDate(requested_at)) AS day, upstream, tool, count() AS calls, countIf(status = 'denied') AS denied, countIf(status IN ('error', 'tool_error', 'unknown')) AS errors
       FROM tool_calls FINAL WHERE ${where.join(' AND ')} GROUP BY day, upstream, tool ORDER BY day, upstream, tool`,
      'counting calls per tool per day',
    );
    return rows.map((r) => ({ day: r.day, upstream: r.upstream, tool: r.tool, calls: Number(r.calls), denied: Number(r.denied), errors: Number(r.errors) }));
  }

  async quarantined(limit: number): Promise<{ readonly count: number; readonly recent: QuarantinedRecord[] }> {
    const [count, rows] = await Promise.all([
      this.#count('quarantine'),
      this.#select<{ log_index: string; event_id: string; type: string; problem: string; reason: string }>(
        `SELECT log_index, event_id, type, problem, reason FROM quarantine FINAL ORDER BY log_index LIMIT ${sqlNumber(limit)}`,
        'reading the quarantine',
      ),
    ]);
    return { count, recent: rows.map((r) => ({ index: Number(r.log_index), eventId: r.event_id, type: r.type, problem: r.problem, reason: r.reason })) };
  }

  async errors(limit: number): Promise<{ readonly count: number; readonly recent: ProjectorErrorRecord[] }> {
    const where = `WHERE projector = ${sqlString(this.#projector)}`;
    const [count, recent] = await Promise.all([
      this.#select<{ n: string }>(`SELECT count() AS n FROM projector_errors ${where}`, 'counting errors'),
      this.#select<{ at_ms: string; code: string; message: string }>(`SELECT at_ms, code, message FROM projector_errors ${where} ORDER BY at_ms DESC LIMIT ${sqlNumber(limit)}`, 'reading errors'),
    ]);
    return { count: Number(count[0]?.n ?? 0), recent: recent.map((r) => ({ atMs: Number(r.at_ms), code: r.code, message: r.message })) };
  }

  async describe(): Promise<string> {
    const rows = await this.#select<{ version: string }>('SELECT version() AS version', 'asking the server version');
    return `ClickHouse ${rows[0]?.version ?? '?'} at ${this.#config.url}, database ${this.#config.database}`;
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #count(table: string): Promise<number> {
    const rows = await this.#select<{ n: string }>(`SELECT count() AS n FROM ${sqlIdentifier(table)} FINAL`, `counting ${table}`);
    return Number(rows[0]?.n ?? 0);
  }

  async #select<T>(query: string, what: string): Promise<T[]> {
    try {
      return await (await this.#client.query({ query, format: 'JSONEachRow' })).json<T>();
    } catch (error) {
      const code = serverCode(error);
      if (code === UNKNOWN_DATABASE || code === UNKNOWN_TABLE) {
        const { database, url } = this.#config;
        throw new ReadModelError('ATTEST_READMODEL_NOT_MIGRATED', `ClickHouse database "${database}" at ${url} has no projection yet (${code === UNKNOWN_DATABASE ? 'the database does not exist' : 'its tables are missing'}): run attest projector, or attest start with readModel, which creates and migrates it`, { cause: error });
      }
      throw unavailable(what, error);
    }
  }

  async #insert(table: string, values: readonly object[]): Promise<void> {
    if (values.length === 0 || !this.#tables.has(table)) return;
    try {
      await this.#client.insert({ table, values: values as object[], format: 'JSONEachRow' });
    } catch (error) {
      throw unavailable(`writing ${values.length} rows into ${table}`, error);
    }
  }
}
