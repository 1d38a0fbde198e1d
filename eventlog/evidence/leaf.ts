/**
 * The Merkle leaf content of a log record: the RFC 8785 JSON its chain hash commits to (the event
 * as written, without `hash`), the same bytes as `SealedEvent.canonical` (chain.ts).
 */
import { canonicalize } from '#schemas';
import { hashLeaf } from '../merkle/index.ts';
import type { LogEntry } from '../port.ts';

/** The canonical bytes a record's leaf covers: `written` when the event was upcast or is unreadable. */
export function leafContent(entry: LogEntry): string {
  const source = (entry.written ?? entry.event) as Readonly<Record<string, unknown>>;
  const { hash: _hash, ...rest } = source;
  return canonicalize(rest);
}

/** `SHA-256(0x00 ‖ canonical event bytes)`. */
export function leafHashOf(entry: LogEntry): Buffer {
  return hashLeaf(Buffer.from(leafContent(entry), 'utf8'));
}
