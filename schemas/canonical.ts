/**
 * Canonical encoding and hashing of events (RFC 8785 JSON Canonicalization Scheme).
 * The hash of an event commits to every field but `hash` itself; the Merkle leaf and the
 * per-stream chain both build on these bytes, so they must never change for a stored event.
 *
 * Written here rather than taken from the `canonicalize` package, for the hot path (measured:
 * bench/micro/canonical.ts, numbers in BENCHMARKS.md): every event is canonicalised once to be
 * hashed, and the payloads inside it were already canonicalised once for their digest, so
 *   - a payload canonicalised once is spliced into the event's canonical form as it is
 *     (`rememberCanonical`) instead of being walked again — per event carrying a payload of
 *     100 B: 7.0–7.7 → 5.1–5.3 µs, 10 KB: 20.3–20.6 → 5.0–5.3 µs, 1 MB: 1.8–1.9 ms → 5 µs;
 *   - plain recursion over JSON data (a depth bound instead of a `Set` of visited containers).
 * Output is byte-identical to `canonicalize` on every JSON value: canonical.unit.spec.ts checks it
 * against RFC 8785's examples and against the package (a dev dependency) on generated values.
 */
import { createHash } from 'node:crypto';

/** Canonical forms of objects canonicalised before (payload bodies), keyed by identity. */
const remembered = new WeakMap<object, string>();

/** Beyond this depth a value is taken to be cyclic (or too deep to be a JSON payload worth keeping). */
const MAX_DEPTH = 1_000;

/**
 * Records `canonical` as the canonical form of `value`, to be spliced in the next time `value` is
 * met by `canonicalize` (once: later canonicalisations walk it again). The caller promises `value`
 * is not mutated in between.
 */
export function rememberCanonical(value: object, canonical: string): void {
  remembered.set(value, canonical);
}

/** RFC 8785 canonical JSON. Throws on values JSON cannot represent (undefined at top level, BigInt, NaN, Infinity, lone surrogates, cycles). */
export function canonicalize(value: unknown): string {
  const out = serialize(value, 0);
  if (out === undefined) throw new TypeError('value has no canonical JSON form');
  return out;
}

function serialize(value: unknown, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      if (!value.isWellFormed()) throw new TypeError('Lone surrogate is not allowed');
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError(Number.isNaN(value) ? 'NaN is not allowed' : 'Infinity is not allowed');
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      return serializeObject(value, depth);
    case 'bigint':
      throw new TypeError('BigInt value can\'t be serialized in JSON');
    default:
      // undefined, functions and symbols: dropped from objects, null in arrays (as JSON.stringify does).
      return undefined;
  }
}

function serializeObject(value: object, depth: number): string | undefined {
  const cached = remembered.get(value);
  if (cached !== undefined) {
    // Used once (the seal of the event that carries it): forgetting it at once lets the string go
    // with the next minor GC, where a WeakMap entry would live until a full one (measured at 1 MB
    // payloads: peak RSS +45 % while kept).
    remembered.delete(value);
    return cached;
  }
  if (depth > MAX_DEPTH) throw new TypeError('Circular reference detected (or nesting deeper than 1000)');
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return serialize((value as { toJSON: () => unknown }).toJSON(), depth + 1);
  if (value instanceof Number || value instanceof String || value instanceof Boolean) return serialize(value.valueOf(), depth + 1);
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ',';
      out += serialize(value[i], depth + 1) ?? 'null';
    }
    return `${out}]`;
  }
  // Default sort: by UTF-16 code units, the order RFC 8785 requires.
  const keys = Object.keys(value).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const member = serialize((value as Record<string, unknown>)[key], depth + 1);
    if (member === undefined) continue;
    if (!first) out += ',';
    first = false;
    out += `${JSON.stringify(key)}:${member}`;
  }
  return `${out}}`;
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
