/**
 * Enforcement state: every rate bucket, budget counter and loop window, keyed by limit and
 * scope value. `checkLimits` decides (reads only); `evolveLimits` applies one counted call. The
 * state is a projection of the log (see rebuild.ts), so the two must stay apart: a decision
 * never changes the state, and the state changes only through a `CallCounted`.
 *
 * The container holds Maps that `evolveLimits` updates in place, entry by entry, through the
 * pure per-limit transitions (token-bucket.ts, budget.ts, loop-guard.ts): copying every map on
 * every call would cost the hot path O(keys). Nothing else may write to it.
 *
 * Scope values: key → `<tenant>/<principal id>`, team → `<tenant>/<team>` (no team → a team
 * limit does not apply), tenant → `<tenant>`, tool → `<upstream>__<tool>` (across all callers).
 */
import { LOOP_GUARD_ID } from '#schemas';
import type { BudgetRule, LimitScope, LimitTrip, LoopGuardConfig, Principal, RateLimitRule } from '#schemas';
import { checkBudgetSpend, evolveBudget, spendIn } from './budget.ts';
import type { BudgetCounter, BudgetSpend } from './budget.ts';
import { checkLoop, evolveLoop } from './loop-guard.ts';
import type { LoopWindow } from './loop-guard.ts';
import { periodStart } from './periods.ts';
import { checkRateLimit, evolveRateLimit, fullAt } from './token-bucket.ts';
import type { BucketState } from './token-bucket.ts';

/** The limit settings of a policy bundle (CompiledPolicy['limits'] fits). */
export interface LimitsConfig {
  readonly rateLimits: readonly RateLimitRule[];
  readonly budgets: readonly BudgetRule[];
  readonly costs: Readonly<Record<string, number>>;
  readonly loopGuard: LoopGuardConfig | null;
}

/** A call as the limits see it. */
export interface MeteredCall {
  /** ms since the epoch: decision time for a check, the DecisionMade's `occurredAt` once counted. */
  readonly at: number;
  readonly principal: Pick<Principal, 'id' | 'tenant' | 'team'>;
  readonly upstream: string;
  readonly tool: string;
  /** `sha256:` of the canonical JSON of the call's arguments: the loop guard's notion of "same call". */
  readonly argumentsDigest: string;
  /** Under the cost model in force (compileCostModel). */
  readonly cost: number;
  /** Ids of the rate limits and budgets the call counts against (`applicableLimits` in gateway/policy). */
  readonly limits: readonly string[];
}

/** The one event of this projection: a call was allowed and forwarded, and counts. */
export interface CallCounted extends MeteredCall {
  readonly type: 'CallCounted';
}

export interface EnforcementState {
  readonly buckets: Map<string, BucketState>;
  readonly budgets: Map<string, BudgetCounter>;
  readonly loops: Map<string, LoopWindow>;
}

export type LimitVerdict = { readonly effect: 'allow' } | { readonly effect: 'deny'; readonly trip: LimitTrip };

/** Budget spend as a decision sees it. Locally the state's counters; across replicas see shared-totals.ts. */
export interface BudgetSpendView {
  spend(budgetId: string, scopeValue: string, periodStart: number): BudgetSpend;
}

export function emptyEnforcementState(): EnforcementState {
  return { buckets: new Map(), budgets: new Map(), loops: new Map() };
}

export function scopeValue(scope: LimitScope, call: Pick<MeteredCall, 'principal' | 'upstream' | 'tool'>): string | undefined {
  switch (scope) {
    case 'key':
      return `${call.principal.tenant}/${call.principal.id}`;
    case 'team':
      return call.principal.team === undefined ? undefined : `${call.principal.tenant}/${call.principal.team}`;
    case 'tenant':
      return call.principal.tenant;
    case 'tool':
      return `${call.upstream}__${call.tool}`;
  }
}

// NUL cannot occur in ids (schema) and is harmless in the other parts: an unambiguous separator.
const entryKey = (...parts: readonly string[]): string => parts.join('\u0000');
const loopKey = (call: MeteredCall): string => entryKey(call.principal.tenant, call.principal.id, `${call.upstream}__${call.tool}`, call.argumentsDigest);

export function localSpendView(state: EnforcementState, budgets: readonly BudgetRule[]): BudgetSpendView {
  const periods = new Map(budgets.map((b) => [b.id, b.period]));
  return {
    spend(budgetId, value, start) {
      const period = periods.get(budgetId);
      return period === undefined ? { calls: 0, cost: 0 } : spendIn(state.budgets.get(entryKey(budgetId, value)), { period }, start);
    },
  };
}

const iso = (ms: number): string => new Date(ms).toISOString();
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * Loop guard first (the most specific), then rate limits, then budgets, each in bundle order;
 * the first refusal is returned. `spend` defaults to this state's own counters.
 */
