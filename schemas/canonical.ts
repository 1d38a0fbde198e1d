/**
 * Canonical encoding and hashing of events (RFC 8785 JSON Canonicalization Scheme).
 * The hash of an event commits to every field but `hash` itself; the Merkle leaf and the
 * per-stream chain both build on these bytes, so they must never change for a stored event.
 */
import { createHash } from 'node:crypto';
import canonicalizeJson from 'canonicalize';

/** RFC 8785 canonical JSON. Throws on values JSON cannot represent (undefined at top level, BigInt, cycles). */
export function canonicalize(value: unknown): string {
  const out = canonicalizeJson(value);
  if (out === undefined) throw new TypeError('value has no canonical JSON form');
  return out;
}

export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `sha256:<hex>` of the canonical JSON of a value: the digest recorded for every payload. */
export function digestOf(value: unknown): `sha256:${string}` {
  return `sha256:${sha256Hex(canonicalize(value ?? null))}`;
}

/** The chain hash of an event: SHA-256 over the canonical JSON of the event without `hash`. */
export function eventHash(event: { readonly hash?: string } & Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = event;
  return sha256Hex(canonicalize(rest));
}
