/**
 * Enforcement state rebuilt from the gateway's own events, so that a restart never resets a
 * budget (ARCHITECTURE.md "Enforcement state": the gateway is a projection of its own log).
 *
 * A call counts when its DecisionMade says `allow` with route `forward`. What it counted against
 * comes from the same callId's RequestReceived (actor → key, team, tenant; upstream and target →
 * tool; params digest) and from the decision's `enforcement` record (cost, limit ids, arguments
 * digest) when present. The time is the DecisionMade's `occurredAt`: the live path must evolve
 * with that same time for the rebuilt state to equal the live one.
 *
 * Decisions recorded before `enforcement` existed fall back to: cost from the current cost
 * model, the limits without `match` (a `match` may read arguments that were recorded only as a
 * digest), and the digest of the whole params as the loop guard's digest.
 */
import { DecisionEnforcementSchema } from '#schemas';
import type { AttestEvent, DecisionEnforcement, EventOfType } from '#schemas';
import { compileCostModel } from './cost-model.ts';
import type { CostModel } from './cost-model.ts';
import { emptyEnforcementState, evolveLimits } from './enforcement.ts';
import type { CallCounted, EnforcementState, LimitsConfig } from './enforcement.ts';
import { periodStart } from './periods.ts';

export interface RebuildOptions {
  /** Methods whose forwarded agent requests are metered; must be what the live path meters. Default `tools/call`. */
  readonly methods?: readonly string[];
}

const DEFAULT_METHODS: readonly string[] = Object.freeze(['tools/call']);

function enforcementOf(decision: EventOfType<'DecisionMade'>): DecisionEnforcement | undefined {
  const data = decision.data;
  // `enforcement` is the proposed DecisionMade field; read defensively until events.ts has it.
  if (!('enforcement' in data)) return undefined;
  const parsed = DecisionEnforcementSchema.safeParse(data.enforcement);
  return parsed.success ? parsed.data : undefined;
}

/** Turns log events into the CallCounted events of the limits projection, pairing requests with decisions by callId. */
export class CallCountedTranslator {
  readonly #methods: ReadonlySet<string>;
  readonly #costs: CostModel;
  readonly #unconditionalLimits: readonly string[];
  /** Metered requests waiting for their decision (appended together, so this stays small; holds wait longer). */
  readonly #pending = new Map<string, EventOfType<'RequestReceived'>>();

  constructor(config: LimitsConfig, options: RebuildOptions = {}) {
    this.#methods = new Set(options.methods ?? DEFAULT_METHODS);
    this.#costs = compileCostModel(config.costs);
    this.#unconditionalLimits = [...config.rateLimits, ...config.budgets].filter((l) => l.match === undefined).map((l) => l.id);
  }

  translate(event: AttestEvent): CallCounted | undefined {
    if (event.callId === undefined) return undefined;
    if (event.type === 'RequestReceived') {
      if (event.data.from === 'agent' && this.#methods.has(event.data.method)) this.#pending.set(event.callId, event);
      return undefined;
    }
    if (event.type !== 'DecisionMade') return undefined;
    const request = this.#pending.get(event.callId);
    if (request === undefined) return undefined;
    if (event.data.decision === 'deny') {
      this.#pending.delete(event.callId);
      return undefined;
    }
    if (event.data.decision !== 'allow') return undefined; // e.g. a hold: wait for the decision after approval
    this.#pending.delete(event.callId);
    if (event.data.route !== 'forward') return undefined;
    const { upstream, target } = request.data;
    if (upstream === undefined || target === undefined) return undefined;
    const enforcement = enforcementOf(event);
    return {
      type: 'CallCounted',
      at: Date.parse(event.occurredAt),
      principal: { id: request.actor.id, tenant: request.actor.tenant, team: request.actor.team },
      upstream,
      tool: target,
      argumentsDigest: enforcement?.argumentsDigest ?? request.data.params.digest,
      cost: enforcement?.cost ?? this.#costs.costOf(upstream, target),
      limits: enforcement?.limits ?? this.#unconditionalLimits,
    };
  }

  /** Requests still waiting for a decision (held for approval, or cut off by the end of the read). */
  get pending(): number {
    return this.#pending.size;
  }
}

/** Streams events into a fresh state: `push` each event in log order, read `state` at the end (or any time). */
export class LimitsRebuilder {
  readonly state: EnforcementState = emptyEnforcementState();
  readonly #config: LimitsConfig;
  readonly #translator: CallCountedTranslator;

  constructor(config: LimitsConfig, options: RebuildOptions = {}) {
    this.#config = config;
    this.#translator = new CallCountedTranslator(config, options);
  }

  push(event: AttestEvent): void {
    const counted = this.#translator.translate(event);
    if (counted !== undefined) evolveLimits(this.state, this.#config, counted);
  }
}

export function rebuildLimits(events: Iterable<AttestEvent>, config: LimitsConfig, options: RebuildOptions = {}): EnforcementState {
  const rebuilder = new LimitsRebuilder(config, options);
  for (const event of events) rebuilder.push(event);
  return rebuilder.state;
}

/**
 * The earliest time whose events can still matter at `now`: the start of the longest budget
 * period in progress, the time an emptied bucket needs to refill, the loop window. Reading the
 * log from an index at or before this time gives the same decisions as reading all of it.
 */
export function rebuildHorizon(config: LimitsConfig, now: number): number {
  let horizon = now;
  for (const b of config.budgets) horizon = Math.min(horizon, periodStart(b.period, now));
  for (const r of config.rateLimits) horizon = Math.min(horizon, now - Math.ceil((r.capacity * 1000) / r.refillPerSecond));
  if (config.loopGuard !== null) horizon = Math.min(horizon, now - config.loopGuard.windowMs);
  return horizon;
}
