/**
 * The projector when its read model fails under it (real ClickHouse): a table gone mid-run makes
 * the writes fail; the error is recorded and shown by status, the checkpoint does not move past
 * what was written, and once the table is back the projector catches up by itself with every
 * total right. A read model that cannot be reached at start is a precise error.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openFileLog, openFileLogReader, sampleDraft } from '#eventlog';
import { ClickHouseReadModelSchema } from '#schemas';
import { ClickHouseReadModel } from './clickhouse/read-model.ts';
import { Projector } from './projector.ts';
import { projectorStatus } from './status.ts';
import { clickhouseQuery, testDatabase, until } from './spec-support.ts';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined };

describe('projector: failures of the read model', () => {
  it('records a failed write, holds its checkpoint, and catches up once the table is back', { timeout: 120_000 }, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-projector-fault-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const log = await openFileLog({ dir, fsync: false });
    t.after(() => log.close());
    const append = async (from: number, n: number): Promise<void> => {
      await log.append(Array.from({ length: n }, (_, i) => sampleDraft('fault', from + i)));
    };
    await append(0, 150);

    const config = await testDatabase(t);
    const model = new ClickHouseReadModel(config);
    t.after(() => model.close());
    await model.migrate();
    const reader = await openFileLogReader(dir, { pollMs: 20 });
    t.after(() => reader.close());
    const controller = new AbortController();
    t.after(() => controller.abort());
    const projector = new Projector(reader, model, { batchEvents: 30, flushMs: 20, retryDelayMs: 50, logger: silent });
    const running = projector.run(controller.signal);
    await until('the first 150 events are projected', async () => (await model.checkpoint()).processed === 150);

    await clickhouseQuery(config.url, `RENAME TABLE ${config.database}.events TO ${config.database}.events_away`);
    await append(150, 90);
    await until('the failed write is recorded', async () => (await model.errors(5)).count > 0);
    const status = await projectorStatus(model, reader);
    assert.equal(status.checkpoint.processed, 150, 'nothing checkpointed past what was written');
    assert.equal(status.lagEvents, 90);
    assert.ok(status.errors > 0);
    assert.equal(status.recentErrors[0]?.code, 'ATTEST_READMODEL_UNAVAILABLE');
    assert.match(status.recentErrors[0]?.message ?? '', /into events failed/);
    // What /metrics shows under attest start: the errors by code, and the oldest event waiting is the first not projected.
    assert.ok((projector.stats.errorsByCode['ATTEST_READMODEL_UNAVAILABLE'] ?? 0) > 0, JSON.stringify(projector.stats.errorsByCode));
    let firstUnprojectedMs: number | undefined;
    for await (const entry of reader.entries({ ...(status.checkpoint.cursor !== undefined && { after: status.checkpoint.cursor }) })) {
      firstUnprojectedMs = Date.parse(entry.event?.occurredAt ?? '');
      break;
    }
    await until('the projector holds the first unprojected event', () => Promise.resolve(projector.oldestUnwrittenMs !== undefined));
    assert.equal(projector.oldestUnwrittenMs, firstUnprojectedMs);

    await clickhouseQuery(config.url, `RENAME TABLE ${config.database}.events_away TO ${config.database}.events`);
    await until('the projector catches up by itself', async () => (await model.checkpoint()).processed === 240);
    await until('nothing waits once caught up', () => Promise.resolve(projector.oldestUnwrittenMs === undefined));
    controller.abort();
    const stats = await running;
    assert.ok(stats.errors > 0);
    const totals = await model.totals();
    assert.equal(totals.events, 240);
    assert.deepEqual(totals.toolCallsByStatus, { ok: 80 });
  });

  it('says which server it could not reach at start', { timeout: 60_000 }, async () => {
    const model = new ClickHouseReadModel(ClickHouseReadModelSchema.parse({ backend: 'clickhouse', url: 'http://127.0.0.1:9', database: 'attest_unreachable', requestTimeoutMs: 5_000 }));
    try {
      await assert.rejects(model.migrate(), (error: Error & { code?: string }) => error.code === 'ATTEST_READMODEL_UNAVAILABLE' && /creating database "attest_unreachable" failed/.test(error.message));
    } finally {
      await model.close();
    }
  });
});
