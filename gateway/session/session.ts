/**
 * One agent session: the JSON-RPC relay between the agent (downstream transport) and its own
 * connections to the upstreams in scope. Every message that crosses is recorded before it is
 * acted on (ARCHITECTURE.md "The hot path"):
 *   agent request  → RequestReceived + DecisionMade durable → forward (or answer locally)
 *   upstream reply → ResultReturned / ErrorReturned durable → respond to the agent
 *   notifications and server→client requests → recorded, then relayed.
 * Ids are remapped per upstream; `_meta` and unknown fields travel untouched.
 */
import { performance } from 'node:perf_hooks';
import { GatewayError, newEventId, SYSTEM_PRINCIPAL } from '#schemas';
import type { ApprovalSettings, DecisionEnforcement, EventData, EventDraft, Principal, UpstreamConfig } from '#schemas';
import type { StoredEvent } from '#eventlog';
import { leafHashOf } from '#eventlog';
import type { Logger } from '../logger.ts';
import type { Authenticated, ApiKeyStore, ToolAccess } from '../auth/api-keys.ts';
import { draft, LogRefusal, recordPayload, recordText } from '../recorder.ts';
import { recordingFor, strictestRecording } from '../redaction/data-policy.ts';
import type { Recorder, Recording, StreamContext } from '../recorder.ts';
import { UpstreamError, formatStderrTail, startFailureForOperator, stdioStartFailureForAgent } from '../upstreams/link.ts';
import type { UpstreamLink, UpstreamLinkEvent } from '../upstreams/link.ts';
import type { UpstreamHealth } from '../upstreams/health.ts';
import type { Governance } from '../governance.ts';
import type { MeteredCall } from '#projections';
import type { ApprovalBroker, ApprovalOutcome } from '../approvals/broker.ts';
import { isNotification, isRequest, isResponse, negotiateProtocolVersion, paramsProblem, progressTokenOf, SUPPORTED_PROTOCOL_VERSIONS, unrecordable, unrecordableProblem } from './protocol.ts';
import type { JSONRPCMessage, JsonObject, JsonRpcId, RpcError, RpcNotification, RpcRequest, RpcResponse } from './protocol.ts';
import { qualify, ResourceDirectory, unqualify } from './routing.ts';
import { InputSchemas } from './input-schemas.ts';
import { agentFacing } from './agent-facing.ts';
import type { BundleKind, VirtualBundle } from './virtual-servers.ts';
import type { Observation, Quarantine, ToolPins } from '../pins/tool-pins.ts';
import { approvalStage, decideToolCall, inputSchemaStage, limitsStage, policyStage, toolAccessStage, toolPinningStage } from '../pipeline/tool-call.ts';
import type { ToolCallStage } from '../pipeline/tool-call.ts';
import { upstreamTraceContext } from '../observability/tracing.ts';
import type { CallTracing, TraceHeaders } from '../observability/tracing.ts';

export type Scope =
  | { readonly kind: 'aggregate'; readonly upstreams: readonly string[] }
  | { readonly kind: 'single'; readonly upstream: string }
  /** A virtual server: the aggregate endpoint narrowed to a bundle (virtual-servers.ts). */
  | { readonly kind: 'virtual'; readonly upstreams: readonly string[]; readonly bundle: VirtualBundle };

/** The downstream side as the session sees it: the SDK transport's send, with the request a message belongs to. */
export interface DownstreamPort {
  send(message: JSONRPCMessage, relatedRequestId?: JsonRpcId): Promise<void>;
  close(): Promise<void>;
}

export interface SessionDeps {
  readonly recorder: Recorder;
  readonly keys: ApiKeyStore;
  readonly upstreams: Readonly<Record<string, UpstreamConfig>>;
  readonly createLink: (name: string, config: UpstreamConfig) => UpstreamLink;
  readonly logger: Logger;
  readonly version: string;
  /** This gateway's `gateway.instance`: recorded on every session it opens (the owner of the session's stream). */
  readonly instance: string;
  /** The policy bundle's rules and limits; absent → only the keys' tool lists apply. */
  readonly governance?: Governance | undefined;
  /** Where held calls wait for a person; absent (stdio) → a `hold` rule refuses with ATTEST_APPROVAL_REQUIRED. */
  readonly approvals?: ApprovalBroker | undefined;
  /** Tool-definition pins shared by all sessions (upstreams with `pinTools`). */
  readonly pins?: ToolPins | undefined;
  /** Spans per agent request (observability.tracing); absent → a valid agent traceparent is passed on as is. */
  readonly tracing?: CallTracing | undefined;
  /** Told how each connection to an upstream went (/healthz). */
  readonly health?: UpstreamHealth | undefined;
}

export interface SessionInit {
  readonly id: string;
  readonly transport: 'streamable-http' | 'sse' | 'stdio';
  readonly endpoint: string;
  readonly scope: Scope;
  readonly auth: Authenticated;
  readonly remoteAddress?: string | undefined;
  readonly userAgent?: string | undefined;
  /** `userAgent` as cut to its recorded length: the original's length and digest (gateway/http/recorded-text.ts). */
  readonly truncated?: EventData<'SessionOpened'>['truncated'];
}

/** The receipt bound to a response: where the call's events sit in the log. */
export const RECEIPT_META_KEY = 'attest/receipt';

/**
 * The methods whose results carry the receipt in `_meta`: those whose result type has content of
 * its own. An EmptyResult (ping, logging/setLevel, resources/subscribe and unsubscribe) stays `{}`,
 * as the spec prescribes, and a method the gateway does not know keeps the shape its upstream gave
 * it. Their events are recorded all the same (README.md, "Receipts").
 */
const RECEIPT_METHODS: ReadonlySet<string> = new Set(['initialize', 'tools/list', 'tools/call', 'prompts/list', 'prompts/get', 'resources/list', 'resources/templates/list', 'resources/read', 'completion/complete']);

interface Forward {
  readonly id: number;
  readonly method: string;
  readonly downstreamId: JsonRpcId | undefined;
  readonly progressToken: JsonRpcId | undefined;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (response: RpcResponse) => void;
  readonly reject: (error: GatewayError) => void;
}

interface UpstreamState {
  readonly name: string;
  readonly config: UpstreamConfig;
  link: UpstreamLink | undefined;
  status: 'connecting' | 'ready' | 'restarting' | 'down';
  downReason: string;
  nextId: number;
  readonly pending: Map<number, Forward>;
  capabilities: JsonObject;
  initResult: JsonObject | undefined;
  /** Tool names last listed by this upstream; undefined until listed. */
  tools: Set<string> | undefined;
  /** Input schemas of the tools last listed, checked before a call is forwarded. */
  readonly inputs: InputSchemas;
  /** Definition hashes of the tools this connection listed (tool pinning); undefined until listed. */
  toolHashes: Map<string, string> | undefined;
  /**
   * The gateway's own listing of this connection's tools, made before a call when the agent had not
   * listed them (once per connection, again after the upstream's tools changed): the unknown-tool and
   * input-schema checks, and tool pinning, must not depend on what the agent chose to ask.
   */
  toolsListing?: Promise<void> | undefined;
  /** The agent's `notifications/initialized` on its way to this upstream: requests to it wait (#requestUpstream). */
  initializedRelay?: Promise<void> | undefined;
  /** Why the link last reported itself lost, with the facts (exit code, stderr tail). */
  lastLoss?: UpstreamError | undefined;
  /** Notifications from this upstream being recorded and relayed; an answer waits for those that came before it. */
  readonly relaying: Set<Promise<void>>;
}

interface ServerRequest {
  readonly upstream: string;
  readonly upstreamId: JsonRpcId;
  readonly method: string;
  readonly callId: string;
  readonly startedAt: number;
}

type Plan =
  | {
      readonly route: 'deny';
      readonly error: GatewayError;
      readonly stage: string;
      readonly ruleId: string;
      readonly upstream?: string | undefined;
      readonly target?: string | undefined;
      readonly enforcement?: DecisionEnforcement | undefined;
    }
  | { readonly route: 'local'; readonly run: () => Promise<JsonObject>; readonly upstream?: string | undefined; readonly target?: string | undefined; readonly ruleId: string; readonly reason: string }
  | {
      readonly route: 'forward';
      readonly upstream: string;
      readonly params: JsonObject | undefined;
      readonly target?: string | undefined;
      readonly ruleId: string;
      readonly reason: string;
      readonly filterTools?: boolean;
      /** A prompts/resources list relayed from one upstream: filtered by the policy before the agent sees it. */
      readonly filterList?: 'prompts/list' | 'resources/list' | 'resources/templates/list' | undefined;
      /** A metered call: charged against its limits when its decision is drafted. */
      readonly meter?: MeteredCall | undefined;
      readonly enforcement?: DecisionEnforcement | undefined;
    }
  | HoldPlan;

/** A tools/call a `hold` rule stopped: recorded, then waits for a person before it is decided. */
interface HoldPlan {
  readonly route: 'hold';
  readonly upstream: string;
  readonly params: JsonObject | undefined;
  readonly target: string;
  readonly ruleId: string;
  readonly reason: string;
  readonly approval: Readonly<ApprovalSettings>;
  readonly argumentsDigest: string;
}

/** What every event of a call carries, and the trace context the upstream is sent (the gateway's span when tracing). */
type Extras = { readonly callId: string; readonly traceparent: string | undefined; readonly upstreamTrace?: TraceHeaders | undefined };

/** How often a held call with a progressToken is told it is still waiting. */
const APPROVAL_PROGRESS_EVERY_MS = 10_000;

const LIST_CHANGED = ['notifications/tools/list_changed', 'notifications/prompts/list_changed', 'notifications/resources/list_changed'] as const;
const MAX_LIST_PAGES = 100;

function asObject(value: unknown): JsonObject {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as JsonObject) : {};
}

function traceparentOf(params: JsonObject | undefined): string | undefined {
  const value = asObject(params?.['_meta'])['traceparent'];
  return typeof value === 'string' ? value : undefined;
}

function tracestateOf(params: JsonObject | undefined): string | undefined {
  const value = asObject(params?.['_meta'])['tracestate'];
  return typeof value === 'string' ? value : undefined;
}

