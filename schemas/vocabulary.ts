/**
 * The open vocabularies of the event contract: values of `DecisionMade.stage`, `errorCode`
 * (ErrorReturned, RequestRejected) and the built-in `ruleId`s. The gateway writes only values
 * listed here (the write schema refuses others); readers accept any non-empty string, because a
 * newer minor version of the contract may add values (docs/events.md, "Evolving events").
 */
import { GATEWAY_ERRORS } from './errors.ts';
import type { GatewayErrorCode } from './errors.ts';

/** The stage of the decision pipeline that decided, as recorded on DecisionMade. */
export const STAGES = Object.freeze({
  gateway: 'answered by the gateway itself (initialize, ping, aggregated lists)',
  protocol: 'the MCP lifecycle and JSON-RPC shape (not initialized, invalid params)',
  routing: 'which upstream serves the request (unknown tool, prompt, resource, server; upstream down)',
  'input-schema': "the call's arguments against the tool's listed inputSchema",
  'tool-pinning': 'a tool whose definition changed since it was pinned (quarantine)',
  'tool-access': "the credential's allowTools / denyTools",
  policy: "the policy bundle's rules",
  'rate-limit': 'a token-bucket rate limit',
  budget: 'a calls or cost budget',
  'loop-guard': 'the same call repeated too often',
  approval: 'a person approved, denied, or did not decide in time',
  relay: 'a server→client request relayed to the agent',
} as const);
export type Stage = keyof typeof STAGES;
export const STAGE_NAMES: readonly Stage[] = Object.freeze(Object.keys(STAGES) as Stage[]);

/** Stable string codes the gateway records (`errorCode`): every GatewayError code, and the agent's cancellation. */
export const EVENT_ERROR_CODES: readonly string[] = Object.freeze([...(Object.keys(GATEWAY_ERRORS) as GatewayErrorCode[]), 'ATTEST_CANCELLED']);

/**
 * Rule ids the gateway itself decides by (DecisionMade.ruleId, ApprovalRequested.ruleId). Other
 * rule ids are the config's: policy rule ids, rate-limit and budget ids (`policy.limits`), and
 * `key:<key id>:allowTools[i]` / `key:<key id>:denyTools[i]` for a credential's tool lists.
 */
export const BUILTIN_RULE_IDS = Object.freeze({
  initialize: 'initialize answered by the gateway',
  ping: 'ping answered by the gateway',
  'aggregate-list': 'a list aggregated across upstreams',
  broadcast: 'logging/setLevel sent to every upstream',
  passthrough: 'relayed to the one upstream that serves it',
  'mcp-lifecycle': 'a request before initialize, or a second initialize',
  'mcp-schema': 'params that do not match the MCP schema',
  method: 'a method the endpoint does not serve',
  namespace: 'a name without a known `<upstream>__` prefix',
  upstream: 'no such upstream',
  'upstream-health': 'the upstream is down or restarting',
  'tool-list': 'a tool the upstream does not list',
  'resource-directory': 'a resource or template no upstream lists',
  'virtual-server': 'outside the virtual server’s bundle',
  'tool-input-schema': "arguments that do not match the tool's inputSchema",
  'tool-definition-changed': 'a quarantined tool awaiting an admin',
  'tool-definition-rejected': 'a tool definition an admin rejected',
  'server-request-relay': 'a server→client request relayed to the agent',
  'loop-guard': 'the loop guard',
  default: 'no rule matched: the policy default',
} as const);
