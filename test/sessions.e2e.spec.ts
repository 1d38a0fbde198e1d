/**
 * Sessions are bounded (issue 15): per credential, per tenant and in all (`gateway.sessionLimits`),
 * each refusal a precise error recorded as RequestRejected; and a refused `initialize` leaves no
 * session behind, whether the transport refused it (a batch) or the gateway answered it with an
 * error. Real gateway over real sockets, the fixture MCP server over stdio.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { hashApiKey } from '#gateway';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

const KEYS = { a: 'atk_sessions_key_a_0123456789', b: 'atk_sessions_key_b_0123456789', c: 'atk_sessions_key_c_0123456789' } as const;
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
const initialize = (id: number): Record<string, unknown> => ({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'sessions-test', version: '0' } } });

async function openSessions(t: TestGateway): Promise<number> {
  const health = (await (await fetch(`${t.url}/healthz`)).json()) as { sessions: number };
  return health.sessions;
}

/** The session count once the closes in flight are done (bounded: 5 s). */
async function settledSessions(t: TestGateway, expected: number): Promise<number> {
  let count = await openSessions(t);
  for (let i = 0; i < 100 && count !== expected; i++) {
    await sleep(50);
    count = await openSessions(t);
  }
  return count;
}

describe('session limits: per key, per tenant, in total', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({
      upstreams: { fixture: fixtureStdioUpstream({ probeAtStart: false }) },
      gateway: { sessionLimits: { perKey: 2, perTenant: 3, total: 4 } },
      keys: [
        { id: 'a', hash: hashApiKey(KEYS.a), tenant: 't1' },
        { id: 'b', hash: hashApiKey(KEYS.b), tenant: 't1' },
        { id: 'c', hash: hashApiKey(KEYS.c), tenant: 't2' },
      ],
    });
  });
  after(async () => {
    await t?.close();
  });

  it('refuses the session beyond each limit with -32043 naming the limit, records each refusal, and frees a slot when a session closes', { timeout: 60_000 }, async () => {
    const url = `${t.url}/mcp`;
    const a1 = await rawInitialize(url, bearer(KEYS.a));
    await rawInitialize(url, bearer(KEYS.a));
    const refusedKey = await rawPost(url, initialize(7), bearer(KEYS.a));
    assert.equal(refusedKey.status, 429);
    assert.equal(refusedKey.headers.get('mcp-session-id'), null, 'no session id for a refused initialize');
    const keyError = errorOf(refusedKey, 7);
    assert.equal(keyError.code, -32043);
    assert.deepEqual(keyError.data, { errorCode: 'ATTEST_SESSION_LIMIT', limit: 'perKey', max: 2 });
    assert.match(keyError.message, /Too many open sessions for this credential: 2 of 2 \(gateway\.sessionLimits\.perKey\)/);

    await rawInitialize(url, bearer(KEYS.b));
    const refusedTenant = await rawPost(url, initialize(8), bearer(KEYS.b));
    assert.equal(refusedTenant.status, 429);
    assert.deepEqual(errorOf(refusedTenant, 8).data, { errorCode: 'ATTEST_SESSION_LIMIT', limit: 'perTenant', max: 3 });

    await rawInitialize(url, bearer(KEYS.c));
    const refusedTotal = await rawPost(url, initialize(9), bearer(KEYS.c));
    assert.equal(refusedTotal.status, 429);
    assert.deepEqual(errorOf(refusedTotal, 9).data, { errorCode: 'ATTEST_SESSION_LIMIT', limit: 'total', max: 4 });
    assert.equal(await openSessions(t), 4);

    const events = await t.events();
    const rejections = events.filter((e) => e.type === 'RequestRejected' && e.data.errorCode === 'ATTEST_SESSION_LIMIT');
    assert.deepEqual(rejections.map((e) => (e.type === 'RequestRejected' ? [e.actor.id, e.data.httpStatus, e.data.jsonrpcCode] : [])), [['a', 429, -32043], ['b', 429, -32043], ['c', 429, -32043]]);
    assert.equal(events.filter((e) => e.type === 'SessionOpened').length, 4, 'a refused initialize opens no session');

    const closed = await fetch(url, { method: 'DELETE', headers: { ...bearer(KEYS.a), 'mcp-session-id': a1.sessionId } });
    assert.equal(closed.status, 200);
    assert.equal(await settledSessions(t, 3), 3);
    await rawInitialize(url, bearer(KEYS.a));
    assert.equal(await openSessions(t), 4);
  });
});

