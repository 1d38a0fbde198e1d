/**
 * The front door over HTTP: Streamable HTTP at `/mcp` (aggregate) and `/servers/<name>/mcp`
 * (one upstream, names unchanged), plus the legacy HTTP+SSE transport (`/sse` + `/messages`)
 * for old clients. The SDK transports do the framing; this module does what must happen
 * before them: Host/Origin checks (DNS rebinding), authentication, body limits and JSON-RPC
 * validation — each refusal a precise error, recorded as a RequestRejected event or, beyond the
 * source's recording budget, counted into a RequestsRejectedCounted (refusal-ledger.ts). Refusals
 * Fastify never sees are accounted for the same way: the Node parser's (400, 431, 408 on a slow
 * request) and connections beyond the per-source cap (503).
 */
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { Socket } from 'node:net';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
// v2 of the SDK has no server transport for the legacy HTTP+SSE protocol (2024-11-05); the v1
// package still ships one, so old clients are served with it.
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import { GatewayError, SYSTEM_PRINCIPAL } from '#schemas';
import type { AttestConfig, Principal } from '#schemas';
import { scrubSecretValues, secretValuesOf } from '../logger.ts';
import type { Logger } from '../logger.ts';
import type { Authenticated, ApiKeyStore } from '../auth/api-keys.ts';
import { draft } from '../recorder.ts';
import type { Recorder } from '../recorder.ts';
import { GatewaySession } from '../session/session.ts';
import type { DownstreamPort, Scope, SessionDeps } from '../session/session.ts';
import { SessionRegistry as SessionRegistryOf } from '../session/registry.ts';
import { jsonRpcProblem, SUPPORTED_PROTOCOL_VERSIONS } from '../session/protocol.ts';
import type { JSONRPCMessage } from '../session/protocol.ts';
import { NativePosts } from './streamable-post.ts';
import { bearerChallenge, isResourceMetadataPath, registerResourceMetadata } from './resource-metadata.ts';
import { registerAdminKeys } from './admin-keys.ts';
import { registerApprovalRoutes } from './admin-approvals.ts';
import { registerConfigAdmin } from './admin-config.ts';
import type { ReloadOutcome } from '../reload.ts';
import { compileBundle } from '../session/virtual-servers.ts';
import type { VirtualBundle } from '../session/virtual-servers.ts';
import { registerPinsAdmin } from './admin-pins.ts';
import { registerMetricsRoute } from './metrics-route.ts';
import { isCheckpointPath, registerCheckpointRoute } from './checkpoint-route.ts';
import type { CheckpointSource } from './checkpoint-route.ts';
import { RefusalLedger } from './refusal-ledger.ts';
import { capText } from './recorded-text.ts';
import type { Truncations } from './recorded-text.ts';
import { gateConnectionsPerSource } from './connection-gate.ts';
import { traceHeadersOf } from '../observability/tracing.ts';
import type { GatewayMetrics } from '../observability/metrics.ts';
import type { UpstreamHealth } from '../upstreams/health.ts';

export interface HttpServerDeps {
  /** Read per request where a reload may change it (origins, hosts, servers); the rest is bound at start. */
  readonly config: AttestConfig;
  readonly recorder: Recorder;
  /** Read per request: a reload swaps the instance. */
  readonly keys: ApiKeyStore;
  /** Hot reload (POST /admin/v1/config/reload); absent → the route answers ATTEST_RELOAD_UNAVAILABLE. */
  readonly reload?: (actor: Principal) => Promise<ReloadOutcome>;
  readonly sessionDeps: SessionDeps;
  readonly logger: Logger;
  readonly sessions: SessionRegistry;
  /** Serves GET /metrics when present (observability.metrics.enabled). */
  readonly metrics?: GatewayMetrics | undefined;
  /** Each upstream's last start or connection outcome, shown on /healthz. */
  readonly health?: UpstreamHealth | undefined;
  /** The latest signed checkpoint, served at /.well-known/attest/checkpoint; absent → evidence off. */
  readonly checkpoint?: CheckpointSource;
}

