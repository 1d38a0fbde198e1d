/**
 * What an agent is told when a call goes wrong past the gateway, and what the log keeps of it:
 * "never reached the upstream" (-32012) and "reached it, outcome unknown" (-32015) are different
 * codes, so an agent can tell whether a side effect may have happened; and no error names a path,
 * a URL or a pid (those are the operator's). Real gateway, a raw Streamable HTTP upstream that
 * counts what it received and misbehaves on purpose, and the fixture MCP server over stdio.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';
import { parseJournal } from './fixtures/upstream/journal.ts';
import { answerJson, startRawUpstream } from './support/raw-upstream.ts';
import type { RawUpstream } from './support/raw-upstream.ts';

/** Anything an agent must not learn of the gateway's machine: URLs, addresses, absolute paths, pids. */
const OPERATOR_DETAIL = /[a-z]+:\/\/|127\.0\.0\.1|localhost:\d|\/tmp\/|\/(?:home|var|srv|usr)\/|\bpid\b|last stderr lines/i;

/**
 * Answers initialize and tools/list properly (with an Mcp-Session-Id, so calls take the gateway's
 * native POST path); each tool misbehaves after it received the call: `garbage` answers with bytes
 * that are not JSON, `reset` cuts the connection, `partial` sends half a response, `crash` answers 500.
 */
async function misbehavingUpstream(): Promise<RawUpstream & { readonly received: string[] }> {
  const received: string[] = [];
  const upstream = await startRawUpstream((message, request, response) => {
    if (message.method === 'initialize') return answerJson(response, message.id, { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'misbehaving', version: '1' } });
    if (message.method === 'tools/list') return answerJson(response, message.id, { tools: ['garbage', 'reset', 'partial', 'crash'].map((name) => ({ name, inputSchema: { type: 'object' } })) });
    const tool = String(message.params?.name);
    received.push(tool);
    const json = { 'content-type': 'application/json', 'mcp-session-id': 'raw-1' };
    if (tool === 'garbage') response.writeHead(200, json).end('this is not JSON {');
    else if (tool === 'reset') request.socket.destroy();
    else if (tool === 'partial') {
      response.writeHead(200, { ...json, 'content-length': '400' });
      response.write(`{"jsonrpc":"2.0","id":${message.id},"result":{"content":[{"type":"text","te`);
      setTimeout(() => request.socket.destroy(), 20);
    } else response.writeHead(500, { 'content-type': 'text/plain' }).end('internal error');
  });
  return { ...upstream, received };
}

describe('calls that go wrong past the gateway', () => {
  let upstream: Awaited<ReturnType<typeof misbehavingUpstream>>;
  let t: TestGateway;
  let dir: string;
  let journal: string;
  let call: (id: number, name: string, args?: Record<string, unknown>) => Promise<Awaited<ReturnType<typeof rawPost>>>;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'attest-outcomes-'));
    journal = path.join(dir, 'journal.ndjson');
    upstream = await misbehavingUpstream();
    t = await startTestGateway({
      upstreams: {
        bad: { transport: 'streamable-http', url: upstream.url, pinTools: false, timeoutMs: 5000 },
        fixture: fixtureStdioUpstream({ env: { FIXTURE_JOURNAL: journal }, restart: { initialDelayMs: 50, maxDelayMs: 200, maxRestarts: 3 } }),
      },
    });
    const mcp = `${t.url}/mcp`;
    const { sessionId, result } = await rawInitialize(mcp, t.headers);
    const headers = { ...t.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    call = (id, name, args = {}) => rawPost(mcp, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }, headers);
  });
  after(async () => {
    await t?.close();
    await upstream?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function recordedMessage(id: number): Promise<string> {
    const events = await t.events();
    const request = events.find((e) => e.type === 'RequestReceived' && e.data.jsonrpcId === id);
    const outcome = events.find((e) => e.type === 'ErrorReturned' && e.callId === request?.callId);
    assert.ok(outcome?.type === 'ErrorReturned', `call ${id} has a recorded outcome`);
    return outcome.data.message;
  }

  it('an upstream that received the call and answered garbage, reset the connection, sent half an answer or a 500: -32015, outcome unknown, naming no URL', async () => {
    let id = 101;
    for (const tool of ['garbage', 'reset', 'partial', 'crash']) {
      const error = errorOf(await call(id, `bad__${tool}`), id);
      assert.equal(error.code, -32015, `${tool}: ${error.message}`);
      assert.equal(error.data?.['errorCode'], 'ATTEST_UPSTREAM_OUTCOME_UNKNOWN');
      assert.match(error.message, /may have taken effect/);
      assert.doesNotMatch(error.message, OPERATOR_DETAIL, `${tool}: the agent's error names operator detail`);
      assert.doesNotMatch(await recordedMessage(id), OPERATOR_DETAIL, `${tool}: the recorded outcome names operator detail`);
      assert.ok(upstream.received.includes(tool), `${tool}: the upstream did receive the call`);
      id++;
    }
  });

  it('a stdio upstream killed while it handles the call: -32015, naming no pid', { timeout: 30_000 }, async () => {
    const slow = call(10, 'fixture__slow', { steps: 1, delayMs: 10_000, tag: 'killed' });
    let pid: number | undefined;
    for (let i = 0; i < 100 && pid === undefined; i++) {
      const entries = await readFile(journal, 'utf8').then(parseJournal, () => []);
      pid = entries.find((entry) => entry.tool === 'slow')?.pid;
      if (pid === undefined) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(pid !== undefined, 'the slow call reached the fixture');
    process.kill(pid, 'SIGKILL');
    const error = errorOf(await slow, 10);
    assert.equal(error.code, -32015, error.message);
    assert.doesNotMatch(error.message, OPERATOR_DETAIL);
    assert.doesNotMatch(await recordedMessage(10), OPERATOR_DETAIL);
  });

  it('an upstream that is gone before the call: -32012, it never reached the upstream, naming no URL', async () => {
    const before = upstream.received.length;
    await upstream.close();
    const error = errorOf(await call(20, 'bad__garbage'), 20);
    assert.equal(error.code, -32012, error.message);
    assert.equal(error.data?.['errorCode'], 'ATTEST_UPSTREAM_UNAVAILABLE');
    assert.match(error.message, /did not reach it/);
    assert.doesNotMatch(error.message, OPERATOR_DETAIL);
    assert.doesNotMatch(await recordedMessage(20), OPERATOR_DETAIL);
    assert.equal(upstream.received.length, before, 'nothing reached the upstream');
  });
});
