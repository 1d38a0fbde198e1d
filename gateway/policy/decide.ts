/**
 * The policy stage of the decision pipeline. Pure: same policy and request, same decision.
 *
 * Order semantics: rules are evaluated in bundle order and the FIRST rule whose `when` is true
 * decides (allow, deny or hold); later rules are not evaluated. No match → `defaultEffect`. So
 * put narrow exceptions before broad rules (an `allow` for admins before a `deny` for a tool
 * denies nothing to admins). A rule whose evaluation fails (missing key, wrong type, non-boolean
 * result) stops evaluation and DENIES, naming that rule: fail closed.
 */
import { DEFAULT_RULE_ID } from '#schemas';
import type { ApprovalSettings, PolicyEffect, Principal } from '#schemas';
import { celPrincipal } from './cel.ts';
import type { CelActivation, CompiledExpression } from './cel.ts';
import type { CompiledPolicy } from './compile-policy.ts';

export interface PolicyRequest {
  readonly principal: Principal;
  readonly upstream: string;
  /** Upstream-side tool name (for prompts/get the prompt name, for resources/* the URI). */
  readonly tool: string;
  readonly method: string;
  /** The call's `arguments` (a JSON object); absent → `{}`. */
  readonly args?: unknown;
  /** Decision time, ms since the epoch. */
  readonly now: number;
}

export interface PolicyDecision {
  readonly effect: PolicyEffect;
  /** The rule that decided, or `default`. */
  readonly ruleId: string;
  readonly reason: string;
  readonly policyHash: string;
  /** For `hold`: how long the call may wait and who may approve it. */
  readonly approval?: Readonly<ApprovalSettings> | undefined;
}

/** Rule id of a denial for arguments that are not a JSON object. */
export const INVALID_ARGUMENTS_RULE_ID = 'arguments';

const EMPTY_ARGS: Readonly<Record<string, unknown>> = Object.freeze({});

function isPlainObject(value: unknown): value is Readonly<Record<string, unknown>> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

export function activationOf(request: PolicyRequest, args: Readonly<Record<string, unknown>>): CelActivation {
  return { principal: celPrincipal(request.principal), upstream: request.upstream, tool: request.tool, method: request.method, args, now: new Date(request.now) };
}

function argsOf(request: PolicyRequest): Readonly<Record<string, unknown>> | undefined {
  if (request.args === undefined || request.args === null) return EMPTY_ARGS;
  return isPlainObject(request.args) ? request.args : undefined;
}

export type Evaluation = { readonly kind: 'true' } | { readonly kind: 'false' } | { readonly kind: 'error'; readonly message: string };

/** A boolean outcome, or why there is none (evaluation error, or a value that is not a boolean). */
export function evaluateCondition(expression: CompiledExpression, activation: CelActivation): Evaluation {
  const result = expression.evaluate(activation);
  if (!result.ok) return { kind: 'error', message: result.error };
  if (result.value === true) return { kind: 'true' };
  if (result.value === false) return { kind: 'false' };
  return { kind: 'error', message: `the expression gave ${typeof result.value}, not a boolean` };
}

export function decide(policy: CompiledPolicy, request: PolicyRequest): PolicyDecision {
  const args = argsOf(request);
  if (args === undefined) {
    return { effect: 'deny', ruleId: INVALID_ARGUMENTS_RULE_ID, reason: 'the call\'s arguments are not a JSON object; denied (fail closed)', policyHash: policy.hash };
  }
  const activation = activationOf(request, args);
  for (const rule of policy.rules) {
    const outcome = evaluateCondition(rule.when, activation);
    if (outcome.kind === 'false') continue;
    if (outcome.kind === 'error') {
      return { effect: 'deny', ruleId: rule.id, reason: `rule "${rule.id}" could not be evaluated: ${outcome.message}; denied (fail closed)`, policyHash: policy.hash };
    }
    return { effect: rule.effect, ruleId: rule.id, reason: `rule "${rule.id}" (${rule.effect})${rule.description === undefined ? ` matched: ${rule.when.source}` : `: ${rule.description}`}`, policyHash: policy.hash, ...(rule.approval !== undefined && { approval: rule.approval }) };
  }
  return { effect: policy.defaultEffect, ruleId: DEFAULT_RULE_ID, reason: `no rule matched; the default effect is ${policy.defaultEffect}`, policyHash: policy.hash };
}

export type ApplicableLimits =
  | { readonly ok: true; readonly limits: readonly string[] }
  | { readonly ok: false; readonly limitId: string; readonly reason: string };

/**
 * Ids of the rate limits and budgets a call counts against: those without `match`, and those
 * whose `match` holds. A `match` that cannot be evaluated refuses the call (fail closed): a
 * limit that cannot tell whether it applies must not be skipped.
 */
export function applicableLimits(policy: CompiledPolicy, request: PolicyRequest): ApplicableLimits {
  const args = argsOf(request);
  if (args === undefined) return { ok: false, limitId: INVALID_ARGUMENTS_RULE_ID, reason: 'the call\'s arguments are not a JSON object' };
  let activation: CelActivation | undefined;
  const limits: string[] = [];
  for (const limit of policy.limitMatches) {
    if (limit.match === undefined) {
      limits.push(limit.id);
      continue;
    }
    activation ??= activationOf(request, args);
    const outcome = evaluateCondition(limit.match, activation);
    if (outcome.kind === 'error') return { ok: false, limitId: limit.id, reason: `limit "${limit.id}" could not tell whether it applies: ${outcome.message}; denied (fail closed)` };
    if (outcome.kind === 'true') limits.push(limit.id);
  }
  return { ok: true, limits };
}
