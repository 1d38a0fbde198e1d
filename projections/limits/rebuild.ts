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
import { DecisionEnforcementReadSchema } from '#schemas';
import type { AttestEvent, DecisionEnforcement, EventOfType } from '#schemas';
import { compileCostModel } from './cost-model.ts';
import type { CostModel } from './cost-model.ts';
import { emptyEnforcementState, evolveLimits, pruneLimits } from './enforcement.ts';
import type { CallCounted, EnforcementState, LimitsConfig } from './enforcement.ts';
import { periodStart } from './periods.ts';

export interface RebuildOptions {
  /** Methods whose forwarded agent requests are metered; must be what the live path meters. Default `tools/call`. */
  readonly methods?: readonly string[];
}

const DEFAULT_METHODS: readonly string[] = Object.freeze(['tools/call']);

function enforcementOf(decision: EventOfType<'DecisionMade'>): DecisionEnforcement | undefined {
  // Read strength: a newer minor version may have added fields to the record.
  const parsed = DecisionEnforcementReadSchema.safeParse(decision.data.enforcement);
  return parsed.success ? parsed.data : undefined;
}

/** A metered agent request waiting for its decision: what the limits need of its RequestReceived. */
export interface MeteredRequest {
  readonly principal: { readonly id: string; readonly tenant: string; readonly team?: string | undefined };
  readonly upstream: string | undefined;
  readonly target: string | undefined;
  readonly paramsDigest: string;
}

/** Turns log events into the CallCounted events of the limits projection, pairing requests with decisions by callId. */
export class CallCountedTranslator {
  readonly #methods: ReadonlySet<string>;
  readonly #costs: CostModel;
  readonly #unconditionalLimits: readonly string[];
  /** Metered requests waiting for their decision (appended together, so this stays small; holds wait longer). */
  readonly pending: Map<string, MeteredRequest>;

  constructor(config: LimitsConfig, options: RebuildOptions = {}, pending: Map<string, MeteredRequest> = new Map()) {
    this.#methods = new Set(options.methods ?? DEFAULT_METHODS);
    this.#costs = compileCostModel(config.costs);
    this.#unconditionalLimits = [...config.rateLimits, ...config.budgets].filter((l) => l.match === undefined).map((l) => l.id);
    this.pending = pending;
  }

  translate(event: AttestEvent): CallCounted | undefined {
    if (event.callId === undefined) return undefined;
    if (event.type === 'RequestReceived') {
      if (event.data.from === 'agent' && this.#methods.has(event.data.method)) {
        const { id, tenant, team } = event.actor;
        this.pending.set(event.callId, { principal: { id, tenant, team }, upstream: event.data.upstream, target: event.data.target, paramsDigest: event.data.params.digest });
      }
      return undefined;
    }
    if (event.type !== 'DecisionMade') return undefined;
    const request = this.pending.get(event.callId);
    if (request === undefined) return undefined;
    if (event.data.decision === 'deny') {
      this.pending.delete(event.callId);
      return undefined;
    }
    if (event.data.decision !== 'allow') return undefined; // e.g. a hold: wait for the decision after approval
    this.pending.delete(event.callId);
    if (event.data.route !== 'forward') return undefined;
    const { upstream, target } = request;
    if (upstream === undefined || target === undefined) return undefined;
    const enforcement = enforcementOf(event);
    return {
      type: 'CallCounted',
      at: Date.parse(event.occurredAt),
      principal: request.principal,
      upstream,
      tool: target,
      argumentsDigest: enforcement?.argumentsDigest ?? request.paramsDigest,
      cost: enforcement?.cost ?? this.#costs.costOf(upstream, target),
      limits: enforcement?.limits ?? this.#unconditionalLimits,
    };
  }
}

/** How often the fold forgets entries that can no longer change a decision (pruneLimits): every this many counted calls. */
export const PRUNE_EVERY_COUNTED = 10_000;

/** The limits projection as one state: requests waiting for a decision, the enforcement state, the calls counted. */
export interface LimitsFoldState {
  readonly pending: Map<string, MeteredRequest>;
  readonly enforcement: EnforcementState;
  counted: number;
}

export function emptyLimitsFold(): LimitsFoldState {
  return { pending: new Map(), enforcement: emptyEnforcementState(), counted: 0 };
}

/**
 * Streams events into a state: `push` each event in log order. Loop windows, buckets and past
 * budget periods that can no longer change a decision are forgotten every PRUNE_EVERY_COUNTED
 * counted calls, at the time of the call that triggers it — the same points whoever folds the
 * same events, so a fold resumed from a snapshot equals one from the start.
 */
export class LimitsRebuilder {
  readonly fold: LimitsFoldState;
  readonly #config: LimitsConfig;
  readonly #translator: CallCountedTranslator;

  constructor(config: LimitsConfig, options: RebuildOptions = {}, fold: LimitsFoldState = emptyLimitsFold()) {
    this.#config = config;
    this.fold = fold;
    this.#translator = new CallCountedTranslator(config, options, fold.pending);
  }

  get state(): EnforcementState {
    return this.fold.enforcement;
  }

  push(event: AttestEvent): void {
    const counted = this.#translator.translate(event);
    if (counted === undefined) return;
    evolveLimits(this.fold.enforcement, this.#config, counted);
    this.fold.counted++;
    if (this.fold.counted % PRUNE_EVERY_COUNTED === 0) pruneLimits(this.fold.enforcement, this.#config, counted.at);
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
