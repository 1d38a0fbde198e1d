/**
 * Virtual servers through the real gateway: `/servers/<name>/mcp` (and the legacy `/servers/<name>/sse`)
 * serve only the bundled tools, prompts and resources of two real fixture upstreams; a call outside
 * the bundle is an unknown tool; the key's lists and the policy still apply on top; SessionOpened
 * records the virtual server and only the upstreams the bundle reaches are connected.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashApiKey, startGateway } from '#gateway';
import type { Gateway } from '#gateway';
import type { AttestEvent } from '#schemas';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream } from './support/gateway.ts';
import { closeAllClients, connectClient } from './harness/client.ts';
import { testLogger } from './harness/log.ts';

const KEY = 'atk_virtual_servers_key_0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };

describe('virtual servers', () => {
  let dir: string;
  let gateway: Gateway;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'attest-virtual-'));
    gateway = await startGateway(
      {
        gateway: { port: 0 },
        log: { backend: 'file', dir: path.join(dir, 'log') },
        auth: { keys: [{ id: 'agent', hash: hashApiKey(KEY), tenant: 't1', denyTools: ['beta__echo'] }] },
        upstreams: { alpha: fixtureStdioUpstream(), beta: fixtureStdioUpstream() },
        policy: { defaultEffect: 'allow', rules: [{ id: 'no-secrets', effect: 'deny', when: "tool == 'echo' && args.text.contains('secret')" }] },
        virtualServers: {
          mixed: { description: 'echo from alpha, arithmetic from beta', tools: ['alpha__echo', 'beta__add', 'beta__echo'], prompts: ['alpha__greet'], resources: ['fixture://static/*'] },
          alphaOnly: { tools: ['alpha__e*'] },
        },
      },
      { port: 0, logger: testLogger() },
    );
  });
  after(async () => {
    await closeAllClients();
    await gateway.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function open(server: string): Promise<{ sessionId: string; post: (id: number, method: string, params: Record<string, unknown>) => Promise<Record<string, unknown>> }> {
    const url = `${gateway.url}/servers/${server}/mcp`;
    const { sessionId, result } = await rawInitialize(url, AUTH);
    const headers = { ...AUTH, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    return {
      sessionId,
      post: async (id, method, params) => {
        const response = await rawPost(url, { jsonrpc: '2.0', id, method, params }, headers);
        const message = response.messages.find((m) => m['id'] === id);
        assert.ok(message !== undefined, `no answer to ${method}: HTTP ${response.status} ${response.text}`);
        return message;
      },
    };
  }

  const names = (result: unknown, key: string): string[] => ((result as Record<string, { name?: string; uri?: string }[]>)[key] ?? []).map((x) => (key === 'resources' ? x.uri : x.name) ?? '').sort();

  it('lists and calls only its bundle; outside it is an unknown tool; key lists and policy apply on top', { timeout: 60_000 }, async () => {
    const { sessionId, post } = await open('mixed');
    // beta__echo is bundled but the key denies it: the bundle only narrows.
    assert.deepEqual(names((await post(2, 'tools/list', {}))['result'], 'tools'), ['alpha__echo', 'beta__add']);
    assert.deepEqual(names((await post(3, 'prompts/list', {}))['result'], 'prompts'), ['alpha__greet']);
    const resources = names((await post(4, 'resources/list', {}))['result'], 'resources');
    assert.ok(resources.length > 0 && resources.every((uri) => uri.startsWith('fixture://static/')), resources.join(', '));

    const echoed = (await post(5, 'tools/call', { name: 'alpha__echo', arguments: { text: 'in the bundle' } }))['result'] as { content: unknown[] };
    assert.deepEqual(echoed.content, [{ type: 'text', text: 'in the bundle' }]);
    const added = (await post(6, 'tools/call', { name: 'beta__add', arguments: { a: 2, b: 3 } }))['result'] as { content: { text: string }[] };
    assert.match(added.content[0]?.text ?? '', /5/);

    const outside = (await post(7, 'tools/call', { name: 'alpha__add', arguments: { a: 1, b: 1 } }))['error'] as { code: number; message: string; data: Record<string, unknown> };
    assert.equal(outside.code, -32602);
    assert.equal(outside.data['errorCode'], 'ATTEST_UNKNOWN_TOOL');
    assert.match(outside.message, /not in virtual server "mixed"/);
    const keyDenied = (await post(8, 'tools/call', { name: 'beta__echo', arguments: { text: 'x' } }))['error'] as { code: number; data: Record<string, unknown> };
    assert.equal(keyDenied.code, -32010, 'the key denies beta__echo inside the bundle too');
    const policyDenied = (await post(9, 'tools/call', { name: 'alpha__echo', arguments: { text: 'a secret' } }))['error'] as { code: number; data: Record<string, unknown> };
    assert.equal(policyDenied.code, -32010);
    assert.equal(policyDenied.data['ruleId'], 'no-secrets');
    const promptOutside = (await post(10, 'prompts/get', { name: 'beta__greet', arguments: { name: 'Ada' } }))['error'] as { code: number };
    assert.equal(promptOutside.code, -32602);
    const resourceOutside = (await post(11, 'resources/read', { uri: 'fixture://items/1' }))['error'] as { code: number; data: Record<string, unknown> };
    assert.equal(resourceOutside.data['errorCode'], 'ATTEST_UNKNOWN_RESOURCE');

    const events: AttestEvent[] = [];
    for await (const { event } of gateway.log.read()) if (event.stream === `session-${sessionId}`) events.push(event);
    const opened = events.find((e) => e.type === 'SessionOpened');
    assert.ok(opened?.type === 'SessionOpened');
    assert.equal(opened.data.endpoint, '/servers/mixed/mcp');
    assert.equal(opened.data.virtualServer, 'mixed');
    assert.deepEqual([...opened.data.upstreams].sort(), ['alpha', 'beta']);
    assert.equal(opened.data.instance, gateway.config.gateway.instance, 'the session names the instance that owns its stream');
    const initialized = events.find((e) => e.type === 'SessionInitialized');
    assert.ok(initialized?.type === 'SessionInitialized', 'an answered initialize is recorded with what the agent said about itself');
    assert.equal(typeof initialized.data.protocolVersion, 'string');
    assert.ok(initialized.data.clientInfo !== null && typeof initialized.data.clientInfo === 'object');
    const refusal = events.find((e) => e.type === 'DecisionMade' && e.data.ruleId === 'virtual-server');
    assert.ok(refusal?.type === 'DecisionMade' && refusal.data.decision === 'deny', 'the refusal outside the bundle is a recorded decision');
  });

  it('connects only the upstreams its patterns reach, and serves the legacy SSE path', { timeout: 60_000 }, async () => {
    const { sessionId, post } = await open('alphaOnly');
    assert.deepEqual(names((await post(2, 'tools/list', {}))['result'], 'tools'), ['alpha__echo', 'alpha__elicit', 'alpha__embedded']);
    assert.equal(((await post(3, 'tools/call', { name: 'beta__add', arguments: { a: 1, b: 1 } }))['error'] as { code: number }).code, -32602);
    for await (const { event } of gateway.log.read()) {
      if (event.stream === `session-${sessionId}` && event.type === 'SessionOpened') assert.deepEqual(event.data.upstreams, ['alpha']);
    }

    const sse = await connectClient({ transport: 'sse', url: `${gateway.url}/servers/mixed/sse`, headers: AUTH });
    const tools = await sse.client.listTools();
    assert.deepEqual(tools.tools.map((t) => t.name).sort(), ['alpha__echo', 'beta__add']);
    const refused = await sse.client.callTool({ name: 'alpha__add', arguments: { a: 1, b: 1 } }).then(
      () => undefined,
      (error: unknown) => error as { code?: number },
    );
    assert.equal(refused?.code, -32602, 'outside the bundle on the legacy transport too');
    await sse.close();
  });

  it('an unknown server name names the upstreams and virtual servers', async () => {
    const response = await rawPost(`${gateway.url}/servers/nope/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } } }, AUTH);
    assert.equal(response.status, 404);
    assert.match(errorOf(response).message, /alpha, beta, mixed, alphaOnly/);
  });
});