interface Entry {
  readonly session: GatewaySession;
  readonly endpoint: string;
  /** The credential that opened the session (`key:<id>`, `jwt:<iss>#<sub>`); only it may use the session. */
  readonly credentialId: string;
  readonly streamable?: NodeStreamableHTTPServerTransport;
  /** Single-request POSTs answered without the SDK transport (streamable-post.ts). */
  readonly posts?: NativePosts;
  readonly sse?: SSEServerTransport;
}

/** Live sessions of every transport, so the gateway can expire and close them, bounded by gateway.sessionLimits. */
export class SessionRegistry extends SessionRegistryOf<Entry> {}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Whether a bind address is loopback only (what the Host/Origin defaults and anonymous access go by). */
export function isLoopbackBind(host: string): boolean {
  return LOOPBACK_HOSTS.has(host);
}

declare module 'fastify' {
  interface FastifyRequest {
    attestAuth?: Authenticated;
  }
}

const upstreamHealthSchema = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    checkedAt: { type: 'string' },
    source: { type: 'string' },
    lastError: { type: 'object', properties: { at: { type: 'string' }, message: { type: 'string' }, exitCode: { type: ['integer', 'null'] }, stderrTail: { type: 'array', items: { type: 'string' } } } },
  },
} as const;

/** The page is public: the config's secret values (upstream env and header values, URL passwords) are taken out of the upstreams' words. */
function upstreamsHealth(health: UpstreamHealth, config: AttestConfig): ReturnType<UpstreamHealth['view']> {
  const secrets = secretValuesOf(config);
  return health.view(Object.keys(config.upstreams), (text) => scrubSecretValues(text, secrets));
}

const readySchema = {
  type: 'object',
  properties: {
    status: { type: 'string' },
    log: { type: 'object', properties: { appendsFailing: { type: 'boolean' }, failingSince: { type: 'string' }, lastError: { type: 'string' }, lastAppendAt: { type: 'string' } } },
  },
} as const;

/** Query parameters a client might put a credential in (RFC 6750 §2.3 and common habit); the gateway reads credentials only from the Authorization header. */
const URL_CREDENTIAL_PARAMS = ['access_token', 'api_key', 'apikey', 'key', 'token'];

/**
 * Exactly one credential per request: Node keeps only the first of two Authorization headers, so a
 * proxy and a client (or a client and an attacker) could disagree on who is asking. A credential in
 * the URL ends in access logs and is never read; beside a header it is ambiguous, alone it is no credential.
 */
function checkOneCredential(request: FastifyRequest): void {
  const raw = request.raw.rawHeaders;
  let headers = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]?.toLowerCase() === 'authorization') headers++;
  if (headers > 1) throw new GatewayError('ATTEST_CREDENTIALS_AMBIGUOUS', `${headers} Authorization headers in one request: send exactly one`);
  const query = request.url.indexOf('?');
  if (query === -1) return;
  const params = new URLSearchParams(request.url.slice(query + 1));
  const named = [...params.keys()].find((name) => URL_CREDENTIAL_PARAMS.includes(name.toLowerCase()));
  if (named === undefined) return;
  if (headers === 1) throw new GatewayError('ATTEST_CREDENTIALS_AMBIGUOUS', `A credential in the URL (query parameter "${named}") and in the Authorization header: send it only in the Authorization header`);
  throw new GatewayError('ATTEST_UNAUTHENTICATED', `Credentials in the URL (query parameter "${named}") are not accepted: send the key in the Authorization header`);
}

function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  return hostHeader.split(':')[0] ?? hostHeader;
}

