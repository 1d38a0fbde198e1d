/**
 * The per-tool cost model: `costs` maps tool patterns (`<upstream>__<tool>`, `*` wildcards on
 * either side, or `*`) to the cost of one call. The most specific pattern wins: an exact name
 * first, then the pattern with the most literal (non-`*`) characters; on a tie the one written
 * first. No match → DEFAULT_CALL_COST (1), so budgets in "cost" count calls unless told otherwise.
 */
import { DEFAULT_CALL_COST } from '#schemas';

export interface CostModel {
  costOf(upstream: string, tool: string): number;
}

interface CostPattern {
  readonly matcher: RegExp;
  readonly literal: number;
  readonly exact: boolean;
  readonly cost: number;
}

function toRegExp(pattern: string): RegExp {
  if (pattern === '*') return /^.*$/s;
  return new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 's');
}

export function compileCostModel(costs: Readonly<Record<string, number>>): CostModel {
  const patterns: CostPattern[] = Object.entries(costs).map(([pattern, cost]) => ({
    matcher: toRegExp(pattern),
    literal: pattern.replaceAll('*', '').length,
    exact: !pattern.includes('*'),
    cost,
  }));
  // Array.prototype.sort is stable: equal specificity keeps the order written.
  patterns.sort((a, b) => Number(b.exact) - Number(a.exact) || b.literal - a.literal);
  return {
    costOf(upstream, tool) {
      const name = `${upstream}__${tool}`;
      for (const p of patterns) if (p.matcher.test(name)) return p.cost;
      return DEFAULT_CALL_COST;
    },
  };
}
