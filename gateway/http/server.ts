/**
 * The front door over HTTP: Streamable HTTP at `/mcp` (aggregate) and `/servers/<name>/mcp`
 * (one upstream, names unchanged), plus the legacy HTTP+SSE transport (`/sse` + `/messages`)
 * for old clients. The SDK transports do the framing; this module does what must happen
 * before them: Host/Origin checks (DNS rebinding), authentication, body limits and JSON-RPC
 * validation — each refusal a precise error, recorded as a RequestRejected event.
 */
import { randomUUID } from 'node:crypto';
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

function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) return hostHeader.slice(0, hostHeader.indexOf(']') + 1);
  return hostHeader.split(':')[0] ?? hostHeader;
}

export function buildHttpServer(deps: HttpServerDeps): FastifyInstance {
  // `config` is the config at start, for what cannot change live (gateway/reload.ts RESTART_ONLY); `deps.config` is the one in force.
  const { config, recorder, logger, sessions } = deps;
  const systemContext = { tenant: SYSTEM_PRINCIPAL.tenant, stream: `system-${config.gateway.instance}`, actor: SYSTEM_PRINCIPAL };
  const boundToLoopback = isLoopbackBind(config.gateway.host);

  const app = Fastify({ bodyLimit: config.gateway.maxBodyBytes, logger: false, return503OnClosing: true, forceCloseConnections: true });

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

  async function recordRejection(request: FastifyRequest, error: GatewayError, extra: { method?: string; sessionId?: string } = {}): Promise<void> {
    const actor: Principal = request.attestAuth?.principal ?? { kind: 'anonymous', id: 'anonymous', tenant: 'unknown', roles: [] };
    const bodyBytes = Number(request.headers['content-length'] ?? 0);
    try {
      await recorder.record([
        draft({ ...systemContext, actor }, 'RequestRejected', {
          errorCode: error.code,
          httpStatus: error.httpStatus,
          jsonrpcCode: error.jsonrpcCode,
          message: error.message,
          path: request.url.split('?')[0] ?? request.url,
          remoteAddress: request.ip,
          ...(Number.isFinite(bodyBytes) && bodyBytes > 0 && { bodyBytes }),
          ...(extra.method !== undefined && { method: extra.method }),
          ...(extra.sessionId !== undefined && { sessionId: extra.sessionId }),
        }),
      ]);
    } catch (logError) {
      logger.error({ err: logError, errorCode: error.code }, 'a refusal could not be recorded');
    }
  }

  async function refuse(request: FastifyRequest, reply: FastifyReply, error: GatewayError, extra: { method?: string; sessionId?: string; id?: string | number | null } = {}): Promise<FastifyReply> {
    await recordRejection(request, error, extra);
    if (error.httpStatus === 401) {
      reply.header('WWW-Authenticate', bearerChallenge(request, deps.config, error.message));
    }
    return reply.code(error.httpStatus).header('content-type', 'application/json').send({ jsonrpc: '2.0', id: extra.id ?? null, error: error.toJsonRpcError() });
  }

  app.setErrorHandler(async (error: FastifyError | GatewayError, request, reply) => {
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
    if (request.url === '/healthz') return;
    const isPublic = isResourceMetadataPath(request.url);
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
    request.attestAuth = await deps.keys.authenticateBearer(request.headers.authorization);
  });
  registerResourceMetadata(app, () => deps.config);
  registerAdminKeys(app, deps);

  // Liveness: 200 and status "ok" while the gateway serves, whatever its upstreams do; `upstreams` says how each last started.
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
      const session = new GatewaySession({ id, transport, endpoint, scope, auth, remoteAddress: request.ip, userAgent: request.headers['user-agent'] }, deps.sessionDeps);
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
      const isInitialize = checked.messages.some((m) => m['method'] === 'initialize');
      if (sessionId === undefined) {
        if (!isInitialize) return refuse(request, reply, new GatewayError('ATTEST_SESSION_REQUIRED', 'Bad Request: no Mcp-Session-Id header; send "initialize" first to open a session'), { method: typeof checked.messages[0]?.['method'] === 'string' ? checked.messages[0]['method'] : '' });
        // What the SDK transport would refuse after a session exists is refused before one does: a refused initialize leaves no session.
        if (checked.messages.length > 1) return refuse(request, reply, new GatewayError('ATTEST_INVALID_REQUEST', 'Invalid Request: initialize must be sent alone, not in a batch'), { method: 'initialize' });
        const accept = request.headers.accept ?? '';
        if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return refuse(request, reply, new GatewayError('ATTEST_NOT_ACCEPTABLE'), { method: 'initialize', id: idOf(checked.messages[0]) });
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
      if (entry.posts !== undefined && only !== undefined && typeof only['method'] === 'string' && only['method'] !== 'initialize' && (typeof id === 'string' || typeof id === 'number')) {
        const accept = request.headers.accept ?? '';
        if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return refuse(request, reply, new GatewayError('ATTEST_NOT_ACCEPTABLE'), { id, sessionId });
        const version = request.headers['mcp-protocol-version'];
        if (typeof version === 'string' && !SUPPORTED_PROTOCOL_VERSIONS.includes(version)) {
          return refuse(request, reply, new GatewayError('ATTEST_UNSUPPORTED_PROTOCOL_VERSION', `Unsupported MCP-Protocol-Version "${version}" (supported: ${SUPPORTED_PROTOCOL_VERSIONS.join(', ')})`), { id, sessionId });
        }
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
