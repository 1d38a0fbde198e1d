import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicyBundle } from '#schemas';
import type { LimitTrip, PolicyBundleInput, Principal } from '#schemas';
import { compileCostModel } from './cost-model.ts';
import { checkLimits, emptyEnforcementState, evolveLimits, pruneLimits, snapshotLimits } from './enforcement.ts';
import type { EnforcementState, LimitsConfig, MeteredCall } from './enforcement.ts';

const T0 = Date.parse('2025-03-10T12:00:00.000Z');
const DIGEST_A = `sha256:${'a'.repeat(64)}`;
const DIGEST_B = `sha256:${'b'.repeat(64)}`;

type Who = Pick<Principal, 'id' | 'tenant' | 'team'>;
const a1: Who = { id: 'a1', tenant: 'acme', team: 'eng' };
const a2: Who = { id: 'a2', tenant: 'acme', team: 'eng' };
const b1: Who = { id: 'b1', tenant: 'acme', team: 'ops' };
const c1: Who = { id: 'c1', tenant: 'acme', team: 'ops' };
const solo: Who = { id: 'solo', tenant: 'acme' };
const z1: Who = { id: 'z1', tenant: 'zeta', team: 'eng' };

function configOf(input: PolicyBundleInput): LimitsConfig {
  return parsePolicyBundle({ loopGuard: null, ...input }).bundle;
}

/** A metered harness: every call checked, counted when allowed, like the gateway's decision step. */
function harness(config: LimitsConfig) {
  const state = emptyEnforcementState();
  const costs = compileCostModel(config.costs);
  const ids = [...config.rateLimits, ...config.budgets].map((l) => l.id);
  return {
    state,
    call(principal: Who, at: number, options: { tool?: string; upstream?: string; digest?: string; limits?: readonly string[] } = {}): LimitTrip | undefined {
      const upstream = options.upstream ?? 'fs';
      const tool = options.tool ?? 'read_file';
      const call: MeteredCall = { at, principal, upstream, tool, argumentsDigest: options.digest ?? DIGEST_A, cost: costs.costOf(upstream, tool), limits: options.limits ?? ids };
      const verdict = checkLimits(state, config, call);
      if (verdict.effect === 'deny') return verdict.trip;
      evolveLimits(state, config, { type: 'CallCounted', ...call });
      return undefined;
    },
  };
}

/** Which scope value a rate or budget refusal names. */
function refusedFor(trip: LimitTrip | undefined): string | undefined {
  return trip !== undefined && trip.kind !== 'loop' ? trip.scopeValue : undefined;
}

function allowed(trip: LimitTrip | undefined, what: string): void {
  assert.equal(trip, undefined, `${what}: ${trip?.reason}`);
}

describe('enforcement: rate limits by scope', () => {
  const rate = (scope: 'key' | 'team' | 'tenant' | 'tool'): LimitsConfig => configOf({ rateLimits: [{ id: `per-${scope}`, scope, capacity: 2, refillPerSecond: 1 }] });

  it('per key: each key has its own bucket', () => {
    const h = harness(rate('key'));
    allowed(h.call(a1, T0), 'a1#1');
    allowed(h.call(a1, T0), 'a1#2');
    const trip = h.call(a1, T0);
    assert.deepEqual(trip, {
      kind: 'rate',
      limitId: 'per-key',
      scope: 'key',
      scopeValue: 'acme/a1',
      limit: 2,
      refillPerSecond: 1,
      retryAfterMs: 1000,
      resetsAt: '2025-03-10T12:00:01.000Z',
      reason: 'rate limit "per-key" (2 calls burst, 1/s per key) exhausted for key "acme/a1"; retry after 1000 ms',
    });
    allowed(h.call(a2, T0), 'a2 is another key');
    allowed(h.call(a1, T0 + 1000), 'refilled after retryAfterMs');
  });

  it('per team: keys of one team share a bucket; other teams and team-less keys do not', () => {
    const h = harness(rate('team'));
    allowed(h.call(a1, T0), 'a1');
    allowed(h.call(a2, T0), 'a2');
    assert.equal(refusedFor(h.call(a1, T0)), 'acme/eng');
    allowed(h.call(b1, T0), 'ops is another team');
    for (let i = 0; i < 5; i += 1) allowed(h.call(solo, T0), 'no team: a team limit does not apply');
    allowed(h.call(z1, T0), 'team "eng" of another tenant is another team');
  });

  it('per tenant: every team of a tenant shares a bucket; other tenants do not', () => {
    const h = harness(rate('tenant'));
    allowed(h.call(a1, T0), 'a1');
    allowed(h.call(b1, T0), 'b1');
    assert.equal(refusedFor(h.call(solo, T0)), 'acme');
    allowed(h.call(z1, T0), 'zeta');
  });

  it('per tool: every caller shares the tool\'s bucket; other tools do not', () => {
    const h = harness(rate('tool'));
    allowed(h.call(a1, T0), 'acme');
    allowed(h.call(z1, T0), 'zeta');
    assert.equal(refusedFor(h.call(b1, T0)), 'fs__read_file');
    allowed(h.call(b1, T0, { tool: 'list_dir' }), 'another tool');
  });

  it('refills over time at the configured rate', () => {
    const h = harness(configOf({ rateLimits: [{ id: 'slow', scope: 'key', capacity: 1, refillPerSecond: 0.25 }] }));
    allowed(h.call(a1, T0), 'first');
    assert.equal(h.call(a1, T0 + 3999)?.retryAfterMs, 1);
    allowed(h.call(a1, T0 + 4000), 'after 4 s');
  });

  it('applies only the limits the call counts against (those whose match held)', () => {
    const h = harness(configOf({ rateLimits: [{ id: 'writes', scope: 'key', capacity: 1, refillPerSecond: 1, match: 'tool == "write_file"' }] }));
    allowed(h.call(a1, T0, { limits: ['writes'] }), 'write #1');
    for (let i = 0; i < 3; i += 1) allowed(h.call(a1, T0, { limits: [] }), 'reads are not counted');
    assert.equal(h.call(a1, T0, { limits: ['writes'] })?.limitId, 'writes');
  });
});

