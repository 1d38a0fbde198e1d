/**
 * The HTTP front door under a client that wants to hurt it (issue 15): refusals recorded within a
 * per-source budget and counted beyond it, attacker-sized strings capped with a digest, parser
 * errors and unknown routes recorded, slow and half-open connections cut, one credential per
 * request, and SDK-level refusals carrying their errorCode. Real gateway, real sockets.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { AttestEvent, EventOfType } from '#schemas';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { openRaw, portOf, rawExchange } from './support/raw-http.ts';
import { parseExposition, sampleValue } from './support/prometheus.ts';
import { hashApiKey } from '#gateway';
import type { RawConnection } from './support/raw-http.ts';

type Rejected = EventOfType<'RequestRejected'>;
type Counted = EventOfType<'RequestsRejectedCounted'>;

const rejectedOf = (events: readonly AttestEvent[], code?: string): Rejected[] => events.filter((e): e is Rejected => e.type === 'RequestRejected' && (code === undefined || e.data.errorCode === code));
const countedOf = (events: readonly AttestEvent[]): Counted[] => events.filter((e): e is Counted => e.type === 'RequestsRejectedCounted');

/** Polls the log until `done` holds (bounded). */
async function eventually(t: TestGateway, done: (events: AttestEvent[]) => boolean, timeoutMs = 5_000): Promise<AttestEvent[]> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const events = await t.events();
    if (done(events) || Date.now() > until) return events;
    await delay(50);
  }
}

/** A request with the given raw header lines (Node's client sends an array value as repeated headers). */
function requestWith(url: string, headers: Record<string, string | string[]>, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body), ...headers }, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const PING = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
const SCRAPER_KEY = 'atk_front_door_scraper_0123456789';

describe('front door: recording refusals is bounded', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({
      upstreams: { fixture: fixtureStdioUpstream() },
      keys: [{ id: 'scraper', hash: hashApiKey(SCRAPER_KEY), tenant: 'ops', roles: ['attest:metrics'] }],
      frontDoor: { refusals: { perSourceBurst: 5, perSourcePerSecond: 0.01, summaryIntervalMs: 300, overBudgetDelayMs: 0 } },
    });
  });
  after(async () => t?.close());

  it('beyond the per-source budget refusals are counted into RequestsRejectedCounted, every one accounted for', async () => {
    const before = await t.events();
    const n = 60;
    for (let i = 0; i < n; i++) {
      const r = await rawPost(`${t.url}/mcp`, { jsonrpc: '2.0', id: i, method: 'ping' });
      assert.equal(r.status, 401, 'each request is still refused with its precise error');
      assert.equal(errorOf(r).data?.['errorCode'], 'ATTEST_UNAUTHENTICATED');
    }
    const counted = (events: AttestEvent[]): number => countedOf(events.slice(before.length)).reduce((sum, e) => sum + e.data.total, 0);
    const recorded = (events: AttestEvent[]): number => rejectedOf(events.slice(before.length), 'ATTEST_UNAUTHENTICATED').length;
    const events = await eventually(t, (all) => recorded(all) + counted(all) >= n);
    assert.equal(recorded(events), 5, 'the burst is recorded one by one');
    assert.equal(counted(events), n - 5, 'the rest is counted');
    const rows = countedOf(events.slice(before.length)).flatMap((e) => e.data.counts);
    assert.ok(rows.every((row) => row.remoteAddress === '127.0.0.1' && row.errorCode === 'ATTEST_UNAUTHENTICATED' && row.httpStatus === 401), JSON.stringify(rows));
    const scrape = await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${SCRAPER_KEY}` } });
    const samples = parseExposition(await scrape.text());
    assert.equal(sampleValue(samples, 'attest_refusals_total', { error_code: 'ATTEST_UNAUTHENTICATED' }), n, 'the metrics count every refusal');
    assert.equal(sampleValue(samples, 'attest_refusals_counted_total', { error_code: 'ATTEST_UNAUTHENTICATED' }), n - 5);
  });

  it('a refusal beyond the budget is answered after overBudgetDelayMs (a tarpit), one within it at once', async () => {
    const slow = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, frontDoor: { refusals: { perSourceBurst: 1, perSourcePerSecond: 0.01, overBudgetDelayMs: 400 } } });
    try {
      const timed = async (): Promise<number> => {
        const started = performance.now();
        const r = await rawPost(`${slow.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'ping' });
        assert.equal(r.status, 401);
        return performance.now() - started;
      };
      const within = await timed();
      const beyond = await timed();
      assert.ok(within < 300, `within the budget: answered in ${within.toFixed(0)} ms`);
      assert.ok(beyond >= 390, `beyond the budget: answered in ${beyond.toFixed(0)} ms (overBudgetDelayMs 400)`);
    } finally {
      await slow.close();
    }
  });

  it('a 15 KB Host and a 1 KB User-Agent are recorded cut to their documented length, with the digest of the original', async () => {
    // Node's parser takes 16 KiB of headers: the largest Host a client can send.
    const host = `h${'x'.repeat(15_000)}`;
    const agent = `ua-${'y'.repeat(1_000)}`;
    // A gateway of its own: the budget of 127.0.0.1 on the one above is spent.
    const fresh = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
    try {
      const exchange = await rawExchange(portOf(fresh.url), [`POST /mcp HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: ${agent}\r\nContent-Type: application/json\r\nContent-Length: ${PING.length}\r\nConnection: close\r\n\r\n${PING}`], 5_000);
      assert.equal(exchange.status, 403, exchange.response.slice(0, 300));
      const events = await eventually(fresh, (all) => rejectedOf(all, 'ATTEST_ORIGIN_FORBIDDEN').length > 0);
      const [refusal] = rejectedOf(events, 'ATTEST_ORIGIN_FORBIDDEN');
      assert.ok(refusal !== undefined);
      assert.ok(refusal.data.message.length <= 512 && refusal.data.host?.length === 256 && refusal.data.userAgent?.length === 256, JSON.stringify(refusal.data).slice(0, 500));
      assert.deepEqual(refusal.data.truncated?.['host'], { length: host.length, digest: `sha256:${createHash('sha256').update(host).digest('hex')}` });
      assert.deepEqual(refusal.data.truncated?.['userAgent'], { length: agent.length, digest: `sha256:${createHash('sha256').update(agent).digest('hex')}` });
      assert.equal(refusal.data.truncated?.['message']?.length, `Host "${host}" not allowed (DNS-rebinding protection; see gateway.allowedHosts)`.length);
      const bytes = Buffer.byteLength(JSON.stringify(refusal));
      assert.ok(bytes < 2_500, `one refusal with 16 KB of headers costs ${bytes} bytes of log`);
    } finally {
      await fresh.close();
    }
  });
});

