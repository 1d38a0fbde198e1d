/**
 * Tool-definition pins folded from the log (docs/tool-pinning.md): per upstream and tool, the
 * pinned definition, the changed definitions waiting for an admin, and the rejected ones. The
 * gateway decides quarantine from this state; the projector's tool_definitions table is built
 * from the same events.
 */
import type { AttestEvent, EventDraft } from '#schemas';

export type Digest = `sha256:${string}`;

export interface PendingChange {
  readonly definition: unknown;
  readonly observedAt: string;
}

export interface PinEntry {
  hash: Digest;
  pinnedAt: string;
  definition: unknown;
  /** Changed definitions seen and not decided yet, by hash. */
  readonly pending: Map<Digest, PendingChange>;
  /** Definitions an admin rejected: refused without a new record when seen again. */
  readonly rejected: Set<Digest>;
}

/** Keyed by `pinKey(upstream, tool)`. */
export type PinsState = Map<string, PinEntry>;

export const pinKey = (upstream: string, tool: string): string => `${upstream}\u0000${tool}`;

export function emptyPinsState(): PinsState {
  return new Map();
}

export function evolvePins(state: PinsState, event: AttestEvent | EventDraft): void {
  switch (event.type) {
    case 'ToolPinned': {
      const key = pinKey(event.data.upstream, event.data.tool);
      if (!state.has(key)) state.set(key, { hash: event.data.hash as Digest, pinnedAt: event.occurredAt, definition: event.data.definition, pending: new Map(), rejected: new Set() });
      return;
    }
    case 'ToolDefinitionChanged': {
      const entry = state.get(pinKey(event.data.upstream, event.data.tool));
      if (entry !== undefined && entry.hash !== event.data.observedHash) entry.pending.set(event.data.observedHash as Digest, { definition: event.data.definition, observedAt: event.occurredAt });
      return;
    }
    case 'ToolDefinitionApproved': {
      const entry = state.get(pinKey(event.data.upstream, event.data.tool));
      if (entry === undefined) return;
      const hash = event.data.hash as Digest;
      entry.definition = entry.pending.get(hash)?.definition ?? entry.definition;
      entry.hash = hash;
      entry.pinnedAt = event.occurredAt;
      entry.pending.delete(hash);
      entry.rejected.delete(hash);
      return;
    }
    case 'ToolDefinitionRejected': {
      const entry = state.get(pinKey(event.data.upstream, event.data.tool));
      if (entry === undefined) return;
      entry.pending.delete(event.data.rejectedHash as Digest);
      entry.rejected.add(event.data.rejectedHash as Digest);
      return;
    }
    default:
      return;
  }
}
