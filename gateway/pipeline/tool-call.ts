/**
 * The decision pipeline of a tools/call (docs/architecture.md "The hot path"), as typed stages run
 * in order, each a small pure function of the call and what the stages before it found:
 *
 *   authentication  the front door (gateway/http): the principal a stage sees is already established
 *   tool-pinning    a tool whose definition changed since it was pinned is quarantined
 *   input-schema    the arguments against the tool's listed inputSchema
 *   tool-access     the credential's allowTools / denyTools
 *   policy          the policy bundle's CEL rules: allow, deny, or hold for a person
 *   limits          loop guard, rate limits, budgets (the charge itself is taken when the decision is drafted)
 *   approval        a held call waits for a person, where this gateway can hold calls
 *
 * The first stage that refuses ends the pipeline with its stage name and rule id (what
 * DecisionMade records); otherwise the call is allowed, or held. Data policy (how much of the call
 * is recorded) is not a decision: `recordingFor` (gateway/redaction/data-policy.ts) gives it beside.
 */
import { GatewayError } from '#schemas';
import type { ApprovalSettings, DecisionEnforcement, Principal, Stage } from '#schemas';
import type { MeteredCall } from '#projections';
import type { ToolAccess } from '../auth/api-keys.ts';
import type { Governance } from '../governance.ts';
import type { Quarantine } from '../pins/tool-pins.ts';

/** One tools/call, after routing found its upstream and the tool's upstream-side name. */
export interface ToolCall {
  readonly principal: Principal;
  readonly upstream: string;
  readonly tool: string;
  /** The call's `arguments`. */
  readonly args: unknown;
  readonly now: number;
}

export type ToolCallDecision =
  | { readonly kind: 'deny'; readonly error: GatewayError; readonly stage: Stage; readonly ruleId: string; readonly enforcement?: DecisionEnforcement | undefined }
  | { readonly kind: 'hold'; readonly ruleId: string; readonly reason: string; readonly approval: Readonly<ApprovalSettings>; readonly argumentsDigest: string }
  | { readonly kind: 'allow'; readonly ruleId: string; readonly reason: string; readonly meter?: MeteredCall | undefined; readonly enforcement?: DecisionEnforcement | undefined };

/** What the stages before this one found: the rule that allowed so far, and whether a rule holds the call. */
export interface Findings {
  readonly ruleId: string;
  readonly reason: string;
  readonly hold?: { readonly ruleId: string; readonly reason: string; readonly approval: Readonly<ApprovalSettings> } | undefined;
  readonly meter?: MeteredCall | undefined;
  readonly enforcement?: DecisionEnforcement | undefined;
}

/** A stage: refuse (a `deny` decision) or pass on what it found (merged into the findings). */
export type StageResult = Extract<ToolCallDecision, { kind: 'deny' }> | { readonly kind: 'pass'; readonly found?: Partial<Findings> };

/** The stages, by name (what a refusal records is its own Stage: the limits stage names rate-limit, budget or loop-guard). */
export type PipelineStageName = 'tool-pinning' | 'input-schema' | 'tool-access' | 'policy' | 'limits' | 'approval';

export interface ToolCallStage {
  readonly name: PipelineStageName;
  decide(call: ToolCall, findings: Findings): StageResult;
}

const PASS: StageResult = Object.freeze({ kind: 'pass' });

function refuse(stage: Stage, ruleId: string, error: GatewayError, enforcement?: DecisionEnforcement): StageResult {
  return { kind: 'deny', error, stage, ruleId, ...(enforcement !== undefined && { enforcement }) };
}

/** A quarantined tool is refused until an admin decides on its new definition (docs/tool-pinning.md). */
export function toolPinningStage(quarantine: (upstream: string, tool: string) => Quarantine | undefined): ToolCallStage {
  return {
    name: 'tool-pinning',
    decide({ upstream, tool }) {
      const q = quarantine(upstream, tool);
      if (q === undefined) return PASS;
      const error = new GatewayError(
        'ATTEST_TOOL_QUARANTINED',
        `Tool "${tool}" of upstream "${upstream}" is quarantined: its definition changed since it was pinned (pinned ${q.pinnedHash}, now ${q.observedHash})${q.rejected ? '; an admin rejected this definition' : '; an admin must approve the new definition (attest pins approve)'}`,
        { upstream, tool, pinnedHash: q.pinnedHash, observedHash: q.observedHash },
      );
      return refuse('tool-pinning', q.rejected ? 'tool-definition-rejected' : 'tool-definition-changed', error);
    },
  };
}

