/**
 * The policy bundle contract: access rules (CEL), rate limits, budgets, the per-tool cost model
 * and the loop guard. Validated once when loaded: unknown keys are rejected and every error names
 * its key path. CEL expressions are only checked for shape here; `gateway/policy` compiles them
 * (syntax and types) and names the rule on failure.
 *
 * What a decision records about enforcement (`DecisionEnforcementSchema`, `LimitTripSchema`) is
 * part of the event contract: schemas/events.ts.
 */
import { z } from 'zod';
import { digestOf } from './canonical.ts';
import { formatConfigIssues } from './issues.ts';

export class PolicyError extends Error {
  readonly code = 'ATTEST_POLICY_INVALID';
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

const id = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9_.:-]{0,127}$/, 'letters, digits, "_", ".", ":" and "-", starting with a letter or digit, at most 128');
/** A CEL expression; compiled (and rejected with the rule id and position) by gateway/policy. */
const cel = z.string().trim().min(1, 'a CEL expression').max(4096, 'at most 4096 characters');
/** `<upstream>__<tool>` where either side may hold `*` wildcards, or `*` alone for every tool. */
const toolPattern = z.string().regex(/^(\*|[a-zA-Z0-9_*-]+__[^\s]+)$/, 'a pattern "<upstream>__<tool>" ("*" allowed on either side) or "*"');

/** The rule id a decision names when no rule matched. Reserved: no rule may use it. */
export const DEFAULT_RULE_ID = 'default';
/** The limit id a loop-guard trip names. Reserved: no rate limit or budget may use it. */
export const LOOP_GUARD_ID = 'loop-guard';

export const PolicyEffectSchema = z.enum(['allow', 'deny', 'hold']);
export type PolicyEffect = z.infer<typeof PolicyEffectSchema>;

/** The role that may use the approvals API and approve held calls (unless a rule names others). */
export const APPROVER_ROLE = 'attest:approver';
/** How long a held call waits for a human when its rule does not say: 5 minutes. Then it is denied. */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 300_000;
/** Who may approve when a rule does not say: approvers, and admins. */
export const DEFAULT_APPROVER_ROLES: readonly string[] = Object.freeze([APPROVER_ROLE, 'attest:admin']);

/** On a `hold` rule: how long the call waits for a decision (then it is denied, fail closed) and who may decide. */
export const ApprovalSettingsSchema = z
  .object({
    timeoutMs: z.number().int().min(1).max(86_400_000, 'at most 24 hours').default(DEFAULT_APPROVAL_TIMEOUT_MS),
    /** A principal holding any of these roles may grant or deny (never its own call). */
    approverRoles: z.array(z.string().min(1)).min(1, 'at least one role').default([...DEFAULT_APPROVER_ROLES]),
  })
  .strict();
export type ApprovalSettings = z.infer<typeof ApprovalSettingsSchema>;

export const PolicyRuleSchema = z
  .object({
    id: id.refine((v) => v !== DEFAULT_RULE_ID, `"${DEFAULT_RULE_ID}" is reserved for the default effect`),
    description: z.string().max(1000).optional(),
    effect: PolicyEffectSchema,
    /** Boolean CEL over principal, upstream, tool, method, args and now (gateway/policy/README.md). */
    when: cel,
    /** Only on a `hold` rule; absent → DEFAULT_APPROVAL_TIMEOUT_MS and DEFAULT_APPROVER_ROLES. */
    approval: ApprovalSettingsSchema.optional(),
  })
  .strict()
  .refine((rule) => rule.approval === undefined || rule.effect === 'hold', { message: 'approval settings belong on a rule with effect "hold"', path: ['approval'] });
export type PolicyRule = z.infer<typeof PolicyRuleSchema>;

const limitId = id.refine((v) => v !== LOOP_GUARD_ID, `"${LOOP_GUARD_ID}" is reserved for the loop guard`);

/** Token bucket: `capacity` calls in a burst, refilled at `refillPerSecond` (fractions allowed). Each call takes one token. */
export const RateLimitSchema = z
  .object({
    id: limitId,
    scope: z.enum(['key', 'team', 'tenant', 'tool']),
    /** Only calls for which this CEL expression holds are counted and limited; absent → every call. */
    match: cel.optional(),
    capacity: z.number().int().min(1),
    refillPerSecond: z.number().positive().finite(),
  })
  .strict();
