/**
 * `attest start` with a readModel section runs the projector in the gateway's process: calls made
 * through the real gateway (real MCP client) reach ClickHouse while it serves, and after SIGTERM the
 * read model holds every event of the log, the gateway's last ones (GatewayStopped) included.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { openFileLogReader } from '#eventlog';
import { hashApiKey } from '#gateway';
import { ClickHouseReadModel } from '#projector';
import { testDatabase } from '../projector/spec-support.ts';
import { connectClient } from './harness/client.ts';
import { CLI_SCRIPT } from './harness/cli.ts';
import { spawnNode, stopProcess } from './harness/processes.ts';
import { FIXTURE_SERVER } from './support/gateway.ts';

const KEY = 'atk_projector_start_0123456789';

describe('attest start with a read model', () => {
  it('projects while it serves, and everything up to GatewayStopped once stopped', { timeout: 180_000 }, async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-start-projector-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const config = await testDatabase(t);
    const configFile = path.join(dir, 'attest.yaml');
    await writeFile(configFile, [
      'log: { backend: file, dir: log }',
      'auth:',
      `  keys: [{ id: start-agent, hash: "${hashApiKey(KEY)}", tenant: t-start }]`,
      `upstreams: { fixture: { transport: stdio, command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(FIXTURE_SERVER)}, "--stdio"] } }`,
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
});
