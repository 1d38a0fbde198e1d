/**
 * The governance stage of the decision pipeline: the policy bundle's CEL rules, then its limits
 * (loop guard, rate limits, budgets), for every tools/call. Pure decisions from gateway/policy
 * and #projections (limits); this module holds the enforcement state, which is a projection of the log:
 * rebuilt from it at start, and charged in log order as decisions are recorded.
 */
import { DEFAULT_APPROVAL_TIMEOUT_MS, DEFAULT_APPROVER_ROLES, GatewayError, digestOf } from '#schemas';
import type { ApprovalSettings, AttestConfig, EventDraft, Principal } from '#schemas';
import type { DecisionEnforcement, LimitTrip } from '#schemas';
import type { LogReadable } from '#eventlog';
import { applicableLimits, compilePolicy, decide, visibleTools } from './policy/index.ts';
import type { CompiledPolicy } from './policy/index.ts';
import { LimitsRebuilder, PRUNE_EVERY_COUNTED, checkLimits, compileCostModel, emptyEnforcementState, evolveLimits, pruneLimits, snapshotLimits } from '#projections';
import type { CallCounted, CostModel, EnforcementSnapshot, EnforcementState, LimitsFoldState, MeteredCall } from '#projections';

export type GovernanceVerdict =
  | { readonly effect: 'deny'; readonly error: GatewayError; readonly stage: string; readonly ruleId: string; readonly enforcement?: DecisionEnforcement }
  | { readonly effect: 'allow'; readonly ruleId: string; readonly reason: string; readonly meter: MeteredCall; readonly enforcement: DecisionEnforcement }
  | { readonly effect: 'hold'; readonly ruleId: string; readonly reason: string; readonly approval: Readonly<ApprovalSettings>; readonly argumentsDigest: string };

/** A charge waiting for its decision to be durable (Governance.charge). */
export interface ReservedCharge {
  /** The decision is durable: the charge enters the enforcement state. */
  confirm(): void;
  /** The log refused the decision: the charge is undone, as if the call never happened. */
  cancel(): void;
}

export type PolicyRuling =
  | { readonly effect: 'deny'; readonly ruleId: string; readonly error: GatewayError }
  | { readonly effect: 'allow'; readonly ruleId: string; readonly reason: string }
  | { readonly effect: 'hold'; readonly ruleId: string; readonly reason: string; readonly approval: Readonly<ApprovalSettings> };

const TRIP_ERRORS = { rate: 'ATTEST_RATE_LIMITED', budget: 'ATTEST_BUDGET_EXHAUSTED', loop: 'ATTEST_LOOP_DETECTED' } as const;
const TRIP_STAGES = { rate: 'rate-limit', budget: 'budget', loop: 'loop-guard' } as const;

export class Governance {
  readonly policy: CompiledPolicy;
  readonly #costs: CostModel;
  /** The fold of the durable decisions (what a rebuild from the log gives): changed only by `Charge.confirm`. */
  #durable: EnforcementState = emptyEnforcementState();
  /** What decisions see: the durable state plus every charge whose decision is not durable yet. */
  #speculative: EnforcementState = emptyEnforcementState();
  /** Charges waiting for their DecisionMade to be durable, by decision id, in charge (log) order. */
  readonly #reserved = new Map<string, CallCounted>();
  /** Confirmed charges, for pruning every PRUNE_EVERY_COUNTED (as the log fold does). */
  #counted = 0;
  /**
   * Config reload (gateway/reload.ts): told of every charge made durable while set, so the
   * governance that replaces this one gets the decisions its rebuild did not read, and those
   * confirmed after the swap.
   */
  onCharge: ((meter: MeteredCall, decision: EventDraft) => void) | undefined;

  constructor(bundle: NonNullable<AttestConfig['policy']>) {
    this.policy = compilePolicy(bundle);
    this.#costs = compileCostModel(this.policy.limits.costs);
  }

  get policyHash(): `sha256:${string}` {
    return this.policy.hash;
  }

  /** Enforcement state folded from the log at start (projections): a restart never resets a budget, a window or a loop count. */
  load(fold: LimitsFoldState): void {
    this.#durable = fold.enforcement;
    this.#counted = fold.counted;
    this.#rederive();
  }

