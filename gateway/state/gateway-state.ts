/**
 * The gateway's state as a fold of its log, up to a cursor: the projections (#projections: open
 * calls, approvals and sessions, run-time keys, pins, limits) and the chain heads of the streams
 * that can still be appended to (system streams, and sessions not closed). It is what a snapshot
 * holds (snapshot-store.ts), and what start-up resumes from: the snapshot, then the log's tail.
 */
import { PROJECTIONS_FORMAT, ProjectionsFold, emptyProjections, projectionsFromJson, projectionsToJson } from '#projections';
import type { LimitsConfig, Projections, ProjectionsJson } from '#projections';
import { chainOf, cursorOf } from '#eventlog';
import type { LogCursor, LogEntry, ResumeFrom } from '#eventlog';

export interface ChainHeadJson {
  readonly seq: number;
  readonly hash: string | null;
}

/** The JSON of a state at a cursor (a snapshot's body). */
export interface GatewayStateJson {
  readonly projectionsFormat: typeof PROJECTIONS_FORMAT;
  /** The cursor of the last record folded; null: nothing folded yet. */
  readonly cursor: string | null;
  /** Records folded (the log's size up to and including the cursor's). */
  readonly size: number;
  /** `sha256:` of the policy bundle whose limits the limits fold used; null: no policy. */
  readonly policyHash: string | null;
  readonly heads: [string, ChainHeadJson][];
  readonly projections: ProjectionsJson;
}

export class GatewayStateFold {
  readonly projections: Projections;
  readonly heads: Map<string, ChainHeadJson>;
  readonly policyHash: string | undefined;
  #cursor: LogCursor | undefined;
  #size: number;
  readonly #fold: ProjectionsFold;

  constructor(limits: LimitsConfig | undefined, policyHash: string | undefined, from?: { readonly projections: Projections; readonly heads: Map<string, ChainHeadJson>; readonly cursor: LogCursor | undefined; readonly size: number }) {
    this.policyHash = policyHash;
    this.projections = from?.projections ?? emptyProjections(limits !== undefined);
    this.heads = from?.heads ?? new Map<string, ChainHeadJson>();
    this.#cursor = from?.cursor;
    this.#size = from?.size ?? 0;
    this.#fold = new ProjectionsFold(limits, this.projections);
  }

  get cursor(): LogCursor | undefined {
    return this.#cursor;
  }

  /** Records folded so far. */
  get size(): number {
    return this.#size;
  }

  /** Folds one record of the log, in log order; a record this version cannot read still moves its stream's head. */
  push(entry: LogEntry): void {
    const { stream, seq, hash } = chainOf(entry);
    if (entry.event !== undefined) {
      this.#fold.push(entry.event);
      // A closed session takes no more events: its head need not be kept (a resumed writer refuses to restart it).
      if (entry.event.type === 'SessionClosed') this.heads.delete(stream);
      else this.heads.set(stream, { seq, hash });
    } else {
      this.heads.set(stream, { seq, hash });
    }
    this.#cursor = cursorOf(entry);
    this.#size++;
  }

  /** What a resumed writer needs: undefined when nothing was folded (open from the start). */
  resume(): ResumeFrom | undefined {
    return this.#cursor === undefined ? undefined : { cursor: this.#cursor, heads: this.heads, size: this.#size };
  }

  toJson(): GatewayStateJson {
    return {
      projectionsFormat: PROJECTIONS_FORMAT,
      cursor: this.#cursor ?? null,
      size: this.#size,
      policyHash: this.policyHash ?? null,
      heads: [...this.heads],
      projections: projectionsToJson(this.projections),
    };
  }

  /** A fold resumed from a snapshot's body; TypeError when the body is not one (read the log instead). */
  static fromJson(json: GatewayStateJson, limits: LimitsConfig | undefined): GatewayStateFold {
    if (json.projectionsFormat !== PROJECTIONS_FORMAT || !Array.isArray(json.heads) || typeof json.size !== 'number') throw new TypeError('not a gateway state of this format');
    const projections = projectionsFromJson(json.projections);
    if ((projections.limits === undefined) !== (limits === undefined)) throw new TypeError('the snapshot was taken with another policy (limits present in one, absent in the other)');
    return new GatewayStateFold(limits, json.policyHash ?? undefined, { projections, heads: new Map(json.heads), cursor: (json.cursor ?? undefined) as LogCursor | undefined, size: json.size });
  }
}
