/**
 * The CEL environment policies are written in (https://github.com/google/cel-spec), on
 * @marcbachmann/cel-js: an interpreter over its own AST — no `eval`, no Function constructor,
 * non-Turing-complete (no loops beyond the bounded comprehension macros over the input).
 *
 * Variables (see README.md for the full table):
 *   principal  Principal { id, kind, tenant, team, agent, roles }; team/agent are "" when unset
 *   upstream   string
 *   tool       string (upstream-side name; for prompts/resources the prompt name or URI)
 *   method     string (JSON-RPC method, e.g. "tools/call")
 *   args       map<string, dyn>: the call's arguments as JSON (numbers are doubles, as in
 *              google.protobuf.Struct); a missing key is an evaluation error, so guard with has()
 *   now        google.protobuf.Timestamp
 *
 * Expressions are parsed and type-checked once, at load; evaluation reuses the parsed form.
 */
import { Environment, EvaluationError, ParseError, TypeError as CelTypeError } from '@marcbachmann/cel-js';
import type { ASTNode, ParseResult } from '@marcbachmann/cel-js';
import safeRegex from 'safe-regex2';
import { PolicyError } from '#schemas';
import type { Principal } from '#schemas';

/** What a CEL expression sees. Built once per decision; `principal` once per principal. */
export interface CelActivation {
  readonly principal: CelPrincipal;
  readonly upstream: string;
  readonly tool: string;
  readonly method: string;
  readonly args: Readonly<Record<string, unknown>>;
  readonly now: Date;
}

export interface CelPrincipal {
  readonly id: string;
  readonly kind: string;
  readonly tenant: string;
  readonly team: string;
  readonly agent: string;
  readonly roles: readonly string[];
}

export interface CompiledExpression {
  readonly source: string;
  /** Whether the expression reads `args`: such a rule cannot be decided without the call's arguments. */
  readonly usesArgs: boolean;
  /** The value, or the evaluation error (never throws). */
  evaluate(activation: CelActivation): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string };
}

let environment: Environment | undefined;

/** Building an Environment is the expensive part; there is one, shared by every policy. */
function celEnvironment(): Environment {
  environment ??= new Environment({ limits: { maxAstNodes: 2_000, maxDepth: 64 } })
    .registerType('Principal', { fields: { id: 'string', kind: 'string', tenant: 'string', team: 'string', agent: 'string', roles: 'list<string>' } })
    .registerVariable('principal', 'Principal', { description: 'The authenticated caller' })
    .registerVariable('upstream', 'string', { description: 'The upstream server the call goes to' })
    .registerVariable('tool', 'string', { description: 'The tool (or prompt, or resource URI) on that upstream' })
    .registerVariable('method', 'string', { description: 'The JSON-RPC method' })
    .registerVariable('args', 'map<string, dyn>', { description: 'The call arguments' })
    .registerVariable('now', 'google.protobuf.Timestamp', { description: 'Decision time' });
  return environment;
}

/** 1-based line:column of an offset, for messages about multi-line YAML expressions. */
function position(source: string, offset: number): string {
  const before = source.slice(0, Math.max(0, offset));
  const lines = before.split('\n');
  return `${lines.length}:${(lines.at(-1)?.length ?? 0) + 1}`;
}

/** The library's one-line summary and where in the expression, or the message of anything else. */
function located(source: string, error: unknown): string {
  if (error instanceof ParseError || error instanceof EvaluationError || error instanceof CelTypeError) {
    return error.range === undefined ? error.summary : `${error.summary} (at ${position(source, error.range.start)})`;
  }
  return error instanceof Error ? error.message : String(error);
}

function readsArgs(node: ASTNode): boolean {
  const visit = (x: unknown): boolean => {
    if (Array.isArray(x)) return x.some(visit);
    if (x !== null && typeof x === 'object' && 'op' in x && 'args' in x) {
      if (x.op === 'id') return x.args === 'args';
      return visit(x.args);
    }
    return false;
  };
  return visit(node);
}

interface AstCall {
  readonly op: 'call' | 'rcall';
  readonly args: readonly unknown[];
  readonly start?: number;
}

function isCallNode(x: unknown): x is AstCall {
  return x !== null && typeof x === 'object' && 'op' in x && (x.op === 'call' || x.op === 'rcall') && 'args' in x && Array.isArray(x.args);
}

