/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728), as the MCP authorization spec (2025-06-18,
 * 2025-11-25: "Authorization Server Discovery") asks of an MCP server: the document names the
 * authorization servers an agent gets tokens from, and every 401 points at it with
 * `WWW-Authenticate: Bearer … resource_metadata="<absolute URL>"`. Only when `auth.jwt` is
 * configured: a gateway that takes API keys only advertises no OAuth (its 401 says it wants a
 * key, and the documents are 404), since a client that finds them starts a login nobody can finish.
 *
 * RFC 9728 §3.1 inserts the well-known segment before the resource's path, so `/mcp` is
 * described at `/.well-known/oauth-protected-resource/mcp` (clients try that first), and
 * `/servers/<name>/mcp` likewise; the root document describes the gateway as a whole (its
 * origin). The documents are public: no credential, no Origin check, any origin may read them.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '#schemas';
import type { AttestConfig } from '#schemas';

export const RESOURCE_METADATA_PATH = '/.well-known/oauth-protected-resource';

export function isResourceMetadataPath(url: string): boolean {
  return url === RESOURCE_METADATA_PATH || url.startsWith(`${RESOURCE_METADATA_PATH}/`) || url.startsWith(`${RESOURCE_METADATA_PATH}?`);
}

function baseUrlOf(request: FastifyRequest, config: AttestConfig): string {
  const configured = config.auth.resourceMetadata?.baseUrl;
  if (configured !== undefined) return configured.replace(/\/+$/, '');
  return `${request.protocol}://${request.host}`;
}

/** The resource path a request is for: `/mcp`, `/servers/<name>/mcp`, or '' (the gateway as a whole). */
function resourcePathOf(path: string): string {
  if (path === '/mcp') return path;
  const server = /^\/servers\/([^/]+)\/mcp$/.exec(path);
  return server === null ? '' : path;
}

/** The absolute URL of the metadata document describing the resource `request` tried to reach. */
export function resourceMetadataUrl(request: FastifyRequest, config: AttestConfig): string {
  return `${baseUrlOf(request, config)}${RESOURCE_METADATA_PATH}${resourcePathOf(request.url.split('?')[0] ?? '')}`;
}

function quoted(value: string): string {
  return value.replace(/[\\"]/g, "'").replace(/[^\u0020-\u007E]/g, ' ');
}

/**
 * The `WWW-Authenticate` value of a 401 (RFC 6750 §3): `error_description` says what credential
 * the gateway takes (or what was wrong with the one sent); `scope` and `resource_metadata`
 * (RFC 9728 §5.1) only with `auth.jwt`. A request without any credential gets no `error` code
 * (RFC 6750 §3.1).
 */
export function bearerChallenge(request: FastifyRequest, config: AttestConfig, description: string): string {
  const params = ['realm="attest"'];
  if ((request.headers.authorization ?? '').trim() !== '') params.push('error="invalid_token"');
  params.push(`error_description="${quoted(description)}"`);
  if (config.auth.jwt !== undefined) {
    const scopes = config.auth.resourceMetadata?.scopesSupported;
    if (scopes !== undefined && scopes.length > 0) params.push(`scope="${quoted(scopes.join(' '))}"`);
    params.push(`resource_metadata="${quoted(resourceMetadataUrl(request, config))}"`);
  }
  return `Bearer ${params.join(', ')}`;
}

const documentSchema = {
  type: 'object',
  properties: {
    resource: { type: 'string' },
    authorization_servers: { type: 'array', items: { type: 'string' } },
    bearer_methods_supported: { type: 'array', items: { type: 'string' } },
    scopes_supported: { type: 'array', items: { type: 'string' } },
    resource_name: { type: 'string' },
    resource_documentation: { type: 'string' },
  },
  required: ['resource', 'bearer_methods_supported'],
} as const;

/** `config` is read per request: a reload may add or remove `auth.jwt`. */
export function registerResourceMetadata(app: FastifyInstance, live: () => AttestConfig): void {
  const document = (request: FastifyRequest, resourcePath: string): Record<string, unknown> => {
    const config = live();
    const jwt = config.auth.jwt;
    if (jwt === undefined) throw new GatewayError('ATTEST_NOT_FOUND', 'No OAuth protected-resource metadata: this gateway takes API keys only (auth.jwt is not configured); send "Authorization: Bearer <key>"');
    const settings = config.auth.resourceMetadata;
    return {
      resource: `${baseUrlOf(request, config)}${resourcePath}`,
      authorization_servers: settings?.authorizationServers ?? [jwt.issuer],
      bearer_methods_supported: ['header'],
      ...(settings?.scopesSupported !== undefined && { scopes_supported: settings.scopesSupported }),
      ...(settings?.resourceName !== undefined && { resource_name: settings.resourceName }),
      ...(settings?.resourceDocumentation !== undefined && { resource_documentation: settings.resourceDocumentation }),
    };
  };
  const options = { schema: { response: { 200: documentSchema } } };
  app.get(RESOURCE_METADATA_PATH, options, async (request, reply) => {
    reply.header('access-control-allow-origin', '*');
    return document(request, '');
  });
  app.get(`${RESOURCE_METADATA_PATH}/mcp`, options, async (request, reply) => {
    reply.header('access-control-allow-origin', '*');
    return document(request, '/mcp');
  });
  app.get<{ Params: { server: string } }>(`${RESOURCE_METADATA_PATH}/servers/:server/mcp`, options, async (request, reply) => {
    const server = request.params.server;
    if (!Object.hasOwn(live().upstreams, server)) throw new GatewayError('ATTEST_UNKNOWN_SERVER', `No upstream server named "${server}"`);
    reply.header('access-control-allow-origin', '*');
    return document(request, `/servers/${server}/mcp`);
  });
}
