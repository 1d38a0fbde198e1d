/**
 * Hot reload through the admin API (POST /admin/v1/config/reload) on a real gateway with a real
 * config file: bad configs (invalid YAML, invalid schema, a changed port, a policy that does not
 * compile) are rejected with their issues, recorded as ConfigRejected, and the old policy keeps
 * deciding; a good one is recorded as ConfigApplied and decides the next call of a session that
 * was already open, while a call decided before it finishes; a budget spent before the reload
 * stays spent; a key added to the file works at once.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { hashApiKey, startGateway } from '#gateway';
import type { Gateway } from '#gateway';
import type { AttestConfigInput, AttestEvent } from '#schemas';
import { loadConfigFile } from '../cli/config-file.ts';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import { fixtureStdioUpstream } from './support/gateway.ts';
import { testLogger } from './harness/log.ts';

const AGENT = 'atk_reload_agent_key_0123456789';
const ADMIN = 'atk_reload_admin_key_0123456789';
const LATE = 'atk_reload_late_key_0123456789';

const POLICY_V1 = {
  defaultEffect: 'deny',
  rules: [{ id: 'everyday', effect: 'allow', when: "tool in ['echo', 'add', 'slow']" }],
  budgets: [{ id: 'adds', scope: 'tenant', period: 'day', maxCalls: 4, match: "tool == 'add'" }],
};
const POLICY_V2 = {
  defaultEffect: 'deny',
  rules: [
    { id: 'no-echo-now', effect: 'deny', when: "tool == 'echo'" },
    { id: 'everyday', effect: 'allow', when: "tool in ['echo', 'add', 'slow']" },
  ],
  budgets: [{ id: 'adds', scope: 'tenant', period: 'day', maxCalls: 3, match: "tool == 'add'" }],
};

function configDoc(logDir: string, overrides: { policy?: unknown; port?: number; keys?: unknown[]; upstream?: Record<string, unknown> } = {}): Record<string, unknown> {
  return {
    gateway: { port: overrides.port ?? 0 },
    log: { backend: 'file', dir: logDir },
    auth: {
      keys: overrides.keys ?? [
        { id: 'agent', hash: hashApiKey(AGENT), tenant: 't1' },
        { id: 'admin', hash: hashApiKey(ADMIN), tenant: 'ops', roles: ['attest:admin'] },
      ],
    },
    policy: overrides.policy ?? POLICY_V1,
    upstreams: { fixture: { ...fixtureStdioUpstream(), ...overrides.upstream } },
  };
}

describe('config hot reload via the admin API', () => {
  let dir: string;
  let file: string;
  let logDir: string;
  let gateway: Gateway;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'attest-reload-'));
    file = path.join(dir, 'attest.yaml');
    logDir = path.join(dir, 'log');
    await writeFile(file, stringify(configDoc(logDir)));
    const loaded = loadConfigFile(file);
    gateway = await startGateway(loaded.config, { port: 0, logger: testLogger(), configHash: loaded.configHash, reloadFrom: () => loadConfigFile(file) });
  });
  after(async () => {
    await gateway.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function reload(key: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${gateway.url}/admin/v1/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, signal: AbortSignal.timeout(30_000) });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  async function events(): Promise<AttestEvent[]> {
    const out: AttestEvent[] = [];
    for await (const { event } of gateway.log.read()) out.push(event);
    return out;
  }

  it('rejects bad configs keeping the old one; applies a good one to an open session without dropping it', { timeout: 90_000 }, async () => {
    const mcp = `${gateway.url}/mcp`;
    const { sessionId, result } = await rawInitialize(mcp, { authorization: `Bearer ${AGENT}` });
    const headers = { authorization: `Bearer ${AGENT}`, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    const call = (id: number, name: string, args: Record<string, unknown>) => rawPost(mcp, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: `fixture__${name}`, arguments: args } }, headers);
    const echoAllowed = async (id: number): Promise<void> => {
      const r = await call(id, 'echo', { text: 'still here' });
      assert.ok(r.messages[0]?.['result'], `echo should be allowed: ${r.text}`);
    };

    await echoAllowed(2);
    for (let i = 0; i < 2; i++) assert.ok((await call(3 + i, 'add', { a: i, b: 1 })).messages[0]?.['result'], 'two adds spent under the first policy');

    // Only an admin may reload.
    const forbidden = await reload(AGENT);
    assert.equal(forbidden.status, 403);
    assert.equal((forbidden.body['error'] as { data: Record<string, unknown> }).data['errorCode'], 'ATTEST_FORBIDDEN');

    const bad: { name: string; text: string; issue: RegExp }[] = [
      { name: 'invalid YAML', text: 'log: [unclosed\n', issue: /not valid YAML/ },
      { name: 'invalid schema', text: stringify(configDoc(logDir, { upstream: { timeoutMs: -5 } })), issue: /^upstreams\.fixture\.timeoutMs: / },
      { name: 'changed port', text: stringify(configDoc(logDir, { port: 18_787 })), issue: /^gateway\.port: cannot change while the gateway runs/ },
      { name: 'policy that does not compile', text: stringify(configDoc(logDir, { policy: { defaultEffect: 'deny', rules: [{ id: 'broken', effect: 'allow', when: 'tool ==' }] } })), issue: /^policy: / },
    ];
    for (const [i, attempt] of bad.entries()) {
      await writeFile(file, attempt.text);
      const rejected = await reload(ADMIN);
      assert.equal(rejected.status, 422, `${attempt.name}: ${JSON.stringify(rejected.body)}`);
      assert.equal(rejected.body['applied'], false);
      const error = rejected.body['error'] as { code: number; data: { errorCode: string; issues: string[] } };
      assert.equal(error.code, -32040);
      assert.equal(error.data.errorCode, 'ATTEST_CONFIG_REJECTED');
      assert.ok(error.data.issues.some((issue) => attempt.issue.test(issue)), `${attempt.name}: ${error.data.issues.join(' | ')}`);
      assert.ok(!error.data.issues.join('\n').includes('[unclosed'), 'issues name places, they do not copy the file');
      await echoAllowed(10 + i);
    }
    const late = await rawPost(mcp, { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'late', version: '0' } } }, { authorization: `Bearer ${LATE}` });
    assert.equal(late.status, 401, 'the late key is not configured yet');

    // A call decided under the old policy, still running when the new one arrives.
    const slow = call(20, 'slow', { steps: 4, delayMs: 250, tag: 'across-reload' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await writeFile(file, stringify(configDoc(logDir, {
      policy: POLICY_V2,
      keys: [
        { id: 'agent', hash: hashApiKey(AGENT), tenant: 't1', denyTools: ['fixture__slow'] },
        { id: 'admin', hash: hashApiKey(ADMIN), tenant: 'ops', roles: ['attest:admin'] },
        { id: 'late', hash: hashApiKey(LATE), tenant: 't2' },
      ],
    })));
    const applied = await reload(ADMIN);
    assert.equal(applied.status, 200, JSON.stringify(applied.body));
    assert.equal(applied.body['applied'], true);
    assert.deepEqual(applied.body['changed'], ['auth', 'policy']);
    const newPolicyHash = applied.body['policyHash'];
    assert.match(String(newPolicyHash), /^sha256:[0-9a-f]{64}$/);

    const slowResult = (await slow).messages.find((m) => m['id'] === 20)?.['result'] as { content: { text: string }[] } | undefined;
    assert.equal(slowResult?.content[0]?.text, 'completed 4 steps', 'the call decided before the reload finished');

    const denied = errorOf(await call(21, 'echo', { text: 'now denied' }));
    assert.equal(denied.code, -32010);
    assert.equal(denied.data?.['ruleId'], 'no-echo-now', 'the open session decides with the new policy');
    assert.ok((await call(22, 'add', { a: 1, b: 1 })).messages[0]?.['result'], 'third add: within the new budget of 3');
    const exhausted = errorOf(await call(23, 'add', { a: 1, b: 2 }));
    assert.equal(exhausted.code, -32021, 'the two adds spent before the reload still count');
    assert.equal(exhausted.data?.['limitId'], 'adds');
    assert.ok((await rawInitialize(mcp, { authorization: `Bearer ${LATE}` })).sessionId, 'a key added by the reload works at once');
    const keyDenied = errorOf(await call(24, 'slow', { steps: 1, delayMs: 0 }));
    assert.equal(keyDenied.code, -32010);
    assert.equal(keyDenied.data?.['ruleId'], 'key:agent:denyTools[0]', "the key's new tool lists apply to the session it opened before the reload");

    const log = await events();
    const rejectedEvents = log.filter((e) => e.type === 'ConfigRejected');
    assert.equal(rejectedEvents.length, 4);
    for (const e of rejectedEvents) {
      assert.ok(e.type === 'ConfigRejected');
      assert.equal(e.actor.id, 'admin');
      assert.equal(e.data.trigger, 'admin');
      assert.ok(e.data.issues.length > 0);
    }
    const appliedEvents = log.filter((e) => e.type === 'ConfigApplied');
    assert.equal(appliedEvents.length, 1);
    const appliedEvent = appliedEvents[0];
    assert.ok(appliedEvent?.type === 'ConfigApplied');
    assert.equal(appliedEvent.data.policyHash, newPolicyHash);
    assert.equal(appliedEvent.data.configHash, applied.body['configHash']);
    const started = log.find((e) => e.type === 'GatewayStarted');
    assert.ok(started?.type === 'GatewayStarted');
    assert.equal(appliedEvent.data.previousPolicyHash, started.data.policyHash);
    assert.equal(appliedEvent.data.previousConfigHash, started.data.configHash);
    const decisions = log.filter((e) => e.stream === `session-${sessionId}` && e.type === 'DecisionMade');
    const echoDenial = decisions.find((e) => e.type === 'DecisionMade' && e.data.ruleId === 'no-echo-now');
    assert.ok(echoDenial?.type === 'DecisionMade');
    assert.equal(echoDenial.data.policyHash, newPolicyHash);
    assert.equal(log.filter((e) => e.type === 'SessionClosed' && e.stream === `session-${sessionId}`).length, 0, 'the session was not dropped');
  });

  it('a gateway started without a config file refuses to reload, saying so', { timeout: 30_000 }, async () => {
    const other = await startGateway(configDoc(path.join(dir, 'log-no-file')) as AttestConfigInput, { port: 0, logger: testLogger() });
    try {
      const response = await fetch(`${other.url}/admin/v1/config/reload`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } });
      assert.equal(response.status, 409);
      const body = (await response.json()) as { error: { code: number; data: { errorCode: string } } };
      assert.equal(body.error.code, -32041);
      assert.equal(body.error.data.errorCode, 'ATTEST_RELOAD_UNAVAILABLE');
      const recorded: string[] = [];
      for await (const { event } of other.log.read()) if (event.type === 'ConfigRejected') recorded.push(...event.data.issues);
      assert.match(recorded.join(' '), /started from a config object, not a file/);
    } finally {
      await other.close();
    }
  });
});
