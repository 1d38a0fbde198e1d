/**
 * Governance through the real gateway (the policy section of the config): CEL rules over the
 * principal, tool and arguments, deny by default, tools/list showing only what may be called,
 * a rate limit, a budget that survives a restart, and the loop guard — each refusal a precise
 * JSON-RPC error, each decision recorded with its rule id and the policy bundle hash.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { hashApiKey } from '#gateway';
import { errorOf, rawInitialize, rawPost } from './support/raw-mcp.ts';
import type { RawResponse } from './support/raw-mcp.ts';
import { fixtureStdioUpstream, startTestGateway } from './support/gateway.ts';
import type { TestGateway } from './support/gateway.ts';

const KEY = 'atk_test_key_0123456789';

const POLICY = {
  defaultEffect: 'deny',
  rules: [
    { id: 'no-secrets', effect: 'deny', when: "tool == 'echo' && args.text.contains('secret')" },
    { id: 'ops-may-fail', effect: 'allow', when: "tool == 'fail' && 'ops' in principal.roles" },
    { id: 'everyday-tools', effect: 'allow', when: "tool in ['echo', 'add']" },
  ],
  rateLimits: [{ id: 'add-per-key', scope: 'key', match: "tool == 'add'", capacity: 3, refillPerSecond: 0.001 }],
  budgets: [{ id: 'daily-echo', scope: 'tenant', period: 'day', maxCalls: 6, match: "tool == 'echo'" }],
  loopGuard: { maxRepeats: 3, windowMs: 60_000 },
};

describe('governance through the gateway', () => {
  const dirs: string[] = [];
  let t: TestGateway | undefined;
  after(async () => {
    await t?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function start(logDir: string): Promise<{ gw: TestGateway; call: (id: number, name: string, args: Record<string, unknown>) => Promise<RawResponse>; list: () => Promise<string[]> }> {
    const gw = await startTestGateway({
      upstreams: { fixture: fixtureStdioUpstream() },
      keys: [{ id: 'test', hash: hashApiKey(KEY), tenant: 't1', roles: ['dev'] }],
      logDir,
      policy: POLICY,
    });
    const mcp = `${gw.url}/mcp`;
    const { sessionId, result } = await rawInitialize(mcp, gw.headers);
    const headers = { ...gw.headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': String(result['protocolVersion']) };
    return {
      gw,
      call: (id, name, args) => rawPost(mcp, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: `fixture__${name}`, arguments: args } }, headers),
      list: async () => {
        const r = await rawPost(mcp, { jsonrpc: '2.0', id: 999, method: 'tools/list', params: {} }, headers);
        return ((r.messages[0]?.['result'] as { tools: { name: string }[] }).tools ?? []).map((tool) => tool.name);
      },
    };
  }

  it('applies rules, limits and the loop guard; a restart keeps the budget spent', { timeout: 90_000 }, async () => {
    const base = await mkdtemp(path.join(os.tmpdir(), 'attest-gov-'));
    dirs.push(base);
    const logDir = path.join(base, 'log');
    const first = await start(logDir);
    t = first.gw;

    assert.deepEqual((await first.list()).sort(), ['fixture__add', 'fixture__echo'], 'tools/list shows only what the policy may allow');

    const ok = await first.call(1, 'echo', { text: 'hello' });
    assert.ok(ok.messages[0]?.['result'], ok.text);
    const secret = errorOf(await first.call(2, 'echo', { text: 'my secret' }));
    assert.equal(secret.code, -32010);
    assert.equal(secret.data?.['ruleId'], 'no-secrets');
    const unlisted = errorOf(await first.call(3, 'fail', {}));
    assert.equal(unlisted.code, -32010);
    assert.equal(unlisted.data?.['ruleId'], 'default', 'deny by default: the dev key has no ops role');

    for (let i = 0; i < 3; i++) assert.ok((await first.call(10 + i, 'add', { a: i, b: 1 })).messages[0]?.['result']);
    const limited = errorOf(await first.call(13, 'add', { a: 9, b: 9 }));
    assert.equal(limited.code, -32020);
    assert.equal(limited.data?.['limitId'], 'add-per-key');
    assert.equal(limited.data?.['limit'], 3);
    assert.ok(Number(limited.data?.['retryAfterMs']) > 0);

    for (let i = 0; i < 3; i++) assert.ok((await first.call(20 + i, 'echo', { text: 'same' })).messages[0]?.['result']);
    const loop = errorOf(await first.call(23, 'echo', { text: 'same' }));
    assert.equal(loop.code, -32022, `a fourth identical call within the window (maxRepeats 3): ${JSON.stringify(loop)}`);

    // Echo calls counted so far: hello + same × 3 (the looped one was refused, not counted) = 4.
    for (let i = 0; i < 2; i++) assert.ok((await first.call(30 + i, 'echo', { text: `n${i}` })).messages[0]?.['result']);
    const spent = errorOf(await first.call(40, 'echo', { text: 'one too many' }));
    assert.equal(spent.code, -32021);
    assert.equal(spent.data?.['limitId'], 'daily-echo');
    assert.match(String(spent.data?.['resetsAt']), /T00:00:00/);

    const events = await first.gw.events();
    const decisions = events.filter((e) => e.type === 'DecisionMade' && e.data.stage !== 'gateway');
    assert.ok(decisions.length > 0 && decisions.every((e) => e.type === 'DecisionMade' && /^sha256:/.test(e.data.policyHash ?? '')), 'every decision names the policy bundle hash');
    assert.ok(events.some((e) => e.type === 'DecisionMade' && e.data.decision === 'deny' && e.data.stage === 'rate-limit' && e.data.enforcement?.trip?.limitId === 'add-per-key'));
    await first.gw.close();
    t = undefined;

    const second = await start(logDir);
    t = second.gw;
    const still = errorOf(await second.call(50, 'echo', { text: 'after restart' }));
    assert.equal(still.code, -32021, 'a restart never resets a budget');
    const stillLimited = errorOf(await second.call(51, 'add', { a: 1, b: 2 }));
    assert.equal(stillLimited.code, -32020, 'nor a rate-limit bucket');
  });

  it('a policy whose rule does not compile is refused at start, naming the rule', async () => {
    await assert.rejects(
      startTestGateway({ upstreams: { fixture: fixtureStdioUpstream() }, policy: { rules: [{ id: 'broken', effect: 'allow', when: 'tool ==' }] } }),
      /rules\[0\] "broken"/,
    );
  });
});