export class GatewaySession {
  readonly id: string;
  readonly init: SessionInit;
  readonly #deps: SessionDeps;
  readonly #context: StreamContext;
  readonly #upstreams = new Map<string, UpstreamState>();
  readonly #resources = new ResourceDirectory();
  /** Agent request id → the forward carrying it (for cancellation). */
  readonly #forwardsByAgentId = new Map<JsonRpcId, { readonly state: UpstreamState; readonly forward: Forward; readonly callId: string }>();
  /** Agent progress token → agent request id, to send progress on the right stream. */
  readonly #progressRoutes = new Map<JsonRpcId, JsonRpcId>();
  /** Gateway-assigned id of a server→client request → where it came from. */
  readonly #serverRequests = new Map<number, ServerRequest>();
  /** Agent request id → call id of a call waiting for approval (for cancellation and close). */
  readonly #held = new Map<JsonRpcId, string>();
  #nextServerRequestId = 1;
  #downstream: DownstreamPort | undefined;
  #initialized = false;
  /** Whether an initialize got its result (not an error) sent to the agent. */
  #initializeAnswered = false;
  #clientParams: JsonObject = {};
  #protocolVersion = SUPPORTED_PROTOCOL_VERSIONS[0] ?? '2025-11-25';
  #closed = false;
  #closing: Promise<void> | undefined;
  lastActivity = Date.now();
  /** The tool lists of the credential, as of its latest authentication (a reload may change them); the principal stays init.auth's. */
  #access: ToolAccess;
  /** The decision pipeline of this session's tools/calls: built once, reading what a reload or a re-authentication may change through getters. */
  readonly #stages: readonly ToolCallStage[] = [
    toolPinningStage((upstream, tool) => this.#quarantined(upstream, tool)),
    inputSchemaStage((upstream, tool, args) => this.#upstreams.get(upstream)?.inputs.problem(tool, args)),
    toolAccessStage(() => this.#access, qualify),
    policyStage(() => this.#deps.governance),
    limitsStage(() => this.#deps.governance),
    approvalStage(() => this.#deps.approvals !== undefined),
  ];

  constructor(init: SessionInit, deps: SessionDeps) {
    this.id = init.id;
    this.init = init;
    this.#deps = deps;
    this.#access = init.auth.access;
    this.#context = { tenant: init.auth.principal.tenant, stream: `session-${init.id}`, actor: init.auth.principal };
    const names = init.scope.kind === 'single' ? [init.scope.upstream] : init.scope.upstreams;
    for (const name of names) {
      const config = deps.upstreams[name];
      if (config === undefined) throw new GatewayError('ATTEST_UNKNOWN_SERVER', `No upstream named "${name}"`);
      this.#upstreams.set(name, { name, config, link: undefined, status: 'down', downReason: 'not connected yet', nextId: 1, pending: new Map(), capabilities: {}, initResult: undefined, tools: undefined, inputs: new InputSchemas(), toolHashes: undefined, relaying: new Set() });
    }
  }

  get stream(): string {
    return this.#context.stream;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Records SessionOpened; the session accepts messages once this resolved. */
  async open(downstream: DownstreamPort): Promise<void> {
    this.#downstream = downstream;
    await this.#deps.recorder.record([
      draft(this.#context, 'SessionOpened', {
        transport: this.init.transport,
        endpoint: this.init.endpoint,
        upstreams: [...this.#upstreams.keys()],
        instance: this.#deps.instance,
        ...(this.init.scope.kind === 'virtual' && { virtualServer: this.init.scope.bundle.name }),
        ...(this.init.remoteAddress !== undefined && { remoteAddress: this.init.remoteAddress }),
        ...(this.init.userAgent !== undefined && { userAgent: this.init.userAgent }),
        ...(this.init.truncated !== undefined && { truncated: this.init.truncated }),
      }),
    ]);
  }

  /**
   * The credential that opened the session authenticated again (each HTTP request does): its tool
   * lists as they are now apply to this session's next decisions — after a config reload changed the
   * key's allowTools/denyTools, say. The principal (tenant, roles) stays as it was at open.
   */
  reauthenticated(auth: Authenticated): void {
    if (auth.credentialId === this.init.auth.credentialId) this.#access = auth.access;
  }

  /** Entry point for every message from the agent. Never throws: failures become JSON-RPC errors or log lines. */
  handleAgentMessage(message: JSONRPCMessage, traceHeaders?: TraceHeaders): void {
    this.lastActivity = Date.now();
    if (this.#closed) return;
    const m = message as unknown as RpcRequest | RpcNotification | RpcResponse;
    let work: Promise<void>;
    if (isRequest(m)) {
      work = this.#onAgentRequest(m, traceHeaders);
      // Over HTTP an initialize answered with an error leaves nothing behind: no session the agent will not use
      // holds upstream processes until it expires. On stdio the process is the session, and the agent may try again.
      if (m.method === 'initialize' && !this.#initialized && this.init.transport !== 'stdio') work = work.then(() => (this.#initializeAnswered ? undefined : this.close('initialize refused')));
    } else if (isNotification(m)) work = this.#onAgentNotification(m);
    else if (isResponse(m)) work = this.#onAgentResponse(m);
    else work = Promise.resolve();
    work.catch((error: unknown) => this.#deps.logger.error({ err: error, session: this.id }, 'unhandled error relaying an agent message'));
  }

  // ── agent requests ───────────────────────────────────────────────────────────────────────

  async #onAgentRequest(request: RpcRequest, traceHeaders: TraceHeaders | undefined): Promise<void> {
    const callId = newEventId();
    const started = performance.now();
    // MCP's _meta first, then the HTTP header of the POST that carried the request.
    const metaTraceparent = traceparentOf(request.params);
    const traceparent = metaTraceparent ?? traceHeaders?.traceparent;
    // tracestate belongs to the traceparent it came with: both from _meta, or both from the HTTP headers.
    const tracestate = metaTraceparent === undefined ? traceHeaders?.tracestate : tracestateOf(request.params);
    const extras: Extras = { callId, traceparent, upstreamTrace: upstreamTraceContext(this.#deps.tracing, callId, request.method, traceparent, tracestate) };
    if (request.method === 'tools/call') await this.#listBeforeCall(request);
    const plan = this.#plan(request);
    const governance = this.#deps.governance;
    const recording = plan.upstream === undefined ? 'full' : recordingFor(this.#upstreams.get(plan.upstream)?.config, request.method === 'tools/call' ? plan.target : undefined);
    const drafts: EventDraft[] = [
      draft(this.#context, 'RequestReceived', {
        from: 'agent',
        method: request.method,
        jsonrpcId: request.id,
        ...(plan.upstream !== undefined && { upstream: plan.upstream }),
        ...(plan.target !== undefined && { target: plan.target }),
        params: recordPayload(request.params, recording),
      }, extras),
      plan.route === 'hold' ? this.#approvalRequested(plan, extras) : draft(this.#context, 'DecisionMade', {
        ...(plan.route === 'deny'
          ? { decision: 'deny' as const, stage: plan.stage, ruleId: plan.ruleId, reason: plan.error.message, route: 'local' as const }
          : { decision: 'allow' as const, stage: plan.route === 'forward' ? 'tool-access' : 'gateway', ruleId: plan.ruleId, reason: plan.reason, route: plan.route }),
        ...(governance !== undefined && { policyHash: governance.policyHash }),
        ...(plan.route !== 'local' && plan.enforcement !== undefined && { enforcement: plan.enforcement }),
      }, extras),
    ];
    const charge = plan.route === 'forward' && plan.meter !== undefined ? governance?.charge(plan.meter, drafts[1] as EventDraft) : undefined;
    let admitted: readonly StoredEvent[];
    try {
      admitted = await this.#deps.recorder.record(drafts);
      charge?.confirm();
    } catch (error) {
      charge?.cancel();
      await this.#sendToAgent(this.#errorResponse(request.id, error, undefined), request.id);
      this.#deps.logger.error({ session: this.id, method: request.method, err: error }, 'refused: request could not be recorded');
      return;
    }
    if (plan.route === 'hold') {
      this.#hold(request, plan, started, extras, admitted, recording);
      return;
    }
    const receiptBase = { callId, request: positionOf(admitted[0]), decision: positionOf(admitted[1]) };

    if (plan.route === 'deny') {
      await this.#finishWithError(request, plan.error, 'gateway', plan.upstream, started, extras, receiptBase);
      return;
    }
    if (plan.route === 'local') {
      let result: JsonObject;
      try {
        result = await plan.run();
      } catch (error) {
        await this.#finishWithError(request, toGatewayError(error), 'gateway', plan.upstream, started, extras, receiptBase);
        return;
      }
      // An answered initialize is recorded with what the agent said about itself, in the same append.
      const initialized = request.method === 'initialize' ? [draft(this.#context, 'SessionInitialized', { protocolVersion: String(result['protocolVersion']), clientInfo: this.#clientParams['clientInfo'] ?? null, clientCapabilities: this.#clientParams['capabilities'] ?? null })] : [];
      await this.#finishWithResult(request, result, 'gateway', plan.upstream, 'full', started, extras, receiptBase, initialized);
      return;
    }
    await this.#forward(request, plan, started, extras, receiptBase, recording);
  }

  /** Forwards an allowed call to its upstream and finishes it with the upstream's answer. */
  async #forward(request: RpcRequest, plan: { readonly upstream: string; readonly params: JsonObject | undefined; readonly filterTools?: boolean; readonly filterList?: 'prompts/list' | 'resources/list' | 'resources/templates/list' | undefined }, started: number, extras: Extras, receiptBase: object, recording: Recording): Promise<void> {
    const callId = extras.callId;
    const state = this.#upstreams.get(plan.upstream);
    if (state === undefined) {
      // The plan routes only to upstreams in scope: a bug if not, and the call still gets its outcome.
      await this.#finishWithError(request, new GatewayError('ATTEST_INTERNAL', `Internal gateway error: the call was routed to upstream "${plan.upstream}", which is not in this session`), 'gateway', plan.upstream, started, extras, receiptBase);
      return;
    }
    let response: RpcResponse;
    try {
      response = await this.#requestUpstream(state, request.method, plan.params, { downstreamId: request.id, callId, timeoutMs: state.config.timeoutMs, trace: extras.upstreamTrace });
    } catch (error) {
      if (error instanceof CancelledByAgent) return;
      await this.#finishWithError(request, toGatewayError(error), 'gateway', plan.upstream, started, extras, receiptBase);
      return;
    }
    if ('error' in response) {
      await this.#finishWithUpstreamError(request, response.error, plan.upstream, recording, started, extras, receiptBase);
      return;
    }
    let result = response.result;
    if (plan.filterTools === true) {
      try {
        result = await this.#filterListedTools(state, result, plan.params?.['cursor'] === undefined && result['nextCursor'] === undefined);
      } catch (error) {
        await this.#finishWithError(request, toGatewayError(error), 'gateway', plan.upstream, started, extras, receiptBase);
        return;
      }
    }
    if (plan.filterList !== undefined) result = this.#filterRelayedList(plan.upstream, plan.filterList, result);
    await this.#finishWithResult(request, result, 'upstream', plan.upstream, recording, started, extras, receiptBase);
  }

  /** The decision: synchronous, from session state and config only. */
  #plan(request: RpcRequest): Plan {
    const { method } = request;
    const scope = this.init.scope;
    if (!this.#initialized && method !== 'initialize' && method !== 'ping') {
      return deny(new GatewayError('ATTEST_NOT_INITIALIZED', `Session not initialized: send "initialize" before "${method}"`), 'protocol', 'mcp-lifecycle');
    }
    const problem = paramsProblem(request);
    if (problem !== undefined) return deny(new GatewayError('ATTEST_INVALID_PARAMS', problem), 'protocol', 'mcp-schema');
    const params = request.params;
    if (method === 'initialize') {
      if (this.#initialized) return deny(new GatewayError('ATTEST_INVALID_PARAMS', 'Session already initialized'), 'protocol', 'mcp-lifecycle');
      return local(() => this.#initialize(asObject(params)), 'initialize', 'answered by the gateway after initializing upstreams');
    }
    if (method === 'ping') return local(async () => ({}), 'ping', 'answered by the gateway');

    if (scope.kind === 'single') {
      const upstream = scope.upstream;
      const availability = this.#availability(upstream);
      if (availability !== undefined) return { ...availability, upstream };
      if (method === 'tools/call') {
        const tool = String(params?.['name']);
        const known = this.#upstreams.get(upstream)?.tools;
        if (known !== undefined && !known.has(tool)) return deny(new GatewayError('ATTEST_UNKNOWN_TOOL', `Unknown tool: upstream "${upstream}" lists no tool "${tool}"`), 'routing', 'tool-list', upstream, tool);
        return this.#toolAccess(upstream, tool, params);
      }
      const governed = this.#governedRead(method, upstream, params);
      if (governed !== undefined) return governed;
      const filterList = method === 'prompts/list' || method === 'resources/list' || method === 'resources/templates/list' ? method : undefined;
      return { route: 'forward', upstream, params, ruleId: 'passthrough', reason: `relayed to upstream "${upstream}"`, filterTools: method === 'tools/list', filterList };
    }

    switch (method) {
      case 'tools/list':
      case 'prompts/list':
      case 'resources/list':
      case 'resources/templates/list':
        return local(() => this.#aggregateList(method), 'aggregate-list', 'aggregated across upstreams by the gateway');
      case 'logging/setLevel':
        return local(() => this.#broadcastSetLevel(asObject(params)), 'broadcast', 'sent to every upstream with logging');
      case 'tools/call':
      case 'prompts/get': {
        const qualified = String(params?.['name']);
        const parts = unqualify(qualified);
        const kind = method === 'tools/call' ? 'tool' : 'prompt';
        if (!this.#bundled(kind, qualified)) return deny(new GatewayError(method === 'tools/call' ? 'ATTEST_UNKNOWN_TOOL' : 'ATTEST_INVALID_PARAMS', `Unknown ${kind}: "${qualified}" is not in ${this.#endpointName()}`), 'routing', 'virtual-server');
        if (parts === undefined || !this.#upstreams.has(parts.upstream)) {
          return deny(new GatewayError(method === 'tools/call' ? 'ATTEST_UNKNOWN_TOOL' : 'ATTEST_INVALID_PARAMS', `Unknown ${kind}: "${qualified}" (names on this endpoint are "<upstream>__<${kind}>"; upstreams: ${[...this.#upstreams.keys()].join(', ')})`), 'routing', 'namespace');
        }
        const availability = this.#availability(parts.upstream);
        if (availability !== undefined) return { ...availability, upstream: parts.upstream, target: parts.name };
        const renamed = { ...params, name: parts.name };
        if (method === 'prompts/get') return this.#governedRead(method, parts.upstream, renamed) ?? { route: 'forward', upstream: parts.upstream, params: renamed, target: parts.name, ruleId: 'passthrough', reason: `relayed to upstream "${parts.upstream}"` };
        const known = this.#upstreams.get(parts.upstream)?.tools;
        if (known !== undefined && !known.has(parts.name)) {
          return deny(new GatewayError('ATTEST_UNKNOWN_TOOL', `Unknown tool: "${qualified}" (upstream "${parts.upstream}" lists no tool "${parts.name}")`), 'routing', 'tool-list', parts.upstream, parts.name);
        }
        return this.#toolAccess(parts.upstream, parts.name, renamed);
      }
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const uri = String(params?.['uri']);
        const owner = this.#resources.ownerOfUri(uri) ?? this.#soleUpstreamWith('resources');
        if (!this.#bundled('resource', uri)) return deny(new GatewayError('ATTEST_UNKNOWN_RESOURCE', `Resource not found: "${uri}" is not in ${this.#endpointName()}`, { uri }), 'routing', 'virtual-server');
        if (owner === undefined) return deny(new GatewayError('ATTEST_UNKNOWN_RESOURCE', `Resource not found: no upstream lists "${uri}" (call resources/list or resources/templates/list first)`, { uri }), 'routing', 'resource-directory');
        const availability = this.#availability(owner);
        if (availability !== undefined) return { ...availability, upstream: owner, target: uri };
        return this.#governedRead(method, owner, params) ?? { route: 'forward', upstream: owner, params, target: uri, ruleId: 'passthrough', reason: `resource owned by upstream "${owner}"` };
      }
      case 'completion/complete': {
        const ref = asObject(params?.['ref']);
        if (ref['type'] === 'ref/prompt') {
          const parts = unqualify(String(ref['name']));
          if (!this.#bundled('prompt', String(ref['name']))) return deny(new GatewayError('ATTEST_INVALID_PARAMS', `Unknown prompt: "${String(ref['name'])}" is not in ${this.#endpointName()}`), 'routing', 'virtual-server');
          if (parts === undefined || !this.#upstreams.has(parts.upstream)) return deny(new GatewayError('ATTEST_INVALID_PARAMS', `Unknown prompt: "${String(ref['name'])}"`), 'routing', 'namespace');
          const availability = this.#availability(parts.upstream);
          if (availability !== undefined) return { ...availability, upstream: parts.upstream };
          return this.#governedRead('prompts/get', parts.upstream, { name: parts.name }) ?? { route: 'forward', upstream: parts.upstream, params: { ...params, ref: { ...ref, name: parts.name } }, target: parts.name, ruleId: 'passthrough', reason: `prompt of upstream "${parts.upstream}"` };
        }
        const uri = String(ref['uri']);
        if (!this.#bundled('resource', uri)) return deny(new GatewayError('ATTEST_UNKNOWN_RESOURCE', `No resource template "${uri}" in ${this.#endpointName()}`), 'routing', 'virtual-server');
        const owner = this.#resources.ownerOfTemplate(uri) ?? this.#resources.ownerOfUri(uri) ?? this.#soleUpstreamWith('resources');
        if (owner === undefined) return deny(new GatewayError('ATTEST_UNKNOWN_RESOURCE', `No upstream lists the resource template "${uri}"`), 'routing', 'resource-directory');
        const availability = this.#availability(owner);
        if (availability !== undefined) return { ...availability, upstream: owner };
        return this.#governedRead('resources/read', owner, { uri }) ?? { route: 'forward', upstream: owner, params, target: uri, ruleId: 'passthrough', reason: `template of upstream "${owner}"` };
      }
      default:
        return deny(new GatewayError('ATTEST_METHOD_NOT_FOUND', `Method not found: "${method}" is not served on the aggregate endpoint`), 'routing', 'method');
    }
  }

  /** Whether a name is served on this endpoint: always, unless the session is on a virtual server. */
  #bundled(kind: BundleKind, name: string): boolean {
    return this.init.scope.kind !== 'virtual' || this.init.scope.bundle.has(kind, name);
  }

  #endpointName(): string {
    return this.init.scope.kind === 'virtual' ? `virtual server "${this.init.scope.bundle.name}"` : 'this endpoint';
  }

  /**
   * The policy's say on getting a prompt or reading/subscribing to a resource (`tool` = the prompt
   * name or the URI, `args` = the prompt's arguments): a deny plan, or undefined when allowed or
   * when no policy is configured. `params` are upstream-side (names without the namespace).
   */
  #governedRead(method: string, upstream: string, params: JsonObject | undefined): Extract<Plan, { route: 'deny' }> | undefined {
    const governance = this.#deps.governance;
    if (governance === undefined) return undefined;
    const isPrompt = method === 'prompts/get' || method === 'completion/complete';
    if (!isPrompt && method !== 'resources/read' && method !== 'resources/subscribe') return undefined;
    const name = String(isPrompt ? params?.['name'] : params?.['uri']);
    const verdict = governance.checkAccess(this.init.auth.principal, upstream, isPrompt ? 'prompts/get' : method, name, isPrompt ? (params?.['arguments'] ?? {}) : {}, Date.now());
    if (verdict.allowed) return undefined;
    return deny(verdict.error, 'policy', verdict.ruleId, upstream, name);
  }

  /** Prompts, resources or templates an agent may get or read, from one upstream's list (upstream-side names). */
  #visibleItems(upstream: string, method: 'prompts/list' | 'resources/list' | 'resources/templates/list', items: readonly JsonObject[]): JsonObject[] {
    const governance = this.#deps.governance;
    if (governance === undefined) return [...items];
    const key = method === 'prompts/list' ? 'name' : method === 'resources/list' ? 'uri' : 'uriTemplate';
    const refs = items.map((item) => ({ upstream, tool: String(item[key]), item }));
    return governance.visible(this.init.auth.principal, refs, method === 'prompts/list' ? 'prompts/get' : 'resources/read').map((ref) => ref.item);
  }

  #filterRelayedList(upstream: string, method: 'prompts/list' | 'resources/list' | 'resources/templates/list', result: JsonObject): JsonObject {
    const key = method === 'prompts/list' ? 'prompts' : method === 'resources/list' ? 'resources' : 'resourceTemplates';
    const items = Array.isArray(result[key]) ? (result[key] as unknown[]).map(asObject) : [];
    return { ...result, [key]: this.#visibleItems(upstream, method, items) };
  }

  #availability(upstream: string): Extract<Plan, { route: 'deny' }> | undefined {
    const state = this.#upstreams.get(upstream);
    if (state === undefined) return deny(new GatewayError('ATTEST_UNKNOWN_SERVER', `No upstream named "${upstream}"`), 'routing', 'upstream');
    if (state.status === 'ready') return undefined;
    return deny(new GatewayError('ATTEST_UPSTREAM_UNAVAILABLE', `Upstream "${upstream}" is unavailable: ${state.downReason}`, { upstream }), 'routing', 'upstream-health');
  }

  /** A tools/call through the decision pipeline (gateway/pipeline/tool-call.ts), as the plan the session carries out. */
  #toolAccess(upstream: string, tool: string, params: JsonObject | undefined): Plan {
    const decision = decideToolCall({ principal: this.init.auth.principal, upstream, tool, args: params?.['arguments'], now: Date.now() }, this.#stages);
    switch (decision.kind) {
      case 'deny':
        return { route: 'deny', error: decision.error, stage: decision.stage, ruleId: decision.ruleId, upstream, target: tool, enforcement: decision.enforcement };
      case 'hold':
        return { route: 'hold', upstream, params, target: tool, ruleId: decision.ruleId, reason: decision.reason, approval: decision.approval, argumentsDigest: decision.argumentsDigest };
      case 'allow':
        return { route: 'forward', upstream, params, target: tool, ruleId: decision.ruleId, reason: decision.reason, meter: decision.meter, enforcement: decision.enforcement };
    }
  }

  /** The quarantine of a tool for this session: against the definition its connection listed (tool pinning). */
  #quarantined(upstream: string, tool: string): Quarantine | undefined {
    const state = this.#upstreams.get(upstream);
    const pins = this.#deps.pins;
    if (pins === undefined || state?.config.pinTools !== true) return undefined;
    return pins.quarantine(upstream, tool, state.toolHashes?.get(tool) as `sha256:${string}` | undefined);
  }

  // ── approvals ────────────────────────────────────────────────────────────────────────────

  #approvalRequested(plan: HoldPlan, extras: Extras): EventDraft {
    return draft(this.#context, 'ApprovalRequested', {
      upstream: plan.upstream,
      target: plan.target,
      argumentsDigest: plan.argumentsDigest,
      ruleId: plan.ruleId,
      reason: plan.reason,
      approverRoles: plan.approval.approverRoles,
      timeoutMs: plan.approval.timeoutMs,
      expiresAt: new Date(Date.now() + plan.approval.timeoutMs).toISOString(),
      instance: this.#deps.approvals?.instance ?? 'unknown',
    }, extras);
  }

  /** A held call, its ApprovalRequested durable: waits in the broker until granted, denied, expired or withdrawn. */
  #hold(request: RpcRequest, plan: HoldPlan, started: number, extras: Extras, admitted: readonly StoredEvent[], recording: Recording): void {
    const approvals = this.#deps.approvals;
    const requested = admitted[1]?.event;
    if (approvals === undefined || requested?.type !== 'ApprovalRequested') {
      // A hold plan needs both (the pipeline holds only where approvals exist): a bug if not, and the call still gets its outcome.
      void this.#finishWithError(request, new GatewayError('ATTEST_INTERNAL', 'Internal gateway error: a held call without an approvals broker or its ApprovalRequested'), 'gateway', plan.upstream, started, extras, { callId: extras.callId, request: positionOf(admitted[0]) });
      return;
    }
    const receiptBase = { callId: extras.callId, request: positionOf(admitted[0]), approval: positionOf(admitted[1]) };
    const progressToken = progressTokenOf(request.params);
    let progress: NodeJS.Timeout | undefined;
    if (progressToken !== undefined) {
      let step = 0;
      const tell = (): void => {
        const params = { progressToken, progress: step++, message: `waiting for approval (rule "${plan.ruleId}") until ${requested.data.expiresAt}` };
        void this.#recordQuietly([draft(this.#context, 'NotificationRelayed', { from: 'gateway', method: 'notifications/progress', params: recordPayload(params, 'full') }, extras)]).then((ok) => {
          if (ok && this.#held.has(request.id)) return this.#sendToAgent({ jsonrpc: '2.0', method: 'notifications/progress', params }, request.id);
          return undefined;
        });
      };
      tell();
      progress = setInterval(tell, APPROVAL_PROGRESS_EVERY_MS);
    }
    this.#held.set(request.id, extras.callId);
    approvals.open({
      id: extras.callId,
      sessionId: this.id,
      tenant: this.#context.tenant,
      agent: this.init.auth.principal,
      upstream: plan.upstream,
      tool: plan.target,
      argumentsDigest: plan.argumentsDigest,
      ...(recording === 'full' && { arguments: plan.params?.['arguments'] ?? {} }),
      ruleId: plan.ruleId,
      reason: plan.reason,
      approverRoles: plan.approval.approverRoles,
      requestedAt: requested.occurredAt,
      expiresAt: requested.data.expiresAt,
    }, (outcome) => {
      this.#held.delete(request.id);
      clearInterval(progress);
      return this.#settleHold(request, plan, outcome, requested.data.expiresAt, started, extras, receiptBase, recording);
    });
    // The session closed while ApprovalRequested was being recorded: its close found nothing held yet.
    if (this.#closed) void approvals.withdraw(extras.callId, 'the session closed while the call waited for approval')?.catch((error: unknown) => this.#deps.logger.error({ err: error, session: this.id, callId: extras.callId }, 'the withdrawal of a held call could not be recorded'));
  }

  /**
   * Records how a held call ended — the approval outcome and the decision in one append — then
   * forwards it (granted, and the limits still admit it) or refuses it. A grant is charged to the
   * limits here, when its allow decision is drafted, so charges stay in log order.
   */
  async #settleHold(request: RpcRequest, plan: HoldPlan, outcome: ApprovalOutcome, expiresAt: string, started: number, extras: Extras, receiptBase: object, recording: Recording): Promise<string> {
    const governance = this.#deps.governance;
    const as = (actor: Principal): StreamContext => ({ ...this.#context, actor });
    const policyHash = governance === undefined ? {} : { policyHash: governance.policyHash };
    const refuse = (error: GatewayError, stage: string, ruleId: string, enforcement?: DecisionEnforcement): EventDraft =>
      draft(this.#context, 'DecisionMade', { decision: 'deny', stage, ruleId, reason: error.message, route: 'local', ...policyHash, ...(enforcement !== undefined && { enforcement }) }, extras);
    const drafts: EventDraft[] = [];
    let refusal: GatewayError | undefined;
    let allowed: MeteredCall | undefined;
    switch (outcome.kind) {
      case 'granted': {
        drafts.push(draft(as(outcome.approver), 'ApprovalGranted', { reason: outcome.reason }, extras));
        const reason = `${plan.reason}; approved by "${outcome.approver.id}": ${outcome.reason}`;
        const verdict = governance?.admit(this.init.auth.principal, plan.upstream, plan.target, plan.params?.['arguments'], Date.now(), plan.ruleId, reason);
        if (verdict === undefined || verdict.effect === 'deny') {
          refusal = verdict?.error ?? new GatewayError('ATTEST_INTERNAL', 'Internal gateway error: no governance to admit an approved call');
          drafts.push(refuse(refusal, verdict?.stage ?? 'approval', verdict?.ruleId ?? plan.ruleId, verdict?.enforcement));
        } else {
          drafts.push(draft(this.#context, 'DecisionMade', { decision: 'allow', stage: 'approval', ruleId: plan.ruleId, reason, route: 'forward', ...policyHash, enforcement: verdict.enforcement }, extras));
          allowed = verdict.meter;
        }
        break;
      }
      case 'denied':
        drafts.push(draft(as(outcome.approver), 'ApprovalDenied', { reason: outcome.reason }, extras));
        refusal = new GatewayError('ATTEST_APPROVAL_DENIED', `Denied by approver "${outcome.approver.id}" (rule "${plan.ruleId}"): ${outcome.reason}`, { ruleId: plan.ruleId, approvalId: extras.callId, approver: outcome.approver.id, reason: outcome.reason });
        drafts.push(refuse(refusal, 'approval', plan.ruleId));
        break;
      case 'expired':
        drafts.push(draft(as(SYSTEM_PRINCIPAL), 'ApprovalExpired', { reason: `no decision within ${plan.approval.timeoutMs} ms`, expiresAt }, extras));
        refusal = new GatewayError('ATTEST_APPROVAL_EXPIRED', `No approver decided within ${plan.approval.timeoutMs} ms (rule "${plan.ruleId}"); denied (fail closed)`, { ruleId: plan.ruleId, approvalId: extras.callId, expiresAt });
        drafts.push(refuse(refusal, 'approval', plan.ruleId));
        break;
      case 'withdrawn':
        // A cancelled request gets no response (MCP cancellation); its end is recorded all the same.
        drafts.push(draft(this.#context, 'ApprovalWithdrawn', { reason: outcome.reason }, extras));
        drafts.push(draft(this.#context, 'DecisionMade', { decision: 'deny', stage: 'approval', ruleId: plan.ruleId, reason: `withdrawn: ${outcome.reason}`, route: 'local', ...policyHash }, extras));
        drafts.push(draft(this.#context, 'ErrorReturned', { from: 'agent', upstream: plan.upstream, jsonrpcCode: -32800, errorCode: 'ATTEST_CANCELLED', message: outcome.reason, durationMs: round(performance.now() - started) }, extras));
        break;
    }
    const charge = allowed === undefined ? undefined : governance?.charge(allowed, drafts[1] as EventDraft);
    let stored: readonly StoredEvent[];
    try {
      stored = await this.#deps.recorder.record(drafts);
      charge?.confirm();
    } catch (error) {
      charge?.cancel();
      if (outcome.kind !== 'withdrawn') void this.#sendToAgent(this.#errorResponse(request.id, error, undefined), request.id);
      throw error;
    }
    const receipt = { ...receiptBase, decision: positionOf(stored[1]) };
    const next = outcome.kind === 'withdrawn' ? Promise.resolve() : refusal === undefined ? this.#forward(request, plan, started, extras, receipt, recording) : this.#finishWithError(request, refusal, 'gateway', plan.upstream, started, extras, receipt);
    next.catch((error: unknown) => this.#deps.logger.error({ err: error, session: this.id }, 'unhandled error finishing an approved call'));
    return stored[0]?.event.id ?? '';
  }

  /** Compares a listing with the gateway's pins (recording new pins and changes) and remembers what this connection listed. */
  async #observeTools(state: UpstreamState, tools: readonly JsonObject[], complete: boolean): Promise<Observation | undefined> {
    const pins = this.#deps.pins;
    if (pins === undefined || !state.config.pinTools) return undefined;
    const observation = await pins.observe(state.name, tools, this.id);
    if (complete || state.toolHashes === undefined) state.toolHashes = new Map();
    for (const [name, hash] of observation.hashes) state.toolHashes.set(name, hash);
    return observation;
  }

  #soleUpstreamWith(capability: string): string | undefined {
    const ready = [...this.#upstreams.values()].filter((s) => s.status === 'ready' && s.capabilities[capability] !== undefined);
    return ready.length === 1 ? ready[0]?.name : undefined;
  }

  async #finishWithResult(request: RpcRequest, result: JsonObject, from: 'upstream' | 'gateway', upstream: string | undefined, recording: Recording, started: number, extras: { callId: string; traceparent: string | undefined }, receiptBase: object, after: readonly EventDraft[] = []): Promise<void> {
    const durationMs = round(performance.now() - started);
    const recorded = recordPayload(result, recording);
    const isError = result['isError'] === true;
    let outcome: readonly StoredEvent[];
    try {
      outcome = await this.#deps.recorder.record([
        draft(this.#context, 'ResultReturned', { from, ...(upstream !== undefined && { upstream }), isError, durationMs, result: recorded }, extras),
        ...after,
      ]);
    } catch (error) {
      const ran = from === 'upstream' ? `Upstream "${upstream ?? ''}" ran ${request.method} and answered` : `${request.method} was answered by the gateway`;
      await this.#withhold(request, ran, error, { digest: recorded.digest, bytes: recorded.bytes, isError }, upstream, started, extras, receiptBase);
      return;
    }
    const answer = RECEIPT_METHODS.has(request.method) ? { ...result, _meta: { ...asObject(result['_meta']), [RECEIPT_META_KEY]: { ...receiptBase, outcome: positionOf(outcome[0]) } } } : result;
    if (request.method === 'initialize') this.#initializeAnswered = true;
    await this.#sendToAgent({ jsonrpc: '2.0', id: request.id, result: answer }, request.id);
  }

  async #finishWithError(request: RpcRequest, failure: GatewayError, from: 'gateway', upstream: string | undefined, started: number, extras: { callId: string; traceparent: string | undefined }, receiptBase: object): Promise<void> {
    const error = this.#agentFacing(failure, extras.callId);
    const withheld = failure instanceof UnrecordableAnswer ? { withheld: { reason: 'unrecordable' as const } } : {};
    let outcome: readonly StoredEvent[] | undefined;
    try {
      outcome = await this.#deps.recorder.record([
        draft(this.#context, 'ErrorReturned', { from, ...(upstream !== undefined && { upstream }), jsonrpcCode: error.jsonrpcCode, errorCode: error.code, message: error.message, durationMs: round(performance.now() - started), ...withheld }, extras),
      ]);
    } catch (logError) {
      this.#deps.logger.error({ session: this.id, err: logError }, 'could not record an error response');
    }
    await this.#sendToAgent(this.#errorResponse(request.id, error, outcome === undefined ? undefined : { ...receiptBase, outcome: positionOf(outcome[0]) }), request.id);
  }

  async #finishWithUpstreamError(request: RpcRequest, rpcError: RpcError, upstream: string, recording: Recording, started: number, extras: { callId: string; traceparent: string | undefined }, receiptBase: object): Promise<void> {
    try {
      await this.#deps.recorder.record([
        draft(this.#context, 'ErrorReturned', { from: 'upstream', upstream, jsonrpcCode: rpcError.code, message: recordText(String(rpcError.message), recording), durationMs: round(performance.now() - started), ...(rpcError.data !== undefined && { data: recordPayload(rpcError.data, recording) }) }, extras),
      ]);
    } catch (error) {
      const answer = recordPayload(rpcError, 'digest');
      await this.#withhold(request, `Upstream "${upstream}" ran ${request.method} and answered with an error`, error, { digest: answer.digest, bytes: answer.bytes }, upstream, started, extras, receiptBase);
      return;
    }
    // An upstream's JSON-RPC error passes exactly as sent (its `data` is the upstream's own), so it
    // carries no receipt; the call's events are still found by the request id in the log.
    void receiptBase;
    await this.#sendToAgent({ jsonrpc: '2.0', id: request.id, error: rpcError }, request.id);
  }

  /**
   * The upstream (or the gateway) answered, and the log refused the answer: the agent gets -32014,
   * saying the call ran, and the call's outcome is recorded as withheld (the answer's digest and
   * size, why) — now, or as soon as the log takes appends again (Recorder.recordEventually), so the
   * next start does not take the call for one a crash interrupted.
   */
  async #withhold(request: RpcRequest, ran: string, error: unknown, answer: { readonly digest: string; readonly bytes: number; readonly isError?: boolean }, upstream: string | undefined, started: number, extras: { callId: string; traceparent: string | undefined }, receiptBase: object): Promise<void> {
    const refusal = error instanceof LogRefusal ? error : undefined;
    const reason = refusal?.reason ?? 'ATTEST_LOG_FAILED';
    const withheld = new GatewayError('ATTEST_RESULT_NOT_RECORDED', `${ran}, but the audit log could not record the answer (${reason}), so it is withheld; the call took effect upstream`, { callId: extras.callId });
    this.#deps.logger.error({ session: this.id, callId: extras.callId, method: request.method, upstream, err: error }, 'an answer the log could not record was withheld from the agent');
    const outcome = draft(this.#context, 'ErrorReturned', {
      from: 'gateway',
      ...(upstream !== undefined && { upstream }),
      jsonrpcCode: withheld.jsonrpcCode,
      errorCode: withheld.code,
      message: withheld.message,
      durationMs: round(performance.now() - started),
      withheld: { reason: refusal?.kind === 'refused' ? 'log-refused' : 'log-unavailable', logError: reason, ...answer },
    }, extras);
    const stored = await this.#deps.recorder.recordEventually([outcome]);
    await this.#sendToAgent(this.#errorResponse(request.id, withheld, stored === undefined ? undefined : { ...receiptBase, outcome: positionOf(stored[0]) }), request.id);
  }

  #errorResponse(id: JsonRpcId, error: unknown, receipt: object | undefined): RpcResponse {
    const body = this.#agentFacing(toGatewayError(error), undefined).toJsonRpcError();
    return { jsonrpc: '2.0', id, error: receipt === undefined ? body : { ...body, data: { ...body.data, receipt } } };
  }

  /** The error as the agent gets it and ErrorReturned records it; what it leaves out (paths, URLs, pids) goes to the operator's log. */
  #agentFacing(error: GatewayError, callId: string | undefined): GatewayError {
    const facing = agentFacing(error);
    if (facing.changed) this.#deps.logger.warn({ session: this.id, callId, errorCode: error.code, operatorMessage: error.message, err: error.cause }, 'a failure told to the agent without its operator detail');
    return facing.error;
  }

  // ── initialize and aggregation ───────────────────────────────────────────────────────────

  async #initialize(params: JsonObject): Promise<JsonObject> {
    const version = negotiateProtocolVersion(params['protocolVersion']);
    this.#protocolVersion = version;
    this.#clientParams = params;
    await Promise.all([...this.#upstreams.values()].map((state) => this.#connect(state)));
    this.#initialized = true;
    if (this.init.scope.kind === 'single') {
      const state = this.#upstreams.get(this.init.scope.upstream);
      if (state?.status !== 'ready' || state.initResult === undefined) {
        throw new GatewayError('ATTEST_UPSTREAM_UNAVAILABLE', `Upstream "${this.init.scope.upstream}" is unavailable: ${state?.downReason ?? 'unknown'}`);
      }
      const upstreamVersion = state.initResult['protocolVersion'];
      return { ...state.initResult, protocolVersion: typeof upstreamVersion === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(upstreamVersion) ? upstreamVersion : version };
    }
    const ready = [...this.#upstreams.values()].filter((s) => s.status === 'ready');
    const has = (capability: string): boolean => ready.some((s) => s.capabilities[capability] !== undefined);
    const capabilities: JsonObject = {
      tools: { listChanged: true },
      prompts: { listChanged: true },
      resources: { listChanged: true, subscribe: ready.some((s) => asObject(s.capabilities['resources'])['subscribe'] === true) },
      ...(has('logging') && { logging: {} }),
      ...(has('completions') && { completions: {} }),
    };
    const instructions = ready
      .map((s) => ({ name: s.name, text: s.initResult?.['instructions'] }))
      .filter((x): x is { name: string; text: string } => typeof x.text === 'string' && x.text.length > 0)
      .map((x) => `## ${x.name} (tools and prompts prefixed "${x.name}__")\n${x.text}`)
      .join('\n\n');
    return {
      protocolVersion: version,
      capabilities,
      serverInfo: { name: 'attest', title: 'Attest MCP gateway', version: this.#deps.version },
      ...(instructions.length > 0 && { instructions }),
    };
  }

  async #connect(state: UpstreamState): Promise<void> {
    const link = this.#deps.createLink(state.name, state.config);
    state.link = link;
    state.status = 'connecting';
    state.lastLoss = undefined;
    // A link this session let go of (failed connect, session closed) has nothing more to say.
    link.onmessage = (message) => {
      if (state.link === link) this.#onUpstreamMessage(state, message);
    };
    link.onevent = (event) => {
      if (state.link === link) this.#onUpstreamEvent(state, event);
    };
    try {
      await link.start(AbortSignal.timeout(state.config.connectTimeoutMs));
      const response = await this.#requestUpstream(state, 'initialize', {
        protocolVersion: this.#protocolVersion,
        capabilities: asObject(this.#clientParams['capabilities']),
        clientInfo: asObject(this.#clientParams['clientInfo']),
      }, { downstreamId: undefined, callId: undefined, timeoutMs: state.config.connectTimeoutMs, allowConnecting: true });
      if ('error' in response) throw new GatewayError('ATTEST_UPSTREAM_UNAVAILABLE', `Upstream "${state.name}" refused initialize: ${response.error.message}`);
      state.initResult = response.result;
      state.capabilities = asObject(response.result['capabilities']);
      const version = response.result['protocolVersion'];
      if (typeof version === 'string') link.setProtocolVersion(version);
      state.status = 'ready';
      this.#deps.health?.ok(state.name, 'session');
      await this.#recordQuietly([
        draft(this.#context, 'UpstreamConnected', {
          upstream: state.name,
          transport: state.config.transport,
          ...(typeof version === 'string' && { protocolVersion: version }),
          serverInfo: response.result['serverInfo'],
        }),
      ]);
    } catch (error) {
      state.status = 'down';
      // The link's own account (exit code, stderr tail) when it has one: a process that died during initialize.
      const failure = error instanceof UpstreamError ? error : state.lastLoss;
      const operatorReason = failure === undefined ? (error as Error).message : `${startFailureForOperator(failure)}${formatStderrTail(failure.facts.stderrTail ?? [])}`;
      // The agent hears what happened; command lines, paths and pids are for the operator's log.
      state.downReason = state.config.transport === 'stdio' && failure !== undefined ? stdioStartFailureForAgent(failure) : (error as Error).message;
      this.#deps.health?.failed(state.name, failure ?? (error as Error), 'session');
      this.#deps.logger.warn({ session: this.id, upstream: state.name, ...(failure === undefined ? { err: error } : { exitCode: failure.facts.exitCode, stderrTail: failure.facts.stderrTail }) }, `upstream could not be connected: ${operatorReason}`);
      state.link = undefined;
      await this.#recordQuietly([draft(this.#context, 'UpstreamLost', { upstream: state.name, reason: (error as Error).message, willRestart: false })]);
      await link.close().catch(() => undefined);
    }
  }

  /**
   * A call before this connection's tools are known (the agent did not list them, or the upstream
   * changed them since): the gateway lists them itself first, once, so the call is checked against
   * the tools and input schemas this connection serves (and their pins) rather than forwarded blind.
   */
  async #listBeforeCall(request: RpcRequest): Promise<void> {
    if (!this.#initialized) return;
    const name = String(request.params?.['name']);
    const upstream = this.init.scope.kind === 'single' ? this.init.scope.upstream : unqualify(name)?.upstream;
    const state = upstream === undefined ? undefined : this.#upstreams.get(upstream);
    if (state === undefined || state.status !== 'ready') return;
    const pinsUnknown = this.#pinned(state) && state.toolHashes === undefined;
    if (state.tools !== undefined && !pinsUnknown) return;
    state.toolsListing ??= this.#listTools(state);
    await state.toolsListing;
  }

  #pinned(state: UpstreamState): boolean {
    return this.#deps.pins !== undefined && state.config.pinTools;
  }

  /** The upstream's tools changed (list_changed, a restarted process): what was known of them is not any more. */
  async #toolsChanged(state: UpstreamState): Promise<void> {
    forgetTools(state);
    // With pinning, the new definitions are compared with the pins before the agent hears of it, so a
    // changed tool is quarantined even for an agent that calls without listing again.
    if (!this.#pinned(state) || state.status !== 'ready') return;
    state.toolsListing = this.#listTools(state);
    await state.toolsListing;
  }

  /**
   * Lists every tool of the connection (all pages), compares them with the pins, and learns their
   * names and input schemas. A listing that fails leaves them unknown: the call is then checked by
   * the gateway-wide pins only and its arguments by the upstream (docs/tool-pinning.md, "Limits").
   */
  async #listTools(state: UpstreamState): Promise<void> {
    try {
      const tools = await this.#fetchAll(state, 'tools/list', 'tools');
      await this.#observeTools(state, tools, true);
      state.tools = new Set(tools.map((t) => String(t['name'])));
      state.inputs.learn(tools);
    } catch (error) {
      state.toolHashes = undefined;
      this.#deps.logger.warn({ session: this.id, upstream: state.name, err: error }, 'could not list the tools of an upstream before a call; the call is not checked against its tool list');
    }
  }

  async #fetchAll(state: UpstreamState, method: string, key: string): Promise<JsonObject[]> {
    const items: JsonObject[] = [];
    let cursor: unknown;
    for (let page = 0; page < MAX_LIST_PAGES; page++) {
      const response = await this.#requestUpstream(state, method, cursor === undefined ? {} : { cursor }, { downstreamId: undefined, callId: undefined, timeoutMs: state.config.timeoutMs });
      if ('error' in response) throw new GatewayError('ATTEST_UPSTREAM_UNAVAILABLE', `Upstream "${state.name}" failed ${method}: ${response.error.message}`);
      const list = response.result[key];
      if (Array.isArray(list)) for (const item of list) items.push(asObject(item));
      cursor = response.result['nextCursor'];
      if (typeof cursor !== 'string' || cursor.length === 0) break;
    }
    return items;
  }

  async #aggregateList(method: 'tools/list' | 'prompts/list' | 'resources/list' | 'resources/templates/list'): Promise<JsonObject> {
    const spec = {
      'tools/list': { capability: 'tools', key: 'tools' },
      'prompts/list': { capability: 'prompts', key: 'prompts' },
      'resources/list': { capability: 'resources', key: 'resources' },
      'resources/templates/list': { capability: 'resources', key: 'resourceTemplates' },
    }[method];
    const ready = [...this.#upstreams.values()].filter((s) => s.status === 'ready' && s.capabilities[spec.capability] !== undefined);
    const perUpstream = await Promise.all(
      ready.map(async (state) => {
        try {
          const items = await this.#fetchAll(state, method, spec.key);
          const observation = method === 'tools/list' ? await this.#observeTools(state, items, true) : undefined;
          return { state, items, quarantined: observation?.quarantined };
        } catch (error) {
          this.#deps.logger.warn({ session: this.id, upstream: state.name, err: error }, `${method} failed for one upstream; listing the others`);
          return { state, items: undefined, quarantined: undefined };
        }
      }),
    );
    const out: JsonObject[] = [];
    for (const { state, items, quarantined } of perUpstream) {
      if (items === undefined) continue; // keep what is known of an upstream that failed to list this time
      if (method === 'tools/list') {
        state.tools = new Set(items.map((t) => String(t['name'])));
        state.inputs.learn(items);
        const listable = quarantined === undefined || quarantined.size === 0 ? items : items.filter((t) => !quarantined.has(String(t['name'])));
        for (const tool of this.#visible(state.name, listable)) {
          const name = qualify(state.name, String(tool['name']));
          if (this.#bundled('tool', name)) out.push({ ...tool, name });
        }
      } else if (method === 'prompts/list') {
        for (const prompt of this.#visibleItems(state.name, method, items)) {
          const name = qualify(state.name, String(prompt['name']));
          if (this.#bundled('prompt', name)) out.push({ ...prompt, name });
        }
      } else if (method === 'resources/list') {
        this.#resources.setResources(state.name, items.map((r) => String(r['uri'])));
        out.push(...this.#visibleItems(state.name, method, items).filter((r) => this.#bundled('resource', String(r['uri']))));
      } else {
        this.#resources.setTemplates(state.name, items.map((t) => String(t['uriTemplate'])));
        out.push(...this.#visibleItems(state.name, method, items).filter((t) => this.#bundled('resource', String(t['uriTemplate']))));
      }
    }
    return { [spec.key]: out };
  }

  async #filterListedTools(state: UpstreamState, result: JsonObject, complete: boolean): Promise<JsonObject> {
    const tools = Array.isArray(result['tools']) ? (result['tools'] as unknown[]).map(asObject) : [];
    const quarantined = (await this.#observeTools(state, tools, result['nextCursor'] === undefined))?.quarantined;
    // A page of a paginated list is not the whole list: the names and schemas come only from a
    // listing of one page (else the gateway lists every page itself before a call, #listBeforeCall).
    if (complete) {
      state.tools = new Set(tools.map((t) => String(t['name'])));
      state.inputs.learn(tools);
    }
    const listable = quarantined === undefined || quarantined.size === 0 ? tools : tools.filter((t) => !quarantined.has(String(t['name'])));
    return { ...result, tools: this.#visible(state.name, listable) };
  }

  /** The tools of one upstream this agent may see: allowed by its key, and not denied outright by the policy. */
  #visible(upstream: string, tools: readonly JsonObject[]): JsonObject[] {
    const allowed = tools.filter((tool) => this.#access.check(qualify(upstream, String(tool['name']))).allowed);
    const governance = this.#deps.governance;
    if (governance === undefined) return allowed;
    return governance.visible(this.init.auth.principal, allowed.map((tool) => ({ upstream, tool: String(tool['name']), definition: tool }))).map((ref) => ref.definition);
  }

  async #broadcastSetLevel(params: JsonObject): Promise<JsonObject> {
    const targets = [...this.#upstreams.values()].filter((s) => s.status === 'ready' && s.capabilities['logging'] !== undefined);
    const outcomes = await Promise.all(targets.map((state) => this.#requestUpstream(state, 'logging/setLevel', params, { downstreamId: undefined, callId: undefined, timeoutMs: state.config.timeoutMs }).catch((error: unknown) => ({ error: toGatewayError(error).toJsonRpcError() }))));
    const failed = outcomes.map((o, i) => ('error' in o ? `${targets[i]?.name}: ${o.error.message}` : undefined)).filter((x) => x !== undefined);
    if (failed.length > 0 && failed.length === targets.length) throw new GatewayError('ATTEST_UPSTREAM_UNAVAILABLE', `logging/setLevel failed on every upstream: ${failed.join('; ')}`);
    return {};
  }

  // ── upstream requests ────────────────────────────────────────────────────────────────────

  #requestUpstream(state: UpstreamState, method: string, params: JsonObject | undefined, options: { downstreamId: JsonRpcId | undefined; callId: string | undefined; timeoutMs: number; allowConnecting?: boolean; trace?: TraceHeaders | undefined }): Promise<RpcResponse> {
    const initializing = state.initializedRelay;
    if (initializing !== undefined) return initializing.then(() => this.#requestUpstream(state, method, params, options));
    const link = state.link;
    const usable = state.status === 'ready' || (options.allowConnecting === true && state.status === 'connecting');
    if (link === undefined || !usable) return Promise.reject(new GatewayError('ATTEST_UPSTREAM_UNAVAILABLE', `Upstream "${state.name}" is unavailable: ${state.downReason}`, { upstream: state.name }));
    const id = state.nextId++;
    const progressToken = progressTokenOf(params);
    return new Promise<RpcResponse>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(forward.timer);
        state.pending.delete(id);
        if (options.downstreamId !== undefined) this.#forwardsByAgentId.delete(options.downstreamId);
        if (progressToken !== undefined) this.#progressRoutes.delete(progressToken);
      };
      const forward: Forward = {
        id,
        method,
        downstreamId: options.downstreamId,
        progressToken,
        timer: setTimeout(() => {
          cleanup();
          link.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: `timed out after ${options.timeoutMs} ms at the gateway` } }).catch(() => undefined);
          reject(new GatewayError('ATTEST_UPSTREAM_TIMEOUT', `Upstream "${state.name}" did not answer ${method} within ${options.timeoutMs} ms`, { upstream: state.name, timeoutMs: options.timeoutMs }));
        }, options.timeoutMs),
        resolve: (response) => {
          cleanup();
          resolve(response);
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      };
      state.pending.set(id, forward);
      if (options.downstreamId !== undefined) this.#forwardsByAgentId.set(options.downstreamId, { state, forward, callId: options.callId ?? '' });
      if (progressToken !== undefined && options.downstreamId !== undefined) this.#progressRoutes.set(progressToken, options.downstreamId);
      link.send({ jsonrpc: '2.0', id, method, ...(params !== undefined && { params }) }, options.trace).catch((error: unknown) => {
        forward.reject(sendFailure(state.name, method, error));
      });
    });
  }

  /** The agent request a message from this upstream most likely belongs to (the newest one in flight). */
  #relatedAgentRequest(state: UpstreamState): JsonRpcId | undefined {
    let related: JsonRpcId | undefined;
    for (const forward of state.pending.values()) if (forward.downstreamId !== undefined) related = forward.downstreamId;
    return related;
  }

  // ── messages from upstreams ──────────────────────────────────────────────────────────────

  #onUpstreamMessage(state: UpstreamState, message: JSONRPCMessage): void {
    this.lastActivity = Date.now();
    const m = message as unknown as RpcRequest | RpcNotification | RpcResponse;
    const problem = unrecordable(m);
    if (isResponse(m)) {
      const forward = typeof m.id === 'number' ? state.pending.get(m.id) : undefined;
      if (forward === undefined) {
        this.#deps.logger.debug({ session: this.id, upstream: state.name, id: m.id }, 'response for no pending request (late after timeout or cancel); dropped');
        return;
      }
      // An answer that cannot be recorded is withheld, like one the log refused: the call ends with -32014, recorded.
      const settle = (): void => {
        if (problem !== undefined) forward.reject(new UnrecordableAnswer(`Upstream "${state.name}" answered ${forward.method} with a message that ${problem}; it cannot be recorded, so it is withheld; the call took effect upstream`, state.name));
        else forward.resolve(m);
      };
      // The notifications the upstream sent before its answer to an agent (progress, log messages) reach the agent
      // before it: a client drops progress for a request it has its answer to. The gateway's own requests do not
      // wait, since relaying a notification may need one (the tools/list after list_changed).
      if (state.relaying.size === 0 || forward.downstreamId === undefined) settle();
      else void Promise.all(state.relaying).then(settle);
      return;
    }
    if (problem !== undefined) {
      void this.#refuseUpstreamMessage(state, m, problem);
      return;
    }
    let work: Promise<void>;
    if (isRequest(m)) work = this.#onUpstreamRequest(state, m);
    else if (isNotification(m)) {
      const relay = this.#onUpstreamNotification(state, m).finally(() => state.relaying.delete(relay));
      state.relaying.add(relay);
      work = relay;
    } else return;
    work.catch((error: unknown) => this.#deps.logger.error({ err: error, session: this.id, upstream: state.name }, 'unhandled error relaying an upstream message'));
  }

  /** A request or notification from an upstream that cannot be recorded: refused (recorded), answered with -32600 when a request. */
  async #refuseUpstreamMessage(state: UpstreamState, message: RpcRequest | RpcNotification, reason: string): Promise<void> {
    const refusal = new GatewayError('ATTEST_INVALID_REQUEST', unrecordableProblem(`${message.method} from upstream "${state.name}"`, reason));
    try {
      await this.#deps.recorder.record([draft(this.#context, 'RequestRejected', { errorCode: refusal.code, jsonrpcCode: refusal.jsonrpcCode, message: refusal.message, method: message.method, path: `upstream:${state.name}`, sessionId: this.id })]);
    } catch (error) {
      this.#deps.logger.error({ err: error, session: this.id, upstream: state.name }, 'a refusal of an upstream message could not be recorded');
    }
    if (isRequest(message)) await state.link?.send({ jsonrpc: '2.0', id: message.id, error: refusal.toJsonRpcError() }).catch(() => undefined);
  }

  async #onUpstreamRequest(state: UpstreamState, request: RpcRequest): Promise<void> {
    const link = state.link;
    if (link === undefined) return;
    if (request.method === 'ping') {
      await link.send({ jsonrpc: '2.0', id: request.id, result: {} }).catch(() => undefined);
      return;
    }
    const callId = newEventId();
    const extras = { callId, traceparent: traceparentOf(request.params) };
    try {
      await this.#deps.recorder.record([
        draft(this.#context, 'RequestReceived', { from: 'upstream', method: request.method, jsonrpcId: request.id, upstream: state.name, params: recordPayload(request.params, recordingFor(state.config)) }, extras),
        draft(this.#context, 'DecisionMade', { decision: 'allow', stage: 'relay', ruleId: 'server-request-relay', reason: `server→client request relayed to the agent`, route: 'forward' }, extras),
      ]);
    } catch (error) {
      const refusal = toGatewayError(error);
      await link.send({ jsonrpc: '2.0', id: request.id, error: refusal.toJsonRpcError() }).catch(() => undefined);
      return;
    }
    const downstreamId = this.#nextServerRequestId++;
    this.#serverRequests.set(downstreamId, { upstream: state.name, upstreamId: request.id, method: request.method, callId, startedAt: performance.now() });
    await this.#sendToAgent({ jsonrpc: '2.0', id: downstreamId, method: request.method, ...(request.params !== undefined && { params: request.params }) }, this.#relatedAgentRequest(state));
  }

