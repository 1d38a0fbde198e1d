/**
 * The approvals API: people decide the calls a `hold` rule stopped.
 *   GET  /admin/v1/approvals               pending approvals the caller may decide
 *   POST /admin/v1/approvals/:id/grant     body {"reason": "…"} → the call is decided and forwarded
 *   POST /admin/v1/approvals/:id/deny      body {"reason": "…"} → the call is refused (-32024)
 * Open to `attest:admin` and to any role a rule lets approve (`attest:approver` by default), never
 * to the anonymous principal (auth.anonymous).
 * A grant or denial answers once its event is durable; refusals (403 not an approver or the
 * agent itself, 404 not pending, 400 bad body) are recorded as RequestRejected by the error handler.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '#schemas';
import type { Principal } from '#schemas';
import type { ApprovalBroker } from '../approvals/broker.ts';
import { ADMIN_PREFIX, ADMIN_ROLE, requireAdmin } from './admin-auth.ts';

/** An admin, or a principal holding a role some rule lets approve; otherwise 401/403. */
export function requireApprover(request: FastifyRequest, broker: ApprovalBroker): Principal {
  const principal = request.attestAuth?.principal;
  // Anonymous requests never decide an approval, whatever roles auth.anonymous gives them (requireAdmin refuses them).
  if (principal !== undefined && principal.kind !== 'anonymous' && principal.roles.some((role) => broker.approverRoles.has(role))) return principal;
  try {
    return requireAdmin(request);
  } catch (error) {
    if (error instanceof GatewayError && error.code === 'ATTEST_FORBIDDEN') {
      throw new GatewayError('ATTEST_FORBIDDEN', `Forbidden: the approvals API needs the role "${ADMIN_ROLE}" or an approver role (${[...broker.approverRoles].map((r) => `"${r}"`).join(', ')})`, { requiredRoles: [ADMIN_ROLE, ...broker.approverRoles] });
    }
    throw error;
  }
}

const principalSchema = {
  type: 'object',
  properties: { kind: { type: 'string' }, id: { type: 'string' }, tenant: { type: 'string' }, team: { type: 'string' }, agent: { type: 'string' } },
} as const;

const approvalSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    sessionId: { type: 'string' },
    tenant: { type: 'string' },
    agent: principalSchema,
    upstream: { type: 'string' },
    tool: { type: 'string' },
    argumentsDigest: { type: 'string' },
    arguments: {},
    ruleId: { type: 'string' },
    reason: { type: 'string' },
    approverRoles: { type: 'array', items: { type: 'string' } },
    requestedAt: { type: 'string' },
    expiresAt: { type: 'string' },
  },
} as const;

const decisionBody = {
  type: 'object',
  required: ['reason'],
  additionalProperties: false,
  properties: { reason: { type: 'string', minLength: 1, maxLength: 2000 } },
} as const;

const decisionResponse = {
  type: 'object',
  properties: { id: { type: 'string' }, outcome: { type: 'string' }, eventId: { type: 'string' }, approval: approvalSchema },
} as const;

export function registerApprovalRoutes(app: FastifyInstance, broker: ApprovalBroker): void {
  app.get(`${ADMIN_PREFIX}/approvals`, { schema: { response: { 200: { type: 'object', properties: { approvals: { type: 'array', items: approvalSchema } } } } } }, async (request) => {
    const principal = requireApprover(request, broker);
    return { approvals: broker.list(principal) };
  });

  for (const verdict of ['grant', 'deny'] as const) {
    app.post<{ Params: { id: string }; Body: { reason: string } }>(
      `${ADMIN_PREFIX}/approvals/:id/${verdict}`,
      // Authorization before body validation: a stranger learns nothing about the body's shape.
      { preValidation: async (request) => void requireApprover(request, broker), schema: { params: { type: 'object', properties: { id: { type: 'string', minLength: 1, maxLength: 64 } } }, body: decisionBody, response: { 200: decisionResponse } } },
      async (request) => {
        const approver = requireApprover(request, broker);
        const { approval, eventId } = await broker.decide(request.params.id, approver, verdict, request.body.reason);
        return { id: approval.id, outcome: verdict === 'grant' ? 'granted' : 'denied', eventId, approval };
      },
    );
  }
}
