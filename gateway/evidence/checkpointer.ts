/**
 * Signs checkpoints of the evidence tree as the follower grows it (COMPLIANCE.md §4; C2SP
 * tlog-checkpoint): every `checkpointEveryEvents` new leaves, or every `checkpointEverySeconds` if
 * the tree grew, and a last one at a clean stop. Each checkpoint is made durable in this order:
 * the tree synced up to its size (MerkleStore.sync), the signed note written (checkpoint-files.ts),
 * then a CheckpointSigned event appended to the gateway's own stream — preceded, in the same
 * append, by CheckpointKeyRotated when the key differs from the one that signed the latest
 * checkpoint. All of it runs beside the follower, never on the forwarding path.
 *
 * The CheckpointSigned events are leaves too, but they do not count as growth: an idle gateway
 * would otherwise sign a checkpoint of its own last checkpoint event forever.
 *
 * Before its first checkpoint the checkpointer checks that the tree extends the latest published
 * one (same root at that size); if not, it signs nothing more: a log that was cut or rewritten
 * must not get a fresh signature over the new history.
 */
import type { LogEntry, MerkleStore } from '#eventlog';
import { signCheckpoint } from '#eventlog';
import type { EventDraft } from '#schemas';
import type { Logger } from '../logger.ts';
import { draft } from '../recorder.ts';
import type { StreamContext } from '../recorder.ts';
import { publishCheckpoint } from './checkpoint-files.ts';
import type { PublishedCheckpoint } from './checkpoint-files.ts';
import type { CheckpointKeys } from './checkpoint-keys.ts';

export interface CheckpointerOptions {
  readonly store: MerkleStore;
  readonly keys: CheckpointKeys;
  readonly evidenceDir: string;
  /** The latest checkpoint already published (readLatestCheckpoint). */
  readonly latest: PublishedCheckpoint | undefined;
  readonly everyEvents: number;
  readonly everySeconds: number;
  readonly record: (drafts: readonly EventDraft[]) => Promise<unknown>;
  /** The gateway's own stream (`system-<instance>`). */
  readonly systemContext: StreamContext;
  readonly instance: string;
  readonly logger: Logger;
}

const OWN_TYPES: ReadonlySet<string> = new Set(['CheckpointSigned', 'CheckpointKeyRotated']);

function hex8(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

export class Checkpointer {
  readonly #options: CheckpointerOptions;
  #latest: PublishedCheckpoint | undefined;
  /** Leaves since the last checkpoint that are not this checkpointer's own events. */
  #grown = 0;
  #queue: Promise<void> = Promise.resolve();
  #scheduled = false;
  #extendsLatest: boolean;
  #refused: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: CheckpointerOptions) {
    this.#options = options;
    this.#latest = options.latest;
    this.#extendsLatest = options.latest === undefined;
  }

  /** The latest published checkpoint (this run's or an earlier one's). */
  get latest(): PublishedCheckpoint | undefined {
    return this.#latest;
  }

  /** Set when the tree does not extend the latest checkpoint: no checkpoint is signed any more. */
  get refused(): string | undefined {
    return this.#refused;
  }

  start(): void {
    this.#timer = setInterval(() => {
      if (this.#grown > 0) this.#schedule();
    }, this.#options.everySeconds * 1000);
    this.#timer.unref();
  }

  /** The follower appended `entry` as a leaf. Synchronous: counting only, the work is queued. */
  onLeaf(entry: LogEntry): void {
    const { type, stream } = entry.event ?? entry.envelope;
    if (OWN_TYPES.has(type) && stream === this.#options.systemContext.stream) return;
    if (++this.#grown >= this.#options.everyEvents) this.#schedule();
  }

  /** Stops the timer, waits for a checkpoint under way, then (unless `final` is false) signs the last one if the tree grew. */
  async stop(options: { readonly final?: boolean } = {}): Promise<void> {
    clearInterval(this.#timer);
    await this.#queue;
    if (options.final !== false && this.#grown > 0) await this.#run();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#queue = this.#queue.then(async () => {
      this.#scheduled = false;
      await this.#run();
    });
  }

  async #run(): Promise<void> {
    try {
      await this.#emit();
    } catch (error) {
      this.#options.logger.error({ err: error, size: this.#options.store.size }, 'a checkpoint could not be signed and published; the next one is tried at the next trigger');
    }
  }

  async #emit(): Promise<void> {
    const { store, keys, evidenceDir, logger } = this.#options;
    if (this.#refused !== undefined) return;
    const latest = this.#latest;
    // Synchronous from here to the reset: size, root and the growth they cover belong together.
    const size = store.size;
    if (size === 0 || (latest !== undefined && size <= latest.checkpoint.size)) return;
    const root = store.root();
    this.#grown = 0;
    if (latest !== undefined && !this.#extendsLatest) {
      const was = await store.rootAt(latest.checkpoint.size);
      if (!was.equals(latest.checkpoint.root)) {
        this.#refused = `the tree's root at size ${latest.checkpoint.size} is ${was.toString('base64')}, but the latest checkpoint of that size says ${latest.checkpoint.root.toString('base64')}: the log was rewritten or cut since, or the tree is damaged`;
        logger.error({ dir: evidenceDir, size }, `no more checkpoints are signed: ${this.#refused}`);
        return;
      }
      this.#extendsLatest = true;
    }
    const started = performance.now();
    await store.sync();
    const signedAt = new Date().toISOString();
    const checkpoint = { origin: keys.trust.origin, size, root, extensions: [`time ${signedAt}`] };
    const { signer } = keys;
    const note = signCheckpoint(checkpoint, signer);
    await publishCheckpoint(evidenceDir, size, note);
    this.#latest = { note, checkpoint, signedBy: signer.verifier };
    const key = { name: signer.name, keyId: hex8(signer.keyId), verifierKey: signer.verifier.key };
    const { systemContext, instance } = this.#options;
    const drafts: EventDraft[] = [];
    if (latest !== undefined && latest.signedBy.key !== signer.verifier.key) {
      const previous = latest.signedBy;
      drafts.push(draft(systemContext, 'CheckpointKeyRotated', { instance, origin: checkpoint.origin, previousKey: { name: previous.name, keyId: hex8(previous.keyId), verifierKey: previous.key }, key, lastTreeSize: latest.checkpoint.size }));
    }
    drafts.push(draft(systemContext, 'CheckpointSigned', { instance, origin: checkpoint.origin, treeSize: size, rootHash: root.toString('hex'), signedAt, signers: [key], note }));
    await this.#options.record(drafts).catch((error: unknown) => {
      logger.error({ err: error, size }, `checkpoint ${size} is published but its ${drafts.length > 1 ? 'CheckpointKeyRotated and ' : ''}CheckpointSigned event could not be recorded`);
    });
    logger.debug({ size, ms: Math.round((performance.now() - started) * 100) / 100 }, 'checkpoint signed');
  }
}
