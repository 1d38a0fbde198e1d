/**
 * A server→client request sent by an upstream during a `tools/call` reaches the agent in every
 * session, not in most of them. Many short sessions in a row, each one: connect (the SDK client's
 * usual sequence: initialize, notifications/initialized, standalone GET stream), call a tool whose
 * upstream asks the agent for input (elicitation/create) at once, check the answer came back,
 * close. Over a Streamable HTTP upstream and a stdio upstream. Bounded by a session count and a
 * time budget, whichever comes first; one lost request fails the test, naming the session.
 *
 * The fixture sends elicitation/create without a related request (McpServer's
 * `ctx.mcpReq.elicitInput`), so over Streamable HTTP it travels on the upstream's standalone GET
 * stream: lost when that stream was not open yet.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { CLIENT_ANSWERS, closeAllClients, connectClient } from './harness/client.ts';
import { startNodeServer, stopAllProcesses } from './harness/processes.ts';
import type { ListeningProcess } from './harness/processes.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

const FIXTURE = fileURLToPath(new URL('./fixtures/upstream/server.ts', import.meta.url));
const MAX_SESSIONS = 300;
const BUDGET_MS = 120_000;
/** Far below the 60 s an agent would wait: a lost request shows as a timeout here. */
const CALL_TIMEOUT_MS = 10_000;

after(async () => {
  await closeAllClients();
  await stopAllProcesses();
});

async function sessionsInARow(t: TestGateway, endpoint: string, context: TestContext): Promise<number> {
  const started = Date.now();
  let sessions = 0;
  while (sessions < MAX_SESSIONS && Date.now() - started < BUDGET_MS) {
    sessions += 1;
    const agent = await connectClient({ transport: 'streamable-http', url: `${t.url}${endpoint}`, headers: t.headers }, { sampling: false, roots: false });
    try {
      const message = `session ${sessions}: who are you?`;
      const result = await agent.client.callTool({ name: 'elicit', arguments: { message } }, { timeout: CALL_TIMEOUT_MS }).catch((error: unknown) => {
        assert.fail(`session ${sessions} (after ${Math.round((Date.now() - started) / 1000)} s): the elicitation did not come through: ${String(error)}`);
      });
      assert.deepEqual(result.structuredContent, { action: CLIENT_ANSWERS.elicitation.action, content: CLIENT_ANSWERS.elicitation.content }, `session ${sessions}`);
      assert.equal(agent.inbox.requestsOf('elicitation/create').length, 1, `session ${sessions}: one elicitation/create reached the agent`);
    } finally {
      // Ends the gateway session (DELETE), and with it the session's upstream connection or process.
      const transport = agent.client.transport;
      if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession();
      await agent.close();
    }
  }
  context.diagnostic(`${sessions} sessions in ${Math.round((Date.now() - started) / 1000)} s`);
  return sessions;
}

describe('server→client requests during a call, many sessions in a row', { timeout: 2 * BUDGET_MS + 60_000 }, () => {
  let http: ListeningProcess | undefined;
  let t: TestGateway | undefined;

  before(async () => {
    http = await startNodeServer(FIXTURE, { args: ['--http'] });
    t = await startTestGateway({ upstreams: { viaHttp: { transport: 'streamable-http', url: http.url }, viaStdio: fixtureStdioUpstream() } });
  });
  after(async () => {
    await t?.close();
    await http?.stop();
  });

  it(`Streamable HTTP upstream: an elicitation during the first call reaches the agent in each of up to ${MAX_SESSIONS} sessions`, { timeout: BUDGET_MS + 30_000 }, async (context) => {
    const sessions = await sessionsInARow(t ?? assert.fail('no gateway'), '/servers/viaHttp/mcp', context);
    assert.ok(sessions >= 50, `only ${sessions} sessions in ${BUDGET_MS / 1000} s: too few to mean anything`);
  });

  it(`stdio upstream: an elicitation during the first call reaches the agent in each of up to ${MAX_SESSIONS} sessions`, { timeout: BUDGET_MS + 30_000 }, async (context) => {
    const sessions = await sessionsInARow(t ?? assert.fail('no gateway'), '/servers/viaStdio/mcp', context);
    assert.ok(sessions >= 50, `only ${sessions} sessions in ${BUDGET_MS / 1000} s: too few to mean anything`);
  });
});
