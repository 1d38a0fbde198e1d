export { compileExpression, celPrincipal } from './cel.ts';
export type { CelActivation, CelPrincipal, CompiledExpression } from './cel.ts';
export { compilePolicy } from './compile-policy.ts';
export type { CompiledLimitMatch, CompiledPolicy, CompiledRule } from './compile-policy.ts';
export { INVALID_ARGUMENTS_RULE_ID, applicableLimits, decide } from './decide.ts';
export type { ApplicableLimits, PolicyDecision, PolicyRequest } from './decide.ts';
export { isVisible, visibleTools } from './visible-tools.ts';
export type { ToolRef, VisibilityOptions } from './visible-tools.ts';