export function buildHttpServer(deps: HttpServerDeps): FastifyInstance {
  // `config` is the config at start, for what cannot change live (gateway/reload.ts RESTART_ONLY); `deps.config` is the one in force.
  const { config, recorder, logger, sessions } = deps;
  const systemContext = { tenant: SYSTEM_PRINCIPAL.tenant, stream: `system-${config.gateway.instance}`, actor: SYSTEM_PRINCIPAL };
  const boundToLoopback = isLoopbackBind(config.gateway.host);

  const frontDoor = config.frontDoor;
  const ledger = new RefusalLedger(frontDoor.refusals, {
    write: async (summary) => {
      await recorder.record([draft(systemContext, 'RequestsRejectedCounted', { instance: config.gateway.instance, ...summary })]);
    },
    onWriteFailed: (error) => logger.error({ err: error }, 'the counts of refusals could not be recorded; they are kept for the next window'),
  });
  ledger.start();

  const app = Fastify({
    bodyLimit: config.gateway.maxBodyBytes,
    logger: false,
    return503OnClosing: true,
    forceCloseConnections: true,
    // Slow clients: a whole request within requestTimeoutMs, its headers within headersTimeoutMs, an idle keep-alive connection closed.
    requestTimeout: frontDoor.requestTimeoutMs,
    keepAliveTimeout: frontDoor.keepAliveTimeoutMs,
    http: {
      requestTimeout: frontDoor.requestTimeoutMs,
      headersTimeout: frontDoor.headersTimeoutMs,
      keepAliveTimeout: frontDoor.keepAliveTimeoutMs,
      // How often Node checks the two timeouts (its default, 30 s, would let a 1 s timeout run 30 s).
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(frontDoor.headersTimeoutMs / 2))),
    },
    clientErrorHandler: onClientError,
  });
  gateConnectionsPerSource(app.server, frontDoor.maxConnectionsPerSource, (socket) => {
    const refusal = new GatewayError('ATTEST_TOO_MANY_CONNECTIONS', `Too many open connections from this address (frontDoor.maxConnectionsPerSource: ${frontDoor.maxConnectionsPerSource})`);
    void recordRefusal({ remoteAddress: socket.remoteAddress ?? 'unknown' }, refusal);
    return rawResponse(refusal);
  });
  app.addHook('onClose', async () => ledger.close());

  /** An HTTP/1.1 response for a refusal written straight to the socket (no request object to answer with). */
  function rawResponse(error: GatewayError): string {
    const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: error.toJsonRpcError() });
    return `HTTP/1.1 ${error.httpStatus} ${STATUS_CODES[error.httpStatus] ?? ''}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
  }

  /** The Node parser refused the bytes (400, 431), or the request took longer than the front door allows (408). */
  function onClientError(error: Error & { code?: string }, socket: Socket): void {
    // A reset connection is the client leaving, not a refusal.
    if (error.code === 'ECONNRESET') return;
    let refusal: GatewayError;
    if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') refusal = new GatewayError('ATTEST_REQUEST_TIMEOUT', `The request was not received within the front door's limits (frontDoor.headersTimeoutMs: ${frontDoor.headersTimeoutMs}, frontDoor.requestTimeoutMs: ${frontDoor.requestTimeoutMs})`);
    else if (error.code === 'HPE_HEADER_OVERFLOW') refusal = new GatewayError('ATTEST_HEADERS_TOO_LARGE', 'Request headers too large (the Node HTTP parser limit, --max-http-header-size)');
    else refusal = new GatewayError('ATTEST_INVALID_REQUEST', `Bad Request: the HTTP request could not be parsed (${error.code ?? 'unknown'}: ${error.message})`);
    void recordRefusal({ remoteAddress: socket.remoteAddress ?? 'unknown' }, refusal);
    if (socket.writable) socket.write(rawResponse(refusal));
    socket.destroy();
  }

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // GET and DELETE carry no message; a client that still labels an empty body JSON is not wrong.
    if (body === '' && request.method !== 'POST') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(body as string));
    } catch (error) {
      done(new GatewayError('ATTEST_PARSE_ERROR', `Parse error: the body is not valid JSON (${(error as Error).message})`), undefined);
    }
  });

  /** What is known of a refused request's sender; only the address for refusals below HTTP. */
  interface RefusalSource {
    readonly remoteAddress: string;
    readonly actor?: Principal | undefined;
    readonly path?: string | undefined;
    readonly host?: string | undefined;
    readonly userAgent?: string | undefined;
    readonly bodyBytes?: number | undefined;
  }

  function sourceOf(request: FastifyRequest): RefusalSource {
    const bodyBytes = Number(request.headers['content-length'] ?? 0);
    return {
      remoteAddress: request.ip,
      actor: request.attestAuth?.principal,
      path: request.url.split('?')[0] ?? request.url,
      host: request.headers.host,
      userAgent: request.headers['user-agent'],
      bodyBytes: Number.isFinite(bodyBytes) && bodyBytes > 0 ? bodyBytes : undefined,
    };
  }

  /** Records the refusal as a RequestRejected within the source's budget (true); counts it otherwise (false). Never rejects. */
  async function recordRefusal(source: RefusalSource, error: GatewayError, extra: { method?: string; sessionId?: string } = {}): Promise<boolean> {
    if (!ledger.admit(source.remoteAddress, error.code, error.httpStatus)) {
      deps.metrics?.refusalCounted(error.code, error.jsonrpcCode);
      return false;
    }
    const truncated: Truncations = {};
    const text = (field: Parameters<typeof capText>[0], value: string | undefined): string | undefined => (value === undefined ? undefined : capText(field, value, truncated));
    const fields = { path: text('path', source.path), host: text('host', source.host), userAgent: text('userAgent', source.userAgent), method: text('method', extra.method), sessionId: text('sessionId', extra.sessionId) };
    const actor: Principal = source.actor ?? { kind: 'anonymous', id: 'anonymous', tenant: 'unknown', roles: [] };
    try {
      await recorder.record([
        draft({ ...systemContext, actor }, 'RequestRejected', {
          errorCode: error.code,
          httpStatus: error.httpStatus,
          jsonrpcCode: error.jsonrpcCode,
          message: capText('message', error.message, truncated),
          remoteAddress: capText('remoteAddress', source.remoteAddress, truncated),
          ...(source.bodyBytes !== undefined && { bodyBytes: source.bodyBytes }),
          ...(fields.path !== undefined && { path: fields.path }),
          ...(fields.method !== undefined && { method: fields.method }),
          ...(fields.sessionId !== undefined && { sessionId: fields.sessionId }),
          ...(fields.host !== undefined && { host: fields.host }),
          ...(fields.userAgent !== undefined && { userAgent: fields.userAgent }),
          ...(Object.keys(truncated).length > 0 && { truncated }),
        }),
      ]);
    } catch (logError) {
      // Still accounted for: counted, and the counts recorded once the log takes appends again.
      ledger.count(source.remoteAddress, error.code, error.httpStatus);
      deps.metrics?.refusalCounted(error.code, error.jsonrpcCode);
      logger.error({ err: logError, errorCode: error.code }, 'a refusal could not be recorded; it is counted instead');
    }
    return true;
  }

  function recordRejection(request: FastifyRequest, error: GatewayError, extra: { method?: string; sessionId?: string } = {}): Promise<boolean> {
    return recordRefusal(sourceOf(request), error, extra);
  }

  async function refuse(request: FastifyRequest, reply: FastifyReply, error: GatewayError, extra: { method?: string; sessionId?: string; id?: string | number | null } = {}): Promise<FastifyReply> {
    const withinBudget = await recordRejection(request, error, extra);
    // Over budget: a flood is answered slowly, so it cannot take the CPU the agents need.
    if (!withinBudget && frontDoor.refusals.overBudgetDelayMs > 0) await delay(frontDoor.refusals.overBudgetDelayMs, undefined, { ref: false });
    if (error.httpStatus === 401) {
      reply.header('WWW-Authenticate', bearerChallenge(request, deps.config, error.message));
    }
    return reply.code(error.httpStatus).header('content-type', 'application/json').send({ jsonrpc: '2.0', id: extra.id ?? null, error: error.toJsonRpcError() });
  }

  app.setErrorHandler(async (error: FastifyError | GatewayError, request, reply) => {
    // The connection is gone while the body was read: the client left, or the request timed out
    // (onClientError answered and accounted for it). Nothing to answer, nothing refused twice.
    if (!(error instanceof GatewayError) && request.raw.socket.destroyed) return undefined;
    let refusal: GatewayError;
    if (error instanceof GatewayError) refusal = error;
    else if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') refusal = new GatewayError('ATTEST_BODY_TOO_LARGE', `Request body exceeds the gateway limit of ${config.gateway.maxBodyBytes} bytes`, { limitBytes: config.gateway.maxBodyBytes });
    else if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' || error.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') refusal = new GatewayError('ATTEST_INVALID_REQUEST', `Invalid Request: send a JSON-RPC message with Content-Type application/json (${error.message})`);
    else if (error.statusCode !== undefined && error.statusCode < 500) refusal = new GatewayError('ATTEST_INVALID_REQUEST', `Invalid Request: ${error.message}`);
    else {
      logger.error({ err: error }, 'internal error serving an HTTP request');
      refusal = new GatewayError('ATTEST_INTERNAL', 'Internal gateway error');
    }
    return refuse(request, reply, refusal);
  });

  // Host and Origin first (DNS rebinding), then the key: nothing else runs for a stranger.
  app.addHook('onRequest', async (request) => {
    if (request.url === '/healthz' || request.url === '/readyz') return;
    const isPublic = isResourceMetadataPath(request.url) || isCheckpointPath(request.url);
    const live = deps.config.gateway;
    if (live.allowedHosts !== undefined || boundToLoopback) {
      const host = hostnameOf(request.headers.host ?? '');
      if (live.allowedHosts === undefined ? !LOOPBACK_HOSTS.has(host) : !live.allowedHosts.includes(host)) throw new GatewayError('ATTEST_ORIGIN_FORBIDDEN', `Host "${host}" not allowed (DNS-rebinding protection; see gateway.allowedHosts)`);
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !isPublic) {
      let originHost: string;
      try {
        originHost = new URL(origin).hostname;
      } catch {
        throw new GatewayError('ATTEST_ORIGIN_FORBIDDEN', `Origin "${origin}" is not a valid origin`);
      }
      const allowed = live.allowedOrigins.includes(origin) || (boundToLoopback && LOOPBACK_HOSTS.has(originHost.startsWith('[') || !originHost.includes(':') ? originHost : `[${originHost}]`));
      if (!allowed) throw new GatewayError('ATTEST_ORIGIN_FORBIDDEN', `Origin "${origin}" not allowed (see gateway.allowedOrigins)`);
    }
    if (isPublic) return;
    checkOneCredential(request);
    request.attestAuth = await deps.keys.authenticateBearer(request.headers.authorization);
  });
  app.setNotFoundHandler(async (request, reply) => refuse(request, reply, new GatewayError('ATTEST_NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0] ?? ''}`)));
  registerResourceMetadata(app, () => deps.config);
  registerCheckpointRoute(app, deps.checkpoint ?? (() => ({ enabled: false })));
  registerAdminKeys(app, deps);

  // Liveness: 200 and status "ok" while the gateway serves, whatever its upstreams do; `upstreams` says how each last started.
  // Readiness: whether the log takes appends, by what it last answered (a failed append until one succeeds); 503 while it refuses them.
  app.get(
    '/readyz',
    { schema: { response: { '2xx': readySchema, '5xx': readySchema } } },
    async (_request, reply) => {
      const log = recorder.health();
      return reply.code(log.appendsFailing ? 503 : 200).send({ status: log.appendsFailing ? 'unavailable' : 'ready', log });
    },
  );
  app.get(
    '/healthz',
    { schema: { response: { 200: { type: 'object', properties: { status: { type: 'string' }, sessions: { type: 'integer' }, logEvents: { type: 'integer' }, log: { type: 'object', additionalProperties: { type: 'number' } }, upstreams: { type: 'object', additionalProperties: upstreamHealthSchema } } } } } },
    async () => ({
      status: 'ok',
      sessions: sessions.size,
      logEvents: recorder.log.size(),
      ...(recorder.log.stats !== undefined && { log: recorder.log.stats() }),
      ...(deps.health !== undefined && { upstreams: upstreamsHealth(deps.health, deps.config) }),
    }),
  );
  registerPinsAdmin(app, deps.sessionDeps.pins, () => [...sessions.values()].map((entry) => entry.session));

  if (deps.sessionDeps.approvals !== undefined) registerApprovalRoutes(app, deps.sessionDeps.approvals);

  // Compiled once per virtual server config object (a reload brings new objects).
  const bundles = new WeakMap<object, VirtualBundle>();
  if (deps.metrics !== undefined) registerMetricsRoute(app, deps.metrics, config.observability.metrics.roles);

  function scopeFor(server: string | undefined): Scope {
    const { upstreams, virtualServers = {} } = deps.config;
    if (server === undefined) return { kind: 'aggregate', upstreams: Object.keys(upstreams) };
    const virtual = Object.hasOwn(virtualServers, server) ? virtualServers[server] : undefined;
    if (virtual !== undefined) {
      let bundle = bundles.get(virtual);
      if (bundle === undefined) bundles.set(virtual, (bundle = compileBundle(server, virtual, Object.keys(upstreams))));
      return { kind: 'virtual', upstreams: bundle.upstreams, bundle };
    }
    if (!Object.hasOwn(upstreams, server)) throw new GatewayError('ATTEST_UNKNOWN_SERVER', `No upstream or virtual server named "${server}" (configured: ${[...Object.keys(upstreams), ...Object.keys(virtualServers)].join(', ')})`);
    return { kind: 'single', upstream: server };
  }

  /** Validates a POSTed body as JSON-RPC (one message or a batch); returns the messages or refuses. */
  function validateBody(body: unknown): { readonly messages: readonly Record<string, unknown>[] } | { readonly problem: GatewayError; readonly id: string | number | null } {
    const list = Array.isArray(body) ? body : [body];
    if (list.length === 0) return { problem: new GatewayError('ATTEST_INVALID_REQUEST', 'Invalid Request: an empty batch'), id: null };
    for (const item of list) {
      const problem = jsonRpcProblem(item);
      if (problem !== undefined) {
        const rawId = (item as Record<string, unknown> | null)?.['id'];
        return { problem: new GatewayError('ATTEST_INVALID_REQUEST', problem), id: typeof rawId === 'string' || typeof rawId === 'number' ? rawId : null };
      }
    }
    return { messages: list as Record<string, unknown>[] };
  }

  function idOf(message: Record<string, unknown> | undefined): string | number | null {
    const id = message?.['id'];
    return typeof id === 'string' || typeof id === 'number' ? id : null;
  }

  /** A POST the Streamable HTTP transport would refuse (MCP 2025-11-25 "Sending Messages to the Server"): what to refuse it with. */
  function postProblem(request: FastifyRequest, initializes: number, sessionId: string | undefined): GatewayError | undefined {
    const accept = request.headers.accept ?? '';
    if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return new GatewayError('ATTEST_NOT_ACCEPTABLE');
    if (initializes > 1) return new GatewayError('ATTEST_INVALID_REQUEST', 'Invalid Request: only one initialize per batch');
    if (sessionId === undefined) return undefined;
    if (initializes > 0) return new GatewayError('ATTEST_INVALID_REQUEST', 'Invalid Request: this session is already initialized; open a new one with an initialize sent without Mcp-Session-Id');
    const version = request.headers['mcp-protocol-version'];
    if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
      return new GatewayError('ATTEST_UNSUPPORTED_PROTOCOL_VERSION', `Unsupported MCP-Protocol-Version "${version}" (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`);
    }
    return undefined;
  }

  function lookup(request: FastifyRequest, sessionId: string, endpoint: string): Entry {
    const entry = sessions.get(sessionId);
    // A session is bound to the endpoint and the key that opened it; anything else is "unknown".
    if (entry === undefined || entry.endpoint !== endpoint || entry.credentialId !== request.attestAuth?.credentialId || entry.session.closed) {
      throw new GatewayError('ATTEST_UNKNOWN_SESSION', `Unknown or expired session "${sessionId}": initialize a new one`, { sessionId });
    }
    // This request's authentication is the current word on the credential's tool lists (a reload may have changed them).
    entry.session.reauthenticated(request.attestAuth);
    return entry;
  }

  /** Takes the new session's slot (gateway.sessionLimits) or throws ATTEST_SESSION_LIMIT; give it back with sessions.delete(id). */
  function reserveSession(request: FastifyRequest, id: string): Authenticated {
    const auth = request.attestAuth;
    if (auth === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED');
    sessions.reserve(id, { credentialId: auth.credentialId, tenant: auth.principal.tenant }, deps.config.gateway.sessionLimits);
    return auth;
  }

  /** Opens a session whose slot is reserved (reserveSession); gives the slot back when it cannot open. */
  async function openSession(request: FastifyRequest, auth: Authenticated, id: string, transport: 'streamable-http' | 'sse', endpoint: string, scope: Scope, port: DownstreamPort): Promise<GatewaySession> {
    try {
      const truncated: Truncations = {};
      const agentHeader = request.headers['user-agent'];
      const userAgent = agentHeader === undefined ? undefined : capText('userAgent', agentHeader, truncated);
      const session = new GatewaySession({ id, transport, endpoint, scope, auth, remoteAddress: request.ip, userAgent, ...(Object.keys(truncated).length > 0 && { truncated }) }, deps.sessionDeps);
      await session.open(port);
      return session;
    } catch (error) {
      sessions.delete(id);
      throw error;
    }
  }

  async function streamable(request: FastifyRequest<{ Params: { server?: string } }>, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const server = request.params.server;
    const endpoint = server === undefined ? '/mcp' : `/servers/${server}/mcp`;
    const scope = scopeFor(server);
    const sessionHeader = request.headers['mcp-session-id'];
    const sessionId = typeof sessionHeader === 'string' ? sessionHeader : undefined;

    if (request.method === 'POST') {
      const checked = validateBody(request.body);
      if ('problem' in checked) return refuse(request, reply, checked.problem, { id: checked.id, ...(sessionId !== undefined && { sessionId }) });
      const initializes = checked.messages.filter((m) => m['method'] === 'initialize').length;
      // What the SDK transport would refuse, refused here first: its answers carry no errorCode and no record.
      const unfit = postProblem(request, initializes, sessionId);
      if (unfit !== undefined) {
        const firstId = checked.messages.length === 1 ? checked.messages[0]?.['id'] : undefined;
        const method = initializes > 0 ? 'initialize' : checked.messages.length === 1 ? checked.messages[0]?.['method'] : undefined;
        return refuse(request, reply, unfit, { id: typeof firstId === 'string' || typeof firstId === 'number' ? firstId : null, ...(typeof method === 'string' && { method }), ...(sessionId !== undefined && { sessionId }) });
      }
      if (sessionId === undefined) {
        if (initializes === 0) return refuse(request, reply, new GatewayError('ATTEST_SESSION_REQUIRED', 'Bad Request: no Mcp-Session-Id header; send "initialize" first to open a session'), { method: typeof checked.messages[0]?.['method'] === 'string' ? checked.messages[0]['method'] : '' });
        // What the SDK transport would refuse after a session exists is refused before one does: a refused initialize leaves no session.
        if (checked.messages.length > 1) return refuse(request, reply, new GatewayError('ATTEST_INVALID_REQUEST', 'Invalid Request: initialize must be sent alone, not in a batch'), { method: 'initialize' });
        const id = randomUUID();
        let auth: Authenticated;
        try {
          auth = reserveSession(request, id);
        } catch (error) {
          if (error instanceof GatewayError) return refuse(request, reply, error, { method: 'initialize', id: idOf(checked.messages[0]) });
          throw error;
        }
        const transport = new NodeStreamableHTTPServerTransport({ sessionIdGenerator: () => id });
        const posts = new NativePosts(id);
        const session = await openSession(request, auth, id, 'streamable-http', endpoint, scope, {
          send: (message, relatedRequestId) => {
            if (relatedRequestId !== undefined && posts.deliver(message, relatedRequestId)) return Promise.resolve();
            return transport.send(message, relatedRequestId === undefined ? undefined : { relatedRequestId });
          },
          close: () => {
            posts.closeAll();
            return transport.close();
          },
        });
        transport.onmessage = (message, extra) => session.handleAgentMessage(message, traceHeadersOf(extra?.request?.headers.get('traceparent'), extra?.request?.headers.get('tracestate')));
        transport.onerror = (error) => void recordRejection(request, new GatewayError('ATTEST_INVALID_REQUEST', error.message), { sessionId: id });
        transport.onclose = () => {
          sessions.delete(id);
          void session.close('transport closed');
        };
        await transport.start();
        sessions.add({ session, endpoint, credentialId: auth.credentialId, streamable: transport, posts });
        reply.hijack();
        await transport.handleRequest(request.raw, reply.raw, request.body);
        // The transport refused the initialize (it never assigned the session id): nothing may use this session.
        if (transport.sessionId === undefined) {
          sessions.delete(id);
          await session.close('initialize refused by the transport');
        }
        return undefined;
      }
      const entry = lookup(request, sessionId, endpoint);
      if (entry.streamable === undefined) throw new GatewayError('ATTEST_UNKNOWN_SESSION', `Session "${sessionId}" is not a Streamable HTTP session`);
      const only = checked.messages.length === 1 ? checked.messages[0] : undefined;
      const id = only?.['id'];
      if (entry.posts !== undefined && only !== undefined && typeof only['method'] === 'string' && (typeof id === 'string' || typeof id === 'number')) {
        reply.hijack();
        entry.posts.open(id, reply.raw);
        entry.session.handleAgentMessage(only as unknown as JSONRPCMessage, traceHeadersOf(request.headers.traceparent, request.headers.tracestate));
        return undefined;
      }
      reply.hijack();
      await entry.streamable.handleRequest(request.raw, reply.raw, request.body);
      return undefined;
    }

    if (sessionId === undefined) {
      return refuse(request, reply, new GatewayError('ATTEST_SESSION_REQUIRED', `Bad Request: ${request.method} needs an Mcp-Session-Id header`));
    }
    if (request.method === 'GET' && !(request.headers.accept ?? '').includes('text/event-stream')) {
      return refuse(request, reply, new GatewayError('ATTEST_NOT_ACCEPTABLE', 'Not Acceptable: a GET opens an event stream; the client must accept text/event-stream'), { sessionId });
    }
    const entry = lookup(request, sessionId, endpoint);
    if (entry.streamable === undefined) throw new GatewayError('ATTEST_UNKNOWN_SESSION', `Session "${sessionId}" is not a Streamable HTTP session`);
    reply.hijack();
    await entry.streamable.handleRequest(request.raw, reply.raw);
    if (request.method === 'DELETE') {
      sessions.delete(sessionId);
      await entry.session.close('closed by the agent (DELETE)');
    }
    return undefined;
  }

  for (const path of ['/mcp', '/servers/:server/mcp']) {
    app.route({ method: ['POST', 'GET', 'DELETE'], url: path, handler: streamable });
  }

  // Legacy HTTP+SSE (protocol 2024-11-05): GET opens the event stream, POST /messages?sessionId= sends.
  async function legacyStream(request: FastifyRequest<{ Params: { server?: string } }>, reply: FastifyReply): Promise<void> {
    const server = request.params.server;
    const scope = scopeFor(server);
    const endpoint = server === undefined ? '/sse' : `/servers/${server}/sse`;
    const messagesPath = server === undefined ? '/messages' : `/servers/${server}/messages`;
    // The transport writes nothing until start(): a refused slot is still answered through Fastify.
    const transport = new SSEServerTransport(messagesPath, reply.raw);
    const auth = reserveSession(request, transport.sessionId);
    reply.hijack();
    const session = await openSession(request, auth, transport.sessionId, 'sse', endpoint, scope, {
      send: (message) => transport.send(message),
      close: () => transport.close(),
    });
    transport.onmessage = (message) => session.handleAgentMessage(message);
    transport.onerror = (error) => void recordRejection(request, new GatewayError('ATTEST_INVALID_REQUEST', error.message), { sessionId: session.id });
    transport.onclose = () => {
      sessions.delete(session.id);
      void session.close('event stream closed');
    };
    sessions.add({ session, endpoint, credentialId: auth.credentialId, sse: transport });
    await transport.start();
  }

  async function legacyMessage(request: FastifyRequest<{ Params: { server?: string }; Querystring: { sessionId?: string } }>, reply: FastifyReply): Promise<FastifyReply | undefined> {
    const server = request.params.server;
    scopeFor(server);
    const endpoint = server === undefined ? '/sse' : `/servers/${server}/sse`;
    const sessionId = request.query.sessionId;
    if (sessionId === undefined) return refuse(request, reply, new GatewayError('ATTEST_SESSION_REQUIRED', 'Bad Request: the sessionId query parameter is missing'));
    const checked = validateBody(request.body);
    if ('problem' in checked) return refuse(request, reply, checked.problem, { id: checked.id, sessionId });
    const entry = lookup(request, sessionId, endpoint);
    if (entry.sse === undefined) throw new GatewayError('ATTEST_UNKNOWN_SESSION', `Session "${sessionId}" is not a legacy SSE session`);
    reply.hijack();
    await entry.sse.handlePostMessage(request.raw, reply.raw, request.body);
    return undefined;
  }

  for (const prefix of ['', '/servers/:server']) {
    app.get(`${prefix}/sse`, legacyStream);
    app.post(`${prefix}/messages`, legacyMessage);
  }

  registerConfigAdmin(app, deps.reload);
  return app;
}