describe('enforcement: budgets down the hierarchy', () => {
  const config = configOf({
    budgets: [
      { id: 'key-day', scope: 'key', period: 'day', maxCalls: 3 },
      { id: 'team-day', scope: 'team', period: 'day', maxCalls: 5 },
      { id: 'tenant-day', scope: 'tenant', period: 'day', maxCalls: 8 },
    ],
  });

  it('counts each call against its key, team and tenant, and names the level that refuses', () => {
    const h = harness(config);
    for (let i = 0; i < 3; i += 1) allowed(h.call(a1, T0 + i), `a1#${i}`);
    const keyTrip = h.call(a1, T0 + 10);
    assert.ok(keyTrip?.kind === 'budget');
    assert.deepEqual({ ...keyTrip, reason: undefined }, {
      kind: 'budget',
      limitId: 'key-day',
      scope: 'key',
      scopeValue: 'acme/a1',
      period: 'day',
      metric: 'calls',
      limit: 3,
      spent: 3,
      requested: 1,
      retryAfterMs: 12 * 3_600_000 - 10,
      resetsAt: '2025-03-11T00:00:00.000Z',
      reason: undefined,
    });
    assert.equal(keyTrip.reason, 'budget "key-day" (3 calls per day per key) exhausted for key "acme/a1": 3 calls spent this day; resets at 2025-03-11T00:00:00.000Z');

    allowed(h.call(a2, T0 + 20), 'a2#1');
    allowed(h.call(a2, T0 + 21), 'a2#2: team eng at 5');
    const teamTrip = h.call(a2, T0 + 22);
    assert.ok(teamTrip?.kind === 'budget');
    assert.deepEqual([teamTrip.limitId, teamTrip.scopeValue, teamTrip.spent], ['team-day', 'acme/eng', 5]);

    for (let i = 0; i < 3; i += 1) allowed(h.call(b1, T0 + 30 + i), `b1#${i}: tenant at ${6 + i}`);
    const tenantTrip = h.call(c1, T0 + 40);
    assert.ok(tenantTrip?.kind === 'budget');
    assert.deepEqual([tenantTrip.limitId, tenantTrip.scopeValue, tenantTrip.spent], ['tenant-day', 'acme', 8]);
    allowed(h.call(z1, T0 + 40), 'another tenant');
  });

  it('resets every level at the next UTC midnight', () => {
    const h = harness(config);
    for (let i = 0; i < 3; i += 1) allowed(h.call(a1, T0 + i), `a1#${i}`);
    const midnight = Date.parse('2025-03-11T00:00:00.000Z');
    assert.equal(h.call(a1, midnight - 1)?.limitId, 'key-day');
    allowed(h.call(a1, midnight), 'new day');
  });

  it('charges cost from the cost model, per hour, month, with both metrics', () => {
    const h = harness(configOf({
      costs: { 'search__*': 4, 'fs__*': 0 },
      budgets: [
        { id: 'team-hour-cost', scope: 'team', period: 'hour', maxCost: 10 },
        { id: 'tenant-month', scope: 'tenant', period: 'month', maxCalls: 100, maxCost: 1000 },
      ],
    }));
    allowed(h.call(a1, T0, { upstream: 'search', tool: 'web' }), 'cost 4');
    allowed(h.call(a2, T0 + 1, { upstream: 'search', tool: 'web' }), 'cost 8');
    for (let i = 0; i < 5; i += 1) allowed(h.call(a1, T0 + 2 + i), 'fs is free');
    const trip = h.call(a1, T0 + 10, { upstream: 'search', tool: 'news' });
    assert.ok(trip?.kind === 'budget');
    assert.equal(trip.reason, 'budget "team-hour-cost" (cost 10 per hour per team) exhausted for team "acme/eng": cost 8 spent this hour, this call costs 4; resets at 2025-03-10T13:00:00.000Z');
    allowed(h.call(a1, Date.parse('2025-03-10T13:00:00.000Z'), { upstream: 'search', tool: 'news' }), 'next hour');
  });
});

