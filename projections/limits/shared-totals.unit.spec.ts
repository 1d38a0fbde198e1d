import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicyBundle } from '#schemas';
import type { BudgetSpend } from './budget.ts';
import { checkLimits, emptyEnforcementState } from './enforcement.ts';
import type { CallCounted } from './enforcement.ts';
import { periodStart } from './periods.ts';
import { ReplicaBudgetView } from './shared-totals.ts';
import type { ProjectedBudgetTotals } from './shared-totals.ts';

const T0 = Date.parse('2025-03-10T12:00:00.000Z');
const DAY = periodStart('day', T0);
const config = parsePolicyBundle({ budgets: [{ id: 'team-day', scope: 'team', period: 'day', maxCalls: 10, maxCost: 100 }], loopGuard: null }).bundle;
const principal = { id: 'a1', tenant: 'acme', team: 'eng' };

function counted(cost: number, at = T0): CallCounted {
  return { type: 'CallCounted', at, principal, upstream: 'fs', tool: 'read_file', argumentsDigest: `sha256:${'a'.repeat(64)}`, cost, limits: ['team-day'] };
}

/** A projection stub: totals per budget key, as of a watermark. */
function projection(watermark: number, totals: Record<string, BudgetSpend>): ProjectedBudgetTotals {
  return { watermark, spend: (id, value, start) => totals[`${id}|${value}|${start}`] ?? { calls: 0, cost: 0 } };
}

describe('multi-replica budget view', () => {
  it('adds this replica\'s calls the projection has not absorbed to the projected totals', () => {
    let projected = projection(100, { [`team-day|acme/eng|${DAY}`]: { calls: 6, cost: 30 } });
    const view = new ReplicaBudgetView(() => projected);
    const first = view.addLocal(config, counted(5));
    const second = view.addLocal(config, counted(7));
    assert.deepEqual(view.spend('team-day', 'acme/eng', DAY), { calls: 8, cost: 42 }); // both in flight
    first.confirm(99); // below the watermark: already in the projected totals
    second.confirm(104);
    assert.deepEqual(view.spend('team-day', 'acme/eng', DAY), { calls: 7, cost: 37 });
    projected = projection(105, { [`team-day|acme/eng|${DAY}`]: { calls: 9, cost: 47 } }); // another replica's call too
    assert.deepEqual(view.spend('team-day', 'acme/eng', DAY), { calls: 9, cost: 47 });
  });

  it('forgets a call whose decision was never recorded', () => {
    const view = new ReplicaBudgetView(() => projection(0, {}));
    const charge = view.addLocal(config, counted(5));
    charge.cancel();
    assert.deepEqual(view.spend('team-day', 'acme/eng', DAY), { calls: 0, cost: 0 });
  });

  it('feeds checkLimits: the refusal reflects every replica\'s spend', () => {
    const view = new ReplicaBudgetView(() => projection(50, { [`team-day|acme/eng|${DAY}`]: { calls: 9, cost: 10 } }));
    const call = counted(1, T0 + 1);
    assert.equal(checkLimits(emptyEnforcementState(), config, call, view).effect, 'allow');
    view.addLocal(config, call);
    const verdict = checkLimits(emptyEnforcementState(), config, counted(1, T0 + 2), view);
    assert.ok(verdict.effect === 'deny' && verdict.trip.kind === 'budget' && verdict.trip.spent === 10);
  });

  it('prunes absorbed deltas and those of ended periods, keeping the ones still needed', () => {
    const view = new ReplicaBudgetView(() => projection(10, {}));
    view.addLocal(config, counted(1)).confirm(5);
    view.addLocal(config, counted(2)).confirm(15);
    view.addLocal(config, counted(4));
    view.prune(T0, config);
    assert.deepEqual(view.spend('team-day', 'acme/eng', DAY), { calls: 2, cost: 6 });
    view.prune(T0 + 86_400_000, config);
    assert.deepEqual(view.spend('team-day', 'acme/eng', DAY), { calls: 0, cost: 0 });
  });
});
