/**
 * The MCP Inspector CLI (test/harness/inspector.ts), a client nobody here wrote, through a real
 * gateway to the fixture upstream, as a newcomer runs it. Where the Inspector does not show what
 * the server answered (it prints `{}` for any logging/setLevel), a wire recorder between the two
 * keeps the bytes it received.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { journalPids } from './fixtures/upstream/journal.ts';
import { runInspector } from './harness/inspector.ts';
import { makeTempDir, removeAllTempDirs } from './harness/tmp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';
import { startWireRecorder } from './support/wire-recorder.ts';
import type { WireRecorder } from './support/wire-recorder.ts';

const INSTALL_AND_RUN_MS = 180_000;

after(async () => {
  await removeAllTempDirs();
});

function jsonOf(stdout: string): Record<string, unknown> {
  try {
    return JSON.parse(stdout) as Record<string, unknown>;
  } catch {
    assert.fail(`the Inspector printed no JSON: ${stdout}`);
  }
}

describe('the MCP Inspector CLI through the gateway', { timeout: 5 * INSTALL_AND_RUN_MS }, () => {
  let t: TestGateway;
  let wire: WireRecorder;

  before(async () => {
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() } });
    wire = await startWireRecorder(t.url);
  });
  after(async () => {
    await wire?.close();
    await t?.close();
  });

  it('logging/setLevel: the Inspector receives the empty result the spec prescribes; the call is recorded all the same', { timeout: INSTALL_AND_RUN_MS }, async () => {
    const run = await runInspector([`${wire.origin}/mcp`, '--header', `Authorization: Bearer ${t.key}`, '--method', 'logging/setLevel', '--log-level', 'debug', '--format', 'json']);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const sent = wire.exchanges.map((e) => (e.requestBody === '' ? undefined : (JSON.parse(e.requestBody) as Record<string, unknown>))).find((m) => m?.['method'] === 'logging/setLevel');
    assert.ok(sent !== undefined, 'the Inspector sent logging/setLevel');
    const answer = wire.messagesReceived().find((m) => m['id'] === sent['id'] && 'result' in m);
    assert.deepEqual(answer?.['result'], {}, `the answer on the wire: ${JSON.stringify(answer)}`);
    const events = await t.events();
    const request = events.find((e) => e.type === 'RequestReceived' && e.data.method === 'logging/setLevel');
    assert.ok(request !== undefined, 'RequestReceived for logging/setLevel');
    assert.ok(events.some((e) => e.type === 'ResultReturned' && e.callId === request.callId), 'ResultReturned for logging/setLevel');
  });

  it('tools/call: the result the Inspector prints carries the receipt, which names the recorded call', { timeout: INSTALL_AND_RUN_MS }, async () => {
    const run = await runInspector([`${t.url}/mcp`, '--header', `Authorization: Bearer ${t.key}`, '--method', 'tools/call', '--tool-name', 'fixture__add', '--tool-arg', 'a=2', 'b=3', '--format', 'json']);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const result = jsonOf(run.stdout)['result'] as { structuredContent?: unknown; _meta?: Record<string, { callId?: string }> } | undefined;
    assert.deepEqual(result?.structuredContent, { sum: 5 });
    const callId = result?._meta?.['attest/receipt']?.callId;
    assert.equal(typeof callId, 'string', run.stdout);
    const types = (await t.events()).filter((e) => e.callId === callId).map((e) => e.type);
    assert.deepEqual(types, ['RequestReceived', 'DecisionMade', 'ResultReturned']);
  });

  // Without a TTY and without flags the Inspector answers any 401 with its own "Interactive OAuth
  // requires a TTY … use --stored-auth-only", whatever the server said; these are the two ways a
  // person gets the server's word: the flag it suggests, and a terminal (auto-open stands in for one).
  const EXPECTED = 'this gateway takes an API key, sent as the HTTP header "Authorization: Bearer <key>"; it has no OAuth login';
  /** What the Inspector printed, its JSON escapes (the server's JSON inside its own) taken out. */
  const said = (run: { stdout: string; stderr: string }): string => `${run.stdout}${run.stderr}`.replace(/\\/g, '');

  it('no key, --stored-auth-only (what the Inspector tells CI to use): its output says an API key is expected and how to send it', { timeout: INSTALL_AND_RUN_MS }, async () => {
    const run = await runInspector([`${t.url}/mcp`, '--method', 'tools/list', '--stored-auth-only']);
    assert.equal(run.code, 3, 'exit 3: auth_required');
    assert.ok(said(run).includes(EXPECTED), said(run));
  });

  it('no key, as at a terminal: the Inspector finds no OAuth metadata to follow and shows the gateway\'s message', { timeout: INSTALL_AND_RUN_MS }, async () => {
    const before = wire.exchanges.length;
    const run = await runInspector([`${wire.origin}/mcp`, '--method', 'tools/list'], { env: { MCP_AUTO_OPEN_ENABLED: 'true', BROWSER: '/bin/false', MCP_INSPECTOR_SECRET_STORE: 'memory' } });
    assert.equal(run.code, 3, `exit 3: auth_required\n${run.stdout}\n${run.stderr}`);
    assert.ok(said(run).includes(EXPECTED), said(run));
    const discovery = wire.exchanges.slice(before).filter((e) => e.path.startsWith('/.well-known/oauth-protected-resource'));
    assert.ok(discovery.length > 0, 'the Inspector looked for protected-resource metadata');
    for (const e of discovery) assert.equal(e.status, 404, `${e.path} answered ${String(e.status)}: ${e.responseBody}`);
    const first = wire.exchanges[before];
    assert.doesNotMatch(String(first?.responseHeaders?.['www-authenticate']), /resource_metadata/);
  });
});

