/**
 * `POST /admin/v1/config/reload`: re-reads the config file and applies it (gateway/reload.ts).
 * 200 `{ applied: true, configHash, policyHash?, changed, upstreamsAdded, upstreamsRemoved }`, or
 * the refusal with its issues (422 ATTEST_CONFIG_REJECTED, 409 ATTEST_RELOAD_UNAVAILABLE, 503 when
 * the log could not record it) — in both cases the outcome is in the log (ConfigApplied /
 * ConfigRejected, the admin as actor).
 */
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '#schemas';
import type { Principal } from '#schemas';
import type { ReloadOutcome } from '../reload.ts';
import { ADMIN_PREFIX, requireAdmin } from './admin-auth.ts';

export function registerConfigAdmin(app: FastifyInstance, reload: ((actor: Principal) => Promise<ReloadOutcome>) | undefined): void {
  app.post(`${ADMIN_PREFIX}/config/reload`, async (request, reply) => {
    const actor = requireAdmin(request);
    if (reload === undefined) throw new GatewayError('ATTEST_RELOAD_UNAVAILABLE', 'This gateway serves no config reload (it was not started by `attest start` / `attest gateway`)');
    const outcome = await reload(actor);
    if (outcome.applied) return reply.code(200).send(outcome);
    const error = outcome.error;
    return reply.code(error.httpStatus).send({ applied: false, error: { ...error.toJsonRpcError(), data: { errorCode: error.code, issues: outcome.issues } } });
  });
}
