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

  /** Undefined when `evidence.enabled` is false. */
  static async start(config: AttestConfig, log: EventLogReader, logger: Logger): Promise<EvidenceService | undefined> {
    if (!config.evidence.enabled) return undefined;
    const dir = config.evidence.dir ?? join(config.state.dir ?? '', 'merkle');
    const follower = await EvidenceFollower.open(log, dir, { syncEveryLeaves: config.evidence.syncEveryLeaves });
    logger.info({ dir, resumedAt: follower.resume.size, ...(follower.resume.rebuilt !== undefined && { rebuiltBecause: follower.resume.rebuilt }) }, 'evidence tree opened');
    return new EvidenceService(follower, logger);
  }

  /** Stops following and syncs the tree. Call before the log closes, after the last event was appended. */
  async stop(): Promise<void> {
    this.#controller.abort();
    await this.#running;
    await this.follower.close();
  }
}
