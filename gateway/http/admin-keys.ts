/**
 * The key admin API, `/admin/v1/keys`: virtual keys in a hierarchy tenant → team → key, issued
 * and revoked at run time. Each issue and revocation is an event (KeyIssued / KeyRevoked, the
 * admin as actor) recorded before it takes effect; the key store applies the same event, and
 * rebuilds from the log at start. The key is returned once, at issue; the log and every later
 * answer hold only its sha256 hash. Revoking a team or tenant revokes every key under it (config
 * keys included); open sessions of a revoked key are closed, and its next request is refused.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ApiKeySchema, GatewayError, formatConfigIssues } from '#schemas';
import type { AttestConfig, EventDraft, Principal } from '#schemas';
import { generateApiKey, hashApiKey } from '../auth/api-keys.ts';
import type { ApiKeyStore, KeyView } from '../auth/api-keys.ts';
import { draft } from '../recorder.ts';
import type { Recorder } from '../recorder.ts';
import type { Logger } from '../logger.ts';
import { ADMIN_PREFIX, requireAdmin } from './admin-auth.ts';
import type { SessionRegistry } from './server.ts';

export interface AdminKeysDeps {
  readonly config: AttestConfig;
  readonly recorder: Recorder;
  readonly keys: ApiKeyStore;
  readonly sessions: SessionRegistry;
  readonly logger: Logger;
}

const name = z.string().min(1).max(128);

const IssueRequestSchema = ApiKeySchema.omit({ hash: true, tenant: true, expiresAt: true })
  .extend({
    id: ApiKeySchema.shape.id.optional(),
    tenant: name,
    team: name.optional(),
    agent: name.optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
    /** Lifetime from now, in seconds (instead of expiresAt). */
    ttlSeconds: z.number().int().positive().optional(),
  })
  .strict()
  .refine((body) => body.expiresAt === undefined || body.ttlSeconds === undefined, 'give expiresAt or ttlSeconds, not both');

const RevokeKeySchema = z.object({ reason: z.string().max(500).optional() }).strict();
const RevokeScopeSchema = z.object({ tenant: name, team: name.optional(), reason: z.string().max(500).optional() }).strict();
const ListQuerySchema = z.object({ tenant: name.optional(), team: name.optional() }).strict();

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw new GatewayError('ATTEST_INVALID_REQUEST', `Invalid ${what}: ${formatConfigIssues(result.error).replace(/\n/g, '; ')}`);
  return result.data;
}

export function registerAdminKeys(app: FastifyInstance, deps: AdminKeysDeps): void {
  // `deps.keys` is read at each use: a config reload swaps the store (rebuilt from the log).
  const { config, recorder, sessions, logger } = deps;
  const stream = `system-${config.gateway.instance}`;
  /** Ids being issued right now (recorded, not yet applied), so two requests cannot take one id. */
  const issuing = new Set<string>();

  function show(id: string): KeyView {
    const view = deps.keys.view(id);
    if (view === undefined) throw new GatewayError('ATTEST_NOT_FOUND', `No key with id "${id}"`, { keyId: id });
    return view;
  }

  async function revoke(admin: Principal, data: { scope: 'key' | 'team' | 'tenant'; tenant: string; team?: string; keyId?: string; keyIds: string[]; reason?: string }): Promise<string[]> {
    const event: EventDraft = draft({ tenant: data.tenant, stream, actor: admin }, 'KeyRevoked', data);
    await recorder.record([event]);
    deps.keys.apply(event);
    // The revocation is in force from here (the next request is refused); its open sessions end before the admin hears back.
    const credentials = new Set(data.keyIds.map((id) => `key:${id}`));
    const closing: Promise<void>[] = [];
    for (const entry of [...sessions.values()]) {
      if (!credentials.has(entry.credentialId)) continue;
      sessions.delete(entry.session.id);
      closing.push(entry.session.close('key revoked').catch((error: unknown) => logger.warn({ err: error, sessionId: entry.session.id }, 'closing a session of a revoked key failed')));
    }
    await Promise.all(closing);
    return data.keyIds;
  }

  app.post(`${ADMIN_PREFIX}/keys`, async (request: FastifyRequest, reply: FastifyReply) => {
    const admin = requireAdmin(request);
    const body = parse(IssueRequestSchema, request.body, 'key request');
    const id = body.id ?? `vk_${randomBytes(12).toString('base64url')}`;
    if (deps.keys.hasId(id) || issuing.has(id)) throw new GatewayError('ATTEST_INVALID_REQUEST', `Key id "${id}" is taken: it exists or existed, and key ids are never reused`, { keyId: id });
    const expiresAt = body.expiresAt ?? (body.ttlSeconds === undefined ? undefined : new Date(Date.now() + body.ttlSeconds * 1000).toISOString());
    if (expiresAt !== undefined && Date.parse(expiresAt) <= Date.now()) throw new GatewayError('ATTEST_INVALID_REQUEST', `expiresAt ${expiresAt} is in the past`);
    const key = generateApiKey();
    const event = draft({ tenant: body.tenant, stream, actor: admin }, 'KeyIssued', {
      keyId: id,
      keyHash: hashApiKey(key),
      tenant: body.tenant,
      ...(body.team !== undefined && { team: body.team }),
      ...(body.agent !== undefined && { agent: body.agent }),
      roles: body.roles,
      ...(expiresAt !== undefined && { expiresAt }),
      allowTools: body.allowTools,
      denyTools: body.denyTools,
    });
    issuing.add(id);
    try {
      await recorder.record([event]);
    } finally {
      issuing.delete(id);
    }
    deps.keys.apply(event);
    reply.code(201);
    // The only time the key is shown.
    return { key, ...show(id) };
  });

  app.get(`${ADMIN_PREFIX}/keys`, async (request: FastifyRequest) => {
    requireAdmin(request);
    const query = parse(ListQuerySchema, request.query, 'query');
    return { keys: deps.keys.list(query) };
  });

  app.get<{ Params: { id: string } }>(`${ADMIN_PREFIX}/keys/:id`, async (request) => {
    requireAdmin(request);
    return show(request.params.id);
  });

  app.post<{ Params: { id: string } }>(`${ADMIN_PREFIX}/keys/:id/revoke`, async (request) => {
    const admin = requireAdmin(request);
    const body = parse(RevokeKeySchema, request.body, 'revocation');
    const view = show(request.params.id);
    if (view.status === 'revoked') return { revoked: [], key: view };
    const revoked = await revoke(admin, { scope: 'key', tenant: view.tenant, ...(view.team !== undefined && { team: view.team }), keyId: view.id, keyIds: [view.id], ...(body.reason !== undefined && { reason: body.reason }) });
    return { revoked, key: show(view.id) };
  });

  // Hierarchy: every key of a tenant, or of one team in it.
  app.post(`${ADMIN_PREFIX}/keys/revoke`, async (request) => {
    const admin = requireAdmin(request);
    const body = parse(RevokeScopeSchema, request.body, 'revocation');
    const keyIds = deps.keys.activeIdsUnder(body.tenant, body.team);
    const revoked = await revoke(admin, { scope: body.team === undefined ? 'tenant' : 'team', tenant: body.tenant, ...(body.team !== undefined && { team: body.team }), keyIds, ...(body.reason !== undefined && { reason: body.reason }) });
    return { revoked };
  });
}