describe('the MCP Inspector CLI without a key, on a gateway with auth.anonymous', { timeout: 2 * INSTALL_AND_RUN_MS }, () => {
  let t: TestGateway;
  before(async () => {
    t = await startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, auth: { anonymous: { enabled: true, tenant: 'dev', denyTools: ['fixture__add'] } } });
  });
  after(async () => {
    await t?.close();
  });

  it('lists the tools anonymous requests may call, and the session is recorded as the anonymous principal', { timeout: INSTALL_AND_RUN_MS }, async () => {
    const run = await runInspector([`${t.url}/mcp`, '--method', 'tools/list', '--format', 'json']);
    assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
    const tools = (jsonOf(run.stdout)['result'] as { tools?: { name: string }[] } | undefined)?.tools?.map((tool) => tool.name) ?? [];
    assert.ok(tools.includes('fixture__echo') && !tools.includes('fixture__add'), tools.join(', '));
    const opened = (await t.events()).find((e) => e.type === 'SessionOpened');
    assert.equal(opened?.actor.kind, 'anonymous');
    assert.equal(opened?.tenant, 'dev');
  });
});

describe('one-shot Inspector CLI calls that never close their sessions (issue 16)', { timeout: 6 * INSTALL_AND_RUN_MS }, () => {
  const RUNS = 5;
  let t: TestGateway;
  let sharedJournal: string;
  let ownJournal: string;
  before(async () => {
    const dir = await makeTempDir('attest-inspector-journals-');
    sharedJournal = path.join(dir, 'shared.ndjson');
    ownJournal = path.join(dir, 'own.ndjson');
    t = await startTestGateway({
      upstreams: {
        shared: fixtureStdioUpstream({ share: true, probeAtStart: false, env: { FIXTURE_JOURNAL: sharedJournal } }),
        own: fixtureStdioUpstream({ probeAtStart: false, env: { FIXTURE_JOURNAL: ownJournal } }),
      },
    });
  });
  after(async () => {
    await t?.close();
  });

  it(`${RUNS} runs: the shared upstream is one process for all of them, the other a process per run`, { timeout: 5 * INSTALL_AND_RUN_MS }, async () => {
    for (let i = 0; i < RUNS; i++) {
      const run = await runInspector([`${t.url}/mcp`, '--header', `Authorization: Bearer ${t.key}`, '--method', 'tools/call', '--tool-name', 'shared__echo', '--tool-arg', `text=run ${i}`, '--format', 'json']);
      assert.equal(run.code, 0, `${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, new RegExp(`run ${i}`));
    }
    assert.equal((await journalPids(sharedJournal)).size, 1, 'share: true: one process served every one-shot session');
    assert.equal((await journalPids(ownJournal)).size, RUNS, 'share: false: each one-shot session cost a process of its own');
  });
});