describe('enforcement: loop guard', () => {
  it('trips on the same principal, tool and arguments only, with the count', () => {
    const h = harness(configOf({ loopGuard: { maxRepeats: 2, windowMs: 60_000 } }));
    allowed(h.call(a1, T0), '#1');
    allowed(h.call(a1, T0 + 1), '#2');
    const trip = h.call(a1, T0 + 2);
    assert.ok(trip?.kind === 'loop');
    assert.equal(trip.count, 3);
    assert.equal(trip.retryAfterMs, 59_998);
    assert.equal(trip.reason, 'loop guard: fs__read_file called with the same arguments 3 times within 60000 ms (at most 2); retry after 59998 ms');
    allowed(h.call(a1, T0 + 3, { digest: DIGEST_B }), 'other arguments');
    allowed(h.call(a1, T0 + 4, { tool: 'list_dir' }), 'other tool');
    allowed(h.call(a2, T0 + 5), 'other principal');
    allowed(h.call(a1, T0 + 60_000), 'the first left the window');
  });

  it('is checked before rate limits, and can be turned off', () => {
    const limited = { rateLimits: [{ id: 'rl', scope: 'key' as const, capacity: 1, refillPerSecond: 1 }] };
    const on = harness(configOf({ ...limited, loopGuard: { maxRepeats: 1, windowMs: 10_000 } }));
    allowed(on.call(a1, T0), '#1');
    assert.equal(on.call(a1, T0)?.kind, 'loop');
    const off = harness(configOf({ loopGuard: null }));
    for (let i = 0; i < 30; i += 1) allowed(off.call(a1, T0), `#${i}`);
  });
});

describe('enforcement: prune', () => {
  it('forgets what can no longer matter without changing any decision', () => {
    const config = configOf({
      rateLimits: [{ id: 'rl', scope: 'key', capacity: 2, refillPerSecond: 1 }],
      budgets: [{ id: 'hourly', scope: 'key', period: 'hour', maxCalls: 50 }],
      loopGuard: { maxRepeats: 5, windowMs: 1000 },
    });
    const h = harness(config);
    for (let i = 0; i < 4; i += 1) h.call(i % 2 === 0 ? a1 : a2, T0 + i * 100);
    const copy = (s: EnforcementState): EnforcementState => ({ buckets: new Map(s.buckets), budgets: new Map(s.budgets), loops: new Map(s.loops) });
    const later = T0 + 3_600_000;
    const pruned = copy(h.state);
    pruneLimits(pruned, config, later);
    assert.deepEqual(snapshotLimits(pruned), { buckets: [], budgets: [], loops: [] });
    const soon = copy(h.state);
    pruneLimits(soon, config, T0 + 500);
    assert.ok(soon.buckets.size > 0 && soon.loops.size > 0);
    for (const at of [T0 + 500, later]) {
      const call: MeteredCall = { at, principal: a1, upstream: 'fs', tool: 'read_file', argumentsDigest: DIGEST_A, cost: 1, limits: ['rl', 'hourly'] };
      const reference = checkLimits(h.state, config, call);
      assert.deepEqual(checkLimits(at === later ? pruned : soon, config, call), reference);
    }
  });
});
