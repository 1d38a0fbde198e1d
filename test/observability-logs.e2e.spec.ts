/**
 * No secret reaches the logs: the real `attest gateway` process (debug level, so every log call
 * that exists writes), configured with an upstream header token, URL credentials, an env secret an
 * upstream prints to stderr when it crashes, and a known API key; driven with accepted and refused
 * requests (no key, a wrong key, bad JSON, a forbidden scrape); then every byte it wrote is searched.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashApiKey } from '#gateway';
import { rawInitialize, rawPost } from './support/raw-mcp.ts';
import { spawnNode, startNodeServer, stopAllProcesses } from './harness/processes.ts';

const CLI = fileURLToPath(new URL('../cli/attest.ts', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/upstream/server.ts', import.meta.url));

const SECRETS = {
  API_KEY: 'atk_known_agent_key_6c1f0e9b2a',
  WRONG_KEY: 'atk_wrong_key_presented_93d7a1',
  UPSTREAM_TOKEN: 'upstream-token-7f3a9c44e1',
  ENV_SECRET: 'env-secret-51d0e2b8aa',
  DEAD_KEY: 'dead-upstream-key-0b6e13',
  URL_PASSWORD: 'url-pass-2d9f7c31',
};

describe('logs without secrets', () => {
  let dir: string | undefined;
  after(async () => {
    await stopAllProcesses();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('a gateway serving accepted and refused requests writes none of its secrets', { timeout: 90_000 }, async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'attest-logs-'));
    const fixture = await startNodeServer(FIXTURE, { args: ['--http'] });
    const config = {
      gateway: { port: 0 },
      log: { backend: 'file', dir: path.join(dir, 'log') },
      auth: { keys: [{ id: 'agent', hash: hashApiKey(SECRETS.API_KEY), tenant: 't1' }] },
      upstreams: {
        fixture: { transport: 'streamable-http', url: fixture.url, headers: { Authorization: 'Bearer ${UPSTREAM_TOKEN}' } },
        tools: { transport: 'stdio', command: 'node', args: [FIXTURE, '--stdio'], env: { FIXTURE_SECRET: '${ENV_SECRET}' } },
        leaky: { transport: 'stdio', command: 'node', args: ['-e', "console.error('boom, my env is ' + process.env.LEAKY_SECRET); process.exit(3)"], env: { LEAKY_SECRET: '${ENV_SECRET}' }, restart: { maxRestarts: 0 } },
        dead: { transport: 'streamable-http', url: 'http://svc:${URL_PASSWORD}@127.0.0.1:1/mcp', headers: { 'X-Api-Key': '${DEAD_KEY}' }, connectTimeoutMs: 5000 },
      },
    };
    const file = path.join(dir, 'attest.json');
    await writeFile(file, JSON.stringify(config));
    const gateway = spawnNode(CLI, {
      nodeArgs: ['--conditions=attest-source'],
      args: ['gateway', '--config', file],
      env: { ATTEST_LOG_LEVEL: 'debug', UPSTREAM_TOKEN: SECRETS.UPSTREAM_TOKEN, ENV_SECRET: SECRETS.ENV_SECRET, DEAD_KEY: SECRETS.DEAD_KEY, URL_PASSWORD: SECRETS.URL_PASSWORD },
    });
    const url = (await gateway.waitForStdoutLine(/listening on (\S+) /, 30_000))[1] ?? '';
    const mcp = `${url}/mcp`;
    const agent = { authorization: `Bearer ${SECRETS.API_KEY}` };

    const { sessionId, result } = await rawInitialize(mcp, agent);
    const headers = { ...agent, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const echoed = await rawPost(mcp, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'hello' } } }, headers);
    assert.ok(echoed.messages[0]?.['result'], echoed.text);
    const viaStdio = await rawPost(mcp, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'tools__echo', arguments: { text: 'hi' } } }, headers);
    assert.ok(viaStdio.messages[0]?.['result'], viaStdio.text);
    const down = await rawPost(mcp, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'dead__anything', arguments: {} } }, headers);
    assert.equal((down.messages[0]?.['error'] as { code: number } | undefined)?.code, -32012);

    assert.equal((await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }, { authorization: `Bearer ${SECRETS.WRONG_KEY}` })).status, 401);
    assert.equal((await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} })).status, 401);
    assert.equal((await rawPost(mcp, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"token":"${SECRETS.API_KEY}"`, headers)).status, 400);
    assert.equal((await fetch(`${url}/metrics`, { headers: agent, signal: AbortSignal.timeout(10_000) })).status, 403);

    const status = await gateway.stop({ graceMs: 15_000 });
    assert.equal(status.code, 0, `${JSON.stringify(status)} ${gateway.stdout()} ${gateway.stderr().slice(-1500)}`);

    const written = `${gateway.stdout()}\n${gateway.stderr()}`;
    const lines = gateway.stderr().split('\n').filter((line) => line.length > 0);
    assert.ok(lines.length >= 10, `the gateway logged (${lines.length} lines)`);
    for (const line of lines) JSON.parse(line); // structured JSON, one object a line
    for (const [name, secret] of Object.entries(SECRETS)) assert.ok(!written.includes(secret), `${name} appears in the output:\n${written.split('\n').filter((l) => l.includes(secret)).join('\n')}`);
    const basic = Buffer.from(`svc:${SECRETS.URL_PASSWORD}`).toString('base64');
    assert.ok(!written.includes(basic), 'nor the URL credentials as a Basic header');
    assert.match(written, /boom, my env is \[redacted\]/, 'the crashing upstream printed the env secret and the logger blanked it');
  });
});
