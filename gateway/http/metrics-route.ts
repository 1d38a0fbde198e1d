/**
 * `GET /metrics`: the Prometheus exposition on the gateway's own port. Who may scrape: a caller
 * that authenticates like any agent (the front door's onRequest hook: Host/Origin, then the API
 * key) and whose key holds one of `observability.metrics.roles` (default `attest:metrics` or
 * `attest:admin`). Metrics name upstreams, tools, tenants' limit ids and refusal rates: not for
 * anyone who can reach the port. A refused scrape is recorded like any refusal (RequestRejected).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '#schemas';
import type { GatewayMetrics } from '../observability/metrics.ts';

export const METRICS_PATH = '/metrics';

export function registerMetricsRoute(app: FastifyInstance, metrics: GatewayMetrics, roles: readonly string[]): void {
  const requireScraper = (request: FastifyRequest): void => {
    const auth = request.attestAuth;
    if (auth === undefined) throw new GatewayError('ATTEST_UNAUTHENTICATED');
    if (!auth.principal.roles.some((role) => roles.includes(role))) {
      throw new GatewayError('ATTEST_FORBIDDEN', `Forbidden: GET ${METRICS_PATH} needs one of the roles ${roles.map((r) => `"${r}"`).join(', ')}`, { requiredRoles: [...roles] });
    }
  };
  app.get(METRICS_PATH, async (request, reply) => {
    requireScraper(request);
    const text = await metrics.scrape();
    return reply.header('content-type', metrics.contentType).header('cache-control', 'no-store').send(text);
  });
}
