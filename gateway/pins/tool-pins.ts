/**
 * Tool-definition pinning, the rug-pull defence (docs/tool-pinning.md). The first definition of each
 * tool an upstream lists is pinned (ToolPinned); a later listing with a different definition puts
 * the tool in quarantine (ToolDefinitionChanged) until an admin approves the new definition
 * (ToolDefinitionApproved: it becomes the pin) or rejects it (ToolDefinitionRejected).
 *
 * The pins are a projection of the log, shared by every session of this gateway and rebuilt at
 * start, so a restart never re-trusts a changed tool. Each listing's events are drafted and
 * applied synchronously before they are appended (like the limits' charges), so two sessions
 * listing at once record one pin, not two.
 */
import { GatewayError, canonicalize, sha256Hex } from '#schemas';
import type { AttestEvent, EventDraft, Principal } from '#schemas';
import { emptyPinsState, evolvePins, pinKey } from '#projections';
import type { Digest, PinsState } from '#projections';
import { draft } from '../recorder.ts';
import type { Recorder, StreamContext } from '../recorder.ts';

type Json = Readonly<Record<string, unknown>>;

/** The parts of a tool definition an agent (or its model) acts on. */
const PINNED_FIELDS = ['name', 'title', 'description', 'inputSchema', 'outputSchema', 'annotations'] as const;

/** The pinned view of a definition and its hash. */
export function pinnedDefinition(tool: Json): { readonly definition: Json; readonly hash: Digest } {
  const definition: Record<string, unknown> = {};
  for (const field of PINNED_FIELDS) if (tool[field] !== undefined) definition[field] = tool[field];
  return { definition, hash: `sha256:${sha256Hex(canonicalize(definition))}` };
}

/** Why a call is refused: the tool's pin and the definition this session's upstream listed (or a pending one). */
export interface Quarantine {
  readonly upstream: string;
  readonly tool: string;
  readonly pinnedHash: Digest;
  readonly observedHash: Digest;
  readonly rejected: boolean;
}

export interface PinView {
  readonly upstream: string;
  readonly tool: string;
  readonly hash: string;
  readonly pinnedAt: string;
  readonly definition: unknown;
  readonly quarantined: boolean;
  readonly pending: readonly { readonly hash: string; readonly observedAt: string; readonly definition: unknown }[];
  readonly rejected: readonly string[];
}

export interface Observation {
  /** Hash of each listed tool's definition, by tool name. */
  readonly hashes: ReadonlyMap<string, Digest>;
  /** Listed tools whose definition is not the pin. */
  readonly quarantined: ReadonlySet<string>;
}

const keyOf = pinKey;

export class ToolPins {
  readonly #entries: PinsState = emptyPinsState();
  readonly #recorder: Recorder;
  readonly #context: StreamContext;

  constructor(recorder: Recorder, systemContext: StreamContext) {
    this.#recorder = recorder;
    this.#context = systemContext;
  }

  /** The pins folded from the log (start-up). */
  load(state: PinsState): void {
    this.#entries.clear();
    for (const [key, entry] of state) this.#entries.set(key, entry);
  }

