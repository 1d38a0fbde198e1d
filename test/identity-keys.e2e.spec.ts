/**
 * Virtual keys (tenant → team → key) through a real gateway: issued and revoked with the admin
 * API and with the `attest keys` CLI (a real process against the running gateway); an issued key
 * works for MCP at once, a revoked one is refused on its next request (even on its open
 * session), team revocation takes every key under the team, a restart keeps issued keys and
 * revoked keys revoked, a non-admin is refused with -32035, and the bytes of the log never hold
 * an issued key.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashApiKey } from '#gateway';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';
import { runCli } from './harness/cli.ts';
import type { CliResult } from './harness/cli.ts';

const ADMIN_KEY = 'atk_admin_test_key_0123456789';
const AGENT_KEY = 'atk_agent_test_key_0123456789';
const KEYS = [
  { id: 'root-admin', hash: hashApiKey(ADMIN_KEY), tenant: 'ops', roles: ['attest:admin'] },
  { id: 'plain-agent', hash: hashApiKey(AGENT_KEY), tenant: 'acme', team: 'red' },
];

function cli(args: string[], env: Record<string, string>): Promise<CliResult> {
  return runCli(args, { env, timeoutMs: 60_000 });
}

async function admin(url: string, method: 'GET' | 'POST', pathname: string, body?: object, key = ADMIN_KEY): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${key}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  return { status: response.status, json: (await response.json()) as Record<string, unknown> };
}

/** Status of `tools/list` on a fresh session with this key: 200, or the refusal. */
async function tryKey(url: string, key: string): Promise<{ status: number; errorCode?: unknown; code?: number }> {
  const response = await rawPost(`${url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } } }, { authorization: `Bearer ${key}` });
  if (response.status === 200) return { status: 200 };
  const error = errorOf(response);
  return { status: response.status, errorCode: error.data?.['errorCode'], code: error.code };
}

describe('virtual keys: admin API, CLI, revocation, restart', () => {
  let base = '';
  let logDir = '';
  let t: TestGateway;
  const issued: string[] = [];

  async function start(): Promise<TestGateway> {
    return startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, keys: KEYS, logDir });
  }

  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'attest-keys-'));
    logDir = path.join(base, 'log');
    t = await start();
  });

  after(async () => {
    await t.close();
    await rm(base, { recursive: true, force: true });
  });

  it('refuses the admin API without a key (401) and without the admin role (403, -32035), recorded', async () => {
    const anonymous = await fetch(`${t.url}/admin/v1/keys`);
    assert.equal(anonymous.status, 401);
    const refused = await admin(t.url, 'POST', '/admin/v1/keys', { tenant: 'acme' }, AGENT_KEY);
    assert.equal(refused.status, 403);
    const error = refused.json['error'] as { code: number; data: Record<string, unknown> };
    assert.equal(error.code, -32035);
    assert.equal(error.data['errorCode'], 'ATTEST_FORBIDDEN');
    assert.equal((await admin(t.url, 'GET', '/admin/v1/keys', undefined, AGENT_KEY)).status, 403);
    const events = await t.events();
    assert.ok(events.some((e) => e.type === 'RequestRejected' && e.data.errorCode === 'ATTEST_FORBIDDEN' && e.actor.id === 'plain-agent'));
    assert.equal(events.some((e) => e.type === 'KeyIssued'), false, 'nothing issued by a non-admin');
  });

  it('issues a key once, which works at once; list and show never return it; bad requests are precise', { timeout: 60_000 }, async () => {
    const created = await admin(t.url, 'POST', '/admin/v1/keys', { id: 'red-bot', tenant: 'acme', team: 'red', roles: ['dev'], denyTools: ['fixture__fail'] });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const key = String(created.json['key']);
    issued.push(key);
    assert.match(key, /^atk_[A-Za-z0-9_-]{43}$/);
    assert.equal(created.json['hash'], hashApiKey(key));
    assert.equal(created.json['status'], 'active');

    const { sessionId, result } = await rawInitialize(`${t.url}/mcp`, { authorization: `Bearer ${key}` });
    const headers = { authorization: `Bearer ${key}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    assert.ok((await rawPost(`${t.url}/mcp`, { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'fixture__echo', arguments: { text: 'hi' } } }, headers)).messages[0]?.['result']);
    const denied = errorOf(await rawPost(`${t.url}/mcp`, { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'fixture__fail', arguments: {} } }, headers));
    assert.equal(denied.data?.['ruleId'], 'key:red-bot:denyTools[0]', 'the issued key\'s tool lists apply');

    const events = await t.events();
    const opened = events.find((e) => e.type === 'SessionOpened' && e.stream === `session-${sessionId}`);
    assert.deepEqual(opened?.actor, { kind: 'apiKey', id: 'red-bot', tenant: 'acme', team: 'red', roles: ['dev'] });
    const issuedEvent = events.find((e) => e.type === 'KeyIssued');
    assert.equal(issuedEvent?.actor.id, 'root-admin');
    assert.equal(issuedEvent?.type === 'KeyIssued' && issuedEvent.data.keyHash, hashApiKey(key));

    const listed = await admin(t.url, 'GET', '/admin/v1/keys?tenant=acme');
    const ids = (listed.json['keys'] as { id: string }[]).map((k) => k.id).sort();
    assert.deepEqual(ids, ['plain-agent', 'red-bot']);
    assert.equal(JSON.stringify(listed.json).includes(key), false);
    const shown = await admin(t.url, 'GET', '/admin/v1/keys/red-bot');
    assert.equal(shown.json['source'], 'issued');
    assert.equal(shown.json['key'], undefined);

    const duplicate = await admin(t.url, 'POST', '/admin/v1/keys', { id: 'red-bot', tenant: 'acme' });
    assert.equal(duplicate.status, 400);
    assert.match((duplicate.json['error'] as { message: string }).message, /Key id "red-bot" is taken/);
    const invalid = await admin(t.url, 'POST', '/admin/v1/keys', { tenant: 'acme', allowTools: ['not a pattern'], colour: 'blue' });
    assert.equal(invalid.status, 400);
    assert.match((invalid.json['error'] as { message: string }).message, /allowTools\[0\]/);
    assert.equal((await admin(t.url, 'GET', '/admin/v1/keys/nobody')).status, 404);
    assert.equal(((await admin(t.url, 'GET', '/admin/v1/keys/nobody')).json['error'] as { code: number }).code, -32039);
  });

  it('revoking a key refuses its next request, on its open session too (-32036), and the session is closed', { timeout: 60_000 }, async () => {
    const created = await admin(t.url, 'POST', '/admin/v1/keys', { id: 'short-lived', tenant: 'acme', team: 'red' });
    const key = String(created.json['key']);
    issued.push(key);
    const { sessionId, result } = await rawInitialize(`${t.url}/mcp`, { authorization: `Bearer ${key}` });
    const headers = { authorization: `Bearer ${key}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const revoked = await admin(t.url, 'POST', '/admin/v1/keys/short-lived/revoke', { reason: 'laptop lost' });
    assert.equal(revoked.status, 200, JSON.stringify(revoked.json));
    assert.deepEqual(revoked.json['revoked'], ['short-lived']);

    const next = await rawPost(`${t.url}/mcp`, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: {} }, headers);
    assert.equal(next.status, 401);
    const error = errorOf(next);
    assert.equal(error.code, -32036);
    assert.equal(error.data?.['errorCode'], 'ATTEST_KEY_REVOKED');
    assert.match(error.message, /API key "short-lived" was revoked at .* \(laptop lost\)/);
    const events = await t.events();
    assert.ok(events.some((e) => e.type === 'SessionClosed' && e.stream === `session-${sessionId}` && e.data.reason === 'key revoked'));
    assert.ok(events.some((e) => e.type === 'KeyRevoked' && e.data.scope === 'key' && e.data.keyId === 'short-lived' && e.actor.id === 'root-admin'));
  });

  it('revoking a team revokes every key under it and nothing else', { timeout: 60_000 }, async () => {
    const keys: Record<string, string> = {};
    for (const [id, team] of [['blue-1', 'blue'], ['blue-2', 'blue'], ['green-1', 'green']] as const) {
      keys[id] = String((await admin(t.url, 'POST', '/admin/v1/keys', { id, tenant: 'acme', team })).json['key']);
      issued.push(keys[id]);
    }
    const result = await admin(t.url, 'POST', '/admin/v1/keys/revoke', { tenant: 'acme', team: 'blue', reason: 'team disbanded' });
    assert.deepEqual((result.json['revoked'] as string[]).sort(), ['blue-1', 'blue-2']);
    assert.equal((await tryKey(t.url, keys['blue-1'] ?? '')).errorCode, 'ATTEST_KEY_REVOKED');
    assert.equal((await tryKey(t.url, keys['blue-2'] ?? '')).errorCode, 'ATTEST_KEY_REVOKED');
    assert.equal((await tryKey(t.url, keys['green-1'] ?? '')).status, 200);
    assert.equal((await tryKey(t.url, AGENT_KEY)).status, 200, 'the config key of team red is untouched');
  });

  it('the CLI issues, lists, shows and revokes keys on the running gateway', { timeout: 120_000 }, async () => {
    const env = { ATTEST_ADMIN_KEY: ADMIN_KEY };
    const issue = await cli(['keys', 'issue', '--url', t.url, '--tenant', 'acme', '--team', 'cli', '--role', 'dev', '--id', 'cli-bot', '--ttl', '3600'], env);
    assert.equal(issue.code, 0, issue.stderr);
    const key = /^key:\s+(atk_\S+)$/m.exec(issue.stdout)?.[1];
    assert.ok(key, issue.stdout);
    issued.push(key);
    assert.equal((await tryKey(t.url, key)).status, 200);

    const list = await cli(['keys', 'list', '--url', t.url, '--tenant', 'acme', '--team', 'cli', '--json'], env);
    assert.equal(list.code, 0, list.stderr);
    const listed = JSON.parse(list.stdout) as { keys: { id: string; status: string; roles: string[]; expiresAt?: string }[] };
    assert.deepEqual(listed.keys.map((k) => [k.id, k.status, k.roles]), [['cli-bot', 'active', ['dev']]]);
    assert.ok(listed.keys[0]?.expiresAt !== undefined);
    assert.equal(list.stdout.includes(key), false);
    const show = await cli(['keys', 'show', '--url', t.url, 'cli-bot'], env);
    assert.match(show.stdout, /^cli-bot\s+active\s+issued\s+tenant=acme team=cli roles=dev expires=/);

    const revoke = await cli(['keys', 'revoke', '--url', t.url, 'cli-bot', '--reason', 'done'], env);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stdout, /revoked: cli-bot/);
    assert.equal((await tryKey(t.url, key)).errorCode, 'ATTEST_KEY_REVOKED');

    const notAdmin = await cli(['keys', 'list', '--url', t.url], { ATTEST_ADMIN_KEY: AGENT_KEY });
    assert.equal(notAdmin.code, 1);
    assert.match(notAdmin.stderr, /needs the role "attest:admin" \(HTTP 403, ATTEST_FORBIDDEN -32035\)/);
    const noKey = await cli(['keys', 'list', '--url', t.url], { ATTEST_ADMIN_KEY: '' });
    assert.equal(noKey.code, 2);
    assert.match(noKey.stderr, /ATTEST_ADMIN_KEY must hold/);
    const offline = await cli(['keys', 'new'], {});
    assert.equal(offline.code, 0);
    assert.match(offline.stdout, /^key: {2}atk_/);
  });

  it('a restart keeps issued keys and keeps revoked keys revoked', { timeout: 90_000 }, async () => {
    const before = (await admin(t.url, 'GET', '/admin/v1/keys')).json['keys'];
    await t.close();
    t = await start();
    assert.deepEqual((await admin(t.url, 'GET', '/admin/v1/keys')).json['keys'], before, 'the rebuilt projection lists the same keys, states and times');
    assert.equal((await tryKey(t.url, issued[0] ?? '')).status, 200, 'red-bot still works');
    assert.equal((await tryKey(t.url, issued[1] ?? '')).errorCode, 'ATTEST_KEY_REVOKED', 'short-lived still revoked');
    assert.equal((await tryKey(t.url, issued[2] ?? '')).errorCode, 'ATTEST_KEY_REVOKED', 'blue-1 still revoked');
    assert.equal((await tryKey(t.url, issued[4] ?? '')).status, 200, 'green-1 still works');
    const reused = await admin(t.url, 'POST', '/admin/v1/keys', { id: 'short-lived', tenant: 'acme' });
    assert.equal(reused.status, 400, 'a revoked id is not reused after a restart either');
  });

  it('an issued key expires (ATTEST_KEY_EXPIRED)', { timeout: 30_000 }, async () => {
    const key = String((await admin(t.url, 'POST', '/admin/v1/keys', { tenant: 'acme', ttlSeconds: 1 })).json['key']);
    issued.push(key);
    assert.equal((await tryKey(t.url, key)).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const expired = await tryKey(t.url, key);
    assert.equal(expired.errorCode, 'ATTEST_KEY_EXPIRED');
    assert.equal(expired.code, -32031);
  });

  it('the bytes of the log never contain an issued key or the admin key', async () => {
    const parts: Buffer[] = [];
    for (const entry of await readdir(logDir, { recursive: true, withFileTypes: true })) {
      if (entry.isFile()) parts.push(await readFile(path.join(entry.parentPath, entry.name)));
    }
    const bytes = Buffer.concat(parts);
    assert.ok(bytes.includes('KeyIssued') && bytes.includes('KeyRevoked'), 'the key events are in the files read');
    assert.ok(issued.length >= 7);
    for (const key of [...issued, ADMIN_KEY, AGENT_KEY]) {
      assert.equal(bytes.includes(key), false, 'a key in the log');
      assert.equal(bytes.includes(key.slice(4)), false, 'a key body in the log');
    }
    assert.ok(bytes.includes(hashApiKey(issued[0] ?? '')), 'the hash is what the log keeps');
  });
});
