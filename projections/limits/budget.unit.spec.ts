import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { BudgetRule } from '#schemas';
import { checkBudget, evolveBudget } from './budget.ts';
import type { BudgetCounter } from './budget.ts';
import { periodEnd, periodStart } from './periods.ts';

const at = (iso: string): number => Date.parse(iso);
const iso = (ms: number): string => new Date(ms).toISOString();

describe('UTC periods', () => {
  it('starts and ends hours, days and months on UTC boundaries', () => {
    const t = at('2025-03-10T14:30:15.123Z');
    assert.equal(iso(periodStart('hour', t)), '2025-03-10T14:00:00.000Z');
    assert.equal(iso(periodEnd('hour', t)), '2025-03-10T15:00:00.000Z');
    assert.equal(iso(periodStart('day', t)), '2025-03-10T00:00:00.000Z');
    assert.equal(iso(periodEnd('day', t)), '2025-03-11T00:00:00.000Z');
    assert.equal(iso(periodStart('month', t)), '2025-03-01T00:00:00.000Z');
    assert.equal(iso(periodEnd('month', t)), '2025-04-01T00:00:00.000Z');
  });

  it('handles year ends, leap February and the exact boundary instant', () => {
    assert.equal(iso(periodEnd('month', at('2025-12-31T23:59:59.999Z'))), '2026-01-01T00:00:00.000Z');
    assert.equal(iso(periodEnd('day', at('2024-02-28T12:00:00Z'))), '2024-02-29T00:00:00.000Z');
    assert.equal(iso(periodEnd('month', at('2024-02-29T12:00:00Z'))), '2024-03-01T00:00:00.000Z');
    assert.equal(iso(periodStart('day', at('2025-01-02T00:00:00.000Z'))), '2025-01-02T00:00:00.000Z');
    assert.equal(iso(periodStart('day', at('2025-01-01T23:59:59.999Z'))), '2025-01-01T00:00:00.000Z');
  });
});

describe('budget', () => {
  const calls: BudgetRule = { id: 'daily', scope: 'key', period: 'day', maxCalls: 3 };
  const cost: BudgetRule = { id: 'spend', scope: 'team', period: 'hour', maxCost: 10 };

  function spend(rule: BudgetRule, entries: readonly [string, number][]): BudgetCounter | undefined {
    let counter: BudgetCounter | undefined;
    for (const [when, c] of entries) {
      assert.equal(checkBudget(counter, rule, { at: at(when), cost: c }).effect, 'allow', when);
      counter = evolveBudget(counter, rule, { at: at(when), cost: c });
    }
    return counter;
  }

  it('allows up to maxCalls exactly, then refuses with the limit, the spend and the UTC reset', () => {
    const counter = spend(calls, [['2025-03-10T01:00:00Z', 1], ['2025-03-10T09:00:00Z', 1], ['2025-03-10T23:00:00Z', 1]]);
    assert.deepEqual(checkBudget(counter, calls, { at: at('2025-03-10T23:59:59.000Z'), cost: 1 }), {
      effect: 'deny',
      limitId: 'daily',
      metric: 'calls',
      limit: 3,
      spent: 3,
      requested: 1,
      periodStart: at('2025-03-10T00:00:00Z'),
      resetsAt: at('2025-03-11T00:00:00Z'),
      retryAfterMs: 1000,
    });
  });

  it('resets at the UTC boundary, not 24 hours after the first call', () => {
    const counter = spend(calls, [['2025-03-10T22:00:00Z', 1], ['2025-03-10T23:00:00Z', 1], ['2025-03-10T23:59:59.999Z', 1]]);
    assert.equal(checkBudget(counter, calls, { at: at('2025-03-10T23:59:59.999Z'), cost: 1 }).effect, 'deny');
    assert.equal(checkBudget(counter, calls, { at: at('2025-03-11T00:00:00.000Z'), cost: 1 }).effect, 'allow');
    const next = evolveBudget(counter, calls, { at: at('2025-03-11T00:00:00.000Z'), cost: 1 });
    assert.deepEqual(next, { periodStart: at('2025-03-11T00:00:00Z'), calls: 1, cost: 1 });
  });

  it('refuses a call whose cost would take the spend past maxCost, naming the cost', () => {
    const counter = spend(cost, [['2025-03-10T14:00:00Z', 4], ['2025-03-10T14:10:00Z', 4]]);
    assert.equal(checkBudget(counter, cost, { at: at('2025-03-10T14:20:00Z'), cost: 2 }).effect, 'allow'); // reaching 10 exactly
    const verdict = checkBudget(counter, cost, { at: at('2025-03-10T14:20:00Z'), cost: 3 });
    assert.equal(verdict.effect === 'deny' && `${verdict.metric} ${verdict.spent}+${verdict.requested}>${verdict.limit} ${iso(verdict.resetsAt)}`, 'cost 8+3>10 2025-03-10T15:00:00.000Z');
    assert.equal(checkBudget(counter, cost, { at: at('2025-03-10T15:00:00Z'), cost: 3 }).effect, 'allow');
  });

  it('checks calls before cost when both are set, and free calls still count as calls', () => {
    const both: BudgetRule = { id: 'both', scope: 'tenant', period: 'month', maxCalls: 2, maxCost: 100 };
    const counter = spend(both, [['2025-03-01T00:00:00Z', 0], ['2025-03-31T23:00:00Z', 0]]);
    const verdict = checkBudget(counter, both, { at: at('2025-03-31T23:30:00Z'), cost: 0 });
    assert.ok(verdict.effect === 'deny' && verdict.metric === 'calls' && iso(verdict.resetsAt) === '2025-04-01T00:00:00.000Z');
  });

  it('leaves the counter alone for a call stamped in an already closed period', () => {
    const counter = evolveBudget(undefined, calls, { at: at('2025-03-11T00:00:01Z'), cost: 1 });
    assert.equal(evolveBudget(counter, calls, { at: at('2025-03-10T23:59:59Z'), cost: 1 }), counter);
  });
});
