/**
 * A policy bundle compiled for the hot path: every CEL expression parsed and type-checked once,
 * at load. A bundle that does not compile is rejected whole (PolicyError naming the rule or
 * limit, and the position inside its expression), so an invalid reload leaves the running
 * policy in place.
 */
import { DEFAULT_APPROVAL_TIMEOUT_MS, DEFAULT_APPROVER_ROLES, policyBundleHash } from '#schemas';
import type { ApprovalSettings, BudgetRule, LoopGuardConfig, PolicyBundle, PolicyEffect, RateLimitRule } from '#schemas';
import { compileExpression } from './cel.ts';
import type { CompiledExpression } from './cel.ts';

export interface CompiledRule {
  readonly id: string;
  readonly effect: PolicyEffect;
  readonly description: string | undefined;
  readonly when: CompiledExpression;
  /** A `hold` rule's approval settings, defaults applied; undefined for allow and deny. */
  readonly approval: Readonly<ApprovalSettings> | undefined;
}

export interface CompiledLimitMatch {
  readonly id: string;
  /** Absent: the limit applies to every call. */
  readonly match: CompiledExpression | undefined;
}

export interface CompiledPolicy {
  /** `sha256:` of the canonical JSON of the bundle: recorded with every decision. */
  readonly hash: `sha256:${string}`;
  readonly bundle: PolicyBundle;
  readonly rules: readonly CompiledRule[];
  readonly defaultEffect: 'allow' | 'deny';
  /** Rate limits then budgets, in bundle order, with their compiled `match`. */
  readonly limitMatches: readonly CompiledLimitMatch[];
  /** The plain limit settings, for #projections (limits). */
  readonly limits: {
    readonly rateLimits: readonly RateLimitRule[];
    readonly budgets: readonly BudgetRule[];
    readonly costs: Readonly<Record<string, number>>;
    readonly loopGuard: LoopGuardConfig | null;
  };
}

/** Compiles a validated bundle (see `parsePolicyBundle` in #schemas). Throws PolicyError. */
export function compilePolicy(bundle: PolicyBundle): CompiledPolicy {
  const rules = bundle.rules.map((rule, i): CompiledRule => ({
    id: rule.id,
    effect: rule.effect,
    description: rule.description,
    when: compileExpression(rule.when, `rules[${i}] "${rule.id}" (when)`),
    approval: rule.effect === 'hold' ? (rule.approval ?? { timeoutMs: DEFAULT_APPROVAL_TIMEOUT_MS, approverRoles: [...DEFAULT_APPROVER_ROLES] }) : undefined,
  }));
  const limitMatches = [
    ...bundle.rateLimits.map((l, i) => ({ id: l.id, match: l.match === undefined ? undefined : compileExpression(l.match, `rateLimits[${i}] "${l.id}" (match)`) })),
    ...bundle.budgets.map((b, i) => ({ id: b.id, match: b.match === undefined ? undefined : compileExpression(b.match, `budgets[${i}] "${b.id}" (match)`) })),
  ];
  return Object.freeze({
    hash: policyBundleHash(bundle),
    bundle,
    rules: Object.freeze(rules),
    defaultEffect: bundle.defaultEffect,
    limitMatches: Object.freeze(limitMatches),
    limits: Object.freeze({ rateLimits: bundle.rateLimits, budgets: bundle.budgets, costs: bundle.costs, loopGuard: bundle.loopGuard }),
  });
}
