/** A fresh ClickHouse database per test, on the real server of the service harness, dropped after it. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import { ClickHouseReadModelSchema } from '#schemas';
import type { ClickHouseReadModelConfig } from '#schemas';
import { clickhouseUrl } from '../test/services/index.ts';

export async function clickhouseQuery(url: string, query: string): Promise<string> {
  const response = await fetch(`${url}/`, { method: 'POST', body: query, signal: AbortSignal.timeout(30_000) });
  const text = await response.text();
  if (!response.ok) throw new Error(`ClickHouse refused ${query.slice(0, 80)}: ${text}`);
  return text;
}

export async function testDatabase(t: TestContext, overrides: Partial<ClickHouseReadModelConfig> = {}): Promise<ClickHouseReadModelConfig> {
  const service = await clickhouseUrl();
  const database = `attest_test_${randomUUID().replaceAll('-', '')}`;
  t.after(async () => {
    await clickhouseQuery(service.url, `DROP DATABASE IF EXISTS ${database}`);
    await service.stop();
  });
  return ClickHouseReadModelSchema.parse({ backend: 'clickhouse', url: service.url, database, ...overrides });
}

/** Polls `check` every 50 ms until it holds; fails naming `what` after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); ) {
    assert.ok(Date.now() < deadline, `${what} within ${timeoutMs / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
