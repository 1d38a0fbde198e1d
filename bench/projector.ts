/**
 * Projection throughput into ClickHouse (issue 13): writes a bounded file log of `--events` events
 * (default 100 000: sessions of 300, each a tool call's RequestReceived + DecisionMade +
 * ResultReturned, eventlog/sample-drafts.ts; fsync off while generating, the bytes are the same),
 * projects it from zero into a fresh database of the ClickHouse at ATTEST_CLICKHOUSE_URL with the
 * projector's defaults (batches of `--batch` events), and reports events per second, projector CPU
 * per event (this process: reading, folding, encoding; the server's own CPU is not in it), and the
 * time of two questions on the result (the totals; calls per tool per day). The database is dropped
 * at the end.
 *
 *   ATTEST_CLICKHOUSE_URL=http://127.0.0.1:8123 node --conditions=attest-source bench/projector.ts [--events 100000] [--batch 5000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { randomUUID } from 'node:crypto';
import { ClickHouseReadModelSchema } from '#schemas';
import { openFileLog, openFileLogReader, sampleDraft } from '#eventlog';
import { ClickHouseReadModel, Projector } from '#projector';

const { values } = parseArgs({ options: { events: { type: 'string', default: '100000' }, batch: { type: 'string', default: '5000' } } });
const events = Number(values.events);
const batchEvents = Number(values.batch);
const url = process.env['ATTEST_CLICKHOUSE_URL'];
if (url === undefined) throw new Error('set ATTEST_CLICKHOUSE_URL to a ClickHouse HTTP interface');

const dir = mkdtempSync(join(tmpdir(), 'attest-bench-projector-'));
const database = `attest_bench_${randomUUID().replaceAll('-', '')}`;
const config = ClickHouseReadModelSchema.parse({ backend: 'clickhouse', url, database, batchEvents });
const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

try {
  const log = await openFileLog({ dir, fsync: false });
  const PER_SESSION = 300;
  for (let written = 0; written < events; ) {
    const stream = `bench-${Math.floor(written / PER_SESSION)}`;
    const drafts = [];
    for (let n = 0; n < PER_SESSION && written < events; n++, written++) drafts.push(sampleDraft(stream, n));
    await log.append(drafts);
  }
  await log.close();

  const model = new ClickHouseReadModel(config);
  await model.migrate();
  const server = await model.describe();
  const reader = await openFileLogReader(dir);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const stats = await new Projector(reader, model, { batchEvents, flushMs: 200, logger: silent }).catchUp();
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  await reader.close();

  const timed = async <T>(run: () => Promise<T>): Promise<[T, number]> => {
    const t0 = performance.now();
    const out = await run();
    return [out, performance.now() - t0];
  };
  const [totals, totalsMs] = await timed(() => model.totals());
  const [perDay, perDayMs] = await timed(() => model.callsPerToolPerDay({}));
  if (totals.events !== events || stats.checkpoint.processed !== events) throw new Error(`projected ${totals.events} events of ${events}`);
  process.stdout.write(`${JSON.stringify({
    server,
    events,
    batchEvents,
    batches: stats.batches,
    seconds: Number(seconds.toFixed(2)),
    eventsPerSecond: Math.round(events / seconds),
    projectorCpuMicrosPerEvent: Number(((used.user + used.system) / events).toFixed(1)),
    toolCalls: totals.toolCalls,
    totalsMs: Math.round(totalsMs),
    callsPerToolPerDayMs: Math.round(perDayMs),
    perDayRows: perDay.length,
  }, null, 2)}\n`);
  await fetch(`${url}/`, { method: 'POST', body: `DROP DATABASE IF EXISTS ${database}` });
  await model.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