describe('front door: every refusal over HTTP is recorded', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
  });
  after(async () => t?.close());

  it('bytes the Node parser refuses → 400 with a JSON-RPC error, recorded', async () => {
    const exchange = await rawExchange(portOf(t.url), ['GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nthis is not a header\r\n\r\n'], 5_000);
    assert.equal(exchange.status, 400, exchange.response);
    assert.match(exchange.response, /"errorCode":"ATTEST_INVALID_REQUEST"/);
    const events = await eventually(t, (all) => rejectedOf(all).some((e) => /could not be parsed/.test(e.data.message)));
    const refusal = rejectedOf(events, 'ATTEST_INVALID_REQUEST').find((e) => /could not be parsed/.test(e.data.message));
    assert.ok(refusal !== undefined, 'the parser error is an event');
    assert.equal(refusal.data.httpStatus, 400);
    assert.equal(refusal.data.remoteAddress, '127.0.0.1');
  });

  it('headers over the parser limit → 431, recorded', async () => {
    const exchange = await rawExchange(portOf(t.url), [`GET /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'z'.repeat(20_000)}\r\n\r\n`], 5_000);
    assert.equal(exchange.status, 431, exchange.response.slice(0, 300));
    const events = await eventually(t, (all) => rejectedOf(all, 'ATTEST_HEADERS_TOO_LARGE').length > 0);
    assert.equal(rejectedOf(events, 'ATTEST_HEADERS_TOO_LARGE')[0]?.data.httpStatus, 431);
  });

  it('an unknown route → 404 ATTEST_NOT_FOUND with a valid key, 401 without; both recorded', async () => {
    const known = await fetch(`${t.url}/no/such/route`, { headers: t.headers });
    assert.equal(known.status, 404);
    assert.match(await known.text(), /"errorCode":"ATTEST_NOT_FOUND"/);
    const stranger = await fetch(`${t.url}/no/such/route`);
    assert.equal(stranger.status, 401);
    const events = await eventually(t, (all) => rejectedOf(all).filter((e) => e.data.path === '/no/such/route').length >= 2);
    const codes = rejectedOf(events).filter((e) => e.data.path === '/no/such/route').map((e) => e.data.errorCode);
    assert.deepEqual(codes.sort(), ['ATTEST_NOT_FOUND', 'ATTEST_UNAUTHENTICATED']);
    const byKey = rejectedOf(events, 'ATTEST_NOT_FOUND').find((e) => e.data.path === '/no/such/route');
    assert.equal(byKey?.actor.id, 'test', 'recorded with the principal that asked');
  });
});