/** The arguments against the inputSchema the upstream listed for the tool (undefined problem: valid, or no schema known). */
export function inputSchemaStage(problem: (upstream: string, tool: string, args: unknown) => string | undefined): ToolCallStage {
  return {
    name: 'input-schema',
    decide({ upstream, tool, args }) {
      const invalid = problem(upstream, tool, args);
      return invalid === undefined ? PASS : refuse('input-schema', 'tool-input-schema', new GatewayError('ATTEST_INVALID_PARAMS', `Invalid arguments for tool "${tool}": ${invalid}`, { tool }));
    },
  };
}

/** The credential's tool lists (deny wins; no allow match → denied). `qualified` names the tool as the lists do. */
export function toolAccessStage(access: () => ToolAccess, qualified: (upstream: string, tool: string) => string): ToolCallStage {
  return {
    name: 'tool-access',
    decide({ upstream, tool }) {
      const verdict = access().check(qualified(upstream, tool));
      if (!verdict.allowed) return refuse('tool-access', verdict.ruleId, new GatewayError('ATTEST_DENIED', `Denied by policy: ${verdict.reason}`, { ruleId: verdict.ruleId }));
      return { kind: 'pass', found: { ruleId: verdict.ruleId, reason: verdict.reason } };
    },
  };
}

/** The policy bundle's rules: the first match decides; a `hold` is carried to the approval stage. No policy: nothing to decide. */
export function policyStage(governance: () => Governance | undefined): ToolCallStage {
  return {
    name: 'policy',
    decide(call, findings) {
      const policy = governance();
      if (policy === undefined) return PASS;
      const ruling = policy.rule(call.principal, call.upstream, call.tool, call.args, call.now);
      if (ruling.effect === 'deny') return refuse('policy', ruling.ruleId, ruling.error);
      const reason = `${findings.reason}; ${ruling.reason}`;
      if (ruling.effect === 'hold') return { kind: 'pass', found: { hold: { ruleId: ruling.ruleId, reason, approval: ruling.approval } } };
      return { kind: 'pass', found: { ruleId: ruling.ruleId, reason } };
    },
  };
}

/** Loop guard, rate limits, budgets: the charge a call would take, or the limit that refuses it (a held call is checked now too). */
export function limitsStage(governance: () => Governance | undefined): ToolCallStage {
  return {
    name: 'limits',
    decide(call, findings) {
      const limits = governance();
      if (limits === undefined) return PASS;
      const ruleId = findings.hold?.ruleId ?? findings.ruleId;
      const verdict = limits.admit(call.principal, call.upstream, call.tool, call.args, call.now, ruleId, findings.hold?.reason ?? findings.reason);
      if (verdict.effect === 'deny') return refuse(verdict.stage as Stage, verdict.ruleId, verdict.error, verdict.enforcement);
      return { kind: 'pass', found: { meter: verdict.meter, enforcement: verdict.enforcement } };
    },
  };
}

/** A held call: where this gateway cannot hold calls (stdio: no approvals API), it is refused. */
export function approvalStage(canHold: () => boolean): ToolCallStage {
  return {
    name: 'approval',
    decide(_call, findings) {
      const hold = findings.hold;
      if (hold === undefined || canHold()) return PASS;
      return refuse('approval', hold.ruleId, new GatewayError('ATTEST_APPROVAL_REQUIRED', `Approval required by rule "${hold.ruleId}", and this gateway (stdio) has no approvals API to grant it: refused`, { ruleId: hold.ruleId }));
    },
  };
}

/** Runs the stages in order: the first refusal decides; else allow (with the limits' charge), or hold. */
export function decideToolCall(call: ToolCall, stages: readonly ToolCallStage[]): ToolCallDecision {
  let findings: Findings = { ruleId: 'default', reason: 'allowed' };
  for (const stage of stages) {
    const result = stage.decide(call, findings);
    if (result.kind === 'deny') return result;
    if (result.found !== undefined) findings = { ...findings, ...result.found };
  }
  const { hold } = findings;
  if (hold !== undefined) return { kind: 'hold', ruleId: hold.ruleId, reason: hold.reason, approval: hold.approval, argumentsDigest: findings.enforcement?.argumentsDigest ?? '' };
  return { kind: 'allow', ruleId: findings.ruleId, reason: findings.reason, meter: findings.meter, enforcement: findings.enforcement };
}
