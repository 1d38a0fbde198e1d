/**
 * The harness gives a real ClickHouse server that @clickhouse/client can use: DDL, JSONEachRow
 * inserts and selects, and server errors surfaced as rejections.
 *
 * Debian's server (18.16, deploy/local) predates query parameters (`{name:Type}` fails with
 * "Unknown setting param_name") and answers errors in a format the client cannot parse a code
 * from; these tests keep to what both it and current servers support.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import type { ClickHouseClient } from '@clickhouse/client';
import { clickhouseUrl } from './index.ts';
import type { ClickHouseService } from './index.ts';

describe('ClickHouse from the service harness', () => {
  let service: ClickHouseService | undefined;
  let client: ClickHouseClient | undefined;

  before(async () => {
    service = await clickhouseUrl();
    client = createClient({ url: service.url, request_timeout: 15_000, log: { level: ClickHouseLogLevel.OFF } });
  });

  after(async () => {
    await client?.close();
    await service?.stop();
  });

  it('answers SELECT 1 over plain HTTP and reports its version', { timeout: 30_000 }, async () => {
    assert.ok(service && client);
    const response = await fetch(`${service.url}/?query=${encodeURIComponent('SELECT 1')}`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(response.status, 200);
    assert.equal(await response.text(), '1\n');

    const rows = await (await client.query({ query: 'SELECT version() AS version', format: 'JSONEachRow' })).json<{ version: string }>();
    assert.equal(rows.length, 1);
    assert.match(rows[0]?.version ?? '', /^\d+\.\d+/);
  });

  it('creates a table, inserts JSONEachRow, selects the rows back and drops it', { timeout: 30_000 }, async () => {
    assert.ok(client);
    const table = `attest_harness_${randomUUID().replaceAll('-', '')}`;
    const rows = [
      { id: 1, stream: 'session-a', payload: '{"seq":1}' },
      { id: 2, stream: 'session-a', payload: '{"seq":2}' },
      { id: 3, stream: 'session-b', payload: 'ünïcode ✓' },
    ];
    await client.command({ query: `CREATE TABLE ${table} (id UInt32, stream String, payload String) ENGINE = MergeTree ORDER BY id` });
    try {
      await client.insert({ table, values: rows, format: 'JSONEachRow' });
      const back = await (await client.query({ query: `SELECT id, stream, payload FROM ${table} ORDER BY id`, format: 'JSONEachRow' })).json();
      assert.deepEqual(back, rows);
      const counts = await (await client.query({ query: `SELECT stream, count() AS n FROM ${table} GROUP BY stream ORDER BY stream`, format: 'JSONEachRow' })).json();
      // UInt64 comes back as a string in JSON formats, so no precision is lost.
      assert.deepEqual(counts, [
        { stream: 'session-a', n: '2' },
        { stream: 'session-b', n: '1' },
      ]);
    } finally {
      await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
    }
    const exists = await (await client.query({ query: `EXISTS TABLE ${table}`, format: 'JSONEachRow' })).json<{ result: number }>();
    assert.deepEqual(exists, [{ result: 0 }]);
  });

  it('rejects a query the server refuses, with the server message', { timeout: 30_000 }, async () => {
    assert.ok(client);
    await assert.rejects(client.command({ query: 'SELEC 1' }), /Syntax error/);
    await assert.rejects(client.query({ query: 'SELECT * FROM attest_no_such_table', format: 'JSONEachRow' }), /attest_no_such_table/);
  });
});