  async #onUpstreamNotification(state: UpstreamState, notification: RpcNotification): Promise<void> {
    let params = notification.params;
    let related: JsonRpcId | undefined;
    if (notification.method === 'notifications/cancelled') {
      const upstreamId = params?.['requestId'];
      const entry = [...this.#serverRequests.entries()].find(([, r]) => r.upstream === state.name && r.upstreamId === upstreamId);
      if (entry === undefined) return;
      this.#serverRequests.delete(entry[0]);
      params = { ...params, requestId: entry[0] };
    } else if (notification.method === 'notifications/progress') {
      const token = params?.['progressToken'];
      related = typeof token === 'string' || typeof token === 'number' ? this.#progressRoutes.get(token) : undefined;
      const forward = related === undefined ? undefined : this.#forwardsByAgentId.get(related)?.forward;
      forward?.timer.refresh(); // progress keeps a long call alive, as the SDK's resetTimeoutOnProgress does
    } else {
      related = this.#relatedAgentRequest(state);
      if (notification.method === 'notifications/tools/list_changed') await this.#toolsChanged(state);
    }
    const relayed = await this.#recordQuietly([draft(this.#context, 'NotificationRelayed', { from: 'upstream', method: notification.method, upstream: state.name, params: recordPayload(notification.params, recordingFor(state.config)) })]);
    if (!relayed) return; // no record, no relay
    await this.#sendToAgent({ jsonrpc: '2.0', method: notification.method, ...(params !== undefined && { params }) }, related);
  }

