/**
 * The policy governs prompts and resources as well as tools: `prompts/get`, `resources/read` and
 * `resources/subscribe` are decided by the rules (`method`, `tool` = the prompt name or the URI),
 * and `prompts/list`, `resources/list` and `resources/templates/list` show an agent only what it
 * may get or read — on the aggregate endpoint and on `/servers/<name>/mcp`. Each refusal is a
 * recorded deny decision naming the rule.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashApiKey } from '#gateway';
import { BLOB_URI, GREET_PROMPT, HELLO_URI, HELLO_TEXT } from './fixtures/upstream/catalog.ts';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

const OPS_KEY = 'atk_reads_ops_key_0123456789';
const DEV_KEY = 'atk_reads_dev_key_0123456789';

const POLICY = {
  defaultEffect: 'deny',
  rules: [
    { id: 'tools', effect: 'allow', when: "method == 'tools/call'" },
    { id: 'greet-for-ops', effect: 'allow', when: "method == 'prompts/get' && tool == 'greet' && 'ops' in principal.roles" },
    { id: 'hello-for-all', effect: 'allow', when: `method == 'resources/read' && tool == '${HELLO_URI}'` },
  ],
};

describe('policy over prompts and resources', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({
      upstreams: { fixture: fixtureStdioUpstream() },
      keys: [
        { id: 'ops', hash: hashApiKey(OPS_KEY), tenant: 't1', roles: ['ops'] },
        { id: 'dev', hash: hashApiKey(DEV_KEY), tenant: 't1', roles: ['dev'] },
      ],
      policy: POLICY,
    });
  });
  after(() => t.close());

  async function session(key: string, endpoint = '/mcp'): Promise<(id: number, method: string, params: Record<string, unknown>) => Promise<Awaited<ReturnType<typeof rawPost>>>> {
    const url = `${t.url}${endpoint}`;
    const auth = { authorization: `Bearer ${key}` };
    const { sessionId, result } = await rawInitialize(url, auth);
    const headers = { ...auth, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    return (id, method, params) => rawPost(url, { jsonrpc: '2.0', id, method, params }, headers);
  }

  function listed(response: Awaited<ReturnType<typeof rawPost>>, key: string, field: string): string[] {
    const result = response.messages[0]?.['result'] as Record<string, { [k: string]: unknown }[]> | undefined;
    assert.ok(result !== undefined, JSON.stringify(response.messages[0]));
    return (result[key] ?? []).map((item) => String(item[field]));
  }

  it('lists and serves only the prompts and resources the rules allow, on /mcp', { timeout: 60_000 }, async () => {
    const dev = await session(DEV_KEY);
    assert.deepEqual(listed(await dev(1, 'prompts/list', {}), 'prompts', 'name'), [], 'dev may get no prompt');
    const denied = errorOf(await dev(2, 'prompts/get', { name: `fixture__${GREET_PROMPT}`, arguments: { name: 'Alice' } }));
    assert.equal(denied.code, -32010);
    assert.equal(denied.data?.['errorCode'], 'ATTEST_DENIED');
    assert.equal(denied.data?.['ruleId'], 'default');

    assert.deepEqual(listed(await dev(3, 'resources/list', {}), 'resources', 'uri'), [HELLO_URI], 'only the hello resource may be read');
    assert.deepEqual(listed(await dev(4, 'resources/templates/list', {}), 'resourceTemplates', 'uriTemplate'), [], 'no template may be read');
    const hello = (await dev(5, 'resources/read', { uri: HELLO_URI })).messages[0]?.['result'] as { contents: { text: string }[] } | undefined;
    assert.equal(hello?.contents[0]?.text, HELLO_TEXT);
    const blob = errorOf(await dev(6, 'resources/read', { uri: BLOB_URI }));
    assert.equal(blob.data?.['errorCode'], 'ATTEST_DENIED');
    const subscribe = errorOf(await dev(7, 'resources/subscribe', { uri: BLOB_URI }));
    assert.equal(subscribe.data?.['errorCode'], 'ATTEST_DENIED');

    const ops = await session(OPS_KEY);
    assert.deepEqual(listed(await ops(1, 'prompts/list', {}), 'prompts', 'name'), [`fixture__${GREET_PROMPT}`]);
    const greeting = (await ops(2, 'prompts/get', { name: `fixture__${GREET_PROMPT}`, arguments: { name: 'Alice' } })).messages[0]?.['result'] as { messages?: unknown[] } | undefined;
    assert.ok((greeting?.messages?.length ?? 0) > 0, 'ops may get the greet prompt');

    const events = await t.events();
    const denials = events.filter((e) => e.type === 'DecisionMade' && e.data.decision === 'deny' && e.data.stage === 'policy');
    assert.ok(denials.filter((e) => e.type === 'DecisionMade' && e.data.ruleId === 'default').length >= 3, 'the prompt, the read and the subscribe refused: each a recorded deny decision by the default rule');
    assert.ok(events.some((e) => e.type === 'RequestReceived' && e.data.method === 'resources/read' && e.data.target === BLOB_URI), 'the refused read is recorded');
  });

  it('applies the same rules on the single-upstream endpoint', { timeout: 60_000 }, async () => {
    const dev = await session(DEV_KEY, '/servers/fixture/mcp');
    assert.deepEqual(listed(await dev(1, 'prompts/list', {}), 'prompts', 'name'), []);
    assert.equal(errorOf(await dev(2, 'prompts/get', { name: GREET_PROMPT, arguments: { name: 'Bob' } })).data?.['errorCode'], 'ATTEST_DENIED');
    assert.deepEqual(listed(await dev(3, 'resources/list', {}), 'resources', 'uri'), [HELLO_URI]);
    assert.equal(errorOf(await dev(4, 'resources/read', { uri: BLOB_URI })).data?.['errorCode'], 'ATTEST_DENIED');
    const ops = await session(OPS_KEY, '/servers/fixture/mcp');
    assert.deepEqual(listed(await ops(1, 'prompts/list', {}), 'prompts', 'name'), [GREET_PROMPT]);
  });
});
