/**
 * Runs the evidence follower (eventlog/evidence) beside the gateway, and the checkpointer on the
 * tree it grows: the follower reads the log after the writer made each batch durable, so nothing
 * is added before forwarding; a failure is logged and stops only the tree and its checkpoints
 * (calls are still recorded and served; the next start rebuilds or resumes it).
 */
import type { AttestConfig } from '#schemas';
import { EvidenceFollower } from '#eventlog';
import type { EventLog, LogEntry } from '#eventlog';
import type { Logger } from '../logger.ts';
import type { StreamContext } from '../recorder.ts';
import type { Recorder } from '../recorder.ts';
import { Checkpointer } from './checkpointer.ts';
import type { PublishedCheckpoint } from './checkpoint-files.ts';
import type { CheckpointKeys } from './checkpoint-keys.ts';

/** How long a clean stop waits for the follower to reach the log's end before its last checkpoint. */
const STOP_CATCH_UP_MS = 10_000;

export interface EvidenceServiceDeps {
  readonly config: AttestConfig;
  readonly keys: CheckpointKeys;
  /** The latest checkpoint already published (readLatestCheckpoint, read before the log opened). */
  readonly latest: PublishedCheckpoint | undefined;
  readonly log: EventLog;
  readonly recorder: Recorder;
  readonly systemContext: StreamContext;
  readonly logger: Logger;
}

export class EvidenceService {
  readonly follower: EvidenceFollower;
  readonly checkpointer: Checkpointer;
  readonly #log: EventLog;
  readonly #logger: Logger;
  readonly #controller = new AbortController();
  readonly #running: Promise<void>;
  #failed = false;
  #reached: { readonly size: number; readonly resolve: () => void } | undefined;

  private constructor(follower: EvidenceFollower, checkpointer: Checkpointer, log: EventLog, logger: Logger) {
    this.follower = follower;
    this.checkpointer = checkpointer;
    this.#log = log;
    this.#logger = logger;
    this.#running = follower.run({ follow: true, signal: this.#controller.signal }).catch((error: unknown) => {
      this.#failed = true;
      this.#reached?.resolve();
      void checkpointer.stop({ final: false });
      logger.error({ err: error, dir: follower.store.directory, size: follower.size }, 'the evidence follower stopped; the Merkle tree is not kept current and no checkpoint is signed until restart');
    });
    checkpointer.start();
  }

  /** Runs the follower and the checkpointer for `evidence.enabled` (the caller checks it). */
  static async start(deps: EvidenceServiceDeps): Promise<EvidenceService> {
    const { config, keys, logger } = deps;
    const { evidence } = config;
    const dir = evidence.dir ?? '';
    // The follower calls back only once it runs, which the constructor below starts.
    let onLeaf: (index: number, entry: LogEntry) => void = () => undefined;
    const follower = await EvidenceFollower.open(deps.log, dir, {
      syncEveryLeaves: evidence.syncEveryLeaves,
      onLeaf: (index, _leaf, entry) => onLeaf(index, entry),
    });
    logger.info({ dir, resumedAt: follower.resume.size, ...(follower.resume.rebuilt !== undefined && { rebuiltBecause: follower.resume.rebuilt }) }, 'evidence tree opened');
    const key = { origin: keys.trust.origin, verifierKey: keys.signer.verifier.key, ...(keys.source.kind === 'signingKey' ? { from: 'evidence.signingKey' } : { from: keys.source.kind, file: keys.source.path }) };
    if (keys.source.kind === 'generated') logger.info(key, keys.source.created ? 'no checkpoint key configured: generated one (give its verifier key to witnesses and auditors; set evidence.keyFile for production)' : 'checkpoints are signed with the key generated earlier (set evidence.keyFile for production)');
    else logger.info(key, 'checkpoint signing key loaded');
    const checkpointer = new Checkpointer({
      store: follower.store,
      keys,
      evidenceDir: dir,
      latest: deps.latest,
      everyEvents: evidence.checkpointEveryEvents,
      everySeconds: evidence.checkpointEverySeconds,
      record: (drafts) => deps.recorder.record(drafts),
      systemContext: deps.systemContext,
      instance: config.gateway.instance,
      logger,
    });
    const service = new EvidenceService(follower, checkpointer, deps.log, logger);
    onLeaf = (index, entry) => service.#onLeaf(index, entry);
    return service;
  }

  /** The signed note of the latest checkpoint, for GET /.well-known/attest/checkpoint. */
  get latestCheckpoint(): string | undefined {
    return this.checkpointer.latest?.note;
  }

  #onLeaf(index: number, entry: LogEntry): void {
    this.checkpointer.onLeaf(entry);
    if (this.#reached !== undefined && index + 1 >= this.#reached.size) this.#reached.resolve();
  }

  /**
   * Lets the follower reach the log's end, signs the last checkpoint, then stops following and
   * syncs the tree. Call before the log closes, after the last event (GatewayStopped) was appended.
   */
  async stop(): Promise<void> {
    const target = this.#log.size();
    if (!this.#failed && this.follower.size < target) {
      const reached = new Promise<void>((resolve) => (this.#reached = { size: target, resolve }));
      const timeout = new Promise<boolean>((resolve) => setTimeout(resolve, STOP_CATCH_UP_MS, false).unref());
      if ((await Promise.race([reached.then(() => true), timeout])) === false) {
        this.#logger.warn({ size: this.follower.size, logSize: target }, `the evidence tree did not reach the log's end within ${STOP_CATCH_UP_MS} ms of the stop; the last checkpoint covers what it has`);
      }
    }
    if (!this.#failed) await this.checkpointer.stop();
    this.#controller.abort();
    await this.#running;
    await this.follower.close();
  }
}