  #onUpstreamEvent(state: UpstreamState, event: UpstreamLinkEvent): void {
    if (event.type === 'lost') {
      state.lastLoss = event.error;
      state.status = event.willRestart ? 'restarting' : 'down';
      state.downReason = event.reason;
      for (const forward of [...state.pending.values()]) {
        // It had the request: whatever it did with it is unknown.
        forward.reject(new GatewayError('ATTEST_UPSTREAM_OUTCOME_UNKNOWN', `Upstream "${state.name}" was lost while handling ${forward.method}: ${event.reason}; the call may have taken effect`, { upstream: state.name }));
      }
      void this.#recordQuietly([draft(this.#context, 'UpstreamLost', { upstream: state.name, reason: event.reason, willRestart: event.willRestart, ...(event.exitCode !== undefined && { exitCode: event.exitCode }) })]);
    } else if (event.type === 'restarted') {
      state.status = 'ready';
      forgetTools(state);
      void this.#recordQuietly([draft(this.#context, 'UpstreamConnected', { upstream: state.name, transport: state.config.transport, ...(event.pid !== undefined && { pid: event.pid }) })]).then(async () => {
        // The restarted process may offer different tools: compare them with the pins, tell the agent to list again.
        await this.#toolsChanged(state);
        for (const method of LIST_CHANGED) await this.#sendToAgent({ jsonrpc: '2.0', method }, undefined);
      });
    }
  }

  // ── agent notifications and responses ────────────────────────────────────────────────────

  async #onAgentNotification(notification: RpcNotification): Promise<void> {
    const params = notification.params;
    if (notification.method === 'notifications/cancelled') {
      const requestId = params?.['requestId'];
      const held = typeof requestId === 'string' || typeof requestId === 'number' ? this.#held.get(requestId) : undefined;
      if (held !== undefined) {
        if (!(await this.#recordAgentNotification(notification, undefined))) return;
        await this.#deps.approvals?.withdraw(held, `cancelled by the agent${typeof params?.['reason'] === 'string' ? `: ${params['reason']}` : ''}`)?.catch((error: unknown) => this.#deps.logger.error({ err: error, session: this.id, callId: held }, 'the withdrawal of a held call the agent cancelled could not be recorded'));
        return;
      }
      const entry = typeof requestId === 'string' || typeof requestId === 'number' ? this.#forwardsByAgentId.get(requestId) : undefined;
      if (entry === undefined) {
        await this.#recordAgentNotification(notification, undefined);
        return;
      }
      if (!(await this.#recordAgentNotification(notification, entry.state.name))) return;
      entry.forward.reject(new CancelledByAgent());
      await entry.state.link?.send({ jsonrpc: '2.0', method: notification.method, params: { ...params, requestId: entry.forward.id } }).catch(() => undefined);
      await this.#recordQuietly([draft(this.#context, 'ErrorReturned', { from: 'agent', upstream: entry.state.name, jsonrpcCode: -32800, errorCode: 'ATTEST_CANCELLED', message: `cancelled by the agent${typeof params?.['reason'] === 'string' ? `: ${params['reason']}` : ''}`, durationMs: 0 }, { callId: entry.callId })]);
      return;
    }
    const targets = [...this.#upstreams.values()].filter((s) => s.status === 'ready' && s.link !== undefined);
    const relayed = this.#relayAgentNotification(notification, targets);
    if (notification.method === 'notifications/initialized') {
      // Messages from the agent are relayed concurrently, each once recorded: without this gate the
      // agent's first request could overtake its `initialized` and reach a Streamable HTTP upstream
      // before its event stream is open (link.send resolves only then), where a server→client request
      // sent at once is lost.
      for (const s of targets) {
        const gate: Promise<void> = relayed.then(() => {
          if (s.initializedRelay === gate) s.initializedRelay = undefined;
        });
        s.initializedRelay = gate;
      }
    }
    await relayed;
  }

  async #relayAgentNotification(notification: RpcNotification, targets: readonly UpstreamState[]): Promise<void> {
    if (!(await this.#recordAgentNotification(notification, targets.length === 1 ? targets[0]?.name : undefined))) return;
    await Promise.all(
      targets.map(async (s) => {
        try {
          await s.link?.send(notification);
        } catch (error) {
          this.#deps.logger.warn({ session: this.id, upstream: s.name, err: error }, 'could not relay a notification');
        }
      }),
    );
  }

  async #recordAgentNotification(notification: RpcNotification, upstream: string | undefined): Promise<boolean> {
    // Bound for every upstream in the session when not for one: the strictest of their policies.
    const recording = upstream !== undefined ? recordingFor(this.#upstreams.get(upstream)?.config) : strictestRecording([...this.#upstreams.values()].map((s) => s.config));
    return this.#recordQuietly([draft(this.#context, 'NotificationRelayed', { from: 'agent', method: notification.method, ...(upstream !== undefined && { upstream }), params: recordPayload(notification.params, recording) })]);
  }

  async #onAgentResponse(response: RpcResponse): Promise<void> {
    const id = response.id;
    const pending = typeof id === 'number' ? this.#serverRequests.get(id) : undefined;
    if (pending === undefined || id === null) return;
    this.#serverRequests.delete(id as number);
    const state = this.#upstreams.get(pending.upstream);
    const durationMs = round(performance.now() - pending.startedAt);
    const recording = recordingFor(state?.config);
    const recorded = await this.#recordQuietly([
      'error' in response
        ? draft(this.#context, 'ErrorReturned', { from: 'agent', upstream: pending.upstream, jsonrpcCode: response.error.code, message: recordText(String(response.error.message), recording), durationMs, ...(response.error.data !== undefined && { data: recordPayload(response.error.data, recording) }) }, { callId: pending.callId })
        : draft(this.#context, 'ResultReturned', { from: 'agent', upstream: pending.upstream, isError: false, durationMs, result: recordPayload(response.result, recording) }, { callId: pending.callId }),
    ]);
    const reply = recorded
      ? { ...response, id: pending.upstreamId }
      : { jsonrpc: '2.0' as const, id: pending.upstreamId, error: new GatewayError('ATTEST_RESULT_NOT_RECORDED', 'The agent answered but the audit log could not record it').toJsonRpcError() };
    await state?.link?.send(reply).catch((error: unknown) => this.#deps.logger.warn({ session: this.id, upstream: pending.upstream, err: error }, 'could not relay a response to the upstream'));
  }

  // ── plumbing ─────────────────────────────────────────────────────────────────────────────

  async #recordQuietly(drafts: readonly EventDraft[]): Promise<boolean> {
    try {
      await this.#deps.recorder.record(drafts);
      return true;
    } catch (error) {
      this.#deps.logger.error({ session: this.id, err: error, types: drafts.map((d) => d.type) }, 'event could not be recorded; message not relayed');
      return false;
    }
  }

  async #sendToAgent(message: RpcResponse | RpcRequest | RpcNotification, relatedRequestId: JsonRpcId | undefined): Promise<void> {
    const downstream = this.#downstream;
    if (downstream === undefined || this.#closed) return;
    try {
      await downstream.send(message as unknown as JSONRPCMessage, relatedRequestId);
    } catch (error) {
      if (relatedRequestId !== undefined && !isResponse(message)) {
        // The request's stream is gone (answered already): fall back to the session's standalone stream.
        await downstream.send(message as unknown as JSONRPCMessage, undefined).catch(() => undefined);
        return;
      }
      this.#deps.logger.warn({ session: this.id, err: error }, 'could not deliver a message to the agent');
    }
  }

  /** Tells the agent to list tools again (an admin approved or rejected a tool definition). */
  notifyToolsChanged(): void {
    if (this.#initialized) void this.#sendToAgent({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }, undefined);
  }

  /** Ends the session: fails what is pending, closes upstream connections, records SessionClosed. Idempotent: every caller awaits the one closing. */
  close(reason: string): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #close(reason: string): Promise<void> {
    this.#closed = true;
    // Withdrawn before SessionClosed, so the session's chain tells each held call's end first.
    await Promise.all([...this.#held.values()].map((callId) => this.#deps.approvals?.withdraw(callId, `the session closed while the call waited for approval: ${reason}`)?.catch((error: unknown) => this.#deps.logger.error({ err: error, session: this.id, callId }, 'the withdrawal of a held call at session close could not be recorded')) ?? Promise.resolve()));
    for (const state of this.#upstreams.values()) {
      for (const forward of [...state.pending.values()]) forward.reject(new GatewayError('ATTEST_UPSTREAM_OUTCOME_UNKNOWN', `Session closed while upstream "${state.name}" was handling ${forward.method}: ${reason}; the call may have taken effect`, { upstream: state.name }));
    }
    await Promise.all(
      [...this.#upstreams.values()].map(async (state) => {
        const link = state.link;
        state.link = undefined;
        await link?.close().catch((error: unknown) => this.#deps.logger.warn({ err: error, upstream: state.name }, 'error closing upstream'));
      }),
    );
    await this.#recordQuietly([draft(this.#context, 'SessionClosed', { reason })]);
    await this.#downstream?.close().catch(() => undefined);
  }
}

/** An upstream's answer with no canonical JSON form: withheld (-32014), and recorded as such. */
class UnrecordableAnswer extends GatewayError {
  constructor(message: string, upstream: string) {
    super('ATTEST_RESULT_NOT_RECORDED', message, { upstream });
  }
}

class CancelledByAgent extends GatewayError {
  constructor() {
    super('ATTEST_UPSTREAM_UNAVAILABLE', 'cancelled by the agent');
  }
}

/**
 * A message the link could not deliver, or whose answer broke: ATTEST_UPSTREAM_UNAVAILABLE only
 * when the link knows the upstream did not get (or refused, unrun) the request; otherwise it may
 * have run it, and the agent must not take the failure for "nothing happened".
 */
function sendFailure(upstream: string, method: string, error: unknown): GatewayError {
  const what = (error as Error).message;
  if (error instanceof UpstreamError && error.facts.reached === false) return new GatewayError('ATTEST_UPSTREAM_UNAVAILABLE', `Upstream "${upstream}" could not be reached: ${what}; the call did not reach it`, { upstream }, { cause: error });
  return new GatewayError('ATTEST_UPSTREAM_OUTCOME_UNKNOWN', `Upstream "${upstream}" received ${method} or may have, but no usable answer came back: ${what}; the call may have taken effect`, { upstream }, { cause: error });
}

function deny(error: GatewayError, stage: string, ruleId: string, upstream?: string, target?: string): Extract<Plan, { route: 'deny' }> {
  return { route: 'deny', error, stage, ruleId, upstream, target };
}

function local(run: () => Promise<JsonObject>, ruleId: string, reason: string): Plan {
  return { route: 'local', run, ruleId, reason };
}

function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  return new GatewayError('ATTEST_INTERNAL', `Internal gateway error: ${(error as Error).message ?? String(error)}`);
}

/** One event in a receipt: its id, its chain hash, and where the backend acknowledged it. */
/**
 * A receipt's entry for one event. `leafHash` (hex) is its Merkle leaf (evidence, issue 12), and
 * `leafIndex` its leaf index where the log order is contiguous (file, Kafka: the global index), so
 * an operator can ask for its inclusion proof later.
 */
function positionOf(stored: StoredEvent | undefined): { eventId: string; hash: string; position: StoredEvent['position']; leafIndex?: number; leafHash: string } | undefined {
  if (stored === undefined) return undefined;
  const leafHash = leafHashOf(stored).toString('hex');
  return { eventId: stored.event.id, hash: stored.event.hash, position: stored.position, ...(stored.position.backend !== 'kurrent' && { leafIndex: stored.position.index }), leafHash };
}

function forgetTools(state: UpstreamState): void {
  state.tools = undefined;
  state.inputs.forget();
  state.toolsListing = undefined;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
