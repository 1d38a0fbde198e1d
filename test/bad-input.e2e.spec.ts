/**
 * Bad input gets a precise error, the gateway keeps serving, and every refusal is an event.
 * Real gateway, real fixture MCP server over stdio, raw HTTP for what no SDK client would send.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { hashApiKey, serveStdio } from '#gateway';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { parseJournal } from './fixtures/upstream/journal.ts';
import os from 'node:os';
import path from 'node:path';
import { openFileLog } from '#eventlog';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import { stdioAgent } from './support/stdio-agent.ts';
import { startRawUpstream } from './support/raw-upstream.ts';
import type { RawUpstream } from './support/raw-upstream.ts';
import { testLogger } from './harness/log.ts';
import type { TestGateway } from './support/gateway.ts';

describe('bad input through the gateway', () => {
  let t: TestGateway;
  let mcp: string;
  let session: { sessionId: string; headers: Record<string, string> };
  const expiredKey = 'atk_expired_key_0123456789';

  before(async () => {
    t = await startTestGateway({
      upstreams: { fixture: fixtureStdioUpstream() },
      gateway: { maxBodyBytes: 64 * 1024 },
      keys: [
        { id: 'test', hash: hashApiKey('atk_test_key_0123456789'), tenant: 't1', denyTools: ['fixture__fail'] },
        { id: 'old', hash: hashApiKey(expiredKey), tenant: 't1', expiresAt: '2020-01-01T00:00:00Z' },
      ],
    });
    mcp = `${t.url}/mcp`;
    const opened = await rawInitialize(mcp, t.headers);
    session = { sessionId: opened.sessionId, headers: { ...t.headers, 'mcp-session-id': opened.sessionId, 'mcp-protocol-version': String(opened.result['protocolVersion']) } };
  });
  after(async () => t?.close());

  async function rejections(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const e of await t.events()) if (e.type === 'RequestRejected') counts.set(e.data.errorCode, (counts.get(e.data.errorCode) ?? 0) + 1);
    return counts;
  }

  it('no key → 401 with WWW-Authenticate, recorded', async () => {
    const before = (await rejections()).get('ATTEST_UNAUTHENTICATED') ?? 0;
    const r = await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer realm="attest"/);
    assert.equal(errorOf(r).data?.['errorCode'], 'ATTEST_UNAUTHENTICATED');
    assert.equal((await rejections()).get('ATTEST_UNAUTHENTICATED'), before + 1);
  });

  it('a wrong key → 401; an expired key → 401 naming the expiry', async () => {
    const wrong = await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'ping' }, { authorization: 'Bearer atk_nope' });
    assert.equal(wrong.status, 401);
    assert.match(errorOf(wrong).message, /Invalid API key/);
    const expired = await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'ping' }, { authorization: `Bearer ${expiredKey}` });
    assert.equal(expired.status, 401);
    assert.equal(errorOf(expired).data?.['errorCode'], 'ATTEST_KEY_EXPIRED');
    assert.match(errorOf(expired).message, /expired at 2020-01-01/);
  });

  it('malformed JSON → 400 parse error (-32700), recorded', async () => {
    const r = await rawPost(mcp, '{"jsonrpc": "2.0", "id": 1, "method": ', t.headers);
    assert.equal(r.status, 400);
    assert.equal(errorOf(r).code, -32700);
    assert.ok(((await rejections()).get('ATTEST_PARSE_ERROR') ?? 0) >= 1);
  });

  it('invalid JSON-RPC → 400 -32600 naming the field', async () => {
    const wrongVersion = await rawPost(mcp, { jsonrpc: '1.0', id: 7, method: 'ping' }, session.headers);
    assert.equal(wrongVersion.status, 400);
    assert.equal(errorOf(wrongVersion).code, -32600);
    assert.match(errorOf(wrongVersion).message, /"jsonrpc" must be the string "2.0"/);
    assert.equal(wrongVersion.messages[0]?.['id'], 7);
    const positional = await rawPost(mcp, { jsonrpc: '2.0', id: 8, method: 'tools/call', params: ['echo'] }, session.headers);
    assert.match(errorOf(positional).message, /"params" must be an object/);
    const emptyBatch = await rawPost(mcp, [], session.headers);
    assert.match(errorOf(emptyBatch).message, /empty batch/);
  });

  it('a message canonical JSON has no form for (nested deeper than 512 levels, 1e400, a lone surrogate) → 400 -32600, recorded, and the gateway keeps serving', async () => {
    const before = (await t.events()).filter((e) => e.type === 'RequestRejected' && /it cannot be recorded/.test(e.data.message)).length;
    for (const depth of [600, 20_000]) {
      const body = `{"jsonrpc":"2.0","id":${depth},"method":"tools/call","params":{"name":"fixture__echo","arguments":{"text":"x"},"_meta":{"deep":${'['.repeat(depth)}${']'.repeat(depth)}}}}`;
      const r = await rawPost(mcp, body, session.headers);
      assert.equal(r.status, 400, r.text.slice(0, 300));
      const error = errorOf(r, depth);
      assert.equal(error.code, -32600);
      assert.match(error.message, /the tools\/call message nests objects or arrays deeper than 512 levels; it cannot be recorded, so it is not relayed/);
    }
    const refused = (await t.events()).filter((e) => e.type === 'RequestRejected' && /deeper than 512 levels/.test(e.data.message));
    assert.equal(refused.length, before + 2, 'both refusals are events');
    // The other values canonical JSON has no form for: a number that parses as Infinity, a lone surrogate.
    const infinite = await rawPost(mcp, '{"jsonrpc":"2.0","id":700,"method":"tools/call","params":{"name":"fixture__echo","arguments":{"text":"x"},"_meta":{"n":1e400}}}', session.headers);
    assert.match(errorOf(infinite, 700).message, /the tools\/call message holds a number beyond the range of a double \(it parses as Infinity\); it cannot be recorded/);
    const surrogate = await rawPost(mcp, '{"jsonrpc":"2.0","id":701,"method":"tools/call","params":{"name":"fixture__echo","arguments":{"text":"x\\ud800"}}}', session.headers);
    assert.match(errorOf(surrogate, 701).message, /the tools\/call message holds a string or key with a lone UTF-16 surrogate/);
    assert.equal((await t.events()).filter((e) => e.type === 'RequestRejected' && /it cannot be recorded/.test(e.data.message)).length, before + 4, 'each refusal is an event');
    const fine = await rawPost(mcp, { jsonrpc: '2.0', id: 601, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'still serving' }, _meta: { deep: JSON.parse(`${'['.repeat(400)}${']'.repeat(400)}`) as unknown } } }, session.headers);
    assert.match(fine.text, /still serving/, 'a message at 400 levels is relayed and recorded');
  });

  it('an oversized body → 413, and the gateway keeps serving', async () => {
    const big = { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'x'.repeat(100 * 1024) } } };
    const r = await rawPost(mcp, big, session.headers);
    assert.equal(r.status, 413);
    assert.equal(errorOf(r).data?.['errorCode'], 'ATTEST_BODY_TOO_LARGE');
    assert.match(errorOf(r).message, /65536 bytes/);
    const ping = await rawPost(mcp, { jsonrpc: '2.0', id: 10, method: 'ping' }, session.headers);
    assert.equal(ping.status, 200);
    assert.deepEqual(ping.messages[0]?.['result'], {});
  });

  it('a foreign Content-Type → 400 naming the expected type', async () => {
    const response = await fetch(mcp, { method: 'POST', headers: { ...session.headers, 'content-type': 'text/plain', accept: 'application/json, text/event-stream' }, body: 'ping' });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { message: string } };
    assert.match(body.error.message, /Content-Type application\/json/);
  });

  it('an unknown session → 404; no session on a non-initialize request → 400', async () => {
    const unknown = await rawPost(mcp, { jsonrpc: '2.0', id: 11, method: 'ping' }, { ...t.headers, 'mcp-session-id': 'no-such-session' });
    assert.equal(unknown.status, 404);
    assert.equal(errorOf(unknown).data?.['errorCode'], 'ATTEST_UNKNOWN_SESSION');
    const missing = await rawPost(mcp, { jsonrpc: '2.0', id: 12, method: 'tools/list' }, t.headers);
    assert.equal(missing.status, 400);
    assert.equal(errorOf(missing).data?.['errorCode'], 'ATTEST_SESSION_REQUIRED');
  });

  it('a session cannot be used with another key', async () => {
    const other = await rawPost(mcp, { jsonrpc: '2.0', id: 13, method: 'ping' }, { ...session.headers, authorization: `Bearer ${expiredKey}` });
    assert.equal(other.status, 401);
  });

  it('an unknown method → -32601; an unknown tool → -32602; wrong param types → -32602 naming the field', async () => {
    const method = await rawPost(mcp, { jsonrpc: '2.0', id: 20, method: 'tools/explode', params: {} }, session.headers);
    assert.equal(errorOf(method, 20).code, -32601);
    const tool = await rawPost(mcp, { jsonrpc: '2.0', id: 21, method: 'tools/call', params: { name: 'nosuch__tool', arguments: {} } }, session.headers);
    assert.equal(errorOf(tool, 21).code, -32602);
    assert.equal(errorOf(tool, 21).data?.['errorCode'], 'ATTEST_UNKNOWN_TOOL');
    const types = await rawPost(mcp, { jsonrpc: '2.0', id: 22, method: 'tools/call', params: { name: 42, arguments: 'x' } }, session.headers);
    assert.equal(errorOf(types, 22).code, -32602);
    assert.match(errorOf(types, 22).message, /params\.name/);
  });

  it('a denied tool → -32010 naming the rule; the decision is recorded', async () => {
    const r = await rawPost(mcp, { jsonrpc: '2.0', id: 30, method: 'tools/call', params: { name: 'fixture__fail', arguments: {} } }, session.headers);
    const error = errorOf(r, 30);
    assert.equal(error.code, -32010);
    assert.equal(error.data?.['ruleId'], 'key:test:denyTools[0]');
    const events = await t.events();
    const denial = events.find((e) => e.type === 'DecisionMade' && e.data.decision === 'deny' && e.data.ruleId === 'key:test:denyTools[0]');
    assert.ok(denial, 'the deny decision is an event');
    assert.ok(events.some((e) => e.type === 'ErrorReturned' && e.callId === denial.callId && e.data.errorCode === 'ATTEST_DENIED'));
  });

  it('a foreign Origin → 403, a loopback Origin passes', async () => {
    const evil = await rawPost(mcp, { jsonrpc: '2.0', id: 40, method: 'ping' }, { ...session.headers, origin: 'https://evil.example' });
    assert.equal(evil.status, 403);
    assert.equal(errorOf(evil).data?.['errorCode'], 'ATTEST_ORIGIN_FORBIDDEN');
    const local = await rawPost(mcp, { jsonrpc: '2.0', id: 41, method: 'ping' }, { ...session.headers, origin: 'http://localhost:3000' });
    assert.equal(local.status, 200);
  });

  it('after all of that, a real call still works and carries its receipt', async () => {
    const r = await rawPost(mcp, { jsonrpc: '2.0', id: 50, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'still here' } } }, session.headers);
    const result = r.messages.find((m) => m['id'] === 50)?.['result'] as { content: { text: string }[]; _meta: Record<string, { callId: string; request: { position: { index: number } } }> };
    assert.ok(result, r.text);
    assert.match(JSON.stringify(result.content), /still here/);
    const receipt = result._meta['attest/receipt'];
    assert.ok(receipt !== undefined && typeof receipt.callId === 'string' && Number.isInteger(receipt.request.position.index));
    const events = await t.events();
    const types = events.filter((e) => e.callId === receipt.callId).map((e) => e.type);
    assert.deepEqual(types, ['RequestReceived', 'DecisionMade', 'ResultReturned']);
  });
});

describe('session end', () => {
  it('a DELETE labelled application/json with an empty body closes the session', async () => {
    const t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
    try {
      const mcp = `${t.url}/mcp`;
      const { sessionId, result } = await rawInitialize(mcp, t.headers);
      const headers = { ...t.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
      const deleted = await fetch(mcp, { method: 'DELETE', headers: { ...headers, 'content-type': 'application/json' } });
      assert.equal(deleted.status, 200, await deleted.text());
      const after = await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'ping' }, headers);
      assert.equal(after.status, 404);
      let closed = false;
      for (let i = 0; i < 40 && !closed; i++) {
        closed = (await t.events()).some((e) => e.type === 'SessionClosed' && e.stream === `session-${sessionId}`);
        if (!closed) await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(closed, 'SessionClosed is recorded');
    } finally {
      await t.close();
    }
  });
});

describe('tool arguments against the input schema', () => {
  it('a call whose arguments do not fit the listed inputSchema is refused before it is forwarded, naming the field', async () => {
    const t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
    try {
      const mcp = `${t.url}/mcp`;
      const { sessionId, result } = await rawInitialize(mcp, t.headers);
      const headers = { ...t.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
      const listed = await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }, headers);
      assert.ok(listed.messages[0]?.['result'], listed.text);
      const wrong = errorOf(await rawPost(mcp, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fixture__add', arguments: { a: 'one', b: 2 } } }, headers), 2);
      assert.equal(wrong.code, -32602);
      assert.match(wrong.message, /Invalid arguments for tool "add": .*a.*number/);
      const events = await t.events();
      const decision = events.find((e) => e.type === 'DecisionMade' && e.data.ruleId === 'tool-input-schema');
      assert.ok(decision !== undefined && decision.type === 'DecisionMade' && decision.data.decision === 'deny' && decision.data.route === 'local', 'refused by the gateway, not forwarded');
      const right = await rawPost(mcp, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fixture__add', arguments: { a: 1, b: 2 } } }, headers);
      assert.match(right.text, /"sum":3/);
    } finally {
      await t.close();
    }
  });
});

describe('an agent that never lists the tools', () => {
  // The checks are the gateway's, not the agent's: it lists the upstream's tools itself before the
  // first call of a session that did not (#listBeforeCall), on the aggregate and on a single-upstream endpoint.
  for (const endpoint of ['/mcp', '/servers/fixture/mcp'] as const) {
    it(`an unknown tool and arguments that break the inputSchema are refused, recorded, and never reach the upstream (${endpoint})`, async () => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'attest-unlisted-'));
      const journal = path.join(dir, 'journal.ndjson');
      const t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream({ env: { FIXTURE_JOURNAL: journal } }) } });
      try {
        const url = `${t.url}${endpoint}`;
        const { sessionId, result } = await rawInitialize(url, t.headers);
        const headers = { ...t.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
        const name = (tool: string): string => (endpoint === '/mcp' ? `fixture__${tool}` : tool);
        const call = async (id: number, tool: string, args: unknown): Promise<ReturnType<typeof errorOf>> => errorOf(await rawPost(url, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: name(tool), arguments: args } }, headers), id);

        const unknown = await call(1, 'no_such_tool', {});
        assert.equal(unknown.code, -32602);
        assert.equal(unknown.data?.['errorCode'], 'ATTEST_UNKNOWN_TOOL');
        const invalid = await call(2, 'echo', { text: 123 });
        assert.equal(invalid.code, -32602);
        assert.match(invalid.message, /Invalid arguments for tool "echo": .*text.*string/);
        const right = await rawPost(url, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: name('echo'), arguments: { text: 'listed by the gateway' } } }, headers);
        assert.match(right.text, /listed by the gateway/, 'a valid call still goes through');

        const received = parseJournal(await readFile(journal, 'utf8')).filter((entry) => entry.method === 'tools/call');
        assert.deepEqual(received.map((entry) => entry.arguments), [{ text: 'listed by the gateway' }], 'only the valid call reached the upstream');
        const events = await t.events();
        const decisions = events.filter((e) => e.type === 'DecisionMade' && e.data.decision === 'deny').map((e) => (e.type === 'DecisionMade' ? e.data.ruleId : ''));
        assert.deepEqual(decisions, ['tool-list', 'tool-input-schema'], 'both refusals are recorded decisions');
      } finally {
        await t.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('bad output from an upstream', () => {
  /**
   * A raw Streamable HTTP upstream with JSON responses. Tools: `deep` answers with structuredContent
   * nested `depth` levels, `big` with a text of `bytes` characters. With `sessions`, it hands out an
   * Mcp-Session-Id, so the gateway posts calls natively (http-post.ts); without, through the SDK's
   * transport (fetch).
   */
  async function rawUpstream(sessions: boolean): Promise<RawUpstream> {
    return startRawUpstream((message, _request, response) => {
      let result: unknown;
      const args = message.params?.arguments ?? {};
      if (message.method === 'initialize') result = { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'raw', version: '1' } };
      else if (message.method === 'tools/list') result = { tools: [{ name: 'deep', inputSchema: { type: 'object' } }, { name: 'big', inputSchema: { type: 'object' } }] };
      else if (message.params?.name === 'big') result = { content: [{ type: 'text', text: 'x'.repeat(Number(args['bytes'] ?? 1)) }] };
      else {
        const depth = Number(args['depth'] ?? 1);
        result = { content: [{ type: 'text', text: `depth ${depth}` }], structuredContent: { nested: JSON.parse(`${'['.repeat(depth)}${']'.repeat(depth)}`) as unknown } };
      }
      response.writeHead(200, { 'content-type': 'application/json', ...(sessions && { 'mcp-session-id': 'raw-session-1' }) }).end(JSON.stringify({ jsonrpc: '2.0', id: message.id, result }));
    });
  }

  async function sessionOn(gw: TestGateway): Promise<(id: number, name: string, args: Record<string, unknown>) => Promise<Awaited<ReturnType<typeof rawPost>>>> {
    const url = `${gw.url}/mcp`;
    const { sessionId, result } = await rawInitialize(url, gw.headers);
    const headers = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    return (id, name, args) => rawPost(url, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }, headers);
  }

  it('an upstream answer nested deeper than 512 levels is withheld with -32014, recorded, and the session keeps working', async () => {
    const upstream = await rawUpstream(false);
    const gw = await startTestGateway({ upstreams: { raw: { transport: 'streamable-http', url: upstream.url, pinTools: false } } });
    try {
      const call = await sessionOn(gw);
      const withheld = errorOf(await call(1, 'raw__deep', { depth: 600 }), 1);
      assert.equal(withheld.code, -32014);
      assert.match(withheld.message, /answered tools\/call with a message that nests objects or arrays deeper than 512 levels; it cannot be recorded, so it is withheld/);
      const events = await gw.events();
      const outcome = events.find((e) => e.type === 'ErrorReturned' && e.data.errorCode === 'ATTEST_RESULT_NOT_RECORDED');
      assert.ok(outcome?.type === 'ErrorReturned', 'the withheld answer is recorded as the call\'s outcome');
      assert.equal(outcome.data.withheld?.reason, 'unrecordable', 'recorded as withheld, and why');
      assert.match(withheld.message, /the call took effect upstream/);
      assert.match((await call(2, 'raw__deep', { depth: 100 })).text, /depth 100/, 'the session keeps working');
    } finally {
      await gw.close();
      await upstream.close();
    }
  });

  for (const sessions of [true, false]) {
    it(`an upstream answer over maxResponseBytes is cut off and the call fails naming the limit, recorded (${sessions ? 'native POST path' : 'SDK transport path'})`, async () => {
      const upstream = await rawUpstream(sessions);
      const gw = await startTestGateway({ upstreams: { raw: { transport: 'streamable-http', url: upstream.url, pinTools: false, maxResponseBytes: 64 * 1024 } } });
      try {
        const call = await sessionOn(gw);
        const failed = errorOf(await call(1, 'raw__big', { bytes: 200_000 }), 1);
        // The upstream ran the call and answered: the agent hears that the outcome is unknown, not that nothing happened.
        assert.equal(failed.code, -32015);
        assert.match(failed.message, /the upstream's answer exceeds maxResponseBytes \(65536 bytes\); it was cut off and dropped; the call may have taken effect/);
        const events = await gw.events();
        assert.ok(events.some((e) => e.type === 'ErrorReturned' && e.data.errorCode === 'ATTEST_UPSTREAM_OUTCOME_UNKNOWN' && /maxResponseBytes/.test(e.data.message)), 'the failure is the call\'s recorded outcome');
        assert.match((await call(2, 'raw__big', { bytes: 1000 })).text, /x{1000}/, 'a smaller answer still goes through');
      } finally {
        await gw.close();
        await upstream.close();
      }
    });
  }
});