describe('front door: one credential per request', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
  });
  after(async () => t?.close());

  it('two Authorization headers (valid, then wrong) → 400 ATTEST_CREDENTIALS_AMBIGUOUS, recorded', async () => {
    const r = await requestWith(`${t.url}/mcp`, { authorization: [`Bearer ${t.key}`, 'Bearer atk_wrong'] }, PING);
    assert.equal(r.status, 400, r.body);
    const error = (JSON.parse(r.body) as { error: { code: number; message: string; data: { errorCode: string } } }).error;
    assert.equal(error.data.errorCode, 'ATTEST_CREDENTIALS_AMBIGUOUS');
    assert.equal(error.code, -32050);
    assert.match(error.message, /2 Authorization headers/);
    const events = await eventually(t, (all) => rejectedOf(all, 'ATTEST_CREDENTIALS_AMBIGUOUS').length > 0);
    assert.equal(rejectedOf(events, 'ATTEST_CREDENTIALS_AMBIGUOUS').length, 1);
  });

  it('a key in the query beside the header → 400 ATTEST_CREDENTIALS_AMBIGUOUS; in the query alone → 401', async () => {
    const both = await rawPost(`${t.url}/mcp?access_token=${t.key}`, { jsonrpc: '2.0', id: 1, method: 'ping' }, t.headers);
    assert.equal(both.status, 400);
    assert.equal(errorOf(both).data?.['errorCode'], 'ATTEST_CREDENTIALS_AMBIGUOUS');
    const alone = await rawPost(`${t.url}/mcp?api_key=${t.key}`, { jsonrpc: '2.0', id: 1, method: 'ping' });
    assert.equal(alone.status, 401);
    assert.match(errorOf(alone).message, /Credentials in the URL \(query parameter "api_key"\) are not accepted/);
    const events = await eventually(t, (all) => rejectedOf(all, 'ATTEST_CREDENTIALS_AMBIGUOUS').length >= 2);
    assert.equal(rejectedOf(events, 'ATTEST_CREDENTIALS_AMBIGUOUS').length, 2);
    const recorded = JSON.stringify(rejectedOf(events));
    assert.ok(!recorded.includes(t.key), 'the key in the URL is not recorded');
  });

  it('a single valid header still works; a 1 KB User-Agent is recorded in SessionOpened cut to 256 with its digest', async () => {
    const agent = `agent/${'a'.repeat(1_000)}`;
    const r = await requestWith(`${t.url}/mcp`, { authorization: `Bearer ${t.key}`, 'user-agent': agent }, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'one', version: '1' } } }));
    assert.equal(r.status, 200, r.body);
    const events = await eventually(t, (all) => all.some((e) => e.type === 'SessionOpened'));
    const opened = events.find((e): e is EventOfType<'SessionOpened'> => e.type === 'SessionOpened');
    assert.equal(opened?.data.userAgent, agent.slice(0, 256));
    assert.deepEqual(opened?.data.truncated?.['userAgent'], { length: agent.length, digest: `sha256:${createHash('sha256').update(agent).digest('hex')}` });
  });
});

describe('front door: refusals the SDK transport would answer carry their errorCode', () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
  });
  after(async () => t?.close());

  it('a batch with initialize on an open session, two initializes in one batch, a batch without the right Accept: each with data.errorCode, recorded', async () => {
    const mcp = `${t.url}/mcp`;
    const { sessionId, result } = await rawInitialize(mcp, t.headers);
    const headers = { ...t.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const init = (id: number) => ({ jsonrpc: '2.0', id, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'b', version: '1' } } });
    const again = await rawPost(mcp, [init(5), { jsonrpc: '2.0', id: 6, method: 'ping' }], headers);
    assert.equal(again.status, 400);
    assert.equal(errorOf(again).data?.['errorCode'], 'ATTEST_INVALID_REQUEST');
    assert.match(errorOf(again).message, /already initialized/);
    const twice = await rawPost(mcp, [init(7), init(8)], t.headers);
    assert.equal(twice.status, 400);
    assert.match(errorOf(twice).message, /only one initialize per batch/);
    const accept = await rawPost(mcp, [{ jsonrpc: '2.0', id: 9, method: 'ping' }, { jsonrpc: '2.0', id: 10, method: 'ping' }], { ...headers, accept: 'application/json' });
    assert.equal(accept.status, 406);
    assert.equal(errorOf(accept).data?.['errorCode'], 'ATTEST_NOT_ACCEPTABLE');
    const events = await eventually(t, (all) => rejectedOf(all, 'ATTEST_NOT_ACCEPTABLE').length > 0);
    assert.equal(rejectedOf(events).filter((e) => /already initialized|only one initialize/.test(e.data.message)).length, 2);
    const fine = await rawPost(mcp, [{ jsonrpc: '2.0', id: 11, method: 'ping' }, { jsonrpc: '2.0', id: 12, method: 'ping' }], headers);
    assert.equal(fine.status, 200, fine.text);
    assert.equal(fine.messages.length, 2);
  });
});