export function checkLimits(state: EnforcementState, config: LimitsConfig, call: MeteredCall, spend: BudgetSpendView = localSpendView(state, config.budgets)): LimitVerdict {
  if (config.loopGuard !== null) {
    const loop = checkLoop(state.loops.get(loopKey(call)), config.loopGuard, call.at);
    if (loop.effect === 'deny') {
      return {
        effect: 'deny',
        trip: {
          kind: 'loop',
          limitId: LOOP_GUARD_ID,
          limit: loop.limit,
          count: loop.count,
          windowMs: loop.windowMs,
          retryAfterMs: loop.retryAfterMs,
          resetsAt: iso(call.at + loop.retryAfterMs),
          reason: `loop guard: ${call.upstream}__${call.tool} called with the same arguments ${loop.count} times within ${loop.windowMs} ms (at most ${loop.limit}); retry after ${loop.retryAfterMs} ms`,
        },
      };
    }
  }
  for (const rule of config.rateLimits) {
    if (!call.limits.includes(rule.id)) continue;
    const value = scopeValue(rule.scope, call);
    if (value === undefined) continue;
    const rate = checkRateLimit(state.buckets.get(entryKey(rule.id, value)), rule, call.at);
    if (rate.effect === 'deny') {
      return {
        effect: 'deny',
        trip: {
          kind: 'rate',
          limitId: rule.id,
          scope: rule.scope,
          scopeValue: value,
          limit: rate.limit,
          refillPerSecond: rate.refillPerSecond,
          retryAfterMs: rate.retryAfterMs,
          resetsAt: iso(call.at + rate.retryAfterMs),
          reason: `rate limit "${rule.id}" (${plural(rule.capacity, 'call')} burst, ${rule.refillPerSecond}/s per ${rule.scope}) exhausted for ${rule.scope} "${value}"; retry after ${rate.retryAfterMs} ms`,
        },
      };
    }
  }
  for (const rule of config.budgets) {
    if (!call.limits.includes(rule.id)) continue;
    const value = scopeValue(rule.scope, call);
    if (value === undefined) continue;
    const budget = checkBudgetSpend(spend.spend(rule.id, value, periodStart(rule.period, call.at)), rule, call);
    if (budget.effect === 'deny') {
      const spent = budget.metric === 'calls' ? plural(budget.spent, 'call') : `cost ${budget.spent}`;
      const limit = budget.metric === 'calls' ? plural(budget.limit, 'call') : `cost ${budget.limit}`;
      return {
        effect: 'deny',
        trip: {
          kind: 'budget',
          limitId: rule.id,
          scope: rule.scope,
          scopeValue: value,
          period: rule.period,
          metric: budget.metric,
          limit: budget.limit,
          spent: budget.spent,
          requested: budget.requested,
          retryAfterMs: budget.retryAfterMs,
          resetsAt: iso(budget.resetsAt),
          reason: `budget "${rule.id}" (${limit} per ${rule.period} per ${rule.scope}) exhausted for ${rule.scope} "${value}": ${spent} spent this ${rule.period}${budget.metric === 'cost' ? `, this call costs ${budget.requested}` : ''}; resets at ${iso(budget.resetsAt)}`,
        },
      };
    }
  }
  return { effect: 'allow' };
}

/** Applies a counted call to every limit it counts against. */
export function evolveLimits(state: EnforcementState, config: LimitsConfig, event: CallCounted): void {
  if (config.loopGuard !== null) {
    const key = loopKey(event);
    state.loops.set(key, evolveLoop(state.loops.get(key), config.loopGuard, event));
  }
  for (const rule of config.rateLimits) {
    if (!event.limits.includes(rule.id)) continue;
    const value = scopeValue(rule.scope, event);
    if (value === undefined) continue;
    const key = entryKey(rule.id, value);
    state.buckets.set(key, evolveRateLimit(state.buckets.get(key), rule, event));
  }
  for (const rule of config.budgets) {
    if (!event.limits.includes(rule.id)) continue;
    const value = scopeValue(rule.scope, event);
    if (value === undefined) continue;
    const key = entryKey(rule.id, value);
    state.budgets.set(key, evolveBudget(state.budgets.get(key), rule, event));
  }
}

/**
 * Forgets entries that can no longer change a decision at or after `now`: full buckets, budget
 * counters of past periods, loop windows that emptied, and entries of limits no longer in the
 * config. Call it now and then (not per request); decisions are the same with or without it.
 */
export function pruneLimits(state: EnforcementState, config: LimitsConfig, now: number): void {
  const rates = new Map(config.rateLimits.map((r) => [r.id, r]));
  const budgets = new Map(config.budgets.map((b) => [b.id, b]));
  const idOf = (key: string): string => key.slice(0, key.indexOf('\u0000'));
  for (const [key, bucket] of state.buckets) {
    const rule = rates.get(idOf(key));
    if (rule === undefined || fullAt(bucket, rule) <= now) state.buckets.delete(key);
  }
  for (const [key, counter] of state.budgets) {
    const rule = budgets.get(idOf(key));
    if (rule === undefined || counter.periodStart < periodStart(rule.period, now)) state.budgets.delete(key);
  }
  const windowMs = config.loopGuard?.windowMs;
  for (const [key, window] of state.loops) {
    if (windowMs === undefined || window.times.every((t) => t <= now - windowMs)) state.loops.delete(key);
  }
}

export interface EnforcementSnapshot {
  readonly buckets: readonly (readonly [string, BucketState])[];
  readonly budgets: readonly (readonly [string, BudgetCounter])[];
  readonly loops: readonly (readonly [string, LoopWindow])[];
}

/** Plain, sorted copy of the state: for tests, debugging and comparing a rebuild with live state. */
export function snapshotLimits(state: EnforcementState): EnforcementSnapshot {
  const sorted = <V>(map: Map<string, V>): (readonly [string, V])[] => [...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { buckets: sorted(state.buckets), budgets: sorted(state.budgets), loops: sorted(state.loops) };
}
