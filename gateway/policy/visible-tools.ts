/**
 * Filtering `tools/list` (and prompts/resources lists, with their method) to what a principal
 * may call. A list request has no arguments, so rules that read `args` cannot be decided;
 * the approximation:
 *
 *   Walk the rules in order as `decide` would, with method `tools/call`.
 *   - A rule that reads `args` is skipped, but if its effect is allow or hold it MIGHT match
 *     some arguments, so from there on the tool counts as possibly callable.
 *   - The first rule that does not read `args` and matches decides: allow/hold → visible;
 *     deny → hidden unless an earlier args-reading allow/hold rule made it possibly callable.
 *   - A rule that fails to evaluate decides as deny (fail closed), with the same exception.
 *   - No rule matched → visible when the default is allow or it is possibly callable.
 *
 * So a hidden tool is denied for EVERY argument (at that time, for that principal); a visible
 * tool may still be denied for particular arguments. Rules that read `now` are evaluated at
 * the list's time: the list is a snapshot.
 */
import type { Principal } from '#schemas';
import type { CompiledPolicy } from './compile-policy.ts';
import { activationOf, evaluateCondition } from './decide.ts';

export interface ToolRef {
  readonly upstream: string;
  /** Upstream-side name (not namespaced). */
  readonly tool: string;
}

export interface VisibilityOptions {
  /** ms since the epoch. */
  readonly now: number;
  /** The method a listed item would be called with; default `tools/call`. */
  readonly method?: string;
}

const NO_ARGS: Readonly<Record<string, unknown>> = Object.freeze({});

export function isVisible(policy: CompiledPolicy, principal: Principal, ref: ToolRef, options: VisibilityOptions): boolean {
  const activation = activationOf({ principal, upstream: ref.upstream, tool: ref.tool, method: options.method ?? 'tools/call', now: options.now }, NO_ARGS);
  let possiblyCallable = false;
  for (const rule of policy.rules) {
    if (rule.when.usesArgs) {
      if (rule.effect !== 'deny') possiblyCallable = true;
      continue;
    }
    const outcome = evaluateCondition(rule.when, activation);
    if (outcome.kind === 'false') continue;
    if (outcome.kind === 'error') return possiblyCallable;
    return rule.effect !== 'deny' || possiblyCallable;
  }
  return policy.defaultEffect === 'allow' || possiblyCallable;
}

/** The tools a principal may see, in their original order. */
export function visibleTools<T extends ToolRef>(policy: CompiledPolicy, principal: Principal, tools: readonly T[], options: VisibilityOptions): T[] {
  return tools.filter((ref) => isVisible(policy, principal, ref, options));
}
