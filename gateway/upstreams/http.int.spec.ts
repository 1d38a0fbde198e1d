import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { HttpUpstreamSchema } from '#schemas';
import { startEverythingHttp } from './fixtures/everything.ts';
import { PROTOCOL_VERSION, attachRpc, initialize, memoryLogger, waitUntil, watchEvents } from './fixtures/link-harness.ts';
import { startRecordingProxy } from './fixtures/recording-proxy.ts';
import { UpstreamError, createUpstreamLink } from './link.ts';

const TEST_TIMEOUT = { timeout: 60_000 };
const SECRET = 'Bearer s3cret-token-never-logged';

/** A loopback port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo; // listening on TCP, so an AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

void describe('Streamable HTTP upstream link (server-everything)', () => {
  void it('relays the session, sends the configured headers on every request (POST, GET, DELETE) and ends the session on close()', TEST_TIMEOUT, async (t) => {
    const server = await startEverythingHttp('streamableHttp');
    t.after(() => server.stop());
    const proxy = await startRecordingProxy(server.port);
    t.after(() => proxy.close());
    const { logger, output } = memoryLogger();
    const config = HttpUpstreamSchema.parse({ transport: 'streamable-http', url: `${proxy.origin}/mcp`, headers: { Authorization: SECRET, 'X-Attest-Tenant': 'acme' } });
    const link = createUpstreamLink('remote', config, { logger });
    t.after(() => link.close());
    const watch = watchEvents(link);
    const rpc = attachRpc(link);

    await link.start();
    await watch.next('connected');
    const init = await rpc.request('initialize', { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'attest-upstream-test', version: '0.0.0' } });
    assert.equal(init['protocolVersion'], PROTOCOL_VERSION);
    link.setProtocolVersion(PROTOCOL_VERSION);
    await rpc.notify('notifications/initialized');
    const { tools } = await rpc.request('tools/list');
    assert.ok(Array.isArray(tools) && tools.length > 0);
    const echoed = await rpc.request('tools/call', { name: 'echo', arguments: { message: 'over streamable http' } });
    assert.match(JSON.stringify(echoed['content']), /over streamable http/);
    await waitUntil(() => proxy.requests.some((request) => request.method === 'GET'), 5_000, 'the event stream (GET) to open');

    await link.close();
    assert.equal(link.state, 'closed');
    assert.deepEqual(new Set(proxy.requests.map((request) => request.method)), new Set(['POST', 'GET', 'DELETE']));
    for (const request of proxy.requests) {
      assert.equal(request.headers['authorization'], SECRET, `${request.method} carries Authorization`);
      assert.equal(request.headers['x-attest-tenant'], 'acme', `${request.method} carries X-Attest-Tenant`);
    }
    const [handshake, ...rest] = proxy.requests;
    assert.equal(handshake?.headers['mcp-session-id'], undefined);
    for (const request of rest) {
      assert.ok(typeof request.headers['mcp-session-id'] === 'string', `${request.method} carries the session id`);
      assert.equal(request.headers['mcp-protocol-version'], PROTOCOL_VERSION, `${request.method} carries MCP-Protocol-Version`);
    }
    assert.doesNotMatch(output(), /s3cret/, 'header values never reach the log');
    assert.match(output(), /X-Attest-Tenant/, 'header names do');
  });

  void it('starts a new upstream session when the server answers 404 for the old one, replaying the handshake', TEST_TIMEOUT, async (t) => {
    const server = await startEverythingHttp('streamableHttp');
    t.after(() => server.stop());
    const proxy = await startRecordingProxy(server.port);
    t.after(() => proxy.close());
    const { logger } = memoryLogger();
    const link = createUpstreamLink('remote', HttpUpstreamSchema.parse({ transport: 'streamable-http', url: `${proxy.origin}/mcp` }), { logger });
    t.after(() => link.close());
    const watch = watchEvents(link);
    const rpc = attachRpc(link);
    await link.start();
    await initialize(rpc);
    link.setProtocolVersion(PROTOCOL_VERSION);
    const oldSession = proxy.requests.at(-1)?.headers['mcp-session-id'];
    assert.ok(typeof oldSession === 'string');
    proxy.expireSession(oldSession);

    await assert.rejects(
      rpc.request('tools/list'),
      (error) => error instanceof UpstreamError && error.code === 'ATTEST_UPSTREAM_UNAVAILABLE' && error.facts.cause === 'HTTP 404' && /could not deliver the "tools\/list" request/.test(error.message),
    );
    const lost = await watch.next('lost');
    assert.equal(lost.willRestart, true);
    const restarted = await watch.next('restarted');
    assert.equal(restarted.replayedInitialize, true);
    assert.equal(link.state, 'ready');

    const echoed = await rpc.request('tools/call', { name: 'echo', arguments: { message: 'in the new session' } });
    assert.match(JSON.stringify(echoed['content']), /in the new session/);
    const newSession = proxy.requests.at(-1)?.headers['mcp-session-id'];
    assert.ok(typeof newSession === 'string' && newSession !== oldSession);
    assert.deepEqual(
      rpc.unsolicited.filter((message) => !('method' in message)),
      [],
      'the answer to the replayed initialize does not reach the session',
    );
  });

  void it('names the URL (without credentials or query values) and the cause when the server is not there', TEST_TIMEOUT, async (t) => {
    const port = await closedPort();
    const { logger, output } = memoryLogger();
    const config = HttpUpstreamSchema.parse({ transport: 'streamable-http', url: `http://svc:hunter2@127.0.0.1:${port}/mcp?api_key=abc123` });
    const link = createUpstreamLink('gone', config, { logger });
    t.after(() => link.close());
    await link.start();
    const error = await initialize(attachRpc(link)).then(
      () => assert.fail('initialize reached a closed port'),
      (failure: unknown) => failure,
    );
    assert.ok(error instanceof UpstreamError);
    assert.equal(error.code, 'ATTEST_UPSTREAM_UNAVAILABLE');
    assert.equal(error.facts.cause, 'ECONNREFUSED');
    assert.equal(error.message, `upstream "gone" (streamable-http http://127.0.0.1:${port}/mcp?…) is unreachable: connection refused (ECONNREFUSED)`);
    assert.doesNotMatch(`${error.message}\n${output()}`, /hunter2|abc123/);
  });

  void it('gives up on a server that accepts but never answers, after connectTimeoutMs', TEST_TIMEOUT, async (t) => {
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    t.after(() => {
      silent.closeAllConnections();
      silent.close();
    });
    const { port } = silent.address() as AddressInfo; // listening on TCP, so an AddressInfo
    const { logger } = memoryLogger();
    const link = createUpstreamLink('silent', HttpUpstreamSchema.parse({ transport: 'streamable-http', url: `http://127.0.0.1:${port}/mcp`, connectTimeoutMs: 300 }), { logger });
    t.after(() => link.close());
    await link.start();
    const started = Date.now();
    await assert.rejects(
      initialize(attachRpc(link)),
      (error) => error instanceof UpstreamError && error.code === 'ATTEST_UPSTREAM_TIMEOUT' && /did not answer within 300 ms \(connectTimeoutMs\)/.test(error.message),
    );
    assert.ok(Date.now() - started < 5_000);
  });
});

void describe('legacy SSE upstream link (server-everything)', () => {
  void it('relays the session over the event stream and its POST endpoint, with the configured headers on both', TEST_TIMEOUT, async (t) => {
    const server = await startEverythingHttp('sse');
    t.after(() => server.stop());
    const proxy = await startRecordingProxy(server.port);
    t.after(() => proxy.close());
    const { logger, output } = memoryLogger();
    const config = HttpUpstreamSchema.parse({ transport: 'sse', url: `${proxy.origin}/sse`, headers: { Authorization: SECRET, 'X-Attest-Tenant': 'acme' } });
    const link = createUpstreamLink('legacy', config, { logger });
    t.after(() => link.close());
    const watch = watchEvents(link);
    const rpc = attachRpc(link);

    await link.start();
    await watch.next('connected');
    await initialize(rpc);
    link.setProtocolVersion(PROTOCOL_VERSION);
    const echoed = await rpc.request('tools/call', { name: 'echo', arguments: { message: 'over sse' } });
    assert.match(JSON.stringify(echoed['content']), /over sse/);
    await link.close();

    assert.equal(proxy.requests[0]?.method, 'GET');
    assert.ok(proxy.requests.some((request) => request.method === 'POST' && request.path.startsWith('/message?sessionId=')));
    for (const request of proxy.requests) {
      assert.equal(request.headers['authorization'], SECRET, `${request.method} ${request.path} carries Authorization`);
      assert.equal(request.headers['x-attest-tenant'], 'acme');
    }
    assert.equal(proxy.requests.at(-1)?.headers['mcp-protocol-version'], PROTOCOL_VERSION);
    assert.doesNotMatch(output(), /s3cret/);
  });

  void it('reports the session lost for good when the server goes away', TEST_TIMEOUT, async (t) => {
    const server = await startEverythingHttp('sse');
    t.after(() => server.stop());
    const { logger } = memoryLogger();
    const link = createUpstreamLink('legacy', HttpUpstreamSchema.parse({ transport: 'sse', url: `http://127.0.0.1:${server.port}/sse` }), { logger });
    t.after(() => link.close());
    const watch = watchEvents(link);
    const rpc = attachRpc(link);
    await link.start();
    await initialize(rpc);
    await server.stop();

    const lost = await watch.next('lost');
    assert.equal(lost.willRestart, false);
    assert.equal(link.state, 'closed');
    assert.match(lost.reason, new RegExp(`upstream "legacy" \\(sse http://127\\.0\\.0\\.1:${server.port}/sse\\)`));
    await assert.rejects(rpc.request('ping'), (error) => error instanceof UpstreamError && error.code === 'ATTEST_UPSTREAM_UNAVAILABLE');
  });

  void it('fails start() with the URL and the cause when the server is not there', TEST_TIMEOUT, async () => {
    const port = await closedPort();
    const { logger } = memoryLogger();
    const link = createUpstreamLink('gone', HttpUpstreamSchema.parse({ transport: 'sse', url: `http://127.0.0.1:${port}/sse` }), { logger });
    await assert.rejects(link.start(), (error) => {
      assert.ok(error instanceof UpstreamError);
      assert.equal(error.code, 'ATTEST_UPSTREAM_UNAVAILABLE');
      assert.equal(error.message, `upstream "gone" (sse http://127.0.0.1:${port}/sse) is unreachable: connection refused (ECONNREFUSED)`);
      return true;
    });
    assert.equal(link.state, 'idle');
    await link.close();
  });
});
