/**
 * `attest start` with a readModel section runs the projector in the gateway's process: calls made
 * through the real gateway (real MCP client) reach ClickHouse while it serves, its numbers are on
 * the gateway's /metrics and agree with what ClickHouse holds, and after SIGTERM the read model holds
 * every event of the log, the gateway's last ones (GatewayStopped) included. `attest projector
 * status` on a database nothing migrated says so and fails.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openFileLogReader } from '#eventlog';
import { hashApiKey } from '#gateway';
import { ClickHouseReadModel } from '#projector';
import { testDatabase, until } from '../projector/spec-support.ts';
import { connectClient } from './harness/client.ts';
import { CLI_SCRIPT, runCli } from './harness/cli.ts';
import { spawnNode, stopProcess } from './harness/processes.ts';
import { FIXTURE_SERVER } from './support/gateway.ts';
import { parseExposition, sampleValue } from './support/prometheus.ts';
import type { Sample } from './support/prometheus.ts';

const KEY = 'atk_projector_start_0123456789';
const SCRAPER_KEY = 'atk_projector_scraper_0123456789';
const FIXTURE_UPSTREAM = `upstreams: { fixture: { transport: stdio, command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(FIXTURE_SERVER)}, "--stdio"] } }`;

async function scrape(url: string): Promise<Sample[]> {
  const response = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${SCRAPER_KEY}` }, signal: AbortSignal.timeout(10_000) });
  assert.equal(response.status, 200);
  return parseExposition(await response.text());
}

describe('attest start with a read model', () => {
  it('projects while it serves, and everything up to GatewayStopped once stopped', { timeout: 180_000 }, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-start-projector-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const config = await testDatabase(t);
    const configFile = path.join(dir, 'attest.yaml');
    await writeFile(configFile, [
      'log: { backend: file, dir: log }',
      'auth:',
      `  keys: [{ id: start-agent, hash: "${hashApiKey(KEY)}", tenant: t-start }, { id: scraper, hash: "${hashApiKey(SCRAPER_KEY)}", tenant: ops, roles: ["attest:metrics"] }]`,
      FIXTURE_UPSTREAM,
      `readModel: { backend: clickhouse, url: "${config.url}", database: ${config.database}, flushMs: 20 }`,
      '',
    ].join('\n'));
    const gateway = spawnNode(CLI_SCRIPT, { nodeArgs: ['--conditions=attest-source'], args: ['start', '--config', configFile, '--port', '0'] });
    t.after(() => stopProcess(gateway, { signal: 'SIGKILL' }));
    const [, url] = await gateway.waitForStdoutLine(/^attest start listening on (\S+) /, 60_000);
    const agent = await connectClient({ transport: 'streamable-http', url: `${url}/mcp`, headers: { authorization: `Bearer ${KEY}` } });
    for (let i = 0; i < 10; i++) await agent.client.callTool({ name: 'fixture__add', arguments: { a: i, b: 2 } });
    await agent.close();

    const model = new ClickHouseReadModel(config);
    t.after(() => model.close());
    for (const deadline = Date.now() + 60_000; ; ) {
      const perDay = await model.callsPerToolPerDay({ tenant: 't-start' }).catch(() => []);
      if (perDay.reduce((n, r) => n + r.calls, 0) === 10) break;
      assert.ok(Date.now() < deadline, 'the calls reach the read model while the gateway serves');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    // Once the projector caught up, /metrics says what ClickHouse holds and that nothing is behind.
    let samples: Sample[] = [];
    await until('the projector caught up with the log on /metrics', async () => {
      samples = await scrape(url as string);
      return sampleValue(samples, 'attest_projector_lag_events') === 0 && sampleValue(samples, 'attest_projector_events_total') === sampleValue(samples, 'attest_log_events');
    });
    const projected = await model.totals();
    assert.equal(sampleValue(samples, 'attest_projector_events_total'), projected.events);
    assert.equal(sampleValue(samples, 'attest_projector_quarantined_total'), projected.quarantined);
    assert.equal(sampleValue(samples, 'attest_projector_lag_seconds'), 0);
    const checkpoint = await model.checkpoint();
    assert.equal(checkpoint.processed, sampleValue(samples, 'attest_log_events'));
    assert.equal(sampleValue(samples, 'attest_projector_checkpoint_timestamp_seconds'), checkpoint.updatedAtMs / 1000);
    const batches = sampleValue(samples, 'attest_projector_batches_total') ?? 0;
    assert.ok(batches >= 1 && batches <= projected.events, `batches ${batches} for ${projected.events} events`);
    assert.equal(samples.filter((x) => x.name === 'attest_projector_errors_total').length, 0, 'no projection error, so no error series');

    assert.deepEqual(await stopProcess(gateway, { signal: 'SIGTERM', graceMs: 30_000 }), { code: 0, signal: null }, gateway.stderr());

    const reader = await openFileLogReader(path.join(dir, 'log'));
    t.after(() => reader.close());
    let count = 0;
    for await (const _ of reader.read()) count++;
    const totals = await model.totals();
    assert.equal(totals.events, count);
    assert.equal(totals.eventsByType['GatewayStopped'], 1);
    assert.equal((await model.checkpoint()).processed, count);
  });

  it('status on a database nothing migrated says so and fails', { timeout: 60_000 }, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-status-unmigrated-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const config = await testDatabase(t);
    const configFile = path.join(dir, 'attest.yaml');
    await writeFile(configFile, ['log: { backend: file, dir: log }', FIXTURE_UPSTREAM, `readModel: { backend: clickhouse, url: "${config.url}", database: ${config.database} }`, ''].join('\n'));
    await mkdir(path.join(dir, 'log'));
    const status = await runCli(['projector', 'status', '--config', configFile]);
    assert.equal(status.code, 1, status.stderr);
    assert.equal(status.stdout, '');
    assert.match(status.stderr, new RegExp(`^attest projector: ClickHouse database "${config.database}" at \\S+ has no projection yet \\(the database does not exist\\): run attest projector, or attest start with readModel, which creates and migrates it\n$`));
  });
});
