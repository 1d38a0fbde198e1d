/**
 * Projections: pure folds over events (`evolve(state, event)`, no I/O), shared by every service —
 * the gateway's enforcement state, its start-up reconciliation and the projector's read models
 * come from the same code (docs/architecture.md "Projections are shared code"). Depends on
 * #schemas only.
 */
export { danglingApprovals, emptyCallsState, evolveCalls, interruptedCalls, openSessionsOf, OUTCOME_TYPES } from './calls.ts';
export type { CallsState, OpenCall, OpenSession, PendingApproval, RunningInstance } from './calls.ts';
export { emptyKeysState, evolveKeys } from './keys.ts';
export type { IssuedKey, KeyRevocation, KeysState } from './keys.ts';
export { emptyPinsState, evolvePins, pinKey } from './pins.ts';
export type { Digest, PendingChange, PinEntry, PinsState } from './pins.ts';
export { emptyProjections, evolveProjections, ProjectionsFold, projectionsFromJson, projectionsToJson, PROJECTIONS_FORMAT } from './snapshot.ts';
export type { Projections, ProjectionsJson } from './snapshot.ts';
export {
  CallCountedTranslator,
  NO_SPEND,
  ReplicaBudgetView,
  checkBudget,
  checkBudgetSpend,
  checkLimits,
  checkLoop,
  checkRateLimit,
  compileCostModel,
  emptyEnforcementState,
  emptyLimitsFold,
  evolveBudget,
  evolveLimits,
  evolveLoop,
  evolveRateLimit,
  fullAt,
  LimitsRebuilder,
  localSpendView,
  periodEnd,
  periodStart,
  PRUNE_EVERY_COUNTED,
  pruneLimits,
  rebuildHorizon,
  rebuildLimits,
  scopeValue,
  snapshotLimits,
  spendIn,
  tokensAt,
} from './limits/index.ts';
export type {
  BucketState,
  BudgetCounter,
  BudgetSpend,
  BudgetSpendView,
  BudgetVerdict,
  CallCounted,
  CostModel,
  EnforcementSnapshot,
  EnforcementState,
  LimitsConfig,
  LimitsFoldState,
  LimitVerdict,
  LocalCharge,
  LoopVerdict,
  LoopWindow,
  MeteredCall,
  MeteredRequest,
  ProjectedBudgetTotals,
  RateVerdict,
  RebuildOptions,
} from './limits/index.ts';
