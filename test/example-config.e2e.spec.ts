/**
 * The README's first command works: `attest.example.yaml` as shipped — the demo key, the two real
 * MCP servers from npm (server-everything, server-filesystem on ./demo) over stdio — loaded by the
 * CLI's own loader, with only the log dir (a temp dir) and the port (0) changed. A real SDK client
 * goes through the aggregate and the per-server endpoint; the log the run leaves verifies.
 * Bounded: every client call and the whole file have timeouts; processes and temp dirs are removed.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { access, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { ProtocolError } from '@modelcontextprotocol/server';
import { openCheckpoint, verifyFileLog } from '#eventlog';
import { loadCheckpointKeys, startGateway } from '#gateway';
import type { Gateway } from '#gateway';
import type { AttestConfig, AttestEvent } from '#schemas';
import { loadConfigFile } from '../cli/config-file.ts';
import { closeAllClients, connectClient } from './harness/client.ts';
import type { TestClient } from './harness/client.ts';
import { makeTempDir, removeAllTempDirs } from './harness/tmp.ts';
import { testLogger } from './harness/log.ts';

const REPO = path.join(import.meta.dirname, '..');
const EXAMPLE = path.join(REPO, 'attest.example.yaml');
const DEMO_KEY = 'atk_demo_do_not_use_in_production';
const HEADERS = { authorization: `Bearer ${DEMO_KEY}` };
const REPORT = path.join(REPO, 'demo', 'report.txt');
/** Each request through the gateway; the upstreams are local processes, so seconds are plenty. */
const CALL = { timeout: 20_000 };

function textOf(content: unknown): string {
  assert.ok(Array.isArray(content), `expected a content array, got ${JSON.stringify(content)}`);
  return content.map((block: { type?: string; text?: string }) => (block.type === 'text' ? (block.text ?? '') : '')).join('');
}

