/**
 * All of the gateway's projections as one state, folded event by event, and its JSON form for
 * snapshots at a log position (the gateway's start-up reads a snapshot and only the log's tail).
 * The JSON keeps every map's insertion order, so a state restored from JSON and folded on is the
 * same as one folded from the start: `projectionsToJson` of both is equal (the snapshot tests
 * compare exactly that).
 */
import type { AttestEvent } from '#schemas';
import { emptyCallsState, evolveCalls } from './calls.ts';
import type { CallsState, OpenCall, PendingApproval, RunningInstance } from './calls.ts';
import { emptyKeysState, evolveKeys } from './keys.ts';
import type { IssuedKey, KeyRevocation, KeysState } from './keys.ts';
import { emptyPinsState, evolvePins } from './pins.ts';
import type { Digest, PendingChange, PinsState } from './pins.ts';
import type { BucketState } from './limits/token-bucket.ts';
import type { BudgetCounter } from './limits/budget.ts';
import type { LoopWindow } from './limits/loop-guard.ts';
import type { LimitsConfig } from './limits/enforcement.ts';
import { emptyLimitsFold, LimitsRebuilder } from './limits/rebuild.ts';
import type { LimitsFoldState, MeteredRequest } from './limits/rebuild.ts';

/** Bumped when the JSON form changes; a snapshot of another format is not read (the log is, instead). */
export const PROJECTIONS_FORMAT = 1;

export interface Projections {
  readonly calls: CallsState;
  readonly keys: KeysState;
  readonly pins: PinsState;
  /** Absent without a policy bundle (no limits to enforce). */
  readonly limits: LimitsFoldState | undefined;
}

export function emptyProjections(withLimits: boolean): Projections {
  return { calls: emptyCallsState(), keys: emptyKeysState(), pins: emptyPinsState(), limits: withLimits ? emptyLimitsFold() : undefined };
}

/** Folds events into a Projections state, in log order. */
export class ProjectionsFold {
  readonly state: Projections;
  readonly #limits: LimitsRebuilder | undefined;

  /** `limits`: the policy's limit settings (the limits fold depends on them); absent → no limits fold. */
  constructor(limits: LimitsConfig | undefined, state: Projections = emptyProjections(limits !== undefined)) {
    if ((limits === undefined) !== (state.limits === undefined)) throw new TypeError('a limits fold needs limit settings, and limit settings a limits state');
    this.state = state;
    this.#limits = limits === undefined ? undefined : new LimitsRebuilder(limits, {}, state.limits);
  }

  push(event: AttestEvent): void {
    evolveCalls(this.state.calls, event);
    evolveKeys(this.state.keys, event);
    evolvePins(this.state.pins, event);
    this.#limits?.push(event);
  }
}

/** Convenience for one-off folds. */
export function evolveProjections(state: Projections, event: AttestEvent, limits: LimitsConfig | undefined): void {
  new ProjectionsFold(limits, state).push(event);
}

type Pairs<V> = [string, V][];

export interface ProjectionsJson {
  readonly format: typeof PROJECTIONS_FORMAT;
  readonly calls: { readonly calls: Pairs<OpenCall>; readonly approvals: Pairs<PendingApproval>; readonly sessions: Pairs<{ readonly owner: string | null; readonly tenant: string }>; readonly lastStarted: string | null; readonly running?: Pairs<RunningInstance> };
  readonly keys: { readonly issued: Pairs<IssuedKey>; readonly revoked: Pairs<KeyRevocation> };
  readonly pins: Pairs<{ hash: Digest; pinnedAt: string; definition: unknown; pending: Pairs<PendingChange>; rejected: string[] }>;
  readonly limits: {
    readonly pending: Pairs<MeteredRequest>;
    readonly buckets: Pairs<BucketState>;
    readonly budgets: Pairs<BudgetCounter>;
    readonly loops: Pairs<LoopWindow>;
    readonly counted: number;
  } | null;
}

const pairs = <V>(map: ReadonlyMap<string, V>): Pairs<V> => [...map];

export function projectionsToJson(state: Projections): ProjectionsJson {
  const { calls, keys, pins, limits } = state;
  return {
    format: PROJECTIONS_FORMAT,
    calls: {
      calls: pairs(calls.calls).map(([id, call]) => [id, { ...call }]),
      approvals: pairs(calls.approvals),
      sessions: pairs(calls.sessions).map(([stream, session]) => [stream, { owner: session.owner ?? null, tenant: session.tenant }]),
      lastStarted: calls.lastStarted ?? null,
      running: pairs(calls.running),
    },
    keys: { issued: pairs(keys.issued), revoked: pairs(keys.revoked) },
    pins: pairs(pins).map(([key, entry]) => [key, { hash: entry.hash, pinnedAt: entry.pinnedAt, definition: entry.definition, pending: pairs(entry.pending), rejected: [...entry.rejected] }]),
    limits:
      limits === undefined
        ? null
        : { pending: pairs(limits.pending), buckets: pairs(limits.enforcement.buckets), budgets: pairs(limits.enforcement.budgets), loops: pairs(limits.enforcement.loops), counted: limits.counted },
  };
}

/** The state back from its JSON form; throws TypeError when `json` is not one (a damaged snapshot: read the log instead). */
export function projectionsFromJson(json: unknown): Projections {
  const value = json as Partial<ProjectionsJson> | null;
  if (typeof value !== 'object' || value === null || value.format !== PROJECTIONS_FORMAT || value.calls === undefined || value.keys === undefined || value.pins === undefined || value.limits === undefined) {
    throw new TypeError(`not a projections snapshot of format ${PROJECTIONS_FORMAT}`);
  }
  const { calls, keys, pins, limits } = value;
  return {
    calls: {
      calls: new Map(calls.calls.map(([id, call]) => [id, { ...call }])),
      approvals: new Map(calls.approvals),
      sessions: new Map(calls.sessions.map(([stream, session]) => [stream, { owner: session.owner ?? undefined, tenant: session.tenant }])),
      lastStarted: calls.lastStarted ?? undefined,
      // Absent in snapshots written before it: an unclean stop before such a snapshot goes unreported.
      running: new Map(calls.running ?? []),
    },
    keys: { issued: new Map(keys.issued), revoked: new Map(keys.revoked) },
    pins: new Map(pins.map(([key, entry]) => [key, { hash: entry.hash, pinnedAt: entry.pinnedAt, definition: entry.definition, pending: new Map(entry.pending as [Digest, PendingChange][]), rejected: new Set(entry.rejected as Digest[]) }])),
    limits:
      limits === null
        ? undefined
        : { pending: new Map(limits.pending), enforcement: { buckets: new Map(limits.buckets), budgets: new Map(limits.budgets), loops: new Map(limits.loops) }, counted: limits.counted },
  };
}
