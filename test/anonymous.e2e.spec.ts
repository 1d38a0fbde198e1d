/**
 * Anonymous access for local development (auth.anonymous): a real SDK client that sends no
 * Authorization header at all is served as the anonymous principal, with that principal's own
 * tool lists, and recorded as it; a request that carries a credential is never anonymous (a
 * wrong key stays a 401); the admin API stays closed to it; the gateway refuses to start with it
 * on a non-loopback bind unless forced, and says loudly at start that it is on.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ProtocolError } from '@modelcontextprotocol/server';
import { ConfigError } from '#schemas';
import { createLogger, hashApiKey, startGateway } from '#gateway';
import { closeAllClients, connectClient } from './harness/client.ts';
import { makeTempDir, removeAllTempDirs } from './harness/tmp.ts';
import { errorOf, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

const ANONYMOUS = { enabled: true, tenant: 'dev', agent: 'local-laptop', roles: ['attest:approver'], allowTools: ['fixture__*'], denyTools: ['fixture__add'] };

after(async () => {
  await closeAllClients();
  await removeAllTempDirs();
});

describe('auth.anonymous: requests without any credential', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, auth: { anonymous: ANONYMOUS } });
  });
  after(async () => {
    await t?.close();
  });

  it('an SDK client sending no header is served, with the anonymous tool lists, and recorded as the anonymous principal', async () => {
    const agent = await connectClient({ transport: 'streamable-http', url: `${t.url}/mcp` });
    const names = (await agent.client.listTools()).tools.map((tool) => tool.name);
    assert.ok(names.includes('fixture__echo'), names.join(', '));
    assert.ok(!names.includes('fixture__add'), 'a tool denied to anonymous requests is not listed');
    const echo = await agent.client.callTool({ name: 'fixture__echo', arguments: { text: 'no header' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'no header' }]);
    const callId = (echo._meta?.['attest/receipt'] as { callId?: string } | undefined)?.callId;
    await assert.rejects(agent.client.callTool({ name: 'fixture__add', arguments: { a: 1, b: 2 } }), (error: unknown) => {
      assert.ok(error instanceof ProtocolError, String(error));
      assert.equal(error.code, -32010);
      assert.equal((error.data as { ruleId?: string }).ruleId, 'anonymous:denyTools[0]');
      return true;
    });
    await agent.close();

    const events = await t.events();
    const anonymous = { kind: 'anonymous', id: 'anonymous', tenant: 'dev', agent: 'local-laptop', roles: ['attest:approver'] };
    const opened = events.find((e) => e.type === 'SessionOpened');
    assert.deepEqual(opened?.actor, anonymous);
    assert.equal(opened?.tenant, 'dev');
    const call = events.filter((e) => e.callId === callId);
    assert.deepEqual(call.map((e) => e.type), ['RequestReceived', 'DecisionMade', 'ResultReturned']);
    for (const e of call) assert.deepEqual(e.actor, anonymous);
    assert.ok(events.some((e) => e.type === 'DecisionMade' && e.data.decision === 'deny' && e.data.ruleId === 'anonymous:denyTools[0]'));
  });

  it('a request carrying a credential is never anonymous: a wrong key or a malformed header is still 401, a good key is its own principal', async () => {
    const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '0' } } };
    const wrong = await rawPost(`${t.url}/mcp`, initialize, { authorization: 'Bearer atk_wrong_key_for_this_gateway' });
    assert.equal(wrong.status, 401);
    assert.match(errorOf(wrong).message, /Invalid API key/);
    const malformed = await rawPost(`${t.url}/mcp`, initialize, { authorization: 'Basic dXNlcjpwYXNz' });
    assert.equal(malformed.status, 401);
    const keyed = await connectClient({ transport: 'streamable-http', url: `${t.url}/mcp`, headers: t.headers });
    assert.ok((await keyed.client.listTools()).tools.some((tool) => tool.name === 'fixture__add'), 'the key has its own (all) tools');
    await keyed.close();
    const sessions = (await t.events()).filter((e) => e.type === 'SessionOpened').map((e) => e.actor.kind);
    assert.deepEqual(sessions, ['anonymous', 'apiKey']);
  });

  it('the admin and approvals APIs need a credential: 401 for a request without one', async () => {
    for (const path of ['/admin/v1/keys', '/admin/v1/approvals']) {
      const response = await fetch(`${t.url}${path}`);
      assert.equal(response.status, 401, path);
      const body = (await response.json()) as { error: { message: string } };
      assert.match(body.error.message, /admin API needs a credential/, path);
    }
  });
});

describe('auth.anonymous at start', () => {
  const config = async (host: string, anonymous: Record<string, unknown>) => ({
    gateway: { host, port: 0 },
    log: { backend: 'file' as const, dir: await makeTempDir('attest-anonymous-log-') },
    auth: { keys: [{ id: 'k', hash: hashApiKey('atk_anonymous_start_key'), tenant: 't' }], anonymous },
    upstreams: { fixture: fixtureStdioUpstream() },
  });
  const capture = () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('info', { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    return { lines, logger };
  };

  it('is refused on a non-loopback bind, naming the key and the way out', async () => {
    const { logger } = capture();
    await assert.rejects(startGateway(await config('0.0.0.0', { enabled: true }), { logger }), (error: unknown) => {
      assert.ok(error instanceof ConfigError, String(error));
      assert.match(error.message, /^auth\.anonymous\.enabled: refused on the non-loopback bind address "0\.0\.0\.0".*bind 127\.0\.0\.1 for local development, or set auth\.anonymous\.allowNonLoopback: true/);
      return true;
    });
  });

  it('starts on a non-loopback bind when forced, and on loopback, warning loudly each time', async () => {
    for (const [host, anonymous] of [['0.0.0.0', { enabled: true, allowNonLoopback: true }], ['127.0.0.1', { enabled: true }]] as const) {
      const { lines, logger } = capture();
      const gateway = await startGateway(await config(host, anonymous), { logger });
      await gateway.close();
      const warning = lines.find((line) => line['level'] === 40 && String(line['msg']).startsWith('ANONYMOUS ACCESS IS ON'));
      assert.ok(warning !== undefined, `no warning at start on ${host}: ${lines.map((l) => String(l['msg'])).join(' | ')}`);
      assert.equal(warning['tenant'], 'local');
      assert.deepEqual(warning['allowTools'], ['*']);
    }
  });

  it('off (the default), or enabled: false: no warning, and a request without a credential is a 401', async () => {
    const { lines, logger } = capture();
    const gateway = await startGateway(await config('127.0.0.1', { enabled: false }), { logger });
    try {
      const response = await rawPost(`${gateway.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'ping' });
      assert.equal(response.status, 401);
    } finally {
      await gateway.close();
    }
    assert.ok(!lines.some((line) => String(line['msg']).startsWith('ANONYMOUS')));
  });
});
