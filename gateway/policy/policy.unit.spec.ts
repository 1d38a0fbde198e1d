import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { PolicyError, parsePolicyBundle } from '#schemas';
import type { PolicyBundleInput, Principal } from '#schemas';
import { applicableLimits, compileExpression, compilePolicy, decide, isVisible, visibleTools } from './index.ts';
import type { PolicyRequest } from './index.ts';

const alice: Principal = Object.freeze({ kind: 'apiKey', id: 'k-alice', tenant: 'acme', team: 'eng', agent: 'claude', roles: Object.freeze(['dev']) });
const root: Principal = Object.freeze({ kind: 'jwt', id: 'sub-root', tenant: 'acme', roles: Object.freeze(['admin']) });
const T0 = Date.parse('2025-03-10T14:30:00.000Z');

function policyOf(input: PolicyBundleInput) {
  return compilePolicy(parsePolicyBundle(input).bundle);
}

function call(overrides: Partial<PolicyRequest> = {}): PolicyRequest {
  return { principal: alice, upstream: 'fs', tool: 'read_file', method: 'tools/call', args: { path: '/srv/data/a.txt' }, now: T0, ...overrides };
}

function compileError(input: PolicyBundleInput): string {
  try {
    policyOf(input);
  } catch (error) {
    assert.ok(error instanceof PolicyError, `expected PolicyError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('policy compiled');
}

describe('policy: decide', () => {
  it('gives each effect of the first matching rule, with rule id, reason and policy hash', () => {
    const policy = policyOf({
      rules: [
        { id: 'no-writes', effect: 'deny', when: 'tool == "write_file"', description: 'the file server is read-only' },
        { id: 'approve-delete', effect: 'hold', when: 'tool == "delete_file"' },
        { id: 'reads', effect: 'allow', when: 'tool.startsWith("read_")' },
      ],
    });
    const denied = decide(policy, call({ tool: 'write_file' }));
    assert.deepEqual(denied, { effect: 'deny', ruleId: 'no-writes', reason: 'rule "no-writes" (deny): the file server is read-only', policyHash: policy.hash });
    const held = decide(policy, call({ tool: 'delete_file' }));
    assert.equal(held.effect, 'hold');
    assert.equal(held.ruleId, 'approve-delete');
    assert.equal(held.reason, 'rule "approve-delete" (hold) matched: tool == "delete_file"');
    assert.equal(decide(policy, call()).effect, 'allow');
    assert.equal(decide(policy, call()).ruleId, 'reads');
    assert.match(policy.hash, /^sha256:[0-9a-f]{64}$/);
  });

  it('first match wins: an exception listed before a broad rule takes precedence, and not the other way round', () => {
    const exceptionFirst = policyOf({
      rules: [
        { id: 'admins', effect: 'allow', when: '"admin" in principal.roles' },
        { id: 'no-shell', effect: 'deny', when: 'upstream == "shell"' },
      ],
      defaultEffect: 'allow',
    });
    assert.equal(decide(exceptionFirst, call({ principal: root, upstream: 'shell' })).ruleId, 'admins');
    assert.equal(decide(exceptionFirst, call({ upstream: 'shell' })).effect, 'deny');

    const broadFirst = policyOf({
      rules: [
        { id: 'no-shell', effect: 'deny', when: 'upstream == "shell"' },
        { id: 'admins', effect: 'allow', when: '"admin" in principal.roles' },
      ],
      defaultEffect: 'allow',
    });
    assert.equal(decide(broadFirst, call({ principal: root, upstream: 'shell' })).ruleId, 'no-shell');
  });

  it('falls back to the default effect: deny unless configured otherwise', () => {
    const denyByDefault = policyOf({ rules: [{ id: 'only-fs', effect: 'allow', when: 'upstream == "fs"' }] });
    assert.deepEqual(decide(denyByDefault, call({ upstream: 'web' })), {
      effect: 'deny',
      ruleId: 'default',
      reason: 'no rule matched; the default effect is deny',
      policyHash: denyByDefault.hash,
    });
    const allowByDefault = policyOf({ defaultEffect: 'allow' });
    assert.equal(decide(allowByDefault, call()).effect, 'allow');
    assert.equal(decide(allowByDefault, call()).ruleId, 'default');
  });

  it('sees principal attributes: id, kind, tenant, team, agent, roles (team and agent "" when unset)', () => {
    const cases: [string, Principal, boolean][] = [
      ['principal.id == "k-alice"', alice, true],
      ['principal.kind == "jwt"', root, true],
      ['principal.kind == "jwt"', alice, false],
      ['principal.tenant == "acme"', alice, true],
      ['principal.team == "eng"', alice, true],
      ['principal.team == ""', root, true],
      ['principal.agent == "claude"', alice, true],
      ['principal.agent == ""', root, true],
      ['"admin" in principal.roles', root, true],
      ['"admin" in principal.roles', alice, false],
      ['principal.roles.exists(r, r.startsWith("de"))', alice, true],
      ['size(principal.roles) == 1', root, true],
    ];
    for (const [when, principal, matches] of cases) {
      const policy = policyOf({ rules: [{ id: 'r', effect: 'allow', when }] });
      assert.equal(decide(policy, call({ principal })).ruleId, matches ? 'r' : 'default', when);
    }
  });

  it('sees upstream, tool, method, args and now', () => {
    const cases: [string, Partial<PolicyRequest>, boolean][] = [
      ['upstream == "fs" && tool == "read_file"', {}, true],
      ['upstream == "fs" && tool == "read_file"', { tool: 'write_file' }, false],
      ['method == "prompts/get"', { method: 'prompts/get' }, true],
      ['args.path.startsWith("/srv/")', {}, true],
      ['args.path.startsWith("/etc/")', {}, false],
      ['args.path.matches("^/srv/[a-z]+/")', {}, true],
      ['has(args.recursive)', {}, false],
      ['has(args.recursive) && args.recursive', { args: { recursive: true } }, true],
      ['args.limit > 100', { args: { limit: 500 } }, true],
      ['args.limit > 100', { args: { limit: 5 } }, false],
      ['args.limit == 5', { args: { limit: 5 } }, true],
      ['args.limit + 1.0 == 6.0', { args: { limit: 5 } }, true],
      ['args.options.depth >= 2 && "x" in args.tags', { args: { options: { depth: 3 }, tags: ['x', 'y'] } }, true],
      ['size(args) == 0', { args: undefined }, true],
      ['now > timestamp("2025-03-10T14:00:00Z")', {}, true],
      ['now > timestamp("2025-03-10T15:00:00Z")', {}, false],
      ['now.getHours("UTC") >= 9 && now.getHours("UTC") < 17', {}, true],
      ['now.getDayOfWeek("UTC") == 1', {}, true],
    ];
    for (const [when, overrides, matches] of cases) {
      const policy = policyOf({ rules: [{ id: 'r', effect: 'allow', when }] });
      const decision = decide(policy, call(overrides));
      assert.equal(decision.ruleId, matches ? 'r' : 'default', `${when}: ${decision.reason}`);
    }
  });

  it('fails closed on evaluation errors, naming the rule, and evaluates no further rule', () => {
    const policy = policyOf({
      rules: [
        { id: 'big-reads', effect: 'deny', when: 'args.size > 1000000' },
        { id: 'flagged', effect: 'allow', when: 'args.flag' },
        { id: 'everyone', effect: 'allow', when: 'true' },
      ],
    });
    const missing = decide(policy, call({ args: { path: '/a' } }));
    assert.equal(missing.effect, 'deny');
    assert.equal(missing.ruleId, 'big-reads');
    assert.match(missing.reason, /^rule "big-reads" could not be evaluated: No such key: size \(at 1:6\); denied \(fail closed\)$/);

    const notBoolean = decide(policy, call({ args: { size: 1, flag: 'yes' } }));
    assert.equal(notBoolean.effect, 'deny');
    assert.equal(notBoolean.ruleId, 'flagged');
    assert.match(notBoolean.reason, /gave string, not a boolean; denied \(fail closed\)/);

    assert.equal(decide(policy, call({ args: { size: 1, flag: true } })).ruleId, 'flagged');
    assert.equal(decide(policy, call({ args: { size: 1, flag: false } })).ruleId, 'everyone');
  });

  it('fails closed on an index out of range, even with an allow default', () => {
    const policy = policyOf({ rules: [{ id: 'first-tag', effect: 'allow', when: 'args.tags[0] == "ok"' }], defaultEffect: 'allow' });
    const decision = decide(policy, call({ args: { tags: [] } }));
    assert.equal(decision.effect, 'deny');
    assert.equal(decision.ruleId, 'first-tag');
  });

  it('denies arguments that are not a JSON object', () => {
    const policy = policyOf({ defaultEffect: 'allow' });
    const decision = decide(policy, call({ args: ['a'] }));
    assert.equal(decision.effect, 'deny');
    assert.equal(decision.ruleId, 'arguments');
  });
});

describe('policy: compile', () => {
  it('names the rule and the position of a syntax error', () => {
    const message = compileError({ rules: [{ id: 'ok', effect: 'allow', when: 'true' }, { id: 'broken', effect: 'deny', when: 'tool == "a" &&' }] });
    assert.match(message, /^rules\[1\] "broken" \(when\): CEL syntax error: .* \(at 1:\d+\) in `tool == "a" &&`$/);
  });

  it('gives line and column inside a multi-line expression', () => {
    const message = compileError({ rules: [{ id: 'multi', effect: 'deny', when: 'tool == "a" ||\n  tool == )' }] });
    assert.match(message, /rules\[0\] "multi" \(when\): CEL syntax error: .*\(at 2:\d+\)/);
  });

  it('names the rule on type errors: unknown variable, unknown principal field, wrong operand types, non-boolean result', () => {
    assert.match(compileError({ rules: [{ id: 'typo', effect: 'deny', when: 'user == "x"' }] }), /rules\[0\] "typo" \(when\): CEL type error: Unknown variable: user \(at 1:1\)/);
    assert.match(compileError({ rules: [{ id: 'field', effect: 'deny', when: 'principal.tem == "x"' }] }), /rules\[0\] "field" \(when\): CEL type error: No such key: tem \(at 1:11\)/);
    assert.match(compileError({ rules: [{ id: 'types', effect: 'deny', when: 'upstream + 1 == "x"' }] }), /rules\[0\] "types" \(when\): CEL type error: .*overload/);
    assert.match(compileError({ rules: [{ id: 'int', effect: 'deny', when: '1 + 1' }] }), /rules\[0\] "int" \(when\): CEL expression must be a boolean, it is int/);
  });

  it('refuses matches() patterns that could backtrack exponentially or come from the call, and keeps safe ones', () => {
    // (a+)+$ against "aaaa…a!" is the classic exponential case for a backtracking engine.
    assert.match(compileError({ rules: [{ id: 'redos', effect: 'deny', when: 'args.name.matches("(a+)+$")' }] }), /rules\[0\] "redos" \(when\): matches\(\) pattern "\(a\+\)\+\$" \(at 1:1\) could not be shown safe/);
    assert.match(compileError({ rules: [{ id: 'nested', effect: 'deny', when: 'tool == "a" || (has(args.p) && args.p.matches("^(\\\\w+\\\\s?)*$"))' }] }), /"nested" \(when\): matches\(\) pattern .* could not be shown safe/);
    assert.match(compileError({ rules: [{ id: 'dynamic', effect: 'deny', when: 'tool.matches(args.pattern)' }] }), /"dynamic" \(when\): matches\(\) takes a string literal pattern \(at 1:1\)/);
    assert.match(compileError({ rules: [{ id: 'concat', effect: 'deny', when: 'tool.matches("a" + "b")' }] }), /"concat" \(when\): matches\(\) takes a string literal pattern/);
    assert.match(compileError({ rules: [{ id: 'bad', effect: 'deny', when: 'tool.matches("[")' }] }), /"bad" \(when\): matches\(\) pattern "\[" .*is not a valid regular expression/);
    assert.match(compileError({ budgets: [{ id: 'spend', scope: 'tenant', period: 'month', maxCost: 10, match: 'tool.matches("(a*)*")' }] }), /budgets\[0\] "spend" \(match\): matches\(\) pattern/);
    for (const safe of ['args.path.matches("^/srv/[a-z]+/")', 'tool.matches("^[a-z_]{1,64}$")', 'args.to.matches("^[\\\\w.-]+@acme\\\\.com$")', 'tool.matches("^(read|list)_")']) {
      assert.doesNotThrow(() => compileExpression(safe, 'x'), safe);
    }
  });

  it('compiles limit matches too, naming the limit', () => {
    assert.match(
      compileError({ rateLimits: [{ id: 'writes', scope: 'key', capacity: 1, refillPerSecond: 1, match: 'tool ==' }] }),
      /rateLimits\[0\] "writes" \(match\): CEL syntax error/,
    );
    assert.match(compileError({ budgets: [{ id: 'spend', scope: 'tenant', period: 'month', maxCost: 10, match: 'nope' }] }), /budgets\[0\] "spend" \(match\): CEL type error/);
  });

  it('knows which expressions read the arguments', () => {
    assert.equal(compileExpression('tool == "a"', 'x').usesArgs, false);
    assert.equal(compileExpression('has(args.a)', 'x').usesArgs, true);
    assert.equal(compileExpression('principal.roles.exists(r, r == "a") && size(args) > 0', 'x').usesArgs, true);
    assert.equal(compileExpression('[1, 2].exists(n, n == 2)', 'x').usesArgs, false);
  });
});

describe('policy: visibleTools', () => {
  const tools = [
    { upstream: 'fs', tool: 'read_file' },
    { upstream: 'fs', tool: 'write_file' },
    { upstream: 'shell', tool: 'exec' },
    { upstream: 'web', tool: 'fetch' },
  ];
  const names = (list: readonly { upstream: string; tool: string }[]): string[] => list.map((t) => `${t.upstream}__${t.tool}`);

  it('hides what a rule not reading args denies, and what the default denies', () => {
    const policy = policyOf({
      rules: [
        { id: 'no-shell', effect: 'deny', when: 'upstream == "shell" && !("admin" in principal.roles)' },
        { id: 'fs', effect: 'allow', when: 'upstream == "fs"' },
        { id: 'admins', effect: 'allow', when: '"admin" in principal.roles' },
      ],
    });
    assert.deepEqual(names(visibleTools(policy, alice, tools, { now: T0 })), ['fs__read_file', 'fs__write_file']);
    assert.deepEqual(names(visibleTools(policy, root, tools, { now: T0 })), ['fs__read_file', 'fs__write_file', 'shell__exec', 'web__fetch']);
  });

  it('shows a tool that an allow rule reading args might allow, and one a hold rule might hold', () => {
    const policy = policyOf({
      rules: [
        { id: 'tmp-writes', effect: 'allow', when: 'tool == "write_file" && args.path.startsWith("/tmp/")' },
        { id: 'fetch-needs-approval', effect: 'hold', when: 'tool == "fetch"' },
      ],
    });
    // tmp-writes reads args: every tool might match it (the approximation errs towards showing).
    assert.deepEqual(names(visibleTools(policy, alice, tools, { now: T0 })), names(tools));
    const strict = policyOf({
      rules: [
        { id: 'no-shell', effect: 'deny', when: 'upstream == "shell"' },
        { id: 'tmp-writes', effect: 'allow', when: 'tool == "write_file" && args.path.startsWith("/tmp/")' },
        { id: 'fetch-needs-approval', effect: 'hold', when: 'tool == "fetch"' },
      ],
    });
    assert.deepEqual(names(visibleTools(strict, alice, tools, { now: T0 })), ['fs__read_file', 'fs__write_file', 'web__fetch']);
    // The list is what a call might get: a denied argument shape still leaves the tool visible.
    assert.equal(decide(strict, call({ tool: 'write_file', args: { path: '/etc/passwd' } })).effect, 'deny');
  });

  it('does not hide a tool for a deny rule that reads args', () => {
    const policy = policyOf({ rules: [{ id: 'no-etc', effect: 'deny', when: 'args.path.startsWith("/etc")' }], defaultEffect: 'allow' });
    assert.equal(isVisible(policy, alice, { upstream: 'fs', tool: 'read_file' }, { now: T0 }), true);
  });

  it('hides a tool whose deciding rule fails to evaluate (fail closed)', () => {
    const policy = policyOf({ rules: [{ id: 'broken', effect: 'allow', when: 'principal.roles[3] == "x"' }], defaultEffect: 'allow' });
    assert.equal(isVisible(policy, alice, { upstream: 'fs', tool: 'read_file' }, { now: T0 }), false);
  });

  it('evaluates with method tools/call unless told otherwise, at the given time', () => {
    const policy = policyOf({ rules: [{ id: 'calls-in-hours', effect: 'allow', when: 'method == "tools/call" && now.getHours("UTC") < 17' }] });
    assert.equal(isVisible(policy, alice, { upstream: 'fs', tool: 'read_file' }, { now: T0 }), true);
    assert.equal(isVisible(policy, alice, { upstream: 'fs', tool: 'read_file' }, { now: T0 + 3 * 3_600_000 }), false);
    assert.equal(isVisible(policy, alice, { upstream: 'fs', tool: 'greeting' }, { now: T0, method: 'prompts/get' }), false);
  });
});

describe('policy: applicableLimits', () => {
  const policy = policyOf({
    rateLimits: [
      { id: 'all-calls', scope: 'key', capacity: 10, refillPerSecond: 1 },
      { id: 'writes', scope: 'key', capacity: 2, refillPerSecond: 1, match: 'tool.startsWith("write")' },
    ],
    budgets: [{ id: 'big-reads', scope: 'team', period: 'day', maxCalls: 5, match: 'args.bytes > 1000' }],
  });

  it('lists limits without match, and those whose match holds, rate limits first', () => {
    assert.deepEqual(applicableLimits(policy, call({ args: { bytes: 10 } })), { ok: true, limits: ['all-calls'] });
    assert.deepEqual(applicableLimits(policy, call({ tool: 'write_file', args: { bytes: 5000 } })), { ok: true, limits: ['all-calls', 'writes', 'big-reads'] });
  });

  it('fails closed when a match cannot be evaluated, naming the limit', () => {
    const result = applicableLimits(policy, call({ args: {} }));
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.limitId === 'big-reads' && /could not tell whether it applies: No such key: bytes/.test(result.reason));
  });
});