  /**
   * Compares a listing with the pins: pins what is new, records what changed (once per new
   * definition), and says which listed tools are quarantined. Rejects with ATTEST_LOG_UNAVAILABLE
   * when the log cannot record it (the listing must then not be shown).
   */
  async observe(upstream: string, tools: readonly Json[], session: string): Promise<Observation> {
    const hashes = new Map<string, Digest>();
    const quarantined = new Set<string>();
    const drafts: EventDraft[] = [];
    for (const tool of tools) {
      const name = String(tool['name']);
      const { definition, hash } = pinnedDefinition(tool);
      hashes.set(name, hash);
      const entry = this.#entries.get(keyOf(upstream, name));
      if (entry === undefined) {
        drafts.push(draft(this.#context, 'ToolPinned', { upstream, tool: name, hash, definition, sessionId: session }));
      } else if (entry.hash !== hash) {
        quarantined.add(name);
        if (!entry.pending.has(hash) && !entry.rejected.has(hash)) {
          drafts.push(draft(this.#context, 'ToolDefinitionChanged', { upstream, tool: name, pinnedHash: entry.hash, observedHash: hash, definition, sessionId: session }));
        }
      }
    }
    if (drafts.length === 0) return { hashes, quarantined };
    for (const d of drafts) this.#evolve(d);
    try {
      await this.#recorder.record(drafts);
    } catch (error) {
      // Not recorded, so not applied: the next listing tries again.
      for (const d of drafts) {
        if (d.type === 'ToolPinned') this.#entries.delete(keyOf(d.data.upstream, d.data.tool));
        else if (d.type === 'ToolDefinitionChanged') this.#entries.get(keyOf(d.data.upstream, d.data.tool))?.pending.delete(d.data.observedHash as Digest);
      }
      throw error;
    }
    return { hashes, quarantined };
  }

  /**
   * Whether a call to `tool` must be refused. `listedHash` is the hash of the definition this
   * session's upstream connection listed; without one (the session never listed), a tool with a
   * change pending anywhere on this gateway is refused.
   */
  quarantine(upstream: string, tool: string, listedHash: Digest | undefined): Quarantine | undefined {
    const entry = this.#entries.get(keyOf(upstream, tool));
    if (entry === undefined) return undefined;
    if (listedHash !== undefined) {
      if (listedHash === entry.hash) return undefined;
      return { upstream, tool, pinnedHash: entry.hash, observedHash: listedHash, rejected: entry.rejected.has(listedHash) };
    }
    const pending = [...entry.pending.keys()].at(-1);
    return pending === undefined ? undefined : { upstream, tool, pinnedHash: entry.hash, observedHash: pending, rejected: false };
  }

  list(options: { readonly quarantinedOnly?: boolean } = {}): PinView[] {
    const out: PinView[] = [];
    for (const [key, entry] of this.#entries) {
      if (options.quarantinedOnly === true && entry.pending.size === 0) continue;
      const [upstream = '', tool = ''] = key.split('\u0000');
      out.push({
        upstream,
        tool,
        hash: entry.hash,
        pinnedAt: entry.pinnedAt,
        definition: entry.definition,
        quarantined: entry.pending.size > 0,
        pending: [...entry.pending].map(([hash, change]) => ({ hash, observedAt: change.observedAt, definition: change.definition })),
        rejected: [...entry.rejected],
      });
    }
    return out.sort((a, b) => a.upstream.localeCompare(b.upstream) || a.tool.localeCompare(b.tool));
  }

  /** An admin's decision on a pending change, recorded with the admin as the actor, then applied. */
  async decide(decision: 'approve' | 'reject', request: { readonly upstream: string; readonly tool: string; readonly hash: string; readonly reason: string }, admin: Principal): Promise<PinView> {
    const { upstream, tool, hash, reason } = request;
    const entry = this.#entries.get(keyOf(upstream, tool));
    const change = entry?.pending.get(hash as Digest);
    if (entry === undefined || change === undefined) {
      const known = entry === undefined ? `no tool "${tool}" of upstream "${upstream}" is pinned` : entry.pending.size === 0 ? `tool "${tool}" of upstream "${upstream}" has no pending change` : `pending for "${upstream}"/"${tool}": ${[...entry.pending.keys()].join(', ')}`;
      throw new GatewayError('ATTEST_NO_SUCH_TOOL_CHANGE', `No pending change ${hash} to ${decision}: ${known}`, { upstream, tool, hash });
    }
    const context = { ...this.#context, actor: admin };
    const event =
      decision === 'approve'
        ? draft(context, 'ToolDefinitionApproved', { upstream, tool, previousHash: entry.hash, hash: hash, reason })
        : draft(context, 'ToolDefinitionRejected', { upstream, tool, pinnedHash: entry.hash, rejectedHash: hash, reason });
    await this.#recorder.record([event]);
    this.#evolve(event);
    const view = this.list().find((pin) => pin.upstream === upstream && pin.tool === tool);
    if (view === undefined) throw new GatewayError('ATTEST_INTERNAL', 'pin vanished while deciding');
    return view;
  }

  #evolve(event: AttestEvent | EventDraft): void {
    evolvePins(this.#entries, event);
  }
}