describe('front door: slow clients cannot hold resources', () => {
  let t: TestGateway;
  const open: RawConnection[] = [];
  before(async () => {
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, frontDoor: { requestTimeoutMs: 1_500, headersTimeoutMs: 1_000, keepAliveTimeoutMs: 500, maxConnectionsPerSource: 4 } });
  });
  after(async () => {
    for (const connection of open) connection.close();
    await t?.close();
  });

  it('an authenticated POST sending one byte every 400 ms is cut at the request timeout (408), recorded', { timeout: 20_000 }, async () => {
    const refusalsBefore = rejectedOf(await t.events()).length;
    const head = `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t.key}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${PING.length}\r\n\r\n`;
    const script: (string | number)[] = [head];
    for (const byte of PING) script.push(400, byte);
    const exchange = await rawExchange(portOf(t.url), script, 8_000);
    assert.ok(exchange.closedByServer, `still open after ${exchange.elapsedMs} ms`);
    assert.ok(exchange.elapsedMs < 4_000, `cut after ${exchange.elapsedMs} ms (requestTimeoutMs 1500)`);
    assert.equal(exchange.status, 408, exchange.response);
    const events = await eventually(t, (all) => rejectedOf(all, 'ATTEST_REQUEST_TIMEOUT').length > 0);
    assert.equal(rejectedOf(events, 'ATTEST_REQUEST_TIMEOUT')[0]?.data.httpStatus, 408);
    await delay(300);
    assert.deepEqual(rejectedOf(await t.events()).slice(refusalsBefore).map((e) => e.data.errorCode), ['ATTEST_REQUEST_TIMEOUT'], 'one refusal, recorded once');
  });

  it('headers sent one byte at a time are cut at the headers timeout', { timeout: 20_000 }, async () => {
    const head = 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: abcdefghijklmnopqrstuvwxyz\r\n\r\n';
    const script: (string | number)[] = [];
    for (const byte of head) script.push(byte, 200);
    const exchange = await rawExchange(portOf(t.url), script, 8_000);
    assert.ok(exchange.closedByServer && exchange.elapsedMs < 3_000, `cut after ${exchange.elapsedMs} ms (headersTimeoutMs 1000), closed: ${exchange.closedByServer}`);
    assert.equal(exchange.status, 408);
  });

  it('a connection that sends nothing is cut at the headers timeout (408), recorded', { timeout: 20_000 }, async () => {
    const before = rejectedOf(await t.events(), 'ATTEST_REQUEST_TIMEOUT').length;
    const exchange = await rawExchange(portOf(t.url), [], 8_000);
    assert.ok(exchange.closedByServer && exchange.elapsedMs < 3_000, `cut after ${exchange.elapsedMs} ms (headersTimeoutMs 1000), closed: ${exchange.closedByServer}`);
    assert.equal(exchange.status, 408);
    const events = await eventually(t, (all) => rejectedOf(all, 'ATTEST_REQUEST_TIMEOUT').length > before);
    assert.equal(rejectedOf(events, 'ATTEST_REQUEST_TIMEOUT').length, before + 1);
  });

  it('an idle keep-alive connection is closed after keepAliveTimeoutMs', { timeout: 20_000 }, async () => {
    const exchange = await rawExchange(portOf(t.url), ['GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n'], 5_000);
    assert.equal(exchange.status, 200);
    assert.ok(exchange.closedByServer && exchange.elapsedMs < 2_500, `closed after ${exchange.elapsedMs} ms (keepAliveTimeoutMs 500), closed: ${exchange.closedByServer}`);
  });

  it('half-open connections beyond the per-source cap are refused with 503 and recorded; the cap frees up when they go', { timeout: 20_000 }, async () => {
    const before = rejectedOf(await t.events(), 'ATTEST_TOO_MANY_CONNECTIONS').length;
    for (let i = 0; i < 4; i++) {
      const connection = await openRaw(portOf(t.url));
      connection.socket.write('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      open.push(connection);
    }
    const beyond: RawConnection[] = [];
    for (let i = 0; i < 3; i++) beyond.push(await openRaw(portOf(t.url)));
    for (const connection of beyond) {
      assert.ok(await connection.waitClosed(2_000), 'a connection beyond the cap is closed by the gateway');
      assert.match(connection.received(), /^HTTP\/1\.1 503 /);
      assert.match(connection.received(), /"errorCode":"ATTEST_TOO_MANY_CONNECTIONS"/);
    }
    const events = await eventually(t, (all) => rejectedOf(all, 'ATTEST_TOO_MANY_CONNECTIONS').length >= before + 3);
    assert.equal(rejectedOf(events, 'ATTEST_TOO_MANY_CONNECTIONS').length, before + 3);
    for (const connection of open.splice(0)) connection.close();
    await delay(100);
    const health = await fetch(`${t.url}/healthz`);
    assert.equal(health.status, 200, 'with the half-open connections gone, the source is served again');
  });
});