/**
 * `matches()` runs JavaScript's backtracking RegExp engine (the CEL spec says RE2), and its subject
 * is usually agent-supplied. So, at load: the pattern must be a string literal (a pattern taken from
 * the call's data would let the agent choose one that backtracks for minutes), and it must pass
 * safe-regex2's star-height check (no repetition inside a repetition, at most 25 repetitions) — the
 * shape of the classic exponential patterns such as `(a+)+$`. The check is a heuristic: it does not
 * catch overlapping alternatives under one star (`(a|a)*`), which is why the README still says to
 * prefer startsWith/endsWith/contains. Returns the problem, or undefined.
 */
function unsafeMatches(node: ASTNode, source: string): string | undefined {
  let problem: string | undefined;
  const visit = (x: unknown): void => {
    if (problem !== undefined) return;
    if (Array.isArray(x)) {
      for (const item of x) visit(item);
      return;
    }
    if (x === null || typeof x !== 'object' || !('args' in x)) return;
    if (isCallNode(x) && x.args[0] === 'matches') {
      // receiver form `s.matches(p)`: [name, receiver, [p]]; the global form `matches(s, p)` ([name, [s, p]]) is refused by cel-js's type check today, handled here should it come.
      const pattern: unknown = x.op === 'rcall' ? (x.args[2] as unknown[] | undefined)?.[0] : (x.args[1] as unknown[] | undefined)?.[1];
      const at = x.start === undefined ? '' : ` (at ${position(source, x.start)})`;
      if (pattern === null || typeof pattern !== 'object' || !('op' in pattern) || pattern.op !== 'value' || !('args' in pattern) || typeof pattern.args !== 'string') {
        problem = `matches() takes a string literal pattern${at}: a pattern computed from the call's data could backtrack without bound`;
        return;
      }
      try {
        new RegExp(pattern.args); // as cel-js builds it at evaluation (no flags)
      } catch (error) {
        problem = `matches() pattern "${pattern.args}"${at} is not a valid regular expression: ${(error as Error).message}`;
        return;
      }
      if (!safeRegex(pattern.args)) {
        problem = `matches() pattern "${pattern.args}"${at} could not be shown safe: it nests repetitions, has more than 25, or uses syntax RE2 lacks (lookaround), and could backtrack exponentially on agent-supplied input; use startsWith/endsWith/contains or a pattern without a quantifier inside a quantified group`;
        return;
      }
    }
    visit(x.args);
  };
  visit(node);
  return problem;
}

/**
 * Parses and type-checks a boolean expression. `where` names it in errors (e.g. `rules[2] "no-prod-writes"`).
 * Throws PolicyError with the position of the problem inside the expression.
 */
export function compileExpression(source: string, where: string): CompiledExpression {
  let parsed: ParseResult;
  try {
    parsed = celEnvironment().parse(source);
  } catch (error) {
    const kind = error instanceof ParseError ? 'syntax error' : 'invalid expression';
    throw new PolicyError(`${where}: CEL ${kind}: ${located(source, error)} in \`${source}\``);
  }
  const checked = parsed.check();
  if (!checked.valid) throw new PolicyError(`${where}: CEL type error: ${located(source, checked.error)} in \`${source}\``);
  // `dyn` (e.g. `args.flag`) is accepted here and must be a bool at run time (else: fail closed).
  if (checked.type !== 'bool' && checked.type !== 'dyn') throw new PolicyError(`${where}: CEL expression must be a boolean, it is ${checked.type ?? 'unknown'}: \`${source}\``);
  const regexProblem = unsafeMatches(parsed.ast, source);
  if (regexProblem !== undefined) throw new PolicyError(`${where}: ${regexProblem} in \`${source}\``);
  const evaluateParsed = parsed;
  return {
    source,
    usesArgs: readsArgs(parsed.ast),
    evaluate(activation) {
      try {
        const value: unknown = evaluateParsed(activation);
        return { ok: true, value };
      } catch (error) {
        return { ok: false, error: located(source, error) };
      }
    },
  };
}

const principals = new WeakMap<Principal, CelPrincipal>();

/** The CEL view of a principal, cached per principal object (a session keeps one). */
export function celPrincipal(principal: Principal): CelPrincipal {
  let view = principals.get(principal);
  if (view === undefined) {
    view = Object.freeze({ id: principal.id, kind: principal.kind, tenant: principal.tenant, team: principal.team ?? '', agent: principal.agent ?? '', roles: principal.roles });
    principals.set(principal, view);
  }
  return view;
}
