/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728), as the MCP authorization spec (2025-06-18,
 * 2025-11-25: "Authorization Server Discovery") asks of an MCP server: the document names the
 * authorization servers an agent gets tokens from, and every 401 points at it with
 * `WWW-Authenticate: Bearer … resource_metadata="<absolute URL>"`.
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

/** The `WWW-Authenticate` value of a 401 (RFC 6750 §3 + RFC 9728 §5.1). */
export function bearerChallenge(request: FastifyRequest, config: AttestConfig, description: string): string {
  const scopes = config.auth.resourceMetadata?.scopesSupported;
  return `Bearer realm="attest", error="invalid_token", error_description="${quoted(description)}"${scopes === undefined || scopes.length === 0 ? '' : `, scope="${quoted(scopes.join(' '))}"`}, resource_metadata="${quoted(resourceMetadataUrl(request, config))}"`;
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

export function registerResourceMetadata(app: FastifyInstance, config: AttestConfig): void {
  const settings = config.auth.resourceMetadata;
  const authorizationServers = settings?.authorizationServers ?? (config.auth.jwt === undefined ? undefined : [config.auth.jwt.issuer]);
  const document = (request: FastifyRequest, resourcePath: string): Record<string, unknown> => ({
    resource: `${baseUrlOf(request, config)}${resourcePath}`,
    ...(authorizationServers !== undefined && { authorization_servers: authorizationServers }),
    bearer_methods_supported: ['header'],
    ...(settings?.scopesSupported !== undefined && { scopes_supported: settings.scopesSupported }),
    ...(settings?.resourceName !== undefined && { resource_name: settings.resourceName }),
    ...(settings?.resourceDocumentation !== undefined && { resource_documentation: settings.resourceDocumentation }),
  });
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
    if (config.upstreams[server] === undefined) throw new GatewayError('ATTEST_UNKNOWN_SERVER', `No upstream server named "${server}"`);
    reply.header('access-control-allow-origin', '*');
    return document(request, `/servers/${server}/mcp`);
  });
}