describe('attest.example.yaml, as the README starts it', { timeout: 180_000 }, () => {
  let gateway: Gateway | undefined;
  let logDir: string;
  let stateDir: string;
  let agent: TestClient;
  let everythingTools: string[];

  before(async () => {
    const loaded = loadConfigFile(EXAMPLE, {});
    for (const [name, upstream] of Object.entries(loaded.config.upstreams)) {
      assert.equal(upstream.transport === 'stdio' && upstream.cwd, REPO, `upstreams.${name}: stdio "cwd: ." resolves against the config file's directory`);
    }
    const temp = await makeTempDir('attest-example-');
    logDir = path.join(temp, 'log');
    stateDir = path.join(temp, 'state');
    assert.equal(loaded.config.log.backend, 'file');
    if (loaded.config.log.backend !== 'file') return;
    assert.equal(loaded.config.evidence.enabled, true, 'the example signs checkpoints');
    // The state (and the generated checkpoint key, and the tree) beside the temp log, not in the repository.
    const config: AttestConfig = { ...loaded.config, gateway: { ...loaded.config.gateway, port: 0 }, log: { ...loaded.config.log, dir: logDir }, state: { ...loaded.config.state, dir: stateDir }, evidence: { ...loaded.config.evidence, dir: path.join(stateDir, 'merkle') } };
    gateway = await startGateway(config, { port: 0, logger: testLogger() });
    agent = await connectClient({ transport: 'streamable-http', url: `${gateway.url}/mcp`, headers: HEADERS }, { roots: false, timeoutMs: 30_000 });

    const direct = await connectClient({ transport: 'stdio', command: process.execPath, args: ['node_modules/@modelcontextprotocol/server-everything/dist/index.js', 'stdio'], cwd: REPO }, { roots: false });
    try {
      everythingTools = (await direct.client.listTools(undefined, CALL)).tools.map((t) => t.name).sort();
    } finally {
      await direct.close();
    }
  });

  after(async () => {
    await closeAllClients();
    await gateway?.close('test done');
    await removeAllTempDirs();
  });

  it('lists the tools of both npm servers namespaced, without the tools the demo key denies', async () => {
    const names = (await agent.client.listTools(undefined, CALL)).tools.map((t) => t.name);
    const everything = names.filter((n) => n.startsWith('everything__')).map((n) => n.slice('everything__'.length)).sort();
    assert.deepEqual(everything, everythingTools, 'every server-everything tool, renamed everything__<name>');
    assert.ok(names.includes('everything__echo'));
    for (const tool of ['files__read_file', 'files__read_text_file', 'files__list_directory']) assert.ok(names.includes(tool), `${tool} listed; got ${names.join(', ')}`);
    for (const denied of ['files__write_file', 'files__edit_file', 'files__move_file', 'files__create_directory']) {
      assert.equal(names.includes(denied), false, `${denied} is denied to the demo key and must not be listed`);
    }
    assert.deepEqual(names.filter((n) => !n.startsWith('everything__') && !n.startsWith('files__')), []);
  });

  it('calls everything__echo', async () => {
    const result = await agent.client.callTool({ name: 'everything__echo', arguments: { message: 'hello from the example' } }, CALL);
    assert.equal(textOf(result.content), 'Echo: hello from the example');
    assert.ok(result._meta?.['attest/receipt'] !== undefined, 'the result carries an Attest receipt');
  });

  it('reads demo/report.txt through files__read_file and files__read_text_file', async () => {
    const expected = await readFile(REPORT, 'utf8');
    for (const name of ['files__read_file', 'files__read_text_file']) {
      const result = await agent.client.callTool({ name, arguments: { path: REPORT } }, CALL);
      assert.notEqual(result.isError, true, `${name}: ${JSON.stringify(result.content)}`);
      assert.equal(textOf(result.content), expected);
    }
  });

  it('refuses files__write_file with -32010 naming the deny rule, and nothing is written', async () => {
    const target = path.join(REPO, 'demo', `attest-denied-${randomUUID()}.txt`);
    try {
      await assert.rejects(agent.client.callTool({ name: 'files__write_file', arguments: { path: target, content: 'must not be written' } }, CALL), (error: unknown) => {
        assert.ok(error instanceof ProtocolError, `expected a JSON-RPC error, got ${String(error)}`);
        assert.equal(error.code, -32010);
        assert.match(error.message, /denyTools pattern "files__write_file" of key "demo"/);
        const data: unknown = error.data;
        assert.ok(typeof data === 'object' && data !== null, `error data: ${JSON.stringify(data)}`);
        const fields = new Map(Object.entries(data));
        assert.equal(fields.get('errorCode'), 'ATTEST_DENIED');
        assert.equal(fields.get('ruleId'), 'key:demo:denyTools[0]');
        assert.ok(fields.has('receipt'), 'the refusal carries a receipt too');
        return true;
      });
      await assert.rejects(access(target), { code: 'ENOENT' });
    } finally {
      await rm(target, { force: true });
    }
  });

  it('gets a server-everything prompt through the aggregate endpoint', async () => {
    const prompts = (await agent.client.listPrompts(undefined, CALL)).prompts.map((p) => p.name);
    assert.ok(prompts.includes('everything__simple-prompt'), `prompts: ${prompts.join(', ')}`);
    const prompt = await agent.client.getPrompt({ name: 'everything__simple-prompt' }, CALL);
    assert.deepEqual(prompt.messages, [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt without arguments.' } }]);
  });

  it('reads a listed server-everything resource and a templated one through the aggregate endpoint', async () => {
    const listed = (await agent.client.listResources(undefined, CALL)).resources;
    const doc = listed.find((r) => r.uri.startsWith('demo://resource/static/document/'));
    assert.ok(doc !== undefined, `a static document resource is listed; got ${listed.map((r) => r.uri).join(', ')}`);
    const read = (await agent.client.readResource({ uri: doc.uri }, CALL)).contents[0];
    assert.equal(read?.uri, doc.uri);
    assert.ok(read !== undefined && 'text' in read && read.text.length > 0, 'the document has text');

    const templates = (await agent.client.listResourceTemplates(undefined, CALL)).resourceTemplates.map((t) => t.uriTemplate);
    assert.ok(templates.includes('demo://resource/dynamic/text/{resourceId}'), `templates: ${templates.join(', ')}`);
    const dynamic = (await agent.client.readResource({ uri: 'demo://resource/dynamic/text/7' }, CALL)).contents[0];
    assert.equal(dynamic?.uri, 'demo://resource/dynamic/text/7');
    assert.ok(dynamic !== undefined && 'text' in dynamic, 'the dynamic text resource has text');
    assert.match(dynamic.text, /\b7\b/);
  });

  it('serves server-everything with its names unchanged on /servers/everything/mcp', async () => {
    assert.ok(gateway !== undefined);
    const single = await connectClient({ transport: 'streamable-http', url: `${gateway.url}/servers/everything/mcp`, headers: HEADERS }, { roots: false, timeoutMs: 30_000 });
    try {
      const names = (await single.client.listTools(undefined, CALL)).tools.map((t) => t.name).sort();
      assert.deepEqual(names, everythingTools);
      const result = await single.client.callTool({ name: 'echo', arguments: { message: 'direct' } }, CALL);
      assert.equal(textOf(result.content), 'Echo: direct');
    } finally {
      await single.close();
    }
  });

  it('records the refusal, and leaves a log that verifies after shutdown', async () => {
    assert.ok(gateway !== undefined);
    const events: AttestEvent[] = [];
    for await (const { event } of gateway.log.read()) events.push(event);
    const denial = events.find((e) => e.type === 'DecisionMade' && e.data.decision === 'deny' && e.data.ruleId === 'key:demo:denyTools[0]');
    assert.ok(denial !== undefined, 'the denied write_file has a DecisionMade deny');
    assert.equal(denial.actor.id, 'demo');

    await closeAllClients();
    await gateway.close('test done');
    const result = await verifyFileLog(logDir);
    assert.equal(result.ok, true, `verify: ${JSON.stringify(result.firstFailure)}`);
    // With the key generated on first start: the last checkpoint, signed at the stop, opens with its verifier key.
    const keys = await loadCheckpointKeys({ ...gateway.config, state: { ...gateway.config.state, dir: stateDir } });
    assert.equal(keys.source.kind, 'generated');
    const latest = openCheckpoint(await readFile(path.join(stateDir, 'merkle', 'checkpoint'), 'utf8'), keys.trust).checkpoint;
    assert.ok(latest.size >= events.length, `the last checkpoint covers the run (${latest.size} of ${result.eventsChecked} events)`);
    assert.ok(result.eventsChecked >= events.length, `checked ${result.eventsChecked} events`);
    const types = new Set(events.map((e) => e.type));
    for (const type of ['GatewayStarted', 'RequestReceived', 'DecisionMade', 'ResultReturned']) assert.ok(types.has(type as AttestEvent['type']), `log has ${type}`);
  });
});