export type RateLimitRule = z.infer<typeof RateLimitSchema>;
export type LimitScope = RateLimitRule['scope'];

/** Calls and/or cost per UTC calendar period (hour, day, month). */
export const BudgetSchema = z
  .object({
    id: limitId,
    scope: z.enum(['key', 'team', 'tenant']),
    period: z.enum(['hour', 'day', 'month']),
    maxCalls: z.number().int().min(1).optional(),
    maxCost: z.number().positive().finite().optional(),
    match: cel.optional(),
  })
  .strict()
  .refine((b) => b.maxCalls !== undefined || b.maxCost !== undefined, { message: 'a budget needs maxCalls, maxCost or both', path: ['maxCalls'] });
export type BudgetRule = z.infer<typeof BudgetSchema>;
export type BudgetPeriod = BudgetRule['period'];

export const LoopGuardSchema = z
  .object({
    /** Identical calls allowed within the window; the next one trips. */
    maxRepeats: z.number().int().min(1),
    windowMs: z.number().int().positive(),
  })
  .strict();
export type LoopGuardConfig = z.infer<typeof LoopGuardSchema>;

/** Cost of a call when no pattern of the cost model matches the tool. */
export const DEFAULT_CALL_COST = 1;

function duplicates(values: readonly string[]): Map<string, number[]> {
  const seen = new Map<string, number[]>();
  values.forEach((v, i) => seen.set(v, [...(seen.get(v) ?? []), i]));
  return new Map([...seen].filter(([, at]) => at.length > 1));
}

export const PolicyBundleSchema = z
  .object({
    /** Evaluated in order; the first rule whose `when` holds decides. */
    rules: z.array(PolicyRuleSchema).default([]),
    /** Effect when no rule matches. `deny` (the default) is what a governed gateway should run with. */
    defaultEffect: z.enum(['allow', 'deny']).default('deny'),
    rateLimits: z.array(RateLimitSchema).default([]),
    budgets: z.array(BudgetSchema).default([]),
    /** Cost per call by tool pattern; the most specific matching pattern wins; no match → 1 (DEFAULT_CALL_COST). */
    costs: z.record(toolPattern, z.number().nonnegative().finite()).default({}),
    /** Same principal, tool and arguments more than `maxRepeats` times in `windowMs` → refused. `null` turns it off. */
    loopGuard: LoopGuardSchema.nullable().default({ maxRepeats: 20, windowMs: 60_000 }),
  })
  .strict()
  .superRefine((bundle, ctx) => {
    for (const [dup, at] of duplicates(bundle.rules.map((r) => r.id))) {
      for (const i of at.slice(1)) ctx.addIssue({ code: 'custom', path: ['rules', i, 'id'], message: `duplicate rule id "${dup}"` });
    }
    // Rate limits and budgets share one id space: a decision records the ids it charged.
    const limits = [...bundle.rateLimits.map((l, i) => ({ id: l.id, path: ['rateLimits', i, 'id'] })), ...bundle.budgets.map((b, i) => ({ id: b.id, path: ['budgets', i, 'id'] }))];
    for (const [dup, at] of duplicates(limits.map((l) => l.id))) {
      for (const i of at.slice(1)) ctx.addIssue({ code: 'custom', path: limits[i]?.path ?? [], message: `duplicate limit id "${dup}" (rate limits and budgets share one id space)` });
    }
  });

export type PolicyBundle = z.infer<typeof PolicyBundleSchema>;
export type PolicyBundleInput = z.input<typeof PolicyBundleSchema>;

/** `sha256:` digest of the canonical JSON of a validated bundle (defaults applied): the version every decision names. */
export function policyBundleHash(bundle: PolicyBundle): `sha256:${string}` {
  return digestOf(bundle);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export interface ParsedPolicyBundle {
  readonly bundle: PolicyBundle;
  readonly hash: `sha256:${string}`;
}

/** Validates a policy document; throws PolicyError whose lines are `path: what is allowed`. The result is frozen. */
export function parsePolicyBundle(raw: unknown): ParsedPolicyBundle {
  const parsed = PolicyBundleSchema.safeParse(raw);
  if (!parsed.success) throw new PolicyError(`invalid policy:\n${formatConfigIssues(parsed.error)}`);
  const bundle = deepFreeze(parsed.data);
  return { bundle, hash: policyBundleHash(bundle) };
}
