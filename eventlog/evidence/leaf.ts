/**
 * The Merkle leaf content of a log record: the RFC 8785 JSON its chain hash commits to (the event
 * as written, without `hash`), the same bytes as `SealedEvent.canonical` (chain.ts).
 */
import { canonicalize, sha256Hex } from '#schemas';
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

/** `{"hash":"` + 64 hex digits + `",`: how the file and Kafka writers lay out a record (file/event-codec.ts). */
const HASH_START = '{"hash":"'.length;
const HASH_END = HASH_START + 64;
const CANONICAL_REST = HASH_END + 2;

/**
 * The canonical bytes of a record as it was stored, when they provably are `leafContent(entry)`:
 * the text is laid out as the writer lays it out, names the event's own hash, and that hash is the
 * SHA-256 of the bytes. The hash is the SHA-256 of the canonical form of every intact record
 * (`attest verify` checks it), so equal hashes mean equal bytes. Undefined otherwise (KurrentDB,
 * upcast events, another layout, a hash that does not match): the caller canonicalises.
 */
export function storedCanonical(entry: LogEntry): Buffer | undefined {
  const text = entry.event === undefined || entry.position.backend === 'kurrent' ? undefined : entry.storedText;
  if (text === undefined || !text.startsWith('{"hash":"') || text.charCodeAt(HASH_END) !== 0x22 || text.charCodeAt(HASH_END + 1) !== 0x2c) return undefined;
  const hash = text.slice(HASH_START, HASH_END);
  if (hash !== entry.event?.hash) return undefined;
  const bytes = Buffer.from(`{${text.slice(CANONICAL_REST)}`, 'utf8');
  return sha256Hex(bytes) === hash ? bytes : undefined;
}

/** `leafHashOf`, from the stored canonical bytes when the record provides them (storedCanonical). */
export function storedLeafHash(entry: LogEntry): Buffer {
  const bytes = storedCanonical(entry);
  return bytes === undefined ? leafHashOf(entry) : hashLeaf(bytes);
}
