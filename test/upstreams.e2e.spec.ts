/**
 * Upstream failure and what the log keeps of the traffic that is not a plain call:
 *   - a dead upstream gives a clear error for its tools and does not take the others down,
 *   - a slow upstream is cut off at its timeout with a clear error,
 *   - a stdio upstream killed mid-session is restarted and the session goes on,
 *   - protocol versions are negotiated,
 *   - notifications and server→client requests (sampling) are recorded as events.
 * Real gateway, real fixture MCP servers, real SDK client.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ProtocolError } from '@modelcontextprotocol/server';
import { connectClient } from './harness/client.ts';
import type { TestClient } from './harness/client.ts';
import { rawInitialize } from './support/raw-mcp.ts';
import { HELLO_URI } from './fixtures/upstream/catalog.ts';
import { journalPids, readJournal } from './fixtures/upstream/journal.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

async function rejection(promise: Promise<unknown>): Promise<ProtocolError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProtocolError, `expected a JSON-RPC error, got ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

describe('upstreams through the gateway', () => {
  let t: TestGateway;
  let agent: TestClient;
  const journal = path.join(os.tmpdir(), `attest-upstreams-journal-${process.pid}.ndjson`);

  before(async () => {
    t = await startTestGateway({
      upstreams: {
        fixture: fixtureStdioUpstream({ env: { FIXTURE_JOURNAL: journal }, restart: { initialDelayMs: 50, maxDelayMs: 500, maxRestarts: 5 } }),
        quick: fixtureStdioUpstream({ timeoutMs: 300 }),
        dead: { transport: 'stdio', command: process.execPath, args: ['-e', 'process.stderr.write("boom: cannot start\\n"); process.exit(3)'], connectTimeoutMs: 5000, restart: { initialDelayMs: 10, maxDelayMs: 20, maxRestarts: 1 } },
        gone: { transport: 'streamable-http', url: 'http://127.0.0.1:9/mcp', connectTimeoutMs: 3000 },
      },
    });
    agent = await connectClient({ transport: 'streamable-http', url: `${t.url}/mcp`, headers: t.headers });
  });
  after(async () => {
    await agent?.close();
    await t?.close();
    await rm(journal, { force: true });
  });

  it('dead upstreams: the live ones keep serving, the dead one answers with a clear error', async () => {
    const tools = await agent.client.listTools();
    const names = tools.tools.map((tool) => tool.name);
    assert.ok(names.includes('fixture__echo') && names.includes('quick__echo'));
    assert.ok(!names.some((n) => n.startsWith('dead__') || n.startsWith('gone__')));
    const echo = await agent.client.callTool({ name: 'fixture__echo', arguments: { text: 'alive' } });
    assert.deepEqual(echo.content, [{ type: 'text', text: 'alive' }]);

    const dead = await rejection(agent.client.callTool({ name: 'dead__anything', arguments: {} }));
    assert.equal(dead.code, -32012);
    assert.match(dead.message, /Upstream "dead" is unavailable: .*(exit|code 3|boom)/);
    const gone = await rejection(agent.client.callTool({ name: 'gone__anything', arguments: {} }));
    assert.equal(gone.code, -32012);
    assert.match(gone.message, /Upstream "gone" is unavailable: .*(ECONNREFUSED|refused|unreachable)/);

    const events = await t.events();
    assert.ok(events.some((e) => e.type === 'UpstreamLost' && e.data.upstream === 'dead'), 'the dead upstream is recorded as lost');
  });

  it('a slow upstream is cut off at its timeout with a clear error, and the gateway goes on', async () => {
    const slow = await rejection(agent.client.callTool({ name: 'quick__slow', arguments: { steps: 1, delayMs: 5000, tag: 'timeout' } }));
    assert.equal(slow.code, -32013);
    assert.match(slow.message, /Upstream "quick" did not answer tools\/call within 300 ms/);
    const again = await agent.client.callTool({ name: 'quick__echo', arguments: { text: 'after timeout' } });
    assert.deepEqual(again.content, [{ type: 'text', text: 'after timeout' }]);
  });

  it('a stdio upstream killed mid-session is restarted and the session goes on', { timeout: 30_000 }, async () => {
    await agent.client.callTool({ name: 'fixture__echo', arguments: { text: 'before kill' } });
    const pids = (await readFile(journal, 'utf8')).trim().split('\n').map((l) => (JSON.parse(l) as { pid: number }).pid);
    const pid = pids.at(-1);
    assert.ok(pid !== undefined);
    process.kill(pid, 'SIGKILL');
    let answer: Awaited<ReturnType<typeof agent.client.callTool>> | undefined;
    for (let i = 0; i < 100 && answer === undefined; i++) {
      try {
        answer = await agent.client.callTool({ name: 'fixture__echo', arguments: { text: 'after restart' } });
      } catch (error) {
        // -32012 once the process is known dead; -32015 for a call written to it as it died.
        assert.ok(error instanceof ProtocolError && (error.code === -32012 || error.code === -32015), `while restarting: ${String(error)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    assert.deepEqual(answer?.content, [{ type: 'text', text: 'after restart' }]);
    const events = await t.events();
    assert.ok(events.some((e) => e.type === 'UpstreamLost' && e.data.upstream === 'fixture' && e.data.willRestart));
    const reconnects = events.filter((e) => e.type === 'UpstreamConnected' && e.data.upstream === 'fixture');
    assert.ok(reconnects.length >= 2, 'the restart is recorded');
  });

  it('negotiates 2025-11-25, 2025-06-18 and 2025-03-26, and answers an unknown version with the latest', async () => {
    for (const version of ['2025-11-25', '2025-06-18', '2025-03-26']) {
      const { result } = await rawInitialize(`${t.url}/servers/fixture/mcp`, t.headers, version);
      assert.equal(result['protocolVersion'], version);
    }
    const { result } = await rawInitialize(`${t.url}/mcp`, t.headers, '1999-01-01');
    assert.equal(result['protocolVersion'], '2025-11-25');
  });

  it('records server→client requests and notifications, both ways', async () => {
    const sampled = await agent.client.callTool({ name: 'fixture__sample', arguments: { prompt: 'recorded?' } });
    assert.match(JSON.stringify(sampled.content), /sampled: recorded\?/);
    await agent.client.setLoggingLevel('debug');
    await agent.client.callTool({ name: 'fixture__log', arguments: { levels: ['warning'], message: 'logged and recorded' } });
    const events = await t.events();
    const request = events.find((e) => e.type === 'RequestReceived' && e.data.from === 'upstream' && e.data.method === 'sampling/createMessage');
    assert.ok(request, 'the sampling request from the upstream is an event');
    const answer = events.find((e) => e.type === 'ResultReturned' && e.data.from === 'agent' && e.callId === request.callId);
    assert.ok(answer, "the agent's answer to it is an event");
    assert.ok(events.some((e) => e.type === 'NotificationRelayed' && e.data.from === 'upstream' && e.data.method === 'notifications/message' && JSON.stringify(e.data.params.body).includes('logged and recorded')));
    assert.ok(events.some((e) => e.type === 'NotificationRelayed' && e.data.from === 'agent' && e.data.method === 'notifications/initialized'));
  });
});

describe('a shared stdio upstream (share: true): one process for every session', () => {
  const SESSIONS = 6;
  let t: TestGateway;
  const agents: TestClient[] = [];
  const journal = path.join(os.tmpdir(), `attest-shared-journal-${process.pid}.ndjson`);
  const perSessionJournal = path.join(os.tmpdir(), `attest-own-journal-${process.pid}.ndjson`);

  before(async () => {
    t = await startTestGateway({
      upstreams: {
        shared: fixtureStdioUpstream({ share: true, probeAtStart: false, env: { FIXTURE_JOURNAL: journal } }),
        own: fixtureStdioUpstream({ probeAtStart: false, env: { FIXTURE_JOURNAL: perSessionJournal } }),
      },
    });
    for (let i = 0; i < SESSIONS; i++) agents.push(await connectClient({ transport: 'streamable-http', url: `${t.url}/mcp`, headers: t.headers }, { name: `agent-${i}` }));
  });
  after(async () => {
    await Promise.all(agents.map((agent) => agent.close()));
    await t?.close();
    await rm(journal, { force: true });
    await rm(perSessionJournal, { force: true });
  });

  it(`${SESSIONS} sessions calling at once: one process, each answer (same JSON-RPC ids in every session) back to its own session`, { timeout: 60_000 }, async () => {
    const answers = await Promise.all(agents.flatMap((agent, i) => [0, 1, 2].map(async (j) => (await agent.client.callTool({ name: 'shared__echo', arguments: { text: `agent ${i} call ${j}` } })).content)));
    assert.deepEqual(answers, agents.flatMap((_, i) => [0, 1, 2].map((j) => [{ type: 'text', text: `agent ${i} call ${j}` }])));
    await Promise.all(agents.map((agent, i) => agent.client.callTool({ name: 'own__echo', arguments: { text: `agent ${i}` } })));
    assert.equal((await journalPids(journal)).size, 1, 'one shared process served every session');
    assert.equal((await journalPids(perSessionJournal)).size, SESSIONS, 'without share: a process per session');
  });

  it('progress notifications go to the session whose call they belong to, under its own token', { timeout: 60_000 }, async () => {
    const seen = agents.map(() => [] as number[]);
    await Promise.all(agents.slice(0, 3).map((agent, i) => agent.client.callTool({ name: 'shared__slow', arguments: { steps: 3, delayMs: 20, tag: `progress-${i}` } }, { onprogress: (p) => seen[i]?.push(p.progress) })));
    assert.deepEqual(seen.slice(0, 3), [[1, 2, 3], [1, 2, 3], [1, 2, 3]]);
  });

  it('resources/updated reaches the sessions subscribed to the URI only; logging/setLevel is answered by the gateway', { timeout: 60_000 }, async () => {
    const [subscriber, other] = agents as [TestClient, TestClient];
    const uri = HELLO_URI;
    await subscriber.client.listResources();
    await subscriber.client.subscribeResource({ uri });
    const touched = await other.client.callTool({ name: 'shared__touch', arguments: { uri } });
    assert.deepEqual(touched.structuredContent, { uri, notified: true }, 'the process is subscribed on behalf of the subscriber');
    await subscriber.inbox.waitForNotification('notifications/resources/updated', (n) => n.params?.['uri'] === uri);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(other.inbox.notificationsOf('notifications/resources/updated').length, 0, 'a session that did not subscribe hears nothing');

    await other.client.setLoggingLevel('debug');
    assert.ok(!(await readJournal(journal)).some((entry) => entry.method === 'logging/setLevel'), "one session's log level is not set on the shared process");
  });

  it('a server→client request goes to the one session with a call in flight; with calls of two sessions in flight it is refused, reaching neither', { timeout: 60_000 }, async () => {
    const [a, b] = agents as [TestClient, TestClient];
    const sampled = await b.client.callTool({ name: 'shared__sample', arguments: { prompt: 'to whom?' } });
    assert.deepEqual(sampled.content, [{ type: 'text', text: 'sampled: to whom?' }]);
    assert.equal(b.inbox.requests.filter((r) => r.method === 'sampling/createMessage').length, 1);

    const before = a.inbox.requests.length;
    const busy = a.client.callTool({ name: 'shared__slow', arguments: { steps: 1, delayMs: 1_500, tag: 'busy' } });
    await new Promise((r) => setTimeout(r, 300));
    const ambiguous = await b.client.callTool({ name: 'shared__sample', arguments: { prompt: 'ambiguous' } }).then(
      (result) => JSON.stringify(result),
      (error: unknown) => String(error),
    );
    await busy;
    assert.match(ambiguous, /cannot tell which session sampling\/createMessage is for/);
    assert.equal(a.inbox.requests.length, before, 'the other session got no request');
    assert.equal(b.inbox.requests.filter((r) => r.method === 'sampling/createMessage').length, 1, 'nor did the caller');
  });

  it('the shared process killed: every session is told, it is restarted once, and every session goes on with it', { timeout: 60_000 }, async () => {
    const [victim] = [...(await journalPids(journal))] as [number];
    process.kill(victim, 'SIGKILL');
    const texts = await Promise.all(
      agents.map(async (agent, i) => {
        for (let attempt = 0; attempt < 100; attempt++) {
          try {
            return (await agent.client.callTool({ name: 'shared__echo', arguments: { text: `after restart ${i}` } })).content;
          } catch (error) {
            assert.ok(error instanceof ProtocolError && error.code === -32012, `while restarting: ${String(error)}`);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        return undefined;
      }),
    );
    assert.deepEqual(texts, agents.map((_, i) => [{ type: 'text', text: `after restart ${i}` }]));
    const pids = await journalPids(journal);
    assert.equal(pids.size, 2, 'one process before the kill, one restarted for all sessions');
    const events = await t.events();
    const lost = new Set(events.filter((e) => e.type === 'UpstreamLost' && e.data.upstream === 'shared' && e.data.willRestart).map((e) => e.stream));
    assert.equal(lost.size, SESSIONS, 'each session recorded the loss');
  });

  it('after every session closed, the process lingers for the next one and the gateway stop ends it', { timeout: 60_000 }, async () => {
    const before = await journalPids(journal);
    for (const agent of agents) await agent.close();
    const next = await connectClient({ transport: 'streamable-http', url: `${t.url}/mcp`, headers: t.headers });
    agents.push(next);
    await next.client.callTool({ name: 'shared__echo', arguments: { text: 'reused' } });
    const pids = await journalPids(journal);
    assert.deepEqual(pids, before, 'the next session reused the process');
    const pid = [...pids].at(-1) as number;
    await t.close();
    assert.equal(isRunning(pid), false, `the shared process ${pid} ended with the gateway`);
  });
});

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
