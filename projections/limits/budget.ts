/**
 * Budgets: calls and cost per UTC period, one counter per (budget, scope value). `check`
 * refuses a call that would take the spend past the limit (reaching it exactly is allowed);
 * `evolve` adds a counted call. A call in a later period starts a fresh counter; a call from an
 * earlier period than the counter's (clock skew between replicas) belongs to a closed period and
 * leaves the counter as it is.
 */
import type { BudgetRule } from '#schemas';
import { periodEnd, periodStart } from './periods.ts';

export interface BudgetCounter {
  readonly periodStart: number;
  readonly calls: number;
  readonly cost: number;
}

export interface BudgetSpend {
  readonly calls: number;
  readonly cost: number;
}

export const NO_SPEND: BudgetSpend = Object.freeze({ calls: 0, cost: 0 });

export type BudgetVerdict =
  | { readonly effect: 'allow' }
  | {
      readonly effect: 'deny';
      readonly limitId: string;
      readonly metric: 'calls' | 'cost';
      readonly limit: number;
      readonly spent: number;
      readonly requested: number;
      readonly periodStart: number;
      /** ms since the epoch: the next UTC period boundary. */
      readonly resetsAt: number;
      readonly retryAfterMs: number;
    };

/** The counter's spend if it is for the period containing `at`, else nothing spent. */
export function spendIn(counter: BudgetCounter | undefined, rule: Pick<BudgetRule, 'period'>, at: number): BudgetSpend {
  return counter !== undefined && counter.periodStart === periodStart(rule.period, at) ? counter : NO_SPEND;
}

/** Pure over a spend, so that a multi-replica view (projected totals + local deltas) can supply it. */
export function checkBudgetSpend(spend: BudgetSpend, rule: BudgetRule, call: { readonly at: number; readonly cost: number }): BudgetVerdict {
  const deny = (metric: 'calls' | 'cost', limit: number, spent: number, requested: number): BudgetVerdict => {
    const resetsAt = periodEnd(rule.period, call.at);
    return { effect: 'deny', limitId: rule.id, metric, limit, spent, requested, periodStart: periodStart(rule.period, call.at), resetsAt, retryAfterMs: resetsAt - call.at };
  };
  if (rule.maxCalls !== undefined && spend.calls + 1 > rule.maxCalls) return deny('calls', rule.maxCalls, spend.calls, 1);
  if (rule.maxCost !== undefined && spend.cost + call.cost > rule.maxCost) return deny('cost', rule.maxCost, spend.cost, call.cost);
  return { effect: 'allow' };
}

export function checkBudget(counter: BudgetCounter | undefined, rule: BudgetRule, call: { readonly at: number; readonly cost: number }): BudgetVerdict {
  return checkBudgetSpend(spendIn(counter, rule, call.at), rule, call);
}

export function evolveBudget(counter: BudgetCounter | undefined, rule: Pick<BudgetRule, 'period'>, event: { readonly at: number; readonly cost: number }): BudgetCounter {
  const start = periodStart(rule.period, event.at);
  if (counter === undefined || start > counter.periodStart) return { periodStart: start, calls: 1, cost: event.cost };
  if (start < counter.periodStart) return counter;
  return { periodStart: start, calls: counter.calls + 1, cost: counter.cost + event.cost };
}
