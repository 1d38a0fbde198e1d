/**
 * Runs the evidence follower (eventlog/evidence) beside the gateway: it follows the log after the
 * writer made each batch durable, so nothing is added before forwarding; a failure is logged and
 * stops only the tree (calls are still recorded and served; the next start rebuilds or resumes it).
 */
import { join } from 'node:path';
import type { AttestConfig } from '#schemas';
import { EvidenceFollower } from '#eventlog';
import type { EventLogReader } from '#eventlog';
import type { Logger } from '../logger.ts';
import type { CheckpointKeys } from './checkpoint-keys.ts';

export class EvidenceService {
  readonly follower: EvidenceFollower;
  readonly #controller = new AbortController();
  readonly #running: Promise<void>;

  private constructor(follower: EvidenceFollower, logger: Logger) {
    this.follower = follower;
    this.#running = follower.run({ follow: true, signal: this.#controller.signal }).catch((error: unknown) => {
      logger.error({ err: error, dir: follower.store.directory, size: follower.size }, 'the evidence follower stopped; the Merkle tree is not kept current until restart');
    });
  }

  /** Runs the follower for `evidence.enabled` (the caller checks it), signing with `keys`. */
  static async start(config: AttestConfig, keys: CheckpointKeys, log: EventLogReader, logger: Logger): Promise<EvidenceService> {
    const dir = config.evidence.dir ?? join(config.state.dir ?? '', 'merkle');
    const follower = await EvidenceFollower.open(log, dir, { syncEveryLeaves: config.evidence.syncEveryLeaves });
    logger.info({ dir, resumedAt: follower.resume.size, ...(follower.resume.rebuilt !== undefined && { rebuiltBecause: follower.resume.rebuilt }) }, 'evidence tree opened');
    const key = { origin: keys.trust.origin, verifierKey: keys.signer.verifier.key, ...(keys.source.kind === 'signingKey' ? { from: 'evidence.signingKey' } : { from: keys.source.kind, file: keys.source.path }) };
    if (keys.source.kind === 'generated') logger.info(key, keys.source.created ? 'no checkpoint key configured: generated one (give its verifier key to witnesses and auditors; set evidence.keyFile for production)' : 'checkpoints are signed with the key generated earlier (set evidence.keyFile for production)');
    else logger.info(key, 'checkpoint signing key loaded');
    return new EvidenceService(follower, logger);
  }

  /** Stops following and syncs the tree. Call before the log closes, after the last event was appended. */
  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#running;
    await this.follower.close();
  }
}
