/**
 * `GET /.well-known/attest/checkpoint`: the latest signed checkpoint of the evidence tree (C2SP
 * tlog-checkpoint, a signed note), for witnesses and auditors. Public by design — a checkpoint
 * holds a tree size and a root hash, nothing about any call — so no credential and no Origin
 * check (the Host check still applies), readable from any origin. Never cached: the next one
 * replaces it. 404 (JSON, ATTEST_NOT_FOUND) when evidence is off or before the first checkpoint.
 */
import type { FastifyInstance } from 'fastify';
import { GatewayError } from '#schemas';

export const CHECKPOINT_PATH = '/.well-known/attest/checkpoint';

export type CheckpointSource = () => { readonly enabled: false } | { readonly enabled: true; readonly note: string | undefined };

export function isCheckpointPath(url: string): boolean {
  return url === CHECKPOINT_PATH || url.startsWith(`${CHECKPOINT_PATH}?`);
}

export function registerCheckpointRoute(app: FastifyInstance, source: CheckpointSource): void {
  app.get(CHECKPOINT_PATH, { schema: { response: { 200: { type: 'string' } } } }, async (_request, reply) => {
    const current = source();
    if (!current.enabled) throw new GatewayError('ATTEST_NOT_FOUND', 'No checkpoints: evidence is not enabled on this gateway (evidence.enabled)');
    if (current.note === undefined) throw new GatewayError('ATTEST_NOT_FOUND', 'No checkpoint signed yet: the first one follows the first events (evidence.checkpointEveryEvents / checkpointEverySeconds)');
    return reply.header('content-type', 'text/plain; charset=utf-8').header('cache-control', 'no-cache').header('access-control-allow-origin', '*').send(current.note);
  });
}
