/**
 * Pending approvals of one gateway process: the calls a `hold` rule stopped, waiting for a person.
 * The session that holds a call opens it here once its ApprovalRequested is durable, and settles
 * it when the broker hands back an outcome: a grant or denial (from the approvals API), the
 * deadline passing, or the agent withdrawing the call. Each approval settles exactly once — the
 * first outcome removes it, so a late grant finds nothing (ATTEST_NOT_FOUND).
 *
 * Who may decide: a principal holding one of the approval's `approverRoles`, of the agent's
 * tenant (an `attest:admin` may decide across tenants), and never the agent that made the call.
 */
import { APPROVER_ROLE, GatewayError } from '#schemas';
import type { Principal } from '#schemas';
import { ADMIN_ROLE } from '../http/admin-auth.ts';

export interface PendingApproval {
  /** The call id: one approval per held call. */
  readonly id: string;
  readonly sessionId: string;
  readonly tenant: string;
  readonly agent: Principal;
  readonly upstream: string;
  readonly tool: string;
  readonly argumentsDigest: string;
  /** The call's arguments, when the upstream's recording is `full` (the log holds them anyway). */
  readonly arguments?: unknown;
  readonly ruleId: string;
  readonly reason: string;
  readonly approverRoles: readonly string[];
  readonly requestedAt: string;
  readonly expiresAt: string;
}

export type ApprovalOutcome =
  | { readonly kind: 'granted'; readonly approver: Principal; readonly reason: string }
  | { readonly kind: 'denied'; readonly approver: Principal; readonly reason: string }
  | { readonly kind: 'expired' }
  | { readonly kind: 'withdrawn'; readonly reason: string };

/** Records the outcome (durably) and continues the call; resolves with the id of the event recording it. */
export type SettleApproval = (outcome: ApprovalOutcome) => Promise<string>;

interface Entry {
  readonly approval: PendingApproval;
  readonly settle: SettleApproval;
  readonly timer: NodeJS.Timeout;
}

export class ApprovalBroker {
  /** The gateway instance, recorded in ApprovalRequested. */
  readonly instance: string;
  readonly #approverRoles: () => Iterable<string>;
  readonly #pending = new Map<string, Entry>();

  readonly #onError: (error: unknown, approvalId: string) => void;

  /**
   * `approverRoles`: every role the policy in force lets approve (read on each use: a policy may be
   * reloaded). `onError`: an expiry whose events could not be recorded (logged by the gateway).
   */
  constructor(instance: string, approverRoles: () => Iterable<string>, onError: (error: unknown, approvalId: string) => void = () => undefined) {
    this.instance = instance;
    this.#approverRoles = approverRoles;
    this.#onError = onError;
  }

  /** Every role any rule lets approve, and `attest:approver`: holding one opens the approvals API. */
  get approverRoles(): ReadonlySet<string> {
    return new Set([APPROVER_ROLE, ...this.#approverRoles()]);
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Starts waiting for a decision until `approval.expiresAt`; then the approval expires (fail closed). */
  open(approval: PendingApproval, settle: SettleApproval): void {
    if (this.#pending.has(approval.id)) throw new Error(`approval ${approval.id} is already pending`);
    const delay = Math.max(0, Date.parse(approval.expiresAt) - Date.now());
    const timer = setTimeout(() => void this.#settle(approval.id, { kind: 'expired' })?.catch((error: unknown) => this.#onError(error, approval.id)), delay);
    this.#pending.set(approval.id, { approval, settle, timer });
  }

  /** The pending approvals `principal` may decide (an admin sees every one). */
  list(principal: Principal): PendingApproval[] {
    return [...this.#pending.values()].map((e) => e.approval).filter((a) => principal.roles.includes(ADMIN_ROLE) || mayDecide(principal, a) === undefined);
  }

  /** A grant or denial by `approver`; resolves once it is recorded, with that event's id. */
  async decide(id: string, approver: Principal, verdict: 'grant' | 'deny', reason: string): Promise<{ approval: PendingApproval; eventId: string }> {
    const entry = this.#pending.get(id);
    if (entry === undefined) throw new GatewayError('ATTEST_NOT_FOUND', `No pending approval "${id}": unknown, already decided, expired or withdrawn`, { approvalId: id });
    const refusal = mayDecide(approver, entry.approval);
    if (refusal !== undefined) throw new GatewayError('ATTEST_FORBIDDEN', `Forbidden: ${refusal}`, { approvalId: id, approverRoles: [...entry.approval.approverRoles] });
    const settled = this.#settle(id, verdict === 'grant' ? { kind: 'granted', approver, reason } : { kind: 'denied', approver, reason });
    if (settled === undefined) throw new GatewayError('ATTEST_NOT_FOUND', `No pending approval "${id}": it was settled meanwhile`, { approvalId: id });
    return { approval: entry.approval, eventId: await settled };
  }

  /** The agent cancelled, or its session ended: the approval is withdrawn. Undefined when it was not pending. */
  withdraw(id: string, reason: string): Promise<string> | undefined {
    return this.#settle(id, { kind: 'withdrawn', reason });
  }

  #settle(id: string, outcome: ApprovalOutcome): Promise<string> | undefined {
    const entry = this.#pending.get(id);
    if (entry === undefined) return undefined;
    this.#pending.delete(id);
    clearTimeout(entry.timer);
    return entry.settle(outcome);
  }
}

/** Why `principal` may not decide `approval`, or undefined when it may. */
export function mayDecide(principal: Principal, approval: PendingApproval): string | undefined {
  const agent = approval.agent;
  if (principal.kind === agent.kind && principal.id === agent.id && principal.tenant === agent.tenant) {
    return `an agent cannot approve its own call ("${principal.id}" made call ${approval.id})`;
  }
  if (!principal.roles.some((role) => approval.approverRoles.includes(role))) {
    return `deciding approval ${approval.id} needs one of the roles ${approval.approverRoles.map((r) => `"${r}"`).join(', ')}`;
  }
  if (principal.tenant !== approval.tenant && !principal.roles.includes(ADMIN_ROLE)) {
    return `approval ${approval.id} belongs to tenant "${approval.tenant}", not "${principal.tenant}"`;
  }
  return undefined;
}
