/**
 * Tool arguments checked against the tool's own `inputSchema` before a call is recorded as allowed
 * and forwarded (issue 4: "arguments validated against the tool's input schema"). The schemas are
 * the ones the upstream listed; a tool not listed yet in this session is not checked here (the
 * upstream still validates). Compiled once per tool definition with the SDK's ajv provider; a
 * schema with a regex that could backtrack exponentially is not compiled (unsafeSchemaPattern).
 */
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import safeRegex from 'safe-regex2';
import type { JsonObject } from './protocol.ts';

type Check = (input: unknown) => { readonly valid: boolean; readonly errorMessage?: string | undefined };

const provider = new AjvJsonSchemaValidator();

const MAX_SCHEMA_NODES = 100_000;

/**
 * The first `pattern` or `patternProperties` regex of a schema that safe-regex2 cannot show safe
 * (a quantifier inside a quantified group, e.g. `(a+)+$`), or undefined. ajv runs them with
 * JavaScript's backtracking engine on the agent's arguments, so an upstream could otherwise make
 * the gateway's event loop spin on one call. Iterative walk: schemas are upstream data; one of more
 * than MAX_SCHEMA_NODES nodes is reported too (not checked, so not compiled).
 */
export function unsafeSchemaPattern(schema: unknown): string | undefined {
  const stack: unknown[] = [schema];
  for (let visited = 0; stack.length > 0; visited++) {
    // Fail closed on size too: a schema this large is not compiled either.
    if (visited === MAX_SCHEMA_NODES) return `(a schema of more than ${MAX_SCHEMA_NODES} nodes)`;
    const node = stack.pop();
    if (node === null || typeof node !== 'object') continue;
    if (Array.isArray(node)) {
      for (const item of node as unknown[]) stack.push(item);
      continue;
    }
    const record = node as Record<string, unknown>;
    if (typeof record['pattern'] === 'string' && !safeRegex(record['pattern'])) return record['pattern'];
    const patterned = record['patternProperties'];
    if (patterned !== null && typeof patterned === 'object') {
      for (const key of Object.keys(patterned)) if (!safeRegex(key)) return key;
    }
    for (const value of Object.values(record)) if (value !== null && typeof value === 'object') stack.push(value);
  }
  return undefined;
}

export class InputSchemas {
  readonly #checks = new Map<string, Check | null>();

  /** Replaces what is known of one upstream's tools with the definitions it just listed. */
  learn(tools: readonly JsonObject[]): void {
    this.#checks.clear();
    for (const tool of tools) {
      const schema = tool['inputSchema'];
      if (schema === null || typeof schema !== 'object') continue;
      // Not checked here (the upstream still validates): compiling it would let agent input stall the gateway.
      if (unsafeSchemaPattern(schema) !== undefined) {
        this.#checks.set(String(tool['name']), null);
        continue;
      }
      try {
        this.#checks.set(String(tool['name']), provider.getValidator(schema));
      } catch {
        // A schema ajv cannot compile is the upstream's to enforce; the gateway does not guess.
        this.#checks.set(String(tool['name']), null);
      }
    }
  }

  forget(): void {
    this.#checks.clear();
  }

  /** Why `args` do not fit the tool's input schema, or undefined (valid, or the schema is unknown). */
  problem(tool: string, args: unknown): string | undefined {
    const check = this.#checks.get(tool);
    if (check === undefined || check === null) return undefined;
    const outcome = check(args ?? {});
    return outcome.valid ? undefined : (outcome.errorMessage ?? 'the arguments do not match the input schema');
  }
}
