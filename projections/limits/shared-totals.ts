/**
 * The multi-replica seam (docs/architecture.md "Several replicas"): budget spend seen by a decision as the
 * projector's totals over every replica's calls, up to a log watermark, plus this replica's own
 * calls the projection does not include yet. The projector side is a later issue; it only has
 * to implement ProjectedBudgetTotals from the DecisionMade `enforcement` records.
 */
import type { BudgetSpend } from './budget.ts';
import { scopeValue } from './enforcement.ts';
import type { BudgetSpendView, CallCounted, LimitsConfig } from './enforcement.ts';
import { periodStart } from './periods.ts';

export interface ProjectedBudgetTotals {
  /** Global log index (exclusive) up to which the totals include every replica's counted calls. */
  readonly watermark: number;
  spend(budgetId: string, scopeValue: string, periodStart: number): BudgetSpend;
}

interface LocalDelta {
  /** Global log index of the call's DecisionMade; undefined while the append is in flight. */
  index: number | undefined;
  readonly calls: number;
  readonly cost: number;
}

export interface LocalCharge {
  /** The DecisionMade is durable at this global index. */
  confirm(index: number): void;
  /** The decision was never recorded (append failed): the call did not happen. */
  cancel(): void;
}

const keyOf = (budgetId: string, value: string, start: number): string => `${budgetId}\u0000${value}\u0000${start}`;

export class ReplicaBudgetView implements BudgetSpendView {
  readonly #projected: () => ProjectedBudgetTotals;
  readonly #local = new Map<string, LocalDelta[]>();

  /** `projected` returns the latest totals the replica has (refreshed by whoever owns the projector client). */
  constructor(projected: () => ProjectedBudgetTotals) {
    this.#projected = projected;
  }

  /** Records this replica's counted call against each budget it counts for; call it where `evolveLimits` is called. */
  addLocal(config: LimitsConfig, call: CallCounted): LocalCharge {
    const entries: { key: string; delta: LocalDelta }[] = [];
    for (const rule of config.budgets) {
      if (!call.limits.includes(rule.id)) continue;
      const value = scopeValue(rule.scope, call);
      if (value === undefined) continue;
      const key = keyOf(rule.id, value, periodStart(rule.period, call.at));
      const delta: LocalDelta = { index: undefined, calls: 1, cost: call.cost };
      this.#local.set(key, [...(this.#local.get(key) ?? []), delta]);
      entries.push({ key, delta });
    }
    return {
      confirm: (index) => {
        for (const e of entries) e.delta.index = index;
      },
      cancel: () => {
        for (const e of entries) this.#remove(e.key, e.delta);
      },
    };
  }

  spend(budgetId: string, value: string, start: number): BudgetSpend {
    const projected = this.#projected();
    const base = projected.spend(budgetId, value, start);
    let calls = base.calls;
    let cost = base.cost;
    for (const delta of this.#local.get(keyOf(budgetId, value, start)) ?? []) {
      // A confirmed call below the watermark is in the projected totals already.
      if (delta.index !== undefined && delta.index < projected.watermark) continue;
      calls += delta.calls;
      cost += delta.cost;
    }
    return { calls, cost };
  }

  /** Drops deltas the projection has absorbed and those of periods ended before `now`. */
  prune(now: number, config: LimitsConfig): void {
    const watermark = this.#projected().watermark;
    const periods = new Map(config.budgets.map((b) => [b.id, b.period]));
    for (const [key, deltas] of this.#local) {
      const [budgetId = '', , start = '0'] = key.split('\u0000');
      const period = periods.get(budgetId);
      const kept = period === undefined || Number(start) < periodStart(period, now) ? [] : deltas.filter((d) => d.index === undefined || d.index >= watermark);
      if (kept.length === 0) this.#local.delete(key);
      else this.#local.set(key, kept);
    }
  }

  #remove(key: string, delta: LocalDelta): void {
    const kept = (this.#local.get(key) ?? []).filter((d) => d !== delta);
    if (kept.length === 0) this.#local.delete(key);
    else this.#local.set(key, kept);
  }
}
