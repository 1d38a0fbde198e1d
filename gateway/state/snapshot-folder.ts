/**
 * Folds the log's tail after the newest snapshot and writes the next snapshot when one is due:
 * what the snapshot worker does on its thread, and what a gateway does itself at close when it
 * never needed the worker (a short run: the tail is small).
 */
import type { AttestConfig } from '#schemas';
import type { EventLogReader } from '#eventlog';
import { compilePolicy } from '../policy/compile-policy.ts';
import { GatewayStateFold } from './gateway-state.ts';
import { SnapshotStore } from './snapshot-store.ts';

export interface Written {
  readonly file: string;
  readonly size: number;
  readonly folded: number;
  readonly ms: number;
}

export class SnapshotFolder {
  readonly #config: AttestConfig;
  readonly #store: SnapshotStore;
  readonly #limits: ReturnType<typeof compilePolicy>['limits'] | undefined;
  readonly #policyHash: string | undefined;
  #fold: GatewayStateFold | undefined;
  #sinceSnapshot = 0;
  #lastSnapshotAt = Date.now();

  constructor(config: AttestConfig, gatewayVersion: string) {
    this.#config = config;
    this.#store = new SnapshotStore({ dir: config.state.dir ?? '', instance: config.gateway.instance, log: config.log, gatewayVersion });
    const compiled = config.policy === undefined ? undefined : compilePolicy(config.policy);
    this.#limits = compiled?.limits;
    this.#policyHash = compiled?.hash;
  }

  /**
   * Folds what `reader` holds after the state's cursor — up to `bound` records when given (file and
   * Kafka indexes count records: only what the writer said is durable) — then writes a snapshot if
   * `snapshotEveryEvents` were folded since the last, or `snapshotIntervalMs` passed with anything
   * new, or `final` with anything new. A failure drops the fold: the next run starts again from the
   * newest snapshot.
   */
  async run(reader: Pick<EventLogReader, 'entries'>, bound: number | undefined, final: boolean): Promise<Written | undefined> {
    try {
      const fold = await this.#state();
      const after = fold.cursor;
      // Trusted: these are events the gateway's own writer validated when it sealed them; checking
      // their schema again would be most of the worker's cost (docs/configuration.md "Start-up snapshots").
      for await (const entry of reader.entries(after === undefined ? { trusted: true } : { after, trusted: true })) {
        if (bound !== undefined && entry.position.index >= bound) break;
        fold.push(entry);
        this.#sinceSnapshot++;
      }
      const { snapshotEveryEvents, snapshotIntervalMs } = this.#config.state;
      const due = this.#sinceSnapshot >= snapshotEveryEvents || (this.#sinceSnapshot > 0 && (final || Date.now() - this.#lastSnapshotAt >= snapshotIntervalMs));
      if (!due) return undefined;
      const started = performance.now();
      const file = await this.#store.write(fold.toJson());
      const written = { file, size: fold.size, folded: this.#sinceSnapshot, ms: Math.round(performance.now() - started) };
      this.#sinceSnapshot = 0;
      this.#lastSnapshotAt = Date.now();
      return written;
    } catch (error) {
      this.#fold = undefined;
      this.#sinceSnapshot = 0;
      throw error;
    }
  }

  async #state(): Promise<GatewayStateFold> {
    if (this.#fold !== undefined) return this.#fold;
    const { snapshot } = await this.#store.latest();
    this.#fold = snapshot !== undefined && (snapshot.body.policyHash ?? undefined) === this.#policyHash ? GatewayStateFold.fromJson(snapshot.body, this.#limits) : new GatewayStateFold(this.#limits, this.#policyHash);
    return this.#fold;
  }
}
