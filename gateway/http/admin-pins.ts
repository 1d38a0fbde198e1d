/**
 * Admin API for tool-definition pins (docs/tool-pinning.md):
 *   GET  /admin/v1/pins[?quarantined=true]   every pin, or only tools with a pending change
 *   POST /admin/v1/pins/approve              { upstream, tool, hash, reason } → the new hash is the pin
 *   POST /admin/v1/pins/reject               { upstream, tool, hash, reason } → the pin stays; that definition stays refused
 * Each decision is a ToolDefinitionApproved/Rejected event with the admin as the actor.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { DigestSchema, GatewayError, formatConfigIssues } from '#schemas';
import type { ToolPins } from '../pins/tool-pins.ts';
import type { GatewaySession } from '../session/session.ts';
import { ADMIN_PREFIX, requireAdmin } from './admin-auth.ts';

const DecisionSchema = z
  .object({
    upstream: z.string().min(1),
    tool: z.string().min(1),
    hash: DigestSchema,
    reason: z.string().trim().min(1, 'say why (it is recorded)').max(2000),
  })
  .strict();

/** `liveSessions` are told to list tools again after a decision, so an approved tool reappears without a reconnect. */
// Response schemas (fastify serialises with them and drops anything not declared). `definition` is any JSON.
const pinResponse = {
  type: 'object',
  required: ['upstream', 'tool', 'hash', 'pinnedAt', 'quarantined', 'pending', 'rejected'],
  properties: {
    upstream: { type: 'string' },
    tool: { type: 'string' },
    hash: { type: 'string' },
    pinnedAt: { type: 'string' },
    definition: {},
    quarantined: { type: 'boolean' },
    pending: { type: 'array', items: { type: 'object', properties: { hash: { type: 'string' }, observedAt: { type: 'string' }, definition: {} } } },
    rejected: { type: 'array', items: { type: 'string' } },
  },
} as const;
const listResponse = { 200: { type: 'object', properties: { pins: { type: 'array', items: pinResponse } } } } as const;
const decisionResponse = { 200: { type: 'object', properties: { pin: pinResponse } } } as const;

export function registerPinsAdmin(app: FastifyInstance, pins: ToolPins | undefined, liveSessions: () => readonly GatewaySession[]): void {
  if (pins === undefined) return;
  app.get(`${ADMIN_PREFIX}/pins`, { schema: { response: listResponse } }, async (request) => {
    requireAdmin(request);
    const quarantinedOnly = (request.query as Record<string, unknown> | undefined)?.['quarantined'] === 'true';
    return { pins: pins.list({ quarantinedOnly }) };
  });
  for (const decision of ['approve', 'reject'] as const) {
    app.post(`${ADMIN_PREFIX}/pins/${decision}`, { schema: { response: decisionResponse } }, async (request) => {
      const admin = requireAdmin(request);
      const parsed = DecisionSchema.safeParse(request.body);
      if (!parsed.success) throw new GatewayError('ATTEST_INVALID_REQUEST', `Invalid ${decision} request: ${formatConfigIssues(parsed.error).replace(/\n/g, '; ')}`);
      const pin = await pins.decide(decision, parsed.data, admin);
      for (const session of liveSessions()) session.notifyToolsChanged();
      return { pin };
    });
  }
}
