/**
 * Which engine for the embedded read model (issue 13): chDB, DuckDB or node:sqlite, side by side on
 * the same synthetic `tool_calls`-like rows. The candidates are NOT dependencies of the repo: they
 * are installed once into a cache directory (`npm install --prefix ~/.cache/attest/embedded-engines
 * chdb @duckdb/node-api`, done here if missing) and loaded from there by absolute path.
 *
 * Each engine runs in its own child process (so import time and RSS are its own) on a fresh
 * on-disk database in a temporary directory: import + first open, CREATE TABLE, `--rows` rows
 * (default 1 000 000: 50 tools, 5 tenants, 30 days, deterministic) inserted in batches of
 * `--batch` with the engine's fastest reasonable bulk path, then the report question "calls per
 * tool per day" over all rows and over one tenant and one week, median of 5 runs each, and RSS.
 * The chDB child also runs the real ClickHouse migrations of schemas/clickhouse/ and the real
 * calls-per-tool-per-day query of projector/clickhouse/read-model.ts.
 *
 *   node --conditions=attest-source bench/embedded-engines.ts [--rows 1000000] [--batch 10000] [--engines chdb,duckdb,sqlite] [--chdb-lowcardinality] [--duckdb-upsert]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CLICKHOUSE_MIGRATIONS } from '#schemas';

const CACHE = join(homedir(), '.cache', 'attest', 'embedded-engines');
const ENGINES = ['chdb', 'duckdb', 'sqlite'] as const;
type Engine = (typeof ENGINES)[number];
const TOOLS = 50;
const TENANTS = 5;
const DAYS = 30;
const DAY_MS = 86_400_000;
const START_MS = Date.UTC(2026, 10, 1);
const RUNS = 5;

const { values } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    batch: { type: 'string', default: '10000' },
    engines: { type: 'string', default: ENGINES.join(',') },
    child: { type: 'string' },
    'chdb-lowcardinality': { type: 'boolean', default: false },
    'duckdb-upsert': { type: 'boolean', default: false },
  },
});
const rows = Number(values.rows);
const batch = Number(values.batch);

interface Call {
  readonly callId: string;
  readonly tenant: string;
  readonly tool: string;
  readonly upstream: string;
  readonly decision: string;
  readonly status: string;
  readonly startedAtMs: number;
  readonly latencyMs: number;
  readonly cost: number;
}

/** A cheap integer hash (xorshift-multiply) so tools, tenants and outcomes are spread, not striped. */
function mix(i: number): number {
  let x = (i + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function call(i: number): Call {
  const h = mix(i);
  const tool = h % TOOLS;
  const denied = h % 10 === 0;
  return {
    callId: `call-${i}`,
    tenant: `tenant-${(h >>> 8) % TENANTS}`,
    tool: `tool-${tool}`,
    upstream: `upstream-${tool % 10}`,
    decision: denied ? 'deny' : 'allow',
    status: denied ? 'denied' : (h >>> 12) % 50 === 0 ? 'error' : 'ok',
    // Spread evenly over DAYS days, in call order (a log is written in time order).
    startedAtMs: START_MS + Math.floor((i * DAYS * DAY_MS) / rows),
    latencyMs: ((h >>> 4) % 5000) / 10,
    cost: ((h >>> 6) % 100) / 1000,
  };
}

/** The filtered question: one tenant, the second week. */
const FILTER = { tenant: 'tenant-2', fromMs: START_MS + 7 * DAY_MS, toMs: START_MS + 14 * DAY_MS };

interface EngineRun {
  readonly importMs: number;
  readonly openMs: number;
  create(): Promise<void>;
  insert(calls: readonly Call[]): Promise<void>;
  /** Returns the number of result rows (the groups), so a run that returned nothing is visible. */
  perToolPerDay(): Promise<number>;
  perToolPerDayFiltered(): Promise<number>;
  count(): Promise<number>;
  extra(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

function resolveInCache(specifier: string): string {
  return createRequire(join(CACHE, 'package.json')).resolve(specifier);
}

async function timedImport<T>(file: string): Promise<[T, number]> {
  const t0 = performance.now();
  // The module comes from the cache dir, outside the repo's types: its shape is the interface T.
  const mod = (await import(file.startsWith('node:') ? file : pathToFileURL(file).href)) as T;
  return [mod, performance.now() - t0];
}

interface ChdbSession {
  query(sql: string, format?: string): string;
  insert(params: { table: string; values: string; format: 'JSONEachRow' }): Promise<{ rowsWritten: number }>;
  cleanup(): void;
}
interface ChdbModule {
  Session: new (path: string) => ChdbSession;
}

async function openChdb(dir: string): Promise<EngineRun> {
  const [mod, importMs] = await timedImport<ChdbModule>(resolveInCache('chdb'));
  const t0 = performance.now();
  const session = new mod.Session(join(dir, 'chdb'));
  session.query('SELECT 1');
  const openMs = performance.now() - t0;
  const groups = (sql: string) => session.query(sql, 'JSONEachRow').split('\n').filter((l) => l !== '').length;
  // ReplacingMergeTree on call_id and FINAL in every read: the semantics the ClickHouse adapter uses.
  const perDay = (where: string) =>
    `SELECT toDate(started_at) AS day, tool, count() AS calls, countIf(status = 'denied') AS denied FROM bench_calls FINAL ${where} GROUP BY day, tool ORDER BY day, tool`;
  return {
    importMs,
    openMs,
    create: async () => {
      // Plain String by default, as in schemas/clickhouse/ (LowCardinality is not in the 18.16 DDL).
      const text = values['chdb-lowcardinality'] ? 'LowCardinality(String)' : 'String';
      session.query(`CREATE TABLE bench_calls (call_id String, tenant ${text}, tool ${text}, upstream ${text},
        decision ${text}, status ${text}, started_at DateTime('UTC'), latency_ms Float64, cost Float64)
        ENGINE = ReplacingMergeTree PARTITION BY toYYYYMM(started_at) ORDER BY call_id`);
    },
    insert: async (calls) => {
      let body = '';
      for (const c of calls) {
        body += `{"call_id":"${c.callId}","tenant":"${c.tenant}","tool":"${c.tool}","upstream":"${c.upstream}","decision":"${c.decision}","status":"${c.status}","started_at":${Math.floor(c.startedAtMs / 1000)},"latency_ms":${c.latencyMs},"cost":${c.cost}}\n`;
      }
      await session.insert({ table: 'bench_calls', values: body, format: 'JSONEachRow' });
    },
    perToolPerDay: async () => groups(perDay('')),
    perToolPerDayFiltered: async () =>
      groups(perDay(`WHERE tenant = '${FILTER.tenant}' AND started_at >= toDateTime(${FILTER.fromMs / 1000}, 'UTC') AND started_at < toDateTime(${FILTER.toMs / 1000}, 'UTC')`)),
    count: async () => Number(session.query('SELECT count() FROM bench_calls FINAL', 'TSV').trim()),
    extra: async () => {
      const version = session.query('SELECT version()', 'TSV').trim();
      const noFinal = median(await repeat(() => groups(perDay('').replace(' FINAL', ''))));
      return { version, perToolPerDayNoFinalMs: noFinal, clickhouseSql: clickhouseSqlInChdb(session) };
    },
    close: async () => session.cleanup(),
  };
}

/** Runs the repo's real ClickHouse migrations and the adapter's per-day query in chDB. */
function clickhouseSqlInChdb(session: ChdbSession): Record<string, string> {
  session.query('CREATE DATABASE IF NOT EXISTS attest_ddl');
  session.query('USE attest_ddl');
  const out: Record<string, string> = {};
  for (const migration of CLICKHOUSE_MIGRATIONS) {
    migration.statements.forEach((statement, n) => {
      const name = `v${migration.version}#${n + 1} ${/CREATE TABLE IF NOT EXISTS (\w+)/.exec(statement)?.[1] ?? statement.slice(0, 40)}`;
      try {
        session.query(statement);
        out[name] = 'works';
      } catch (error) {
        out[name] = `fails: ${String(error).slice(0, 200)}`;
      }
    });
  }
  // The text of ClickHouseReadModel.callsPerToolPerDay with every filter present.
  const query = `SELECT toString(toDate(requested_at)) AS day, upstream, tool, count() AS calls, countIf(status = 'denied') AS denied, countIf(status IN ('error', 'tool_error', 'unknown')) AS errors
    FROM tool_calls FINAL WHERE method = 'tools/call' AND requested_at_ms >= 0 AND requested_at_ms < 9999999999999 AND tenant = 'a' AND principal = 'b' AND upstream = 'c' AND tool = 'd'
    GROUP BY day, upstream, tool ORDER BY day, upstream, tool`;
  try {
    session.query(query, 'JSONEachRow');
    out['callsPerToolPerDay query (empty table)'] = 'works';
  } catch (error) {
    out['callsPerToolPerDay query (empty table)'] = `fails: ${String(error).slice(0, 200)}`;
  }
  session.query('USE default');
  return out;
}

interface DuckAppender {
  appendVarchar(v: string): void;
  appendDouble(v: number): void;
  appendTimestamp(v: unknown): void;
  endRow(): void;
  flushSync(): void;
  closeSync(): void;
}
interface DuckConnection {
  run(sql: string): Promise<unknown>;
  runAndReadAll(sql: string): Promise<{ getRows(): unknown[][] }>;
  createAppender(table: string): Promise<DuckAppender>;
  closeSync(): void;
}
interface DuckModule {
  DuckDBInstance: { create(path: string): Promise<{ connect(): Promise<DuckConnection>; closeSync(): void }> };
  DuckDBTimestampValue: new (micros: bigint) => unknown;
  version(): string;
}

async function openDuckdb(dir: string): Promise<EngineRun> {
  const [mod, importMs] = await timedImport<DuckModule>(resolveInCache('@duckdb/node-api'));
  const t0 = performance.now();
  const instance = await mod.DuckDBInstance.create(join(dir, 'duck.db'));
  const conn = await instance.connect();
  await conn.runAndReadAll('SELECT 1');
  const openMs = performance.now() - t0;
  const upsert = values['duckdb-upsert'];
  const groups = async (sql: string) => (await conn.runAndReadAll(sql)).getRows().length;
  const perDay = (where: string) =>
    `SELECT CAST(started_at AS DATE) AS day, tool, count(*) AS calls, count(*) FILTER (WHERE status = 'denied') AS denied FROM bench_calls ${where} GROUP BY day, tool ORDER BY day, tool`;
  return {
    importMs,
    openMs,
    create: async () => {
      // PRIMARY KEY: what an idempotent adapter needs (INSERT OR REPLACE on call_id after a replay).
      await conn.run(`CREATE TABLE bench_calls (call_id VARCHAR PRIMARY KEY, tenant VARCHAR, tool VARCHAR, upstream VARCHAR, decision VARCHAR, status VARCHAR,
        started_at TIMESTAMP, latency_ms DOUBLE, cost DOUBLE)`);
      if (upsert) await conn.run('CREATE TEMP TABLE bench_staging AS SELECT * FROM bench_calls LIMIT 0');
    },
    insert: async (calls) => {
      // --duckdb-upsert: the idempotent path an adapter needs (an appender fails on a duplicate key):
      // append into a staging table, then INSERT OR REPLACE from it.
      const appender = await conn.createAppender(upsert ? 'bench_staging' : 'bench_calls');
      for (const c of calls) {
        appender.appendVarchar(c.callId);
        appender.appendVarchar(c.tenant);
        appender.appendVarchar(c.tool);
        appender.appendVarchar(c.upstream);
        appender.appendVarchar(c.decision);
        appender.appendVarchar(c.status);
        appender.appendTimestamp(new mod.DuckDBTimestampValue(BigInt(c.startedAtMs) * 1000n));
        appender.appendDouble(c.latencyMs);
        appender.appendDouble(c.cost);
        appender.endRow();
      }
      appender.flushSync();
      appender.closeSync();
      if (upsert) {
        await conn.run('INSERT OR REPLACE INTO bench_calls SELECT * FROM bench_staging');
        await conn.run('DELETE FROM bench_staging');
      }
    },
    perToolPerDay: async () => groups(perDay('')),
    perToolPerDayFiltered: async () =>
      groups(perDay(`WHERE tenant = '${FILTER.tenant}' AND started_at >= make_timestamp(${FILTER.fromMs * 1000}) AND started_at < make_timestamp(${FILTER.toMs * 1000})`)),
    count: async () => Number((await conn.runAndReadAll('SELECT count(*) FROM bench_calls')).getRows()[0]?.[0]),
    extra: async () => ({ version: mod.version(), upsert }),
    close: async () => {
      conn.closeSync();
      instance.closeSync();
    },
  };
}

interface SqliteStatement {
  run(...params: (string | number)[]): unknown;
  all(...params: (string | number)[]): unknown[];
  get(...params: (string | number)[]): Record<string, unknown> | undefined;
}
interface SqliteModule {
  DatabaseSync: new (path: string) => { exec(sql: string): void; prepare(sql: string): SqliteStatement; close(): void };
}

async function openSqlite(dir: string): Promise<EngineRun> {
  const [mod, importMs] = await timedImport<SqliteModule>('node:sqlite');
  const t0 = performance.now();
  const db = new mod.DatabaseSync(join(dir, 'sqlite.db'));
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
  db.prepare('SELECT 1').get();
  const openMs = performance.now() - t0;
  let insertRow: SqliteStatement | undefined;
  const perDay = (where: string) =>
    `SELECT date(started_at / 1000, 'unixepoch') AS day, tool, count(*) AS calls, sum(status = 'denied') AS denied FROM bench_calls ${where} GROUP BY day, tool ORDER BY day, tool`;
  return {
    importMs,
    openMs,
    create: async () => {
      // started_at in epoch milliseconds: SQLite has no timestamp type. call_id PRIMARY KEY as for DuckDB.
      db.exec(`CREATE TABLE bench_calls (call_id TEXT PRIMARY KEY, tenant TEXT, tool TEXT, upstream TEXT, decision TEXT, status TEXT,
        started_at INTEGER, latency_ms REAL, cost REAL)`);
      insertRow = db.prepare('INSERT OR REPLACE INTO bench_calls VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)');
    },
    insert: async (calls) => {
      if (insertRow === undefined) throw new Error('create() first');
      db.exec('BEGIN');
      for (const c of calls) insertRow.run(c.callId, c.tenant, c.tool, c.upstream, c.decision, c.status, c.startedAtMs, c.latencyMs, c.cost);
      db.exec('COMMIT');
    },
    perToolPerDay: async () => db.prepare(perDay('')).all().length,
    perToolPerDayFiltered: async () =>
      db.prepare(perDay('WHERE tenant = ? AND started_at >= ? AND started_at < ?')).all(FILTER.tenant, FILTER.fromMs, FILTER.toMs).length,
    count: async () => Number(db.prepare('SELECT count(*) AS n FROM bench_calls').get()?.['n']),
    extra: async () => ({ version: String(db.prepare('SELECT sqlite_version() AS v').get()?.['v']) }),
    close: async () => db.close(),
  };
}

async function repeat(run: () => unknown): Promise<number[]> {
  const times: number[] = [];
  for (let n = 0; n < RUNS; n++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return times;
}

function median(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  return Number((sorted[Math.floor(sorted.length / 2)] ?? NaN).toFixed(1));
}

const mb = (bytes: number) => Math.round(bytes / 1048576);

async function runChild(engine: Engine): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `attest-bench-embedded-${engine}-`));
  try {
    const rssBeforeImport = process.memoryUsage().rss;
    const open = { chdb: openChdb, duckdb: openDuckdb, sqlite: openSqlite }[engine];
    const run = await open(dir);
    await run.create();
    let generateMs = 0;
    let insertMs = 0;
    for (let from = 0; from < rows; from += batch) {
      const g0 = performance.now();
      const calls: Call[] = [];
      for (let i = from; i < Math.min(rows, from + batch); i++) calls.push(call(i));
      const t0 = performance.now();
      generateMs += t0 - g0;
      await run.insert(calls);
      insertMs += performance.now() - t0;
    }
    // A replayed batch (the projector after a crash) must leave the count unchanged.
    const replayed: Call[] = [];
    for (let i = 0; i < Math.min(rows, batch); i++) replayed.push(call(i));
    const r0 = performance.now();
    let replay: string;
    try {
      await run.insert(replayed);
      replay = `ok in ${Math.round(performance.now() - r0)} ms`;
    } catch (error) {
      replay = `fails: ${String(error).slice(0, 160)}`;
    }
    const counted = await run.count();
    if (counted !== rows) throw new Error(`${engine}: counted ${counted} rows of ${rows} (replay of the first batch: ${replay})`);
    const rssAfterInsert = process.memoryUsage().rss;
    const allGroups = await run.perToolPerDay();
    const filteredGroups = await run.perToolPerDayFiltered();
    const all = await repeat(() => run.perToolPerDay());
    const filtered = await repeat(() => run.perToolPerDayFiltered());
    const extra = await run.extra();
    const rss = process.memoryUsage().rss;
    await run.close();
    process.stdout.write(`${JSON.stringify({
      engine,
      rows,
      batch,
      ...(engine === 'chdb' ? { lowCardinality: values['chdb-lowcardinality'] } : {}),
      importMs: Number(run.importMs.toFixed(1)),
      openMs: Number(run.openMs.toFixed(1)),
      insertSeconds: Number((insertMs / 1000).toFixed(2)),
      rowsPerSecond: Math.round(rows / (insertMs / 1000)),
      generateSeconds: Number((generateMs / 1000).toFixed(2)),
      replayFirstBatch: replay,
      perToolPerDayMs: median(all),
      perToolPerDayRunsMs: all.map((t) => Math.round(t)),
      perToolPerDayGroups: allGroups,
      filteredMs: median(filtered),
      filteredRunsMs: filtered.map((t) => Math.round(t)),
      filteredGroups,
      rssBeforeImportMB: mb(rssBeforeImport),
      rssAfterInsertMB: mb(rssAfterInsert),
      rssMB: mb(rss),
      maxRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
      ...extra,
    })}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function ensureInstalled(): Record<string, string> {
  if (!existsSync(join(CACHE, 'node_modules', 'chdb')) || !existsSync(join(CACHE, 'node_modules', '@duckdb', 'node-api'))) {
    execFileSync('npm', ['install', '--prefix', CACHE, '--no-audit', '--no-fund', 'chdb', '@duckdb/node-api'], { stdio: 'inherit' });
  }
  const size = (...parts: string[]) => execFileSync('du', ['-sh', join(CACHE, 'node_modules', ...parts)], { encoding: 'utf8' }).split('\t')[0] ?? '?';
  return {
    'chdb (js)': size('chdb'),
    '@chdb/lib-linux-x64-gnu': size('@chdb', 'lib-linux-x64-gnu'),
    '@duckdb/node-api': size('@duckdb', 'node-api'),
    '@duckdb/node-bindings-linux-x64': size('@duckdb', 'node-bindings-linux-x64'),
    'node:sqlite': '0 (built into Node)',
    'whole cache node_modules': size(),
  };
}

if (values.child !== undefined) {
  await runChild(values.child as Engine);
} else {
  const installed = ensureInstalled();
  process.stdout.write(`${JSON.stringify({ installed, loadavg: loadavg().map((l) => Number(l.toFixed(2))), node: process.version })}\n`);
  for (const engine of values.engines.split(',')) {
    if (!(ENGINES as readonly string[]).includes(engine)) throw new Error(`unknown engine ${engine}; one of ${ENGINES.join(', ')}`);
    const t0 = performance.now();
    const args = ['--child', engine, '--rows', String(rows), '--batch', String(batch), ...(values['chdb-lowcardinality'] ? ['--chdb-lowcardinality'] : []), ...(values['duckdb-upsert'] ? ['--duckdb-upsert'] : [])];
    const child = spawnSync(process.execPath, [...process.execArgv, import.meta.filename, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      timeout: 15 * 60_000,
    });
    if (child.status !== 0) throw new Error(`${engine} child exited ${child.status ?? child.signal}: ${child.stdout}`);
    process.stdout.write(`${child.stdout.trim().replace(/}$/, `,"wallSeconds":${((performance.now() - t0) / 1000).toFixed(1)},"loadavg":${JSON.stringify(loadavg().map((l) => Number(l.toFixed(2))))}}`)}\n`);
  }
}