describe('session limits under a storm of concurrent initialize requests, and on the legacy SSE transport', () => {
  let t: TestGateway;
  before(async () => {
    // A recording budget above the storm, so each of its refusals is one RequestRejected (beyond the default 20 per source they are counted).
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream({ share: true, probeAtStart: false }) }, gateway: { sessionLimits: { perKey: 5, perTenant: 100, total: 100 } }, frontDoor: { refusals: { perSourceBurst: 100 } } });
  });
  after(async () => {
    await t?.close();
  });

  it('30 initialize requests at once with perKey 5: exactly 5 sessions, 25 refusals recorded', { timeout: 60_000 }, async () => {
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => rawPost(`${t.url}/mcp`, initialize(i), t.headers)));
    assert.equal(replies.filter((r) => r.status === 200).length, 5);
    assert.equal(replies.filter((r) => r.status === 429).length, 25);
    assert.equal(await openSessions(t), 5);
    const events = await t.events();
    assert.equal(events.filter((e) => e.type === 'SessionOpened').length, 5);
    assert.equal(events.filter((e) => e.type === 'RequestRejected' && e.data.errorCode === 'ATTEST_SESSION_LIMIT').length, 25);
  });

  it('a legacy SSE stream beyond the limit is refused with 429 before the stream opens', { timeout: 30_000 }, async () => {
    const refused = await fetch(`${t.url}/sse`, { headers: { ...t.headers, accept: 'text/event-stream' }, signal: AbortSignal.timeout(10_000) });
    assert.equal(refused.status, 429);
    const body = (await refused.json()) as { error?: { code?: number; data?: Record<string, unknown> } };
    assert.equal(body.error?.code, -32043);
    assert.equal(body.error?.data?.['limit'], 'perKey');
  });
});

describe('a refused initialize leaves no session behind', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({
      upstreams: {
        fixture: fixtureStdioUpstream({ probeAtStart: false }),
        dead: { transport: 'stdio', command: process.execPath, args: ['-e', 'process.exit(3)'], probeAtStart: false, restart: { maxRestarts: 0 } },
      },
    });
  });
  after(async () => {
    await t?.close();
  });

  it('20 batches of initialize requests, each refused: 0 sessions, none opened in the log', { timeout: 60_000 }, async () => {
    for (let i = 0; i < 20; i++) {
      const refused = await rawPost(`${t.url}/mcp`, [initialize(1), initialize(2)], t.headers);
      assert.equal(refused.status, 400, refused.text);
      assert.equal(errorOf(refused).data?.['errorCode'], 'ATTEST_INVALID_REQUEST');
      assert.equal(refused.headers.get('mcp-session-id'), null);
    }
    assert.equal(await openSessions(t), 0);
    const events = await t.events();
    assert.equal(events.filter((e) => e.type === 'SessionOpened').length, 0);
    assert.equal(events.filter((e) => e.type === 'RequestRejected' && e.data.method === 'initialize').length, 20, 'each refusal is recorded');
  });

  it('an initialize without Accept: text/event-stream is refused (406) before a session exists', { timeout: 30_000 }, async () => {
    const refused = await rawPost(`${t.url}/mcp`, initialize(1), { ...t.headers, accept: 'application/json' });
    assert.equal(refused.status, 406);
    assert.equal(await openSessions(t), 0);
  });

  it('an initialize the gateway answers with an error (its one upstream cannot start): the session is closed, its id unknown', { timeout: 30_000 }, async () => {
    const refused = await rawPost(`${t.url}/servers/dead/mcp`, initialize(3), t.headers);
    assert.equal(refused.status, 200);
    assert.equal(errorOf(refused, 3).code, -32012);
    const sessionId = refused.headers.get('mcp-session-id');
    assert.ok(sessionId !== null, 'the transport had assigned an id before the gateway answered');
    assert.equal(await settledSessions(t, 0), 0);
    const after = await rawPost(`${t.url}/servers/dead/mcp`, { jsonrpc: '2.0', id: 4, method: 'tools/list' }, { ...t.headers, 'mcp-session-id': sessionId });
    assert.equal(after.status, 404);
    const closed = (await t.events()).find((e) => e.type === 'SessionClosed' && e.stream === `session-${sessionId}`);
    assert.equal(closed?.type === 'SessionClosed' ? closed.data.reason : undefined, 'initialize refused');
  });
});
