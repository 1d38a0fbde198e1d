/**
 * JSON-RPC message shapes and the MCP request schemas the gateway validates before deciding.
 * Validation uses the SDK's own zod schemas so the gateway accepts exactly what MCP accepts.
 */
import {
  CallToolRequestSchema,
  CompleteRequestSchema,
  GetPromptRequestSchema,
  InitializeRequestSchema,
  JSONRPCMessageSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  PingRequestSchema,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/core';
import type { JSONRPCMessage } from '@modelcontextprotocol/server';

export type { JSONRPCMessage } from '@modelcontextprotocol/server';
export type JsonRpcId = string | number;
export type JsonObject = Record<string, unknown>;

export interface RpcRequest {
  readonly jsonrpc: '2.0';
  readonly id: JsonRpcId;
  readonly method: string;
  readonly params?: JsonObject | undefined;
}
export interface RpcNotification {
  readonly jsonrpc: '2.0';
  readonly method: string;
  readonly params?: JsonObject | undefined;
}
export interface RpcError {
  readonly code: number;
  readonly message: string;
  readonly data?: unknown;
}
export type RpcResponse =
  | { readonly jsonrpc: '2.0'; readonly id: JsonRpcId; readonly result: JsonObject }
  | { readonly jsonrpc: '2.0'; readonly id: JsonRpcId | null; readonly error: RpcError };

export function isRequest(m: JSONRPCMessage | RpcRequest | RpcNotification | RpcResponse): m is RpcRequest {
  return 'method' in m && 'id' in m && m.id !== undefined;
}
export function isNotification(m: JSONRPCMessage | RpcRequest | RpcNotification | RpcResponse): m is RpcNotification {
  return 'method' in m && !('id' in m && m.id !== undefined);
}
export function isResponse(m: JSONRPCMessage | RpcRequest | RpcNotification | RpcResponse): m is RpcResponse {
  return !('method' in m) && ('result' in m || 'error' in m);
}

/** The versions Attest negotiates with agents (newest first). */
export const SUPPORTED_PROTOCOL_VERSIONS = Object.freeze(['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']);
export const LATEST_PROTOCOL_VERSION = '2025-11-25';

export function negotiateProtocolVersion(requested: unknown): string {
  return typeof requested === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(requested) ? requested : LATEST_PROTOCOL_VERSION;
}

interface SafeParser {
  safeParse(value: unknown): { success: true } | { success: false; error: { issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }> } };
}

const REQUEST_SCHEMAS: ReadonlyMap<string, SafeParser> = new Map<string, SafeParser>([
  ['initialize', InitializeRequestSchema],
  ['ping', PingRequestSchema],
  ['tools/list', ListToolsRequestSchema],
  ['tools/call', CallToolRequestSchema],
  ['prompts/list', ListPromptsRequestSchema],
  ['prompts/get', GetPromptRequestSchema],
  ['resources/list', ListResourcesRequestSchema],
  ['resources/templates/list', ListResourceTemplatesRequestSchema],
  ['resources/read', ReadResourceRequestSchema],
  ['resources/subscribe', SubscribeRequestSchema],
  ['resources/unsubscribe', UnsubscribeRequestSchema],
  ['completion/complete', CompleteRequestSchema],
  ['logging/setLevel', SetLevelRequestSchema],
]);

export function isKnownMethod(method: string): boolean {
  return REQUEST_SCHEMAS.has(method);
}