describe('bad input over stdio', () => {
  it('a message nested deeper than 512 levels → -32600 on stdout, recorded, and the session keeps serving', { timeout: 60_000 }, async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'attest-bad-stdio-'));
    const agent = stdioAgent();
    const key = 'atk_stdio_key_0123456789';
    const gateway = await serveStdio({ log: { backend: 'file', dir: path.join(base, 'log') }, auth: { keys: [{ id: 'stdio', hash: hashApiKey(key), tenant: 't1' }] }, upstreams: { fixture: fixtureStdioUpstream() } }, { stdin: agent.stdin, stdout: agent.stdout, env: { ATTEST_API_KEY: key }, logger: testLogger() });
    try {
      await agent.initialize();
      agent.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"fixture__echo","arguments":{"text":"x"},"_meta":{"deep":${'['.repeat(5000)}${']'.repeat(5000)}}}}`);
      const error = (await agent.answer(2))['error'] as { code: number; message: string } | undefined;
      assert.equal(error?.code, -32600);
      assert.match(error.message, /the tools\/call message nests objects or arrays deeper than 512 levels/);
      agent.send({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'still serving' } } });
      assert.match(JSON.stringify(await agent.answer(3)), /still serving/);
    } finally {
      await gateway.close('test done');
    }
    try {
      const log = await openFileLog({ dir: path.join(base, 'log') });
      const refused: string[] = [];
      for await (const { event } of log.read()) if (event.type === 'RequestRejected' && event.data.path === 'stdio') refused.push(event.data.message);
      await log.close();
      assert.equal(refused.length, 1);
      assert.match(refused[0] ?? '', /deeper than 512 levels/);
    } finally {
      await rm(base, { recursive: true, force: true });
    }
  });
});