  /** Enforcement state from a read of the whole log (a reload that changed the policy: the fold depends on its limits). */
  async rebuild(log: LogReadable, seenDecisions?: Set<string>): Promise<void> {
    const rebuilder = new LimitsRebuilder(this.policy.limits);
    for await (const { event } of log.read()) {
      rebuilder.push(event);
      if (event.type === 'DecisionMade') seenDecisions?.add(event.id);
    }
    this.#durable = rebuilder.state;
    this.#counted = rebuilder.fold.counted;
    this.#rederive();
  }

  /**
   * Decides a tools/call: rules first (first match wins), then the limits the call counts against.
   * A `hold` is returned only for a call the limits would admit now (asking a person to approve a
   * call the limits refuse anyway is pointless); `admit` checks them again once it is approved.
   */
  check(principal: Principal, upstream: string, tool: string, args: unknown, now: number): GovernanceVerdict {
    const ruling = this.rule(principal, upstream, tool, args, now);
    if (ruling.effect === 'deny') return { effect: 'deny', error: ruling.error, stage: 'policy', ruleId: ruling.ruleId };
    const limited = this.admit(principal, upstream, tool, args, now, ruling.ruleId, ruling.reason);
    if (ruling.effect === 'allow' || limited.effect !== 'allow') return limited;
    return { effect: 'hold', ruleId: ruling.ruleId, reason: ruling.reason, approval: ruling.approval, argumentsDigest: limited.enforcement.argumentsDigest };
  }

  /** The policy stage alone: the rules, first match wins (a `hold` comes with its approval settings). */
  rule(principal: Principal, upstream: string, tool: string, args: unknown, now: number): PolicyRuling {
    const ruling = decide(this.policy, { principal, upstream, tool, method: 'tools/call', args, now });
    if (ruling.effect === 'deny') return { effect: 'deny', ruleId: ruling.ruleId, error: new GatewayError('ATTEST_DENIED', `Denied by policy: ${ruling.reason}`, { ruleId: ruling.ruleId }) };
    if (ruling.effect === 'allow') return { effect: 'allow', ruleId: ruling.ruleId, reason: ruling.reason };
    return { effect: 'hold', ruleId: ruling.ruleId, reason: ruling.reason, approval: ruling.approval ?? { timeoutMs: DEFAULT_APPROVAL_TIMEOUT_MS, approverRoles: [...DEFAULT_APPROVER_ROLES] } };
  }

