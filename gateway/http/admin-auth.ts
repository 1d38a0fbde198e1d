/**
 * The admin API's one authorization rule: the caller authenticates like any agent (the
 * front door's onRequest hook), and only a principal holding ADMIN_ROLE may use `/admin/v1/…`.
 * Each admin feature registers its routes in its own module and starts every handler with
 * `requireAdmin(request)`; what an admin did is recorded by the feature as an event with the
 * admin as the actor.
 */
import type { FastifyRequest } from 'fastify';
import { GatewayError } from '#schemas';
import type { Principal } from '#schemas';

export const ADMIN_ROLE = 'attest:admin';
export const ADMIN_PREFIX = '/admin/v1';

/** The admin principal of this request, or a 401/403 GatewayError (recorded by the error handler). */
export function requireAdmin(request: FastifyRequest): Principal {
  const auth = request.attestAuth;
  if (auth === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED');
  if (auth.principal.kind === 'anonymous') throw new GatewayError('ATTEST_UNAUTHENTICATED', `No credential: the admin API needs a credential holding the role "${ADMIN_ROLE}", sent as "Authorization: Bearer <key>" (anonymous access never reaches it)`);
  if (!auth.principal.roles.includes(ADMIN_ROLE)) {
    throw new GatewayError('ATTEST_FORBIDDEN', `Forbidden: ${request.method} ${request.url.split('?')[0] ?? ''} needs the role "${ADMIN_ROLE}"`, { requiredRole: ADMIN_ROLE });
  }
  return auth.principal;
}
