/**
 * The decision pipeline of a tools/call, stage by stage (each alone) and as a whole (order: the
 * first refusal decides, with its stage name and rule id).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parsePolicyBundle } from '#schemas';
import type { Principal } from '#schemas';
import { ToolAccess } from '../auth/api-keys.ts';
import { Governance } from '../governance.ts';
import { approvalStage, decideToolCall, inputSchemaStage, limitsStage, policyStage, toolAccessStage, toolPinningStage } from './tool-call.ts';
import type { Findings, ToolCall, ToolCallStage } from './tool-call.ts';

const AGENT: Principal = { kind: 'apiKey', id: 'bot', tenant: 't1', roles: ['dev'] };
const call = (tool: string, args: unknown = {}): ToolCall => ({ principal: AGENT, upstream: 'fx', tool, args, now: Date.parse('2026-12-04T10:00:00.000Z') });
const SO_FAR: Findings = { ruleId: 'key:k:allowTools[0]', reason: 'tool matches allowTools' };
const qualify = (upstream: string, tool: string): string => `${upstream}__${tool}`;
const governance = (policy: unknown): Governance => new Governance(parsePolicyBundle(policy).bundle);

describe('decision pipeline stages, each alone', () => {
  it('tool-pinning: a quarantined tool is refused, naming pin and observed hash; a rejected definition by its own rule', () => {
    const q = { upstream: 'fx', tool: 'echo', pinnedHash: `sha256:${'a'.repeat(64)}`, observedHash: `sha256:${'b'.repeat(64)}`, rejected: false } as const;
    const stage = toolPinningStage((_u, tool) => (tool === 'echo' ? q : undefined));
    assert.deepEqual(stage.decide(call('add'), SO_FAR), { kind: 'pass' });
    const refused = stage.decide(call('echo'), SO_FAR);
    assert.ok(refused.kind === 'deny' && refused.stage === 'tool-pinning' && refused.ruleId === 'tool-definition-changed' && refused.error.code === 'ATTEST_TOOL_QUARANTINED');
    const rejected = toolPinningStage(() => ({ ...q, rejected: true })).decide(call('echo'), SO_FAR);
    assert.ok(rejected.kind === 'deny' && rejected.ruleId === 'tool-definition-rejected');
  });

  it('input-schema: arguments the schema refuses are INVALID_PARAMS naming the tool', () => {
    const stage = inputSchemaStage((_u, _t, args) => ((args as { n?: unknown }).n === 'x' ? 'n must be a number' : undefined));
    assert.equal(stage.decide(call('add', { n: 1 }), SO_FAR).kind, 'pass');
    const refused = stage.decide(call('add', { n: 'x' }), SO_FAR);
    assert.ok(refused.kind === 'deny' && refused.stage === 'input-schema' && refused.ruleId === 'tool-input-schema' && /Invalid arguments for tool "add": n must be a number/.test(refused.error.message));
  });

  it('tool-access: the credential’s lists, deny first; what allowed is passed on', () => {
    const stage = toolAccessStage(() => new ToolAccess('key:k', 'key "k"', ['fx__*'], ['fx__delete']), qualify);
    const passed = stage.decide(call('read'), SO_FAR);
    assert.deepEqual(passed, { kind: 'pass', found: { ruleId: 'key:k:allowTools[0]', reason: 'tool "fx__read" matches allowTools pattern "fx__*"' } });
    const refused = stage.decide(call('delete'), SO_FAR);
    assert.ok(refused.kind === 'deny' && refused.stage === 'tool-access' && refused.ruleId === 'key:k:denyTools[0]');
  });

  it('policy: first match decides; a hold is carried on with its approval settings; no policy decides nothing', () => {
    const g = governance({ defaultEffect: 'allow', rules: [{ id: 'no-delete', effect: 'deny', when: "tool == 'delete'" }, { id: 'hold-pay', effect: 'hold', when: "tool == 'pay'", approval: { timeoutMs: 1000 } }] });
    const stage = policyStage(() => g);
    const refused = stage.decide(call('delete'), SO_FAR);
    assert.ok(refused.kind === 'deny' && refused.stage === 'policy' && refused.ruleId === 'no-delete');
    const held = stage.decide(call('pay'), SO_FAR);
    assert.ok(held.kind === 'pass' && held.found?.hold?.ruleId === 'hold-pay' && held.found.hold.approval.timeoutMs === 1000);
    const allowed = stage.decide(call('read'), SO_FAR);
    assert.ok(allowed.kind === 'pass' && allowed.found?.ruleId === 'default' && allowed.found.reason?.startsWith(SO_FAR.reason));
    assert.deepEqual(policyStage(() => undefined).decide(call('delete'), SO_FAR), { kind: 'pass' });
  });

  it('limits: the charge a call would take, or the limit that refuses it, by its own stage (loop guard, rate, budget)', () => {
    const g = governance({ defaultEffect: 'allow', budgets: [{ id: 'none-left', scope: 'tenant', period: 'day', maxCalls: 1, match: "tool == 'echo'" }], loopGuard: { maxRepeats: 1, windowMs: 60_000 } });
    const stage = limitsStage(() => g);
    const passed = stage.decide(call('echo', { a: 1 }), SO_FAR);
    assert.ok(passed.kind === 'pass' && passed.found?.meter?.limits.includes('none-left') && /^sha256:/.test(passed.found.enforcement?.argumentsDigest ?? ''));
    const decision = { id: '0190f000-0000-7000-8000-000000000001', occurredAt: new Date(call('echo').now).toISOString() };
    if (passed.kind === 'pass' && passed.found?.meter !== undefined) g.charge(passed.found.meter, decision as never).confirm();
    const loop = stage.decide(call('echo', { a: 1 }), SO_FAR);
    assert.ok(loop.kind === 'deny' && loop.stage === 'loop-guard' && loop.ruleId === 'loop-guard');
    const budget = stage.decide(call('echo', { a: 2 }), SO_FAR);
    assert.ok(budget.kind === 'deny' && budget.stage === 'budget' && budget.ruleId === 'none-left' && budget.error.code === 'ATTEST_BUDGET_EXHAUSTED' && budget.enforcement?.trip?.kind === 'budget');
  });

  it('approval: a held call where this gateway cannot hold calls is refused (stdio); otherwise it passes', () => {
    const held: Findings = { ...SO_FAR, hold: { ruleId: 'hold-pay', reason: 'payments need a person', approval: { timeoutMs: 1000, approverRoles: ['lead'] } } };
    assert.equal(approvalStage(() => true).decide(call('pay'), held).kind, 'pass');
    const refused = approvalStage(() => false).decide(call('pay'), held);
    assert.ok(refused.kind === 'deny' && refused.stage === 'approval' && refused.error.code === 'ATTEST_APPROVAL_REQUIRED');
    assert.equal(approvalStage(() => false).decide(call('read'), SO_FAR).kind, 'pass');
  });
});

describe('decision pipeline, as a whole', () => {
  const g = governance({ defaultEffect: 'allow', rules: [{ id: 'hold-pay', effect: 'hold', when: "tool == 'pay'" }], rateLimits: [{ id: 'slow', scope: 'key', capacity: 5, refillPerSecond: 0.001 }] });
  const stages: ToolCallStage[] = [
    toolPinningStage(() => undefined),
    inputSchemaStage(() => undefined),
    toolAccessStage(() => new ToolAccess('key:k', 'key "k"', ['*'], ['fx__secret']), qualify),
    policyStage(() => g),
    limitsStage(() => g),
    approvalStage(() => true),
  ];

  it('allows with the rule, the reasons of access and policy, and the charge; holds with its approval; the first refusal ends it', () => {
    const allowed = decideToolCall(call('read'), stages);
    assert.ok(allowed.kind === 'allow' && allowed.ruleId === 'default' && allowed.reason.includes('allowTools') && allowed.meter !== undefined && allowed.enforcement?.limits.includes('slow'));
    const held = decideToolCall(call('pay'), stages);
    assert.ok(held.kind === 'hold' && held.ruleId === 'hold-pay' && /^sha256:/.test(held.argumentsDigest));
    const refused = decideToolCall(call('secret'), stages);
    assert.ok(refused.kind === 'deny' && refused.stage === 'tool-access', 'access refuses before policy and limits are asked');
  });
});