  /** The limits of a call the rules allowed (or a person approved), at `now`: allow with its charge, or the limit that refuses it. */
  admit(principal: Principal, upstream: string, tool: string, args: unknown, now: number, ruleId: string, reason: string): Exclude<GovernanceVerdict, { effect: 'hold' }> {
    const request = { principal, upstream, tool, method: 'tools/call', args, now };
    const applicable = applicableLimits(this.policy, request);
    if (!applicable.ok) {
      return { effect: 'deny', error: new GatewayError('ATTEST_DENIED', `Denied by policy: ${applicable.reason}`, { ruleId: applicable.limitId }), stage: 'policy', ruleId: applicable.limitId };
    }
    const argumentsDigest = digestOf(args ?? {});
    const meter: MeteredCall = { at: now, principal, upstream, tool, argumentsDigest, cost: this.#costs.costOf(upstream, tool), limits: applicable.limits };
    const enforcement: DecisionEnforcement = { cost: meter.cost, limits: meter.limits, argumentsDigest };
    const verdict = checkLimits(this.#speculative, this.policy.limits, meter);
    if (verdict.effect === 'deny') return denyTrip(verdict.trip, enforcement);
    return { effect: 'allow', ruleId, reason, meter, enforcement };
  }

  /**
   * Charges an allowed call. Called synchronously when its DecisionMade is drafted, so concurrent
   * calls cannot overshoot: later decisions see the charge at once (the speculative state). The
   * enforcement state proper changes only when the decision is durable — `confirm()` once the
   * append resolved (appends resolve in log order, so the durable state is the log's fold), or
   * `cancel()` when the log refused it: a refused call leaves no trace in any state (no drift).
   */
  charge(meter: MeteredCall, decision: EventDraft): ReservedCharge {
    const call: CallCounted = { ...meter, type: 'CallCounted', at: Date.parse(decision.occurredAt) };
    evolveLimits(this.#speculative, this.policy.limits, call);
    this.#reserved.set(decision.id, call);
    return {
      confirm: () => {
        if (!this.#reserved.delete(decision.id)) return;
        this.#applyDurable(call);
        this.onCharge?.(meter, decision);
      },
      cancel: () => {
        if (this.#reserved.delete(decision.id)) this.#rederive();
      },
    };
  }

  /** A decision made durable elsewhere (the governance this one replaces, during a reload): into both states. */
  applyCounted(meter: MeteredCall, decision: EventDraft): void {
    const call: CallCounted = { ...meter, type: 'CallCounted', at: Date.parse(decision.occurredAt) };
    this.#applyDurable(call);
    evolveLimits(this.#speculative, this.policy.limits, call);
  }

  /** Plain copies of both states and the reservations, for tests comparing them with a rebuild from the log. */
  inspect(): { readonly durable: EnforcementSnapshot; readonly speculative: EnforcementSnapshot; readonly reserved: number } {
    return { durable: snapshotLimits(this.#durable), speculative: snapshotLimits(this.#speculative), reserved: this.#reserved.size };
  }

  #applyDurable(call: CallCounted): void {
    evolveLimits(this.#durable, this.policy.limits, call);
    this.#counted++;
    if (this.#counted % PRUNE_EVERY_COUNTED === 0) {
      // Bounded: entries that can no longer change a decision go, at the same points as in the log fold.
      pruneLimits(this.#durable, this.policy.limits, call.at);
      this.#rederive();
    }
  }

  /** The speculative state again from the durable one and the charges still waiting. */
  #rederive(): void {
    const state: EnforcementState = { buckets: new Map(this.#durable.buckets), budgets: new Map(this.#durable.budgets), loops: new Map(this.#durable.loops) };
    for (const call of this.#reserved.values()) evolveLimits(state, this.policy.limits, call);
    this.#speculative = state;
  }

  /**
   * The tools an agent may see: those a call with empty arguments would not be denied by a rule.
   * With `method` (`prompts/get`, `resources/read`), the prompts or resources (`tool` = the prompt
   * name or the URI) it may get or read.
   */
  visible<T extends { readonly upstream: string; readonly tool: string }>(principal: Principal, tools: readonly T[], method = 'tools/call'): T[] {
    return visibleTools(this.policy, principal, tools, { now: Date.now(), method });
  }

  /**
   * Decides a `prompts/get`, `resources/read` or `resources/subscribe` (and the completions of a
   * prompt or template): the rules only, with `tool` = the prompt name or the URI and `args` = the
   * prompt's arguments. Limits count tool calls, not these. A `hold` is refused: approvals wait on
   * tools/call only (fail closed, saying so).
   */
  checkAccess(principal: Principal, upstream: string, method: string, name: string, args: unknown, now: number): { readonly allowed: true; readonly ruleId: string; readonly reason: string } | { readonly allowed: false; readonly error: GatewayError; readonly ruleId: string } {
    const ruling = decide(this.policy, { principal, upstream, tool: name, method, args, now });
    if (ruling.effect === 'allow') return { allowed: true, ruleId: ruling.ruleId, reason: ruling.reason };
    if (ruling.effect === 'hold') {
      return { allowed: false, ruleId: ruling.ruleId, error: new GatewayError('ATTEST_DENIED', `Denied by policy: rule "${ruling.ruleId}" holds ${method} for approval, and approvals apply to tools/call only`, { ruleId: ruling.ruleId }) };
    }
    return { allowed: false, ruleId: ruling.ruleId, error: new GatewayError('ATTEST_DENIED', `Denied by policy: ${ruling.reason}`, { ruleId: ruling.ruleId }) };
  }
}

function denyTrip(trip: LimitTrip, enforcement: DecisionEnforcement): Extract<GovernanceVerdict, { effect: 'deny' }> {
  const error = new GatewayError(TRIP_ERRORS[trip.kind], trip.reason, { limitId: trip.limitId, limit: trip.limit, retryAfterMs: trip.retryAfterMs, resetsAt: trip.resetsAt });
  return { effect: 'deny', error, stage: TRIP_STAGES[trip.kind], ruleId: trip.limitId, enforcement: { ...enforcement, trip } };
}
