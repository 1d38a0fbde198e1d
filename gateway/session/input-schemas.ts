/**
 * Tool arguments checked against the tool's own `inputSchema` before a call is recorded as allowed
 * and forwarded (issue 4: "arguments validated against the tool's input schema"). The schemas are
 * the ones the upstream listed; a tool not listed yet in this session is not checked here (the
 * upstream still validates). Compiled once per tool definition with the SDK's ajv provider.
 */
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/server/validators/ajv';
import type { JsonObject } from './protocol.ts';

type Check = (input: unknown) => { readonly valid: boolean; readonly errorMessage?: string | undefined };

const provider = new AjvJsonSchemaValidator();

export class InputSchemas {
  readonly #checks = new Map<string, Check | null>();

  /** Replaces what is known of one upstream's tools with the definitions it just listed. */
  learn(tools: readonly JsonObject[]): void {
    this.#checks.clear();
    for (const tool of tools) {
      const schema = tool['inputSchema'];
      if (schema === null || typeof schema !== 'object') continue;
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
