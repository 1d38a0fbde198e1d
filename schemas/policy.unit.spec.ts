import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyError, parsePolicyBundle, policyBundleHash } from './index.ts';
import { DecisionEnforcementSchema } from './events.ts';

function rejection(raw: unknown): string {
  try {
    parsePolicyBundle(raw);
  } catch (error) {
    assert.ok(error instanceof PolicyError, `expected PolicyError, got ${String(error)}`);
    assert.equal(error.code, 'ATTEST_POLICY_INVALID');
    return error.message;
  }
  assert.fail('policy was accepted');
}

describe('policy bundle schema', () => {
  it('applies defaults: deny by default, no limits, loop guard on, and freezes the result', () => {
    const { bundle, hash } = parsePolicyBundle({});
    assert.equal(bundle.defaultEffect, 'deny');
    assert.deepEqual(bundle.rules, []);
    assert.deepEqual(bundle.costs, {});
    assert.deepEqual(bundle.loopGuard, { maxRepeats: 20, windowMs: 60_000 });
    assert.match(hash, /^sha256:[0-9a-f]{64}$/);
    assert.ok(Object.isFrozen(bundle) && Object.isFrozen(bundle.rules));
  });

  it('accepts every section and turns the loop guard off with null', () => {
    const { bundle } = parsePolicyBundle({
      rules: [{ id: 'admins', description: 'admins may do anything', effect: 'allow', when: '"admin" in principal.roles' }],
      defaultEffect: 'allow',
      rateLimits: [{ id: 'per-key', scope: 'key', capacity: 10, refillPerSecond: 0.5, match: 'tool != "ping"' }],
      budgets: [{ id: 'team-day', scope: 'team', period: 'day', maxCalls: 100, maxCost: 50.5 }],
      costs: { 'search__*': 5, '*': 1, 'fs__read_file': 0 },
      loopGuard: null,
    });
    assert.equal(bundle.loopGuard, null);
    assert.equal(bundle.rateLimits[0]?.refillPerSecond, 0.5);
    assert.equal(bundle.costs['fs__read_file'], 0);
  });

  it('rejects unknown keys, naming the path', () => {
    assert.match(rejection({ rules: [{ id: 'r', effect: 'allow', when: 'true', whne: 'x' }] }), /rules\[0\]: .*whne/);
    assert.match(rejection({ defaultEfect: 'allow' }), /defaultEfect/);
  });

  it('names the path and what is allowed for wrong values', () => {
    assert.match(rejection({ rules: [{ id: 'r', effect: 'maybe', when: 'true' }] }), /rules\[0\]\.effect: .*"allow"\|"deny"\|"hold"/);
    assert.match(rejection({ defaultEffect: 'hold' }), /defaultEffect/);
    assert.match(rejection({ rules: [{ id: 'r', effect: 'allow', when: '   ' }] }), /rules\[0\]\.when: a CEL expression/);
    assert.match(rejection({ rateLimits: [{ id: 'r', scope: 'session', capacity: 1, refillPerSecond: 1 }] }), /rateLimits\[0\]\.scope/);
    assert.match(rejection({ rateLimits: [{ id: 'r', scope: 'key', capacity: 0, refillPerSecond: 1 }] }), /rateLimits\[0\]\.capacity/);
    assert.match(rejection({ rateLimits: [{ id: 'r', scope: 'key', capacity: 1, refillPerSecond: 0 }] }), /rateLimits\[0\]\.refillPerSecond/);
    assert.match(rejection({ budgets: [{ id: 'b', scope: 'tool', period: 'day', maxCalls: 1 }] }), /budgets\[0\]\.scope/);
    assert.match(rejection({ budgets: [{ id: 'b', scope: 'key', period: 'week', maxCalls: 1 }] }), /budgets\[0\]\.period/);
    assert.match(rejection({ budgets: [{ id: 'b', scope: 'key', period: 'day' }] }), /budgets\[0\]\.maxCalls: a budget needs maxCalls, maxCost or both/);
    assert.match(rejection({ costs: { fs_read: 1 } }), /costs\.fs_read.*<upstream>__<tool>/s);
    assert.match(rejection({ costs: { fs__read: -1 } }), /costs\.fs__read/);
    assert.match(rejection({ loopGuard: { maxRepeats: 0, windowMs: 1000 } }), /loopGuard\.maxRepeats/);
  });

  it('rejects duplicate and reserved ids', () => {
    assert.match(rejection({ rules: [{ id: 'a', effect: 'allow', when: 'true' }, { id: 'a', effect: 'deny', when: 'true' }] }), /rules\[1\]\.id: duplicate rule id "a"/);
    assert.match(
      rejection({ rateLimits: [{ id: 'x', scope: 'key', capacity: 1, refillPerSecond: 1 }], budgets: [{ id: 'x', scope: 'key', period: 'day', maxCalls: 1 }] }),
      /budgets\[0\]\.id: duplicate limit id "x"/,
    );
    assert.match(rejection({ rules: [{ id: 'default', effect: 'allow', when: 'true' }] }), /rules\[0\]\.id: "default" is reserved/);
    assert.match(rejection({ budgets: [{ id: 'loop-guard', scope: 'key', period: 'day', maxCalls: 1 }] }), /budgets\[0\]\.id: "loop-guard" is reserved/);
  });

  it('hashes the validated bundle canonically: key order does not matter, content does', () => {
    const a = parsePolicyBundle({ defaultEffect: 'deny', rules: [{ id: 'r', effect: 'allow', when: 'true' }] });
    const b = parsePolicyBundle({ rules: [{ when: 'true', effect: 'allow', id: 'r' }] });
    const c = parsePolicyBundle({ rules: [{ id: 'r', effect: 'deny', when: 'true' }] });
    assert.equal(a.hash, b.hash);
    assert.notEqual(a.hash, c.hash);
    assert.equal(policyBundleHash(a.bundle), a.hash);
  });

  it('describes what a decision records about enforcement', () => {
    const ok = DecisionEnforcementSchema.safeParse({
      cost: 2,
      limits: ['per-key'],
      argumentsDigest: `sha256:${'a'.repeat(64)}`,
      trip: { kind: 'loop', limitId: 'loop-guard', limit: 3, count: 4, windowMs: 1000, retryAfterMs: 10, resetsAt: '2025-01-01T00:00:00.000Z', reason: 'r' },
    });
    assert.ok(ok.success);
    assert.equal(DecisionEnforcementSchema.safeParse({ cost: 1, limits: [], argumentsDigest: 'nope' }).success, false);
  });

  it('takes approval settings on a hold rule only, with documented defaults', () => {
    const { bundle } = parsePolicyBundle({ rules: [
      { id: 'pay', effect: 'hold', when: 'true', approval: { approverRoles: ['payments-lead'] } },
      { id: 'plain-hold', effect: 'hold', when: 'true' },
    ] });
    assert.deepEqual(bundle.rules[0]?.approval, { timeoutMs: 300_000, approverRoles: ['payments-lead'] });
    assert.equal(bundle.rules[1]?.approval, undefined, 'absent stays absent (the bundle hash of older policies is unchanged); the gateway applies the defaults');
    assert.match(rejection({ rules: [{ id: 'a', effect: 'allow', when: 'true', approval: { timeoutMs: 5 } }] }), /rules\[0\]\.approval: approval settings belong on a rule with effect "hold"/);
    assert.match(rejection({ rules: [{ id: 'h', effect: 'hold', when: 'true', approval: { approverRoles: [] } }] }), /rules\[0\]\.approval\.approverRoles/);
    assert.match(rejection({ rules: [{ id: 'h', effect: 'hold', when: 'true', approval: { timeoutMs: 0 } }] }), /rules\[0\]\.approval\.timeoutMs/);
  });
});