function describeIssues(issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>): string {
  return issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.map(String).join('.') : '(message)'}: ${i.message}`)
    .join('; ');
}

/** Validates the params of a known MCP request; returns a message naming the bad field, or undefined when valid. */
export function paramsProblem(request: RpcRequest): string | undefined {
  const schema = REQUEST_SCHEMAS.get(request.method);
  if (schema === undefined) return undefined;
  const outcome = schema.safeParse({ method: request.method, params: request.params });
  return outcome.success ? undefined : `Invalid params for ${request.method}: ${describeIssues(outcome.error.issues)}`;
}

/**
 * The deepest nesting of objects and arrays a message may have, from either side. A recorded event
 * wraps a payload a few levels down, and RFC 8785 canonical JSON (schemas/canonical.ts) stops at
 * 1,000 levels: a deeper payload could be neither recorded nor, so, relayed. No MCP message
 * legitimately comes near it.
 */
export const MAX_MESSAGE_DEPTH = 512;

const TOO_DEEP = `nests objects or arrays deeper than ${MAX_MESSAGE_DEPTH} levels`;
const NOT_FINITE = 'holds a number beyond the range of a double (it parses as Infinity)';
const LONE_SURROGATE = 'holds a string or key with a lone UTF-16 surrogate (not I-JSON)';

function pushChild(child: unknown, depth: number, values: unknown[], depths: number[]): string | undefined {
  if (typeof child === 'number') return Number.isFinite(child) ? undefined : NOT_FINITE;
  if (typeof child === 'string') return child.isWellFormed() ? undefined : LONE_SURROGATE;
  if (child !== null && typeof child === 'object') {
    values.push(child);
    depths.push(depth);
  }
  return undefined;
}

/**
 * Why a parsed JSON value cannot be recorded — RFC 8785 canonical JSON (schemas/canonical.ts) has
 * no form for it — or undefined when it can: nesting deeper than `maxDepth` (the outermost object
 * or array is level 1), a number that parsed as ±Infinity (`1e400`), a lone UTF-16 surrogate in a
 * string or key (`"\ud800"`). Iterative, so hostile nesting cannot exhaust the stack.
 */
export function unrecordable(value: unknown, maxDepth: number = MAX_MESSAGE_DEPTH): string | undefined {
  const values: unknown[] = [];
  const depths: number[] = [];
  const top = pushChild(value, 1, values, depths);
  if (top !== undefined) return top;
  while (values.length > 0) {
    const current = values.pop() as object;
    const depth = depths.pop() as number;
    if (depth > maxDepth) return TOO_DEEP;
    if (Array.isArray(current)) {
      for (const child of current as unknown[]) {
        const problem = pushChild(child, depth + 1, values, depths);
        if (problem !== undefined) return problem;
      }
    } else {
      for (const key in current) {
        if (!key.isWellFormed()) return LONE_SURROGATE;
        const problem = pushChild((current as Record<string, unknown>)[key], depth + 1, values, depths);
        if (problem !== undefined) return problem;
      }
    }
  }
  return undefined;
}

/** The refusal text for a message that cannot be recorded; `what` names it (e.g. `the tools/call message`), `reason` is from unrecordable(). */
export function unrecordableProblem(what: string, reason: string): string {
  return `Invalid Request: ${what} ${reason}; it cannot be recorded, so it is not relayed`;
}

/** Checks one inbound JSON value is a JSON-RPC 2.0 message; returns a message naming what is wrong. */
export function jsonRpcProblem(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'Invalid Request: a JSON-RPC message must be a JSON object';
  const m = value as Record<string, unknown>;
  if (m['jsonrpc'] !== '2.0') return 'Invalid Request: "jsonrpc" must be the string "2.0"';
  if ('method' in m && typeof m['method'] !== 'string') return 'Invalid Request: "method" must be a string';
  if ('id' in m && m['id'] !== undefined && typeof m['id'] !== 'string' && !Number.isInteger(m['id'])) {
    return 'Invalid Request: "id" must be a string or an integer';
  }
  if ('params' in m && m['params'] !== undefined && (m['params'] === null || typeof m['params'] !== 'object' || Array.isArray(m['params']))) {
    return 'Invalid Request: "params" must be an object (MCP uses named params)';
  }
  const outcome = JSONRPCMessageSchema.safeParse(value);
  if (!outcome.success) return `Invalid Request: ${describeIssues(outcome.error.issues)}`;
  const reason = unrecordable(value);
  if (reason !== undefined) return unrecordableProblem(typeof m['method'] === 'string' ? `the ${m['method']} message` : 'the message', reason);
  return undefined;
}

/** The agent's `_meta.progressToken` on a request, if any. */
export function progressTokenOf(params: JsonObject | undefined): JsonRpcId | undefined {
  const meta = params?.['_meta'];
  if (meta === null || typeof meta !== 'object') return undefined;
  const token = (meta as Record<string, unknown>)['progressToken'];
  return typeof token === 'string' || typeof token === 'number' ? token : undefined;
}

export function messageOf(value: unknown): JSONRPCMessage {
  return value as JSONRPCMessage;
}
